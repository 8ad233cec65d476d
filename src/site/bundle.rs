//! A storefront release as files: read from the `site:` directory, assets renamed after their content, named by
//! the hash of everything in it, packed as a tar archive.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::SiteError;

/// The most a release may hold: a storefront is pages, styles and scripts, not a media library.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The directory under which files get content-hashed names (served `Cache-Control: immutable`).
const ASSETS: &str = "assets/";

/// Files whose references to assets are rewritten to the hashed names.
const REWRITTEN: [&str; 3] = ["html", "css", "js"];

/// The files of one release, by path relative to the release directory, and its content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// 16 hex digits of SHA-256 over every path and content: the release directory's name.
    pub hash: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    /// Reads `dir` (hidden files left out; a symlink is refused, so nothing outside the directory is served).
    pub fn read(dir: &Path) -> Result<Self, SiteError> {
        let shown = dir.display().to_string();
        let mut files = BTreeMap::new();
        let mut total = 0;
        walk(dir, "", &mut files, &mut total)?;
        if total > MAX_BYTES {
            return Err(SiteError::TooLarge {
                dir: shown,
                bytes: total,
                limit: MAX_BYTES,
            });
        }
        if !files.contains_key("index.html") {
            return Err(SiteError::NoIndex { dir: shown });
        }
        Ok(Self::from_files(files))
    }

    /// A release of `files` as they are in the directory: each file under `assets/` renamed
    /// `name.<12 hex digits of its content>.ext`, and references to it in pages, styles and scripts rewritten.
    pub fn from_files(files: BTreeMap<String, Vec<u8>>) -> Self {
        let renamed: BTreeMap<String, String> = files
            .iter()
            .filter(|(path, _)| path.starts_with(ASSETS) && !has_extension(path, "html"))
            .map(|(path, bytes)| (path.clone(), hashed_name(path, bytes)))
            .collect();
        let mut out = BTreeMap::new();
        for (path, bytes) in files {
            let bytes = if REWRITTEN.iter().any(|ext| has_extension(&path, ext)) {
                rewrite(&bytes, &renamed)
            } else {
                bytes
            };
            let name = renamed.get(&path).cloned().unwrap_or(path);
            out.insert(name, bytes);
        }
        let mut digest = Sha256::new();
        for (path, bytes) in &out {
            digest.update(path.as_bytes());
            digest.update([0]);
            digest.update((bytes.len() as u64).to_be_bytes());
            digest.update(bytes);
        }
        let hash = hex::encode(&digest.finalize()[..8]);
        Self { hash, files: out }
    }

    /// The release as a tar archive: regular files of mode 0644, owned by nobody in particular, dated 0, so the
    /// same content always packs to the same bytes.
    pub fn archive(&self) -> Result<Vec<u8>, SiteError> {
        let mut builder = tar::Builder::new(Vec::new());
        let fail = |e: std::io::Error| SiteError::Read {
            path: self.hash.clone(),
            detail: format!("packing the release failed: {e}"),
        };
        for (path, bytes) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, path, bytes.as_slice())
                .map_err(fail)?;
        }
        builder.into_inner().map_err(fail)
    }
}

fn walk(
    dir: &Path,
    prefix: &str,
    files: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
) -> Result<(), SiteError> {
    let fail = |path: &Path, detail: String| SiteError::Read {
        path: path.display().to_string(),
        detail,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| fail(dir, e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| fail(dir, e.to_string()))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(fail(&path, "its name is not UTF-8".into()));
        };
        if name.starts_with('.') {
            continue;
        }
        if name.chars().any(|c| c.is_control() || c == '\\') {
            return Err(fail(
                &path,
                "its name holds a control character or `\\`".into(),
            ));
        }
        let kind = entry.file_type().map_err(|e| fail(&path, e.to_string()))?;
        let rel = format!("{prefix}{name}");
        if kind.is_symlink() {
            return Err(fail(
                &path,
                "it is a symlink; a storefront holds regular files and directories only".into(),
            ));
        } else if kind.is_dir() {
            walk(&path, &format!("{rel}/"), files, total)?;
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).map_err(|e| fail(&path, e.to_string()))?;
            *total += bytes.len() as u64;
            if *total > MAX_BYTES {
                return Ok(());
            }
            files.insert(rel, bytes);
        }
    }
    Ok(())
}

/// Whether `path` ends in `.ext`, in any case.
fn has_extension(path: &str, ext: &str) -> bool {
    Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// `assets/shop.css` → `assets/shop.<12 hex digits>.css`.
fn hashed_name(path: &str, bytes: &[u8]) -> String {
    let hash = &hex::encode(Sha256::digest(bytes))[..12];
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    let named = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{hash}.{ext}"),
        _ => format!("{file}.{hash}"),
    };
    if dir.is_empty() {
        named
    } else {
        format!("{dir}/{named}")
    }
}

/// Rewrites quoted (and CSS `url(…)`) references to renamed assets, absolute (`"/assets/shop.css"`) or relative
/// to the top (`"assets/shop.css"`).
fn rewrite(bytes: &[u8], renamed: &BTreeMap<String, String>) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return bytes.to_vec();
    };
    let mut text = text.to_owned();
    for (old, new) in renamed {
        for (open, close) in [("\"", "\""), ("'", "'"), ("(", ")")] {
            for slash in ["/", ""] {
                text = text.replace(
                    &format!("{open}{slash}{old}{close}"),
                    &format!("{open}{slash}{new}{close}"),
                );
            }
        }
    }
    text.into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        list.iter()
            .map(|(p, c)| ((*p).to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn assets_get_content_names_and_pages_follow() {
        let b = Bundle::from_files(files(&[
            (
                "index.html",
                "<link href=\"/assets/shop.css\"><script src='assets/shop.js'></script>",
            ),
            ("assets/shop.css", "body{}"),
            ("assets/shop.js", "1"),
        ]));
        let css = hashed_name("assets/shop.css", b"body{}");
        let js = hashed_name("assets/shop.js", b"1");
        assert_eq!(css, "assets/shop.7c98040a5416.css");
        assert!(
            js.starts_with("assets/shop.") && has_extension(&js, "js"),
            "{js}"
        );
        assert_eq!(
            String::from_utf8(b.files["index.html"].clone()).unwrap(),
            format!("<link href=\"/{css}\"><script src='{js}'></script>")
        );
        assert_eq!(
            b.files.keys().cloned().collect::<Vec<_>>(),
            vec![js, css, "index.html".to_string()]
        );
        assert_eq!(b.hash.len(), 16);
    }

    #[test]
    fn the_hash_follows_content_and_names() {
        let a = Bundle::from_files(files(&[("index.html", "a")]));
        let same = Bundle::from_files(files(&[("index.html", "a")]));
        let other = Bundle::from_files(files(&[("index.html", "b")]));
        let moved = Bundle::from_files(files(&[("index.htm", "a")]));
        assert_eq!(a.hash, same.hash);
        assert_ne!(a.hash, other.hash);
        assert_ne!(a.hash, moved.hash);
        assert_eq!(a.archive().unwrap(), same.archive().unwrap());
    }

    #[test]
    fn a_directory_is_read_without_hidden_files_and_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(dir.path().join(".DS_Store"), "x").unwrap();
        std::fs::write(dir.path().join("assets/a.css"), "p{}").unwrap();
        let b = Bundle::read(dir.path()).unwrap();
        assert_eq!(b.files.len(), 2);
        let bytes = b.archive().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            vec![hashed_name("assets/a.css", b"p{}"), "index.html".into()]
        );

        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        let e = Bundle::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("passwd`: it is a symlink"), "{e}");
    }

    #[test]
    fn a_site_without_an_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("home.html"), "x").unwrap();
        let e = Bundle::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("has no `index.html` at its top"), "{e}");
    }
}
