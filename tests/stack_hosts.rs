//! An environment across several hosts: `hosts:` by role and the backend's `replicas:`, and every way they can be
//! written wrong.

#![allow(clippy::unwrap_used)]

use vldeploy::stack::{self, Role, SshUrl, Stack};

use crate::stack_errors::{SECRETS, VALID, check_with, write};

const ONE_HOST: &str = "    host: ssh://deploy@shop.example:22\n";

/// `VALID` with its one host replaced by three machines by role: `a` is an edge and an app host, `b` an app host
/// and `c` the db host.
fn cluster() -> String {
    VALID.replacen(
        ONE_HOST,
        "    hosts:
      edge: [ssh://deploy@a.shop.example]
      app:
        - ssh://deploy@a.shop.example
        - ssh://deploy@b.shop.example:2202
      db: [ssh://deploy@c.shop.example]
",
        1,
    )
}

fn load(yaml: &str) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "stack.yaml", yaml);
    write(dir.path(), SECRETS.0, SECRETS.1);
    let lookup = |_: &str| None;
    match stack::load_with(&dir.path().join("stack.yaml"), "prod", &lookup) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// `cluster()` with `from` replaced by `to` fails with exactly `expected`.
#[track_caller]
fn check(from: &str, to: &str, expected: &str) {
    crate::stack_errors::check_edited(&cluster(), from, to, expected);
}

fn url(host: &str, port: u16) -> SshUrl {
    SshUrl {
        user: "deploy".into(),
        host: host.into(),
        port,
    }
}

/// Each machine of a loaded stack with its roles, in order.
fn machines(s: &Stack) -> Vec<(SshUrl, Vec<Role>)> {
    s.hosts
        .iter()
        .map(|h| (h.target.clone(), h.roles.clone()))
        .collect()
}

#[test]
fn hosts_by_role_load_as_machines_with_their_roles() {
    let s = load(&cluster());
    let hosts = machines(&s);
    assert_eq!(
        hosts,
        vec![
            (url("a.shop.example", 22), vec![Role::Edge, Role::App]),
            (url("b.shop.example", 2202), vec![Role::App]),
            (url("c.shop.example", 22), vec![Role::Db]),
        ]
    );
    assert_eq!(s.target, url("a.shop.example", 22));
    assert_eq!(s.services["backend"].replicas, None);
}

#[test]
fn one_host_loads_as_before() {
    let s = load(VALID);
    assert!(s.hosts.is_empty());
    assert_eq!(s.target, url("shop.example", 22));
}

#[test]
fn replicas_for_the_backend() {
    let yaml = cluster().replacen("    port: 8080\n", "    port: 8080\n    replicas: 3\n", 1);
    assert_eq!(load(&yaml).services["backend"].replicas, Some(3));
}

#[test]
fn host_and_hosts_together() {
    check(
        "    hosts:\n",
        "    host: ssh://deploy@shop.example:22\n    hosts:\n",
        r"error: `environments.prod` sets both `host` and `hosts`
 --> $DIR/stack.yaml:5:5
  |
5 |     hosts:
  |     ^^^^^
  = help: keep `host: ssh://user@host:port` for a stack on one machine, or `hosts:` with the machines by role (`edge`, `app`, `db`) for a stack across several",
    );
}

#[test]
fn a_role_with_no_host() {
    check(
        "      db: [ssh://deploy@c.shop.example]\n",
        "      db: []\n",
        r"error: role `db` has no host in `environments.prod.hosts.db`
 --> $DIR/stack.yaml:9:7
  |
9 |       db: []
  |       ^^
  = help: postgres runs on the `db` host, with its volume and its backups: list at least one `ssh://user@host:port`",
    );
}

#[test]
fn a_missing_role() {
    check(
        "      db: [ssh://deploy@c.shop.example]\n",
        "",
        r"error: missing role `db` in `environments.prod.hosts`
 --> $DIR/stack.yaml:4:5
  |
4 |     hosts:
  |     ^^^^^
  = help: postgres runs on the `db` host, with its volume and its backups: add `db: [ssh://user@host:port]`",
    );
}

#[test]
fn an_unknown_role() {
    check(
        "      db: [",
        "      dbs: [",
        r"error: unknown role `dbs` in `environments.prod.hosts`
 --> $DIR/stack.yaml:9:7
  |
9 |       dbs: [ssh://deploy@c.shop.example]
  |       ^^^
  = help: did you mean `db`?",
    );
}

#[test]
fn two_db_hosts() {
    check(
        "      db: [ssh://deploy@c.shop.example]\n",
        "      db: [ssh://deploy@c.shop.example, ssh://deploy@d.shop.example]\n",
        r"error: role `db` lists 2 hosts in `environments.prod.hosts.db`
 --> $DIR/stack.yaml:9:41
  |
9 |       db: [ssh://deploy@c.shop.example, ssh://deploy@d.shop.example]
  |                                         ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: postgres runs on one host, with its volume and its backups: keep one `db` host",
    );
}

#[test]
fn a_host_twice_in_a_role() {
    check(
        "        - ssh://deploy@b.shop.example:2202\n",
        "        - ssh://deploy@b.shop.example:2202\n        - ssh://deploy@B.shop.example:2202\n",
        r"error: host `ssh://deploy@B.shop.example:2202` is listed twice in `environments.prod.hosts.app`
 --> $DIR/stack.yaml:9:11
  |
9 |         - ssh://deploy@B.shop.example:2202
  |           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: remove this entry: each host runs a role once",
    );
}

#[test]
fn one_host_with_two_users() {
    check(
        "      db: [ssh://deploy@c.shop.example]\n",
        "      db: [ssh://root@a.shop.example:22]\n",
        r"error: host `a.shop.example:22` logs in as `root` here and as `deploy` on line 5 in `environments.prod.hosts`
 --> $DIR/stack.yaml:9:12
  |
9 |       db: [ssh://root@a.shop.example:22]
  |            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: vldeploy logs in to a host as one user: write the same `ssh://user@host:port` under each of its roles",
    );
}

#[test]
fn an_invalid_host_url() {
    check(
        "ssh://deploy@b.shop.example:2202",
        "ssh://b.shop.example",
        r"error: invalid ssh URL `ssh://b.shop.example`: the user is missing at `environments.prod.hosts.app[1]`
 --> $DIR/stack.yaml:8:11
  |
8 |         - ssh://b.shop.example
  |           ^^^^^^^^^^^^^^^^^^^^
  = help: name the login user: `ssh://deploy@b.shop.example`",
    );
}

#[test]
fn hosts_as_a_string() {
    check_with(
        &VALID.replacen(ONE_HOST, "    hosts: ssh://deploy@a.shop.example\n", 1),
        "prod",
        &[SECRETS],
        &[],
        r"error: expected a map of roles for `environments.prod.hosts`, found a string
 --> $DIR/stack.yaml:4:12
  |
4 |     hosts: ssh://deploy@a.shop.example
  |            ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: list the machines by role, e.g. `hosts: {edge: [ssh://deploy@web1], app: [ssh://deploy@web1, ssh://deploy@app1], db: [ssh://deploy@db1]}`; for one machine write `host: ssh://user@host:port`",
    );
}

#[test]
fn replicas_on_postgres() {
    check(
        "    volumes: [pgdata:/var/lib/postgresql/data]\n",
        "    volumes: [pgdata:/var/lib/postgresql/data]\n    replicas: 2\n",
        r"error: postgres runs once, on the `db` host, with its volume: `services.postgres` cannot set `replicas`
  --> $DIR/stack.yaml:24:5
   |
24 |     replicas: 2
   |     ^^^^^^^^
   = help: remove `replicas`: one database holds the shop's data; its copies are backups",
    );
}

#[test]
fn replicas_on_nginx() {
    check(
        "    depends_on: [backend]\n",
        "    depends_on: [backend]\n    replicas: 2\n",
        r"error: nginx runs once on every `edge` host: `services.nginx` cannot set `replicas`
  --> $DIR/stack.yaml:19:5
   |
19 |     replicas: 2
   |     ^^^^^^^^
   = help: remove `replicas`: list more `edge` hosts to run more nginx",
    );
}

#[test]
fn replicas_out_of_range() {
    check(
        "    port: 8080\n",
        "    port: 8080\n    replicas: 0\n",
        r"error: replica count 0 is out of range at `services.backend.replicas`
  --> $DIR/stack.yaml:27:15
   |
27 |     replicas: 0
   |               ^
   = help: use a number from 1 to 64",
    );
}

#[test]
fn replicas_on_one_host() {
    check_with(
        &VALID.replacen("    port: 8080\n", "    port: 8080\n    replicas: 2\n", 1),
        "prod",
        &[SECRETS],
        &[],
        r"error: `services.backend` sets `replicas`, but `environments.prod` runs on one host
  --> $DIR/stack.yaml:22:5
   |
22 |     replicas: 2
   |     ^^^^^^^^
   = help: on one `host:` the backend runs as one container; set `replicas` in the `overrides` of an environment with `hosts:`",
    );
}

#[test]
fn a_multi_host_environment_is_refused_by_commands_that_work_on_one_host() {
    refused(
        &cluster(),
        "down",
        "error: environment `prod` runs across 3 hosts (`hosts:`), and this command works on an environment with one `host:` so far\n  help: run it on an environment with `host:`; `vldeploy swarm` forms this one's swarm\n",
    );
}

#[test]
fn a_waiver_of_no_item_on_a_gated_multi_host_environment_is_refused_before_anything_is_built() {
    refused(
        &cluster().replacen("    domain:", "    gated: true\n    domain:", 1),
        "up --waive sll --reason checked-by-hand",
        "error: `--waive sll`: no such checklist item in environment `prod`\n  help: did you mean `ssl`?\n",
    );
}

/// Runs `vldeploy --env prod COMMAND` on `stack` (with its secrets file) and expects exit 1 with `stderr` only.
fn refused(stack: &str, command: &str, stderr: &str) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "stack.yaml", stack);
    write(dir.path(), SECRETS.0, SECRETS.1);
    crate::support::test::Test::new()
        .env_clear()
        .current_dir(dir.path())
        .arg("--file")
        .arg(dir.path().join("stack.yaml"))
        .args(["--env", "prod"])
        .args(command.split_whitespace())
        .status(1)
        .stdout("")
        .stderr(stderr)
        .run();
}

#[test]
fn the_real_stack_loads_for_cluster() {
    let dir = crate::stack_errors::real_stack(&[
        (
            ".vldeploy/cluster/cluster.env",
            "CLUSTER_NODE1_SSH_PORT=2201\nCLUSTER_NODE2_SSH_PORT=2202\nCLUSTER_NODE3_SSH_PORT=2203\n",
        ),
        (
            ".vldeploy/cluster/secrets.env",
            "POSTGRES_PASSWORD=pg-secret-1\nADMIN_TOKEN=admin-secret-2\n",
        ),
    ]);
    let lookup = |k: &str| (k == "HOME").then(|| "/home/op".to_owned());
    let s = stack::load_with(&dir.path().join("stack.yaml"), "cluster", &lookup).unwrap();
    let root = |port| SshUrl {
        user: "root".into(),
        host: "127.0.0.1".into(),
        port,
    };
    let hosts = machines(&s);
    assert_eq!(
        hosts,
        vec![
            (root(2201), vec![Role::Edge, Role::App]),
            (root(2202), vec![Role::Edge, Role::App]),
            (root(2203), vec![Role::Db]),
        ]
    );
    assert_eq!(s.domain, "localhost");
}

#[test]
fn the_cluster_environment_before_its_hosts_exist_says_how_to_make_them() {
    let dir = crate::stack_errors::real_stack(&[]);
    let out = std::process::Command::new(crate::support::project::binary())
        .current_dir(dir.path())
        .args(["--env", "cluster", "swarm"])
        .env("HOME", "/home/op")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("secrets file `.vldeploy/cluster/secrets.env` does not exist")
            && stderr.ends_with(
                "hint: the sandbox cluster has not been created yet: `vldeploy sandbox up --nodes 3` creates its hosts and writes these files\n"
            ),
        "{stderr}"
    );
}

#[test]
fn swarm_on_a_one_host_environment_is_refused() {
    refused(
        VALID,
        "swarm",
        "error: environment `prod` runs on one host (`host:`): there is no swarm to form\n  help: list its hosts by role under `hosts:` to run it across several\n",
    );
}
