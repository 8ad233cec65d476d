//! Where a port of the host is tried from where vldeploy runs: `host:port`, or the sandbox's published ports.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::stack::Stack;

/// How the probe reaches the host's ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Reach {
    /// A real host: its port P is tried at `host:P`; sshd listens on `ssh_port`.
    Direct { host: String, ssh_port: u16 },
    /// The sandbox host: the local Docker engine publishes its port P on `host:ports[P]` through a forwarding
    /// proxy, which accepts every connection first and closes it when the host refuses. Only a reply or a
    /// close counts as an answer there; silence means the host dropped the connection.
    Published {
        host: String,
        ports: BTreeMap<u16, u16>,
    },
}

/// The port the sandbox host's sshd listens on.
const SANDBOX_SSH_PORT: u16 = 22;

impl Reach {
    /// The sandbox environment reads the ports from `.vldeploy/sandbox/sandbox.env`; any other environment
    /// reaches its SSH host directly.
    pub fn for_stack(stack: &Stack) -> Self {
        if stack.environment == "sandbox" {
            let env = stack.project_dir.join(".vldeploy/sandbox/sandbox.env");
            if let Some(reach) = Self::from_sandbox_env(&env, &stack.target.host) {
                return reach;
            }
        }
        Self::Direct {
            host: stack.target.host.clone(),
            ssh_port: stack.target.port,
        }
    }

    fn from_sandbox_env(path: &Path, host: &str) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        Some(Self::Published {
            host: host.to_owned(),
            ports: sandbox_ports(&text),
        })
    }

    /// The address to try for the host's `port`, or `None` when it cannot be reached from here.
    pub fn address(&self, port: u16) -> Option<String> {
        match self {
            Self::Direct { host, .. } => Some(join(host, port)),
            Self::Published { host, ports } => ports.get(&port).map(|p| join(host, *p)),
        }
    }

    /// Whether connections go through a proxy that accepts them before the host does.
    pub fn proxied(&self) -> bool {
        matches!(self, Self::Published { .. })
    }

    /// The port sshd listens on, on the host.
    pub fn ssh_port(&self) -> u16 {
        match self {
            Self::Direct { ssh_port, .. } => *ssh_port,
            Self::Published { .. } => SANDBOX_SSH_PORT,
        }
    }

    /// What to do so that `port` can be probed, when it cannot.
    pub fn unreachable_hint(&self, port: u16) -> String {
        match self {
            Self::Direct { .. } => String::new(),
            Self::Published { .. } => format!(
                "the sandbox does not publish it (`vldeploy sandbox up --publish {port}` on a new sandbox)"
            ),
        }
    }
}

fn join(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `SANDBOX_SSH_PORT`, `SANDBOX_HTTP_PORT`, `SANDBOX_HTTPS_PORT` and `SANDBOX_PORT_<inner>` as inner → outer.
fn sandbox_ports(text: &str) -> BTreeMap<u16, u16> {
    let mut ports = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let Ok(outer) = value.trim().parse::<u16>() else {
            continue;
        };
        let inner = match key.trim() {
            "SANDBOX_SSH_PORT" => Some(SANDBOX_SSH_PORT),
            "SANDBOX_HTTP_PORT" => Some(80),
            "SANDBOX_HTTPS_PORT" => Some(443),
            other => other
                .strip_prefix("SANDBOX_PORT_")
                .and_then(|p| p.parse().ok()),
        };
        if let Some(inner) = inner {
            ports.insert(inner, outer);
        }
    }
    ports
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_env_maps_inner_ports_to_published_ones() {
        let text = "SANDBOX_SSH_PORT=40000\nSANDBOX_HTTP_PORT=40001\nSANDBOX_HTTPS_PORT=40004\n\
                    SANDBOX_PORT_5432=40002\nSANDBOX_PORT_8080=40003\nOTHER=1\n";
        let reach = Reach::Published {
            host: "127.0.0.1".into(),
            ports: sandbox_ports(text),
        };
        assert_eq!(reach.address(22).as_deref(), Some("127.0.0.1:40000"));
        assert_eq!(reach.address(443).as_deref(), Some("127.0.0.1:40004"));
        assert_eq!(reach.address(5432).as_deref(), Some("127.0.0.1:40002"));
        assert_eq!(reach.address(6379), None);
        assert!(reach.unreachable_hint(6379).contains("--publish 6379"));
        assert!(reach.proxied());
        assert_eq!(reach.ssh_port(), 22);
    }

    #[test]
    fn a_real_host_is_tried_directly() {
        let reach = Reach::Direct {
            host: "2001:db8::5".into(),
            ssh_port: 2222,
        };
        assert_eq!(reach.address(443).as_deref(), Some("[2001:db8::5]:443"));
        assert!(!reach.proxied());
        assert_eq!(reach.ssh_port(), 2222);
    }

    #[test]
    fn only_the_sandbox_environment_reads_sandbox_env() {
        let stack = crate::firewall::ruleset::tests::fixture("default.yaml");
        assert_eq!(
            Reach::for_stack(&stack),
            Reach::Direct {
                host: "shop.example".into(),
                ssh_port: 22
            }
        );
    }
}
