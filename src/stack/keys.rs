//! The keys each mapping of stack.yaml accepts; shared by the loader and the JSON Schema.

pub(crate) const TOP: &[&str] = &[
    "name",
    "environments",
    "services",
    "secrets",
    "tls",
    "firewall",
    "backup",
    "checklist",
    "site",
    "catalog",
];
pub(crate) const ENVIRONMENT: &[&str] = &[
    "host",
    "hosts",
    "bootstrap_user",
    "command_timeout",
    "ssh_key",
    "ssh_agent",
    "known_hosts",
    "host_key",
    "domain",
    "env_file",
    "secrets_file",
    "gated",
    "overrides",
    "tls",
    "firewall",
    "backup",
    "checklist",
    "site",
    "catalog",
];
pub(crate) const SERVICE_NAMES: &[&str] = &["nginx", "postgres", "backend"];
pub(crate) const SERVICE: &[&str] = &[
    "build",
    "image",
    "env",
    "volumes",
    "ports",
    "port",
    "healthcheck",
    "depends_on",
    "replicas",
];
pub(crate) const ROLES: &[&str] = &["edge", "app", "db"];
pub(crate) const BUILD: &[&str] = &["context", "dockerfile", "prepare", "inputs", "args"];
pub(crate) const HEALTHCHECK: &[&str] = &["command", "http", "interval", "timeout", "retries"];
pub(crate) const TLS: &[&str] = &["acme", "provided"];
pub(crate) const ACME: &[&str] = &["directory", "email", "eab_kid", "eab_hmac", "ca_bundle"];
pub(crate) const PROVIDED: &[&str] = &["cert", "key"];
pub(crate) const FIREWALL: &[&str] = &["allow", "icmp", "must_be_closed"];
pub(crate) const ALLOW: &[&str] = &["port", "proto", "from"];
pub(crate) const BACKUP: &[&str] = &[
    "schedule",
    "dir",
    "retention",
    "copy_to",
    "encrypt",
    "archive",
];
pub(crate) const ARCHIVE: &[&str] = &[
    "repo",
    "timeout",
    "full",
    "diff",
    "retention",
    "encrypt_passphrase",
    "repo_address",
    "db_address",
];
pub(crate) const ARCHIVE_RETENTION: &[&str] = &["full"];
pub(crate) const RETENTION: &[&str] = &["daily", "weekly", "monthly"];
pub(crate) const CHECKLIST: &[&str] = &["items", "freshness"];
pub(crate) const CHECKLIST_ITEMS: &[&str] = &[
    "ssl",
    "secrets",
    "safe_mode",
    "backup",
    "firewall",
    "auth_rate_limit",
    "health",
    "homepage",
    "payment_test",
    "otp_delivery",
];
