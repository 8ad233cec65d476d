//! The host's layout: every path vldeploy manages on a host, and the names and ports of what it runs there.
//!
//! A bottom module: every layer (planner, engine, state, tls, firewall, backup, checklist) asks it where a thing
//! lives instead of asking each other.

/// How long one remote command may take when the environment sets no `command_timeout`.
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_mins(10);

/// The root of everything vldeploy keeps on a host.
pub const ROOT: &str = "/var/lib/vldeploy";

/// The order containers start in: each after what it depends on.
pub const SERVICES: [&str; 3] = ["postgres", "backend", "nginx"];

/// The port the backend listens on inside the private network when the stack names none.
pub const BACKEND_PORT: u16 = 8080;

/// Where the vldeploy binary that runs the renewal job lives on the host: in the stack's directory, which the
/// connection's user owns.
pub fn host_binary(stack: &str) -> String {
    format!("{}/bin/vldeploy", stack_dir(stack))
}

/// The directory of vldeploy's root helper (root's, 0755).
pub const HELPER_DIR: &str = "/usr/local/lib/vldeploy";

/// The root helper a user that is not root runs through `sudo -n`, and nothing else.
pub const HELPER_PATH: &str = "/usr/local/lib/vldeploy/vldeploy-root";

/// Where a user that is not root stages files root's steps install (relative to the stack's directory).
pub const STAGING: &str = "staging";

/// The nftables table vldeploy owns; nothing else of the host's ruleset is touched.
pub const FIREWALL_TABLE: &str = "inet vldeploy";

/// Where each firewall apply keeps its candidate, the saved previous table and the revert timer (root's own).
pub const FIREWALL_STATE_DIR: &str = "/var/lib/vldeploy/firewall";

/// The installed firewall ruleset, loaded at boot.
pub const FIREWALL_RULESET: &str = "/etc/vldeploy/firewall.nft";

/// The systemd unit that loads the firewall ruleset at boot.
pub const FIREWALL_UNIT: &str = "vldeploy-firewall.service";

/// Where that unit goes.
pub const FIREWALL_UNIT_PATH: &str = "/etc/systemd/system/vldeploy-firewall.service";

/// The host directory holding this stack's files, state and audit log.
pub fn stack_dir(stack: &str) -> String {
    format!("{ROOT}/{stack}")
}

/// The file that records which nginx configuration the running nginx has loaded.
pub fn loaded_marker(stack: &str, service: &str) -> String {
    format!("{}/{service}/.loaded", stack_dir(stack))
}

/// The container name of a service, as the playbook knows it (`vl_backend`).
pub fn container_name(service: &str) -> String {
    format!("vl_{service}")
}

/// The network only the stack's containers share.
pub fn private_network(stack: &str) -> String {
    format!("{stack}_private")
}

/// The network nginx reaches the serving backend releases on. A release joins it, under [`serving_name`], only
/// once it is healthy and allowed to serve, and is stopped before it leaves it.
pub fn serving_network(stack: &str) -> String {
    format!("{stack}_serving")
}

/// The stable name of a service's serving releases on the serving network: what nginx resolves (Docker's DNS
/// answers with every container carrying that alias). On a Swarm it is the name of a `dnsrr` service.
pub fn serving_name(service: &str) -> String {
    format!("{service}-live")
}

/// The network nginx publishes its ports from.
pub fn public_network(stack: &str) -> String {
    format!("{stack}_public")
}

/// The Docker volume behind a named volume of the stack.
pub fn volume_name(stack: &str, volume: &str) -> String {
    format!("{stack}_{volume}")
}

/// The first 16 hex digits of a SHA-256: enough to tell versions apart, too short to be worth reversing.
pub fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

/// An image id (`sha256:3f2a9c1b0d4e…`) shortened to its first 12 hex digits, as tags and messages show it.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// The deploy lock's directory (made atomically by `mkdir`).
pub fn lock_dir(stack: &str) -> String {
    format!("{}/lock", stack_dir(stack))
}

/// The lock holder's record inside the lock directory.
pub fn lock_info(stack: &str) -> String {
    format!("{}/info.json", lock_dir(stack))
}

/// The append-only audit log.
pub fn audit_log(stack: &str) -> String {
    format!("{}/audit.log", stack_dir(stack))
}

/// The host's key for hashing secret values.
pub fn hash_key(stack: &str) -> String {
    format!("{}/hash.key", stack_dir(stack))
}

/// The index of the stack's releases.
pub fn releases_index(stack: &str) -> String {
    format!("{}/releases.json", stack_dir(stack))
}

/// One release's record.
pub fn release_file(stack: &str, id: &str) -> String {
    format!("{}/releases/{id}.json", stack_dir(stack))
}

/// The journal of a restore in progress.
pub fn restore_journal(stack: &str) -> String {
    format!("{}/restore.json", stack_dir(stack))
}

/// The directory nginx serves the site's static files from.
pub fn www_dir(stack: &str) -> String {
    format!("{}/www", stack_dir(stack))
}

/// The flag whose presence makes nginx answer with the maintenance page.
pub fn maintenance_flag(stack: &str) -> String {
    format!("{}/.maintenance", www_dir(stack))
}

/// The page nginx shows while the maintenance flag is set.
pub fn maintenance_page(stack: &str) -> String {
    format!("{}/maintenance.html", www_dir(stack))
}

/// The storefront's releases: one directory per content hash, and `current`, the symlink nginx serves.
pub fn site_dir(stack: &str) -> String {
    format!("{}/site", stack_dir(stack))
}

/// One release of the storefront, named by its content hash.
pub fn site_release(stack: &str, hash: &str) -> String {
    format!("{}/{hash}", site_dir(stack))
}

/// The symlink naming the storefront release that serves (relative: `current -> <hash>`), switched by one rename.
pub fn site_current(stack: &str) -> String {
    format!("{}/current", site_dir(stack))
}

/// The record of the storefront's releases, newest last (what `releases` and `rollback` read).
pub fn site_history(stack: &str) -> String {
    format!("{}/site.json", stack_dir(stack))
}

/// Where nginx sees the storefront's releases directory (mounted read-only).
pub const NGINX_SITE_DIR: &str = "/var/www/storefront";

/// How many storefront releases the host keeps: the live one and two to roll back to.
pub const SITE_RELEASES_KEPT: usize = 3;

/// The record that the catalog seed was imported: later `up`s never import it again.
pub fn catalog_seeded(stack: &str) -> String {
    format!("{}/catalog-seeded.json", stack_dir(stack))
}

/// The checklist's directory of attestations and evidence.
pub fn checklist_dir(stack: &str) -> String {
    format!("{}/checklist", stack_dir(stack))
}

/// The recorded attestations.
pub fn attestations(stack: &str) -> String {
    format!("{}/attestations.json", checklist_dir(stack))
}

/// The evidence of the last verified backup.
pub fn backup_evidence(stack: &str) -> String {
    format!("{}/backup-verified.json", checklist_dir(stack))
}

/// The marker that the gate's own maintenance window is on.
pub fn gate_maintenance(stack: &str) -> String {
    format!("{}/gate-maintenance", checklist_dir(stack))
}

/// The private directory of the certificate state (`0700`): configuration, account, status, job log.
pub fn tls_dir(stack: &str) -> String {
    format!("{}/tls", stack_dir(stack))
}

/// The directory nginx reads its certificate from: `current` and `previous` point into `releases/`.
pub fn certs_dir(stack: &str) -> String {
    format!("{}/certs", stack_dir(stack))
}

/// The ACME HTTP-01 webroot, served by nginx under `/.well-known/acme-challenge/`.
pub fn acme_webroot(stack: &str) -> String {
    format!("{}/acme", stack_dir(stack))
}

/// The backup script.
pub fn backup_script(stack: &str) -> String {
    format!("{}/backup/backup.sh", stack_dir(stack))
}

/// The cron file of the certificate renewal job.
pub fn certs_cron(stack: &str) -> String {
    format!("/etc/cron.d/vldeploy-{stack}-certs")
}

/// The cron file of the backup job.
pub fn backup_cron(stack: &str) -> String {
    format!("/etc/cron.d/vldeploy-{stack}-backup")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_sit_under_the_stack_directory() {
        assert_eq!(stack_dir("shop"), "/var/lib/vldeploy/shop");
        assert_eq!(lock_info("shop"), "/var/lib/vldeploy/shop/lock/info.json");
        assert_eq!(
            maintenance_flag("shop"),
            "/var/lib/vldeploy/shop/www/.maintenance"
        );
        assert_eq!(
            loaded_marker("shop", "nginx"),
            "/var/lib/vldeploy/shop/nginx/.loaded"
        );
        assert_eq!(certs_cron("shop"), "/etc/cron.d/vldeploy-shop-certs");
        assert_eq!(
            site_release("shop", "ab12"),
            "/var/lib/vldeploy/shop/site/ab12"
        );
        assert_eq!(site_current("shop"), "/var/lib/vldeploy/shop/site/current");
        assert_eq!(site_history("shop"), "/var/lib/vldeploy/shop/site.json");
        assert_eq!(
            catalog_seeded("shop"),
            "/var/lib/vldeploy/shop/catalog-seeded.json"
        );
        assert_eq!(backup_cron("shop"), "/etc/cron.d/vldeploy-shop-backup");
        assert!(FIREWALL_UNIT_PATH.ends_with(FIREWALL_UNIT));
    }

    #[test]
    fn names_follow_the_playbook() {
        assert_eq!(container_name("backend"), "vl_backend");
        assert_eq!(private_network("shop"), "shop_private");
        assert_eq!(public_network("shop"), "shop_public");
        assert_eq!(serving_network("shop"), "shop_serving");
        assert_eq!(serving_name("backend"), "backend-live");
        assert_eq!(volume_name("shop", "pgdata"), "shop_pgdata");
        assert_eq!(short_hash("x"), "2d711642b726b044");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
    }
}
