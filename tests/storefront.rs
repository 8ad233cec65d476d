//! The storefront a newcomer sees: `up` on a sandbox host serves `frontend/` with the 50 products of the catalog
//! seed, in a real browser (Debian's chromium); a change goes live with no failed request and `rollback` brings
//! the previous page back; an emptied document root is a blank homepage that `doctor` names.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::project::{Project, repo};

/// The catalog seed's rows: handle and the fields the search looks at (title, category, fabric, colour,
/// occasion). The first ten columns hold no quotes or commas.
fn catalog() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(repo().join("data/catalog.csv")).expect("data/catalog.csv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            let fields = [1, 2, 7, 8, 9]
                .iter()
                .map(|i| cols[*i].to_string())
                .collect();
            (cols[0].to_string(), fields)
        })
        .collect()
}

/// What the backend's search matches for one word: a word of a field that starts with it.
fn matching(word: &str) -> BTreeSet<String> {
    catalog()
        .into_iter()
        .filter(|(_, fields)| {
            fields.iter().any(|f| {
                f.split(|c: char| !c.is_alphanumeric())
                    .any(|w| w.to_lowercase().starts_with(word))
            })
        })
        .map(|(handle, _)| handle)
        .collect()
}

/// Headless chromium's rendering of `url` once its scripts ran (`--dump-dom`).
fn browser_dom(url: &str) -> String {
    let out = Command::new("chromium")
        .args(chromium_flags())
        .args(["--dump-dom", url])
        .output()
        .expect("chromium runs (.ci/setup installs Debian's `chromium`)");
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn chromium_flags() -> [&'static str; 6] {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--virtual-time-budget=15000",
    ]
}

/// The `data-product` handles of the cards a rendered page shows, in order.
fn cards(dom: &str) -> Vec<String> {
    dom.split("data-product=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

/// `curl -sI`: the response headers of a path through the sandbox's nginx, lowercased.
fn head(p: &Project, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-sI", "--max-time", "10"])
        .arg(format!("{}{}", p.url(), path.trim_start_matches('/')))
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).to_lowercase()
}

#[test]
#[allow(clippy::too_many_lines)]
fn the_storefront_shows_the_catalog_goes_live_without_errors_rolls_back_and_a_blank_page_is_found()
{
    let p = Project::with_storefront("storefront");

    // First launch: the storefront is released, the catalog seed imported once.
    let up = p
        .test()
        .arg("up")
        .stdout_has("~ site ")
        .stdout_has(p.is_up())
        .stderr_has("catalog seed `data/catalog.csv` imported: 50 products (50 new, 0 updated)")
        .run();
    let (code, health) = p.http_get("/api/health");
    assert_eq!(code, 200, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).expect("health is JSON");
    assert_eq!(health["catalog"]["products"], 50, "{health}");
    assert_eq!(health["safe_mode"], true, "{health}");

    // The page and its assets: the marker, hashed asset names, cache headers that fit each.
    let (code, page) = p.http_get("/");
    assert_eq!(code, 200);
    assert!(
        page.contains("<meta name=\"vldeploy-page\" content=\"storefront\">"),
        "{page}"
    );
    let css = page
        .split("href=\"/assets/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the page links its stylesheet");
    assert!(
        css.starts_with("shop.")
            && std::path::Path::new(css)
                .extension()
                .is_some_and(|e| e == "css")
            && css.len() == "shop..css".len() + 12,
        "{css}"
    );
    assert!(
        head(&p, "/").contains("cache-control: no-cache"),
        "{}",
        head(&p, "/")
    );
    let asset_head = head(&p, &format!("/assets/{css}"));
    assert!(asset_head.starts_with("http/1.1 200"), "{asset_head}");
    assert!(
        asset_head.contains("cache-control: public, max-age=31536000, immutable"),
        "{asset_head}"
    );

    // The checklist's `homepage` item sees the same.
    let check = p.test().arg("check").status(1).run().stdout;
    let item = check
        .lines()
        .find(|l| l.starts_with("homepage "))
        .unwrap_or_else(|| panic!("no homepage item:\n{check}"));
    assert!(
        item.contains(" pass ") && item.contains("with the `vldeploy-page` marker, 2 assets 200"),
        "{check}"
    );

    // A real browser renders the 50 products from the API.
    let dom = browser_dom(&p.url());
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    let all = cards(&dom);
    assert_eq!(all.len(), 50, "{dom}");
    let handles: BTreeSet<String> = catalog().into_iter().map(|(h, _)| h).collect();
    assert_eq!(all.iter().cloned().collect::<BTreeSet<_>>(), handles);

    // Searching "silk" narrows the list to exactly the matching products of the CSV.
    let dom = browser_dom(&format!("{}#/search/silk", p.url()));
    assert!(dom.contains("data-view=\"search\""), "{dom}");
    let found: BTreeSet<String> = cards(&dom).into_iter().collect();
    let expected = matching("silk");
    assert!(!expected.is_empty() && expected.len() < 50, "{expected:?}");
    assert_eq!(found, expected, "{dom}");

    // One product's page.
    let first = all[0].clone();
    let dom = browser_dom(&format!("{}#/p/{first}", p.url()));
    assert!(dom.contains(&format!("data-handle=\"{first}\"")), "{dom}");

    // A screenshot is kept for people to look at.
    let shot_dir = repo().join("target/storefront");
    std::fs::create_dir_all(&shot_dir).expect("target/storefront");
    let shot: PathBuf = shot_dir.join("storefront.png");
    let _ = std::fs::remove_file(&shot);
    let status = Command::new("chromium")
        .args(chromium_flags())
        .arg("--window-size=1280,1600")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(p.url())
        .output()
        .expect("chromium runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let size = std::fs::metadata(&shot).map_or(0, |m| m.len());
    assert!(
        size > 10_000,
        "screenshot {} is {size} bytes",
        shot.display()
    );
    eprintln!("storefront screenshot: {} ({size} bytes)", shot.display());

    // A second `up` changes nothing and imports nothing again.
    p.test()
        .arg("up")
        .stdout(p.converged())
        .stderr_lacks("catalog seed")
        .run();
    drop(up);

    // `seed` imports again on demand; safe mode still holds: a CSV that changes a price is refused whole.
    p.test()
        .arg("seed")
        .stdout_has("catalog seed `data/catalog.csv` imported: 50 products (0 new, ")
        .run();
    let csv = p.path().join("data/catalog.csv");
    let rows = std::fs::read_to_string(&csv).expect("catalog.csv");
    assert!(
        rows.contains(",Women,28999,5,"),
        "the first product's price"
    );
    std::fs::write(&csv, rows.replacen(",Women,28999,5,", ",Women,1,5,", 1))
        .expect("write catalog.csv");
    p.test()
        .arg("seed")
        .status(1)
        .stderr_has("safe mode (`OPERATOR_SAFE_MODE=true`) keeps prices as they are, and the CSV changes 1 price\n")
        .run();
    let (_, product) = p.http_get("/api/products/crimson-kanchi-bride");
    assert!(product.contains("\"price\":28999"), "{product}");
    std::fs::write(&csv, rows).expect("restore catalog.csv");

    // A storefront change goes live while a loop requests `/`: not one request fails.
    let index = p.path().join("frontend/index.html");
    let original = std::fs::read_to_string(&index).expect("index.html");
    std::fs::write(
        &index,
        original.replace(
            "<title>Vaibava — sarees and silks</title>",
            "<title>Vaibava — the new collection</title>",
        ),
    )
    .expect("write index.html");
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let url = p.url();
    // Four loops at once, each one request after the other.
    let loopers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, sent, failed, url) =
                (stop.clone(), sent.clone(), failed.clone(), url.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let out = Command::new("curl")
                        .args([
                            "-s",
                            "-o",
                            "/dev/null",
                            "-w",
                            "%{http_code} %{size_download}",
                            "--max-time",
                            "5",
                            &url,
                        ])
                        .output()
                        .expect("curl runs");
                    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
                    sent.fetch_add(1, Ordering::SeqCst);
                    let ok = answer.starts_with("200 ") && !answer.ends_with(" 0");
                    if !ok {
                        failed.fetch_add(1, Ordering::SeqCst);
                        failures.push(answer);
                    }
                }
                failures
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    p.test()
        .arg("up")
        .stdout_has("~ site ")
        .stdout_has("(the host serves ")
        .stdout_has(p.is_up())
        .run();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let failures: Vec<String> = loopers
        .into_iter()
        .flat_map(|l| l.join().expect("a request loop"))
        .collect();
    let (sent, failed) = (sent.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    eprintln!(
        "storefront switch: {sent} requests for / in {:.1}s, {failed} failed",
        started.elapsed().as_secs_f64()
    );
    assert!(
        sent >= 20,
        "only {sent} requests were sent during the switch"
    );
    assert_eq!(failed, 0, "failed requests during the switch: {failures:?}");
    let (_, page) = p.http_get("/");
    assert!(page.contains("the new collection"), "{page}");

    // `releases` lists both storefront releases; `rollback` brings the previous page back.
    let listing = p.test().arg("releases").run().stdout;
    assert_eq!(listing.matches("site-").count(), 2, "{listing}");
    p.test()
        .arg("rollback")
        .stdout_has("rolled the storefront back to `site-")
        .run();
    let (code, page) = p.http_get("/");
    assert_eq!(code, 200);
    assert!(
        page.contains("sarees and silks") && !page.contains("the new collection"),
        "{page}"
    );
    let dom = browser_dom(&p.url());
    assert_eq!(cards(&dom).len(), 50, "{dom}");

    // nginx's document root emptied by hand: `doctor` names the blank homepage and nginx's last error lines.
    p.ssh(&format!(
        "rm -rf /var/lib/vldeploy/{}/site/current/*",
        p.name
    ))
    .ok();
    let (code, _) = p.http_get("/");
    assert_ne!(code, 200, "the emptied document root still serves");
    let doctor = p.test().arg("doctor").status(1).run().stdout;
    let line = doctor
        .lines()
        .find(|l| l.contains("homepage"))
        .unwrap_or_else(|| panic!("no homepage finding:\n{doctor}"));
    assert!(
        line.contains("FAIL") && line.contains("blank homepage"),
        "{doctor}"
    );
    assert!(doctor.contains("nginx's last error lines:"), "{doctor}");
    assert!(doctor.contains("[error]"), "{doctor}");
    assert!(
        doctor.contains("check `vldeploy logs nginx -e sandbox`"),
        "{doctor}"
    );
}
