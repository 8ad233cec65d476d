//! The commands of a restore from a local file: receive the backup on stdin, then put it in place.

use super::{Command, q};

/// Receives a backup on stdin into `tmp` in `dir` (made private).
pub fn receive(dir: &str, tmp: &str) -> Command {
    Command::script(format!(
        "umask 077 && mkdir -p {dir} && cat > {tmp}",
        dir = q(dir),
        tmp = q(tmp)
    ))
}

/// Puts a received backup in place under its name.
pub fn place(tmp: &str, path: &str) -> Command {
    Command::argv(["mv", "-f", "--"]).operands(&[tmp, path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_backup_is_private_until_placed() {
        assert_eq!(
            receive("/b", "/b/.n.tmp").text(),
            "umask 077 && mkdir -p /b && cat > /b/.n.tmp"
        );
        assert_eq!(place("/b/.n.tmp", "/b/n").text(), "mv -f -- /b/.n.tmp /b/n");
        assert_eq!(place("-a", "b c").text(), "mv -f -- '-a' 'b c'");
    }
}
