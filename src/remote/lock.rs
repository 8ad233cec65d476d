//! The deploy lock's commands: take it atomically, read its holder, refresh it, free it.

use super::{Command, q};
use crate::layout;

/// Takes the lock with its holder's record on stdin. Prints `taken`, or `held`, the holder's record and
/// `now=… mtime=…` (seconds) so the caller can tell a stale lock. `mkdir` is atomic: exactly one of two racing
/// commands creates the directory.
pub fn acquire(stack: &str) -> Command {
    let parent = q(&layout::stack_dir(stack));
    let d = q(&layout::lock_dir(stack));
    Command::script(format!(
        "mkdir -p {parent} && if mkdir {d} 2>/dev/null; then cat > {d}/info.json && echo taken; else echo held; \
         cat {d}/info.json 2>/dev/null; echo; echo \"now=$(date +%s) mtime=$(stat -c %Y {d}/info.json 2>/dev/null || stat -c %Y {d} 2>/dev/null || echo 0)\"; fi"
    ))
}

/// Removes the lock whoever holds it.
pub fn remove(stack: &str) -> Command {
    Command::argv(["rm", "-rf"]).operands(&[layout::lock_dir(stack)])
}

/// Removes the lock if `token` still holds it; succeeds either way.
pub fn release(stack: &str, token: &str) -> Command {
    let d = q(&layout::lock_dir(stack));
    Command::script(format!(
        "grep -q {token} {d}/info.json 2>/dev/null && rm -rf {d}; true",
        token = q(token)
    ))
}

/// Shows the holder is alive.
pub fn touch(stack: &str) -> Command {
    Command::argv(["touch"]).operands(&[layout::lock_info(stack)])
}

/// Prints the holder's record, then the seconds since it was last refreshed.
pub fn inspect(stack: &str) -> Command {
    let d = q(&layout::lock_dir(stack));
    Command::script(format!(
        "cat {d}/info.json 2>/dev/null && echo && echo $(( $(date +%s) - $(stat -c %Y {d}/info.json) ))"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_makes_the_directory_atomically() {
        assert_eq!(
            acquire("shop").text(),
            "mkdir -p /var/lib/vldeploy/shop && if mkdir /var/lib/vldeploy/shop/lock 2>/dev/null; then cat > /var/lib/vldeploy/shop/lock/info.json && echo taken; else echo held; \
             cat /var/lib/vldeploy/shop/lock/info.json 2>/dev/null; echo; echo \"now=$(date +%s) mtime=$(stat -c %Y /var/lib/vldeploy/shop/lock/info.json 2>/dev/null || stat -c %Y /var/lib/vldeploy/shop/lock 2>/dev/null || echo 0)\"; fi"
        );
    }

    #[test]
    fn release_checks_the_token() {
        assert_eq!(
            release("shop", "it's").text(),
            r"grep -q 'it'\''s' /var/lib/vldeploy/shop/lock/info.json 2>/dev/null && rm -rf /var/lib/vldeploy/shop/lock; true"
        );
        assert_eq!(remove("a b").text(), "rm -rf '/var/lib/vldeploy/a b/lock'");
        assert_eq!(
            touch("shop").text(),
            "touch /var/lib/vldeploy/shop/lock/info.json"
        );
    }

    #[test]
    fn inspect_prints_the_record_and_its_age() {
        assert_eq!(
            inspect("shop").text(),
            "cat /var/lib/vldeploy/shop/lock/info.json 2>/dev/null && echo && echo $(( $(date +%s) - $(stat -c %Y /var/lib/vldeploy/shop/lock/info.json) ))"
        );
        assert!(!inspect("shop").needs_root());
    }
}
