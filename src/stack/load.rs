//! Loads a stack file for one environment: read, parse, pick the environment, load its env and secrets files,
//! apply its overrides, and read every value into the model.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Location};
use super::document::{self, Entry, Kind, Node, Source};
use super::env_file;
use super::error::StackError;
use super::file_text::{self, FileTextError};
use super::format;
use super::hosts;

use super::interpolate::is_var_name;
use super::keys;
use super::model::{HostKeys, SshAuth, Stack};
use super::reader::{Map, Problem, Reader, place};
use super::section::{self, Tls};
use super::service;
use super::suggest;
use super::validate;
use super::variables::Variables;

/// Loads `path` for `environment`, with variables from the process environment.
pub fn load(path: &Path, environment: &str) -> Result<Stack, StackError> {
    load_with(path, environment, &|name| std::env::var(name).ok())
}

/// The environments a stack file defines, in the order they are written.
pub fn environment_names(path: &Path) -> Result<Vec<String>, StackError> {
    let (source, root) = parse_file(path)?;
    let lookup = |_: &str| None;
    let vars = Variables::process(&lookup);
    let r = Reader {
        source: &source,
        vars: &vars,
        project_dir: Path::new("."),
        home: None,
        expanded: Cell::new(0),
    };
    let top = r.map(&root, keys::TOP)?;
    let envs = r.any_map(r.require(top, "environments", ENVIRONMENTS_HELP)?)?;
    Ok(envs.iter().map(|e| e.key.clone()).collect())
}

const ENVIRONMENTS_HELP: &str = "add `environments:` with at least one environment, e.g. `production: {host: ssh://deploy@example.com, ...}`";

/// Loads `path` for `environment`; `lookup` stands for the process environment.
#[allow(clippy::too_many_lines)]
pub fn load_with(
    path: &Path,
    environment: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Stack, StackError> {
    let (source, root) = parse_file(path)?;
    let project_dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let home = lookup("HOME");
    let process = Variables::process(lookup);
    let r0 = Reader {
        source: &source,
        vars: &process,
        project_dir: &project_dir,
        home: home.clone(),
        expanded: Cell::new(0),
    };
    let top = r0.map(&root, keys::TOP)?;
    let envs_node = r0.require(top, "environments", ENVIRONMENTS_HELP)?;
    let envs = r0.any_map(envs_node)?;
    if envs.is_empty() {
        return Err(r0.error_at(
            envs_node,
            "no environments in `environments`",
            ENVIRONMENTS_HELP,
        ));
    }
    let Some(env_entry) = envs.iter().find(|e| e.key == environment) else {
        return Err(unknown_environment(&r0, envs_node, envs, environment));
    };
    if let Err(p) = format::environment_name(&env_entry.key) {
        return Err(r0.error(
            env_entry.key_span,
            format!("{} at {}", p.message, place(&env_entry.parent)),
            p.help,
        ));
    }
    let env = r0.map(&env_entry.value, keys::ENVIRONMENT)?;

    let mut secret_names = BTreeSet::new();
    if let Some(n) = top.get("secrets") {
        for item in r0.list(n)? {
            let name = r0.parse(item, |s| {
                if is_var_name(s) {
                    Ok(s.to_owned())
                } else {
                    Err(Problem::new(
                        format!("invalid variable name `{s}`"),
                        "list the names of secret variables, e.g. `POSTGRES_PASSWORD`",
                    ))
                }
            })?;
            secret_names.insert(name);
        }
    }
    let secrets_file = env
        .get("secrets_file")
        .map(|n| vars_file(&r0, n, true))
        .transpose()?;
    let env_file = env
        .get("env_file")
        .map(|n| vars_file(&r0, n, false))
        .transpose()?;
    let vars = Variables::with_files(lookup, secrets_file, env_file, secret_names);
    let r = Reader {
        source: &source,
        vars: &vars,
        project_dir: &project_dir,
        home,
        expanded: Cell::new(0),
    };

    let name = r.parse(
        r.require(top, "name", "name the stack, e.g. `name: shop`")?,
        format::stack_name,
    )?;
    hosts::one_of_host_and_hosts(&r, env)?;
    let hosts = env
        .get("hosts")
        .map(|n| hosts::read(&r, n))
        .transpose()?
        .unwrap_or_default();
    let target = match hosts.first() {
        Some(first) => first.target.clone(),
        None => r.parse(
            r.require(env, "host", "add `host: ssh://user@host:port`")?,
            format::ssh_url,
        )?,
    };
    let bootstrap_user = env
        .get("bootstrap_user")
        .map(|n| r.parse(n, format::user_name))
        .transpose()?
        .unwrap_or_else(|| "root".to_owned());
    let command_timeout = env
        .get("command_timeout")
        .map(|n| {
            r.parse(n, |s| {
                let d = format::duration(s)?;
                if d < std::time::Duration::from_secs(1) {
                    return Err(super::reader::Problem::new(
                        format!("command timeout `{s}` is under one second"),
                        "give commands at least `1s` (the default is `10m`)",
                    ));
                }
                Ok(d)
            })
        })
        .transpose()?
        .unwrap_or(crate::layout::COMMAND_TIMEOUT);
    let auth = auth(&r, env)?;
    let host_keys = host_keys(&r, env)?;
    let domain = r.parse(
        r.require(
            env,
            "domain",
            "add the domain nginx serves, e.g. `domain: shop.example`",
        )?,
        format::domain,
    )?;
    let gated = env
        .get("gated")
        .map(|n| r.boolean(n))
        .transpose()?
        .unwrap_or(false);

    let services_node = r.require(
        top,
        "services",
        "add `services:` with `nginx`, `postgres` and `backend`",
    )?;
    let entries = r.any_map(services_node)?;
    for entry in entries {
        validate::service_name(&r, entry)?;
    }
    validate::all_services(&r, services_node, entries)?;
    let overrides = match env.get("overrides") {
        Some(n) => r.any_map(n)?,
        None => &[],
    };
    for entry in overrides {
        validate::service_name(&r, entry)?;
    }
    let mut reads = BTreeMap::new();
    for entry in entries {
        let over = overrides
            .iter()
            .find(|o| o.key == entry.key)
            .map(|o| &o.value);
        let merged = merge(&entry.value, over);
        reads.insert(entry.key.clone(), service::read(&r, &entry.key, &merged)?);
    }
    validate::no_cycles(&r, &reads)?;
    if hosts.is_empty() {
        validate::replicas_on_one_host(&r, env, entries, overrides)?;
    }

    let section = |key: &str| env.get(key).or_else(|| top.get(key));
    let tls = section("tls")
        .map(|n| section::tls(&r, n))
        .transpose()?
        .unwrap_or(Tls::Off);
    let firewall = section("firewall")
        .map(|n| section::firewall(&r, n))
        .transpose()?;
    let backup = section("backup")
        .map(|n| section::backup(&r, n, &name))
        .transpose()?;
    let checklist = section("checklist")
        .map(|n| section::checklist(&r, n))
        .transpose()?;
    let site = section("site")
        .map(|n| project_entry(&r, n, ProjectEntry::Directory))
        .transpose()?;
    let catalog = section("catalog")
        .map(|n| project_entry(&r, n, ProjectEntry::File))
        .transpose()?;

    Ok(Stack {
        name,
        environment: environment.to_owned(),
        project_dir: project_dir.clone(),
        target,
        hosts,
        bootstrap_user,
        command_timeout,
        auth,
        host_keys,
        domain,
        gated,
        services: reads
            .into_iter()
            .map(|(k, read)| (k, read.service))
            .collect(),
        secrets: vars.secret_values(),
        named_secrets: vars.named_secrets(),
        overridden: vars.overridden(),
        tls,
        firewall,
        backup,
        checklist,
        site,
        catalog,
    })
}

/// What a project path of stack.yaml must name.
#[derive(Clone, Copy)]
enum ProjectEntry {
    /// `site:`, the storefront's directory.
    Directory,
    /// `catalog:`, the catalog CSV.
    File,
}

/// A `site:` or `catalog:` path: inside the project (relative, no `..`), and there, of the right kind.
fn project_entry(r: &Reader<'_>, node: &Node, want: ProjectEntry) -> Result<PathBuf, StackError> {
    let (what, example) = match want {
        ProjectEntry::Directory => ("site directory", "frontend/"),
        ProjectEntry::File => ("catalog file", "data/catalog.csv"),
    };
    let rel = r.parse(node, |s| format::project_path(s, what, example))?;
    let path = r.project_dir.join(&rel);
    let meta = std::fs::metadata(&path);
    let problem = match (&meta, want) {
        (Ok(m), ProjectEntry::Directory) if m.is_dir() => None,
        (Ok(m), ProjectEntry::File) if m.is_file() => None,
        (Ok(_), ProjectEntry::Directory) => Some("it is not a directory"),
        (Ok(_), ProjectEntry::File) => Some("it is not a regular file"),
        (Err(e), _) if e.kind() == io::ErrorKind::NotFound => Some("it does not exist"),
        (Err(_), _) => Some("it cannot be read"),
    };
    // A symlink out of the project would publish (or import) whatever it points at.
    let outside = problem.is_none()
        && match (
            std::fs::canonicalize(&path),
            std::fs::canonicalize(r.project_dir),
        ) {
            (Ok(resolved), Ok(project)) => !resolved.starts_with(project),
            _ => true,
        };
    let problem = problem.or(outside.then_some("it leads out of the project (a symlink)"));
    if let Some(why) = problem {
        return Err(r.error_at(
            node,
            format!(
                "{what} `{rel}` at {}: {why} (looked for `{}`)",
                place(&node.path),
                path.display()
            ),
            format!(
                "name a {} of the project, relative to the stack file, e.g. `{example}`",
                match want {
                    ProjectEntry::Directory => "directory",
                    ProjectEntry::File => "file",
                }
            ),
        ));
    }
    Ok(path)
}

fn parse_file(path: &Path) -> Result<(Source, Node), StackError> {
    let unreadable = |message: String, help: &str| StackError::Unreadable {
        path: path.to_path_buf(),
        diagnostic: Box::new(Diagnostic::new(message).help(help)),
    };
    let text = file_text::read(path, file_text::STACK_LIMIT).map_err(|e| match e {
        FileTextError::Io(e) => {
            let help = if e.kind() == io::ErrorKind::NotFound {
                "check the path: a project keeps its stack in `stack.yaml` at its root"
            } else {
                "check that the file is readable text (UTF-8)"
            };
            unreadable(format!("cannot read `{}`: {e}", path.display()), help)
        }
        FileTextError::NotAFile => unreadable(
            format!("cannot read `{}`: it is not a regular file", path.display()),
            "name the stack file itself with `--file` (a directory, FIFO or device is not read)",
        ),
        FileTextError::TooLarge { size, limit } => unreadable(
            format!(
                "`{}` is too large for a stack file: {size} bytes, the limit is {limit} ({})",
                path.display(),
                file_text::human(limit)
            ),
            "a stack file is a few kilobytes: check that `--file` names the stack file, not a dump, a log or a binary",
        ),
    })?;
    let source = Source::new(path.display().to_string(), &text);
    let root = document::parse(&text).map_err(|e| {
        let location = Location {
            file: source.name.clone(),
            line: e.span.mark.line,
            col: e.span.mark.col + 1,
            len: e.span.len,
            snippet: source.line(e.span.mark.line).map(str::to_owned),
        };
        StackError::Syntax(Box::new(
            Diagnostic::new(e.message).at(location).help(e.help),
        ))
    })?;
    Ok((source, root))
}

fn unknown_environment(r: &Reader<'_>, envs_node: &Node, envs: &[Entry], name: &str) -> StackError {
    let defined: Vec<String> = envs.iter().map(|e| e.key.clone()).collect();
    let list = suggest::list(defined.iter().map(String::as_str));
    let help = match suggest::did_you_mean(name, defined.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`? defined environments: {list}"),
        None => format!("defined environments: {list}"),
    };
    StackError::UnknownEnvironment {
        name: name.to_owned(),
        defined,
        diagnostic: Box::new(r.diagnostic(
            envs_node.span(r.source),
            format!("unknown environment `{name}`"),
            help,
        )),
    }
}

/// Reads an environment's `env_file` or `secrets_file`: `(name as written, variables)`.
fn vars_file(
    r: &Reader<'_>,
    node: &Node,
    secret: bool,
) -> Result<(String, BTreeMap<String, String>), StackError> {
    let written = r.string(node)?;
    let path = r.path(node)?;
    let (kind, key) = if secret {
        ("secrets file", "secrets_file")
    } else {
        ("env file", "env_file")
    };
    let text = match file_text::read(&path, file_text::VARS_LIMIT) {
        Ok(text) => text,
        Err(FileTextError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            let message = format!("{kind} `{written}` does not exist ({})", place(&node.path));
            if secret {
                let help = format!(
                    "create `{}` with one `KEY=VALUE` line per secret (e.g. `POSTGRES_PASSWORD=...`), `chmod 600` it and keep it out of git",
                    path.display()
                );
                return Err(StackError::SecretsFileMissing {
                    path,
                    diagnostic: Box::new(r.diagnostic(node.span(r.source), message, help)),
                });
            }
            let help = format!(
                "create `{}` with `KEY=VALUE` lines, or remove `{key}`",
                path.display()
            );
            return Err(r.error_at(node, message, help));
        }
        Err(FileTextError::Io(e)) => {
            return Err(r.error_at(
                node,
                format!("cannot read {kind} `{written}`: {e}"),
                format!("check that `{}` is a readable text file", path.display()),
            ));
        }
        Err(FileTextError::NotAFile) => {
            return Err(r.error_at(
                node,
                format!("cannot read {kind} `{written}`: it is not a regular file"),
                format!("name a `KEY=VALUE` file in `{key}`"),
            ));
        }
        Err(FileTextError::TooLarge { size, limit }) => {
            return Err(r.error_at(
                node,
                format!(
                    "{kind} `{written}` is too large: {size} bytes, the limit is {limit} ({})",
                    file_text::human(limit)
                ),
                format!(
                    "{} {kind} holds a few `KEY=VALUE` lines: check that `{key}` names the right file",
                    if secret { "a" } else { "an" }
                ),
            ));
        }
    };
    let vars = env_file::parse(&text).map_err(|e| {
        let snippet = if secret {
            None
        } else {
            text.lines().nth(e.line - 1).map(str::to_owned)
        };
        let len = snippet
            .as_deref()
            .map_or(1, |l| l.trim_end().chars().count());
        StackError::Invalid(Box::new(
            Diagnostic::new(format!("{} in {kind} `{written}`", e.message))
                .at(Location {
                    file: path.display().to_string(),
                    line: e.line,
                    col: 1,
                    len,
                    snippet,
                })
                .help("write one `KEY=VALUE` per line; lines starting with `#` are comments"),
        ))
    })?;
    Ok((written, vars))
}

fn auth(r: &Reader<'_>, env: Map<'_>) -> Result<SshAuth, StackError> {
    let key = env.entry("ssh_key");
    let agent = env.entry("ssh_agent");
    let agent_on = agent
        .map(|e| r.boolean(&e.value))
        .transpose()?
        .unwrap_or(false);
    match (key, agent_on) {
        (Some(k), true) => {
            let later = agent
                .filter(|a| a.key_span.mark.index > k.key_span.mark.index)
                .unwrap_or(k);
            Err(r.error(
                later.key_span,
                format!("{} sets both `ssh_key` and `ssh_agent`", place(&later.parent)),
                "keep `ssh_key: <path>` to log in with a key file, or `ssh_agent: true` to use the running ssh-agent",
            ))
        }
        (None, false) => Err(r.error_at(
            env.node,
            format!(
                "{} needs `ssh_key` or `ssh_agent: true`",
                place(&env.node.path)
            ),
            "add `ssh_key: <path to a private key>` or `ssh_agent: true`",
        )),
        (Some(k), false) => Ok(SshAuth::Key(r.path(&k.value)?)),
        (None, true) => Ok(SshAuth::Agent),
    }
}

fn host_keys(r: &Reader<'_>, env: Map<'_>) -> Result<HostKeys, StackError> {
    match (env.entry("known_hosts"), env.entry("host_key")) {
        (Some(a), Some(b)) => {
            let later = if a.key_span.mark.index > b.key_span.mark.index { a } else { b };
            Err(r.error(
                later.key_span,
                format!("{} sets both `known_hosts` and `host_key`", place(&later.parent)),
                "keep `known_hosts: <file>` or `host_key: SHA256:...`: the host key is checked against one of them",
            ))
        }
        (None, None) => Err(r.error_at(
            env.node,
            format!("{} needs `known_hosts` or `host_key`", place(&env.node.path)),
            "add `known_hosts: ~/.ssh/known_hosts` or pin the key with `host_key: SHA256:...` (from `ssh-keyscan HOST | ssh-keygen -lf -`)",
        )),
        (Some(k), None) => Ok(HostKeys::KnownHosts(r.path(&k.value)?)),
        (None, Some(h)) => Ok(HostKeys::Pinned(r.parse(&h.value, format::fingerprint)?)),
    }
}

/// A service with an environment's override on top: `env` merges key by key, `build`/`image` replace each other,
/// every other key replaces the base's.
fn merge(base: &Node, over: Option<&Node>) -> Node {
    let Some(over) = over else {
        return base.clone();
    };
    let (Some(base_entries), Some(over_entries)) = (base.as_map(), over.as_map()) else {
        return over.clone();
    };
    // `build` and `image` name the same thing: the override's last one replaces the base's either.
    let is_source = |e: &Entry| e.key == "build" || e.key == "image";
    let last_source = over_entries.iter().rposition(is_source);
    let kept: Vec<Entry> = base_entries
        .iter()
        .filter(|e| last_source.is_none() || !is_source(e))
        .cloned()
        .collect();
    let base_env = kept.iter().find(|e| e.key == "env");
    let on_top: Vec<Entry> = over_entries
        .iter()
        .enumerate()
        .filter(|(i, o)| !is_source(o) || Some(*i) == last_source)
        .map(|(_, o)| match (o.key.as_str(), base_env) {
            ("env", Some(b)) => match (b.value.as_map(), o.value.as_map()) {
                (Some(be), Some(oe)) => Entry {
                    value: Node {
                        kind: Kind::Map(overlay(be, oe)),
                        mark: b.value.mark,
                        path: b.value.path.clone(),
                        key: b.value.key,
                    },
                    key: b.key.clone(),
                    key_span: b.key_span,
                    parent: b.parent.clone(),
                },
                _ => o.clone(),
            },
            _ => o.clone(),
        })
        .collect();
    Node {
        kind: Kind::Map(overlay(&kept, &on_top)),
        ..base.clone()
    }
}

/// The entries of `base` with those of `over` on top, in one pass over each: a key of both keeps its place and
/// takes `over`'s entry; a new key goes at the end.
fn overlay(base: &[Entry], over: &[Entry]) -> Vec<Entry> {
    let mut merged = base.to_vec();
    let mut index: HashMap<&str, usize> = base
        .iter()
        .enumerate()
        .map(|(i, e)| (e.key.as_str(), i))
        .collect();
    for item in over {
        match index.get(item.key.as_str()) {
            Some(&i) => merged[i] = item.clone(),
            None => {
                index.insert(item.key.as_str(), merged.len());
                merged.push(item.clone());
            }
        }
    }
    merged
}
