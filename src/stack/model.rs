//! The validated stack for one environment: what the planner and the transport work from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::section::{Backup, Checklist, Firewall, Tls};
use crate::secret::Secret;

/// A stack file loaded for one environment, with every `${VAR}` resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stack {
    pub name: String,
    pub environment: String,
    /// The directory that holds the stack file (absolute).
    pub project_dir: PathBuf,
    /// The host of a one-host environment (`host:`); the first host of `hosts:` otherwise.
    pub target: SshUrl,
    /// `hosts:`, the machines of a multi-host environment by role; empty for one `host:`.
    pub hosts: Vec<ClusterHost>,
    /// The user `vldeploy bootstrap` first connects as (`root`, or a user with sudo); `target.user` is the
    /// user it creates.
    pub bootstrap_user: String,
    /// The longest one remote command may take (`command_timeout:`, default 10 minutes).
    pub command_timeout: std::time::Duration,
    pub auth: SshAuth,
    pub host_keys: HostKeys,
    pub domain: String,
    pub gated: bool,
    pub services: BTreeMap<String, Service>,
    /// Every secret value loaded, longest first, for scrubbing output.
    pub secrets: Vec<Secret>,
    /// Every secret variable by name (declared in `secrets:` or defined in the secrets file), sorted by name.
    #[serde(skip)]
    pub named_secrets: Vec<(String, Secret)>,
    /// Variables of the secrets or env file that the process environment overrides with another value:
    /// `(name, file)`, for a warning (a shell exporting another host's password must not go unnoticed).
    #[serde(skip)]
    pub overridden: Vec<(String, String)>,
    pub tls: Tls,
    pub firewall: Option<Firewall>,
    pub backup: Option<Backup>,
    pub checklist: Option<Checklist>,
    /// `site:`: the storefront's directory (absolute, inside the project), served by nginx.
    pub site: Option<PathBuf>,
    /// `catalog:`: the catalog CSV (absolute, inside the project) imported at first launch.
    pub catalog: Option<PathBuf>,
}

/// `ssh://user@host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshUrl {
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for SshUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "ssh://{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            write!(f, "ssh://{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

/// One machine of a multi-host environment and the roles it plays there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterHost {
    pub target: SshUrl,
    /// Sorted, without repeats.
    pub roles: Vec<Role>,
}

impl ClusterHost {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// What a machine of a multi-host environment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// nginx, with ports 80 and 443.
    Edge,
    /// Backend replicas.
    App,
    /// postgres, its volume and its backups.
    Db,
}

impl Role {
    pub const ALL: [Self; 3] = [Self::Edge, Self::App, Self::Db];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edge => "edge",
            Self::App => "app",
            Self::Db => "db",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Why a stack needs the role, for help texts.
    pub(crate) fn what_runs_there(self) -> &'static str {
        match self {
            Self::Edge => "nginx runs on the `edge` hosts, with ports 80 and 443",
            Self::App => "the backend's replicas run on the `app` hosts",
            Self::Db => "postgres runs on the `db` host, with its volume and its backups",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to authenticate to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SshAuth {
    /// A private key file (absolute, `~` expanded).
    Key(PathBuf),
    /// The running ssh-agent.
    Agent,
}

/// How to verify the host's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum HostKeys {
    /// An OpenSSH `known_hosts` file (absolute, `~` expanded).
    KnownHosts(PathBuf),
    /// A pinned fingerprint, `SHA256:...`.
    Pinned(String),
}

/// One of `nginx`, `postgres`, `backend`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub name: String,
    pub source: ImageSource,
    pub env: BTreeMap<String, EnvValue>,
    pub volumes: Vec<VolumeMount>,
    pub ports: Vec<PortMapping>,
    /// The port the service listens on inside the private network.
    pub port: Option<u16>,
    pub healthcheck: Option<HealthCheck>,
    pub depends_on: Vec<String>,
    /// `replicas:` (the backend only; on a multi-host environment). `None`: one task per `app` host.
    pub replicas: Option<u32>,
}

/// Where a service's image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ImageSource {
    Build(BuildSpec),
    /// A reference the host's engine pulls.
    Image(String),
}

/// An image built from a local context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSpec {
    /// The build context (absolute).
    pub context: PathBuf,
    /// Relative to the context; `Dockerfile` unless set.
    pub dockerfile: String,
    /// A shell command run locally, in the project directory, before the build.
    pub prepare: Option<String>,
    /// Paths and globs (relative to the project directory) that `prepare` reads: when the files they match
    /// are unchanged since its last successful run, it is not run again. Empty: it runs every time.
    pub inputs: Vec<String>,
    pub args: BTreeMap<String, String>,
}

/// An `env` value: plain, or secret when it interpolates a secret variable.
#[derive(Clone, PartialEq, Eq)]
pub enum EnvValue {
    Plain(String),
    Secret(Secret),
}

impl EnvValue {
    /// The real value, for the container's environment.
    pub fn expose(&self) -> &str {
        match self {
            Self::Plain(s) => s,
            Self::Secret(s) => s.expose(),
        }
    }

    pub fn is_secret(&self) -> bool {
        matches!(self, Self::Secret(_))
    }
}

impl fmt::Display for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(s) => f.write_str(s),
            Self::Secret(s) => fmt::Display::fmt(s, f),
        }
    }
}

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(s) => f.debug_tuple("Plain").field(s).finish(),
            Self::Secret(s) => f.debug_tuple("Secret").field(s).finish(),
        }
    }
}

impl Serialize for EnvValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `source:target[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeMount {
    /// A named volume or an absolute host path.
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// `[ip:]host:container`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortMapping {
    pub host_ip: Option<IpAddr>,
    pub host: u16,
    pub container: u16,
}

/// How to tell that a service is healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Probe {
    /// A command run inside the container; healthy when it exits 0.
    Command(Vec<String>),
    /// A path requested over HTTP on the service's port; healthy on a 2xx.
    Http(String),
}
