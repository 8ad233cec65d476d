//! The commands: each loads what it needs, acts, and prints what the user asked for on stdout.

mod audit;
mod backup;
mod certs;
mod context;
mod doctor;
mod down;
mod firewall;
mod lock;
mod logs;
mod maintenance;
mod oncall;
mod plan;
mod progress;
mod releases;
mod restore;
mod sandbox;
mod status;
mod up;

pub(crate) use audit::audit;
pub(crate) use backup::backup;
pub(crate) use certs::{certs, renew_on_host};
pub(crate) use context::{CommandError, Context};
pub(crate) use doctor::doctor;
pub(crate) use down::down;
pub(crate) use firewall::firewall;
pub(crate) use lock::lock;
pub(crate) use logs::logs;
pub(crate) use maintenance::maintenance;
pub(crate) use oncall::{cache_flush, exec, restart};
pub(crate) use plan::plan;
pub(crate) use releases::{releases, rollback};
pub(crate) use restore::restore;
pub(crate) use sandbox::sandbox;
pub(crate) use status::status;
pub(crate) use up::up;
