//! The Swarm services a stack asks for: postgres pinned to the `db` node, the backend's replicas on the `app`
//! nodes, nginx on every `edge` node; their secrets, configs and overlay network. Pure: no engine is asked.

use std::collections::BTreeMap;

use serde::Serialize;

use super::plan::role_label;
use crate::layout::stack_dir;
use crate::plan::{EnvEntry, HashKey, Health, Images, MountSource, desired_from_stack};
use crate::render::RenderError;
use crate::secret::Secret;
use crate::stack::{Role, Stack};

/// The label a service carries the hash of its design in: a second `up` compares it and changes nothing.
pub const SPEC_HASH_LABEL: &str = "vldeploy.spec-hash";

/// Where Swarm mounts a service's secrets.
const SECRETS_DIR: &str = "/run/secrets";

/// Why the services could not be designed.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(
        "service `{service}`: variable `{name}` holds a secret and cannot be read from a file by that name\n  help: name it with letters, digits and `_`, not starting with a digit"
    )]
    SecretName { service: String, name: String },
    #[error(
        "service `{service}` has no image command to start after reading its secrets\n  help: give its image an `ENTRYPOINT` or `CMD`"
    )]
    NoCommand { service: String },
}

/// How many tasks a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceMode {
    /// This many tasks, placed by the scheduler (spread across the nodes its constraint allows).
    Replicated(u32),
    /// One task on every node its constraint allows.
    Global,
}

/// Whether an update starts the new task before stopping the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    StartFirst,
    StopFirst,
}

/// A secret a service reads as a file under `/run/secrets`, exported as `variable` before its command starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretUse {
    /// The Swarm secret's name: the variable and a keyed hash of its value (a new value is a new secret).
    pub secret: String,
    pub variable: String,
}

/// A config (a file's content) mounted read-only into a service's tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigUse {
    pub config: String,
    pub target: String,
}

/// A mount of a service's tasks: a named volume of the node, or one of its directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeUse {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
}

/// One Swarm service as vldeploy wants it. Holds no secret value: its hash label may be read by anyone with
/// access to the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceDesign {
    /// `postgres`, `backend` or `nginx`.
    pub service: String,
    /// The Swarm service's name: `<stack>_<service>`.
    pub name: String,
    pub image: String,
    /// The command its tasks run: the image's, behind a prelude that reads its secrets when it has some.
    pub command: Vec<String>,
    /// Its environment, without secrets: `NAME=value`.
    pub env: Vec<String>,
    pub secrets: Vec<SecretUse>,
    pub configs: Vec<ConfigUse>,
    pub mounts: Vec<VolumeUse>,
    /// The names it answers to on the overlay network (Docker's DNS gives every task's address: dnsrr).
    pub aliases: Vec<String>,
    /// Ports published on each node that runs a task (host mode): `(published, target)`.
    pub publish: Vec<(u16, u16)>,
    pub health: Option<Health>,
    pub mode: ServiceMode,
    /// The placement constraint: the node's role label.
    pub constraint: String,
    pub order: UpdateOrder,
    /// The user the image runs as (`10001:10001`), for the owner of its secret files.
    pub user: Option<String>,
}

impl ServiceDesign {
    /// The hash of the whole design: the service's identity, kept in [`SPEC_HASH_LABEL`].
    pub fn hash(&self) -> String {
        crate::layout::short_hash(&serde_json::to_string(self).unwrap_or_default())
    }

    /// The roles of the nodes it runs on.
    pub fn role(&self) -> Role {
        super::snapshot::service_role(&self.service)
    }
}

/// A Swarm secret: created once under its name, never changed (a new value gets a new name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDesign {
    pub name: String,
    pub value: Secret,
}

/// A Swarm config: a file of nginx, named by its content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDesign {
    pub name: String,
    pub content: Vec<u8>,
}

/// Everything the stack asks of its swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDesign {
    /// The stack's overlay network (unencrypted: this kind of kernel carries no ESP).
    pub network: String,
    pub secrets: Vec<SecretDesign>,
    pub configs: Vec<ConfigDesign>,
    /// In start order: postgres, backend, nginx.
    pub services: Vec<ServiceDesign>,
    /// nginx's files kept in a host directory of every edge node (the site's `www`), written over SSH.
    pub edge_files: Vec<super::edge::EdgeFile>,
}

/// What an image starts by default: its `ENTRYPOINT` then its `CMD`, and its `USER`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageCommand {
    pub argv: Vec<String>,
    pub user: Option<String>,
}

/// The stack's overlay network.
pub fn network_name(stack: &str) -> String {
    format!("{stack}_cluster")
}

/// The Swarm service of `service`.
pub fn service_name(stack: &str, service: &str) -> String {
    format!("{stack}_{service}")
}

/// The services, secrets and configs of `stack` on its swarm, given the image of each service, what each image
/// runs, and the key secret names are hashed with.
#[allow(clippy::too_many_lines)] // each service's parts in one place, in the order the API takes them
pub fn design(
    stack: &Stack,
    images: &Images,
    commands: &BTreeMap<String, ImageCommand>,
    key: &HashKey,
) -> Result<ClusterDesign, ServicesError> {
    let desired = desired_from_stack(stack, images, key)?;
    let dir = stack_dir(&stack.name);
    let app_hosts = stack.hosts.iter().filter(|h| h.has(Role::App)).count();
    let mut secrets: Vec<SecretDesign> = Vec::new();
    let mut configs = Vec::new();
    // nginx's configuration (the site, the upstream) becomes configs at the paths its container would
    // bind-mount them from on one host; its `www`, ACME webroot and certificates stay host directories of each
    // edge node (see `edge`), changed in place without restarting nginx.
    let mut nginx_configs = Vec::new();
    let mut edge_files = Vec::new();
    for file in &desired.files {
        let Some(rest) = file.path.strip_prefix(&format!("{dir}/")) else {
            continue;
        };
        let target = if let Some(name) = rest.strip_prefix("nginx/conf.d/") {
            format!("/etc/nginx/conf.d/{name}")
        } else if rest.starts_with("www/") {
            edge_files.push(super::edge::EdgeFile {
                path: file.path.clone(),
                content: file.content.clone(),
                mode: file.mode,
            });
            continue;
        } else {
            continue;
        };
        let base = rest.rsplit('/').next().unwrap_or(rest);
        let name = swarm_name(&format!(
            "{}_{}_{}",
            stack.name,
            base.replace('.', "-"),
            &file.hash[..16.min(file.hash.len())]
        ));
        configs.push(ConfigDesign {
            name: name.clone(),
            content: file.content.clone(),
        });
        nginx_configs.push(ConfigUse {
            config: name,
            target,
        });
    }
    let mut services = Vec::new();
    for c in &desired.containers {
        let mut env = Vec::new();
        let mut uses = Vec::new();
        for (variable, entry) in &c.env {
            match entry {
                EnvEntry::Plain(v) => env.push(format!("{variable}={v}")),
                EnvEntry::Secret(s) => {
                    if !is_variable(variable) {
                        return Err(ServicesError::SecretName {
                            service: c.service.clone(),
                            name: variable.clone(),
                        });
                    }
                    let mac = key.mac(&format!("{}={variable}={}", c.service, s.expose()));
                    let name = swarm_name(&format!(
                        "{}_{}_{}_{mac}",
                        stack.name,
                        c.service,
                        variable.to_lowercase()
                    ));
                    if !secrets.iter().any(|d| d.name == name) {
                        secrets.push(SecretDesign {
                            name: name.clone(),
                            value: s.clone(),
                        });
                    }
                    uses.push(SecretUse {
                        secret: name,
                        variable: variable.clone(),
                    });
                }
            }
        }
        let image = commands.get(&c.service).cloned().unwrap_or_default();
        let command = if uses.is_empty() {
            Vec::new()
        } else {
            if image.argv.is_empty() {
                return Err(ServicesError::NoCommand {
                    service: c.service.clone(),
                });
            }
            secrets_prelude(&uses, &image.argv)
        };
        let nginx = c.service == "nginx";
        let mounts = c
            .mounts
            .iter()
            // nginx's configuration is configs here; its other host directories are each edge node's.
            .filter(|m| !nginx || super::edge::is_edge_mount(&stack.name, &m.source))
            .map(|m| VolumeUse {
                source: m.source.clone(),
                target: m.target.clone(),
                read_only: m.read_only,
            })
            .collect();
        let (mode, order, aliases) = match c.service.as_str() {
            "backend" => (
                ServiceMode::Replicated(
                    stack
                        .services
                        .get("backend")
                        .and_then(|s| s.replicas)
                        .unwrap_or(u32::try_from(app_hosts.max(1)).unwrap_or(1)),
                ),
                UpdateOrder::StartFirst,
                vec![
                    "backend".to_string(),
                    crate::layout::serving_name("backend"),
                ],
            ),
            // A host-mode port is taken until the old task stops: nginx updates stop-first, one node at a time.
            "nginx" => (
                ServiceMode::Global,
                UpdateOrder::StopFirst,
                vec!["nginx".to_string()],
            ),
            other => (
                ServiceMode::Replicated(1),
                UpdateOrder::StopFirst,
                vec![other.to_string()],
            ),
        };
        let design = ServiceDesign {
            service: c.service.clone(),
            name: service_name(&stack.name, &c.service),
            image: c.image_ref.clone(),
            command,
            env,
            secrets: uses,
            configs: if nginx {
                nginx_configs.clone()
            } else {
                Vec::new()
            },
            mounts,
            aliases,
            publish: c
                .publish
                .iter()
                .map(|p| (p.host_port, p.container_port))
                .collect(),
            health: c.health.clone(),
            mode,
            constraint: String::new(),
            order,
            user: image.user.clone(),
        };
        let constraint = format!("node.labels.{}==true", role_label(design.role()));
        services.push(ServiceDesign {
            constraint,
            ..design
        });
    }
    Ok(ClusterDesign {
        network: network_name(&stack.name),
        secrets,
        configs,
        services,
        edge_files,
    })
}

/// `sh -c` that exports each secret file as its variable, then runs `argv` in its place.
fn secrets_prelude(uses: &[SecretUse], argv: &[String]) -> Vec<String> {
    let files: Vec<(String, String)> = uses
        .iter()
        .map(|u| (u.variable.clone(), format!("{SECRETS_DIR}/{}", u.secret)))
        .collect();
    crate::remote::swarm::secrets_entrypoint(&files, argv)
}

/// A shell variable's name.
fn is_variable(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A name Swarm accepts for a secret or config: letters, digits, `-`, `_`, `.`, at most 64 characters.
fn swarm_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.len() > 64 {
        // Keep the hash at the end, which tells versions apart.
        name = name[name.len() - 64..].to_string();
    }
    name.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const STACK: &str = r#"
name: shop
secrets: [POSTGRES_PASSWORD]
environments:
  cluster:
    hosts:
      edge: [ssh://root@10.0.0.1:22, ssh://root@10.0.0.2:22]
      app: [ssh://root@10.0.0.1:22, ssh://root@10.0.0.2:22]
      db: [ssh://root@10.0.0.3:22]
    ssh_agent: true
    known_hosts: known_hosts
    domain: localhost
services:
  postgres:
    image: postgres:15
    env:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}
    volumes: [pgdata:/var/lib/postgresql/data]
  backend:
    image: shop/backend:1
    port: 8080
    env:
      DATABASE_URL: postgres://postgres:${POSTGRES_PASSWORD}@postgres:5432/shop
      RUST_LOG: info
    healthcheck:
      http: /api/health
  nginx:
    image: shop/nginx:1
    ports: ["80:80", "443:443"]
"#;

    fn stack(text: &str) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.yaml");
        std::fs::write(&path, text).unwrap();
        let lookup = |name: &str| (name == "POSTGRES_PASSWORD").then(|| "pw-value-1".to_string());
        let s = crate::stack::load_with(&path, "cluster", &lookup).unwrap();
        // The directory goes; the stack keeps only its path.
        drop(dir);
        s
    }

    fn images() -> Images {
        ["postgres", "backend", "nginx"]
            .iter()
            .map(|s| {
                (
                    (*s).to_string(),
                    (format!("sha256:{s}"), format!("vl/shop-{s}:abc")),
                )
            })
            .collect()
    }

    fn commands() -> BTreeMap<String, ImageCommand> {
        let mut m = BTreeMap::new();
        m.insert(
            "postgres".to_string(),
            ImageCommand {
                argv: vec![
                    "/usr/local/bin/docker-entrypoint.sh".into(),
                    "postgres".into(),
                ],
                user: None,
            },
        );
        m.insert(
            "backend".to_string(),
            ImageCommand {
                argv: vec!["vl-backend".into()],
                user: Some("10001:10001".into()),
            },
        );
        m
    }

    fn key() -> HashKey {
        HashKey::from_bytes([7; 32])
    }

    fn by<'a>(d: &'a ClusterDesign, service: &str) -> &'a ServiceDesign {
        d.services.iter().find(|s| s.service == service).unwrap()
    }

    #[test]
    fn postgres_runs_once_on_the_db_node_and_publishes_nothing() {
        let d = design(&stack(STACK), &images(), &commands(), &key()).unwrap();
        let pg = by(&d, "postgres");
        assert_eq!(pg.name, "shop_postgres");
        assert_eq!(pg.mode, ServiceMode::Replicated(1));
        assert_eq!(pg.constraint, "node.labels.vldeploy.role.db==true");
        assert!(pg.publish.is_empty());
        assert_eq!(pg.order, UpdateOrder::StopFirst);
        assert_eq!(
            pg.mounts,
            vec![VolumeUse {
                source: MountSource::Volume("shop_pgdata".into()),
                target: "/var/lib/postgresql/data".into(),
                read_only: false,
            }]
        );
        assert_eq!(d.network, "shop_cluster");
    }

    #[test]
    fn the_backend_runs_a_task_per_app_node_rolling_start_first_unless_replicas_says() {
        let d = design(&stack(STACK), &images(), &commands(), &key()).unwrap();
        let b = by(&d, "backend");
        assert_eq!(b.mode, ServiceMode::Replicated(2));
        assert_eq!(b.order, UpdateOrder::StartFirst);
        assert_eq!(b.constraint, "node.labels.vldeploy.role.app==true");
        assert_eq!(b.aliases, vec!["backend", "backend-live"]);
        assert!(b.health.is_some());
        let three = STACK.replace("    port: 8080\n", "    port: 8080\n    replicas: 3\n");
        let d = design(&stack(&three), &images(), &commands(), &key()).unwrap();
        assert_eq!(by(&d, "backend").mode, ServiceMode::Replicated(3));
    }

    #[test]
    fn nginx_runs_on_every_edge_node_with_host_ports_and_its_files_as_configs() {
        let d = design(&stack(STACK), &images(), &commands(), &key()).unwrap();
        let n = by(&d, "nginx");
        assert_eq!(n.mode, ServiceMode::Global);
        assert_eq!(n.constraint, "node.labels.vldeploy.role.edge==true");
        assert_eq!(n.publish, vec![(80, 80), (443, 443)]);
        let mounts: Vec<(&str, bool)> = n
            .mounts
            .iter()
            .map(|m| (m.target.as_str(), m.read_only))
            .collect();
        assert_eq!(
            mounts,
            vec![("/var/www/site", true), ("/var/www/acme", true)]
        );
        let targets: Vec<&str> = n.configs.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(
            targets,
            vec![
                "/etc/nginx/conf.d/site.conf",
                "/etc/nginx/conf.d/00-upstream.conf",
            ]
        );
        let files: Vec<&str> = d.edge_files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(files, vec!["/var/lib/vldeploy/shop/www/index.html"]);
        let upstream = d
            .configs
            .iter()
            .find(|c| c.name == n.configs[1].config)
            .unwrap();
        let text = String::from_utf8_lossy(&upstream.content);
        assert!(text.contains("resolver 127.0.0.11 valid=1s"), "{text}");
        assert!(text.contains("default http://backend-live:8080;"), "{text}");
    }

    #[test]
    fn secrets_are_swarm_secrets_read_from_files_never_in_the_environment_or_the_hash() {
        let d = design(&stack(STACK), &images(), &commands(), &key()).unwrap();
        let b = by(&d, "backend");
        assert_eq!(b.env, vec!["RUST_LOG=info"]);
        assert_eq!(b.secrets.len(), 1);
        assert_eq!(b.secrets[0].variable, "DATABASE_URL");
        assert!(
            b.secrets[0]
                .secret
                .starts_with("shop_backend_database_url_")
        );
        assert_eq!(b.command[..2], ["/bin/sh".to_string(), "-c".to_string()]);
        assert_eq!(
            b.command[2],
            format!(
                "DATABASE_URL=\"$(cat /run/secrets/{})\" && export DATABASE_URL && exec \"$@\"",
                b.secrets[0].secret
            )
        );
        assert_eq!(
            b.command[3..],
            ["vldeploy-secrets".to_string(), "vl-backend".into()]
        );
        let all = serde_json::to_string(&d.services).unwrap();
        assert!(!all.contains("pw-value-1"), "{all}");
        assert_eq!(d.secrets.len(), 2);
        assert!(d.secrets.iter().all(|s| s.name.len() <= 64));
        // A new value is a new secret, and so a new service hash.
        let other = {
            let mut s = stack(STACK);
            let b = s.services.get_mut("backend").unwrap();
            b.env.insert(
                "DATABASE_URL".into(),
                crate::stack::EnvValue::Secret(Secret::new("postgres://other")),
            );
            design(&s, &images(), &commands(), &key()).unwrap()
        };
        assert_ne!(by(&other, "backend").secrets[0].secret, b.secrets[0].secret);
        assert_ne!(by(&other, "backend").hash(), b.hash());
        assert_eq!(by(&other, "postgres").hash(), by(&d, "postgres").hash());
    }

    #[test]
    fn the_same_stack_designs_the_same_services_and_an_image_change_changes_one() {
        let a = design(&stack(STACK), &images(), &commands(), &key()).unwrap();
        let b = design(&stack(STACK), &images(), &commands(), &key()).unwrap();
        for (x, y) in a.services.iter().zip(&b.services) {
            assert_eq!(x.hash(), y.hash());
        }
        let mut other = images();
        other.insert(
            "backend".into(),
            ("sha256:new".into(), "vl/shop-backend:new".into()),
        );
        let c = design(&stack(STACK), &other, &commands(), &key()).unwrap();
        assert_ne!(by(&c, "backend").hash(), by(&a, "backend").hash());
        assert_eq!(by(&c, "nginx").hash(), by(&a, "nginx").hash());
    }

    #[test]
    fn a_secret_without_an_image_command_is_refused() {
        let err = design(&stack(STACK), &images(), &BTreeMap::new(), &key()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "service `postgres` has no image command to start after reading its secrets\n  help: give its image an `ENTRYPOINT` or `CMD`"
        );
    }

    #[test]
    fn swarm_names_keep_their_hash_and_allowed_characters() {
        assert_eq!(swarm_name("shop_site-conf_ab12"), "shop_site-conf_ab12");
        assert_eq!(swarm_name("a b/c"), "a-b-c");
        let long = format!("{}_{}", "x".repeat(80), "deadbeef");
        let n = swarm_name(&long);
        assert_eq!(n.len(), 64);
        assert!(n.ends_with("_deadbeef"));
    }
}
