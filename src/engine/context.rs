//! A Docker build context: files (from a directory, honouring its `.dockerignore`, or given) packed as a tar.

use std::path::{Path, PathBuf};

use super::EngineError;

/// A build context: files by their path inside the context, with their modes. The one way vldeploy packs
/// what `docker build` reads, for the stack's images and the sandbox's alike.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BuildContext {
    files: Vec<(PathBuf, Vec<u8>, u32)>,
}

impl BuildContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file at `path` (relative, `/`-separated) with `mode`.
    #[must_use]
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.files
            .push((PathBuf::from(path), contents.into(), mode));
        self
    }

    /// The files under `dir` that a build with its `Dockerfile` sends (see [`BuildContext::from_dir_with`]).
    pub fn from_dir(dir: &Path) -> Result<Self, EngineError> {
        Self::from_dir_with(dir, "Dockerfile")
    }

    /// The files under `dir`, leaving out what `.dockerignore` excludes; the Dockerfile and `.dockerignore`
    /// are always sent, whatever `.dockerignore` says, as `docker build` does. Modes are 0755 for an
    /// executable file and 0644 for any other.
    pub fn from_dir_with(dir: &Path, dockerfile: &str) -> Result<Self, EngineError> {
        let fail = |detail: String| EngineError::Context {
            path: dir.display().to_string(),
            detail,
        };
        let mut ctx = Self::new();
        for rel in context_paths(dir, dockerfile)? {
            let full = dir.join(&rel);
            let data =
                std::fs::read(&full).map_err(|e| fail(format!("`{}`: {e}", rel.display())))?;
            let meta = std::fs::metadata(&full).map_err(|e| fail(e.to_string()))?;
            let mode = if is_executable(&meta) { 0o755 } else { 0o644 };
            ctx.files.push((rel, data, mode));
        }
        Ok(ctx)
    }

    /// The context as an uncompressed tar. Entries are sorted and carry fixed timestamps and owners, so the
    /// same files give the same bytes.
    pub fn to_tar(&self) -> Result<Vec<u8>, EngineError> {
        let fail = |detail: String| EngineError::Context {
            path: "build context".to_owned(),
            detail,
        };
        let mut files: Vec<_> = self.files.iter().collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        for (rel, data, mode) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(*mode);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_cksum();
            builder
                .append_data(&mut header, rel, data.as_slice())
                .map_err(|e| fail(format!("`{}`: {e}", rel.display())))?;
        }
        builder.into_inner().map_err(|e| fail(e.to_string()))
    }
}

/// The paths (relative to `dir`) a build of `dir` with `dockerfile` sends: every file `.dockerignore` keeps,
/// and always the Dockerfile and `.dockerignore` themselves.
fn context_paths(dir: &Path, dockerfile: &str) -> Result<Vec<PathBuf>, EngineError> {
    let ignore = std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default();
    let rules = parse_ignore(&ignore);
    let mut paths = Vec::new();
    walk(dir, Path::new(""), &rules, &mut paths).map_err(|e| EngineError::Context {
        path: dir.display().to_string(),
        detail: e.to_string(),
    })?;
    for always in [dockerfile, ".dockerignore"] {
        let rel = PathBuf::from(always);
        if dir.join(&rel).is_file() && !paths.contains(&rel) {
            paths.push(rel);
        }
    }
    paths.sort();
    Ok(paths)
}

/// How recent a file's times may be for its stamp to be trusted: the kernel's clock for file times ticks
/// coarsely, so two writes within one tick can leave the same times.
const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

/// A stamp of the files a build of `dir` sends, from their metadata only (path, size, mode, modification and
/// change times, inode): equal stamps mean the files were not touched, as git's index judges it, so an
/// unchanged context need not be read again to find its image. Any write changes the times; a copy or a
/// checkout changes the inode or the change time. None when a file changed within [`SETTLED`] of `now` (a
/// second write in the same clock tick would not show): such a context is read in full.
pub(super) fn context_stamp(
    dir: &Path,
    dockerfile: &str,
    now: std::time::SystemTime,
) -> Result<Option<String>, EngineError> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    let settled = now
        .checked_sub(SETTLED)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut h = Sha256::new();
    h.update(b"context-stamp\0");
    h.update(dockerfile.as_bytes());
    for rel in context_paths(dir, dockerfile)? {
        let meta = std::fs::metadata(dir.join(&rel)).map_err(|e| EngineError::Context {
            path: dir.display().to_string(),
            detail: format!("`{}`: {e}", rel.display()),
        })?;
        if meta.mtime() >= settled || meta.ctime() >= settled {
            return Ok(None);
        }
        h.update(b"\0");
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update(
            format!(
                "\0{} {:o} {}.{} {}.{} {} {}",
                meta.len(),
                meta.mode(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec(),
                meta.dev(),
                meta.ino()
            )
            .as_bytes(),
        );
    }
    Ok(Some(hex::encode(h.finalize())))
}

/// Packs `dir` into a tar for `docker build`, leaving out what `.dockerignore` excludes (see [`BuildContext`]).
pub fn build_context(dir: &Path, dockerfile: &str) -> Result<Vec<u8>, EngineError> {
    BuildContext::from_dir_with(dir, dockerfile)?.to_tar()
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

struct Rule {
    pattern: glob::Pattern,
    negate: bool,
}

fn parse_ignore(text: &str) -> Vec<Rule> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (negate, pat) = l.strip_prefix('!').map_or((false, l), |p| (true, p));
            let pat = pat
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/');
            glob::Pattern::new(pat)
                .ok()
                .map(|pattern| Rule { pattern, negate })
        })
        .collect()
}

/// Docker's rule: a path is excluded by the last pattern matching it or any of its parent directories.
fn excluded(rules: &[Rule], rel: &Path) -> bool {
    let opts = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    let mut out = false;
    for rule in rules {
        let matches = rel
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| rule.pattern.matches_path_with(a, opts));
        if matches {
            out = !rule.negate;
        }
    }
    out
}

fn walk(root: &Path, rel: &Path, rules: &[Rule], out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let child = rel.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &child, rules, out)?;
        } else if kind.is_file() && !excluded(rules, &child) {
            out.push(child);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn dockerignore_star_with_exception_keeps_only_the_exception() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("dist")).unwrap();
        std::fs::create_dir_all(d.path().join("src")).unwrap();
        std::fs::write(d.path().join("dist/app"), b"bin").unwrap();
        std::fs::write(d.path().join("src/main.rs"), b"fn main(){}").unwrap();
        std::fs::write(d.path().join("Dockerfile"), b"FROM x").unwrap();
        std::fs::write(d.path().join(".dockerignore"), "*\n!dist/\n").unwrap();
        let tar = build_context(d.path(), "Dockerfile").unwrap();
        assert_eq!(names(&tar), vec![".dockerignore", "Dockerfile", "dist/app"]);
    }

    #[test]
    fn same_files_give_the_same_bytes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"1").unwrap();
        std::fs::write(d.path().join("b"), b"2").unwrap();
        let one = build_context(d.path(), "Dockerfile").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(d.path().join("a"), b"1").unwrap();
        assert_eq!(one, build_context(d.path(), "Dockerfile").unwrap());
        assert_eq!(names(&one), vec!["a", "b"]);
    }

    #[test]
    fn files_given_and_files_read_from_a_directory_pack_the_same() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("Dockerfile"), b"FROM x\n").unwrap();
        std::fs::write(d.path().join("etc/conf"), b"c").unwrap();
        let given = BuildContext::new()
            .file("etc/conf", "c", 0o644)
            .file("Dockerfile", "FROM x\n", 0o644)
            .to_tar()
            .unwrap();
        assert_eq!(
            given,
            BuildContext::from_dir(d.path()).unwrap().to_tar().unwrap()
        );
        assert_eq!(names(&given), vec!["Dockerfile", "etc/conf"]);
    }

    #[test]
    fn missing_directory_is_a_clear_error() {
        let err = build_context(Path::new("/nonexistent/ctx"), "Dockerfile").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the build context `/nonexistent/ctx` cannot be read"),
            "{err}"
        );
    }

    #[test]
    fn the_stamp_changes_with_a_kept_file_and_not_with_an_ignored_one() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(d.path().join(".dockerignore"), "target\n").unwrap();
        std::fs::create_dir_all(d.path().join("target")).unwrap();
        std::fs::write(d.path().join("app.txt"), "one").unwrap();
        // Judged from a moment well after these writes, as a later run would.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        let stamp = |dockerfile: &str| context_stamp(d.path(), dockerfile, later).unwrap().unwrap();
        let first = stamp("Dockerfile");
        assert_eq!(stamp("Dockerfile"), first);
        std::fs::write(d.path().join("target/junk"), "ignored").unwrap();
        assert_eq!(stamp("Dockerfile"), first);
        std::fs::write(d.path().join("new.txt"), "").unwrap();
        let added = stamp("Dockerfile");
        assert_ne!(added, first);
        std::fs::remove_file(d.path().join("new.txt")).unwrap();
        assert_eq!(stamp("Dockerfile"), first);
        // A file replaced by one of the same length: another inode.
        std::fs::write(d.path().join("app.new"), "two").unwrap();
        std::fs::rename(d.path().join("app.new"), d.path().join("app.txt")).unwrap();
        assert_ne!(stamp("Dockerfile"), first);
        assert_ne!(stamp("Other"), stamp("Dockerfile"));
    }

    #[test]
    fn a_file_written_within_the_clock_tick_margin_gives_no_stamp() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let now = std::time::SystemTime::now();
        assert_eq!(context_stamp(d.path(), "Dockerfile", now).unwrap(), None);
        let later = now + SETTLED + std::time::Duration::from_secs(2);
        assert!(
            context_stamp(d.path(), "Dockerfile", later)
                .unwrap()
                .is_some()
        );
    }
}
