//! The commands: each loads what it needs, acts, and prints what the user asked for on stdout.

mod audit;
mod backup;
mod context;
mod down;
mod lock;
mod logs;
mod plan;
mod progress;
mod restore;
mod sandbox;
mod status;
mod up;

pub(crate) use audit::audit;
pub(crate) use backup::backup;
pub(crate) use context::{CommandError, Context};
pub(crate) use down::down;
pub(crate) use lock::lock;
pub(crate) use logs::logs;
pub(crate) use plan::plan;
pub(crate) use restore::restore;
pub(crate) use sandbox::sandbox;
pub(crate) use status::status;
pub(crate) use up::up;
