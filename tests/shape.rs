//! Checks of the source tree's shape that CI runs: where certain kinds of code may live.

use std::path::{Path, PathBuf};

/// Where shell text may be written: the command builders, and the transport's own snippets.
const SHELL_HOMES: [&str; 2] = ["src/remote/", "src/transport/"];

/// The one escaper per target, shell among them, that renders templates (the backup script is shell).
const SHELL_ESCAPER: &str = "src/render/escape.rs";

/// What marks a `format!` literal as shell text.
const SHELL_MARKERS: [&str; 6] = ["&&", "2>/dev/null", "mkdir -p", "cat >", "rm -f", "; then"];

/// Calls that only the builders may make.
const BUILDER_CALLS: [&str; 4] = [
    "shell_quote",
    "Command::script",
    "Command::argv",
    "remote::raw",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literals of the macro call that starts at `start` (just after `format!(`), up to its closing paren.
fn literals_of_call(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut depth = 1usize;
    let mut literals = Vec::new();
    let mut i = 0;
    while i < bytes.len() && depth > 0 {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'r' if bytes.get(i + 1).is_some_and(|b| *b == b'"' || *b == b'#') => {
                let hashes = bytes[i + 1..].iter().take_while(|b| **b == b'#').count();
                let open = i + 1 + hashes;
                if bytes.get(open) == Some(&b'"') {
                    let close = format!("\"{}", "#".repeat(hashes));
                    if let Some(end) = text[open + 1..].find(&close) {
                        literals.push(text[open + 1..open + 1 + end].to_owned());
                        i = open + 1 + end + close.len();
                        continue;
                    }
                }
            }
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                literals.push(text[i + 1..j.min(bytes.len())].to_owned());
                i = j + 1;
                continue;
            }
            b'\'' => {
                // A char literal such as '(' must not count as a paren; a lifetime has no closing quote nearby.
                if bytes.get(i + 2) == Some(&b'\'') {
                    i += 3;
                    continue;
                }
                if bytes.get(i + 1) == Some(&b'\\') && bytes.get(i + 3) == Some(&b'\'') {
                    i += 4;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    literals
}

/// Whether a literal reads as a shell pipe: `word | command`.
fn has_pipe(literal: &str) -> bool {
    let b = literal.as_bytes();
    (1..b.len().saturating_sub(3)).any(|i| {
        b[i] == b' '
            && b[i + 1] == b'|'
            && b[i + 2] == b' '
            && b[i - 1] != b' '
            && b[i + 3].is_ascii_lowercase()
    })
}

fn looks_like_shell(literal: &str) -> bool {
    SHELL_MARKERS.iter().any(|m| literal.contains(m)) || has_pipe(literal)
}

/// Where the file's `#[cfg(test)] mod …` starts (a `#[cfg(test)]` on anything else is code like the rest).
fn test_module_start(text: &str) -> usize {
    for (offset, _) in text.match_indices("#[cfg(test)]") {
        let after = &text[offset + "#[cfg(test)]".len()..];
        let item = after
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("#["))
            .unwrap_or("");
        if item.starts_with("mod ") || item.starts_with("pub(crate) mod ") {
            return offset;
        }
    }
    text.len()
}

/// Every place in `text` (the source of `file`) that builds shell text outside the builders, as `file:line: what`.
fn violations(file: &str, text: &str) -> Vec<String> {
    // Unit tests at the bottom of a file may spell out commands to compare against.
    let code = &text[..test_module_start(text)];
    let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
    let mut found = Vec::new();
    for call in BUILDER_CALLS {
        if file == SHELL_ESCAPER && call == "shell_quote" {
            continue;
        }
        for (offset, _) in code.match_indices(call) {
            let line = code[..offset].rsplit('\n').next().unwrap_or("");
            if line.trim_start().starts_with("//") {
                continue;
            }
            found.push(format!(
                "{file}:{}: `{call}` outside the command builders",
                line_of(offset)
            ));
        }
    }
    for (offset, _) in code.match_indices("format!(") {
        let literals = literals_of_call(&code[offset + "format!(".len()..]);
        if let Some(shell) = literals.iter().find(|l| looks_like_shell(l)) {
            found.push(format!(
                "{file}:{}: shell text built outside the command builders: {shell:?}",
                line_of(offset)
            ));
        }
    }
    found
}

#[test]
fn shell_text_is_built_only_by_the_command_builders() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    assert!(files.len() > 50, "the source tree is where it should be");
    let mut found = Vec::new();
    for path in files {
        let file = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        if SHELL_HOMES.iter().any(|home| file.starts_with(home)) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source file is readable");
        found.extend(violations(&file, &text));
    }
    assert!(
        found.is_empty(),
        "shell text belongs in a builder under src/remote/ (a pure function returning `Command`, tested as exact text):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_shell_check_finds_what_it_looks_for() {
    let seeded = "fn f(q: &str) {\n    let a = format!(\"mkdir -p {q} && true\");\n    let b = shell_quote(q);\n    let c = format!(\n        \"tail -n 1 {}\",\n        \"x\"\n    );\n    let d = format!(\"cat {q} | sha256sum\");\n}\n";
    assert_eq!(
        violations("src/x.rs", seeded),
        [
            "src/x.rs:3: `shell_quote` outside the command builders",
            "src/x.rs:2: shell text built outside the command builders: \"mkdir -p {q} && true\"",
            "src/x.rs:8: shell text built outside the command builders: \"cat {q} | sha256sum\"",
        ]
    );
    let fine = "fn g(l: &str) -> String {\n    format!(\"         | {l}\")\n}\n#[cfg(test)]\nmod tests { fn t() { format!(\"a && b\"); } }\n";
    assert!(violations("src/y.rs", fine).is_empty());
    let helper =
        "#[cfg(test)]\nfn h() {}\nfn f(p: &str) -> String {\n    format!(\"rm -f {p}\")\n}\n";
    assert_eq!(
        violations("src/z.rs", helper),
        ["src/z.rs:4: shell text built outside the command builders: \"rm -f {p}\""]
    );
}
