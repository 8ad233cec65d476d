//! A container that acts as a whole host (sshd and its own Docker engine inside): the flags it needs.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::CreateContainerOptionsBuilder;

use super::{Engine, EngineError};

/// What to create: a container started with the flags a nested engine needs (see TESTING.md), its ports
/// published on ephemeral 127.0.0.1 ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostContainer {
    pub name: String,
    pub image: String,
    pub hostname: String,
    pub labels: HashMap<String, String>,
    /// Inner tcp ports to publish on 127.0.0.1.
    pub ports: Vec<u16>,
    /// `source:target[:mode]` binds besides the cgroup filesystem.
    pub binds: Vec<String>,
    /// Mount point → options.
    pub tmpfs: Option<HashMap<String, String>>,
    pub stop_timeout_s: i64,
    /// A user-defined network to join instead of the default bridge (hosts that reach each other by address).
    pub network: Option<String>,
}

/// The container definition: capabilities, unconfined profiles, device access and the cgroup filesystem.
pub(crate) fn host_container_body(spec: &HostContainer) -> ContainerCreateBody {
    let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = spec
        .ports
        .iter()
        .map(|p| {
            (
                format!("{p}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(String::new()),
                }]),
            )
        })
        .collect();
    let mut binds = vec!["/sys/fs/cgroup:/sys/fs/cgroup:rw".to_owned()];
    binds.extend(spec.binds.iter().cloned());
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname: Some(spec.hostname.clone()),
        labels: Some(spec.labels.clone()),
        exposed_ports: Some(spec.ports.iter().map(|p| format!("{p}/tcp")).collect()),
        stop_timeout: Some(spec.stop_timeout_s),
        host_config: Some(HostConfig {
            port_bindings: Some(port_bindings),
            cap_add: Some(vec!["ALL".to_owned()]),
            cap_drop: Some(vec!["SYS_RESOURCE".to_owned()]),
            security_opt: Some(vec![
                "seccomp=unconfined".to_owned(),
                "apparmor=unconfined".to_owned(),
            ]),
            device_cgroup_rules: Some(vec!["a *:* rwm".to_owned()]),
            binds: Some(binds),
            tmpfs: spec.tmpfs.clone(),
            network_mode: spec.network.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Engine {
    /// Creates (not starts) a host container; returns its id.
    pub async fn create_host_container(&self, spec: &HostContainer) -> Result<String, EngineError> {
        let opts = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        let created = self
            .docker
            .create_container(Some(opts), host_container_body(spec))
            .await
            .map_err(self.fail(format!("creating container `{}`", spec.name)))?;
        Ok(created.id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_host_container_gets_the_flags_a_nested_engine_needs() {
        let spec = HostContainer {
            name: "h".into(),
            image: "img:1".into(),
            hostname: "h".into(),
            labels: HashMap::new(),
            ports: vec![22, 80, 443, 5432],
            binds: vec!["h-docker:/var/lib/docker".into()],
            tmpfs: None,
            stop_timeout_s: 40,
            network: None,
        };
        let body = host_container_body(&spec);
        let host = body.host_config.unwrap();
        assert_eq!(host.cap_add, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.cap_drop, Some(vec!["SYS_RESOURCE".to_owned()]));
        assert_eq!(host.privileged, None);
        assert_eq!(host.device_cgroup_rules, Some(vec!["a *:* rwm".to_owned()]));
        assert_eq!(
            host.binds.unwrap(),
            vec![
                "/sys/fs/cgroup:/sys/fs/cgroup:rw".to_owned(),
                "h-docker:/var/lib/docker".to_owned()
            ]
        );
        let bindings = host.port_bindings.unwrap();
        assert_eq!(bindings.len(), 4);
        let b = bindings["5432/tcp"].as_ref().unwrap();
        assert_eq!(b[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(body.stop_timeout, Some(40));
        assert_eq!(host.network_mode, None);
    }

    #[test]
    fn a_host_container_of_a_cluster_joins_its_network() {
        let spec = HostContainer {
            name: "h".into(),
            image: "img:1".into(),
            hostname: "h".into(),
            labels: HashMap::new(),
            ports: vec![22],
            binds: Vec::new(),
            tmpfs: None,
            stop_timeout_s: 40,
            network: Some("c-net".into()),
        };
        let host = host_container_body(&spec).host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("c-net"));
    }
}
