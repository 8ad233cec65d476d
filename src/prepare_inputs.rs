//! A `prepare` command's declared inputs: hashed like a build context and recorded under the project's
//! `.vldeploy/prepared/`, so a `prepare` whose inputs did not change is not run again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The hash of `command` and of every file its `patterns` (paths or globs, relative to `project_dir`; a
/// directory stands for every file under it) match: their paths, whether they are executable, their bytes.
pub fn inputs_hash(
    project_dir: &Path,
    command: &str,
    patterns: &[String],
) -> Result<String, String> {
    let mut files: BTreeMap<String, (bool, String)> = BTreeMap::new();
    for pattern in patterns {
        let full = project_dir.join(pattern);
        let matches = glob::glob(&full.to_string_lossy())
            .map_err(|e| format!("`{pattern}` is not a valid path pattern: {e}"))?;
        for path in matches {
            let path = path.map_err(|e| format!("`{pattern}`: {e}"))?;
            for file in files_under(&path).map_err(|e| format!("`{}`: {e}", path.display()))? {
                let bytes =
                    std::fs::read(&file).map_err(|e| format!("`{}`: {e}", file.display()))?;
                let rel = file
                    .strip_prefix(project_dir)
                    .unwrap_or(&file)
                    .to_string_lossy()
                    .into_owned();
                files.insert(
                    rel,
                    (is_executable(&file), hex::encode(Sha256::digest(&bytes))),
                );
            }
        }
    }
    let mut h = Sha256::new();
    h.update(b"prepare\0");
    h.update(command.as_bytes());
    h.update(b"\0");
    for pattern in patterns {
        h.update(pattern.as_bytes());
        h.update(b"\0");
    }
    for (path, (exec, digest)) in &files {
        h.update(format!("{path}\0{}\0{digest}\n", u8::from(*exec)).as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// Where the hash of a service's last successful `prepare` is kept.
pub fn record_path(project_dir: &Path, service: &str) -> PathBuf {
    project_dir.join(".vldeploy").join("prepared").join(service)
}

/// The inputs hash recorded by the last successful `prepare` of `service`, if any.
pub fn recorded(project_dir: &Path, service: &str) -> Option<String> {
    std::fs::read_to_string(record_path(project_dir, service))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Records `hash` as the inputs of `service`'s successful `prepare`.
pub fn record(project_dir: &Path, service: &str, hash: &str) -> std::io::Result<()> {
    let path = record_path(project_dir, service);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{hash}\n"))?;
    std::fs::rename(tmp, path)
}

/// `path` itself when it is a file, else every file below it, in order.
fn files_under(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        out.extend(files_under(&entry)?);
    }
    Ok(out)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{inputs_hash, record, recorded};

    #[test]
    fn the_hash_follows_the_contents_paths_and_command_of_the_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("src/deep")).unwrap();
        std::fs::write(d.join("src/main.rs"), "fn main() {}").unwrap();
        std::fs::write(d.join("src/deep/lib.rs"), "pub fn f() {}").unwrap();
        std::fs::write(d.join("Cargo.toml"), "[package]").unwrap();
        std::fs::write(d.join("notes.txt"), "not an input").unwrap();
        let inputs = vec!["src".to_string(), "*.toml".to_string()];
        let hash = || inputs_hash(d, "cargo build", &inputs).unwrap();
        let first = hash();
        assert_eq!(first.len(), 64);
        assert_eq!(hash(), first, "the same files give the same hash");

        std::fs::write(d.join("notes.txt"), "changed").unwrap();
        assert_eq!(hash(), first, "a file outside the inputs does not count");

        std::fs::write(d.join("src/deep/lib.rs"), "pub fn g() {}").unwrap();
        let changed = hash();
        assert_ne!(changed, first, "a file in a listed directory counts");

        std::fs::write(d.join("Extra.toml"), "").unwrap();
        assert_ne!(hash(), changed, "a new file matching a glob counts");

        assert_ne!(
            inputs_hash(d, "cargo build --release", &inputs).unwrap(),
            hash(),
            "another command is another hash"
        );
        assert!(inputs_hash(d, "x", &["[".to_string()]).is_err());
    }

    #[test]
    fn the_record_is_kept_under_the_projects_vldeploy_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(recorded(dir.path(), "backend"), None);
        record(dir.path(), "backend", "abc").unwrap();
        assert_eq!(recorded(dir.path(), "backend").as_deref(), Some("abc"));
        assert!(dir.path().join(".vldeploy/prepared/backend").is_file());
    }
}
