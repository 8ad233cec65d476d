//! The nftables ruleset of a policy, rendered from `templates/nftables/ruleset.nft.j2`, and its content hash.

use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::TABLE;
use super::policy::{Policy, proto_name};
use crate::render::escape::nft_addr;
use crate::render::{RenderError, render_in};
use crate::stack::Proto;

/// A rendered ruleset: the text `nft -f` loads and the hash that the live table carries as its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub text: String,
    /// `sha256:` and 16 hex digits of the text rendered without its hash.
    pub hash: String,
}

#[derive(Serialize)]
struct Context<'a> {
    stack: &'a str,
    table: &'a str,
    hash: &'a str,
    icmp: bool,
    /// Ports open to anyone, one line per protocol: `{proto, ports}`.
    open: Vec<Open>,
    /// Ports open to some sources: `{proto, port, v4, v6}`.
    ranged: Vec<Ranged>,
    /// The addresses of the environment's other Swarm nodes, by family (empty for one host).
    swarm_v4: String,
    swarm_v6: String,
}

#[derive(Serialize)]
struct Open {
    proto: &'static str,
    ports: String,
    list: Vec<u16>,
}

#[derive(Serialize)]
struct Ranged {
    proto: &'static str,
    port: u16,
    v4: String,
    v6: String,
}

impl Ruleset {
    /// Renders `policy`; a project's `templates/nftables/ruleset.nft.j2` under `overrides` takes the place of
    /// the embedded template.
    pub fn render(policy: &Policy, overrides: Option<&Path>) -> Result<Self, RenderError> {
        Self::render_for_swarm(policy, &[], overrides)
    }

    /// Renders `policy` for a node of a swarm whose nodes have `peers` as addresses: Swarm's ports (2377/tcp,
    /// 7946/tcp and udp, 4789/udp) open to those addresses alone, and forwarding from `docker_gwbridge` (the
    /// bridge between a node's containers and its overlay networks) left to Docker. No peers: as [`Self::render`].
    pub fn render_for_swarm(
        policy: &Policy,
        peers: &[std::net::IpAddr],
        overrides: Option<&Path>,
    ) -> Result<Self, RenderError> {
        let mut peers = peers.to_vec();
        peers.sort_unstable();
        peers.dedup();
        let (v6, v4): (Vec<std::net::IpAddr>, Vec<std::net::IpAddr>) =
            peers.into_iter().partition(std::net::IpAddr::is_ipv6);
        let join = |ips: Vec<std::net::IpAddr>| {
            ips.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (swarm_v4, swarm_v6) = (join(v4), join(v6));
        let mut open = Vec::new();
        for proto in [Proto::Tcp, Proto::Udp] {
            let list: Vec<u16> = policy
                .allow
                .iter()
                .filter(|a| a.proto == proto && a.from.is_empty())
                .map(|a| a.port)
                .collect();
            if !list.is_empty() {
                let ports: Vec<String> = list.iter().map(ToString::to_string).collect();
                open.push(Open {
                    proto: proto_name(proto),
                    ports: ports.join(", "),
                    list,
                });
            }
        }
        let ranged = policy
            .allow
            .iter()
            .filter(|a| !a.from.is_empty())
            .map(|a| {
                // nft takes addresses bare: each one is checked to be an address or range, nothing else.
                let from = a
                    .from
                    .iter()
                    .map(|s| nft_addr(s))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| RenderError::Template {
                        name: "nftables/ruleset.nft".into(),
                        detail: format!("nft_addr: {e}"),
                    })?;
                let (v6, v4): (Vec<String>, Vec<String>) =
                    from.into_iter().partition(|s| s.contains(':'));
                Ok(Ranged {
                    proto: proto_name(a.proto),
                    port: a.port,
                    v4: v4.join(", "),
                    v6: v6.join(", "),
                })
            })
            .collect::<Result<Vec<_>, RenderError>>()?;
        let mut context = Context {
            stack: &policy.stack,
            table: TABLE,
            hash: "",
            icmp: policy.icmp,
            open,
            ranged,
            swarm_v4,
            swarm_v6,
        };
        let unhashed = render_in(overrides, "nftables/ruleset.nft", &context)?;
        let hash = format!(
            "sha256:{}",
            &hex::encode(Sha256::digest(unhashed.as_bytes()))[..16]
        );
        context.hash = &hash;
        let text = render_in(overrides, "nftables/ruleset.nft", &context)?;
        Ok(Self { text, hash })
    }
}

/// The hash a ruleset file or a live table listing carries (`vldeploy sha256:…`), if any.
pub(crate) fn hash_in(text: &str) -> Option<String> {
    let at = text.find("vldeploy sha256:")? + "vldeploy ".len();
    let hash: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':')
        .collect();
    (hash.len() == "sha256:".len() + 16).then_some(hash)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::render::snapshot::assert_snapshot;
    use crate::stack::Stack;

    /// A fixture stack from `src/firewall/fixtures/`, loaded for `production`.
    pub(crate) fn fixture(name: &str) -> Stack {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/firewall/fixtures")
            .join(name);
        crate::stack::load_with(&path, "production", &|_| None).unwrap()
    }

    fn rendered(name: &str) -> Ruleset {
        let policy = Policy::from_stack(&fixture(name), 22).unwrap();
        Ruleset::render(&policy, None).unwrap()
    }

    #[test]
    fn default_stack_ruleset_snapshot() {
        assert_snapshot("firewall_default.nft", &rendered("default.yaml").text);
    }

    #[test]
    fn ranges_stack_ruleset_snapshot() {
        assert_snapshot("firewall_ranges.nft", &rendered("ranges.yaml").text);
    }

    /// Where `nft` can check rulesets (root, nftables installed), the fixtures' rulesets must pass `nft -c`.
    #[test]
    fn nft_accepts_the_rendered_rulesets() {
        let usable = std::process::Command::new("nft")
            .args(["-c", "-f", "/dev/null"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !usable {
            crate::output::Output::global().note("nft cannot check rulesets here; skipped");
            return;
        }
        let rulesets = [
            ("default.yaml", rendered("default.yaml")),
            ("ranges.yaml", rendered("ranges.yaml")),
            ("default.yaml for a swarm node", rendered_for_swarm()),
        ];
        for (name, ruleset) in rulesets {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("ruleset.nft");
            std::fs::write(&file, ruleset.text).unwrap();
            let out = std::process::Command::new("nft")
                .arg("-c")
                .arg("-f")
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn the_hash_is_in_the_header_and_the_table_comment_and_follows_the_content() {
        let a = rendered("default.yaml");
        assert_eq!(hash_in(&a.text).as_deref(), Some(a.hash.as_str()));
        assert!(a.text.contains(&format!("# vldeploy-hash: {}\n", a.hash)));
        assert!(a.text.contains(&format!("comment \"vldeploy {}\"", a.hash)));
        assert_eq!(a, rendered("default.yaml"));
        assert_ne!(a.hash, rendered("ranges.yaml").hash);
        let listing = "table inet vldeploy {\n\tcomment \"vldeploy sha256:0123456789abcdef\"\n";
        assert_eq!(hash_in(listing).as_deref(), Some("sha256:0123456789abcdef"));
        assert_eq!(hash_in("table inet vldeploy {\n"), None);
    }

    #[test]
    fn the_forward_guard_matches_the_original_destination_port() {
        let text = rendered("default.yaml").text;
        assert!(
            text.contains(
                "meta l4proto tcp ct original proto-dst 22 accept\n\t\tmeta l4proto tcp ct original proto-dst 80 accept\n"
            ),
            "{text}"
        );
        assert!(text.contains("policy drop;"));
        assert!(!text.contains("5432"), "{text}");
    }

    fn rendered_for_swarm() -> Ruleset {
        let policy = Policy::from_stack(&fixture("default.yaml"), 22).unwrap();
        let peers: Vec<std::net::IpAddr> = ["172.30.0.3", "172.30.0.2", "fd00::3", "172.30.0.2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        Ruleset::render_for_swarm(&policy, &peers, None).unwrap()
    }

    #[test]
    fn a_swarm_node_ruleset_snapshot() {
        assert_snapshot("firewall_swarm.nft", &rendered_for_swarm().text);
    }

    #[test]
    fn swarm_ports_are_open_to_the_nodes_alone_and_overlays_forward() {
        let text = rendered_for_swarm().text;
        for line in [
            "ip saddr { 172.30.0.2, 172.30.0.3 } tcp dport { 2377, 7946 } accept\n",
            "ip saddr { 172.30.0.2, 172.30.0.3 } udp dport { 4789, 7946 } accept\n",
            "ip6 saddr { fd00::3 } tcp dport { 2377, 7946 } accept\n",
            "ip6 saddr { fd00::3 } udp dport { 4789, 7946 } accept\n",
            "iifname \"docker_gwbridge\" accept\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        // Nowhere else: not open to anyone, and one host's ruleset has none of it.
        assert!(!text.contains("dport { 22, 80, 443, 2377"), "{text}");
        let single = rendered("default.yaml").text;
        assert!(
            !single.contains("2377") && !single.contains("docker_gwbridge"),
            "{single}"
        );
        assert_ne!(rendered_for_swarm().hash, rendered("default.yaml").hash);
    }

    #[test]
    fn ranges_split_by_address_family() {
        let text = rendered("ranges.yaml").text;
        assert!(
            text.contains("ip saddr { 10.0.0.0/8 } tcp dport 22 accept"),
            "{text}"
        );
        assert!(
            text.contains("ip6 saddr { 2001:db8::/32 } tcp dport 22 accept"),
            "{text}"
        );
        assert!(text.contains("udp dport { 51820 } accept"), "{text}");
        assert!(!text.contains("echo-request"), "icmp: false: {text}");
    }
}
