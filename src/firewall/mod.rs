//! The host firewall: vldeploy's own nftables table, a guard on Docker's published ports, a safe apply, a probe.
//!
//! [`Policy`] is what stack.yaml asks for (SSH, 80 and 443 unless told otherwise; 5432 and the backend's
//! port must stay closed), checked before anything changes. [`Ruleset`] renders it from
//! `templates/nftables/ruleset.nft.j2` into the table `inet vldeploy`: an `input` chain that drops what is not
//! allowed, and a `forward` chain that keeps connections from outside off every container port that is not
//! allowed, whatever Docker publishes. [`safe_apply`] checks the ruleset, arms a revert on the host, swaps the
//! table in one transaction, confirms over a new SSH connection and disarms; it then installs the ruleset
//! to be loaded at boot. [`probe`] knocks on the ports from where vldeploy runs.

// Errors carry the host and the failing step; they are rare and not worth boxing (as in `transport`).
#![allow(clippy::result_large_err)]

mod boot;
mod change;
mod error;
mod observed;
mod policy;
mod prepared;
mod probe;
mod reach;
mod ruleset;
mod safe_apply;

pub use boot::Boot;
pub use change::{Change, decide};
pub use error::FirewallError;
pub use observed::{Observed, observe};
pub use policy::{Allowed, Policy};
pub use prepared::{Prepared, prepare, prepared_for_swarm, prepared_from};
pub use probe::{Expect, PortProbe, ProbeReport, Seen, probe, probe_with};
pub use reach::Reach;
pub use ruleset::Ruleset;
pub use safe_apply::{Applied, Confirm, MIN_REVERT_AFTER, revert_after, safe_apply};

/// The nftables table vldeploy owns; nothing else of the host's ruleset is touched.
pub const TABLE: &str = crate::layout::FIREWALL_TABLE;

/// The installed ruleset, loaded at boot.
pub const RULESET_PATH: &str = crate::layout::FIREWALL_RULESET;

/// Where each apply keeps its candidate, the saved previous table and the revert timer.
pub const STATE_DIR: &str = crate::layout::FIREWALL_STATE_DIR;

/// Set to `1` (tests only): the ruleset leaves out the SSH rule, so the safe apply must revert it.
pub const TEST_CUT_SSH_ENV: &str = "VLDEPLOY_FIREWALL_TEST_CUT_SSH";

/// Seconds after which the host reverts an unconfirmed ruleset (default 30).
pub const REVERT_AFTER_ENV: &str = "VLDEPLOY_FIREWALL_REVERT_AFTER";
