//! What inspecting a container tells: its id, whether it runs, when it started, its env, labels, ports, networks.

use std::collections::{BTreeMap, HashMap};

use bollard::models::ContainerInspectResponse;

use super::{Engine, EngineError, is_not_found};

/// A container as the engine describes it, reduced to what vldeploy reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub running: bool,
    /// RFC 3339, as the engine reports it; empty when it never started.
    pub started_at: String,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    /// The inner tcp ports the container publishes (whether or not it runs).
    pub published: Vec<u16>,
    /// Inner tcp port → the 127.0.0.1 port it answers on, while it runs.
    pub loopback_ports: BTreeMap<u16, u16>,
    /// Each network it is joined to, with the aliases it answers to there.
    pub networks: BTreeMap<String, Vec<String>>,
    /// Each network it is joined to, with its IPv4 address there (while it runs).
    pub addresses: BTreeMap<String, String>,
}

impl ContainerInfo {
    /// The value of a label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Whether it answers to `alias` on `network`.
    pub fn answers_to(&self, network: &str, alias: &str) -> bool {
        self.networks
            .get(network)
            .is_some_and(|aliases| aliases.iter().any(|a| a == alias))
    }
}

impl From<ContainerInspectResponse> for ContainerInfo {
    fn from(c: ContainerInspectResponse) -> Self {
        let mut published: Vec<u16> = c
            .host_config
            .as_ref()
            .and_then(|h| h.port_bindings.as_ref())
            .map(|m| m.keys().filter_map(|k| tcp_port(k)).collect())
            .unwrap_or_default();
        published.sort_unstable();
        let loopback_ports = c
            .network_settings
            .as_ref()
            .and_then(|n| n.ports.as_ref())
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|(key, bindings)| {
                        let inner = tcp_port(key)?;
                        let outer = bindings
                            .as_ref()?
                            .iter()
                            .filter(|b| b.host_ip.as_deref().is_none_or(|ip| ip == "127.0.0.1"))
                            .find_map(|b| b.host_port.as_deref()?.parse().ok())?;
                        Some((inner, outer))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let networks = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .map(|nets| {
                nets.iter()
                    .map(|(net, ep)| (net.clone(), ep.aliases.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let addresses = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .map(|nets| {
                nets.iter()
                    .filter_map(|(net, ep)| {
                        let ip = ep.ip_address.clone().filter(|ip| !ip.is_empty())?;
                        Some((net.clone(), ip))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let state = c.state.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        Self {
            id: c.id.unwrap_or_default(),
            running: state.running.unwrap_or(false),
            started_at: state.started_at.unwrap_or_default(),
            env: config.env.unwrap_or_default(),
            labels: config.labels.unwrap_or_default(),
            published,
            loopback_ports,
            networks,
            addresses,
        }
    }
}

fn tcp_port(key: &str) -> Option<u16> {
    key.strip_suffix("/tcp").and_then(|p| p.parse().ok())
}

impl Engine {
    /// The container called `name`, or `None` when there is none.
    pub async fn inspect(&self, name: &str) -> Result<Option<ContainerInfo>, EngineError> {
        match self
            .docker
            .inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Ok(c) => Ok(Some(c.into())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.fail(format!("inspecting `{name}`"))(e)),
        }
    }
}
