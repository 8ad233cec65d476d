//! Commands on managed files: remove, keep and put back the previous version, make directories, read a time.

use super::{Command, q};

/// Removes files; a missing one is fine.
pub fn remove<S: AsRef<str>>(paths: &[S]) -> Command {
    Command::argv(["rm", "-f"]).operands(paths)
}

/// Makes directories and their parents.
pub fn make_dirs<S: AsRef<str>>(paths: &[S]) -> Command {
    Command::argv(["mkdir", "-p"]).operands(paths)
}

/// Keeps a copy of `path` as `<path>.prev`; nothing when there is no file yet.
pub fn keep_previous(path: &str) -> Command {
    Command::script(format!("cp -p {0} {0}.prev 2>/dev/null || true", q(path)))
}

/// Puts `<path>.prev` back over `path`, when there is one.
pub fn restore_previous(path: &str) -> Command {
    let p = q(path);
    Command::script(format!("[ -f {p}.prev ] && mv -f {p}.prev {p}"))
}

/// Prints the modification time of `path`, in seconds since the epoch.
pub fn mtime(path: &str) -> Command {
    Command::argv(["stat", "-c", "%Y", "--"]).operands(&[path])
}

/// Gives `staged` the name `path` unless `path` exists already (a hard link never replaces), then drops `staged`.
pub fn link_once(staged: &str, path: &str) -> Command {
    Command::script(format!(
        "ln {0} {1} 2>/dev/null; rm -f {0}",
        q(staged),
        q(path)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_operands_never_options() {
        assert_eq!(
            remove(&["/var/lib/vldeploy/s/releases/a.json", "-rf"]).text(),
            "rm -f /var/lib/vldeploy/s/releases/a.json '-rf'"
        );
        assert_eq!(
            make_dirs(&["/srv/a b", "/srv/c"]).text(),
            "mkdir -p '/srv/a b' /srv/c"
        );
        assert_eq!(mtime("/b/x.gz").text(), "stat -c %Y -- /b/x.gz");
    }

    #[test]
    fn previous_versions_are_kept_and_put_back() {
        assert_eq!(
            keep_previous("/s/nginx/conf.d/site.conf").text(),
            "cp -p /s/nginx/conf.d/site.conf /s/nginx/conf.d/site.conf.prev 2>/dev/null || true"
        );
        assert_eq!(
            restore_previous("/s/a b").text(),
            "[ -f '/s/a b'.prev ] && mv -f '/s/a b'.prev '/s/a b'"
        );
    }

    #[test]
    fn link_once_never_replaces() {
        assert_eq!(
            link_once("/s/hash.key.new-7", "/s/hash.key").text(),
            "ln /s/hash.key.new-7 /s/hash.key 2>/dev/null; rm -f /s/hash.key.new-7"
        );
    }
}
