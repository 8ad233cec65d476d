//! The shape CI keeps: every line for the operator on stderr goes through the output module.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, in a stable order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display()))
        {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
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
