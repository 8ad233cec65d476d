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
    /// The backup directory's filesystem filled up while the backup was written; its partial file was removed.
    #[error(
        "on `{host}`, {step} failed: the filesystem of the backup directory `{dir}` on `{host}` is full ({free} bytes free): {detail}\n  no new backup was made and no partial file was left; the log is {log}\n  help: free space on that filesystem, keep fewer backups (`backup.retention`), or set another `backup.dir` on a larger one"
    )]
    DiskFull {
        host: String,
        step: String,
        dir: String,
        free: u64,
        /// What the failing tool said (gzip's own message).
        detail: String,
        log: String,
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
