#!/usr/bin/env python3
"""Writes stack files of the worst shapes, each just under vldeploy's 1 MiB limit, into DIR.

keys.yaml     one mapping of many keys (the backend's env) and an override of every one of them
deep.yaml     mappings nested to the depth limit under long keys, a long list at the bottom (every item's path is 12 KB)
long.yaml     values that are one long line each: plain, double-quoted with escapes, single-quoted
aliases.yaml  many aliases of one anchored value, within the alias guard
over.yaml     keys.yaml padded to one byte over the limit (refused before it is read)
"""

import sys
from pathlib import Path

LIMIT = 1 << 20

HEAD = """\
name: bench
environments:
  bench:
    host: ssh://bench@127.0.0.1:9
    ssh_agent: true
    host_key: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s
    domain: bench.example
{overrides}services:
  nginx:
    image: nginx:1.27
    ports: ["80:80"]
  postgres:
    image: postgres:15
  backend:
    image: shop:1
    port: 8080
    env:
"""


def stack(env_lines, override_lines=()):
    overrides = ""
    if override_lines:
        overrides = "    overrides:\n      backend:\n        env:\n" + "".join(
            f"          {l}\n" for l in override_lines
        )
    return HEAD.format(overrides=overrides) + "".join(f"      {l}\n" for l in env_lines)


def fill(make, budget=LIMIT):
    """The largest n for which make(n) fits in budget bytes, and make(n)."""
    lo, hi = 1, 1
    while len(make(hi).encode()) <= budget:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if len(make(mid).encode()) <= budget:
            lo = mid
        else:
            hi = mid
    return lo, make(lo)


def keys(n):
    half = n // 2
    return stack(
        [f"K{i:06d}: v{i}" for i in range(half)],
        [f"K{i:06d}: w{i}" for i in range(half)],
    )


def deep(n):
    depth = 62  # the top-level mapping and `x-deep` take two of the 64 levels
    key = "k" * 200
    lines = [stack(["A: b"]), "x-deep:\n"]
    for d in range(depth - 2):
        lines.append("  " * (d + 1) + f"{key}{d}:\n")
    items = ", ".join(f"i{i}" for i in range(n))
    lines.append("  " * (depth - 1) + f"{key}: [{items}]\n")
    return "".join(lines)


def long(n):
    third = n // 3
    plain = "x" * third
    quoted = "\\\"y" * (third // 3)
    single = "z''" * (third // 3)
    return stack([f"PLAIN: {plain}", f'QUOTED: "{quoted}"', f"SINGLE: '{single}'"])


def aliases(n):
    anchor = ["ANCHOR: &v " + "a" * 40]
    return stack(anchor + [f"A{i:06d}: *v" for i in range(n)])


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "stacks")
    out.mkdir(parents=True, exist_ok=True)
    for name, make in [("keys", keys), ("deep", deep), ("long", long), ("aliases", aliases)]:
        n, text = fill(make)
        (out / f"{name}.yaml").write_text(text)
        print(f"{name}.yaml: {len(text.encode())} bytes, n = {n}")
    _, text = fill(keys)
    text += "#" * (LIMIT + 1 - len(text.encode()) - 1) + "\n"
    (out / "over.yaml").write_text(text)
    print(f"over.yaml: {len(text.encode())} bytes")


if __name__ == "__main__":
    main()
