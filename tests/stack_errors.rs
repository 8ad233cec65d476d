//! Every way a stack file can be wrong, and the exact message the user sees for it.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use vldeploy::stack::{self, StackError};

use crate::support::test::Test;

/// A small valid stack; each case below changes one thing.
pub(crate) const VALID: &str = "\
name: shop
environments:
  prod:
    host: ssh://deploy@shop.example:22
    ssh_agent: true
    host_key: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s
    domain: shop.example
    secrets_file: prod.env
services:
  nginx:
    image: nginx:1.27
    ports: [\"80:80\", \"443:443\"]
    depends_on: [backend]
  postgres:
    image: postgres:15
    env:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}
    volumes: [pgdata:/var/lib/postgresql/data]
  backend:
    build: backend
    port: 8080
    depends_on: [postgres]
    healthcheck:
      http: /api/health
      interval: 2s
";

pub(crate) const SECRETS: (&str, &str) = ("prod.env", "POSTGRES_PASSWORD=hunter2\n");

pub(crate) fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Loads `yaml` for `env` in a fresh directory holding `files`, with `vars` as the process environment, and
/// returns the rendered error with the directory written as `$DIR`.
fn error_with(
    yaml: &str,
    env: &str,
    files: &[(&str, &str)],
    vars: &[(&str, &str)],
) -> (StackError, String) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "stack.yaml", yaml);
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    let mut vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    vars.entry("HOME".into())
        .or_insert_with(|| "/home/op".into());
    let lookup = |k: &str| vars.get(k).cloned();
    let err = match stack::load_with(&dir.path().join("stack.yaml"), env, &lookup) {
        Ok(s) => panic!("expected an error, loaded {s:?}"),
        Err(e) => e,
    };
    let text = err
        .to_string()
        .replace(&dir.path().display().to_string(), "$DIR");
    binary_says(dir.path(), env, &vars, &text);
    (err, text)
}

/// `vldeploy plan` on the stack in `dir`, with only `vars` in its environment, fails with exit status 1 and
/// stderr that is exactly `text` (the directory written as `$DIR`) and nothing on stdout.
#[track_caller]
fn binary_says(dir: &Path, env: &str, vars: &BTreeMap<String, String>, text: &str) {
    let mut test = Test::new()
        .env_clear()
        .current_dir(dir)
        .arg("--file")
        .arg(dir.join("stack.yaml"))
        .args(["--env", env, "plan"])
        .substitute(dir.display().to_string(), "$DIR")
        .status(1)
        .stdout("")
        .stderr(format!("{text}\n"));
    for (k, v) in vars {
        test = test.env(k, v);
    }
    test.run();
}

#[track_caller]
fn assert_text(actual: &str, expected: &str) {
    crate::support::test::assert_text(actual, expected);
    assert!(!actual.contains("hunter2"), "a secret leaked: {actual}");
}

#[track_caller]
pub(crate) fn check_with(
    yaml: &str,
    env: &str,
    files: &[(&str, &str)],
    vars: &[(&str, &str)],
    expected: &str,
) {
    let (_, actual) = error_with(yaml, env, files, vars);
    assert_text(&actual, expected);
}

/// `VALID` with `from` replaced by `to`, loaded for `prod`.
#[track_caller]
fn check(from: &str, to: &str, expected: &str) {
    check_edited(VALID, from, to, expected);
}

/// `base` with `from` replaced by `to`, loaded for `prod` with the usual secrets.
#[track_caller]
pub(crate) fn check_edited(base: &str, from: &str, to: &str, expected: &str) {
    assert!(base.contains(from), "`{from}` is not in the stack");
    check_with(
        &base.replacen(from, to, 1),
        "prod",
        &[SECRETS],
        &[],
        expected,
    );
}

#[test]
fn the_valid_stack_loads() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "stack.yaml", VALID);
    write(dir.path(), SECRETS.0, SECRETS.1);
    let lookup = |_: &str| None;
    let s = stack::load_with(&dir.path().join("stack.yaml"), "prod", &lookup).unwrap();
    assert_eq!(s.services.len(), 3);
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let lookup = |_: &str| None;
    let err = stack::load_with(&dir.path().join("stack.yaml"), "prod", &lookup).unwrap_err();
    let text = err
        .to_string()
        .replace(&dir.path().display().to_string(), "$DIR");
    binary_says(dir.path(), "prod", &BTreeMap::new(), &text);
    assert!(matches!(err, StackError::Unreadable { .. }));
    assert_text(
        &text,
        r"error: cannot read `$DIR/stack.yaml`: No such file or directory (os error 2)
  = help: check the path: a project keeps its stack in `stack.yaml` at its root",
    );
}

#[test]
fn unknown_key_suggests_the_right_one() {
    check(
        "    image: nginx:1.27\n",
        "    imag: nginx:1.27\n",
        r"error: unknown key `imag` in `services.nginx`
  --> $DIR/stack.yaml:11:5
   |
11 |     imag: nginx:1.27
   |     ^^^^
   = help: did you mean `image`?",
    );
}

#[test]
fn unknown_top_level_key() {
    check(
        "name: shop\n",
        "name: shop\nfirewal: {}\n",
        r"error: unknown key `firewal` at the top level
 --> $DIR/stack.yaml:2:1
  |
2 | firewal: {}
  | ^^^^^^^
  = help: did you mean `firewall`?",
    );
}

#[test]
fn unknown_environment_key() {
    check(
        "    ssh_agent: true\n",
        "    ssh_agnet: true\n",
        r"error: unknown key `ssh_agnet` in `environments.prod`
 --> $DIR/stack.yaml:5:5
  |
5 |     ssh_agnet: true
  |     ^^^^^^^^^
  = help: did you mean `ssh_agent`?",
    );
}

#[test]
fn bad_yaml_syntax() {
    check(
        "    port: 8080\n",
        "    port: 8080\n   depends: x\n",
        r"error: invalid YAML: while parsing a block mapping, did not find expected key
  --> $DIR/stack.yaml:22:11
   |
22 |    depends: x
   |           ^
   = help: fix the YAML syntax here (indent with spaces, quote values that contain `: ` or start with `{`, `[`, `*`, `&`)",
    );
}

#[test]
fn tab_indentation() {
    check(
        "    port: 8080\n",
        "\tport: 8080\n",
        r"error: invalid YAML: while scanning a plain scalar, found a tab
  --> $DIR/stack.yaml:21:1
   |
21 |  port: 8080
   | ^
   = help: fix the YAML syntax here (indent with spaces, quote values that contain `: ` or start with `{`, `[`, `*`, `&`)",
    );
}

#[test]
fn duplicate_key() {
    check(
        "    port: 8080\n",
        "    port: 8080\n    port: 8081\n",
        r"error: duplicate key `port` in `services.backend`
  --> $DIR/stack.yaml:22:5
   |
22 |     port: 8081
   |     ^^^^
   = help: `port` is already set on line 21: keep one of them",
    );
}

#[test]
fn wrong_type_for_a_list() {
    check(
        "depends_on: [postgres]",
        "depends_on: postgres",
        r"error: expected a list for `services.backend.depends_on`, found a string
  --> $DIR/stack.yaml:22:17
   |
22 |     depends_on: postgres
   |                 ^^^^^^^^
   = help: write a list as `[a, b]` or as lines starting with `- `",
    );
}

#[test]
fn wrong_type_for_a_port() {
    check(
        "    port: 8080\n",
        "    port: [8080]\n",
        r"error: expected a port for `services.backend.port`, found a list
  --> $DIR/stack.yaml:21:5
   |
21 |     port: [8080]
   |     ^^^^
   = help: write a whole number from 1 to 65535",
    );
}

#[test]
fn port_out_of_range() {
    check(
        "    port: 8080\n",
        "    port: 80800\n",
        r"error: port 80800 is out of range at `services.backend.port`
  --> $DIR/stack.yaml:21:11
   |
21 |     port: 80800
   |           ^^^^^
   = help: use a number from 1 to 65535",
    );
}

#[test]
fn published_port_out_of_range() {
    check(
        "\"443:443\"",
        "\"443:70000\"",
        r#"error: port 70000 is out of range in port mapping `443:70000` at `services.nginx.ports[1]`
  --> $DIR/stack.yaml:12:22
   |
12 |     ports: ["80:80", "443:70000"]
   |                      ^^^^^^^^^^^
   = help: use ports from 1 to 65535"#,
    );
}

#[test]
fn ssh_url_without_user() {
    check(
        "ssh://deploy@shop.example:22",
        "ssh://shop.example",
        r"error: invalid ssh URL `ssh://shop.example`: the user is missing at `environments.prod.host`
 --> $DIR/stack.yaml:4:11
  |
4 |     host: ssh://shop.example
  |           ^^^^^^^^^^^^^^^^^^
  = help: name the login user: `ssh://deploy@shop.example`",
    );
}

#[test]
fn http_url_for_host() {
    check(
        "ssh://deploy@shop.example:22",
        "http://deploy@shop.example",
        r"error: invalid ssh URL `http://deploy@shop.example`: it must start with `ssh://` at `environments.prod.host`
 --> $DIR/stack.yaml:4:11
  |
4 |     host: http://deploy@shop.example
  |           ^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: write it as `ssh://user@host` or `ssh://user@host:port`, e.g. `ssh://deploy@example.com:22`",
    );
}

#[test]
fn ssh_url_with_bad_port() {
    check(
        "shop.example:22",
        "shop.example:2x2",
        r"error: invalid port `2x2` in ssh URL `ssh://deploy@shop.example:2x2` at `environments.prod.host`
 --> $DIR/stack.yaml:4:11
  |
4 |     host: ssh://deploy@shop.example:2x2
  |           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: use a port from 1 to 65535, or leave it out for 22",
    );
}

#[test]
fn both_build_and_image() {
    check(
        "    build: backend\n",
        "    build: backend\n    image: shop/backend:1\n",
        r"error: `services.backend` sets both `build` and `image`
  --> $DIR/stack.yaml:21:5
   |
21 |     image: shop/backend:1
   |     ^^^^^
   = help: keep `build` to build the image from a local directory, or `image` to run a ready-made one",
    );
}

#[test]
fn neither_build_nor_image() {
    check(
        "    image: postgres:15\n",
        "",
        r"error: `services.postgres` needs `build` or `image`
  --> $DIR/stack.yaml:14:3
   |
14 |   postgres:
   |   ^^^^^^^^
   = help: add `build: <directory with a Dockerfile>` or `image: <reference>` to `postgres`",
    );
}

#[test]
fn both_ssh_key_and_agent() {
    check(
        "    ssh_agent: true\n",
        "    ssh_agent: true\n    ssh_key: ~/.ssh/id_ed25519\n",
        r"error: `environments.prod` sets both `ssh_key` and `ssh_agent`
 --> $DIR/stack.yaml:6:5
  |
6 |     ssh_key: ~/.ssh/id_ed25519
  |     ^^^^^^^
  = help: keep `ssh_key: <path>` to log in with a key file, or `ssh_agent: true` to use the running ssh-agent",
    );
}

#[test]
fn neither_ssh_key_nor_agent() {
    check(
        "    ssh_agent: true\n",
        "",
        r"error: `environments.prod` needs `ssh_key` or `ssh_agent: true`
 --> $DIR/stack.yaml:3:3
  |
3 |   prod:
  |   ^^^^
  = help: add `ssh_key: <path to a private key>` or `ssh_agent: true`",
    );
}

#[test]
fn both_known_hosts_and_host_key() {
    check(
        "    domain:",
        "    known_hosts: ~/.ssh/known_hosts\n    domain:",
        r"error: `environments.prod` sets both `known_hosts` and `host_key`
 --> $DIR/stack.yaml:7:5
  |
7 |     known_hosts: ~/.ssh/known_hosts
  |     ^^^^^^^^^^^
  = help: keep `known_hosts: <file>` or `host_key: SHA256:...`: the host key is checked against one of them",
    );
}

#[test]
fn unknown_service_name() {
    check(
        "  nginx:\n",
        "  ngnix:\n",
        r"error: unknown service `ngnix` in `services`
  --> $DIR/stack.yaml:10:3
   |
10 |   ngnix:
   |   ^^^^^
   = help: did you mean `nginx`?",
    );
}

#[test]
fn missing_service() {
    check(
        "  postgres:\n    image: postgres:15\n",
        "",
        r"error: missing service `postgres` in `services`
 --> $DIR/stack.yaml:9:1
  |
9 | services:
  | ^^^^^^^^
  = help: a stack runs exactly `nginx`, `postgres` and `backend`: add `postgres:` under `services`",
    );
}

#[test]
fn depends_on_unknown_service() {
    check(
        "depends_on: [postgres]",
        "depends_on: [postgre]",
        r"error: unknown service `postgre` in `services.backend.depends_on[0]`
  --> $DIR/stack.yaml:22:18
   |
22 |     depends_on: [postgre]
   |                  ^^^^^^^
   = help: did you mean `postgres`?",
    );
}

#[test]
fn depends_on_cycle() {
    check(
        "    image: postgres:15\n",
        "    image: postgres:15\n    depends_on: [nginx]\n",
        r"error: dependency cycle `backend` -> `postgres` -> `nginx` -> `backend` at `services.nginx.depends_on[0]`
  --> $DIR/stack.yaml:13:18
   |
13 |     depends_on: [backend]
   |                  ^^^^^^^
   = help: services start in `depends_on` order, so a cycle can never start: remove one of these dependencies",
    );
}

#[test]
fn postgres_publishing_a_port() {
    check(
        "    image: postgres:15\n",
        "    image: postgres:15\n    ports: [\"5432:5432\"]\n",
        r#"error: the database must stay on the private network: `services.postgres` cannot publish ports
  --> $DIR/stack.yaml:16:5
   |
16 |     ports: ["5432:5432"]
   |     ^^^^^
   = help: remove `ports`: nginx is the only published service, and the backend reaches postgres on the private network"#,
    );
}

#[test]
fn backend_publishing_a_port() {
    check(
        "    port: 8080\n",
        "    port: 8080\n    ports: [\"8080:8080\"]\n",
        r#"error: the backend must stay on the private network: `services.backend` cannot publish ports
  --> $DIR/stack.yaml:22:5
   |
22 |     ports: ["8080:8080"]
   |     ^^^^^
   = help: remove `ports`: nginx is the only published service, and it proxies `/api/` to the backend"#,
    );
}

#[test]
fn backend_without_port() {
    check(
        "    port: 8080\n",
        "",
        r"error: missing `port` at `services.backend`
  --> $DIR/stack.yaml:19:3
   |
19 |   backend:
   |   ^^^^^^^
   = help: set the port the backend listens on inside the network, e.g. `port: 8080`",
    );
}

#[test]
fn undefined_variable() {
    check(
        "    domain: shop.example\n",
        "    domain: ${SHOP_DOMAIN}\n",
        r"error: undefined variable `SHOP_DOMAIN` in `environments.prod.domain`
 --> $DIR/stack.yaml:7:13
  |
7 |     domain: ${SHOP_DOMAIN}
  |             ^^^^^^^^^^^^^^
  = help: define `SHOP_DOMAIN` in the process environment or `prod.env` (secrets_file), or give a default: `${SHOP_DOMAIN:-value}`",
    );
}

#[test]
fn secret_outside_env() {
    check(
        "    image: nginx:1.27\n",
        "    image: \"nginx:${POSTGRES_PASSWORD}\"\n",
        r#"error: secret `POSTGRES_PASSWORD` cannot be used in `services.nginx.image`
  --> $DIR/stack.yaml:11:19
   |
11 |     image: "nginx:${POSTGRES_PASSWORD}"
   |                   ^^^^^^^^^^^^^^^^^^^^
   = help: secrets may only be used in `env` values and in tls `eab_kid`/`eab_hmac`; use a variable from the env_file here"#,
    );
}

#[test]
fn unterminated_reference() {
    check(
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}",
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD",
        r"error: unterminated `${` in a string at `services.postgres.env.POSTGRES_PASSWORD`
  --> $DIR/stack.yaml:17:26
   |
17 |       POSTGRES_PASSWORD: ${POSTGRES_PASSWORD
   |                          ^^
   = help: close the reference with `}`, or write `$$` for a literal dollar",
    );
}

#[test]
fn bad_duration() {
    check(
        "interval: 2s",
        "interval: 2",
        r"error: invalid duration `2` at `services.backend.healthcheck.interval`
  --> $DIR/stack.yaml:25:17
   |
25 |       interval: 2
   |                 ^
   = help: write a whole number and a unit: `500ms`, `2s`, `1m`, `1h` or `1d`",
    );
}

#[test]
fn bad_volume() {
    check(
        "[pgdata:/var/lib/postgresql/data]",
        "[./pgdata:/var/lib/postgresql/data]",
        r"error: invalid volume source `./pgdata` in `./pgdata:/var/lib/postgresql/data` at `services.postgres.volumes[0]`
  --> $DIR/stack.yaml:18:15
   |
18 |     volumes: [./pgdata:/var/lib/postgresql/data]
   |               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
   = help: use a named volume (lowercase letters, digits, `_`, `-`) or an absolute host path",
    );
}

#[test]
fn bad_cron_schedule() {
    check(
        "name: shop\n",
        "name: shop\nbackup:\n  schedule: 0 25 * * *\n",
        r"error: invalid cron schedule `0 25 * * *`: bad hour field `25` at `backup.schedule`
 --> $DIR/stack.yaml:3:13
  |
3 |   schedule: 0 25 * * *
  |             ^^^^^^^^^^
  = help: the hour field takes `*`, numbers from 0 to 23, ranges `a-b`, lists `a,b` and steps `*/n`",
    );
}

#[test]
fn env_value_that_is_a_map() {
    check(
        "      POSTGRES_PASSWORD:",
        "      POSTGRES_OPTS: {a: 1}\n      POSTGRES_PASSWORD:",
        r#"error: an env value must be a string, number or boolean; `services.postgres.env.POSTGRES_OPTS` is a map
  --> $DIR/stack.yaml:17:7
   |
17 |       POSTGRES_OPTS: {a: 1}
   |       ^^^^^^^^^^^^^
   = help: quote the value to pass it as text, e.g. `KEY: "..."`"#,
    );
}

#[test]
fn invalid_stack_name() {
    check(
        "name: shop\n",
        "name: Shop_Front\n",
        r"error: invalid stack name `Shop_Front` at `name`
 --> $DIR/stack.yaml:1:7
  |
1 | name: Shop_Front
  |       ^^^^^^^^^^
  = help: use 1 to 40 lowercase letters, digits and `-`, e.g. `shop`",
    );
}

#[test]
fn secrets_file_missing() {
    check_with(
        VALID,
        "prod",
        &[],
        &[],
        r"error: secrets file `prod.env` does not exist (`environments.prod.secrets_file`)
 --> $DIR/stack.yaml:8:19
  |
8 |     secrets_file: prod.env
  |                   ^^^^^^^^
  = help: create `$DIR/prod.env` with one `KEY=VALUE` line per secret (e.g. `POSTGRES_PASSWORD=...`), `chmod 600` it and keep it out of git",
    );
}

#[test]
fn unknown_environment() {
    let (err, text) = error_with(VALID, "prodution", &[SECRETS], &[]);
    let StackError::UnknownEnvironment { name, defined, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (name.as_str(), defined.clone()),
        ("prodution", vec!["prod".to_owned()])
    );
    assert_text(
        &text,
        r"error: unknown environment `prodution`
 --> $DIR/stack.yaml:2:1
  |
2 | environments:
  | ^^^^^^^^^^^^
  = help: defined environments: `prod`",
    );
}

#[test]
fn misspelled_environment_of_the_real_stack() {
    let real =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("stack.yaml")).unwrap();
    let (_, text) = error_with(&real, "prodution", &[], &[]);
    assert_text(
        &text,
        r"error: unknown environment `prodution`
 --> $DIR/stack.yaml:8:1
  |
8 | environments:
  | ^^^^^^^^^^^^
  = help: did you mean `production`? defined environments: `sandbox`, `staging`, `production` and `cluster`",
    );
}

#[test]
fn unknown_service_in_overrides() {
    check(
        "    secrets_file: prod.env\n",
        "    secrets_file: prod.env\n    overrides:\n      backnd: {port: 9090}\n",
        r"error: unknown service `backnd` in `environments.prod.overrides`
  --> $DIR/stack.yaml:10:7
   |
10 |       backnd: {port: 9090}
   |       ^^^^^^
   = help: did you mean `backend`?",
    );
}

#[test]
fn bad_tls_mode() {
    check(
        "name: shop\n",
        "name: shop\ntls: on\n",
        r"error: invalid tls mode `on` at `tls`
 --> $DIR/stack.yaml:2:6
  |
2 | tls: on
  |      ^^
  = help: write `tls: off`, `tls: {acme: {directory: letsencrypt, email: ...}}` or `tls: {provided: {cert: ..., key: ...}}`",
    );
}

#[test]
fn unknown_checklist_item() {
    check(
        "    secrets_file: prod.env\n",
        "    secrets_file: prod.env\n    checklist:\n      items: [ssl, backups]\n",
        r"error: unknown checklist item `backups` at `environments.prod.checklist.items[1]`
  --> $DIR/stack.yaml:10:20
   |
10 |       items: [ssl, backups]
   |                    ^^^^^^^
   = help: did you mean `backup`?",
    );
}

#[test]
fn bad_line_in_env_file() {
    check_with(
        &VALID.replacen(
            "    secrets_file: prod.env\n",
            "    secrets_file: prod.env\n    env_file: prod.vars\n",
            1,
        ),
        "prod",
        &[SECRETS, ("prod.vars", "A=1\nthis is not a variable\n")],
        &[],
        r"error: expected `KEY=VALUE` in env file `prod.vars`
 --> $DIR/prod.vars:2:1
  |
2 | this is not a variable
  | ^^^^^^^^^^^^^^^^^^^^^^
  = help: write one `KEY=VALUE` per line; lines starting with `#` are comments",
    );
}

#[test]
fn bad_line_in_secrets_file_hides_the_line() {
    check_with(
        VALID,
        "prod",
        &[("prod.env", "POSTGRES_PASSWORD=x\nhunter2\n")],
        &[],
        r"error: expected `KEY=VALUE` in secrets file `prod.env`
 --> $DIR/prod.env:2:1
  = help: write one `KEY=VALUE` per line; lines starting with `#` are comments",
    );
}

#[test]
fn bad_firewall_protocol() {
    check(
        "name: shop\n",
        "name: shop\nfirewall:\n  allow:\n    - {port: 51820, proto: udpp}\n",
        r"error: invalid protocol `udpp` at `firewall.allow[0].proto`
 --> $DIR/stack.yaml:4:28
  |
4 |     - {port: 51820, proto: udpp}
  |                            ^^^^
  = help: write `tcp` or `udp`",
    );
}

#[test]
fn health_path_without_slash() {
    check(
        "http: /api/health",
        "http: api/health",
        r"error: invalid health path `api/health` at `services.backend.healthcheck.http`
  --> $DIR/stack.yaml:24:13
   |
24 |       http: api/health
   |             ^^^^^^^^^^
   = help: write a path starting with `/`, e.g. `/api/health`",
    );
}

#[test]
fn no_environments() {
    check_with(
        "name: shop\nenvironments: {}\nservices: {}\n",
        "prod",
        &[],
        &[],
        r"error: no environments in `environments`
 --> $DIR/stack.yaml:2:1
  |
2 | environments: {}
  | ^^^^^^^^^^^^
  = help: add `environments:` with at least one environment, e.g. `production: {host: ssh://deploy@example.com, ...}`",
    );
}

// ---- stacks that load ----

use std::path::PathBuf;
use std::time::Duration;

use vldeploy::stack::{
    Backup, BuildSpec, EnvValue, HealthCheck, HostKeys, ImageSource, PortMapping, Probe, Proto,
    Retention, SshAuth, SshUrl, Stack, Tls, VolumeMount,
};

/// The repo's stack.yaml copied into a fresh directory with `files` beside it.
pub(crate) fn real_stack(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let real =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("stack.yaml")).unwrap();
    write(dir.path(), "stack.yaml", &real);
    // What its `site:` and `catalog:` name: a storefront directory and a catalog file.
    write(dir.path(), "frontend/index.html", "<p>shop</p>");
    write(dir.path(), "data/catalog.csv", "Handle\n");
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    dir
}

fn load(dir: &Path, env: &str, vars: &[(&str, &str)]) -> Stack {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = |k: &str| vars.get(k).cloned();
    match stack::load_with(&dir.join("stack.yaml"), env, &lookup) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn env<'a>(s: &'a Stack, service: &str, key: &str) -> &'a EnvValue {
    &s.services[service].env[key]
}

fn exposed(s: &Stack) -> Vec<&str> {
    s.secrets
        .iter()
        .map(vldeploy::secret::Secret::expose)
        .collect()
}

#[test]
#[allow(clippy::too_many_lines)]
fn the_real_stack_loads_for_sandbox() {
    let dir = real_stack(&[
        (".vldeploy/sandbox/sandbox.env", "SANDBOX_SSH_PORT=2222\n"),
        (
            ".vldeploy/sandbox/secrets.env",
            "POSTGRES_PASSWORD=pg-secret-1\nADMIN_TOKEN=admin-secret-2\n",
        ),
    ]);
    let d = dir.path();
    let s = load(d, "sandbox", &[("HOME", "/home/op")]);
    assert_eq!(
        (s.name.as_str(), s.environment.as_str()),
        ("vaibava", "sandbox")
    );
    assert_eq!(s.project_dir, d);
    assert_eq!(
        s.target,
        SshUrl {
            user: "root".into(),
            host: "127.0.0.1".into(),
            port: 2222
        }
    );
    assert_eq!(s.auth, SshAuth::Key(d.join(".vldeploy/sandbox/id_ed25519")));
    assert_eq!(
        s.host_keys,
        HostKeys::KnownHosts(d.join(".vldeploy/sandbox/known_hosts"))
    );
    assert_eq!(s.domain, "localhost");
    assert!(!s.gated);
    assert_eq!(s.tls, Tls::Off);
    assert_eq!(
        (s.firewall.clone(), s.backup.clone(), s.checklist.clone()),
        (None, None, None)
    );
    assert_eq!(
        s.services.keys().collect::<Vec<_>>(),
        ["backend", "nginx", "postgres"]
    );

    let backend = &s.services["backend"];
    assert_eq!(
        backend.source,
        ImageSource::Build(BuildSpec {
            context: d.join("backend"),
            dockerfile: "Dockerfile".into(),
            prepare: Some(
                "cargo build --release -p vl-backend --target-dir target/backend-release && \
                 install -D -m 0755 target/backend-release/release/vl-backend backend/dist/vl-backend"
                    .into()
            ),
            inputs: [
                "Cargo.toml",
                "Cargo.lock",
                "backend/Cargo.toml",
                "backend/src",
                "backend/migrations"
            ]
            .map(String::from)
            .to_vec(),
            args: BTreeMap::new(),
        })
    );
    assert_eq!(backend.port, Some(8080));
    assert_eq!(backend.depends_on, ["postgres"]);
    assert_eq!(
        backend.healthcheck,
        Some(HealthCheck {
            probe: Probe::Http("/api/health".into()),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            retries: 30,
        })
    );
    let url = env(&s, "backend", "DATABASE_URL");
    assert!(url.is_secret());
    assert_eq!(
        url.expose(),
        "postgres://postgres:pg-secret-1@postgres:5432/vaibava_db"
    );
    assert_eq!(url.to_string(), "<secret>");
    assert!(env(&s, "backend", "ADMIN_TOKEN").is_secret());
    assert_eq!(
        env(&s, "backend", "OPERATOR_SAFE_MODE"),
        &EnvValue::Plain("true".into())
    );
    assert_eq!(
        env(&s, "backend", "RUST_LOG"),
        &EnvValue::Plain("info".into())
    );
    assert!(env(&s, "postgres", "POSTGRES_PASSWORD").is_secret());
    assert_eq!(
        env(&s, "postgres", "POSTGRES_DB"),
        &EnvValue::Plain("vaibava_db".into())
    );

    let nginx = &s.services["nginx"];
    assert_eq!(
        nginx.ports,
        [
            PortMapping {
                host_ip: None,
                host: 80,
                container: 80
            },
            PortMapping {
                host_ip: None,
                host: 443,
                container: 443
            },
        ]
    );
    assert_eq!(nginx.depends_on, ["backend"]);
    let postgres = &s.services["postgres"];
    assert_eq!(
        postgres.volumes,
        [VolumeMount {
            source: "pgdata".into(),
            target: "/var/lib/postgresql/data".into(),
            read_only: false
        }]
    );
    assert_eq!(
        postgres.healthcheck.as_ref().map(|h| &h.probe),
        Some(&Probe::Command(
            ["pg_isready", "-U", "postgres", "-d", "vaibava_db"]
                .map(String::from)
                .to_vec()
        ))
    );

    assert_eq!(exposed(&s), ["admin-secret-2", "pg-secret-1"]);
    for printed in [format!("{s:?}"), serde_json::to_string(&s).unwrap()] {
        assert!(
            !printed.contains("pg-secret-1") && !printed.contains("admin-secret-2"),
            "{printed}"
        );
        assert!(printed.contains("<secret>"));
    }
}

#[test]
fn the_real_stack_loads_for_staging_with_its_override() {
    let dir = real_stack(&[(
        "secrets/staging.env",
        "POSTGRES_PASSWORD=from-file\nADMIN_TOKEN=token-from-file\n",
    )]);
    let s = load(
        dir.path(),
        "staging",
        &[("HOME", "/home/op"), ("POSTGRES_PASSWORD", "from-process")],
    );
    assert_eq!(
        s.target,
        SshUrl {
            user: "deploy".into(),
            host: "staging.vaibava.example".into(),
            port: 22
        }
    );
    assert_eq!(s.auth, SshAuth::Agent);
    assert_eq!(
        s.host_keys,
        HostKeys::KnownHosts(PathBuf::from("/home/op/.ssh/known_hosts"))
    );
    assert_eq!(s.domain, "staging.vaibava.example");
    // the override replaces one env key and keeps the others
    assert_eq!(
        env(&s, "backend", "RUST_LOG"),
        &EnvValue::Plain("debug".into())
    );
    assert_eq!(
        env(&s, "backend", "OPERATOR_SAFE_MODE"),
        &EnvValue::Plain("true".into())
    );
    assert_eq!(s.services["backend"].env.len(), 4);
    assert_eq!(s.services["backend"].port, Some(8080));
    // the process environment wins, and a name from the secrets file stays secret
    let url = env(&s, "backend", "DATABASE_URL");
    assert!(url.is_secret());
    assert!(url.expose().contains(":from-process@"));
    assert_eq!(
        env(&s, "backend", "ADMIN_TOKEN").expose(),
        "token-from-file"
    );
    assert_eq!(exposed(&s), ["token-from-file", "from-process"]);
}

#[test]
fn the_real_stack_loads_for_production() {
    let dir = real_stack(&[(
        "secrets/production.env",
        "POSTGRES_PASSWORD=p1\nADMIN_TOKEN=p2\n",
    )]);
    let s = load(dir.path(), "production", &[("HOME", "/home/op")]);
    assert!(s.gated);
    assert_eq!(
        s.auth,
        SshAuth::Key(PathBuf::from("/home/op/.ssh/vaibava_deploy"))
    );
    assert_eq!(
        s.host_keys,
        HostKeys::Pinned("SHA256:REPLACE_WITH_THE_HOST_KEY_FINGERPRINT".into())
    );
    assert_eq!(s.target.host, "vaibava.example");
    assert_eq!(
        env(&s, "backend", "RUST_LOG"),
        &EnvValue::Plain("info".into())
    );
}

#[test]
fn environment_names_of_the_real_stack() {
    let dir = real_stack(&[]);
    assert_eq!(
        stack::environment_names(&dir.path().join("stack.yaml")).unwrap(),
        ["sandbox", "staging", "production", "cluster"]
    );
}

#[test]
fn variables_defaults_escapes_and_the_secrets_list() {
    let yaml = VALID
        .replacen("name: shop\n", "name: shop\nsecrets: [SHOP_TOKEN]\n", 1)
        .replacen(
            "    port: 8080\n",
            "    port: ${BACKEND_PORT:-8081}\n    env:\n      TOKEN: x-${SHOP_TOKEN}\n      PLAIN: ${PLAIN_VAR}\n      PRICE: $$5 ${MISSING:-and more}\n      COUNT: 3\n      ON: true\n",
            1,
        );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "stack.yaml", &yaml);
    write(dir.path(), SECRETS.0, SECRETS.1);
    let s = load(
        dir.path(),
        "prod",
        &[("SHOP_TOKEN", "tok"), ("PLAIN_VAR", "visible")],
    );
    let b = &s.services["backend"];
    assert_eq!(b.port, Some(8081));
    assert!(b.env["TOKEN"].is_secret());
    assert_eq!(b.env["TOKEN"].expose(), "x-tok");
    assert_eq!(b.env["PLAIN"], EnvValue::Plain("visible".into()));
    assert_eq!(b.env["PRICE"], EnvValue::Plain("$5 and more".into()));
    assert_eq!(b.env["COUNT"], EnvValue::Plain("3".into()));
    assert_eq!(b.env["ON"], EnvValue::Plain("true".into()));
    assert_eq!(exposed(&s), ["hunter2", "tok"]);
}

#[test]
fn overrides_replace_fields_and_build_takes_every_form() {
    let yaml = VALID.replacen(
        "    secrets_file: prod.env\n",
        "    secrets_file: prod.env\n    overrides:\n      nginx:\n        build: {context: images/nginx, dockerfile: Containerfile, args: {VERSION: 1.27}}\n        ports: [\"127.0.0.1:8080:80\"]\n      backend:\n        build:\n          context: backend\n          prepare: cargo build --release\n",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "stack.yaml", &yaml);
    write(dir.path(), SECRETS.0, SECRETS.1);
    let s = load(dir.path(), "prod", &[]);
    let nginx = &s.services["nginx"];
    assert_eq!(
        nginx.source,
        ImageSource::Build(BuildSpec {
            context: dir.path().join("images/nginx"),
            dockerfile: "Containerfile".into(),
            prepare: None,
            inputs: Vec::new(),
            args: BTreeMap::from([("VERSION".to_owned(), "1.27".to_owned())]),
        })
    );
    assert_eq!(
        nginx.ports,
        [PortMapping {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host: 8080,
            container: 80
        }]
    );
    assert_eq!(nginx.depends_on, ["backend"]);
    let ImageSource::Build(b) = &s.services["backend"].source else {
        panic!("expected a build")
    };
    assert_eq!(b.prepare.as_deref(), Some("cargo build --release"));
    assert_eq!(b.context, dir.path().join("backend"));
    assert_eq!(
        s.services["postgres"].source,
        ImageSource::Image("postgres:15".into())
    );
}

#[test]
fn sections_have_defaults_and_environments_replace_them() {
    let yaml = VALID
        .replacen(
            "name: shop\n",
            "name: shop\nfirewall:\n  allow:\n    - {port: 51820, proto: udp, from: [10.0.0.0/8]}\n  must_be_closed: [5432]\nbackup: {}\n",
            1,
        )
        .replacen(
            "    secrets_file: prod.env\n",
            "    secrets_file: prod.env\n    backup:\n      schedule: 30 3 * * *\n      retention: {daily: 3}\n    tls:\n      acme:\n        directory: letsencrypt-staging\n        email: ops@shop.example\n        eab_kid: kid-1\n        eab_hmac: ${POSTGRES_PASSWORD}\n    checklist:\n      items: [ssl, backup]\n      freshness: {backup: 26h}\n",
            1,
        );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "stack.yaml", &yaml);
    write(dir.path(), SECRETS.0, SECRETS.1);
    let s = load(dir.path(), "prod", &[]);
    let fw = s.firewall.clone().unwrap();
    assert_eq!(fw.allow.len(), 1);
    assert_eq!((fw.allow[0].port, fw.allow[0].proto), (51820, Proto::Udp));
    assert_eq!(fw.allow[0].from, ["10.0.0.0/8"]);
    assert!(fw.icmp);
    assert_eq!(fw.must_be_closed, [5432]);
    assert_eq!(
        s.backup,
        Some(Backup {
            schedule: "30 3 * * *".into(),
            dir: "/var/backups/shop".into(),
            retention: Retention {
                daily: 3,
                weekly: 4,
                monthly: 6
            },
            copy_to: None,
            encrypt: None,
            archive: None,
        })
    );
    let Tls::Acme(acme) = &s.tls else {
        panic!("expected acme")
    };
    assert_eq!(
        acme.directory,
        "https://acme-staging-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(acme.email.as_deref(), Some("ops@shop.example"));
    let eab = acme.eab.as_ref().unwrap();
    assert_eq!((eab.kid.expose(), eab.hmac.expose()), ("kid-1", "hunter2"));
    assert!(!format!("{s:?}").contains("hunter2"));
    let c = s.checklist.clone().unwrap();
    assert_eq!(c.items, ["ssl", "backup"]);
    assert_eq!(c.freshness["backup"], Duration::from_hours(26));
}

#[test]
fn the_schema_is_json_and_names_every_top_level_key() {
    let schema = stack::schema();
    let text = serde_json::to_string_pretty(&schema).unwrap();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, schema);
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "name",
        "environments",
        "services",
        "secrets",
        "tls",
        "firewall",
        "backup",
        "checklist",
    ] {
        assert!(props.contains_key(key), "{key}");
    }
    assert_eq!(schema["additionalProperties"], false);
    for service in ["nginx", "postgres", "backend"] {
        assert!(
            schema["properties"]["services"]["properties"]
                .get(service)
                .is_some()
        );
    }
}

#[test]
fn any_damaged_stack_gives_a_diagnostic_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), SECRETS.0, SECRETS.1);
    let path = dir.path().join("stack.yaml");
    let lookup = |_: &str| None;
    let lines: Vec<&str> = VALID.lines().collect();
    let mut damaged: Vec<String> = (0..lines.len())
        .map(|skip| {
            let kept: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            kept.join("\n")
        })
        .collect();
    damaged.extend(VALID.char_indices().map(|(i, _)| VALID[..i].to_owned()));
    damaged.extend(
        VALID
            .char_indices()
            .filter(|(_, c)| !c.is_whitespace())
            .map(|(i, c)| {
                let mut s = VALID.to_owned();
                s.replace_range(i..i + c.len_utf8(), if c == ':' { "{" } else { ":" });
                s
            }),
    );
    let mut errors = 0;
    for text in &damaged {
        std::fs::write(&path, text).unwrap();
        if let Err(e) = stack::load_with(&path, "prod", &lookup) {
            errors += 1;
            let shown = e.to_string();
            assert!(shown.starts_with("error: "), "{shown}");
            assert!(
                shown.contains("stack.yaml:") || shown.contains("prod.env"),
                "{shown}"
            );
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
    assert!(errors > damaged.len() / 2, "{errors} of {}", damaged.len());
}

// Grammar of the values that reach templates and remote commands: each is checked where it is written.

#[test]
fn a_domain_carrying_nginx_directives_is_refused() {
    check(
        "    domain: shop.example\n",
        "    domain: \"shop.test;\\n\\tadd_header X-Injected yes\"\n",
        r#"error: invalid domain `shop.test;\n\tadd_header X-Injected yes`: `;` is not allowed in a domain (letters, digits, `-` and `.` are) at `environments.prod.domain`
 --> $DIR/stack.yaml:7:13
  |
7 |     domain: "shop.test;\n\tadd_header X-Injected yes"
  |             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: write the host name nginx serves, e.g. `shop.example`: labels of letters, digits and `-` separated by dots (no scheme, port or path)"#,
    );
}

#[test]
fn a_domain_with_an_underscore_is_refused() {
    check(
        "    domain: shop.example\n",
        "    domain: shop_test.example\n",
        r"error: invalid domain `shop_test.example`: `_` is not allowed in a domain (letters, digits, `-` and `.` are) at `environments.prod.domain`
 --> $DIR/stack.yaml:7:13
  |
7 |     domain: shop_test.example
  |             ^^^^^^^^^^^^^^^^^
  = help: write the host name nginx serves, e.g. `shop.example`: labels of letters, digits and `-` separated by dots (no scheme, port or path)",
    );
}

#[test]
fn a_domain_label_longer_than_63_is_refused() {
    check(
        "    domain: shop.example\n",
        &format!("    domain: {}.example\n", "a".repeat(64)),
        r"error: invalid domain `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example`: the label `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa` is 64 characters long; a label has at most 63 at `environments.prod.domain`
 --> $DIR/stack.yaml:7:13
  |
7 |     domain: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example
  |             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: write the host name nginx serves, e.g. `shop.example`: labels of letters, digits and `-` separated by dots (no scheme, port or path)",
    );
}

#[test]
fn a_domain_longer_than_253_is_refused() {
    check(
        "    domain: shop.example\n",
        &format!("    domain: {}example\n", "abcdefghi.".repeat(25)),
        r"error: invalid domain `abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.…`: it is 257 characters long; a domain has at most 253 at `environments.prod.domain`
 --> $DIR/stack.yaml:7:13
  |
7 |     domain: abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.example
  |             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: write the host name nginx serves, e.g. `shop.example`: labels of letters, digits and `-` separated by dots (no scheme, port or path)",
    );
}

#[test]
fn an_international_domain_is_written_in_punycode() {
    check(
        "    domain: shop.example\n",
        "    domain: bücher.example\n",
        r"error: invalid domain `bücher.example`: it is not ASCII at `environments.prod.domain`
 --> $DIR/stack.yaml:7:13
  |
7 |     domain: bücher.example
  |             ^^^^^^^^^^^^^^
  = help: write the international name in its punycode form: `xn--bcher-kva.example`",
    );
}

#[test]
fn a_wildcard_domain_is_refused_with_the_reason() {
    check(
        "    domain: shop.example\n",
        "    domain: \"*.shop.example\"\n",
        r#"error: invalid domain `*.shop.example`: wildcard domains cannot be served at `environments.prod.domain`
 --> $DIR/stack.yaml:7:13
  |
7 |     domain: "*.shop.example"
  |             ^^^^^^^^^^^^^^^^
  = help: name the host itself, e.g. `shop.example`: certificates are issued through the HTTP-01 challenge, which cannot issue a wildcard certificate"#,
    );
}

#[test]
fn a_health_path_with_a_space_is_refused() {
    check(
        "http: /api/health",
        "http: \"/api/health now\"",
        r#"error: invalid health path `/api/health now`: a space is not allowed in a URL path at `services.backend.healthcheck.http`
  --> $DIR/stack.yaml:24:13
   |
24 |       http: "/api/health now"
   |             ^^^^^^^^^^^^^^^^^
   = help: write the path as it goes in a URL: letters, digits and `-._~!$&'()*+,;=:@/?`, anything else percent-encoded (a space is `%20`)"#,
    );
}

#[test]
fn a_health_path_with_a_double_quote_is_refused() {
    check(
        "http: /api/health",
        "http: '/api/\"health\"'",
        r#"error: invalid health path `/api/"health"`: `"` is not allowed in a URL path at `services.backend.healthcheck.http`
  --> $DIR/stack.yaml:24:13
   |
24 |       http: '/api/"health"'
   |             ^^^^^^^^^^^^^^^
   = help: write the path as it goes in a URL: letters, digits and `-._~!$&'()*+,;=:@/?`, anything else percent-encoded (a space is `%20`)"#,
    );
}

#[test]
fn a_health_path_with_a_newline_is_refused() {
    check(
        "http: /api/health",
        "http: \"/api/health\\nreboot\"",
        r#"error: invalid health path `/api/health\nreboot`: `\n` is not allowed in a URL path at `services.backend.healthcheck.http`
  --> $DIR/stack.yaml:24:13
   |
24 |       http: "/api/health\nreboot"
   |             ^^^^^^^^^^^^^^^^^^^^^
   = help: write the path as it goes in a URL: letters, digits and `-._~!$&'()*+,;=:@/?`, anything else percent-encoded (a space is `%20`)"#,
    );
}

#[test]
fn an_email_with_a_space_is_refused() {
    check(
        "    secrets_file: prod.env\n",
        "    secrets_file: prod.env\n    tls:\n      acme:\n        directory: letsencrypt\n        email: ops @shop.example\n",
        r"error: invalid email `ops @shop.example`: a space is not allowed in an address at `environments.prod.tls.acme.email`
  --> $DIR/stack.yaml:12:16
   |
12 |         email: ops @shop.example
   |                ^^^^^^^^^^^^^^^^^
   = help: write one address, e.g. `ops@shop.example`",
    );
}

#[test]
fn an_email_with_a_newline_is_refused() {
    check(
        "    secrets_file: prod.env\n",
        "    secrets_file: prod.env\n    tls:\n      acme:\n        directory: letsencrypt\n        email: \"ops@shop.example\\nbcc@evil.example\"\n",
        r#"error: invalid email `ops@shop.example\nbcc@evil.example`: `\n` is not allowed in an address at `environments.prod.tls.acme.email`
  --> $DIR/stack.yaml:12:16
   |
12 |         email: "ops@shop.example\nbcc@evil.example"
   |                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
   = help: write one address, e.g. `ops@shop.example`"#,
    );
}

#[test]
fn a_backup_copy_to_that_is_not_a_path_or_host_path_is_refused() {
    check(
        "name: shop\n",
        "name: shop\nbackup:\n  copy_to: \"-oProxyCommand=id:/srv\"\n",
        r#"error: invalid backup copy_to `-oProxyCommand=id:/srv`: the host: `=` is not allowed in a domain (letters, digits, `-` and `.` are) at `backup.copy_to`
 --> $DIR/stack.yaml:3:12
  |
3 |   copy_to: "-oProxyCommand=id:/srv"
  |            ^^^^^^^^^^^^^^^^^^^^^^^^
  = help: write an absolute path on the host (`/mnt/offsite/shop`) or `user@host:/path` (copied over ssh)"#,
    );
}

#[test]
fn a_backup_dir_with_a_newline_is_refused() {
    check(
        "name: shop\n",
        "name: shop\nbackup:\n  dir: \"/var/backups/shop\\n* * * * * root id\"\n",
        r#"error: backup dir `/var/backups/shop\n* * * * * root id` holds the control character `\n` at `backup.dir`
 --> $DIR/stack.yaml:3:8
  |
3 |   dir: "/var/backups/shop\n* * * * * root id"
  |        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: write an absolute path on the host, e.g. `/var/backups/shop`"#,
    );
}

#[test]
fn an_environment_name_with_a_newline_is_refused() {
    check_with(
        &VALID.replacen("  prod:\n", "  \"prod\\nx\":\n", 1),
        "prod\nx",
        &[SECRETS],
        &[],
        r#"error: invalid environment name `prod\nx` at `environments`
 --> $DIR/stack.yaml:3:3
  |
3 |   "prod\nx":
  |   ^^^^^^^^
  = help: use 1 to 63 letters, digits, `-` and `_`, e.g. `production`"#,
    );
}

#[test]
fn a_domain_is_read_in_lowercase_and_a_health_path_keeps_its_rfc_3986_characters() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = VALID
        .replacen("domain: shop.example", "domain: Shop.Example", 1)
        .replacen(
            "http: /api/health",
            "http: \"/api/health;v=1?x='y'&z=$(id)\"",
            1,
        );
    write(dir.path(), "stack.yaml", &yaml);
    write(dir.path(), SECRETS.0, SECRETS.1);
    let lookup = |_: &str| None;
    let s = stack::load_with(&dir.path().join("stack.yaml"), "prod", &lookup).unwrap();
    assert_eq!(s.domain, "shop.example");
    let probe = &s.services["backend"].healthcheck.as_ref().unwrap().probe;
    assert_eq!(
        *probe,
        stack::Probe::Http("/api/health;v=1?x='y'&z=$(id)".into())
    );
}

// ---- Size limits and linear checks: a stack file is bounded, and every check costs one pass over it. ----

/// `VALID` with a comment padded so the file is `size` bytes.
fn valid_of_size(size: usize) -> String {
    let pad = size - VALID.len() - 2;
    format!("{VALID}#{}\n", "x".repeat(pad))
}

#[test]
fn a_stack_file_over_one_mebibyte_is_refused_before_it_is_read() {
    let yaml = valid_of_size((1 << 20) + 1);
    let (err, text) = error_with(&yaml, "prod", &[SECRETS], &[]);
    assert!(matches!(err, StackError::Unreadable { .. }), "{err:?}");
    assert_text(
        &text,
        "error: `$DIR/stack.yaml` is too large for a stack file: 1048577 bytes, the limit is 1048576 (1 MiB)
  = help: a stack file is a few kilobytes: check that `--file` names the stack file, not a dump, a log or a binary",
    );
}

#[test]
fn a_stack_file_of_exactly_the_limit_loads() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "stack.yaml", &valid_of_size(1 << 20));
    write(dir.path(), SECRETS.0, SECRETS.1);
    let lookup = |_: &str| None;
    let s = stack::load_with(&dir.path().join("stack.yaml"), "prod", &lookup).unwrap();
    assert_eq!(s.services.len(), 3);
}

#[test]
fn a_stack_path_that_is_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("stack.yaml")).unwrap();
    let lookup = |_: &str| None;
    let err = stack::load_with(&dir.path().join("stack.yaml"), "prod", &lookup).unwrap_err();
    let text = err
        .to_string()
        .replace(&dir.path().display().to_string(), "$DIR");
    binary_says(dir.path(), "prod", &BTreeMap::new(), &text);
    assert_text(
        &text,
        "error: cannot read `$DIR/stack.yaml`: it is not a regular file
  = help: name the stack file itself with `--file` (a directory, FIFO or device is not read)",
    );
}

#[test]
fn env_and_secrets_files_over_the_limit_are_refused_without_their_content() {
    let big = format!("POSTGRES_PASSWORD=hunter2\n{}\n", "#".repeat(1 << 20));
    check_with(
        VALID,
        "prod",
        &[(SECRETS.0, &big)],
        &[],
        "error: secrets file `prod.env` is too large: 1048603 bytes, the limit is 1048576 (1 MiB)
 --> $DIR/stack.yaml:8:19
  |
8 |     secrets_file: prod.env
  |                   ^^^^^^^^
  = help: a secrets file holds a few `KEY=VALUE` lines: check that `secrets_file` names the right file",
    );
    check_with(
        &VALID.replace(
            "    secrets_file: prod.env\n",
            "    secrets_file: prod.env\n    env_file: big.env\n",
        ),
        "prod",
        &[SECRETS, ("big.env", &big)],
        &[],
        "error: env file `big.env` is too large: 1048603 bytes, the limit is 1048576 (1 MiB)
 --> $DIR/stack.yaml:9:15
  |
9 |     env_file: big.env
  |               ^^^^^^^
  = help: an env file holds a few `KEY=VALUE` lines: check that `env_file` names the right file",
    );
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
    check(
        "    domain: shop.example\n",
        &format!("    domain: shop.example\n    x: {deep}\n"),
        &format!(
            "error: lists and maps nest deeper than 64 levels
 --> $DIR/stack.yaml:8:69
  |
8 |     x: {deep}
  |     {}^
  = help: a stack file nests a few levels: write the values out flat",
            " ".repeat(64)
        ),
    );
}

#[test]
fn forty_thousand_keys_in_one_mapping_load_and_a_duplicate_among_them_is_named() {
    let n = 40_000;
    let base: String = (0..n).map(|i| format!("      K{i:05}: b{i}\n")).collect();
    let over: String = (0..n)
        .step_by(16)
        .map(|i| format!("          K{i:05}: o{i}\n"))
        .collect();
    let yaml = VALID
        .replace(
            "    secrets_file: prod.env\n",
            &format!(
                "    secrets_file: prod.env\n    overrides:\n      backend:\n        env:\n{over}"
            ),
        )
        .replace(
            "    port: 8080\n",
            &format!("    port: 8080\n    env:\n{base}"),
        );
    assert!(yaml.len() < 1 << 20, "{}", yaml.len());
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "stack.yaml", &yaml);
    write(dir.path(), SECRETS.0, SECRETS.1);
    let lookup = |_: &str| None;
    let s = stack::load_with(&dir.path().join("stack.yaml"), "prod", &lookup).unwrap();
    let backend = &s.services["backend"].env;
    assert_eq!(backend.len(), n);
    assert_eq!(backend["K00000"], EnvValue::Plain("o0".into()));
    assert_eq!(backend["K00001"], EnvValue::Plain("b1".into()));
    assert_eq!(backend["K39984"], EnvValue::Plain("o39984".into()));
    assert_eq!(backend["K39999"], EnvValue::Plain("b39999".into()));

    let line = |l: &str| yaml.lines().position(|x| x == l).unwrap() + 1;
    let (first, last) = (line("      K00007: b7"), line("      K39999: b39999"));
    let duplicated = yaml.replace("      K39999: b39999\n", "      K00007: again\n");
    let (_, text) = error_with(&duplicated, "prod", &[SECRETS], &[]);
    assert!(
        text.starts_with(&format!(
            "error: duplicate key `K00007` in `services.backend.env`\n     --> $DIR/stack.yaml:{last}:7\n"
        )),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "= help: `K00007` is already set on line {first}: keep one of them"
        )),
        "{text}"
    );
}

#[test]
fn variables_that_expand_past_sixteen_mebibytes_are_refused() {
    let big = format!("A={}\n", "a".repeat(1_000_000));
    let refs = "${A}".repeat(17);
    check_with(
        &VALID
            .replace(
                "    secrets_file: prod.env\n",
                "    secrets_file: prod.env\n    env_file: big.env\n",
            )
            .replace(
                "      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}\n",
                &format!("      POSTGRES_PASSWORD: ${{POSTGRES_PASSWORD}}\n      X: {refs}\n"),
            ),
        "prod",
        &[SECRETS, ("big.env", &big)],
        &[],
        &format!(
            "error: variables put more than 16 MiB into this stack's values (reached at `services.postgres.env.X`)
  --> $DIR/stack.yaml:19:10
   |
19 |       X: {refs}
   |          ^^^^
   = help: a stack's values are short: check the value of this variable, or reference it fewer times"
        ),
    );
}

#[test]
fn command_timeout_is_a_duration_of_at_least_a_second() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "stack.yaml",
        &VALID.replacen(
            "    ssh_agent: true\n",
            "    ssh_agent: true\n    command_timeout: 90s\n",
            1,
        ),
    );
    write(dir.path(), SECRETS.0, SECRETS.1);
    let lookup = |_: &str| None;
    let s = stack::load_with(&dir.path().join("stack.yaml"), "prod", &lookup).unwrap();
    assert_eq!(s.command_timeout, std::time::Duration::from_secs(90));
    write(dir.path(), "stack.yaml", VALID);
    let s = stack::load_with(&dir.path().join("stack.yaml"), "prod", &lookup).unwrap();
    assert_eq!(s.command_timeout, std::time::Duration::from_secs(600));
    check(
        "    ssh_agent: true\n",
        "    ssh_agent: true\n    command_timeout: 500ms\n",
        r"error: command timeout `500ms` is under one second at `environments.prod.command_timeout`
 --> $DIR/stack.yaml:6:22
  |
6 |     command_timeout: 500ms
  |                      ^^^^^
  = help: give commands at least `1s` (the default is `10m`)",
    );
}

#[test]
fn a_site_outside_the_project_is_refused() {
    check(
        "    secrets_file: prod.env\n",
        "    secrets_file: prod.env\n    site: /srv/www\n",
        r"error: invalid site directory `/srv/www`: it is not relative to the project at `environments.prod.site`
 --> $DIR/stack.yaml:9:11
  |
9 |     site: /srv/www
  |           ^^^^^^^^
  = help: write a path inside the project, relative to the stack file, e.g. `frontend/`",
    );
    check(
        "    secrets_file: prod.env\n",
        "    secrets_file: prod.env\n    site: frontend/../../etc\n",
        r"error: invalid site directory `frontend/../../etc`: `..` leaves the project at `environments.prod.site`
 --> $DIR/stack.yaml:9:11
  |
9 |     site: frontend/../../etc
  |           ^^^^^^^^^^^^^^^^^^
  = help: write a path inside the project, relative to the stack file, e.g. `frontend/`",
    );
}

#[test]
fn a_missing_site_or_a_catalog_that_is_no_file_is_refused() {
    check(
        "    secrets_file: prod.env\n",
        "    secrets_file: prod.env\n    site: frontend/\n",
        r"error: site directory `frontend/` at `environments.prod.site`: it does not exist (looked for `$DIR/frontend/`)
 --> $DIR/stack.yaml:9:11
  |
9 |     site: frontend/
  |           ^^^^^^^^^
  = help: name a directory of the project, relative to the stack file, e.g. `frontend/`",
    );
    check(
        "    secrets_file: prod.env\n",
        "    secrets_file: prod.env\n    catalog: .\n",
        r"error: catalog file `.` at `environments.prod.catalog`: it is not a regular file (looked for `$DIR/.`)
 --> $DIR/stack.yaml:9:14
  |
9 |     catalog: .
  |              ^
  = help: name a file of the project, relative to the stack file, e.g. `data/catalog.csv`",
    );
}

#[test]
fn a_site_that_is_a_symlink_out_of_the_project_is_refused() {
    let dir = real_stack(&[
        (".vldeploy/sandbox/sandbox.env", "SANDBOX_SSH_PORT=2222\n"),
        (
            ".vldeploy/sandbox/secrets.env",
            "POSTGRES_PASSWORD=pg-secret-1\nADMIN_TOKEN=admin-secret-2\n",
        ),
    ]);
    std::fs::remove_dir_all(dir.path().join("frontend")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("frontend")).unwrap();
    let lookup = |k: &str| (k == "HOME").then(|| "/home/op".to_string());
    let err = stack::load_with(&dir.path().join("stack.yaml"), "sandbox", &lookup)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "error: site directory `frontend/` at `site`: it leads out of the project (a symlink)"
        ),
        "{err}"
    );
}

#[test]
fn build_inputs_are_patterns_of_a_prepare_command() {
    check(
        "    build: backend\n",
        "    build:\n      context: backend\n      inputs: [src]\n",
        r"error: `services.backend.build.inputs` lists the inputs of a `prepare` command, but there is none
  --> $DIR/stack.yaml:22:7
   |
22 |       inputs: [src]
   |       ^^^^^^
   = help: add `prepare: <command>` beside `inputs`, or remove `inputs`",
    );
    check(
        "    build: backend\n",
        "    build:\n      context: backend\n      prepare: make\n      inputs: [src, \"[\"]\n",
        r#"error: `[` at `services.backend.build.inputs[1]` is not a path or glob pattern
  --> $DIR/stack.yaml:23:21
   |
23 |       inputs: [src, "["]
   |                     ^^^
   = help: write a path relative to the project directory, e.g. `backend/src` or `backend/**/*.rs`"#,
    );
}

#[test]
fn a_backup_archive_repo_that_is_not_ssh_or_a_path_is_refused() {
    check(
        "name: shop\n",
        "name: shop\nbackup:\n  archive:\n    repo: \"vault.example:/srv/pgbackrest\"\n",
        r#"error: invalid archive repo `vault.example:/srv/pgbackrest`: it is neither `ssh://user@host/path` nor an absolute path at `backup.archive.repo`
 --> $DIR/stack.yaml:4:11
  |
4 |     repo: "vault.example:/srv/pgbackrest"
  |           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: write `ssh://backup@vault.example/var/lib/pgbackrest` (a backup host over ssh) or an absolute path such as `/var/lib/pgbackrest`"#,
    );
}

#[test]
fn a_backup_archive_timeout_out_of_range_is_refused() {
    check(
        "name: shop\n",
        "name: shop\nbackup:\n  archive:\n    repo: /var/lib/pgbackrest\n    timeout: 500ms\n",
        r"error: `timeout` must be whole seconds from 1s to 1h at `backup.archive.timeout`
 --> $DIR/stack.yaml:5:14
  |
5 |     timeout: 500ms
  |              ^^^^^
  = help: it is postgres' `archive_timeout`: the most a lost host loses, e.g. `60s`",
    );
}

#[test]
fn a_backup_archive_passphrase_must_name_a_secret() {
    check(
        "name: shop\n",
        "name: shop\nbackup:\n  archive:\n    repo: ssh://backup@vault.example/var/lib/pgbackrest\n    encrypt_passphrase: POSTGRES_PASWORD\n",
        r"error: `encrypt_passphrase` names no secret: `POSTGRES_PASWORD` at `backup.archive.encrypt_passphrase`
 --> $DIR/stack.yaml:5:25
  |
5 |     encrypt_passphrase: POSTGRES_PASWORD
  |                         ^^^^^^^^^^^^^^^^
  = help: did you mean `POSTGRES_PASSWORD`?",
    );
}

#[test]
fn a_backup_archive_loads_with_its_defaults() {
    let yaml = VALID.replacen(
        "name: shop\n",
        "name: shop\nbackup:\n  archive:\n    repo: ssh://backup@vault.example:2222/var/lib/pgbackrest\n    encrypt_passphrase: POSTGRES_PASSWORD\n",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "stack.yaml", &yaml);
    write(dir.path(), SECRETS.0, SECRETS.1);
    let s = load(dir.path(), "prod", &[]);
    let a = s.backup.unwrap().archive.unwrap();
    assert_eq!(
        a,
        stack::Archive {
            repo: stack::ArchiveRepo::Ssh {
                user: "backup".into(),
                host: "vault.example".into(),
                port: 2222,
                path: "/var/lib/pgbackrest".into(),
            },
            timeout: Duration::from_mins(1),
            full: "0 3 * * 0".into(),
            diff: Some("0 3 * * 1-6".into()),
            retention_full: 2,
            encrypt_passphrase: Some("POSTGRES_PASSWORD".into()),
            repo_address: None,
            db_address: None,
        }
    );
}
