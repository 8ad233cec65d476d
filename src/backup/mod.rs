//! Database backups: the script and cron entry on the host, listing, integrity checks, scratch verification, restore.
//!
//! The backup itself runs on the host, from cron, as a bash script rendered from `templates/backup/` (see
//! [`Setup`]). Everything else drives that host over the one SSH connection: [`list`] reads the backup
//! directory, [`check`] proves a file whole (checksum, gzip stream, completion marker, rows per table),
//! [`verify`] loads it into a scratch database and compares row counts, and [`restore`] swaps a freshly
//! loaded database in for the live one, putting the previous one back on any failure.

pub mod archive;
mod archiving;
pub mod backup_host;
mod check;
mod error;
mod journal;
mod listing;
mod load;
mod name;
pub mod point_in_time;
mod postgres;
pub mod repo_tls;
mod restore;
mod setup;
mod verify;

pub use archiving::{archive_status, archive_status_via};
pub use check::{Checksum, Integrity, check};
pub use error::BackupError;
pub use journal::{Journal, PHASES, PITR_PHASES, interrupted, journal_path};
pub use listing::{Entry, latest, list};
pub use load::{LoadStats, load};
pub use name::BackupName;
pub use postgres::Postgres;
pub use restore::{
    AbortReport, Backend, Phase, RestoreReport, SwarmBackend, abort, restore, restore_backend,
    resume,
};
pub use setup::{KEEP_TAGGED, LOG, MIN_BYTES, RunOutcome, Setup, run_backup};
pub use verify::{
    ArchiveVerification, TableRows, Verification, scratch_name, verify, verify_archive,
};
