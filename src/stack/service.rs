//! Reads one service (`nginx`, `postgres` or `backend`) from its node, after the environment's overrides.

use std::collections::BTreeMap;
use std::time::Duration;

use super::document::{Kind, Node};
use super::error::StackError;
use super::format;
use super::keys;
use super::model::{BuildSpec, HealthCheck, ImageSource, Probe, Service};
use super::reader::{Map, Reader, place};
use super::suggest;

/// A service and the nodes of its `depends_on` entries, to point at when they form a cycle.
pub(crate) struct Read {
    pub(crate) service: Service,
    pub(crate) depends_on: Vec<(String, Node)>,
}

/// `depends_on`: names of the other services, each once, with the nodes they were written at.
fn depends_on(r: &Reader<'_>, m: Map<'_>, name: &str) -> Result<Vec<(String, Node)>, StackError> {
    let mut depends_on = Vec::new();
    if let Some(n) = m.get("depends_on") {
        for item in r.list(n)? {
            let dep = r.string(item)?;
            if !keys::SERVICE_NAMES.contains(&dep.as_str()) {
                let help = match suggest::did_you_mean(&dep, keys::SERVICE_NAMES.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "the services are {}",
                        suggest::list(keys::SERVICE_NAMES.iter().copied())
                    ),
                };
                return Err(r.error_at(
                    item,
                    format!("unknown service `{dep}` in {}", place(&item.path)),
                    help,
                ));
            }
            if dep == name {
                return Err(r.error_at(
                    item,
                    format!("`{name}` depends on itself in {}", place(&item.path)),
                    "remove this entry",
                ));
            }
            if !depends_on.iter().any(|(d, _): &(String, Node)| *d == dep) {
                depends_on.push((dep, item.clone()));
            }
        }
    }
    Ok(depends_on)
}

/// The most backend replicas a stack may ask for.
pub(crate) const MAX_REPLICAS: u64 = 64;

/// `replicas:`: the backend's alone; postgres runs once on the `db` host and nginx once on every `edge` host.
fn replicas(r: &Reader<'_>, m: Map<'_>, name: &str) -> Result<Option<u32>, StackError> {
    let Some(entry) = m.entry("replicas") else {
        return Ok(None);
    };
    let why = match name {
        "postgres" => Some((
            "postgres runs once, on the `db` host, with its volume",
            "remove `replicas`: one database holds the shop's data; its copies are backups",
        )),
        "nginx" => Some((
            "nginx runs once on every `edge` host",
            "remove `replicas`: list more `edge` hosts to run more nginx",
        )),
        _ => None,
    };
    if let Some((what, help)) = why {
        return Err(r.error(
            entry.key_span,
            format!("{what}: {} cannot set `replicas`", place(&entry.parent)),
            help,
        ));
    }
    let n = r.integer(&entry.value, "replica count", 1, MAX_REPLICAS)?;
    Ok(Some(u32::try_from(n).unwrap_or(u32::MAX)))
}

pub(crate) fn read(r: &Reader<'_>, name: &str, node: &Node) -> Result<Read, StackError> {
    let m = r.map(node, keys::SERVICE)?;
    let source = source(r, m, name)?;
    let mut env = BTreeMap::new();
    if let Some(n) = m.get("env") {
        for entry in r.any_map(n)? {
            env.insert(entry.key.clone(), r.env_value(&entry.value)?);
        }
    }
    let volumes = match m.get("volumes") {
        Some(n) => r
            .list(n)?
            .iter()
            .map(|v| r.parse(v, format::volume))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let ports = match m.entry("ports") {
        Some(entry) if name != "nginx" => {
            let (what, help) = if name == "postgres" {
                (
                    "the database",
                    "remove `ports`: nginx is the only published service, and the backend reaches postgres on the private network",
                )
            } else {
                (
                    "the backend",
                    "remove `ports`: nginx is the only published service, and it proxies `/api/` to the backend",
                )
            };
            return Err(r.error(
                entry.key_span,
                format!(
                    "{what} must stay on the private network: {} cannot publish ports",
                    place(&entry.parent)
                ),
                help,
            ));
        }
        Some(entry) => r
            .list(&entry.value)?
            .iter()
            .map(|p| r.parse(p, format::port_mapping))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let port = m.get("port").map(|n| r.port(n)).transpose()?;
    if name == "backend" && port.is_none() {
        return Err(r.error_at(
            node,
            format!("missing `port` at {}", place(&node.path)),
            "set the port the backend listens on inside the network, e.g. `port: 8080`",
        ));
    }
    let healthcheck = m
        .get("healthcheck")
        .map(|n| healthcheck(r, n))
        .transpose()?;
    let replicas = replicas(r, m, name)?;
    let depends_on = depends_on(r, m, name)?;
    Ok(Read {
        service: Service {
            name: name.to_owned(),
            source,
            env,
            volumes,
            ports,
            port,
            healthcheck,
            depends_on: depends_on.iter().map(|(d, _)| d.clone()).collect(),
            replicas,
        },
        depends_on,
    })
}

fn source(r: &Reader<'_>, m: Map<'_>, name: &str) -> Result<ImageSource, StackError> {
    match (m.entry("build"), m.entry("image")) {
        (Some(build), Some(image)) => {
            let later = if build.key_span.mark.index > image.key_span.mark.index {
                build
            } else {
                image
            };
            Err(r.error(
                later.key_span,
                format!("{} sets both `build` and `image`", place(&later.parent)),
                "keep `build` to build the image from a local directory, or `image` to run a ready-made one",
            ))
        }
        (None, None) => Err(r.error_at(
            m.node,
            format!("{} needs `build` or `image`", place(&m.node.path)),
            format!(
                "add `build: <directory with a Dockerfile>` or `image: <reference>` to `{name}`"
            ),
        )),
        (None, Some(image)) => Ok(ImageSource::Image(r.parse(&image.value, format::image)?)),
        (Some(build), None) => {
            let node = &build.value;
            if matches!(node.kind, Kind::Scalar { .. }) {
                return Ok(ImageSource::Build(BuildSpec {
                    context: r.path(node)?,
                    dockerfile: "Dockerfile".to_owned(),
                    prepare: None,
                    inputs: Vec::new(),
                    args: BTreeMap::new(),
                }));
            }
            let b = r.map(node, keys::BUILD)?;
            let context = r.path(r.require(
                b,
                "context",
                "name the build context directory, e.g. `context: backend`",
            )?)?;
            let dockerfile = b
                .get("dockerfile")
                .map(|n| r.string(n))
                .transpose()?
                .unwrap_or_else(|| "Dockerfile".to_owned());
            let prepare = b.get("prepare").map(|n| r.string(n)).transpose()?;
            let mut inputs = Vec::new();
            if let Some(n) = b.get("inputs") {
                for item in r.list(n)? {
                    let pattern = r.string(item)?;
                    if pattern.is_empty() || glob::Pattern::new(&pattern).is_err() {
                        return Err(r.error_at(
                            item,
                            format!(
                                "`{pattern}` at {} is not a path or glob pattern",
                                place(&item.path)
                            ),
                            "write a path relative to the project directory, e.g. `backend/src` or `backend/**/*.rs`",
                        ));
                    }
                    inputs.push(pattern);
                }
                if prepare.is_none() {
                    return Err(r.error_at(
                        n,
                        format!(
                            "{} lists the inputs of a `prepare` command, but there is none",
                            place(&n.path)
                        ),
                        "add `prepare: <command>` beside `inputs`, or remove `inputs`",
                    ));
                }
            }
            let mut args = BTreeMap::new();
            if let Some(n) = b.get("args") {
                for entry in r.any_map(n)? {
                    if matches!(entry.value.kind, Kind::Map(_) | Kind::Seq(_)) {
                        return Err(r.error_at(
                            &entry.value,
                            format!(
                                "a build arg must be a string, number or boolean; {} is {}",
                                place(&entry.value.path),
                                entry.value.describe()
                            ),
                            "quote the value to pass it as text",
                        ));
                    }
                    args.insert(entry.key.clone(), r.string(&entry.value)?);
                }
            }
            Ok(ImageSource::Build(BuildSpec {
                context,
                dockerfile,
                prepare,
                inputs,
                args,
            }))
        }
    }
}

fn healthcheck(r: &Reader<'_>, node: &Node) -> Result<HealthCheck, StackError> {
    let m = r.map(node, keys::HEALTHCHECK)?;
    let probe = match (m.entry("command"), m.entry("http")) {
        (Some(a), Some(b)) => {
            let later = if a.key_span.mark.index > b.key_span.mark.index {
                a
            } else {
                b
            };
            return Err(r.error(
                later.key_span,
                format!("{} sets both `command` and `http`", place(&later.parent)),
                "keep one probe: `command` runs inside the container, `http` requests a path",
            ));
        }
        (None, None) => {
            return Err(r.error_at(
                node,
                format!("{} needs `command` or `http`", place(&node.path)),
                "add `command: [...]` (run inside the container) or `http: /path` (requested on the service's port)",
            ));
        }
        (Some(c), None) => {
            let argv = r.strings(&c.value)?;
            if argv.is_empty() {
                return Err(r.error_at(
                    &c.value,
                    format!("empty command at {}", place(&c.value.path)),
                    "write the program and its arguments, e.g. `[pg_isready, -U, postgres]`",
                ));
            }
            Probe::Command(argv)
        }
        (None, Some(h)) => Probe::Http(r.parse(&h.value, format::health_path)?),
    };
    let duration = |key: &str, default: u64| -> Result<Duration, StackError> {
        m.get(key)
            .map(|n| r.parse(n, format::duration))
            .transpose()
            .map(|d| d.unwrap_or(Duration::from_secs(default)))
    };
    Ok(HealthCheck {
        probe,
        interval: duration("interval", 5)?,
        timeout: duration("timeout", 5)?,
        retries: m
            .get("retries")
            .map(|n| r.count(n))
            .transpose()?
            .unwrap_or(10),
    })
}
