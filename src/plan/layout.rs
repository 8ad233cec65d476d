//! Where a stack lives on its host: container names, networks, volumes and managed files, as a `Desired`.

use std::collections::BTreeMap;

use super::desired::{
    ContainerSpec, Desired, DesiredFile, DesiredImage, EnvEntry, HashKey, Health, Mount,
    MountSource, Publish, content_hash,
};
use crate::layout::{
    BACKEND_PORT, NGINX_SITE_DIR, SERVICES, container_name, private_network, public_network,
    serving_name, serving_network, stack_dir, volume_name,
};
use crate::render::{self, NginxSite, NginxUpstream, RenderError};
use crate::stack::{EnvValue, ImageSource, Probe, Stack, Tls};

/// A built or pulled image per service: `(id, reference)`.
pub type Images = BTreeMap<String, (String, String)>;

/// What `stack` asks of its host, given the images built for it and the host's key for hashing secrets.
pub fn desired_from_stack(
    stack: &Stack,
    images: &Images,
    hash_key: &HashKey,
) -> Result<Desired, RenderError> {
    let dir = stack_dir(&stack.name);
    let private = private_network(&stack.name);
    let public = public_network(&stack.name);
    let serving = serving_network(&stack.name);
    let backend_port = stack
        .services
        .get("backend")
        .and_then(|s| s.port)
        .unwrap_or(BACKEND_PORT);
    let overrides = stack.project_dir.join("templates");
    let site = render::render_in(
        Some(&overrides),
        "nginx/site.conf",
        &NginxSite {
            stack: stack.name.clone(),
            environment: stack.environment.clone(),
            domain: stack.domain.clone(),
            tls: stack.tls != Tls::Off,
            certs: crate::tls::NGINX_CERTS.into(),
            site_root: stack
                .site
                .as_ref()
                .map(|_| format!("{NGINX_SITE_DIR}/current")),
        },
    )?;
    let index = render::render_in(
        Some(&overrides),
        "www/index.html",
        &serde_json::json!({"stack": stack.name, "domain": stack.domain}),
    )?;
    let mut files = vec![
        file(format!("{dir}/nginx/conf.d/site.conf"), site, Some("nginx")),
        file(format!("{dir}/www/index.html"), index, None),
    ];

    let mut volumes = Vec::new();
    let mut containers = Vec::new();
    let mut desired_images = Vec::new();
    for service_name in SERVICES {
        let Some(service) = stack.services.get(service_name) else {
            continue;
        };
        let (image_id, image_ref) = images.get(service_name).cloned().unwrap_or_default();
        desired_images.push(DesiredImage {
            service: service_name.into(),
            id: image_id.clone(),
            reference: image_ref.clone(),
            pulled: matches!(service.source, ImageSource::Image(_)),
        });
        let mut env: BTreeMap<String, EnvEntry> = service
            .env
            .iter()
            .map(|(k, v)| {
                let entry = match v {
                    EnvValue::Plain(s) => EnvEntry::Plain(s.clone()),
                    EnvValue::Secret(s) => EnvEntry::Secret(s.clone()),
                };
                (k.clone(), entry)
            })
            .collect();
        let mut mounts = Vec::new();
        for v in &service.volumes {
            let source = if v.source.starts_with('/') {
                MountSource::HostPath(v.source.clone())
            } else {
                let name = volume_name(&stack.name, &v.source);
                if !volumes.contains(&name) {
                    volumes.push(name.clone());
                }
                MountSource::Volume(name)
            };
            mounts.push(Mount {
                source,
                target: v.target.clone(),
                read_only: v.read_only,
            });
        }
        if service_name == "postgres" {
            add_archive(stack, &mut env, &mut mounts, &mut volumes)?;
        }
        let mut networks = BTreeMap::new();
        networks.insert(private.clone(), vec![service_name.to_string()]);
        if service_name == "nginx" {
            networks.insert(public.clone(), vec![service_name.to_string()]);
            // Where it resolves and reaches the serving backend releases.
            networks.insert(serving.clone(), vec![service_name.to_string()]);
            for (host, target) in [
                ("nginx/conf.d", "/etc/nginx/conf.d"),
                ("www", "/var/www/site"),
                ("acme", "/var/www/acme"),
            ] {
                mounts.push(Mount {
                    source: MountSource::HostPath(format!("{dir}/{host}")),
                    target: target.into(),
                    read_only: true,
                });
            }
            if stack.site.is_some() {
                mounts.push(Mount {
                    source: MountSource::HostPath(crate::layout::site_dir(&stack.name)),
                    target: NGINX_SITE_DIR.into(),
                    read_only: true,
                });
            }
            if stack.tls != Tls::Off {
                mounts.push(Mount {
                    source: MountSource::HostPath(crate::tls::certs_dir(&stack.name)),
                    target: crate::tls::NGINX_CERTS.into(),
                    read_only: true,
                });
            }
        }
        let publish = service
            .ports
            .iter()
            .map(|p| Publish {
                host_ip: p.host_ip.map(|ip| ip.to_string()),
                host_port: p.host,
                container_port: p.container,
            })
            .collect();
        let probe_port = service
            .port
            .or_else(|| service.ports.first().map(|p| p.container))
            .unwrap_or(80);
        let health = service.healthcheck.as_ref().map(|h| Health {
            test: health_test(&h.probe, probe_port),
            interval_ms: millis(h.interval),
            timeout_ms: millis(h.timeout),
            retries: h.retries,
        });
        containers.push(ContainerSpec {
            service: service_name.into(),
            name: container_name(service_name),
            image_id,
            image_ref,
            env,
            networks,
            mounts,
            publish,
            health,
            depends_on: service.depends_on.clone(),
            release_alias: None,
            hash_key: Some(hash_key.clone()),
        });
    }
    // The backend is released blue/green: each configuration is a release of its own (`backend-<hash>`); the
    // serving one joins the serving network under the stable name that nginx resolves.
    if let Some(backend) = containers.iter_mut().find(|c| c.service == "backend") {
        files.push(upstream_file(&stack.name, backend_port)?);
        backend.release_alias = Some(release_alias(backend));
    }
    Ok(Desired {
        stack: stack.name.clone(),
        networks: vec![private, public, serving],
        volumes,
        images: desired_images,
        files,
        containers,
        ..Desired::default()
    })
}

/// Continuous archiving (`backup.archive`) in the postgres container: its entrypoint's variables and the volume of
/// a local repository.
fn add_archive(
    stack: &Stack,
    env: &mut BTreeMap<String, EnvEntry>,
    mounts: &mut Vec<Mount>,
    volumes: &mut Vec<String>,
) -> Result<(), RenderError> {
    use crate::backup::archive::{ContainerValue, container_archive};
    let Some(a) = container_archive(stack)? else {
        return Ok(());
    };
    for (k, v) in a.env {
        let entry = match v {
            ContainerValue::Plain(s) => EnvEntry::Plain(s),
            ContainerValue::Secret(s) => EnvEntry::Secret(s),
        };
        env.insert(k, entry);
    }
    if let Some((suffix, target)) = a.volume {
        let name = volume_name(&stack.name, &suffix);
        if !volumes.contains(&name) {
            volumes.push(name.clone());
        }
        mounts.push(Mount {
            source: MountSource::Volume(name),
            target,
            read_only: false,
        });
    }
    Ok(())
}

/// The network alias of a release: the service name and the hash of its configuration.
pub fn release_alias(spec: &ContainerSpec) -> String {
    format!("{}-{}", spec.service, spec.config_hash())
}

/// Where the nginx upstream lives on the host.
pub fn upstream_path(stack: &str) -> String {
    format!("{}/nginx/conf.d/00-upstream.conf", stack_dir(stack))
}

/// nginx's way to the backend: the resolver and the stable name of the serving releases. The same for every
/// release, so a release never changes nginx's configuration.
pub fn upstream_file(stack: &str, port: u16) -> Result<DesiredFile, RenderError> {
    let text = render::render(
        "nginx/upstream.conf",
        &NginxUpstream {
            stack: stack.to_string(),
            backend_name: serving_name("backend"),
            backend_port: port,
        },
    )?;
    Ok(file(upstream_path(stack), text, Some("nginx")))
}

/// Docker's health test for a probe. An HTTP probe uses curl where the image has it, else the backend's own checker.
pub fn health_test(probe: &Probe, port: u16) -> Vec<String> {
    match probe {
        Probe::Command(argv) => std::iter::once("CMD".to_string())
            .chain(argv.iter().cloned())
            .collect(),
        Probe::Http(path) => {
            vec![
                "CMD-SHELL".into(),
                crate::remote::health::http_check(port, path)
                    .text()
                    .to_owned(),
            ]
        }
    }
}

/// How a probe reads in an error message.
pub fn describe_probe(probe: &Probe, port: u16) -> String {
    match probe {
        Probe::Command(argv) => format!("`{}` inside the container", argv.join(" ")),
        Probe::Http(path) => {
            format!("GET http://127.0.0.1:{port}{path} inside the container must answer 2xx")
        }
    }
}

fn file(path: String, content: String, reloads: Option<&str>) -> DesiredFile {
    DesiredFile {
        path,
        hash: content_hash(content.as_bytes()),
        mode: 0o644,
        content: content.into_bytes(),
        reloads: reloads.map(str::to_string),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
