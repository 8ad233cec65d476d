//! Checks of the source tree's shape that CI runs: shell text only in the command builders, bollard only in
//! the engine, stderr only through the output module.

use std::path::Path;

use crate::support::source::rust_files;

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
    let files = rust_files(&root.join("src"));
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

/// `file:line` for every line of `src/**/*.rs` outside `src/engine/` that names `bollard::`.
fn bollard_outside_the_engine(root: &Path) -> Vec<String> {
    let src = root.join("src");
    let engine = src.join("engine");
    let files = rust_files(&src);
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&engine)) {
        let text = std::fs::read_to_string(file).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains("bollard::") || line.trim_start().starts_with("use bollard") {
                let rel = file.strip_prefix(root).unwrap_or(file);
                found.push(format!("{}:{}: {}", rel.display(), i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn bollard_only_in_the_engine() {
    let found = bollard_outside_the_engine(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(
        found.is_empty(),
        "bollard is spoken outside `src/engine/`; add an `Engine` method instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_names_the_file_and_line_of_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src/engine")).unwrap();
    std::fs::create_dir_all(dir.path().join("src/command")).unwrap();
    std::fs::write(
        dir.path().join("src/engine/mod.rs"),
        "//! e\nuse bollard::Docker;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("src/command/status.rs"),
        "//! s\nfn f() {\n    let _ = bollard::API_DEFAULT_VERSION;\n}\n",
    )
    .unwrap();
    assert_eq!(
        bollard_outside_the_engine(dir.path()),
        vec!["src/command/status.rs:3: let _ = bollard::API_DEFAULT_VERSION;".to_owned()]
    );
}

/// `file:line: text` for each `eprintln!`/`eprint!` in code (not comments) outside `src/output/`.
fn stderr_prints_outside_output(src: &Path) -> Vec<String> {
    let output = src.join("output");
    let mut found = Vec::new();
    for file in rust_files(src) {
        if file.starts_with(&output) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source is UTF-8");
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if code.contains("eprintln!") || code.contains("eprint!") {
                let shown = file
                    .strip_prefix(src.parent().unwrap_or(src))
                    .unwrap_or(&file);
                found.push(format!("{}:{}: {}", shown.display(), i + 1, code));
            }
        }
    }
    found
}

#[test]
fn eprintln_only_in_the_output_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = stderr_prints_outside_output(&src);
    assert!(
        found.is_empty(),
        "stderr is written outside src/output/; emit an event through `Output` instead (`note`, `warning`, `error`):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_shape_check_names_the_file_and_line_of_a_stray_eprintln() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("output")).expect("mkdir");
    std::fs::create_dir_all(src.join("command")).expect("mkdir");
    std::fs::write(
        src.join("output/plain.rs"),
        "fn f() { eprintln!(\"ok here\"); }\n",
    )
    .expect("write");
    std::fs::write(
        src.join("command/up.rs"),
        "//! up\n// eprintln! in a comment is fine\nfn f() {\n    eprint!(\"stray\");\n}\n",
    )
    .expect("write");
    assert_eq!(
        stderr_prints_outside_output(&src),
        vec!["src/command/up.rs:4: eprint!(\"stray\");".to_string()]
    );
}
