//! A cluster of sandbox hosts: N host containers on one user-defined network, sharing one set of keys, for an
//! environment with `hosts:` (`vldeploy sandbox up --nodes N`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::env_file;
use super::error::SandboxError;
use super::{Flavor, Sandbox, SandboxOptions, connect, container, readiness, start, validate_name};
use crate::engine::Engine;

/// The most hosts a sandbox cluster may have: enough for three managers and a few workers on one machine.
pub const MAX_NODES: usize = 7;

/// The label of the cluster's network, with the cluster's name as its value.
pub const CLUSTER_LABEL: &str = "vldeploy.sandbox.cluster";

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// The cluster's name; its hosts are `<name>-1` … `<name>-N` and its network `<name>-net`.
    pub name: String,
    /// Where the shared keys, `known_hosts`, `cluster.env` and `secrets.env` go (e.g. `.vldeploy/cluster/`).
    pub dir: PathBuf,
    /// How many hosts, 2 to [`MAX_NODES`].
    pub nodes: usize,
    /// Inner ports to publish on 127.0.0.1 on every host besides 22, 80 and 443.
    pub extra_ports: Vec<u16>,
}

/// A running cluster of sandbox hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub network: String,
    pub dir: PathBuf,
    pub nodes: Vec<ClusterNode>,
}

/// One host of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub sandbox: Sandbox,
    /// Its IPv4 address on the cluster's network, where the other hosts reach it.
    pub address: String,
}

impl Cluster {
    /// `cluster.env`: each host's ports and address.
    pub fn env_path(&self) -> PathBuf {
        self.dir.join("cluster.env")
    }

    /// `secrets.env`: `POSTGRES_PASSWORD` and `ADMIN_TOKEN`, mode 0600.
    pub fn secrets_path(&self) -> PathBuf {
        self.dir.join("secrets.env")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
}

/// The name of host `i` (1-based) of the cluster `name`.
pub fn node_name(name: &str, i: usize) -> String {
    format!("{name}-{i}")
}

/// The name of the cluster's network.
pub fn network_name(name: &str) -> String {
    format!("{name}-net")
}

/// Starts the cluster's network and hosts (building images the first time), writes the files an environment
/// with `hosts:` reads, and waits until every host answers. Idempotent like [`super::up`]; hosts past `nodes`
/// left from a larger cluster are removed.
pub async fn up_cluster(opts: &ClusterOptions) -> Result<Cluster, SandboxError> {
    validate_name(&node_name(&opts.name, MAX_NODES))?;
    if !(2..=MAX_NODES).contains(&opts.nodes) {
        return Err(SandboxError::NodeCount {
            nodes: opts.nodes,
            max: MAX_NODES,
        });
    }
    let docker = connect().await?;
    let network = network_name(&opts.name);
    ensure_network(&docker, &opts.name, &network).await?;
    let mut started: Vec<Sandbox> = Vec::new();
    let mut keys = None;
    for i in 1..=opts.nodes {
        let node = SandboxOptions {
            name: node_name(&opts.name, i),
            dir: opts.dir.clone(),
            extra_ports: opts.extra_ports.clone(),
            flavor: Flavor::Full,
        };
        let (sandbox, k) = Box::pin(start(&docker, &node, Some(&network))).await?;
        started.push(sandbox);
        keys = Some(k);
    }
    for i in opts.nodes + 1..=MAX_NODES {
        container::remove(&docker, &node_name(&opts.name, i)).await?;
    }
    let mut nodes = Vec::new();
    for sandbox in started {
        let address = address(&docker, &sandbox.name, &network).await?;
        nodes.push(ClusterNode { sandbox, address });
    }
    let cluster = Cluster {
        name: opts.name.clone(),
        network,
        dir: opts.dir.clone(),
        nodes,
    };
    if let Some(keys) = &keys {
        // Ports exist as soon as the hosts run: the files come first, so a failed wait can still be debugged.
        let known_hosts: String = cluster
            .nodes
            .iter()
            .map(|n| keys.known_hosts_line(n.sandbox.ssh_port))
            .collect();
        env_file::write_atomic(&cluster.known_hosts_path(), &known_hosts, 0o600)?;
        env_file::write_atomic(&cluster.env_path(), &cluster_env(&cluster.nodes), 0o600)?;
        env_file::ensure_secrets(&cluster.secrets_path())?;
    }
    for node in &cluster.nodes {
        readiness::wait(&docker, &node.sandbox).await?;
    }
    Ok(cluster)
}

/// Removes every host of the cluster, their volumes and the network; fine when there are none. Keeps the keys
/// and `secrets.env`; removes `cluster.env` and `known_hosts`, which described the hosts.
pub async fn down_cluster(name: &str, dir: &Path) -> Result<(), SandboxError> {
    validate_name(&node_name(name, MAX_NODES))?;
    let docker = connect().await?;
    for i in 1..=MAX_NODES {
        container::remove(&docker, &node_name(name, i)).await?;
    }
    let network = network_name(name);
    match docker.network_labels(&network).await? {
        Some(labels) if labels.get(CLUSTER_LABEL).map(String::as_str) != Some(name) => {
            return Err(SandboxError::NotAClusterNetwork(network));
        }
        Some(_) => docker.remove_network(&network).await?,
        None => {}
    }
    for file in ["cluster.env", "known_hosts"] {
        let path = dir.join(file);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SandboxError::Io { path, source: e }),
        }
    }
    Ok(())
}

/// The cluster's network, created with its label unless it exists; one of that name not made for the cluster
/// is refused.
async fn ensure_network(docker: &Engine, name: &str, network: &str) -> Result<(), SandboxError> {
    match docker.network_labels(network).await? {
        Some(labels) if labels.get(CLUSTER_LABEL).map(String::as_str) == Some(name) => Ok(()),
        Some(_) => Err(SandboxError::NotAClusterNetwork(network.to_owned())),
        None => {
            let labels = HashMap::from([(CLUSTER_LABEL.to_owned(), name.to_owned())]);
            Ok(docker.create_labelled_network(network, labels).await?)
        }
    }
}

/// The host's address on the cluster's network.
async fn address(docker: &Engine, node: &str, network: &str) -> Result<String, SandboxError> {
    container::inspect(docker, node)
        .await?
        .and_then(|c| c.addresses.get(network).cloned())
        .ok_or_else(|| SandboxError::NoAddress {
            name: node.to_owned(),
            network: network.to_owned(),
        })
}

/// The `cluster.env` text: for host `i`, `CLUSTER_NODE<i>_SSH_PORT`, `_HTTP_PORT`, `_HTTPS_PORT`, `_ADDRESS`
/// and `_PORT_<inner>` for each extra port.
pub(crate) fn cluster_env(nodes: &[ClusterNode]) -> String {
    let mut text = String::new();
    for (i, node) in nodes.iter().enumerate() {
        let n = i + 1;
        let sb = &node.sandbox;
        let _ = writeln!(text, "CLUSTER_NODE{n}_SSH_PORT={}", sb.ssh_port);
        let _ = writeln!(text, "CLUSTER_NODE{n}_HTTP_PORT={}", sb.http_port);
        let _ = writeln!(text, "CLUSTER_NODE{n}_HTTPS_PORT={}", sb.https_port);
        let _ = writeln!(text, "CLUSTER_NODE{n}_ADDRESS={}", node.address);
        for (inner, outer) in &sb.extra_ports {
            let _ = writeln!(text, "CLUSTER_NODE{n}_PORT_{inner}={outer}");
        }
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn node(i: u16, extra: &[(u16, u16)]) -> ClusterNode {
        ClusterNode {
            sandbox: Sandbox {
                name: format!("c-{i}"),
                container_id: String::new(),
                dir: PathBuf::from("/d"),
                ssh_port: 40000 + i * 10,
                http_port: 40001 + i * 10,
                https_port: 40002 + i * 10,
                extra_ports: extra.iter().copied().collect::<BTreeMap<_, _>>(),
                flavor: Flavor::Full,
            },
            address: format!("172.30.0.{}", i + 1),
        }
    }

    #[test]
    fn cluster_env_names_every_host_by_number() {
        assert_eq!(
            cluster_env(&[node(1, &[(5432, 40013)]), node(2, &[])]),
            "CLUSTER_NODE1_SSH_PORT=40010\nCLUSTER_NODE1_HTTP_PORT=40011\nCLUSTER_NODE1_HTTPS_PORT=40012\n\
             CLUSTER_NODE1_ADDRESS=172.30.0.2\nCLUSTER_NODE1_PORT_5432=40013\n\
             CLUSTER_NODE2_SSH_PORT=40020\nCLUSTER_NODE2_HTTP_PORT=40021\nCLUSTER_NODE2_HTTPS_PORT=40022\n\
             CLUSTER_NODE2_ADDRESS=172.30.0.3\n"
        );
    }

    #[test]
    fn hosts_and_network_are_named_after_the_cluster() {
        assert_eq!(
            node_name("vldeploy-cluster-shop", 3),
            "vldeploy-cluster-shop-3"
        );
        assert_eq!(
            network_name("vldeploy-cluster-shop"),
            "vldeploy-cluster-shop-net"
        );
    }
}
