// The storefront: lists the catalog from /api/products, searches through /api/search, shows one product.
// Routes live in the URL's fragment: `#/` (everything), `#/search/<words>`, `#/p/<handle>`.
// Text from the API only ever reaches the page through textContent and setAttribute, never as markup.
"use strict";

(function () {
  const main = document.getElementById("storefront");
  const status = document.getElementById("status");
  const list = document.getElementById("list");
  const product = document.getElementById("product");
  const form = document.getElementById("search");
  const input = document.getElementById("q");

  // Colours the catalog uses, as swatches; anything else shows the neutral swatch.
  const SWATCHES = {
    red: "#b3202f", maroon: "#6d1a2a", blue: "#1f4f9c", navy: "#1b2a4a", yellow: "#e0b21b",
    mustard: "#c99a1c", pink: "#e48aa6", green: "#2e7d4f", emerald: "#1d7a5a", purple: "#6a3d8f",
    violet: "#7b4ca0", orange: "#e0752a", gold: "#c8a23a", white: "#f4efe6", ivory: "#f1e9d2",
    cream: "#efe4c8", black: "#222222", grey: "#8a8a8a", gray: "#8a8a8a", silver: "#b9b9b9",
    beige: "#d9c6a5", teal: "#1f7a7a", magenta: "#b0266f", peach: "#f2b38f", brown: "#7a4b2a",
    wine: "#5e1a2b", lavender: "#b7a3d6", mint: "#9fd8bf", turquoise: "#2fb5b0", rust: "#a2471f",
  };

  function rupees(n) {
    return "₹" + Number(n).toLocaleString("en-IN");
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function swatch(color) {
    const s = el("div", "swatch");
    const key = String(color || "").toLowerCase().split(/[^a-z]+/).find((w) => SWATCHES[w]);
    if (key) s.style.backgroundColor = SWATCHES[key];
    return s;
  }

  function setState(state, message) {
    main.setAttribute("data-state", state);
    status.textContent = message || "";
    status.hidden = !message;
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { accept: "application/json" } });
    if (!response.ok) {
      let detail = "";
      try {
        const body = await response.json();
        detail = (body && body.error && (body.error.message || body.error)) || "";
      } catch (_) { /* not JSON */ }
      throw new Error(url.split("?")[0] + " answered " + response.status + (detail ? ": " + detail : ""));
    }
    return response.json();
  }

  function card(p) {
    const a = el("a", "card");
    a.setAttribute("data-product", p.handle);
    a.setAttribute("href", "#/p/" + encodeURIComponent(p.handle));
    a.appendChild(swatch(p.color));
    a.appendChild(el("h2", "", p.title));
    a.appendChild(el("span", "meta", [p.fabric, p.occasion, p.color].filter(Boolean).join(" · ")));
    a.appendChild(el("span", "price", rupees(p.price)));
    if (p.stock <= 0) a.appendChild(el("span", "meta", "Out of stock"));
    return a;
  }

  function showList(products, total, view) {
    product.hidden = true;
    product.replaceChildren();
    list.replaceChildren(...products.map(card));
    list.hidden = false;
    main.setAttribute("data-view", view);
    main.setAttribute("data-count", String(products.length));
  }

  async function home() {
    input.value = "";
    setState("loading", "Loading the catalog…");
    const body = await getJson("/api/products?limit=200");
    showList(body.products, body.total, "list");
    setState("ready", body.products.length === 0 ? "The catalog is empty." : "");
  }

  async function search(words) {
    input.value = words;
    setState("loading", "Searching…");
    const body = await getJson("/api/search?q=" + encodeURIComponent(words) + "&limit=100");
    showList(body.results, body.total, "search");
    setState("ready", body.results.length === 0
      ? "Nothing matches “" + words + "”."
      : body.total + " found for “" + words + "”.");
  }

  async function one(handle) {
    setState("loading", "Loading…");
    const p = await getJson("/api/products/" + encodeURIComponent(handle));
    list.hidden = true;
    list.replaceChildren();
    const back = el("a", "back", "← All products");
    back.setAttribute("href", "#/");
    const facts = el("dl");
    for (const [label, value] of [
      ["Fabric", p.fabric], ["Occasion", p.occasion], ["Colour", p.color], ["Work", p.work_type],
      ["Category", p.category], ["Dispatch", p.dispatch_time],
      ["Returns", p.return_eligible ? "Eligible" : "Not eligible"],
      ["In stock", p.stock > 0 ? String(p.stock) : "Out of stock"],
    ]) {
      facts.appendChild(el("dt", "", label));
      facts.appendChild(el("dd", "", value));
    }
    product.replaceChildren(
      back, swatch(p.color), el("h1", "", p.title), el("p", "price", rupees(p.price)),
      el("p", "", p.description), facts,
    );
    product.setAttribute("data-handle", p.handle);
    product.hidden = false;
    main.setAttribute("data-view", "product");
    main.setAttribute("data-count", "1");
    document.title = p.title + " — Vaibava";
    setState("ready", "");
  }

  async function route() {
    const hash = location.hash.replace(/^#/, "");
    const parts = hash.split("/").filter(Boolean);
    try {
      if (parts[0] === "p" && parts[1]) {
        await one(decodeURIComponent(parts.slice(1).join("/")));
      } else if (parts[0] === "search" && parts[1]) {
        await search(decodeURIComponent(parts.slice(1).join("/")));
      } else {
        document.title = "Vaibava — sarees and silks";
        await home();
      }
    } catch (e) {
      list.hidden = true;
      product.hidden = true;
      setState("error", "The shop could not load: " + e.message);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const words = input.value.trim();
    location.hash = words ? "#/search/" + encodeURIComponent(words) : "#/";
  });
  window.addEventListener("hashchange", route);
  route();
})();
