//! The audit log's commands: append an entry from stdin, read the last ones.

use super::{Command, q};
use crate::layout;

/// Appends stdin to the audit log (created private to its owner).
pub fn append(stack: &str) -> Command {
    Command::script(format!(
        "mkdir -p {dir} && umask 077 && cat >> {p}",
        dir = q(&layout::stack_dir(stack)),
        p = q(&layout::audit_log(stack))
    ))
}

/// Prints the last `n` entries; nothing when there is no log yet.
pub fn tail(stack: &str, n: usize) -> Command {
    Command::script(format!(
        "tail -n {n} {} 2>/dev/null",
        q(&layout::audit_log(stack))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_and_tail_name_the_log() {
        assert_eq!(
            append("shop").text(),
            "mkdir -p /var/lib/vldeploy/shop && umask 077 && cat >> /var/lib/vldeploy/shop/audit.log"
        );
        assert_eq!(
            tail("a b", 20).text(),
            "tail -n 20 '/var/lib/vldeploy/a b/audit.log' 2>/dev/null"
        );
    }
}
