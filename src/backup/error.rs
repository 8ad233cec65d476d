//! What can go wrong with a backup or a restore, each saying what state the host is left in.

use crate::engine::EngineError;
use crate::render::RenderError;
use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The backup cannot be used; nothing was touched.
    #[error(
        "backup `{file}` on `{host}` is refused: {reason}\n  nothing was changed\n  help: {help}"
    )]
    Refused {
        host: String,
        file: String,
        reason: String,
        help: String,
    },
    /// A step on the host failed.
    #[error("on `{host}`, {step} failed: {detail}")]
    Step {
        host: String,
        step: String,
        detail: String,
    },
    /// A restore failed part-way; `outcome` says what serves now.
    #[error("restore on `{host}` failed at `{step}`: {detail}\n  {outcome}")]
    Restore {
        host: String,
        step: String,
        detail: String,
        outcome: String,
    },
}
