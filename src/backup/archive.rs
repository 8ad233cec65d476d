//! Continuous archiving with pgBackRest: its configuration, postgres' archive settings, and the commands that
//! back up and restore to a point in time.

use serde::Serialize;

use crate::render::{self, RenderError};
use crate::secret::Secret;
use crate::stack::{Archive, ArchiveRepo};

/// The one stanza of a stack's cluster.
pub const STANZA: &str = "main";

/// Where postgres' data is in the stack's postgres image.
pub const PGDATA: &str = "/var/lib/postgresql/data";

/// Where each side's TLS files are in its container: the stack's CA, its own certificate and key.
pub const TLS_DIR: &str = "/etc/pgbackrest/tls";

/// The port each side's `pgbackrest server` listens on, in its container and published on its host.
pub const TLS_PORT: u16 = 8432;

/// The two hosts of repository-host mode, by the address the other one reaches each at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peers {
    /// The backup host, as the database host reaches it.
    pub repo: String,
    /// The database host, as the backup host reaches it.
    pub db: String,
}

impl Peers {
    /// The peers of `stack`'s archive when its repository is on a backup host: `repo_address` (else the host of
    /// the `ssh://` URL) and `db_address` (else the environment's host).
    pub fn of(stack: &crate::stack::Stack) -> Option<Self> {
        let archive = stack.backup.as_ref()?.archive.as_ref()?;
        let ArchiveRepo::Ssh { host, .. } = &archive.repo else {
            return None;
        };
        Some(Self {
            repo: archive.repo_address.clone().unwrap_or_else(|| host.clone()),
            db: archive
                .db_address
                .clone()
                .unwrap_or_else(|| stack.target.host.clone()),
        })
    }
}

/// Everything pgBackRest's configuration on the database side is made of.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveConfig {
    pub stack: String,
    pub repo: ArchiveRepo,
    pub retention_full: u32,
    /// `archive_timeout` in seconds.
    pub timeout_s: u64,
    /// The repository is encrypted (aes-256-cbc).
    pub encrypted: bool,
    /// The passphrase written into the file; `None` when it comes from the environment
    /// (`PGBACKREST_REPO1_CIPHER_PASS`) or the repository is not encrypted.
    #[serde(skip)]
    pub passphrase: Option<Secret>,
    pub pg_path: String,
    pub pg_socket: String,
    pub pg_port: u16,
    pub log_path: String,
    pub lock_path: String,
    /// Repository-host mode over TLS: the two hosts' addresses.
    pub peers: Option<Peers>,
}

impl ArchiveConfig {
    /// The configuration of `archive` for `stack`'s cluster in the postgres image.
    pub fn new(stack: &str, archive: &Archive, passphrase: Option<Secret>) -> Self {
        Self {
            stack: stack.to_owned(),
            repo: archive.repo.clone(),
            retention_full: archive.retention_full,
            timeout_s: archive.timeout.as_secs(),
            encrypted: passphrase.is_some(),
            passphrase,
            pg_path: PGDATA.to_owned(),
            pg_socket: "/var/run/postgresql".to_owned(),
            pg_port: 5432,
            log_path: "/var/log/pgbackrest".to_owned(),
            lock_path: "/tmp/pgbackrest".to_owned(),
            peers: None,
        }
    }

    /// With the two hosts of repository-host mode.
    #[must_use]
    pub fn with_peers(mut self, peers: Option<Peers>) -> Self {
        self.peers = peers;
        self
    }

    /// postgres' settings that push every WAL segment to the repository (at least every `timeout_s`).
    pub fn postgres_settings(&self, config: &str) -> Vec<(&'static str, String)> {
        vec![
            ("archive_mode", "on".to_owned()),
            (
                "archive_command",
                format!("pgbackrest --config={config} --stanza={STANZA} archive-push %p"),
            ),
            ("archive_timeout", format!("{}s", self.timeout_s)),
            ("wal_level", "replica".to_owned()),
        ]
    }

    /// `pgbackrest.conf` on the database side: the repository itself (a local path), or the backup host that
    /// holds it (repository-host mode over TLS; the passphrase then lives there, and this side's own
    /// `pgbackrest server` admits the backup host, which runs the backups).
    pub fn database_conf(&self) -> Result<String, RenderError> {
        match (&self.repo, &self.peers) {
            (ArchiveRepo::Local(path), _) => self.render(Side::Database, Some(path.as_str())),
            (ArchiveRepo::Ssh { .. }, Some(_)) => self.render(Side::Database, None),
            (ArchiveRepo::Ssh { .. }, None) => Err(RenderError::Template {
                name: "backup/pgbackrest.conf".into(),
                detail: "a repository on a backup host needs the two hosts' addresses".into(),
            }),
        }
    }

    /// `pgbackrest.conf` on the backup host: the repository (its path, retention and passphrase) and the
    /// database host it backs up over TLS.
    pub fn repository_conf(&self) -> Result<String, RenderError> {
        let ArchiveRepo::Ssh { path, .. } = &self.repo else {
            return Err(RenderError::Template {
                name: "backup/pgbackrest.conf".into(),
                detail: "the repository is on the database host, not on a backup host".into(),
            });
        };
        self.render(Side::Repository, Some(path.as_str()))
    }

    fn render(&self, side: Side, repo_path: Option<&str>) -> Result<String, RenderError> {
        let tls_peers = self
            .peers
            .as_ref()
            .filter(|_| matches!(self.repo, ArchiveRepo::Ssh { .. }));
        let (repo_host, pg_host, peer) = match (side, tls_peers) {
            (Side::Database, Some(p)) => (Some(p.repo.as_str()), None, Some(p.repo.as_str())),
            (Side::Repository, Some(p)) => (None, Some(p.db.as_str()), Some(p.db.as_str())),
            (_, None) => (None, None, None),
        };
        let bad = |what: &str| RenderError::Template {
            name: "backup/pgbackrest.conf".into(),
            detail: format!("{what} holds a control character or is empty"),
        };
        let passphrase = match &self.passphrase {
            Some(p) => {
                let v = p.expose();
                if v.is_empty() || v.chars().any(char::is_control) {
                    return Err(bad("the repository passphrase"));
                }
                Some(v.to_owned())
            }
            None => None,
        };
        for (what, v) in [
            ("pg1-path", self.pg_path.as_str()),
            ("pg1-socket-path", self.pg_socket.as_str()),
            ("log-path", self.log_path.as_str()),
            ("lock-path", self.lock_path.as_str()),
            ("repo1-path", repo_path.unwrap_or("-")),
            ("repo1-host", repo_host.unwrap_or("-")),
            ("pg1-host", pg_host.unwrap_or("-")),
        ] {
            if v.is_empty()
                || v.chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '=' || c == '#')
            {
                return Err(bad(what));
            }
        }
        let tls = peer.map(|peer| {
            serde_json::json!({
                "port": TLS_PORT,
                "ca": format!("{TLS_DIR}/ca.crt"),
                "cert": format!("{TLS_DIR}/self.crt"),
                "key": format!("{TLS_DIR}/self.key"),
                "peer": peer,
            })
        });
        let passphrase = passphrase.filter(|_| repo_path.is_some());
        let ctx = serde_json::json!({
            "stack": self.stack,
            "side": match side { Side::Database => "database", Side::Repository => "backup host" },
            "stanza": STANZA,
            "repo_host": repo_host,
            "repo_host_user": serde_json::Value::Null,
            "repo_host_port": serde_json::Value::Null,
            "repo_path": repo_path,
            "tls": tls,
            "retention_full": self.retention_full,
            "passphrase": passphrase,
            "encrypted": self.encrypted || passphrase.is_some(),
            "log_path": self.log_path,
            "lock_path": self.lock_path,
            "pg_host": pg_host,
            "pg_host_user": serde_json::Value::Null,
            "pg_path": self.pg_path,
            "pg_socket": self.pg_socket,
            "pg_port": self.pg_port,
        });
        render::render("backup/pgbackrest.conf", &ctx)
    }
}

/// Which side a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Database,
    Repository,
}

/// The pgBackRest configuration the postgres container writes at start, as the entrypoint reads it.
pub const CONTAINER_CONF: &str = "/etc/pgbackrest/pgbackrest.conf";

/// What the postgres container needs for archiving: variables for its entrypoint (the configuration, the
/// archive command and timeout, the passphrase as a secret) and the volume a local repository lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerArchive {
    pub env: Vec<(String, ContainerValue)>,
    /// `(volume name suffix, path in the container)` for a repository on the database host.
    pub volume: Option<(String, String)>,
}

/// A variable's value: plain, or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerValue {
    Plain(String),
    Secret(Secret),
}

/// The postgres container's archiving of `stack`, when `backup.archive` is set. With a repository on a backup
/// host, the container also runs `pgbackrest server` (its TLS files come from [`tls_env`]).
pub fn container_archive(
    stack: &crate::stack::Stack,
) -> Result<Option<ContainerArchive>, RenderError> {
    let Some(archive) = stack.backup.as_ref().and_then(|b| b.archive.as_ref()) else {
        return Ok(None);
    };
    let volume = match &archive.repo {
        ArchiveRepo::Local(path) => Some(("pgbackrest".to_owned(), path.clone())),
        ArchiveRepo::Ssh { .. } => None,
    };
    let passphrase = match &archive.encrypt_passphrase {
        None => None,
        Some(name) => Some(
            stack
                .named_secrets
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| RenderError::Template {
                    name: "backup/pgbackrest.conf".into(),
                    detail: format!(
                        "the secret `{name}` (`backup.archive.encrypt_passphrase`) has no value"
                    ),
                })?,
        ),
    };
    let mut config = ArchiveConfig::new(&stack.name, archive, None).with_peers(Peers::of(stack));
    config.encrypted = passphrase.is_some();
    let conf = config.database_conf()?;
    let settings = config.postgres_settings(CONTAINER_CONF);
    let setting = |k: &str| {
        settings
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut env = vec![
        (
            "VL_PGBACKREST_CONF".to_owned(),
            ContainerValue::Plain(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                conf.as_bytes(),
            )),
        ),
        (
            "VL_ARCHIVE_COMMAND".to_owned(),
            ContainerValue::Plain(setting("archive_command")),
        ),
        (
            "VL_ARCHIVE_TIMEOUT".to_owned(),
            ContainerValue::Plain(setting("archive_timeout")),
        ),
    ];
    match (passphrase, &volume) {
        // On a backup host the passphrase is there, not here.
        (Some(p), Some(_)) => env.push((
            "PGBACKREST_REPO1_CIPHER_PASS".to_owned(),
            ContainerValue::Secret(p),
        )),
        (_, None) => env.push((
            "VL_PGBACKREST_SERVER".to_owned(),
            ContainerValue::Plain(TLS_PORT.to_string()),
        )),
        (None, Some(_)) => {}
    }
    Ok(Some(ContainerArchive { env, volume }))
}

/// A side's TLS files for its container's entrypoint: the CA and the certificate plain, the key a secret.
pub fn tls_env(ca: &str, own: &super::repo_tls::Identity) -> Vec<(String, ContainerValue)> {
    let b64 =
        |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s.as_bytes());
    vec![
        (
            "VL_PGBACKREST_TLS_CA".to_owned(),
            ContainerValue::Plain(b64(ca)),
        ),
        (
            "VL_PGBACKREST_TLS_CERT".to_owned(),
            ContainerValue::Plain(b64(&own.cert)),
        ),
        (
            "VL_PGBACKREST_TLS_KEY".to_owned(),
            ContainerValue::Secret(Secret::new(b64(own.key.expose()))),
        ),
    ]
}

/// What the cluster and the repository say about archiving (`vldeploy backup status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveStatus {
    /// The last WAL segment archived, and how many seconds ago.
    pub last_archived_wal: Option<String>,
    pub last_archived_age_s: Option<u64>,
    /// Failed `archive_command` runs since the cluster started, and the last one's age.
    pub failed_count: u64,
    pub last_failed_age_s: Option<u64>,
    /// Backups in the repository and the bytes they take there.
    pub backups: usize,
    pub repository_bytes: u64,
    /// The oldest moment a restore can reach (the oldest backup's end), and the newest (the last archived WAL).
    pub oldest_restore_point: Option<u64>,
    pub newest_restore_point: Option<u64>,
    /// No WAL archived within twice `archive_timeout`, or the last attempt failed.
    pub stalled: bool,
    /// The backup host that holds the repository (`user@host:port`), when it is not this host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_host: Option<String>,
    /// Why the backup host could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_host_error: Option<String>,
}

/// The SQL whose one tab-separated row [`parse_status`] reads: postgres' own record of archiving.
pub const ARCHIVER_SQL: &str = "SELECT coalesce(last_archived_wal, ''), coalesce(extract(epoch FROM last_archived_time)::bigint::text, ''), failed_count, coalesce(extract(epoch FROM last_failed_time)::bigint::text, '') FROM pg_stat_archiver;\n";

/// Reads `pg_stat_archiver`'s row and `pgbackrest info --output=json` at `now` (Unix seconds).
pub fn parse_status(
    archiver: &str,
    info: &str,
    now: u64,
    timeout_s: u64,
) -> Result<ArchiveStatus, String> {
    let row: Vec<&str> = archiver.trim_end_matches('\n').split('\t').collect();
    let [wal, archived_at, failed, failed_at] = row.as_slice() else {
        return Err(format!(
            "unexpected pg_stat_archiver row `{}`",
            archiver.trim()
        ));
    };
    let epoch = |s: &str| s.trim().parse::<u64>().ok();
    let archived_at = epoch(archived_at);
    let failed_at = epoch(failed_at);
    let info: serde_json::Value =
        serde_json::from_str(info).map_err(|e| format!("pgbackrest info is not JSON: {e}"))?;
    let backups = info[0]["backup"].as_array().cloned().unwrap_or_default();
    let repository_bytes = backups
        .iter()
        .filter_map(|b| b["info"]["repository"]["delta"].as_u64())
        .sum();
    let oldest = backups
        .iter()
        .filter_map(|b| b["timestamp"]["stop"].as_u64())
        .min();
    let newest = archived_at.or_else(|| {
        backups
            .iter()
            .filter_map(|b| b["timestamp"]["stop"].as_u64())
            .max()
    });
    let age = |t: Option<u64>| t.map(|t| now.saturating_sub(t));
    let last_archived_age_s = age(archived_at);
    let failing = match (failed_at, archived_at) {
        (Some(f), Some(a)) => f > a,
        (Some(_), None) => true,
        _ => false,
    };
    let stalled = failing || last_archived_age_s.is_none_or(|a| a > 2 * timeout_s);
    Ok(ArchiveStatus {
        last_archived_wal: Some((*wal).to_owned()).filter(|w| !w.is_empty()),
        last_archived_age_s,
        failed_count: failed.trim().parse().unwrap_or(0),
        last_failed_age_s: age(failed_at),
        backups: backups.len(),
        repository_bytes,
        oldest_restore_point: oldest,
        newest_restore_point: newest,
        stalled,
        backup_host: None,
        backup_host_error: None,
    })
}

/// The repository a point-in-time restore reads: its path in the postgres container, and the stack secret that
/// encrypts it.
#[derive(Debug, Clone)]
pub struct Repository {
    pub path: String,
    pub cipher: Option<Cipher>,
    /// The repository is on the backup host (`ssh://`), reached over TLS; `path` is its path there.
    pub on_backup_host: bool,
}

/// The passphrase of an encrypted repository, and the name of the secret it came from (what errors name).
#[derive(Debug, Clone)]
pub struct Cipher {
    pub secret: String,
    pub passphrase: Secret,
}

impl Repository {
    /// The repository of `archive` at `path`, with the passphrase from the stack's secrets. A passphrase secret
    /// without a value is an error naming the secret (never a value) and what to do.
    pub fn new(
        path: &str,
        archive: &Archive,
        secrets: &[(String, Secret)],
    ) -> Result<Self, String> {
        let cipher = match &archive.encrypt_passphrase {
            None => None,
            Some(name) => {
                let passphrase = secrets
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.expose().is_empty())
                    .ok_or_else(|| {
                        format!(
                            "the secret `{name}` (`backup.archive.encrypt_passphrase`) has no value, and the pgBackRest repository is encrypted with it\n  help: set `{name}` in the secrets file to the passphrase the repository was created with (the value `vldeploy up` applied)"
                        )
                    })?;
                Some(Cipher {
                    secret: name.clone(),
                    passphrase,
                })
            }
        };
        Ok(Self {
            path: path.to_owned(),
            cipher,
            on_backup_host: false,
        })
    }

    /// The repository of `archive` on its backup host, with the passphrase from the stack's secrets.
    pub fn on_backup_host(
        path: &str,
        archive: &Archive,
        secrets: &[(String, Secret)],
    ) -> Result<Self, String> {
        Ok(Self {
            on_backup_host: true,
            ..Self::new(path, archive, secrets)?
        })
    }

    /// What a failed pgBackRest restore means, when its output shows the passphrase is wrong or missing: the
    /// secret named, what to do; pgBackRest's own text of an undecryptable file (binary) is left out.
    pub fn explain(&self, stderr: &str) -> Option<String> {
        let secret = self.cipher.as_ref().map(|c| c.secret.as_str());
        let wrong = stderr.contains("unable to load info file")
            && (stderr.contains("FormatError") || stderr.contains("CryptoError"));
        let missing = stderr.contains("requires option: repo1-cipher-pass");
        match secret {
            Some(name) if wrong => Some(format!(
                "the pgBackRest repository does not decrypt with the passphrase in the secret `{name}` (`backup.archive.encrypt_passphrase`): pgBackRest cannot read its `backup.info`\n  help: set `{name}` in the secrets file to the passphrase the repository was created with (the value `vldeploy up` applied), then run the restore again"
            )),
            _ if missing => Some(format!(
                "the pgBackRest repository is encrypted and no passphrase was given\n  help: {}",
                secret.map_or_else(
                    || "name its passphrase's secret in `backup.archive.encrypt_passphrase`"
                        .to_owned(),
                    |name| format!(
                        "set `{name}` in the secrets file to the repository's passphrase"
                    )
                )
            )),
            _ => None,
        }
    }
}

/// Where a point-in-time restore stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreTarget {
    /// The end of the archived WAL.
    Latest,
    /// A moment, in pgBackRest's form (`2026-12-02 13:14:15+00`, UTC).
    Time(String),
}

impl RestoreTarget {
    /// `latest`, or an RFC 3339 time (`2026-12-02T13:14:15Z`, `2026-12-02 13:14:15+05:30`); an error names the
    /// accepted forms.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "latest" {
            return Ok(Self::Latest);
        }
        let t = humantime::parse_rfc3339_weak(s)
            .or_else(|_| humantime::parse_rfc3339(s))
            .or_else(|_| {
                chrono_free_offset(s).ok_or(())
            })
            .map_err(|()| {
                format!(
                            "`--to {s}` is not a time: write `latest`, an RFC 3339 time such as `2026-12-02T13:14:15Z`, or `YYYY-MM-DD HH:MM:SS[+TZ]` (UTC without a zone)"
                )
            })?;
        Ok(Self::at(t))
    }

    /// The target at `t`, to the second.
    pub fn at(t: std::time::SystemTime) -> Self {
        let text = humantime::format_rfc3339_seconds(t).to_string();
        // `2026-12-02T13:14:15Z` → `2026-12-02 13:14:15+00`
        Self::Time(format!(
            "{}+00",
            text.trim_end_matches('Z').replacen('T', " ", 1)
        ))
    }

    /// The target as a journal records it (`latest`, or pgBackRest's form of the time).
    pub fn text(&self) -> &str {
        match self {
            Self::Latest => "latest",
            Self::Time(t) => t,
        }
    }

    /// The target a journal recorded with [`RestoreTarget::text`].
    pub fn from_journal(s: &str) -> Self {
        if s == "latest" {
            Self::Latest
        } else {
            Self::Time(s.to_string())
        }
    }

    /// The moment, in seconds since the epoch (`None` for `latest`).
    pub fn epoch(&self) -> Option<u64> {
        let Self::Time(t) = self else { return None };
        humantime::parse_rfc3339_weak(t.trim_end_matches("+00"))
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }

    /// Refuses a target the repository cannot reach: no backup at all, a time before the oldest restore point
    /// (the end of the oldest backup, `oldest`), or a time after `now`.
    pub fn reachable(&self, oldest: Option<u64>, now: u64) -> Result<(), String> {
        let when = |t: u64| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
            )
            .to_string()
        };
        let Some(oldest) = oldest else {
            return Err("the pgBackRest repository holds no backup yet\n  help: `vldeploy backup now` takes one; a restore reaches any moment after it".into());
        };
        match self.epoch() {
            Some(t) if t < oldest => Err(format!(
                "no backup precedes {}: the oldest restore point is {}\n  help: pass a `--to` at or after {}",
                when(t),
                when(oldest),
                when(oldest)
            )),
            Some(t) if t > now => Err(format!(
                "{} is in the future (it is {} now)\n  help: `--to latest` restores everything archived",
                when(t),
                when(now)
            )),
            _ => Ok(()),
        }
    }

    /// pgBackRest's restore options for this target: after it, postgres promotes and serves.
    pub fn options(&self) -> Vec<String> {
        match self {
            Self::Latest => vec!["--type=default".to_owned()],
            Self::Time(t) => vec![
                "--type=time".to_owned(),
                format!("--target={t}"),
                "--target-action=promote".to_owned(),
            ],
        }
    }
}

/// An RFC 3339 time with a numeric offset (`2026-12-02T13:14:15+05:30`), as UTC.
fn chrono_free_offset(s: &str) -> Option<std::time::SystemTime> {
    let (base, sign, off) = if let Some(i) = s.rfind('+').filter(|i| *i > 10) {
        (&s[..i], 1i64, &s[i + 1..])
    } else if let Some(i) = s.rfind('-').filter(|i| *i > 10) {
        (&s[..i], -1, &s[i + 1..])
    } else {
        return None;
    };
    let (hours, minutes) = match off.split_once(':') {
        Some(hm) => hm,
        None if off.len() == 4 => off.split_at(2),
        None if off.len() == 2 => (off, "0"),
        None => return None,
    };
    let secs = sign * (hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60);
    let local = humantime::parse_rfc3339_weak(base).ok()?;
    let shift = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        local.checked_sub(shift)
    } else {
        local.checked_add(shift)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::render::snapshot::assert_snapshot;

    fn archive(repo: ArchiveRepo) -> Archive {
        Archive {
            repo,
            timeout: Duration::from_mins(1),
            full: "0 3 * * 0".into(),
            diff: Some("0 3 * * 1-6".into()),
            retention_full: 2,
            encrypt_passphrase: Some("PGBACKREST_PASSPHRASE".into()),
            repo_address: None,
            db_address: None,
        }
    }

    #[test]
    fn a_local_repository_holds_the_passphrase_and_retention() {
        let c = ArchiveConfig::new(
            "vaibava",
            &archive(ArchiveRepo::Local("/var/lib/pgbackrest".into())),
            Some(Secret::new("correct horse battery staple")),
        );
        assert_snapshot("pgbackrest.local.conf", &c.database_conf().unwrap());
        assert_eq!(
            c.postgres_settings("/etc/pgbackrest/pgbackrest.conf"),
            [
                ("archive_mode", "on".to_owned()),
                (
                    "archive_command",
                    "pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main archive-push %p"
                        .to_owned()
                ),
                ("archive_timeout", "60s".to_owned()),
                ("wal_level", "replica".to_owned()),
            ]
        );
    }

    #[test]
    fn a_backup_host_repository_is_named_by_host_user_and_port() {
        let c = ArchiveConfig::new(
            "vaibava",
            &archive(ArchiveRepo::Ssh {
                user: "pgbackrest".into(),
                host: "vault.example".into(),
                port: 2222,
                path: "/var/lib/pgbackrest".into(),
            }),
            Some(Secret::new("correct horse battery staple")),
        )
        .with_peers(Some(Peers {
            repo: "10.0.0.9".into(),
            db: "db.example".into(),
        }));
        let text = c.database_conf().unwrap();
        assert_snapshot("pgbackrest.database.conf", &text);
        assert!(!text.contains("correct horse"), "{text}");
        // The backup host holds the repository and its passphrase, and backs up the database host over TLS.
        let repo = c.repository_conf().unwrap();
        assert_snapshot("pgbackrest.repository.conf", &repo);
        assert!(repo.contains("\nrepo1-cipher-pass=correct horse battery staple\n"));
        assert!(
            repo.contains("\npg1-host=db.example\npg1-host-type=tls\n"),
            "{repo}"
        );
        assert!(
            repo.contains("\ntls-server-auth=db.example=main\n"),
            "{repo}"
        );
        assert!(text.contains("\ntls-server-auth=10.0.0.9=main\n"), "{text}");
        // An address that would break the file is refused.
        let bad = c.clone().with_peers(Some(Peers {
            repo: "10.0.0.9\nrepo1-path=/".into(),
            db: "db".into(),
        }));
        assert!(bad.database_conf().is_err());
    }

    #[test]
    fn restore_targets_are_utc_seconds_or_latest() {
        assert_eq!(
            RestoreTarget::parse("latest").unwrap(),
            RestoreTarget::Latest
        );
        assert_eq!(
            RestoreTarget::parse("2026-12-02T13:14:15Z").unwrap(),
            RestoreTarget::Time("2026-12-02 13:14:15+00".into())
        );
        assert_eq!(
            RestoreTarget::parse("2026-12-02 18:44:15+05:30").unwrap(),
            RestoreTarget::Time("2026-12-02 13:14:15+00".into())
        );
        assert_eq!(
            RestoreTarget::parse("yesterday").unwrap_err(),
            "`--to yesterday` is not a time: write `latest`, an RFC 3339 time such as `2026-12-02T13:14:15Z`, or `YYYY-MM-DD HH:MM:SS[+TZ]` (UTC without a zone)"
        );
        assert_eq!(
            RestoreTarget::parse("2026-12-02 13:14:15").unwrap(),
            RestoreTarget::Time("2026-12-02 13:14:15+00".into())
        );
        assert_eq!(
            RestoreTarget::parse("2026-12-02 14:14:15+01").unwrap(),
            RestoreTarget::Time("2026-12-02 13:14:15+00".into())
        );
        assert_eq!(
            RestoreTarget::parse("2026-12-02 08:14:15-0500").unwrap(),
            RestoreTarget::Time("2026-12-02 13:14:15+00".into())
        );
        assert!(RestoreTarget::parse("2026-13-02 13:14:15").is_err());
        let t = RestoreTarget::parse("1970-01-01T00:01:40Z").unwrap();
        assert_eq!(t.epoch(), Some(100));
        assert_eq!(RestoreTarget::from_journal(t.text()), t);
        assert_eq!(RestoreTarget::from_journal("latest"), RestoreTarget::Latest);
        assert_eq!(t.reachable(Some(100), 200), Ok(()));
        assert_eq!(
            t.reachable(Some(101), 200).unwrap_err(),
            "no backup precedes 1970-01-01T00:01:40Z: the oldest restore point is 1970-01-01T00:01:41Z\n  help: pass a `--to` at or after 1970-01-01T00:01:41Z"
        );
        assert!(
            t.reachable(Some(50), 99)
                .unwrap_err()
                .contains("is in the future")
        );
        assert!(
            t.reachable(None, 200)
                .unwrap_err()
                .contains("holds no backup yet")
        );
        assert_eq!(RestoreTarget::Latest.reachable(Some(1), 2), Ok(()));
        assert_eq!(RestoreTarget::Latest.options(), ["--type=default"]);
        assert_eq!(
            RestoreTarget::Time("2026-12-02 13:14:15+00".into()).options(),
            [
                "--type=time",
                "--target=2026-12-02 13:14:15+00",
                "--target-action=promote"
            ]
        );
    }

    #[test]
    fn the_container_gets_the_configuration_the_command_and_the_passphrase_as_a_secret() {
        let mut c = ArchiveConfig::new(
            "vaibava",
            &archive(ArchiveRepo::Local("/var/lib/pgbackrest".into())),
            None,
        );
        c.encrypted = true;
        let text = c.database_conf().unwrap();
        assert!(text.contains("\nrepo1-cipher-type=aes-256-cbc\n"), "{text}");
        assert!(!text.contains("repo1-cipher-pass"), "{text}");
    }

    #[test]
    fn status_reads_the_archiver_row_and_the_repository() {
        let info = r#"[{"archive":[{"max":"000000010000000000000007"}],"backup":[
            {"info":{"repository":{"delta":1000}},"timestamp":{"start":90,"stop":100}},
            {"info":{"repository":{"delta":200}},"timestamp":{"start":190,"stop":200}}],"cipher":"aes-256-cbc"}]"#;
        let s = parse_status("000000010000000000000007\t290\t0\t\n", info, 300, 5).unwrap();
        assert_eq!(
            s,
            ArchiveStatus {
                last_archived_wal: Some("000000010000000000000007".into()),
                last_archived_age_s: Some(10),
                failed_count: 0,
                last_failed_age_s: None,
                backups: 2,
                repository_bytes: 1200,
                oldest_restore_point: Some(100),
                newest_restore_point: Some(290),
                stalled: false,
                backup_host: None,
                backup_host_error: None,
            }
        );
        // Older than twice the timeout, or failing since the last success: stalled.
        assert!(parse_status("w\t280\t0\t\n", info, 300, 5).unwrap().stalled);
        assert!(
            parse_status("w\t299\t3\t300\n", info, 300, 5)
                .unwrap()
                .stalled
        );
        assert!(parse_status("\t\t0\t\n", "[{}]", 300, 5).unwrap().stalled);
        assert!(parse_status("nonsense", info, 300, 5).is_err());
    }

    #[test]
    fn a_wrong_or_missing_passphrase_is_named_by_its_secret() {
        let a = archive(ArchiveRepo::Local("/var/lib/pgbackrest".into()));
        let secrets = |v: &str| vec![("PGBACKREST_PASSPHRASE".to_owned(), Secret::new(v))];
        assert_eq!(
            Repository::new("/var/lib/pgbackrest", &a, &secrets("")).unwrap_err(),
            "the secret `PGBACKREST_PASSPHRASE` (`backup.archive.encrypt_passphrase`) has no value, and the pgBackRest repository is encrypted with it\n  help: set `PGBACKREST_PASSPHRASE` in the secrets file to the passphrase the repository was created with (the value `vldeploy up` applied)"
        );
        let repo = Repository::new("/var/lib/pgbackrest", &a, &secrets("hunter2")).unwrap();
        assert_eq!(repo.cipher.as_ref().unwrap().passphrase.expose(), "hunter2");
        // What pgBackRest 2.45 prints for a restore with the wrong passphrase (the binary bytes shortened).
        let wrong = "WARN: repo1: [FormatError] unable to load info file '/var/lib/pgbackrest/backup/main/backup.info' or '/var/lib/pgbackrest/backup/main/backup.info.copy':\n      FormatError: key/value found outside of section at line 1: \u{fffd}\u{1d}iPj\n      HINT: backup.info cannot be opened and is required to perform a backup.\n      HINT: has a stanza-create been performed?\nERROR: [075]: no backup set found to restore";
        let text = repo.explain(wrong).unwrap();
        assert!(
            text.starts_with("the pgBackRest repository does not decrypt with the passphrase in the secret `PGBACKREST_PASSPHRASE`"),
            "{text}"
        );
        assert!(!text.contains("hunter2") && !text.contains("iPj"), "{text}");
        assert!(
            repo.explain("ERROR: [037]: restore command requires option: repo1-cipher-pass")
                .unwrap()
                .contains("set `PGBACKREST_PASSPHRASE` in the secrets file")
        );
        assert_eq!(
            repo.explain("ERROR: [075]: no backup set found to restore"),
            None
        );
        let mut plain = a.clone();
        plain.encrypt_passphrase = None;
        let repo = Repository::new("/var/lib/pgbackrest", &plain, &[]).unwrap();
        assert!(repo.cipher.is_none());
        assert_eq!(repo.explain(wrong), None);
    }

    #[test]
    fn a_passphrase_with_a_newline_is_refused_without_showing_it() {
        let c = ArchiveConfig::new(
            "vaibava",
            &archive(ArchiveRepo::Local("/var/lib/pgbackrest".into())),
            Some(Secret::new("s3cret\n[global]")),
        );
        let e = c.database_conf().unwrap_err().to_string();
        assert_eq!(
            e,
            "template `backup/pgbackrest.conf` failed to render: the repository passphrase holds a control character or is empty"
        );
    }
}
