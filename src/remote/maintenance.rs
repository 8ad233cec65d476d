//! The maintenance flag's commands: the one file whose presence makes nginx answer `/api/` with a 503.

use super::{Command, q};
use crate::layout;

/// Prints `missing` (the stack is not deployed), `off`, or `on <flag mtime> <now>` in seconds.
pub fn probe(stack: &str) -> Command {
    Command::script(format!(
        "d={dir}; f={flag}; if [ ! -d \"$d\" ]; then echo missing; elif [ -e \"$f\" ]; then echo \"on $(stat -c %Y \"$f\") $(date +%s)\"; else echo off; fi",
        dir = q(&layout::www_dir(stack)),
        flag = q(&layout::maintenance_flag(stack)),
    ))
}

/// Puts the maintenance page up.
pub fn set(stack: &str) -> Command {
    Command::argv(["touch"]).operands(&[layout::maintenance_flag(stack)])
}

/// Takes the maintenance page down.
pub fn lift(stack: &str) -> Command {
    Command::argv(["rm", "-f"]).operands(&[layout::maintenance_flag(stack)])
}

/// Succeeds when the maintenance page is up.
pub fn is_set(stack: &str) -> Command {
    Command::argv(["test", "-e"]).operands(&[layout::maintenance_flag(stack)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_the_www_directory_and_the_flag() {
        assert_eq!(
            probe("shop").text(),
            "d=/var/lib/vldeploy/shop/www; f=/var/lib/vldeploy/shop/www/.maintenance; if [ ! -d \"$d\" ]; then echo missing; elif [ -e \"$f\" ]; then echo \"on $(stat -c %Y \"$f\") $(date +%s)\"; else echo off; fi"
        );
    }

    #[test]
    fn set_lift_and_test_touch_one_file() {
        assert_eq!(
            set("shop").text(),
            "touch /var/lib/vldeploy/shop/www/.maintenance"
        );
        assert_eq!(
            lift("a b").text(),
            "rm -f '/var/lib/vldeploy/a b/www/.maintenance'"
        );
        assert_eq!(
            is_set("shop").text(),
            "test -e /var/lib/vldeploy/shop/www/.maintenance"
        );
    }
}
