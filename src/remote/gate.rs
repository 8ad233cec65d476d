//! The go-live gate's commands: hold a first launch behind the maintenance page, and let it go.

use super::{Command, q};
use crate::layout;

/// Puts the maintenance page up with the gate's marker, unless an operator's page is already up without it.
pub fn hold_first_launch(stack: &str) -> Command {
    Command::script(format!(
        "mkdir -p \"$(dirname {f})\" \"$(dirname {m})\" && if [ ! -e {f} ] || [ -e {m} ]; then touch {f} {m}; fi",
        f = q(&layout::maintenance_flag(stack)),
        m = q(&layout::gate_maintenance(stack)),
    ))
}

/// Succeeds while a first launch is held.
pub fn is_held(stack: &str) -> Command {
    Command::argv(["test", "-e"]).operands(&[layout::gate_maintenance(stack)])
}

/// Takes the gate's maintenance page down; an operator's page (no marker) stays.
pub fn release_first_launch(stack: &str) -> Command {
    Command::script(format!(
        "if [ -e {m} ]; then rm -f {f} {m}; fi",
        f = q(&layout::maintenance_flag(stack)),
        m = q(&layout::gate_maintenance(stack)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_and_release_pair_the_flag_with_the_marker() {
        assert_eq!(
            hold_first_launch("shop").text(),
            "mkdir -p \"$(dirname /var/lib/vldeploy/shop/www/.maintenance)\" \"$(dirname /var/lib/vldeploy/shop/checklist/gate-maintenance)\" && if [ ! -e /var/lib/vldeploy/shop/www/.maintenance ] || [ -e /var/lib/vldeploy/shop/checklist/gate-maintenance ]; then touch /var/lib/vldeploy/shop/www/.maintenance /var/lib/vldeploy/shop/checklist/gate-maintenance; fi"
        );
        assert_eq!(
            release_first_launch("shop").text(),
            "if [ -e /var/lib/vldeploy/shop/checklist/gate-maintenance ]; then rm -f /var/lib/vldeploy/shop/www/.maintenance /var/lib/vldeploy/shop/checklist/gate-maintenance; fi"
        );
        assert_eq!(
            is_held("shop").text(),
            "test -e /var/lib/vldeploy/shop/checklist/gate-maintenance"
        );
    }
}
