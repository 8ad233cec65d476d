//! The command line: clap derive and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Deploys nginx, postgres and the shop backend to a Linux host over SSH, from `stack.yaml`.
///
/// Start with `vldeploy sandbox up` and `vldeploy up`: a disposable local host, then the shop on it.
#[derive(Debug, Parser)]
#[command(
    name = "vldeploy",
    version,
    propagate_version = true,
    max_term_width = 110
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The stack file.
    #[arg(
        long = "file",
        global = true,
        default_value = "stack.yaml",
        env = "VLDEPLOY_FILE"
    )]
    pub file: PathBuf,
    /// The environment of the stack file to act on.
    #[arg(
        short = 'e',
        long = "env",
        global = true,
        default_value = "sandbox",
        env = "VLDEPLOY_ENV"
    )]
    pub env: String,
    /// Output format of what the command reports on stdout.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// Build images even when one built from the same files, Dockerfile and arguments exists
    /// (for instance after the base image was updated), and run every `prepare` even when its inputs are unchanged.
    #[arg(long, global = true)]
    pub rebuild: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make the host match the stack: build, send images, create what is missing, replace what changed.
    ///
    /// Prints the plan, applies it in dependency order (postgres, backend, nginx), waits for each
    /// container's health check, and ends with the URL. On a converged host it changes nothing.
    Up(UpArgs),
    /// Show what `up` would change, with the reason for each change. Secrets are never shown.
    ///
    /// With `--exit-code`, exits 2 when changes are pending (for CI drift checks), 0 when none. On an
    /// environment with `hosts:`, the changes are listed per node (swarm, firewall, images), then per service.
    Plan(PlanArgs),
    /// Stop and remove the stack's containers and networks; volumes (the database) are kept.
    Down(DownArgs),
    /// Containers of the stack on the host: state, health, image, uptime.
    Status,
    /// Print a service's logs (`nginx`, `postgres`, `backend`).
    Logs(LogsArgs),
    /// Print the JSON Schema of stack.yaml, for editors.
    Schema,
    /// Print a shell completion script: `vldeploy completions bash > /etc/bash_completion.d/vldeploy`.
    #[command(after_help = "Examples:
  vldeploy completions bash > ~/.local/share/bash-completion/completions/vldeploy
  vldeploy completions zsh > \"${fpath[1]}/_vldeploy\"
  vldeploy completions fish > ~/.config/fish/completions/vldeploy.fish")]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `vldeploy man > vldeploy.1 && man ./vldeploy.1`.
    Man,
    /// The playbook's incident checks: containers, disk, API health, key error counts, search cache — with actions.
    Doctor,
    /// Restart a service's container (graceful stop, start) and wait for its health check.
    Restart {
        /// `nginx`, `postgres` or `backend`.
        service: String,
    },
    /// Run a command inside a service's container: `vldeploy exec postgres -- psql -U postgres -c 'select 1'`.
    Exec(ExecArgs),
    /// The backend's in-memory search cache.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Take the API offline on purpose: nginx answers `/api/` with 503 and a maintenance message.
    ///
    /// For an incident where a clear "back soon" beats errors and half-finished orders: the database is
    /// being repaired, the payment gateway is down, a manual migration runs. Nothing is stopped: `on` puts
    /// a flag file nginx checks on every request, so `/api/` answers 503 with a JSON maintenance message
    /// and `Retry-After` at once while the static site keeps serving; `off` removes it. Both take the deploy
    /// lock and are audited (`vldeploy audit`). A running restore holds the lock and lifts its own
    /// maintenance page when it ends.
    #[command(after_help = "Examples (3 a.m., the gateway is down):
  vldeploy maintenance on -e production --message \"payment gateway down, INC-1234\"
  vldeploy maintenance status -e production
  vldeploy maintenance off -e production")]
    Maintenance {
        #[command(subcommand)]
        action: MaintenanceAction,
    },
    /// The backend's and the storefront's releases the host keeps for rollback, newest last, the live ones marked.
    Releases,
    /// Put a previous release live again: the backend the zero-downtime way (candidate, health, switch, drain),
    /// the storefront by switching its `current` symlink back.
    ///
    /// Without RELEASE: undoes the newest release, the storefront's (when it changed last) or the backend's.
    /// `site-<hash>` names a storefront release. The next `up` releases the stack's configuration again.
    Rollback(RollbackArgs),
    /// Import the catalog CSV named by `catalog:` through the backend's admin import (safe mode applies).
    ///
    /// `up` imports it once, at the first launch; `seed` imports it again on demand.
    #[command(after_help = "Example:\n  vldeploy seed -e sandbox")]
    Seed,
    /// The deploy lock every changing command takes on the host: who holds it, and freeing it.
    Lock {
        #[command(subcommand)]
        action: LockAction,
    },
    /// The host's audit log: who changed what, when, and how it ended.
    Audit(AuditArgs),
    /// Make a fresh Debian or Ubuntu server ready: engine and tools, the deploy user, its sudo rule, directories.
    ///
    /// Connects as the environment's `bootstrap_user` (default `root`; a user with sudo works too), prints
    /// its plan, then applies it: installs what is missing from the distribution's packages (an engine already
    /// there is kept), creates the environment's user with the operator's public key in the docker group,
    /// installs /usr/local/lib/vldeploy/vldeploy-root and the one sudoers rule that lets that user run it.
    /// A second run prints "no changes".
    #[command(after_help = "Examples:
  vldeploy bootstrap -e production
  vldeploy bootstrap -e production --harden-ssh")]
    Bootstrap(BootstrapArgs),
    /// On an environment with `hosts:`: form its Docker Swarm (init on the first host, join the others, one or
    /// three managers, a label per role); a second run changes nothing. Join tokens are never printed.
    Swarm,
    /// The host firewall: only SSH, 80 and 443 reachable (and what stack.yaml adds), even for Docker's ports.
    Firewall {
        #[command(subcommand)]
        action: FirewallAction,
    },
    /// The HTTPS certificate: its expiry and renewal status, or a renewal now.
    Certs {
        #[command(subcommand)]
        action: CertsAction,
    },
    /// Run by the renewal job on the host (cron): checks the certificate and renews it when due.
    #[command(hide = true)]
    RenewOnHost(RenewOnHostArgs),
    /// Database backups on the host: make one now, list them, prove one restores, download one.
    Backup {
        #[command(subcommand)]
        action: BackupAction,
    },
    /// Replace the live database with a backup: verified first; on any failure the previous data serves again.
    ///
    /// Verifies the backup (checksum, gzip, completion marker), takes a safety backup, stops the backend
    /// (nginx shows a maintenance page), loads into a fresh database in one transaction, swaps it in,
    /// and starts the backend health-gated.
    ///
    /// Each phase is recorded on the host (`/var/lib/vldeploy/<stack>/restore.json`) before it begins. When a
    /// restore is interrupted (the process killed, the connection lost), every command that connects says so,
    /// `up` refuses to go on, and one of these two ends it: `--resume` finishes it, `--abort` puts the
    /// previous data back. Both take the lock and are audited.
    #[command(after_help = "Examples:
  vldeploy restore -e production                 # the newest backup, after typing the stack's name
  vldeploy restore db_backup_20250101_020000.sql.gz --yes
  vldeploy restore --from-local ./safety.sql.gz --yes
  vldeploy restore --resume -e production        # finish an interrupted restore
  vldeploy restore --abort -e production         # or roll it back")]
    Restore(RestoreArgs),
    /// The go-live checklist: every item with pass / fail / stale, its evidence and how to fix it.
    ///
    /// Probes run now: `ssl` (a real TLS handshake: trusted chain, the domain's name, 14+ days left),
    /// `secrets` (none a default, short or predictable — values never shown), `safe_mode` (read from the
    /// running backend), `firewall` (the outside probe), `auth_rate_limit` (429 within 10 requests),
    /// `health` (200 over HTTPS), `homepage` (`/` through nginx: 200, its marker, its assets). Evidence with a freshness window: `backup` (verified by a scratch
    /// restore), and the attestations `payment_test` and `otp_delivery`. Exits 1 when an item does not pass.
    #[command(after_help = "Examples:
  vldeploy check -e production
  vldeploy check -e production -o json | jq '.findings[] | select(.status != \"pass\")'")]
    Check,
    /// Record what no probe can see: `vldeploy checklist attest payment_test --note "₹1 paid and refunded"`.
    Checklist {
        #[command(subcommand)]
        action: ChecklistAction,
    },
    /// A disposable local host (a container with sshd and its own Docker engine) for trying vldeploy.
    Sandbox {
        #[command(subcommand)]
        action: SandboxAction,
    },
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Before changing anything, take a backup of the database and prove it by a scratch restore; a backup
    /// that fails or does not verify stops `up` with nothing changed.
    #[arg(long)]
    pub backup_before: bool,
    /// In a gated environment, go live although ITEM does not pass (needs `--reason`; both are audited).
    /// Repeat for several items: `--waive payment_test --reason "gateway sandbox down" --waive ...`.
    #[arg(long, value_name = "ITEM")]
    pub waive: Vec<String>,
    /// Why an item is waived; one per `--waive`, in the same order.
    #[arg(long, value_name = "TEXT")]
    pub reason: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ChecklistAction {
    /// Record that an item was checked by hand: who (your identity), when, and what you saw.
    ///
    /// The items are `payment_test` (one real transaction, refunded) and `otp_delivery` (an OTP or
    /// notification received). An attestation holds for its freshness window (30 days by default).
    Attest {
        /// `payment_test` or `otp_delivery`.
        item: String,
        /// What was checked and seen, in a sentence (it goes into the audit log).
        #[arg(long)]
        note: String,
    },
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Also turn off password and root logins for sshd; confirmed over a new connection as the deploy user,
    /// and put back by the host itself if that fails.
    #[arg(long)]
    pub harden_ssh: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Exit 2 when the plan has changes, 0 when the host matches.
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Also delete the stack's volumes: this deletes the database.
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask before deleting volumes (for automation).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// `nginx`, `postgres` or `backend`. On an environment with `hosts:` it may be left out: every service's
    /// tasks.
    pub service: Option<String>,
    /// Keep printing new lines as they come.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How many lines from the end to start with.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub tail: usize,
    /// Only the playbook's key error events (`database_connection_failed`, `payment_verification_failed`,
    /// `shiprocket_auth_error`).
    #[arg(long)]
    pub errors: bool,
}

#[derive(Debug, Subcommand)]
pub enum BackupAction {
    /// Run the backup script on the host now (waits for a running backup to finish).
    Now,
    /// The backups on the host: size, age, checksum state (every file is read to check it).
    List,
    /// Prove a backup restores: load it into a scratch database and compare every table's row count.
    Verify {
        /// A backup file name (see `backup list`), or `latest`.
        #[arg(id = "backup", value_name = "FILE", default_value = "latest")]
        backup: String,
        /// Verify the pgBackRest repository (`backup.archive`) instead: its newest backup plus every archived WAL,
        /// restored into a scratch instance that is removed afterwards.
        #[arg(long, conflicts_with = "backup")]
        archive: bool,
    },
    /// Continuous archiving (`backup.archive`): the last archived WAL and its age, failures, the repository's
    /// backups and size, the oldest and newest restore points. Exits 1 when archiving is stalled.
    Status,
    /// Download a backup (and check it against its checksum).
    Pull {
        /// A backup file name (see `backup list`), or `latest`.
        #[arg(id = "backup", value_name = "FILE")]
        backup: String,
        /// Where to write it; default the file name in the current directory.
        #[arg(long, value_name = "PATH")]
        to: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // each flag is one of the command's own modes
pub struct RestoreArgs {
    /// A backup file name on the host (see `backup list`), or `latest`.
    #[arg(
        id = "backup",
        value_name = "FILE",
        default_value = "latest",
        conflicts_with = "from_local"
    )]
    pub backup: String,
    /// Restore a backup file from this machine: it is sent to the host's backup directory first.
    #[arg(long, value_name = "PATH")]
    pub from_local: Option<PathBuf>,
    /// Finish a restore that was interrupted (killed, connection lost), from the host's restore journal: the
    /// restored data is put live and the backend started on it.
    #[arg(long, conflicts_with_all = ["backup", "from_local", "abort"])]
    pub resume: bool,
    /// Roll an interrupted restore back, from the host's restore journal: the data from before it is live
    /// again, half-loaded databases are dropped, the backend runs and the maintenance page is lifted (unless
    /// it was on before the restore).
    #[arg(long, conflicts_with_all = ["backup", "from_local"])]
    pub abort: bool,
    /// Point-in-time recovery from the pgBackRest repository (`backup.archive`): `latest` (the end of the
    /// archived WAL) or a time (RFC 3339, or `YYYY-MM-DD HH:MM:SS[+TZ]`, UTC without a zone). The data is
    /// restored into a new volume beside the live one, then swapped in; the previous data stays in that volume.
    #[arg(long, value_name = "TIME|latest", conflicts_with_all = ["from_local", "identity", "resume", "abort"])]
    pub to: Option<String>,
    /// Disaster recovery, on a new host after `bootstrap` and `up`: brings the database back to the last WAL
    /// archived on the backup host (`backup.archive.repo: ssh://…`), through the same safe path as
    /// `--to latest`. The new host's own empty cluster stays in the safety volume; archiving then resumes into
    /// the repository on a new timeline.
    #[arg(long, conflicts_with_all = ["to", "from_local", "identity", "resume", "abort"])]
    pub from_backup_host: bool,
    /// The age identity file (on this machine) that decrypts an encrypted backup (`.sql.gz.age`): it is sent
    /// to the host's `age` on stdin, never written there.
    #[arg(long, value_name = "PATH")]
    pub identity: Option<PathBuf>,
    /// Do not ask for confirmation (for automation).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum SandboxAction {
    /// Create (or find) the sandbox host and write the files the `sandbox` environment uses.
    Up {
        /// Extra container ports to publish on 127.0.0.1 (e.g. 5432, for firewall probes).
        #[arg(long = "publish", value_name = "PORT")]
        publish: Vec<u16>,
        /// A host like a freshly rented server: Debian booted by systemd, sshd with a root login by key,
        /// and no Docker engine, nftables, cron or sudo. A sandbox of the other kind is recreated.
        #[arg(long)]
        bare: bool,
        /// Start N hosts (2 to 7) on one Docker network instead of one, and write the files of the `cluster`
        /// environment (`.vldeploy/cluster/`: keys, `known_hosts`, `cluster.env`, `secrets.env`).
        #[arg(long, value_name = "N", conflicts_with = "bare")]
        nodes: Option<usize>,
    },
    /// Destroy the sandbox host, or the hosts of a cluster and their network, and everything on them.
    Down,
    /// Whether the sandbox host runs, and its ports.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum FirewallAction {
    /// Whether vldeploy's ruleset is loaded, installed for boot and up to date, and what it allows.
    Status,
    /// From this machine: every allowed port must answer, every port that must be closed must not (exit 1).
    Probe,
    /// Apply the firewall alone, as `up` does: check, arm a revert, swap, confirm over a new connection.
    Apply {
        /// Seconds after which the host puts its previous ruleset back unless confirmed (at least 10).
        #[arg(long, value_name = "SECONDS", env = "VLDEPLOY_FIREWALL_REVERT_AFTER")]
        revert_after: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertsAction {
    /// The served certificate (names, key, expiry), when it renews, and how the last renewal went.
    Status,
    /// Run the renewal on the host now: issues a certificate when it is due (or with `--force`).
    Renew {
        /// Renew even when the certificate is not due. A CA's `Retry-After` is still honoured.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct RenewOnHostArgs {
    /// The stack whose certificate to check (its state is under /var/lib/vldeploy/STACK).
    #[arg(long)]
    pub stack: String,
    /// Renew even when not due.
    #[arg(long)]
    pub force: bool,
    /// The caller holds the stack's deploy lock already.
    #[arg(long)]
    pub lock_held: bool,
    /// Print a report only when something happened (for cron's log).
    #[arg(long)]
    pub quiet: bool,
    /// Who started the run, for the audit log.
    #[arg(long, default_value = "cron")]
    pub trigger: String,
}

#[derive(Debug, Subcommand)]
pub enum LockAction {
    /// Who holds the lock, for what command, since when.
    Status,
    /// Free the lock whoever holds it (when its holder is gone). The removed holder is printed and audited.
    Release,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How many of the latest entries to show.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub last: usize,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn logs_follow_is_dash_f_and_the_file_is_long_only() {
        let cli =
            Cli::try_parse_from(["vldeploy", "logs", "backend", "-f", "--file", "x.yaml"]).unwrap();
        assert_eq!(cli.global.file, PathBuf::from("x.yaml"));
        assert!(matches!(
            cli.command,
            Command::Logs(LogsArgs { follow: true, .. })
        ));
    }

    #[test]
    fn backup_files_do_not_clash_with_the_stack_file() {
        let cli = Cli::try_parse_from([
            "vldeploy",
            "restore",
            "db_backup_20250101_020000.sql.gz",
            "--yes",
            "--file",
            "x.yaml",
        ])
        .unwrap();
        assert_eq!(cli.global.file, PathBuf::from("x.yaml"));
        let Command::Restore(args) = cli.command else {
            panic!("restore")
        };
        assert_eq!(args.backup, "db_backup_20250101_020000.sql.gz");
        let cli = Cli::try_parse_from(["vldeploy", "backup", "verify"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Backup {
                action: BackupAction::Verify { ref backup, .. }
            } if backup == "latest"
        ));
        assert!(
            Cli::try_parse_from(["vldeploy", "restore", "x", "--from-local", "y"]).is_err(),
            "a host file and a local file are exclusive"
        );
        let cli = Cli::try_parse_from(["vldeploy", "restore", "--resume"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Restore(RestoreArgs {
                resume: true,
                from_backup_host: false,
                abort: false,
                ..
            })
        ));
        let cli = Cli::try_parse_from(["vldeploy", "restore", "--abort", "--yes"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Restore(RestoreArgs {
                resume: false,
                abort: true,
                ..
            })
        ));
        let cli =
            Cli::try_parse_from(["vldeploy", "restore", "--from-backup-host", "--yes"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Restore(RestoreArgs {
                from_backup_host: true,
                to: None,
                ..
            })
        ));
        for args in [
            &[
                "vldeploy",
                "restore",
                "--from-backup-host",
                "--to",
                "latest",
            ][..],
            &["vldeploy", "restore", "--from-backup-host", "--resume"],
            &["vldeploy", "restore", "--resume", "--abort"],
            &["vldeploy", "restore", "latest", "--resume"],
            &["vldeploy", "restore", "--abort", "--from-local", "y"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?} is refused");
        }
    }
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// A release id from `vldeploy releases` (or a unique prefix of its hash).
    pub release: Option<String>,
    /// The same as RELEASE, named.
    #[arg(long = "to", value_name = "RELEASE", conflicts_with = "release")]
    pub to: Option<String>,
}

impl RollbackArgs {
    /// The release asked for, positional or `--to`.
    pub fn wanted(&self) -> Option<&str> {
        self.release.as_deref().or(self.to.as_deref())
    }
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// `nginx`, `postgres` or `backend`.
    pub service: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Empty the search cache and reload the index (what the playbook did with a restart).
    Flush,
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceAction {
    /// Answer `/api/` with 503 and the maintenance message (already on: says so, changes nothing).
    On {
        /// Why, for the audit log (`vldeploy audit`); customers see nginx's fixed maintenance message.
        #[arg(long, value_name = "TEXT")]
        message: Option<String>,
    },
    /// Pass `/api/` to the backend again (already off: says so, changes nothing).
    Off,
    /// Whether maintenance is on, and since when.
    Status,
}
