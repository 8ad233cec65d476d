//! The facts' commands: what the host's managed files hold, read in one round trip.

use std::fmt::Write as _;

use super::{Command, q, qs};

/// Prints `sha256sum` lines for the files that exist, then `--`, then for each `(name, marker)` a line
/// `name <marker contents>`.
pub fn file_hashes<S: AsRef<str>>(paths: &[S], markers: &[(String, String)]) -> Command {
    let mut cmd = format!("sha256sum -- {} 2>/dev/null; echo '--'", qs(paths));
    for (name, marker) in markers {
        let _ = write!(
            cmd,
            "; printf '%s ' {}; cat {} 2>/dev/null; echo",
            q(name),
            q(marker)
        );
    }
    Command::script(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hashes_then_loaded_markers() {
        assert_eq!(
            file_hashes(
                &["/s/www/index.html", "/s/x y"],
                &[("nginx".into(), "/s/nginx/.loaded".into())]
            )
            .text(),
            "sha256sum -- /s/www/index.html '/s/x y' 2>/dev/null; echo '--'; printf '%s ' nginx; cat /s/nginx/.loaded 2>/dev/null; echo"
        );
    }
}
