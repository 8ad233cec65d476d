//! The shape CI keeps: only `src/engine/` speaks bollard.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `file:line` for every line of `src/**/*.rs` outside `src/engine/` that names `bollard::`.
fn bollard_outside_the_engine(root: &Path) -> Vec<String> {
    let src = root.join("src");
    let engine = src.join("engine");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
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
