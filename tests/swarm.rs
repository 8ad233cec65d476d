//! The stack across several hosts: a sandbox cluster of three hosts on one Docker network, which an environment
//! with `hosts:` reaches.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use crate::support::project::Project;
use crate::support::ssh::{Host, Login, ssh_ok};

/// A host of the cluster, by the ports and address `cluster.env` gives it.
struct Node {
    login: Login,
    address: String,
    http_port: u16,
}

impl Host for Node {
    fn login(&self) -> Login {
        self.login.clone()
    }
}

/// The hosts `cluster.env` describes, in order.
fn nodes(p: &Project) -> Vec<Node> {
    let dir = p.path().join(".vldeploy/cluster");
    let text = std::fs::read_to_string(dir.join("cluster.env")).unwrap();
    let vars: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    (1..)
        .map_while(|i| {
            let ssh = vars.get(format!("CLUSTER_NODE{i}_SSH_PORT").as_str())?;
            Some(Node {
                login: Login {
                    key: dir.join("id_ed25519"),
                    known_hosts: dir.join("known_hosts"),
                    port: ssh.parse().unwrap(),
                    container: format!("vldeploy-sandbox-{}-cluster-{i}", p.name),
                },
                address: vars[format!("CLUSTER_NODE{i}_ADDRESS").as_str()].to_owned(),
                http_port: vars[format!("CLUSTER_NODE{i}_HTTP_PORT").as_str()]
                    .parse()
                    .unwrap(),
            })
        })
        .collect()
}

fn docker_has(kind: &str, name: &str) -> bool {
    std::process::Command::new("docker")
        .args([kind, "inspect", name])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn sandbox_up_nodes_3_gives_three_hosts_on_one_network_and_down_removes_them() {
    let p = Project::new("cluster_hosts");
    let started = Instant::now();
    let up = p.cluster_up(3);
    eprintln!(
        "timing: sandbox up --nodes 3 (cold) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(up.stdout.contains("3 hosts on network"), "{}", up.all());
    let nodes = nodes(&p);
    assert_eq!(nodes.len(), 3, "cluster.env describes three hosts");
    let mut seen = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        // Each answers ssh with the shared key, its host key pinned in the one known_hosts file.
        let hostname = ssh_ok(node, "hostname");
        assert_eq!(
            hostname,
            format!("vldeploy-sandbox-{}-cluster-{}", p.name, i + 1)
        );
        assert!(node.http_port > 0);
        assert!(
            !seen.contains(&node.address),
            "two hosts share {}",
            node.address
        );
        seen.push(node.address.clone());
    }
    // Every host reaches every other one on the cluster's network: its sshd answers there.
    for (i, from) in nodes.iter().enumerate() {
        let to = &nodes[(i + 1) % nodes.len()];
        let banner = ssh_ok(
            from,
            &format!(
                "timeout 10 bash -c 'exec 3<>/dev/tcp/{}/22 && head -c 7 <&3'",
                to.address
            ),
        );
        assert_eq!(banner, "SSH-2.0", "host {} reaching {}", i + 1, to.address);
    }

    // The repository's `cluster` environment finds the three hosts through these files.
    let status = p.vldeploy(&["--env", "cluster", "status"]);
    assert_eq!(
        status.stderr,
        "error: environment `cluster` runs across 3 hosts (`hosts:`), and this command works on an environment with one `host:` so far\n  help: run it on an environment with `host:`\n",
        "{}",
        status.all()
    );

    // A second `up` finds the hosts as they are.
    let started = Instant::now();
    p.cluster_up(3);
    eprintln!(
        "timing: sandbox up --nodes 3 (running) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let again = self::nodes(&p);
    for (a, b) in nodes.iter().zip(&again) {
        assert_eq!((a.login.port, &a.address), (b.login.port, &b.address));
    }

    p.vldeploy(&["sandbox", "down"]).ok();
    for i in 1..=3 {
        let name = format!("vldeploy-sandbox-{}-cluster-{i}", p.name);
        assert!(!docker_has("container", &name), "{name} is still there");
        assert!(!docker_has("volume", &format!("{name}-docker")));
    }
    let network = format!("vldeploy-sandbox-{}-cluster-net", p.name);
    assert!(!docker_has("network", &network), "{network} is still there");
    assert!(!p.path().join(".vldeploy/cluster/cluster.env").exists());
}
