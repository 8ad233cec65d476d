//! Certificates and the maintenance page on every edge of the cluster: one certificate issued by Pebble (EAB
//! required, running here) whose validator reaches only the second edge, served through both edges; a second
//! `up` issues nothing; a renewal is installed on both; `maintenance on|off -e cluster` on both edges while the
//! backend keeps running, the page kept by a later `up`. The environment is left as it was found (no `tls:`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::Node;
use crate::support::pebble::{HMAC, KID, LocalPebble};
use crate::support::project::{self, Project};
use crate::support::ssh::ssh_ok;

const DOMAIN: &str = "shop.test";

/// `curl` over HTTPS through the edge whose 443 is published on `port`, trusting only `root`.
fn https_get(port: u16, root: &std::path::Path, path: &str) -> (u16, String) {
    project::https_get(DOMAIN, port, root, path)
}

/// The certificate served on `port`, by a real handshake.
fn served(port: u16) -> vldeploy::tls::CertInfo {
    let addr = format!("127.0.0.1:{port}");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(vldeploy::tls::served_certificate(&addr, DOMAIN))
        .unwrap_or_else(|e| panic!("handshake with {addr}: {e}"))
}

/// The certificate served on `port` once `wanted` holds for it, or after 15 s: `nginx -s reload` returns once
/// signalled, and each edge's new workers take a new certificate a moment later.
fn served_when(
    port: u16,
    wanted: impl Fn(&vldeploy::tls::CertInfo) -> bool,
) -> vldeploy::tls::CertInfo {
    let deadline = Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let cert = served(port);
        if wanted(&cert) || Instant::now() > deadline {
            return cert;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The cluster environment as the test found it, and the edges' HTTPS ports.
struct Setup {
    stack: String,
    secrets: String,
    https: Vec<u16>,
    root: std::path::PathBuf,
}

pub(crate) fn check(p: &Project, nodes: &[Node]) {
    // The CA validates through the second edge only: the token must be there, not only on the first.
    let pebble = LocalPebble::start(p, nodes[1].http_port);
    let setup = with_tls(p, &pebble);
    let serial = issued_once(p, nodes, &pebble, &setup);
    renewed_everywhere(p, nodes, &pebble, &setup, &serial);
    maintenance(p, nodes, &setup);
    restore(p, nodes, &setup);
}

/// Gives the cluster environment `tls: acme` against `pebble` and the domain it validates.
fn with_tls(p: &Project, pebble: &LocalPebble) -> Setup {
    let env = std::fs::read_to_string(p.path().join(".vldeploy/cluster/cluster.env")).unwrap();
    let vars: BTreeMap<&str, &str> = env.lines().filter_map(|l| l.split_once('=')).collect();
    let https: Vec<u16> = (1..=2)
        .map(|i| {
            vars[format!("CLUSTER_NODE{i}_HTTPS_PORT").as_str()]
                .parse()
                .unwrap()
        })
        .collect();
    let secrets_path = p.path().join(".vldeploy/cluster/secrets.env");
    let secrets = std::fs::read_to_string(&secrets_path).unwrap();
    std::fs::write(&secrets_path, format!("{secrets}EAB_HMAC={HMAC}\n")).unwrap();
    let stack = std::fs::read_to_string(p.path().join("stack.yaml")).unwrap();
    let anchor = "    secrets_file: .vldeploy/cluster/secrets.env\n    domain: localhost\n";
    assert!(stack.contains(anchor), "the cluster environment's domain");
    p.write_stack(&stack.replacen(
        anchor,
        &format!(
            "    secrets_file: .vldeploy/cluster/secrets.env\n    domain: {DOMAIN}\n    tls:\n      acme:\n        directory: {}\n        email: ops@{DOMAIN}\n        eab_kid: {KID}\n        eab_hmac: ${{EAB_HMAC}}\n        ca_bundle: {}\n",
            pebble.directory,
            pebble.listener_ca.display()
        ),
        1,
    ));
    Setup {
        stack,
        secrets,
        https,
        root: p.path().join("pebble-local/root.pem"),
    }
}

/// `up` issues one certificate that both edges serve; a second `up` orders nothing. Returns its serial.
fn issued_once(p: &Project, nodes: &[Node], pebble: &LocalPebble, setup: &Setup) -> String {
    let started = Instant::now();
    let up = p.vldeploy(&["--env", "cluster", "up"]);
    assert_eq!(up.code, 0, "{}\npebble:\n{}", up.all(), pebble.logs());
    eprintln!(
        "timing: up -e cluster with a certificate issued for both edges in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut secret_values = p.cluster_secret_values();
    secret_values.push(HMAC.to_owned());
    for secret in &secret_values {
        assert!(
            !up.all().contains(secret.as_str()),
            "a secret was printed by `up`"
        );
    }
    assert!(up.all().contains("on 2 edges"), "{}", up.all());
    assert_eq!(pebble.issued(), 1, "one order at the CA: {}", pebble.logs());
    std::fs::write(&setup.root, pebble.root()).unwrap();
    let certs: Vec<vldeploy::tls::CertInfo> = setup
        .https
        .iter()
        .map(|port| served_when(*port, |c| !c.placeholder))
        .collect();
    assert_eq!(
        certs[0].serial, certs[1].serial,
        "both edges serve one certificate"
    );
    assert!(!certs[0].placeholder, "{:?}", certs[0]);
    assert!(certs[0].issuer.contains("Pebble"), "{:?}", certs[0]);
    for port in &setup.https {
        let (code, body) = https_get(*port, &setup.root, "/api/health");
        assert_eq!(code, 200, "https /api/health on {port}: {body}");
    }
    // The account and the renewal status live on the first edge, private.
    let kept = ssh_ok(
        &nodes[0],
        &format!(
            "stat -c %a /var/lib/vldeploy/{0}/tls/account.json /var/lib/vldeploy/{0}/tls/status.json",
            p.name
        ),
    );
    assert_eq!(kept, "600\n600", "{kept}");

    // A second `up` issues nothing and changes nothing.
    let started = Instant::now();
    let again = p.vldeploy(&["--env", "cluster", "up"]).ok();
    assert!(
        again.stdout.ends_with("on 3 hosts: no changes\n"),
        "{}",
        again.all()
    );
    eprintln!(
        "timing: second up -e cluster (nothing due) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(pebble.issued(), 1, "the second `up` ordered nothing");
    let status = p.vldeploy(&["--env", "cluster", "certs", "status"]).ok();
    for node in &nodes[..2] {
        let line = format!("{}: certificate {} from ", node.login.port, certs[0].serial);
        assert!(status.stdout.contains(&line), "{line}: {}", status.all());
    }
    assert!(!status.stdout.contains("DIFFERS"), "{}", status.all());
    certs[0].serial.clone()
}

/// A forced renewal orders once and is served by both edges; an edge whose certificate was replaced behind
/// vldeploy's back is named, and `certs renew` gives it the first edge's again without asking the CA.
fn renewed_everywhere(
    p: &Project,
    nodes: &[Node],
    pebble: &LocalPebble,
    setup: &Setup,
    first: &str,
) {
    let started = Instant::now();
    let renew = p
        .vldeploy(&["--env", "cluster", "certs", "renew", "--force"])
        .ok();
    eprintln!(
        "timing: certs renew --force on both edges in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(pebble.issued(), 2, "one more order: {}", renew.all());
    let serials: Vec<String> = setup
        .https
        .iter()
        .map(|port| served_when(*port, |c| c.serial != first).serial)
        .collect();
    assert_ne!(serials[0], first, "the renewed certificate is served");
    assert_eq!(serials[0], serials[1], "both edges serve the renewal");

    ssh_ok(
        &nodes[1],
        &format!(
            "cd /var/lib/vldeploy/{}/certs && ln -sfn \"$(readlink previous)\" current.new && mv -T current.new current",
            p.name
        ),
    );
    let differs = p.vldeploy(&["--env", "cluster", "certs", "status"]);
    assert_eq!(differs.code, 1, "{}", differs.all());
    assert!(
        differs
            .stdout
            .contains(&format!("certificate {first} from ")),
        "{}",
        differs.all()
    );
    assert!(
        differs.stdout.contains("— DIFFERS from edge"),
        "{}",
        differs.all()
    );
    let renew = p.vldeploy(&["--env", "cluster", "certs", "renew"]).ok();
    assert!(renew.all().contains("copied from"), "{}", renew.all());
    assert_eq!(
        served_when(setup.https[1], |c| c.serial == serials[0]).serial,
        serials[0]
    );
    assert_eq!(pebble.issued(), 2);
}

/// Every `(code, body)` of `path` through both edges' 443.
fn through_edges(setup: &Setup, path: &str) -> Vec<(u16, String)> {
    setup
        .https
        .iter()
        .map(|port| https_get(*port, &setup.root, path))
        .collect()
}

/// The maintenance page on both edges, kept by a later `up`; the backend keeps running behind it.
fn maintenance(p: &Project, nodes: &[Node], setup: &Setup) {
    let started = Instant::now();
    let on = p
        .vldeploy(&[
            "--env",
            "cluster",
            "maintenance",
            "on",
            "--message",
            "edge test",
        ])
        .ok();
    for node in &nodes[..2] {
        assert!(
            on.stdout
                .contains(&format!("{}: maintenance on", node.login.port)),
            "{}",
            on.all()
        );
    }
    let in_maintenance = |when: &str| {
        for (code, body) in through_edges(setup, "/api/health") {
            assert_eq!(code, 503, "maintenance {when}: {body}");
            assert!(body.contains("maintenance"), "{body}");
        }
        for (code, body) in through_edges(setup, "/") {
            assert_eq!(code, 200, "the static site still serves {when}: {body}");
        }
    };
    in_maintenance("after `maintenance on`");
    // doctor asks the API through each edge (following nginx's move to HTTPS) and names the page on both.
    let doctor = p.vldeploy(&["--env", "cluster", "doctor"]).ok();
    assert_eq!(
        doctor
            .stdout
            .matches("GET /api/health through nginx answered 503: the maintenance page")
            .count(),
        2,
        "{}",
        doctor.all()
    );
    let backend = ssh_ok(
        &nodes[0],
        &format!(
            "docker service ls --filter name={}_backend --format '{{{{.Replicas}}}}'",
            p.name
        ),
    );
    assert_eq!(backend, "2/2", "the backend stays up");
    let status = p
        .vldeploy(&["--env", "cluster", "maintenance", "status"])
        .ok();
    assert_eq!(
        status.stdout.matches("maintenance on").count(),
        2,
        "{}",
        status.all()
    );
    let up = p.vldeploy(&["--env", "cluster", "up"]).ok();
    in_maintenance(&format!("after a later `up`:\n{}", up.stdout));

    let off = p.vldeploy(&["--env", "cluster", "maintenance", "off"]).ok();
    assert_eq!(
        off.stdout.matches(": maintenance off").count(),
        2,
        "{}",
        off.all()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while through_edges(setup, "/api/health")
        .iter()
        .any(|(code, _)| *code != 200)
    {
        assert!(
            Instant::now() < deadline,
            "the shop after `off`: {:?}",
            through_edges(setup, "/api/health")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "timing: maintenance on, up, off on both edges in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The environment as the test found it (no `tls:`): `up` again, then plain HTTP through both edges.
fn restore(p: &Project, nodes: &[Node], setup: &Setup) {
    let started = Instant::now();
    p.write_stack(&setup.stack);
    std::fs::write(
        p.path().join(".vldeploy/cluster/secrets.env"),
        &setup.secrets,
    )
    .unwrap();
    p.vldeploy(&["--env", "cluster", "up"]).ok();
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in &nodes[..2] {
        loop {
            let code = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}"])
                .arg(format!("http://127.0.0.1:{}/api/health", node.http_port))
                .output()
                .unwrap();
            if code.stdout == b"200" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "plain HTTP through {} after dropping `tls:`: {}",
                node.http_port,
                String::from_utf8_lossy(&code.stdout)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    eprintln!(
        "timing: back to plain HTTP on both edges in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
