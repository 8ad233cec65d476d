//! Reads an environment's `hosts:`, the machines of a multi-host environment by role, and checks it.

use super::document::{Entry, Node};
use super::error::StackError;
use super::format;
use super::keys;
use super::model::{ClusterHost, Role, SshUrl};
use super::reader::{Map, Reader, place, place_in};
use super::suggest;

/// The hosts of `hosts:` in the order they are first written, each with its roles in `edge`, `app`, `db` order.
pub(crate) fn read(r: &Reader<'_>, node: &Node) -> Result<Vec<ClusterHost>, StackError> {
    let Some(entries) = node.as_map() else {
        return Err(r.error_at(
            node,
            format!(
                "expected a map of roles for {}, found {}",
                place(&node.path),
                node.describe()
            ),
            "list the machines by role, e.g. `hosts: {edge: [ssh://deploy@web1], app: [ssh://deploy@web1, ssh://deploy@app1], db: [ssh://deploy@db1]}`; for one machine write `host: ssh://user@host:port`",
        ));
    };
    for entry in entries {
        role_name(r, entry)?;
    }
    for role in Role::ALL {
        if !entries.iter().any(|e| e.key == role.as_str()) {
            return Err(r.error_at(
                node,
                format!("missing role `{role}` in {}", place(&node.path)),
                format!(
                    "{}: add `{role}: [ssh://user@host:port]`",
                    role.what_runs_there()
                ),
            ));
        }
    }
    let mut hosts: Vec<ClusterHost> = Vec::new();
    // Where each host was first written, to point back at it.
    let mut first_seen: Vec<usize> = Vec::new();
    for entry in entries {
        let Some(role) = Role::parse(&entry.key) else {
            continue;
        };
        let items = r.list(&entry.value)?;
        if items.is_empty() {
            return Err(r.error(
                entry.key_span,
                format!("role `{role}` has no host in {}", place(&entry.value.path)),
                format!(
                    "{}: list at least one `ssh://user@host:port`",
                    role.what_runs_there()
                ),
            ));
        }
        if role == Role::Db && items.len() > 1 {
            return Err(r.error_at(
                &items[1],
                format!(
                    "role `db` lists {} hosts in {}",
                    items.len(),
                    place(&entry.value.path)
                ),
                "postgres runs on one host, with its volume and its backups: keep one `db` host",
            ));
        }
        let mut in_role: Vec<SshUrl> = Vec::new();
        for item in items {
            let url = r.parse(item, format::ssh_url)?;
            if in_role.iter().any(|u| same_machine(u, &url)) {
                return Err(r.error_at(
                    item,
                    format!(
                        "host `{url}` is listed twice in {}",
                        place(&entry.value.path)
                    ),
                    "remove this entry: each host runs a role once",
                ));
            }
            in_role.push(url.clone());
            match hosts.iter().position(|h| same_machine(&h.target, &url)) {
                Some(i) if hosts[i].target.user != url.user => {
                    return Err(r.error_at(
                        item,
                        format!(
                            "host `{}:{}` logs in as `{}` here and as `{}` on line {} in {}",
                            url.host,
                            url.port,
                            url.user,
                            hosts[i].target.user,
                            first_seen[i],
                            place(&node.path)
                        ),
                        "vldeploy logs in to a host as one user: write the same `ssh://user@host:port` under each of its roles",
                    ));
                }
                Some(i) => hosts[i].roles.push(role),
                None => {
                    hosts.push(ClusterHost {
                        target: url,
                        roles: vec![role],
                    });
                    first_seen.push(item.mark.line);
                }
            }
        }
    }
    for host in &mut hosts {
        host.roles.sort_unstable();
    }
    Ok(hosts)
}

/// Two URLs that reach the same sshd.
fn same_machine(a: &SshUrl, b: &SshUrl) -> bool {
    a.host.eq_ignore_ascii_case(&b.host) && a.port == b.port
}

fn role_name(r: &Reader<'_>, entry: &Entry) -> Result<(), StackError> {
    if Role::parse(&entry.key).is_some() {
        return Ok(());
    }
    let help = match suggest::did_you_mean(&entry.key, keys::ROLES.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "the roles are {}",
            suggest::list(keys::ROLES.iter().copied())
        ),
    };
    Err(r.error(
        entry.key_span,
        format!("unknown role `{}` {}", entry.key, place_in(&entry.parent)),
        help,
    ))
}

/// `host:` and `hosts:` together are refused, pointing at the later one.
pub(crate) fn one_of_host_and_hosts(r: &Reader<'_>, env: Map<'_>) -> Result<(), StackError> {
    let (Some(a), Some(b)) = (env.entry("host"), env.entry("hosts")) else {
        return Ok(());
    };
    let later = if a.key_span.mark.index > b.key_span.mark.index {
        a
    } else {
        b
    };
    Err(r.error(
        later.key_span,
        format!("{} sets both `host` and `hosts`", place(&later.parent)),
        "keep `host: ssh://user@host:port` for a stack on one machine, or `hosts:` with the machines by role (`edge`, `app`, `db`) for a stack across several",
    ))
}
