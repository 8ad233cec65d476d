//! The stack across several hosts: a sandbox cluster of three hosts on one Docker network, which an environment
//! with `hosts:` reaches.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::load;
use crate::support::project::{Project, http_get};
use crate::support::ssh::{Host, Login, ssh_ok};

/// A host of the cluster, by the ports and address `cluster.env` gives it.
pub(crate) struct Node {
    pub(crate) login: Login,
    pub(crate) address: String,
    pub(crate) http_port: u16,
}

impl Host for Node {
    fn login(&self) -> Login {
        self.login.clone()
    }
}

/// The hosts `cluster.env` describes, in order.
pub(crate) fn nodes(p: &Project) -> Vec<Node> {
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

/// A steady load of 50 requests/s (two threads) on `GET /api/health` through each edge (the first two nodes).
pub(crate) fn load_through_edges(nodes: &[Node], limit: Duration) -> Vec<load::Load> {
    let loads = nodes[..2]
        .iter()
        .map(|n| load::start(n.http_port, "/api/health", 2, 50, limit))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    loads
}

/// Stops each edge's load two seconds after what it watched, and asserts that at least `at_least` requests
/// answered and none failed (no non-2xx answer, no connection error).
pub(crate) fn assert_edges_served(
    nodes: &[Node],
    loads: Vec<load::Load>,
    across: &str,
    at_least: u64,
) {
    std::thread::sleep(Duration::from_secs(2));
    for (edge, load) in nodes[..2].iter().zip(loads) {
        let stats = load.stop();
        eprintln!("load through {} across {across}: {stats:?}", edge.address);
        assert!(stats.ok > at_least, "the load ran: {stats:?}");
        assert_eq!(
            (stats.non_2xx, stats.errors),
            (0, 0),
            "no request through {} failed: {:?}",
            edge.address,
            stats.failures
        );
    }
}

pub(crate) fn docker_out(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub(crate) fn docker_has(kind: &str, name: &str) -> bool {
    std::process::Command::new("docker")
        .args([kind, "inspect", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// A host container paused, unpaused when dropped (also when a check fails on the way).
struct Paused(String);
impl Drop for Paused {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["unpause", &self.0])
            .output();
    }
}

#[test]
fn three_sandbox_hosts_on_one_network_form_a_swarm_once_and_down_removes_them() {
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

    // The repository's `cluster` environment finds the three hosts through these files; before the swarm is
    // formed, `status` finds no manager and says so of each manager host.
    let status = p.vldeploy(&["--env", "cluster", "status"]);
    assert_eq!(status.code, 1, "{}", status.all());
    assert!(
        status.stderr.starts_with(
            "error: no manager of environment `cluster` answered:\n  ssh://root@127.0.0.1:"
        ),
        "{}",
        status.all()
    );
    assert_eq!(
        status
            .stderr
            .matches(": is not a manager of a swarm")
            .count(),
        3,
        "{}",
        status.all()
    );

    // `vldeploy swarm` forms the swarm: the first host initialises it, the other two join as managers, and
    // each node carries a label per role.
    let started = Instant::now();
    let formed = p.vldeploy(&["--env", "cluster", "swarm"]).ok();
    eprintln!(
        "timing: swarm formed across 3 hosts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        formed.stdout,
        "swarm of 3 hosts: 9 changes\n",
        "{}",
        formed.all()
    );
    assert!(
        !formed.all().contains("SWMTKN"),
        "a join token was printed: {}",
        formed.all()
    );
    let listed = ssh_ok(
        &nodes[0],
        "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}' | sort",
    );
    let host = |i: usize| format!("vldeploy-sandbox-{}-cluster-{i}", p.name);
    assert_eq!(
        listed,
        format!(
            "{} Leader\n{} Reachable\n{} Reachable",
            host(1),
            host(2),
            host(3)
        ),
    );
    for (i, want) in [(1, "edge app"), (2, "edge app"), (3, "db")] {
        let labels = ssh_ok(
            &nodes[0],
            &format!(
                "docker node inspect {} --format '{{{{range $k, $v := .Spec.Labels}}}}{{{{$k}}}}={{{{$v}}}} {{{{end}}}}'",
                host(i)
            ),
        );
        let want: Vec<String> = want
            .split(' ')
            .map(|r| format!("vldeploy.role.{r}=true"))
            .collect();
        let mut have: Vec<&str> = labels.split_whitespace().collect();
        have.sort_unstable();
        let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(have, want, "labels of {}", host(i));
    }
    // Each node advertises its address on the cluster's network.
    let addresses = ssh_ok(
        &nodes[0],
        "docker node ls -q | xargs docker node inspect --format '{{.Status.Addr}}' | sort",
    );
    let mut want: Vec<&str> = nodes.iter().map(|n| n.address.as_str()).collect();
    want.sort_unstable();
    assert_eq!(addresses, want.join("\n"));
    // Swarm's ports answer between the nodes, and from a container outside the environment (on the same
    // network, but not a node) they do not: each node's firewall opens them to the other nodes alone.
    let reach = |port: u16, address: &str| {
        format!("timeout 2 bash -c '</dev/tcp/{address}/{port}' && echo open || echo closed")
    };
    for port in [2377, 7946] {
        assert_eq!(
            ssh_ok(&nodes[1], &reach(port, &nodes[0].address)),
            "open",
            "{port} between nodes"
        );
    }
    let image = docker_out(&["inspect", "-f", "{{.Config.Image}}", &host(1)]);
    let network = format!("vldeploy-sandbox-{}-cluster-net", p.name);
    // One container probes every node's ports (each closed probe waits out its timeout, in parallel).
    let probes: Vec<String> = nodes
        .iter()
        .flat_map(|n| [2377, 7946].map(|port| format!("({}) &", reach(port, &n.address))))
        .collect();
    let seen = docker_out(&[
        "run",
        "--rm",
        "--network",
        &network,
        "--entrypoint",
        "bash",
        &image,
        "-c",
        &format!("{} wait", probes.join(" ")),
    ]);
    assert_eq!(
        seen,
        ["closed"; 6].join("\n"),
        "Swarm's ports from outside the environment"
    );
    let ready = ssh_ok(&nodes[0], "docker node ls --format '{{.Status}}'");
    assert_eq!(
        ready, "Ready\nReady\nReady",
        "behind their firewalls the nodes stay in the swarm"
    );

    // A second run changes nothing.
    let started = Instant::now();
    let again = p.vldeploy(&["--env", "cluster", "swarm"]).ok();
    eprintln!(
        "timing: swarm no-op across 3 hosts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        again.stdout,
        "swarm of 3 hosts: no changes\n",
        "{}",
        again.all()
    );

    // `plan` says what `up` will do, per node and per service, and changes nothing: the swarm and firewalls
    // are in place, so each node only receives the images its roles run; every service is new.
    let planned = p.vldeploy(&["--env", "cluster", "plan", "--exit-code"]);
    assert_eq!(planned.code, 2, "{}", planned.all());
    eprintln!("{}", planned.stdout);
    let section = |text: &str, node: &Node| -> String {
        let head = format!("ssh://root@127.0.0.1:{} (", node.login.port);
        let from = text
            .find(&head)
            .unwrap_or_else(|| panic!("no {head} in {text}"));
        let rest = &text[from..];
        let end = rest[1..]
            .find("\nssh://")
            .or_else(|| rest[1..].find("\nservices: "))
            .unwrap()
            + 1;
        rest[..end].to_owned()
    };
    for (i, node) in nodes.iter().enumerate() {
        let mine = section(&planned.stdout, node);
        assert!(
            !mine.contains("swarm:") && !mine.contains("firewall:"),
            "{mine}"
        );
        let (runs, not) = if i == 2 {
            ("postgres", "backend")
        } else {
            ("backend", "postgres")
        };
        assert!(
            mine.contains("+ image: send") && mine.contains(runs),
            "node {}: {mine}",
            i + 1
        );
        assert!(!mine.contains(not), "node {}: {mine}", i + 1);
    }
    for service in ["postgres", "backend", "nginx"] {
        assert!(
            planned
                .stdout
                .contains(&format!("+ service: create `{}_{service}`", p.name)),
            "{}",
            planned.stdout
        );
    }
    assert!(
        planned
            .stdout
            .contains(&format!("+ network: create overlay `{}_cluster`", p.name))
    );
    for secret in p.cluster_secret_values() {
        assert!(
            !planned.all().contains(&secret),
            "a secret was printed: {}",
            planned.all()
        );
    }
    let json = p
        .vldeploy(&["--env", "cluster", "--output", "json", "plan"])
        .ok();
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["nodes"].as_array().unwrap().len(), 3, "{json}");
    assert!(json["changes"].as_u64().unwrap() >= 7, "{json}");
    assert!(
        ssh_ok(&nodes[0], "docker service ls -q").is_empty(),
        "plan created a service"
    );

    // `up` runs the stack on the swarm: postgres on the db node, the backend's tasks across the app nodes,
    // nginx on each edge node, answering on its own published port.
    let started = Instant::now();
    let up = p.vldeploy(&["--env", "cluster", "up"]).ok();
    eprintln!(
        "timing: up -e cluster (from nothing) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        up.stdout
            .starts_with(&format!("{} (cluster) is up on 3 hosts", p.name)),
        "{}",
        up.all()
    );
    for secret in p.cluster_secret_values() {
        assert!(
            !up.all().contains(&secret),
            "a secret was printed: {}",
            up.all()
        );
    }
    for node in &nodes[..2] {
        let (code, body) = http_get(node.http_port, "/api/health");
        assert_eq!(code, 200, "/api/health through {}: {body}", node.address);
    }
    let tasks = |service: &str| {
        ssh_ok(
            &nodes[0],
            &format!(
                "docker service ps {}_{service} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}'",
                p.name
            ),
        )
    };
    let backend = tasks("backend");
    let on: std::collections::BTreeSet<&str> = backend
        .lines()
        .filter(|l| l.contains("Running"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(on.len() >= 2, "backend tasks on {on:?}: {backend}");
    let postgres = tasks("postgres");
    assert!(
        postgres.starts_with(&format!("{} Running", host(3))),
        "postgres runs on the db node: {postgres}"
    );
    let published = ssh_ok(
        &nodes[0],
        &format!(
            "docker service inspect {}_postgres --format '{{{{json .Endpoint.Ports}}}} {{{{.Spec.EndpointSpec.Mode}}}}'",
            p.name
        ),
    );
    assert_eq!(published, "null dnsrr", "postgres publishes nothing");
    // Secrets reach the services as Swarm secrets, never through their environment or labels.
    let specs = ssh_ok(
        &nodes[0],
        &format!("docker service inspect {0}_backend {0}_postgres", p.name),
    );
    for secret in p.cluster_secret_values() {
        assert!(!specs.contains(&secret), "a secret is in a service's spec");
    }
    assert!(specs.contains("\"SecretName\""), "{specs}");

    // Five releases of the backend under a steady load through both edges: Swarm replaces its tasks one at a
    // time, each new one started and healthy before the old one stops, and nginx re-resolves the tasks.
    let loads = load_through_edges(&nodes, Duration::from_secs(600));
    let release = |n: usize| {
        p.stack_yaml(|t| {
            *t = t.replace(
                "      RUST_LOG: info\n",
                &format!("      RUST_LOG: info\n      RELEASE_N: \"{n}\"\n"),
            );
        })
    };
    let backend_env = || {
        ssh_ok(
            &nodes[0],
            &format!(
                "docker service inspect {}_backend --format '{{{{json .Spec.TaskTemplate.ContainerSpec.Env}}}}'",
                p.name
            ),
        )
    };
    // A changed value of the backend is one change: its service updated, nothing on the nodes.
    p.write_stack(&release(1));
    let planned = p.vldeploy(&["--env", "cluster", "plan", "--exit-code"]);
    assert_eq!(planned.code, 2, "{}", planned.all());
    assert!(
        planned
            .stdout
            .starts_with(&format!("{} (cluster) on 3 hosts: 1 change\n", p.name))
            && planned
                .stdout
                .contains(&format!("~ service: update `{}_backend`", p.name)),
        "{}",
        planned.stdout
    );
    let started = Instant::now();
    for n in 1..=5 {
        p.write_stack(&release(n));
        let up = p.vldeploy(&["--env", "cluster", "up"]).ok();
        assert!(
            up.all()
                .contains(&format!("service: update `{}_backend`", p.name)),
            "{}",
            up.all()
        );
        assert!(backend_env().contains(&format!("RELEASE_N={n}")));
    }
    eprintln!(
        "timing: 5 backend releases on the cluster in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // A candidate that never becomes healthy (it cannot reach its database) is rolled back by Swarm itself;
    // `up` waits for the rollback, says so and fails, and the load sees nothing of it.
    let broken = p.stack_yaml(|t| {
        *t = t
            .replace(
                "      RUST_LOG: info\n",
                "      RUST_LOG: info\n      RELEASE_N: \"5\"\n",
            )
            .replace("@postgres:5432/vaibava_db", "@no-such-host:5432/vaibava_db")
            .replace(
                "      http: /api/health\n      interval: 2s\n      timeout: 5s\n      retries: 30",
                "      http: /api/health\n      interval: 1s\n      timeout: 2s\n      retries: 4",
            );
    });
    assert!(
        broken.contains("retries: 4"),
        "the test edits the health check"
    );
    p.write_stack(&broken);
    let started = Instant::now();
    let refused = p.vldeploy(&["--env", "cluster", "up"]);
    eprintln!(
        "timing: a release rolled back by Swarm in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.stderr.contains(&format!(
            "service `{}_backend`: its new tasks did not become healthy and Swarm rolled it back: the previous release keeps serving",
            p.name
        )),
        "{}",
        refused.all()
    );
    let env = backend_env();
    assert!(
        env.contains("RELEASE_N=5") && !env.contains("no-such-host"),
        "the service runs release 5 again"
    );
    assert_edges_served(&nodes, loads, "the releases", 300);
    p.write_stack(&release(5));

    // The cluster's deploy lock and audit log live on its first host, where `lock` and `audit` look: `up`
    // left an entry there, and a lock held by someone else refuses the next `up` before anything changes.
    let audit = p
        .vldeploy(&["--env", "cluster", "audit", "-o", "json"])
        .ok();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&audit.stdout).unwrap();
    let ups: Vec<&serde_json::Value> = entries.iter().filter(|e| e["command"] == "up").collect();
    // The first `up`, five releases, and the rolled-back one, which names what it changed and why it failed.
    assert_eq!(ups.len(), 7, "{}", audit.stdout);
    assert_eq!(ups[0]["result"], "ok", "{}", audit.stdout);
    assert_eq!(ups[6]["result"], "failed", "{}", audit.stdout);
    assert!(
        ups[6]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Swarm rolled it back")),
        "{}",
        audit.stdout
    );
    assert!(
        ups[6]["changes"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c.as_str().is_some_and(|c| c.starts_with("service: update")))),
        "{}",
        audit.stdout
    );
    assert!(
        ups[0]["changes"].as_array().is_some_and(|c| !c.is_empty()),
        "{}",
        audit.stdout
    );
    for secret in p.cluster_secret_values() {
        assert!(
            !audit.stdout.contains(&secret),
            "a secret is in the audit log"
        );
    }
    ssh_ok(
        &nodes[0],
        &format!(
            "mkdir -p /var/lib/vldeploy/{0}/lock && echo '{{\"holder\":\"ops@elsewhere\",\"machine\":\"elsewhere\",\"pid\":1,\"command\":\"up\",\"started\":1,\"token\":\"t\"}}' > /var/lib/vldeploy/{0}/lock/info.json",
            p.name
        ),
    );
    let refused = p.vldeploy(&["--env", "cluster", "up"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused
            .stderr
            .contains("is locked by ops@elsewhere running `up`"),
        "{}",
        refused.all()
    );
    let released = p.vldeploy(&["--env", "cluster", "lock", "release"]).ok();
    assert!(
        released
            .stdout
            .contains("freed the lock held by ops@elsewhere"),
        "{}",
        released.all()
    );
    crate::swarm_releases::check(&p, &nodes);

    // Postgres answers on the overlay alone (the backend's health above went through it): from a container
    // outside the environment and from the nodes themselves, 5432 is closed on every node.
    let outside = |script: &str| {
        docker_out(&[
            "run",
            "--rm",
            "--network",
            &network,
            "--entrypoint",
            "bash",
            &image,
            "-c",
            script,
        ])
    };
    let probes: Vec<String> = nodes
        .iter()
        .map(|n| format!("({}) &", reach(5432, &n.address)))
        .collect();
    assert_eq!(
        outside(&format!("{} wait", probes.join(" "))),
        ["closed"; 3].join("\n"),
        "5432 from outside the environment"
    );
    for from in &nodes {
        for to in &nodes {
            assert_eq!(
                ssh_ok(from, &reach(5432, &to.address)),
                "closed",
                "5432 from node {} to {}",
                from.address,
                to.address
            );
        }
    }
    // UDP has no refusal to see: a counter at the end of node 1's input chain counts what no rule accepted
    // (the chain's policy drops it). Datagrams to 4789 and 7946 from outside reach it; from another node
    // they are accepted before it.
    ssh_ok(
        &nodes[0],
        "nft add rule inet vldeploy input udp dport '{ 4789, 7946 }' counter comment probe",
    );
    let counted = || {
        let listed = ssh_ok(&nodes[0], "nft list chain inet vldeploy input");
        let line = listed
            .lines()
            .find(|l| l.contains("comment \"probe\""))
            .unwrap_or_else(|| panic!("the probe counter is gone: {listed}"))
            .to_string();
        line.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no packet count in {line}"))
    };
    let send = |address: &str| {
        format!(
            "for i in 1 2 3 4 5; do echo x > /dev/udp/{address}/4789; echo x > /dev/udp/{address}/7946; done; echo sent"
        )
    };
    assert_eq!(ssh_ok(&nodes[1], &send(&nodes[0].address)), "sent");
    assert_eq!(counted(), 0, "datagrams from another node are accepted");
    assert_eq!(outside(&send(&nodes[0].address)), "sent");
    assert!(
        counted() >= 10,
        "datagrams to 4789 and 7946 from outside the environment are not accepted"
    );
    ssh_ok(
        &nodes[0],
        "nft -a list chain inet vldeploy input | sed -n 's/.*comment \"probe\" # handle \\([0-9]*\\)$/\\1/p' | xargs -r -I{} nft delete rule inet vldeploy input handle {}",
    );
    assert!(
        !ssh_ok(&nodes[0], "nft list chain inet vldeploy input").contains("probe"),
        "the probe counter was removed"
    );

    // A second `up` changes nothing.
    let started = Instant::now();
    let again = p.vldeploy(&["--env", "cluster", "up"]).ok();
    eprintln!(
        "timing: up -e cluster (no-op) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        again.stdout,
        format!("{} on 3 hosts: no changes\n", p.name),
        "{}",
        again.all()
    );
    let planned = p
        .vldeploy(&["--env", "cluster", "plan", "--exit-code"])
        .ok();
    assert_eq!(
        planned.stdout,
        format!(
            "{} (cluster) on 3 hosts: no changes; the swarm matches the stack.\n",
            p.name
        ),
    );

    // `status` lists the three services at their target, each task on the node its role puts it on, and the
    // nodes; read through the first manager.
    let status = p.vldeploy(&["--env", "cluster", "status"]).ok();
    eprintln!("{}", status.stdout);
    assert!(
        status.stdout.starts_with(&format!(
            "{} (cluster) on 3 hosts, read through ssh://root@127.0.0.1:{}\n",
            p.name, nodes[0].login.port
        )),
        "{}",
        status.all()
    );
    for line in [
        "postgres  replicated 1  1/1      ok",
        "backend   replicated 2  2/2      ok",
        "nginx     global        2/2      ok",
    ] {
        assert!(status.stdout.contains(line), "{line}: {}", status.all());
    }
    let on = |json: &serde_json::Value, service: &str| -> Vec<String> {
        let s = json["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == service)
            .unwrap();
        let mut on: Vec<String> = s["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["state"] == "running" && t["health"] == "healthy")
            .map(|t| t["node"].as_str().unwrap().to_owned())
            .collect();
        on.sort();
        on
    };
    let json = |args: &[&str]| -> (i32, serde_json::Value) {
        let run = p.vldeploy(args);
        let value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
        (run.code, value)
    };
    let (_, seen) = json(&["--env", "cluster", "--output", "json", "status"]);
    assert_eq!(seen["at_target"], true, "{seen}");
    assert_eq!(on(&seen, "postgres"), [host(3)], "{seen}");
    assert_eq!(on(&seen, "nginx"), [host(1), host(2)], "{seen}");
    let backend = on(&seen, "backend");
    assert!(
        backend.len() == 2 && backend.iter().all(|n| *n == host(1) || *n == host(2)),
        "backend on the app nodes: {seen}"
    );
    assert_eq!(seen["nodes"].as_array().unwrap().len(), 3);
    assert!(
        seen["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "ready" && n["availability"] == "active"),
        "{seen}"
    );
    let doctor = p.vldeploy(&["--env", "cluster", "doctor"]).ok();
    assert!(
        doctor.stdout.ends_with("nothing needs action.\n"),
        "{}",
        doctor.all()
    );
    // The API answers through the nginx task of each edge, asked there.
    for edge in &nodes[..2] {
        let line = format!(
            "edge root@127.0.0.1:{}: GET /api/health through nginx: 200",
            edge.login.port
        );
        assert!(doctor.stdout.contains(&line), "{line}:\n{}", doctor.all());
    }
    assert!(
        !doctor
            .stdout
            .contains(&format!("127.0.0.1:{}: GET /api", nodes[2].login.port)),
        "the db node is no edge: {}",
        doctor.all()
    );
    crate::swarm_data::check(&p, &nodes);

    // An app node stops: its host container paused. Every node is a manager here (three hosts, three managers),
    // so the node paused is the second: an edge and app node, not the leader nor the db node; the first edge
    // keeps serving, and the other two managers keep the swarm's quorum.
    let paused = Paused(nodes[1].login.container.clone());
    docker_out(&["pause", &paused.0]);
    let started = Instant::now();
    // Requests through the edge that still runs answer again within 10 s: four 200s in a row.
    let mut streak = 0;
    let mut since = 0.0;
    while streak < 4 {
        assert!(
            started.elapsed().as_secs() < 10,
            "no steady 200 through {} within 10 s of pausing {}",
            nodes[0].address,
            host(2)
        );
        let code = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-m",
                "1",
                "-w",
                "%{http_code}",
                &format!("http://127.0.0.1:{}/api/health", nodes[0].http_port),
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&code.stdout) == "200" {
            if streak == 0 {
                since = started.elapsed().as_secs_f64();
            }
            streak += 1;
        } else {
            streak = 0;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    eprintln!(
        "timing: requests through the edge answer 200 again {since:.1} s after pausing an app node"
    );
    // The backend returns to its two replicas, both on the node that still runs.
    loop {
        let (_, seen) = json(&["--env", "cluster", "--output", "json", "status"]);
        if on(&seen, "backend") == [host(1), host(1)] {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 90,
            "the backend did not return to 2 replicas within 90 s: {seen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    eprintln!(
        "timing: backend back at 2 replicas on the other node {:.1} s after pausing it",
        started.elapsed().as_secs_f64()
    );
    // doctor names the paused node, its roles and address, and what to run. Swarm may still call the node
    // ready for a few seconds after its manager went unreachable: doctor is asked again until it says down.
    let down = format!(
        "FAIL node               {} (edge app, manager unreachable) at {} is down",
        host(2),
        nodes[1].address
    );
    let started = Instant::now();
    let doctor = loop {
        let doctor = p.vldeploy(&["--env", "cluster", "doctor"]);
        if doctor.stdout.contains(&down) || started.elapsed().as_secs() > 60 {
            break doctor;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    eprintln!("{}", doctor.stdout);
    assert_eq!(doctor.code, 1, "{}", doctor.all());
    assert!(doctor.stdout.contains(&down), "{}", doctor.all());
    assert!(
        doctor.stdout.contains("`docker node ls` on a manager"),
        "{}",
        doctor.all()
    );
    assert!(
        doctor.stdout.contains(&format!(
            "root@127.0.0.1:{} (edge app, manager)",
            nodes[1].login.port
        )),
        "{}",
        doctor.all()
    );

    // Back again: the node rejoins and doctor passes once nginx runs on it again.
    drop(paused);
    let started = Instant::now();
    loop {
        let doctor = p.vldeploy(&["--env", "cluster", "doctor"]);
        if doctor.code == 0 {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 90,
            "doctor still fails 90 s after the node came back: {}",
            doctor.all()
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    eprintln!(
        "timing: doctor passes {:.1} s after the node came back",
        started.elapsed().as_secs_f64()
    );

    // A release that serves removes the secrets no release a rollback goes back to refers to: the first
    // rotation of the admin token removes the rolled-back candidate's database URL and keeps the old token
    // (the release it replaced uses it); the second removes that old token.
    let secrets = || -> std::collections::BTreeSet<String> {
        ssh_ok(&nodes[0], "docker secret ls --format '{{.Name}}'")
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let rotate = |n: usize| -> (Vec<String>, std::collections::BTreeSet<String>) {
        let file = p.path().join(".vldeploy/cluster/secrets.env");
        let text = std::fs::read_to_string(&file).unwrap();
        let rotated: String = text
            .lines()
            .map(|l| match l.split_once('=') {
                Some(("ADMIN_TOKEN", v)) => format!("ADMIN_TOKEN={v}-{n}\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        assert_ne!(rotated, text, "the test rotates ADMIN_TOKEN");
        std::fs::write(&file, rotated).unwrap();
        let up = p.vldeploy(&["--env", "cluster", "up"]).ok().all();
        let removed: std::collections::BTreeSet<String> = up
            .lines()
            .filter_map(|l| l.split_once("secret: remove `"))
            .filter_map(|(_, rest)| rest.split_once('`').map(|(name, _)| name.to_owned()))
            .collect();
        (removed.into_iter().collect(), secrets())
    };
    let before = secrets();
    let (removed, after) = rotate(1);
    // What no release refers to goes: the rolled-back candidate's database URL, unless a release since (the
    // releases check's) removed it already; the replaced release's token stays.
    assert!(removed.len() <= 1, "{removed:?}");
    assert!(
        removed
            .iter()
            .all(|r| r.contains("database_url") && before.contains(r) && !after.contains(r)),
        "{removed:?}: {before:?} → {after:?}"
    );
    let added: Vec<&String> = after.difference(&before).collect();
    assert_eq!(added.len(), 1, "{before:?} → {after:?}");
    assert!(added[0].contains("admin_token"), "{added:?}");
    let first_token: Vec<&String> = before
        .iter()
        .filter(|n| n.contains("admin_token"))
        .collect();
    assert_eq!(first_token.len(), 1, "{before:?}");
    assert!(
        after.contains(first_token[0]),
        "the replaced release's token is kept"
    );
    let (removed, last) = rotate(2);
    assert_eq!(
        removed,
        vec![first_token[0].clone()],
        "{after:?} → {last:?}"
    );
    assert_eq!(last.len(), after.len(), "{after:?} → {last:?}");
    for node in &nodes[..2] {
        assert_eq!(http_get(node.http_port, "/api/health").0, 200);
    }
    crate::swarm_edge::check(&p, &nodes);
    crate::swarm_site::check(&p, &nodes);
    crate::swarm_gate::check(&p, &nodes);

    // A second `sandbox up` finds the hosts as they are.
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
    assert!(!docker_has("network", &network), "{network} is still there");
    assert!(!p.path().join(".vldeploy/cluster/cluster.env").exists());
}

#[test]
fn a_cluster_of_one_or_of_eight_hosts_is_refused_before_anything_starts() {
    let dir = crate::stack_errors::real_stack(&[]);
    for nodes in ["1", "8"] {
        let out = std::process::Command::new(crate::support::project::binary())
            .current_dir(dir.path())
            .args(["sandbox", "up", "--nodes", nodes])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("error: a sandbox cluster has 2 to 7 hosts, not {nodes}\n")
        );
    }
    assert!(!dir.path().join(".vldeploy/cluster").exists());
}
