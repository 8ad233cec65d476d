//! What the firewall allows and what must stay closed, worked out from stack.yaml and checked for contradictions.

use serde::Serialize;

use super::error::FirewallError;
use crate::stack::{AllowRule, Proto, Stack};

/// The database's port: never reachable from outside.
pub(crate) const DATABASE_PORT: u16 = 5432;

/// An inbound port the firewall opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allowed {
    pub port: u16,
    pub proto: Proto,
    /// Addresses or CIDR ranges; empty means from anywhere.
    pub from: Vec<String>,
    /// Why it is open: `ssh`, `http`, `https` or `stack.yaml`.
    pub why: &'static str,
}

impl Allowed {
    /// `22/tcp`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.port, proto_name(self.proto))
    }
}

pub(crate) fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

/// The firewall of one host: what is open to whom, and what a probe must find closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub stack: String,
    /// The port sshd listens on, on the host.
    pub ssh_port: u16,
    /// Sorted by protocol, then port.
    pub allow: Vec<Allowed>,
    pub icmp: bool,
    /// Sorted, without duplicates.
    pub must_be_closed: Vec<u16>,
}

impl Policy {
    /// The policy of `stack` for a host whose sshd listens on `ssh_port`.
    ///
    /// The allow list starts as the SSH port, 80 and 443 from anywhere; a stack rule for one of those ports
    /// takes the place of its default (to narrow it with `from`), other stack rules are added. The ports that
    /// must be closed are 5432, the backend's port and the stack's `must_be_closed`. Refused: a port both
    /// allowed and required closed, and a port nginx publishes that the firewall would not let through.
    pub fn from_stack(stack: &Stack, ssh_port: u16) -> Result<Self, FirewallError> {
        let section = stack.firewall.as_ref();
        let mut allow: Vec<Allowed> = [(ssh_port, "ssh"), (80, "http"), (443, "https")]
            .into_iter()
            .map(|(port, why)| Allowed {
                port,
                proto: Proto::Tcp,
                from: Vec::new(),
                why,
            })
            .collect();
        allow.sort_by_key(|a| a.port);
        allow.dedup_by_key(|a| a.port);
        for rule in section.map_or(&[][..], |f| f.allow.as_slice()) {
            let AllowRule { port, proto, from } = rule;
            allow.retain(|a| !(a.port == *port && a.proto == *proto));
            allow.push(Allowed {
                port: *port,
                proto: *proto,
                from: from.clone(),
                why: "stack.yaml",
            });
        }
        // A repository on a backup host: the database side's `pgbackrest server` answers that host alone (by
        // address; a host name cannot be matched by nftables, and the server admits that host's certificate
        // alone either way).
        if let Some(peers) = crate::backup::archive::Peers::of(stack)
            .filter(|p| p.repo.parse::<std::net::IpAddr>().is_ok())
        {
            let port = crate::backup::archive::TLS_PORT;
            if !allow
                .iter()
                .any(|a| a.port == port && a.proto == Proto::Tcp)
            {
                allow.push(Allowed {
                    port,
                    proto: Proto::Tcp,
                    from: vec![peers.repo],
                    why: "backup host",
                });
            }
        }
        allow.sort_by_key(|a| (proto_name(a.proto), a.port));

        let backend_port = stack.services.get("backend").and_then(|s| s.port);
        let mut must_be_closed: Vec<u16> = [Some(DATABASE_PORT), backend_port]
            .into_iter()
            .flatten()
            .chain(
                section
                    .map_or(&[][..], |f| f.must_be_closed.as_slice())
                    .iter()
                    .copied(),
            )
            .collect();
        must_be_closed.sort_unstable();
        must_be_closed.dedup();

        let policy = Self {
            stack: stack.name.clone(),
            ssh_port,
            allow,
            icmp: section.is_none_or(|f| f.icmp),
            must_be_closed,
        };
        policy.check(stack, backend_port)?;
        Ok(policy)
    }

    fn check(&self, stack: &Stack, backend_port: Option<u16>) -> Result<(), FirewallError> {
        let refuse = |problem: String, help: String| FirewallError::Policy {
            stack: stack.name.clone(),
            problem,
            help,
        };
        for port in &self.must_be_closed {
            if let Some(a) = self
                .allow
                .iter()
                .find(|a| a.port == *port && a.proto == Proto::Tcp)
            {
                let what = if *port == DATABASE_PORT {
                    "the database port".to_owned()
                } else if Some(*port) == backend_port {
                    "the backend's port".to_owned()
                } else {
                    "listed in `firewall.must_be_closed`".to_owned()
                };
                let help = if a.why == "stack.yaml" {
                    format!(
                        "remove port {port} from `firewall.allow`: postgres and the backend are reached through nginx, never from outside"
                    )
                } else {
                    format!("remove port {port} from `firewall.must_be_closed`")
                };
                return Err(refuse(
                    format!(
                        "port {port} is both allowed ({}) and required closed ({what})",
                        a.why
                    ),
                    help,
                ));
            }
        }
        for (name, service) in &stack.services {
            if name != "nginx" && !service.ports.is_empty() {
                return Err(refuse(
                    format!("`{name}` publishes ports: only nginx may be reachable from outside"),
                    format!("remove `ports` from `services.{name}`"),
                ));
            }
        }
        if let Some(nginx) = stack.services.get("nginx") {
            for p in &nginx.ports {
                if !self
                    .allow
                    .iter()
                    .any(|a| a.port == p.host && a.proto == Proto::Tcp)
                {
                    return Err(refuse(
                        format!(
                            "nginx publishes port {}, which the firewall would not let through",
                            p.host
                        ),
                        format!(
                            "add `{{port: {}}}` to `firewall.allow`, or publish nginx on 80 and 443",
                            p.host
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The same policy without the SSH rule (a test switch: a ruleset that locks the operator out).
    #[must_use]
    pub fn without_ssh(mut self) -> Self {
        let ssh = self.ssh_port;
        self.allow
            .retain(|a| !(a.port == ssh && a.proto == Proto::Tcp));
        self
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::firewall::ruleset::tests::fixture;

    fn ports(p: &Policy) -> Vec<String> {
        p.allow.iter().map(Allowed::label).collect()
    }

    #[test]
    fn without_a_firewall_section_only_ssh_http_and_https_are_open() {
        let stack = fixture("default.yaml");
        let p = Policy::from_stack(&stack, 22).unwrap();
        assert_eq!(ports(&p), ["22/tcp", "80/tcp", "443/tcp"]);
        assert!(p.allow.iter().all(|a| a.from.is_empty()));
        assert!(p.icmp);
        assert_eq!(p.must_be_closed, [5432, 8080]);
    }

    #[test]
    fn the_ssh_port_is_the_one_sshd_listens_on() {
        let p = Policy::from_stack(&fixture("default.yaml"), 2222).unwrap();
        assert_eq!(ports(&p), ["80/tcp", "443/tcp", "2222/tcp"]);
        let p = Policy::from_stack(&fixture("default.yaml"), 443).unwrap();
        assert_eq!(ports(&p), ["80/tcp", "443/tcp"]);
    }

    #[test]
    fn a_stack_rule_narrows_a_default_and_adds_its_own() {
        let p = Policy::from_stack(&fixture("ranges.yaml"), 22).unwrap();
        assert_eq!(
            ports(&p),
            ["22/tcp", "80/tcp", "443/tcp", "9100/tcp", "51820/udp"]
        );
        let ssh = &p.allow[0];
        assert_eq!(ssh.from, ["10.0.0.0/8", "2001:db8::/32"]);
        assert_eq!(ssh.why, "stack.yaml");
        assert!(!p.icmp);
        assert_eq!(p.must_be_closed, [5432, 6379, 8080]);
    }

    #[test]
    fn allowing_the_database_port_is_refused_with_what_to_do() {
        let mut stack = fixture("default.yaml");
        stack.firewall = Some(crate::stack::Firewall {
            allow: vec![AllowRule {
                port: 5432,
                proto: Proto::Tcp,
                from: vec![],
            }],
            icmp: true,
            must_be_closed: vec![],
        });
        let err = Policy::from_stack(&stack, 22).unwrap_err().to_string();
        assert_eq!(
            err,
            "firewall of `shop`: port 5432 is both allowed (stack.yaml) and required closed (the database port)\n\
             help: remove port 5432 from `firewall.allow`: postgres and the backend are reached through nginx, never from outside"
        );
    }

    #[test]
    fn a_port_nginx_publishes_must_be_allowed() {
        let mut stack = fixture("default.yaml");
        stack.services.get_mut("nginx").unwrap().ports[0].host = 8081;
        let err = Policy::from_stack(&stack, 22).unwrap_err().to_string();
        assert!(
            err.contains("nginx publishes port 8081, which the firewall would not let through"),
            "{err}"
        );
        assert!(
            err.contains("add `{port: 8081}` to `firewall.allow`"),
            "{err}"
        );
    }

    #[test]
    fn a_published_database_is_refused() {
        let mut stack = fixture("default.yaml");
        let ports = stack.services["nginx"].ports.clone();
        stack.services.get_mut("postgres").unwrap().ports = ports;
        let err = Policy::from_stack(&stack, 22).unwrap_err().to_string();
        assert!(
            err.contains("`postgres` publishes ports: only nginx may be reachable from outside"),
            "{err}"
        );
    }

    #[test]
    fn without_ssh_drops_only_the_ssh_rule() {
        let p = Policy::from_stack(&fixture("default.yaml"), 22)
            .unwrap()
            .without_ssh();
        assert_eq!(ports(&p), ["80/tcp", "443/tcp"]);
    }
}
