//! Writing a managed file on a host: uploaded in place inside the stack's directory (the connection's user owns
//! it), or staged there and installed by root's helper where only root may write (`/etc/cron.d`).

use crate::layout::{STAGING, stack_dir};
use crate::remote::Command;
use crate::transport::{Remote, TransportError};

/// How a file at `path` is written: `None` in place, else the staged path (relative to the stack's directory)
/// and the helper's command that installs it.
pub fn installer(stack: &str, path: &str) -> Option<(String, Command)> {
    let entry = path.strip_prefix("/etc/cron.d/vldeploy-")?;
    let name = if entry == stack {
        None
    } else {
        Some(entry.strip_prefix(stack)?.strip_prefix('-')?)
    };
    let staged = format!("{STAGING}/cron-{}", name.unwrap_or("stack"));
    let install = crate::remote::root::cron_install(stack, name, &staged);
    Some((staged, install))
}

/// Writes `content` to `path` with `mode`, atomically, as [`installer`] says.
pub async fn write(
    remote: &Remote,
    stack: &str,
    path: &str,
    content: &[u8],
    mode: u32,
) -> Result<(), TransportError> {
    match installer(stack, path) {
        None => remote.upload(path, content, mode).await,
        Some((staged, install)) => {
            remote
                .upload(&format!("{}/{staged}", stack_dir(stack)), content, 0o600)
                .await?;
            remote.run(&install).await.map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_entries_are_staged_and_installed_by_the_helper() {
        let (staged, cmd) =
            installer("shop", "/etc/cron.d/vldeploy-shop-backup").unwrap_or_else(|| panic!());
        assert_eq!(staged, "staging/cron-backup");
        assert_eq!(
            cmd.text(),
            "vldeploy_root cron-install shop backup staging/cron-backup"
        );
        let (staged, cmd) =
            installer("shop", "/etc/cron.d/vldeploy-shop").unwrap_or_else(|| panic!());
        assert_eq!(staged, "staging/cron-stack");
        assert_eq!(
            cmd.text(),
            "vldeploy_root cron-install shop staging/cron-stack"
        );
        assert!(installer("shop", "/var/lib/vldeploy/shop/nginx/site.conf").is_none());
        // Another stack's entry is not this stack's to install.
        assert!(installer("shop", "/etc/cron.d/vldeploy-shopfront-backup").is_none());
        assert!(installer("shop", "/etc/cron.d/other").is_none());
    }
}
