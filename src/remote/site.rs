//! The storefront's commands: unpack a release directory from a tar stream, switch `current` to it with one
//! rename, prune old releases, read which release serves, read and write the catalog seed's record.

use super::{Command, q};
use crate::layout;

/// Unpacks the tar archive on stdin as the release `hash`, unless the host has it already: into a temporary
/// directory first, which then takes the release's name with one `mv`, so a release directory is never partial.
pub fn unpack(stack: &str, hash: &str) -> Command {
    let dir = q(&layout::site_dir(stack));
    let release = q(&layout::site_release(stack, hash));
    let incoming = q(&format!("{}/.incoming-{hash}", layout::site_dir(stack)));
    Command::script(format!(
        "mkdir -p {dir} && if [ -d {release} ]; then cat >/dev/null; else rm -rf {incoming} && mkdir {incoming} \
         && tar -x -f - -C {incoming} --no-same-owner && chmod -R a+rX {incoming} && mv -T {incoming} {release}; fi"
    ))
}

/// Points `current` at the release `hash`: a new symlink under a temporary name, renamed over `current` (one
/// `rename(2)`: every request sees either the old release or the new one).
pub fn switch(stack: &str, hash: &str) -> Command {
    let release = q(&layout::site_release(stack, hash));
    let temp = q(&format!("{}/.current-{hash}", layout::site_dir(stack)));
    let current = q(&layout::site_current(stack));
    Command::script(format!(
        "[ -d {release} ] && ln -sfn {h} {temp} && mv -T {temp} {current}",
        h = q(hash)
    ))
}

/// Removes every release directory but those of `keep` (and `current`, the symlink).
pub fn prune(stack: &str, keep: &[String]) -> Command {
    let dir = q(&layout::site_dir(stack));
    let mut patterns = vec!["current".to_string()];
    patterns.extend(keep.iter().map(|k| q(k)));
    Command::script(format!(
        "for e in {dir}/* {dir}/.incoming-* {dir}/.current-*; do [ -e \"$e\" ] || [ -L \"$e\" ] || continue; \
         case \"${{e##*/}}\" in {}) ;; *) rm -rf -- \"$e\" ;; esac; done",
        patterns.join("|")
    ))
}

/// Prints the release `current` names (nothing when there is none).
pub fn serving(stack: &str) -> Command {
    let current = q(&layout::site_current(stack));
    Command::script(format!("readlink {current} || true"))
}

/// Lists the release directories the host has, one hash a line.
pub fn kept(stack: &str) -> Command {
    let dir = q(&layout::site_dir(stack));
    Command::script(format!(
        "for e in {dir}/*; do [ -d \"$e\" ] && [ ! -L \"$e\" ] && echo \"${{e##*/}}\"; done; true"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_is_unpacked_beside_and_renamed_into_place() {
        assert_eq!(
            unpack("shop", "0123abcd").text(),
            "mkdir -p /var/lib/vldeploy/shop/site && if [ -d /var/lib/vldeploy/shop/site/0123abcd ]; then cat >/dev/null; \
             else rm -rf /var/lib/vldeploy/shop/site/.incoming-0123abcd && mkdir /var/lib/vldeploy/shop/site/.incoming-0123abcd \
             && tar -x -f - -C /var/lib/vldeploy/shop/site/.incoming-0123abcd --no-same-owner && chmod -R a+rX /var/lib/vldeploy/shop/site/.incoming-0123abcd \
             && mv -T /var/lib/vldeploy/shop/site/.incoming-0123abcd /var/lib/vldeploy/shop/site/0123abcd; fi"
        );
    }

    #[test]
    fn the_switch_is_one_rename_of_a_relative_symlink() {
        assert_eq!(
            switch("shop", "0123abcd").text(),
            "[ -d /var/lib/vldeploy/shop/site/0123abcd ] && ln -sfn 0123abcd /var/lib/vldeploy/shop/site/.current-0123abcd \
             && mv -T /var/lib/vldeploy/shop/site/.current-0123abcd /var/lib/vldeploy/shop/site/current"
        );
    }

    #[test]
    fn prune_keeps_current_and_the_named_releases() {
        assert_eq!(
            prune("shop", &["aa".to_string(), "b b".to_string()]).text(),
            "for e in /var/lib/vldeploy/shop/site/* /var/lib/vldeploy/shop/site/.incoming-* /var/lib/vldeploy/shop/site/.current-*; \
             do [ -e \"$e\" ] || [ -L \"$e\" ] || continue; case \"${e##*/}\" in current|aa|'b b') ;; *) rm -rf -- \"$e\" ;; esac; done"
        );
    }

    #[test]
    fn the_serving_release_and_the_kept_ones_are_read() {
        assert_eq!(
            serving("shop").text(),
            "readlink /var/lib/vldeploy/shop/site/current || true"
        );
        assert_eq!(
            kept("shop").text(),
            "for e in /var/lib/vldeploy/shop/site/*; do [ -d \"$e\" ] && [ ! -L \"$e\" ] && echo \"${e##*/}\"; done; true"
        );
    }

    /// The scripts parse in a real shell, and run there against a directory do what they say.
    #[test]
    fn the_scripts_run_in_sh() {
        for cmd in [
            unpack("s", "h"),
            switch("s", "h"),
            prune("s", &["h".into()]),
            serving("s"),
            kept("s"),
        ] {
            crate::remote::tests::assert_parses_in_sh(&cmd);
        }
    }
}
