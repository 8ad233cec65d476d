//! `vldeploy sandbox up|down|status`: the disposable local host the `sandbox` environment points at.

use std::path::{Path, PathBuf};

use super::CommandError;
use crate::cli::{Global, Output, SandboxAction};
use crate::sandbox::{self, ClusterOptions, SandboxOptions};

/// The sandbox needs only the stack's name, so a stack that does not load yet (no sandbox files) still works.
pub(crate) async fn sandbox(global: &Global, action: &SandboxAction) -> Result<i32, CommandError> {
    let project = global
        .file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let project = if project.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        project
    };
    let stack_name = stack_name(&global.file)?;
    let name = sandbox::default_name(&stack_name);
    let dir = project.join(".vldeploy/sandbox");
    match action {
        SandboxAction::Up {
            publish,
            nodes: Some(nodes),
            ..
        } => {
            let cluster = sandbox::up_cluster(&ClusterOptions {
                name: cluster_name(&stack_name),
                dir: project.join(".vldeploy/cluster"),
                nodes: *nodes,
                extra_ports: publish.clone(),
            })
            .await?;
            print_cluster(global.output, &cluster);
        }
        SandboxAction::Up { publish, bare, .. } => {
            let flavor = if *bare {
                sandbox::Flavor::Bare
            } else {
                sandbox::Flavor::Full
            };
            let sb = sandbox::up(&SandboxOptions {
                name: name.clone(),
                dir: dir.clone(),
                extra_ports: publish.clone(),
                flavor,
            })
            .await?;
            print_one(global.output, &sb, "up");
            if global.output == Output::Human {
                match flavor {
                    sandbox::Flavor::Full => {
                        println!("next: `vldeploy up --env sandbox` deploys the shop to it.");
                    }
                    sandbox::Flavor::Bare => println!(
                        "a bare host: no Docker engine, nftables, cron or sudo yet, as a new server comes."
                    ),
                }
            }
        }
        SandboxAction::Down => {
            sandbox::down(&name, &dir).await?;
            sandbox::down_cluster(
                &cluster_name(&stack_name),
                &project.join(".vldeploy/cluster"),
            )
            .await?;
            match global.output {
                Output::Human => println!("sandbox `{name}` removed."),
                Output::Json => {
                    println!("{}", serde_json::json!({"name": name, "state": "removed"}))
                }
            }
        }
        SandboxAction::Status => match sandbox::status(&name, &dir).await? {
            Some(sb) => print_one(global.output, &sb, "running"),
            None => match global.output {
                Output::Human => {
                    println!("sandbox `{name}` is not running; `vldeploy sandbox up` creates it.")
                }
                Output::Json => {
                    println!("{}", serde_json::json!({"name": name, "state": "absent"}))
                }
            },
        },
    }
    Ok(0)
}

/// The cluster of a stack: `vldeploy-sandbox-<stack>-cluster`, its hosts `…-1` to `…-N`.
fn cluster_name(stack_name: &str) -> String {
    format!("{}-cluster", sandbox::default_name(stack_name))
}

fn print_cluster(output: Output, cluster: &sandbox::Cluster) {
    match output {
        Output::Human => {
            println!(
                "sandbox cluster `{}` is up: {} hosts on network `{}` (key and known_hosts in {})",
                cluster.name,
                cluster.nodes.len(),
                cluster.network,
                cluster.dir.display()
            );
            for (i, node) in cluster.nodes.iter().enumerate() {
                let sb = &node.sandbox;
                println!(
                    "  node{}  ssh root@127.0.0.1:{}  http 127.0.0.1:{}  https 127.0.0.1:{}  address {}",
                    i + 1,
                    sb.ssh_port,
                    sb.http_port,
                    sb.https_port,
                    node.address
                );
            }
            println!("the `cluster` environment of stack.yaml reaches them through these files.");
        }
        Output::Json => {
            let nodes: Vec<serde_json::Value> = cluster
                .nodes
                .iter()
                .map(|n| {
                    serde_json::json!({
                        "name": n.sandbox.name, "ssh_port": n.sandbox.ssh_port,
                        "http_port": n.sandbox.http_port, "https_port": n.sandbox.https_port,
                        "extra_ports": n.sandbox.extra_ports, "address": n.address,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "name": cluster.name, "state": "up", "network": cluster.network,
                    "dir": cluster.dir, "nodes": nodes,
                })
            );
        }
    }
}

fn print_one(output: Output, sb: &sandbox::Sandbox, state: &str) {
    match output {
        Output::Human => {
            println!(
                "sandbox `{}` ({} host) is {state}:",
                sb.name,
                sb.flavor.label()
            );
            println!(
                "  ssh    root@127.0.0.1:{} (key and known_hosts in {})",
                sb.ssh_port,
                sb.dir.display()
            );
            println!("  http   http://127.0.0.1:{}/", sb.http_port);
            println!("  https  https://127.0.0.1:{}/", sb.https_port);
            for (inner, outer) in &sb.extra_ports {
                println!("  port   {inner} -> 127.0.0.1:{outer}");
            }
        }
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "name": sb.name, "state": state, "ssh_port": sb.ssh_port, "http_port": sb.http_port,
                "https_port": sb.https_port, "extra_ports": sb.extra_ports, "dir": sb.dir,
                "flavor": sb.flavor.label(),
            })
        ),
    }
}

/// Reads just `name:` from the stack file.
fn stack_name(file: &Path) -> Result<String, CommandError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CommandError::Io(format!("cannot read `{}`: {e}", file.display())))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| CommandError::Io(format!("`{}` is not valid YAML: {e}", file.display())))?;
    doc.get("name")
        .and_then(serde_yaml::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| CommandError::Io(format!("`{}` has no `name`", file.display())))
}
