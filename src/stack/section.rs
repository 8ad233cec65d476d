//! The host-level sections `tls`, `firewall`, `backup` and `checklist`: their types and how they are read.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::document::{Kind, Node};
use super::error::StackError;
use super::format;
use super::keys;
use super::model::EnvValue;
use super::reader::{Reader, place};
use super::suggest;
use crate::secret::Secret;

/// How nginx gets its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub enum Tls {
    /// Plain HTTP only.
    #[default]
    Off,
    Acme(Acme),
    Provided(ProvidedCert),
}

/// Certificates from an ACME CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acme {
    /// The directory URL (`letsencrypt` and `letsencrypt-staging` are resolved).
    pub directory: String,
    pub email: Option<String>,
    /// External account binding, when the CA requires it.
    pub eab: Option<Eab>,
    /// A CA bundle to trust for the directory (a test CA).
    pub ca_bundle: Option<PathBuf>,
}

/// External account binding credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eab {
    pub kid: EnvValue,
    pub hmac: Secret,
}

/// A certificate and key that the operator supplies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvidedCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Inbound rules beyond SSH, 80 and 443.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Firewall {
    pub allow: Vec<AllowRule>,
    /// Answer pings; default true.
    pub icmp: bool,
    /// Ports that a probe from outside must find closed.
    pub must_be_closed: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowRule {
    pub port: u16,
    pub proto: Proto,
    /// Addresses or CIDR ranges; empty means from anywhere.
    pub from: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Proto {
    Tcp,
    Udp,
}

/// The database backup cron.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backup {
    /// Five-field cron schedule; default `0 2 * * *`.
    pub schedule: String,
    /// Where backups are written on the host; default `/var/backups/<stack name>`.
    pub dir: String,
    pub retention: Retention,
    /// Where a copy of each backup goes (`user@host:/path` or a path).
    pub copy_to: Option<String>,
    /// The recipient (public key) backups are encrypted to.
    pub encrypt: Option<String>,
    /// Continuous WAL archiving with pgBackRest, when set.
    pub archive: Option<Archive>,
}

/// Continuous archiving with pgBackRest: WAL pushed as it is written, full and differential backups on a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Archive {
    pub repo: ArchiveRepo,
    /// `archive_timeout`: a WAL segment is archived at least this often; the most a lost host loses.
    pub timeout: Duration,
    /// Five-field cron schedule of full backups; default `0 3 * * 0`.
    pub full: String,
    /// Five-field cron schedule of differential backups; default `0 3 * * 1-6`; `false` for none.
    pub diff: Option<String>,
    /// Full backups kept (with the WAL they need); default 2.
    pub retention_full: u32,
    /// The name of the secret whose value encrypts the repository (aes-256-cbc), when set.
    pub encrypt_passphrase: Option<String>,
    /// A backup host's address as the database host reaches it (its pgBackRest TLS port), when it is not the
    /// host of `repo`'s ssh URL (a NAT, a private network).
    pub repo_address: Option<String>,
    /// The database host's address as a backup host reaches it, when it is not the environment's host.
    pub db_address: Option<String>,
}

/// Where pgBackRest's repository is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ArchiveRepo {
    /// A path on the database host (not off-site: for tests and as a first step).
    Local(String),
    /// A separate backup host reached over SSH (pgBackRest's repository-host mode).
    Ssh {
        user: String,
        host: String,
        port: u16,
        path: String,
    },
}

/// How many backups of each kind are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            daily: 7,
            weekly: 4,
            monthly: 6,
        }
    }
}

/// The go-live checklist of a gated environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checklist {
    /// Item names; all items unless set.
    pub items: Vec<String>,
    /// How old an item's evidence may be, by item name.
    pub freshness: BTreeMap<String, Duration>,
}

pub(crate) fn tls(r: &Reader<'_>, node: &Node) -> Result<Tls, StackError> {
    const HELP: &str = "write `tls: off`, `tls: {acme: {directory: letsencrypt, email: ...}}` or `tls: {provided: {cert: ..., key: ...}}`";
    if matches!(node.kind, Kind::Scalar { .. }) && !node.is_null() {
        return match r.string(node)?.as_str() {
            "off" | "false" => Ok(Tls::Off),
            other => Err(r.error_at(
                node,
                format!("invalid tls mode `{other}` at {}", place(&node.path)),
                HELP,
            )),
        };
    }
    let map = r.map(node, keys::TLS)?;
    match map.entries {
        [one] if one.key == "acme" => acme(r, &one.value).map(Tls::Acme),
        [one] => {
            let m = r.map(&one.value, keys::PROVIDED)?;
            Ok(Tls::Provided(ProvidedCert {
                cert: r.path(r.require(m, "cert", "name the certificate chain file (PEM)")?)?,
                key: r.path(r.require(m, "key", "name the private key file (PEM)")?)?,
            }))
        }
        [] => Err(r.error_at(node, format!("empty `tls` at {}", place(&node.path)), HELP)),
        [_, second, ..] => Err(r.error(
            second.key_span,
            format!(
                "`tls` takes one of `acme` or `provided`, not both, at {}",
                place(&node.path)
            ),
            "keep one of them",
        )),
    }
}

fn acme(r: &Reader<'_>, node: &Node) -> Result<Acme, StackError> {
    let m = r.map(node, keys::ACME)?;
    let directory = r.parse(
        r.require(
            m,
            "directory",
            "write `directory: letsencrypt` or the CA's directory URL",
        )?,
        format::acme_directory,
    )?;
    let email = m
        .get("email")
        .map(|n| r.parse(n, format::email))
        .transpose()?;
    let eab = match (m.get("eab_kid"), m.get("eab_hmac")) {
        (None, None) => None,
        (Some(kid), Some(hmac)) => Some(Eab {
            kid: r.env_value(kid)?,
            hmac: Secret::new(r.text(hmac)?.value),
        }),
        (Some(_), None) | (None, Some(_)) => {
            let present = m.entry("eab_kid").or_else(|| m.entry("eab_hmac"));
            let span = present.map_or_else(|| node.span(r.source), |e| e.key_span);
            return Err(r.error(
                span,
                format!(
                    "`eab_kid` and `eab_hmac` go together at {}",
                    place(&node.path)
                ),
                "set both (the CA gives them as a pair) or neither",
            ));
        }
    };
    let ca_bundle = m.get("ca_bundle").map(|n| r.path(n)).transpose()?;
    Ok(Acme {
        directory,
        email,
        eab,
        ca_bundle,
    })
}

pub(crate) fn firewall(r: &Reader<'_>, node: &Node) -> Result<Firewall, StackError> {
    let m = r.map(node, keys::FIREWALL)?;
    let mut allow = Vec::new();
    if let Some(list) = m.get("allow") {
        for item in r.list(list)? {
            let rule = r.map(item, keys::ALLOW)?;
            let port =
                r.port(r.require(rule, "port", "name the port to open, e.g. `port: 22`")?)?;
            let proto = match rule.get("proto") {
                None => Proto::Tcp,
                Some(p) => match r.string(p)?.as_str() {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    other => {
                        return Err(r.error_at(
                            p,
                            format!("invalid protocol `{other}` at {}", place(&p.path)),
                            "write `tcp` or `udp`",
                        ));
                    }
                },
            };
            let from = match rule.get("from") {
                None => Vec::new(),
                Some(f) => r
                    .list(f)?
                    .iter()
                    .map(|n| r.parse(n, format::cidr))
                    .collect::<Result<_, _>>()?,
            };
            allow.push(AllowRule { port, proto, from });
        }
    }
    let icmp = m
        .get("icmp")
        .map(|n| r.boolean(n))
        .transpose()?
        .unwrap_or(true);
    let must_be_closed = match m.get("must_be_closed") {
        None => Vec::new(),
        Some(list) => r
            .list(list)?
            .iter()
            .map(|n| r.port(n))
            .collect::<Result<_, _>>()?,
    };
    Ok(Firewall {
        allow,
        icmp,
        must_be_closed,
    })
}

pub(crate) fn backup(r: &Reader<'_>, node: &Node, stack_name: &str) -> Result<Backup, StackError> {
    let m = r.map(node, keys::BACKUP)?;
    let schedule = match m.get("schedule") {
        Some(n) => r.parse(n, format::cron)?,
        None => "0 2 * * *".to_owned(),
    };
    let dir = match m.get("dir") {
        Some(n) => r.parse(n, |s| {
            format::host_path(s, "backup dir", "/var/backups/shop")
        })?,
        None => format!("/var/backups/{stack_name}"),
    };
    let mut retention = Retention::default();
    if let Some(n) = m.get("retention") {
        let rm = r.map(n, keys::RETENTION)?;
        for (key, slot) in [
            ("daily", &mut retention.daily),
            ("weekly", &mut retention.weekly),
            ("monthly", &mut retention.monthly),
        ] {
            if let Some(v) = rm.get(key) {
                *slot = r.count(v)?;
            }
        }
    }
    let copy_to = m
        .get("copy_to")
        .map(|n| r.parse(n, format::copy_to))
        .transpose()?;
    let encrypt = match m.get("encrypt") {
        None => None,
        Some(n) if n.describe() == "a boolean" => {
            if r.boolean(n)? {
                return Err(r.error_at(
                    n,
                    format!("`encrypt` needs a recipient at {}", place(&n.path)),
                    "write the public key (recipient) backups are encrypted to, or `false`",
                ));
            }
            None
        }
        Some(n) => Some(r.string(n)?),
    };
    let archive = m.get("archive").map(|n| archive(r, n)).transpose()?;
    Ok(Backup {
        schedule,
        dir,
        retention,
        copy_to,
        encrypt,
        archive,
    })
}

fn archive(r: &Reader<'_>, node: &Node) -> Result<Archive, StackError> {
    let m = r.map(node, keys::ARCHIVE)?;
    let repo = r.parse(
        r.require(
            m,
            "repo",
            "name the repository: `ssh://backup@vault.example/var/lib/pgbackrest` (a backup host) or a path on the host",
        )?,
        format::archive_repo,
    )?;
    let timeout = match m.get("timeout") {
        Some(n) => {
            let d = r.parse(n, format::duration)?;
            if d < Duration::from_secs(1) || d > Duration::from_hours(1) || d.subsec_nanos() != 0 {
                return Err(r.error_at(
                    n,
                    format!(
                        "`timeout` must be whole seconds from 1s to 1h at {}",
                        place(&n.path)
                    ),
                    "it is postgres' `archive_timeout`: the most a lost host loses, e.g. `60s`",
                ));
            }
            d
        }
        None => Duration::from_mins(1),
    };
    let full = match m.get("full") {
        Some(n) => r.parse(n, format::cron)?,
        None => "0 3 * * 0".to_owned(),
    };
    let diff = match m.get("diff") {
        None => Some("0 3 * * 1-6".to_owned()),
        Some(n) if n.describe() == "a boolean" => {
            if r.boolean(n)? {
                return Err(r.error_at(
                    n,
                    format!("`diff` needs a schedule at {}", place(&n.path)),
                    "write a five-field cron schedule, e.g. `0 3 * * 1-6`, or `false` for none",
                ));
            }
            None
        }
        Some(n) => Some(r.parse(n, format::cron)?),
    };
    let mut retention_full = 2;
    if let Some(n) = m.get("retention") {
        let rm = r.map(n, keys::ARCHIVE_RETENTION)?;
        if let Some(v) = rm.get("full") {
            retention_full = r.count(v)?;
            if retention_full == 0 {
                return Err(r.error_at(
                    v,
                    format!("`full` must keep at least one backup at {}", place(&v.path)),
                    "write how many full backups to keep, e.g. `2`",
                ));
            }
        }
    }
    let encrypt_passphrase = match m.get("encrypt_passphrase") {
        None => None,
        Some(n) => {
            let name = r.string(n)?;
            let known = r.vars.named_secrets();
            if !known.iter().any(|(k, _)| *k == name) {
                let help = match suggest::did_you_mean(&name, known.iter().map(|(k, _)| k.as_str())) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "name a secret (listed in `secrets:` and defined in the secrets file); its value is the passphrase".to_owned(),
                };
                return Err(r.error_at(
                    n,
                    format!(
                        "`encrypt_passphrase` names no secret: `{name}` at {}",
                        place(&n.path)
                    ),
                    help,
                ));
            }
            Some(name)
        }
    };
    let address = |key: &str| {
        m.get(key)
            .map(|n| r.parse(n, format::peer_address))
            .transpose()
    };
    let repo_address = address("repo_address")?;
    let db_address = address("db_address")?;
    Ok(Archive {
        repo,
        timeout,
        full,
        diff,
        retention_full,
        encrypt_passphrase,
        repo_address,
        db_address,
    })
}

fn checklist_item(r: &Reader<'_>, node: &Node, name: &str) -> Result<String, StackError> {
    if keys::CHECKLIST_ITEMS.contains(&name) {
        return Ok(name.to_owned());
    }
    let help = match suggest::did_you_mean(name, keys::CHECKLIST_ITEMS.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "the items are {}",
            suggest::list(keys::CHECKLIST_ITEMS.iter().copied())
        ),
    };
    Err(r.error_at(
        node,
        format!("unknown checklist item `{name}` at {}", place(&node.path)),
        help,
    ))
}

pub(crate) fn checklist(r: &Reader<'_>, node: &Node) -> Result<Checklist, StackError> {
    let m = r.map(node, keys::CHECKLIST)?;
    let items = match m.get("items") {
        None => keys::CHECKLIST_ITEMS
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        Some(list) => {
            let mut items: Vec<String> = Vec::new();
            for n in r.list(list)? {
                let name = checklist_item(r, n, &r.string(n)?)?;
                if !items.contains(&name) {
                    items.push(name);
                }
            }
            items
        }
    };
    let mut freshness = BTreeMap::new();
    if let Some(f) = m.get("freshness") {
        for entry in r.any_map(f)? {
            let name = checklist_item(
                r,
                &Node {
                    kind: Kind::Scalar {
                        value: entry.key.clone(),
                        style: super::document::Style::Plain,
                    },
                    mark: entry.key_span.mark,
                    path: entry.value.path.clone(),
                    key: Some(entry.key_span),
                },
                &entry.key,
            )?;
            freshness.insert(name, r.parse(&entry.value, format::duration)?);
        }
    }
    Ok(Checklist { items, freshness })
}
