//! The small shell snippets behind `upload` and `read_file`.

use crate::remote::shell_quote;

/// Exit status `read_file`'s snippet uses to say "no such file".
pub(crate) const MISSING_STATUS: i32 = 3;

/// Why a path cannot be written to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadPath(pub &'static str);

/// A path made safe to pass to `mkdir`, `cat`, `chmod` and `mv` without `--`: relative paths gain `./`.
fn anchored(path: &str) -> Result<String, BadPath> {
    if path.is_empty() {
        return Err(BadPath("the path is empty"));
    }
    if path.contains('\0') {
        return Err(BadPath("the path contains a NUL byte"));
    }
    if path.ends_with('/') {
        return Err(BadPath("the path names a directory"));
    }
    if path.starts_with('/') || path.starts_with("./") {
        Ok(path.to_owned())
    } else {
        Ok(format!("./{path}"))
    }
}

/// The snippet that writes its stdin to `path` atomically with `mode`.
///
/// Parent directories are created with the remote default umask; the file itself is written under
/// `umask 077` to a temporary name unique to this shell (`<path>.vldeploy-tmp.<pid>`), so it is never
/// readable by others before `chmod` and concurrent uploads to one path never share a temporary file.
/// `mv -fT` then replaces `path` in one rename (`-T`: never into a directory that happens to sit at `path`).
/// On any failure the temporary file is removed.
pub(crate) fn upload_command(path: &str, mode: u32) -> Result<String, BadPath> {
    let path = anchored(path)?;
    let dir = match path.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
        None => ".".to_owned(),
    };
    let mode = mode & 0o7777;
    Ok(format!(
        "d={dir}; t={tmp}.$$; mkdir -p \"$d\" && (umask 077 && cat > \"$t\") && chmod {mode:04o} \"$t\" && mv -fT \"$t\" {path} || {{ rc=$?; rm -f \"$t\"; exit $rc; }}",
        dir = shell_quote(&dir),
        tmp = shell_quote(&format!("{path}.vldeploy-tmp")),
        path = shell_quote(&path),
    ))
}

/// The snippet that prints `path`, or exits with [`MISSING_STATUS`] when there is no such file.
pub(crate) fn read_command(path: &str) -> Result<String, BadPath> {
    let path = anchored(path)?;
    let q = shell_quote(&path);
    Ok(format!(
        "if [ -e {q} ]; then exec cat {q}; else exit {MISSING_STATUS}; fi"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_snippet_is_exact() {
        assert_eq!(
            upload_command("/etc/app/my file.conf", 0o640).expect("valid"),
            "d=/etc/app; t='/etc/app/my file.conf.vldeploy-tmp'.$$; mkdir -p \"$d\" && (umask 077 && cat > \"$t\") && chmod 0640 \"$t\" && mv -fT \"$t\" '/etc/app/my file.conf' || { rc=$?; rm -f \"$t\"; exit $rc; }"
        );
        assert!(
            upload_command("/top", 0o600)
                .expect("valid")
                .starts_with("d=/; t=/top.vldeploy-tmp.$$;")
        );
        assert!(
            upload_command("-x", 0o600)
                .expect("valid")
                .starts_with("d=.; t=./-x.vldeploy-tmp.$$;")
        );
    }

    #[test]
    fn bad_paths_are_refused() {
        assert_eq!(upload_command("", 0o600), Err(BadPath("the path is empty")));
        assert_eq!(
            upload_command("/etc/", 0o600),
            Err(BadPath("the path names a directory"))
        );
        assert_eq!(
            read_command("a\0b"),
            Err(BadPath("the path contains a NUL byte"))
        );
    }

    /// File names that break out of a naive command line.
    const HOSTILE_NAMES: &[&str] = &[
        "a b",
        "it's",
        "$(touch INJECTED)",
        "`touch INJECTED`",
        "x; touch INJECTED",
        "x && touch INJECTED #",
        "x\ntouch INJECTED",
        "\"q\"",
        "-rf",
        "*",
        "%s%%",
        "\\",
        "{a,b}",
        "ünï\t",
    ];

    #[test]
    fn upload_and_read_snippets_hold_hostile_paths_in_a_real_shell() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().expect("temp dir");
        for name in HOSTILE_NAMES {
            let path = dir.path().join("sub").join(name);
            let path = path.to_str().expect("utf-8");
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(upload_command(path, 0o640).expect("valid"))
                .current_dir(dir.path())
                .stdin(Stdio::piped())
                .spawn()
                .expect("sh runs");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(name.as_bytes())
                .expect("write");
            assert!(child.wait().expect("wait").success(), "{name:?}");
            assert_eq!(std::fs::read_to_string(path).expect("written"), *name);
            let out = Command::new("sh")
                .arg("-c")
                .arg(read_command(path).expect("valid"))
                .current_dir(dir.path())
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), *name);
        }
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("sub"))
            .expect("listed")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected: Vec<String> = HOSTILE_NAMES.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        assert_eq!(
            left, expected,
            "only the named files exist: no temporary left, nothing injected"
        );
        assert!(!dir.path().join("INJECTED").exists());
    }

    #[test]
    fn read_snippet_is_exact() {
        assert_eq!(
            read_command("/srv/state.json").expect("valid"),
            "if [ -e /srv/state.json ]; then exec cat /srv/state.json; else exit 3; fi"
        );
    }
}
