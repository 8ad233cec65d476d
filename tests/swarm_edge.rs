//! Certificates and the maintenance page on every edge of the cluster: one certificate issued by Pebble (EAB
//! required, running here) whose validator reaches only the second edge, served through both edges; a second
//! `up` issues nothing; `maintenance on|off -e cluster` on both edges while the backend keeps running.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::pebble::{HMAC, KID, LocalPebble};
use crate::support::project::Project;
use crate::support::ssh::ssh_ok;

const DOMAIN: &str = "shop.test";

/// `curl` over HTTPS through the edge whose 443 is published on `port`, trusting only `root`.
fn https_get(port: u16, root: &std::path::Path, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{DOMAIN}:{port}:127.0.0.1")])
        .args(["-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("https://{DOMAIN}:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// The certificate served on `port`, by a real handshake.
fn served(port: u16) -> vldeploy::tls::CertInfo {
    let addr = format!("127.0.0.1:{port}");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(vldeploy::tls::served_certificate(&addr, DOMAIN))
        .unwrap_or_else(|e| panic!("handshake with {addr}: {e}"))
}

pub(crate) fn check(p: &Project, nodes: &[crate::swarm::Node]) {
    let started = Instant::now();
    let env = std::fs::read_to_string(p.path().join(".vldeploy/cluster/cluster.env")).unwrap();
    let vars: BTreeMap<&str, &str> = env.lines().filter_map(|l| l.split_once('=')).collect();
    let https: Vec<u16> = (1..=2)
        .map(|i| {
            vars[format!("CLUSTER_NODE{i}_HTTPS_PORT").as_str()]
                .parse()
                .unwrap()
        })
        .collect();
    // The CA validates through the second edge only: the token must be there, not only on the first.
    let pebble = LocalPebble::start(p, nodes[1].http_port);
    let secrets = p.path().join(".vldeploy/cluster/secrets.env");
    let mut text = std::fs::read_to_string(&secrets).unwrap();
    text.push_str(&format!("EAB_HMAC={HMAC}\n"));
    std::fs::write(&secrets, text).unwrap();
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
            "a secret was printed: {}",
            up.all()
        );
    }
    assert!(up.all().contains("on 2 edges"), "{}", up.all());
    assert_eq!(pebble.issued(), 1, "one order at the CA: {}", pebble.logs());
    let root = p.path().join("pebble-local/root.pem");
    std::fs::write(&root, pebble.root()).unwrap();
    let certs: Vec<vldeploy::tls::CertInfo> = https.iter().map(|port| served(*port)).collect();
    assert_eq!(
        certs[0].serial, certs[1].serial,
        "both edges serve one certificate"
    );
    assert!(!certs[0].placeholder, "{:?}", certs[0]);
    assert!(certs[0].issuer.contains("Pebble"), "{:?}", certs[0]);
    for port in &https {
        let (code, body) = https_get(*port, &root, "/api/health");
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
    let again = p.vldeploy(&["--env", "cluster", "up"]).ok();
    assert!(
        again.stdout.ends_with("on 3 hosts: no changes\n"),
        "{}",
        again.all()
    );
    assert_eq!(pebble.issued(), 1, "the second `up` ordered nothing");
    let status = p.vldeploy(&["--env", "cluster", "certs", "status"]).ok();
    for node in &nodes[..2] {
        let line = format!("{}: certificate {} from ", node.login.port, certs[0].serial);
        assert!(status.stdout.contains(&line), "{line}: {}", status.all());
    }
    assert!(!status.stdout.contains("DIFFERS"), "{}", status.all());

    // An edge whose certificate was replaced behind vldeploy's back is named, and `certs renew` gives it the
    // first edge's again, without asking the CA.
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
        differs.stdout.contains("(placeholder) — DIFFERS from edge"),
        "{}",
        differs.all()
    );
    let renew = p.vldeploy(&["--env", "cluster", "certs", "renew"]).ok();
    assert!(renew.all().contains("copied from"), "{}", renew.all());
    assert_eq!(served(https[1]).serial, certs[0].serial);
    assert_eq!(pebble.issued(), 1);

    // The maintenance page on both edges; the backend keeps running behind it.
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
    for port in &https {
        let (code, body) = https_get(*port, &root, "/api/health");
        assert_eq!(code, 503, "maintenance through {port}: {body}");
        assert!(body.contains("maintenance"), "{body}");
        let (code, _) = https_get(*port, &root, "/");
        assert_eq!(code, 200, "the static site still serves through {port}");
    }
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
    let off = p.vldeploy(&["--env", "cluster", "maintenance", "off"]).ok();
    assert_eq!(
        off.stdout.matches(": maintenance off").count(),
        2,
        "{}",
        off.all()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in &https {
        loop {
            let (code, body) = https_get(*port, &root, "/api/health");
            if code == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the shop through {port} after `off`: {code} {body}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    eprintln!(
        "timing: maintenance on and off on both edges in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
