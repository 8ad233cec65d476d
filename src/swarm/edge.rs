//! The edge nodes' host directories mounted into nginx: its `www` (the site's page and the maintenance flag),
//! the ACME webroot, the certificates and the storefront's releases (`site:`). Changed over each edge's SSH connection, followed where needed by a
//! reload of that node's nginx task, so nothing restarts (a change of a Swarm config would restart nginx
//! stop-first on every edge).

use std::sync::Arc;

use super::form::Node;
use crate::layout;
use crate::output::Output;
use crate::plan::MountSource;
use crate::stack::{Role, Stack, Tls};
use crate::transport::Remote;

/// A file of nginx kept in a host directory of every edge node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeFile {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// Why an edge node's files could not be changed. Names the node; never holds a secret.
#[derive(Debug, thiserror::Error)]
#[error("edge `{host}`: {step}: {detail}")]
pub struct EdgeError {
    pub host: String,
    pub step: String,
    pub detail: String,
}

impl EdgeError {
    fn new(host: &str, step: &str, detail: &dyn std::fmt::Display) -> Self {
        Self {
            host: host.to_string(),
            step: step.to_string(),
            detail: detail.to_string(),
        }
    }
}

/// Whether `source` is one of nginx's host directories that stays a directory of each edge node on a swarm.
pub(super) fn is_edge_mount(stack: &str, source: &MountSource) -> bool {
    let MountSource::HostPath(path) = source else {
        return true;
    };
    [
        layout::www_dir(stack),
        layout::acme_webroot(stack),
        layout::certs_dir(stack),
        layout::site_dir(stack),
    ]
    .contains(path)
}

/// The nodes that run nginx, in the order of `hosts:`.
pub fn edges(nodes: &[Node]) -> Vec<&Node> {
    nodes.iter().filter(|n| n.host.has(Role::Edge)).collect()
}

/// The edge nodes' connections, named as `hosts:` names them.
pub fn edge_remotes(nodes: &[Node]) -> Vec<Arc<Remote>> {
    edges(nodes).into_iter().map(|n| n.remote.clone()).collect()
}

/// Before nginx's service is converged: on every edge node, nginx's host directories, the files of its
/// `www` as `files` has them, and with `tls:` a certificate for nginx to start with (a placeholder until the
/// CA issues one, or the operator's `provided` files). Returns what changed.
pub async fn prepare_edges(
    stack: &Stack,
    nodes: &[Node],
    files: &[EdgeFile],
    out: &Output,
) -> Result<Vec<String>, EdgeError> {
    let mut changes = Vec::new();
    for node in edges(nodes) {
        let host = node.remote.name().to_string();
        let remote = &node.remote;
        remote
            .run(&crate::remote::tls::prepare_dirs(&stack.name))
            .await
            .map_err(|e| EdgeError::new(&host, "making nginx's directories", &e))?;
        for file in files {
            let have = remote
                .read_file(&file.path)
                .await
                .map_err(|e| EdgeError::new(&host, &format!("reading `{}`", file.path), &e))?;
            if have.as_deref() != Some(&file.content[..]) {
                remote
                    .upload(&file.path, &file.content, file.mode)
                    .await
                    .map_err(|e| EdgeError::new(&host, &format!("writing `{}`", file.path), &e))?;
                let line = format!("edge {host}: write {}", file.path);
                out.note(&line);
                changes.push(line);
            }
        }
        if stack.tls != Tls::Off {
            let installed = crate::tls::prepare(remote, stack)
                .await
                .map_err(|e| EdgeError::new(&host, "installing the first certificate", &e))?;
            if let Some(what) = installed {
                let line = format!("edge {host}: {what}");
                out.note(&line);
                changes.push(line);
                if matches!(stack.tls, Tls::Provided(_)) {
                    // A running nginx loads the operator's new files; before its first task there is none.
                    let _ = reload_nginx(remote, &stack.name).await;
                }
            }
        }
    }
    Ok(changes)
}

/// The storefront release `site` served by every edge node. Its files are a content-hashed directory on each
/// edge, bind-mounted read-only into the nginx task (as on one host), not Swarm configs: a config holds at most
/// 500 KB and a change of one restarts nginx stop-first on every edge, while a directory switched by one rename
/// of `current` is seen by the next request, with no reload. Every edge that serves another release first
/// receives this one beside it; only then does each switch, so the edges differ for the moment between two
/// renames and no request fails. Returns what changed (nothing when every edge serves it already).
pub async fn release_site(
    stack: &Stack,
    nodes: &[Node],
    site: &crate::plan::DesiredSite,
    actor: &str,
    git: Option<String>,
    out: &Output,
) -> Result<Vec<String>, EdgeError> {
    let mut behind = Vec::new();
    for node in edges(nodes) {
        let serving = crate::site::serving(&node.remote, &stack.name)
            .await
            .map_err(|e| {
                EdgeError::new(node.remote.name(), "reading the storefront release", &e)
            })?;
        if serving.as_deref() != Some(site.hash.as_str()) {
            behind.push((node, serving));
        }
    }
    let staged = behind.iter().map(|(node, _)| async move {
        crate::site::stage(&node.remote, &stack.name, site)
            .await
            .map_err(|e| {
                EdgeError::new(
                    node.remote.name(),
                    &format!("putting the storefront release `{}` in place", site.hash),
                    &e,
                )
            })
    });
    for done in futures_util::future::join_all(staged).await {
        done?;
    }
    let mut changes = Vec::new();
    for (node, serving) in &behind {
        let host = node.remote.name();
        crate::site::switch_to(&node.remote, &stack.name, &site.hash, actor, git.clone())
            .await
            .map_err(|e| {
                EdgeError::new(
                    host,
                    &format!("switching to the storefront release `{}`", site.hash),
                    &e,
                )
            })?;
        let line = match serving {
            Some(old) => format!("edge {host}: site {} (was {old})", site.hash),
            None => format!("edge {host}: site {} (first release)", site.hash),
        };
        out.note(&line);
        changes.push(line);
    }
    Ok(changes)
}

/// Tests and reloads nginx's configuration in the nginx task container on the node behind `remote`.
pub async fn reload_nginx(remote: &Remote, stack: &str) -> Result<(), EdgeError> {
    let out = remote
        .exec(&crate::remote::edge::reload_nginx(stack))
        .await
        .map_err(|e| EdgeError::new(remote.name(), "reloading nginx", &e))?;
    if out.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
    Err(EdgeError::new(
        remote.name(),
        "reloading nginx",
        &format!(
            "exit {}: {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn www_the_webroot_and_the_certificates_stay_host_directories_of_each_edge() {
        let path = |p: &str| MountSource::HostPath(p.to_string());
        assert!(is_edge_mount("shop", &path("/var/lib/vldeploy/shop/www")));
        assert!(is_edge_mount("shop", &path("/var/lib/vldeploy/shop/acme")));
        assert!(is_edge_mount("shop", &path("/var/lib/vldeploy/shop/certs")));
        assert!(!is_edge_mount(
            "shop",
            &path("/var/lib/vldeploy/shop/nginx/conf.d")
        ));
        assert!(is_edge_mount("shop", &path("/var/lib/vldeploy/shop/site")));
        assert!(!is_edge_mount("shop", &path("/var/lib/vldeploy/other/www")));
    }
}
