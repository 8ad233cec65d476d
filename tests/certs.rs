//! Certificates end to end: `up` with `tls: acme` against Pebble (EAB required) inside a sandbox host,
//! refusals that leave the served certificate alone, and the renewal job on the host.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::pebble::{HMAC, KID, Pebble};
use crate::support::project::{self, As, Project};
use crate::support::ssh::no_secret;

const DOMAIN: &str = "shop.test";
/// A valid base64url key that Pebble does not know for `kid-2`.
const WRONG_HMAC: &str = "V3JvbmdXcm9uZ1dyb25nV3JvbmdXcm9uZ1dyb25nV3Jvbmc";

fn https_port(p: &Project) -> String {
    p.sandbox_var("SANDBOX_HTTPS_PORT")
}

/// `curl` over HTTPS to the sandbox's nginx, trusting only Pebble's root: status and body.
fn https_get(p: &Project, root: &std::path::Path, path: &str) -> (u16, String) {
    let port: u16 = https_port(p).parse().unwrap();
    project::https_get(DOMAIN, port, root, path)
}

/// The certificate nginx serves for the domain, by a real handshake.
fn served(p: &Project) -> vldeploy::tls::CertInfo {
    let addr = format!("127.0.0.1:{}", https_port(p));
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(vldeploy::tls::served_certificate(&addr, DOMAIN))
        .unwrap_or_else(|e| panic!("handshake with {addr}: {e}"))
}

fn save_root(p: &Project, pebble: &Pebble) -> std::path::PathBuf {
    let path = p.path().join("pebble/root.pem");
    std::fs::write(&path, pebble.root()).unwrap();
    path
}

fn status_json(p: &Project) -> serde_json::Value {
    let run = p.vldeploy(&["certs", "status", "-o", "json"]).ok();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// The flow, connected as `who`: `tests/as_deploy.rs` runs it as `deploy`, the user a real server has.
pub(crate) fn certs_up_issues_with_eab_serves_https_and_refusals_keep_the_served_certificate_as(
    who: As,
) {
    let p = Project::with_sandbox_as("certs_issue", who, &[]);
    let pebble = Pebble::start(&p, DOMAIN, None);
    pebble.use_in(&p, DOMAIN, KID, HMAC);

    let up = p.vldeploy(&["up"]);
    assert_eq!(
        up.code,
        0,
        "up failed\n{}\n--- pebble\n{}",
        up.all(),
        pebble.logs()
    );
    assert!(
        up.stdout
            .contains(&format!("certificate for {DOMAIN}: issued")),
        "{}",
        up.stdout
    );
    no_secret(&up, &[HMAC]);

    // HTTPS serves the shop with a certificate Pebble's root vouches for.
    let root = save_root(&p, &pebble);
    let (code, body) = https_get(&p, &root, "/api/health");
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["database"]["status"], "up", "{health}");
    let (code, body) = https_get(&p, &root, "/");
    assert_eq!(code, 200, "{body}");

    // Plain HTTP redirects, except the ACME path.
    let port = p.sandbox_var("SANDBOX_HTTP_PORT");
    let head = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "--max-time",
            "10",
        ])
        .arg(format!("http://127.0.0.1:{port}/api/health"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).into_owned();
    assert!(head.starts_with("301 https://"), "{head}");
    let (code, _) = p.http_get("/.well-known/acme-challenge/missing-token");
    assert_eq!(
        code, 404,
        "the challenge path is served from the webroot, not redirected"
    );

    let cert = served(&p);
    assert_eq!(cert.sans, vec![DOMAIN.to_string()]);
    assert_eq!(cert.key_type, "ecdsa-p256");
    assert!(!cert.placeholder);
    assert!(cert.issuer.contains("Pebble"), "{}", cert.issuer);

    // certs status: the same certificate, its expiry, when it renews.
    let status = status_json(&p);
    assert_eq!(
        status["certificate"]["serial"],
        cert.serial.as_str(),
        "{status}"
    );
    assert_eq!(
        status["certificate"]["not_after"], cert.not_after,
        "{status}"
    );
    assert!(
        status["status"]["last_renewal"].as_u64().is_some(),
        "{status}"
    );
    assert_eq!(status["job_installed"], true, "{status}");
    p.test()
        .args(["certs", "status"])
        .stdout_has("expires")
        .stdout_has(cert.serial.as_str())
        .stdout_has("last renewal  20")
        .run();

    // The account key is private and stored with its URL.
    let account = p.ssh(&format!(
        "stat -c %a /var/lib/vldeploy/{0}/tls/account.json /var/lib/vldeploy/{0}/tls/config.json && grep -c BEGIN /var/lib/vldeploy/{0}/tls/account.json && grep -o '\"url\": *\"[^\"]*\"' /var/lib/vldeploy/{0}/tls/account.json",
        p.name
    ));
    assert_eq!(account.code, 0, "{}", account.stderr);
    assert!(
        account.stdout.starts_with("600\n600\n1\n"),
        "{}",
        account.stdout
    );
    assert!(
        account.stdout.contains("https://127.0.0.1:14000/"),
        "{}",
        account.stdout
    );

    // A second up changes nothing and keeps the certificate.
    p.test().arg("up").stdout_has(p.converged()).run();
    assert_eq!(served(&p).serial, cert.serial);

    // A wrong EAB HMAC (new credentials need a new account): a clear error, nothing changed.
    pebble.use_in(&p, DOMAIN, "kid-2", WRONG_HMAC);
    p.test()
        .args(["certs", "renew", "--force"])
        .status(1)
        .stderr_has("refused the external account binding")
        .hides(WRONG_HMAC)
        .hides(HMAC)
        .run();
    assert_eq!(
        served(&p).serial,
        cert.serial,
        "the previous certificate is still served"
    );
    let (code, body) = https_get(&p, &root, "/api/health");
    assert_eq!(code, 200, "{body}");

    // A validation that fails (nginx no longer serves the token): no swap, the error names domain and URL.
    pebble.use_in(&p, DOMAIN, KID, HMAC);
    let broken = p.ssh(&format!(
        "sed -i 's#root /var/www/acme;#root /var/www/nowhere;#' /var/lib/vldeploy/{}/nginx/conf.d/site.conf && docker exec vl_nginx nginx -s reload",
        p.name
    ));
    assert_eq!(broken.code, 0, "{}", broken.stderr);
    p.test()
        .args(["certs", "renew", "--force"])
        .status(1)
        .stderr_has(format!("validation of `{DOMAIN}` failed"))
        .stderr_has(format!("http://{DOMAIN}/.well-known/acme-challenge/"))
        .run();
    assert_eq!(
        served(&p).serial,
        cert.serial,
        "no swap after a failed validation"
    );

    // Every entry of the host's audit log, and the job's log, are free of the HMAC keys.
    let logs = p.ssh(&format!(
        "cat /var/lib/vldeploy/{0}/audit.log /var/lib/vldeploy/{0}/tls/renew.log 2>/dev/null",
        p.name
    ));
    assert!(logs.stdout.contains("certs renew"), "{}", logs.stdout);
    assert!(!logs.stdout.contains(HMAC) && !logs.stdout.contains(WRONG_HMAC));
}

#[test]
fn certs_the_host_job_renews_on_schedule_without_dropping_requests_and_survives_a_ca_outage() {
    let p = Project::with_sandbox("certs_renewal");
    // 120 s certificates: due at half their life (60 s); cron checks every minute.
    let pebble = Pebble::start(&p, DOMAIN, Some(120));
    pebble.use_in(&p, DOMAIN, KID, HMAC);
    let up = p.vldeploy(&["up"]);
    assert_eq!(
        up.code,
        0,
        "up failed\n{}\n--- pebble\n{}",
        up.all(),
        pebble.logs()
    );
    let root = save_root(&p, &pebble);
    let first = served(&p);
    assert!(first.lifetime_s() <= 121, "{first:?}");

    // Requests keep flowing while the job renews: none fails.
    let deadline = Instant::now() + Duration::from_secs(360);
    let (mut requests, mut failures) = (0, Vec::new());
    let renewed = loop {
        let (code, body) = https_get(&p, &root, "/api/health");
        requests += 1;
        if code != 200 {
            failures.push(format!("{code}: {body}"));
        }
        let now = served(&p);
        if now.serial != first.serial {
            break now;
        }
        let job = p.ssh(&format!(
            "tail -n 5 /var/lib/vldeploy/{}/tls/renew.log",
            p.name
        ));
        assert!(
            Instant::now() < deadline,
            "the job did not renew in time\n{}\n--- pebble\n{}",
            job.stdout,
            pebble.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    // A few more requests right after the swap.
    for _ in 0..10 {
        let (code, body) = https_get(&p, &root, "/api/health");
        requests += 1;
        if code != 200 {
            failures.push(format!("{code}: {body}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {failures:?}",
        failures.len()
    );
    assert_eq!(renewed.sans, vec![DOMAIN.to_string()]);
    assert_eq!(renewed.key_type, "ecdsa-p256");

    let status = status_json(&p);
    assert_eq!(
        status["certificate"]["serial"],
        renewed.serial.as_str(),
        "{status}"
    );
    assert_eq!(status["status"]["last_result"], "ok", "{status}");
    p.test()
        .args(["certs", "status"])
        .stdout_has("last renewal  20")
        .run();
    let audit = p.audit();
    assert!(
        audit.iter().any(|e| e.to_string().contains("cron@")),
        "the job audits its renewals: {audit:?}"
    );

    // The CA goes away: at the next due time the job fails, backs off, and nginx keeps serving.
    pebble.stop();
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        let s = status_json(&p);
        if s["status"]["last_result"] == "failed" {
            break s;
        }
        assert!(Instant::now() < deadline, "no failed attempt recorded: {s}");
        std::thread::sleep(Duration::from_secs(5));
    };
    let error = status["status"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("unreachable"), "{status}");
    let next = status["status"]["next_attempt"].as_u64().unwrap();
    assert!(
        next > status["status"]["last_attempt"].as_u64().unwrap(),
        "{status}"
    );
    assert_eq!(
        served(&p).serial,
        renewed.serial,
        "the old certificate keeps serving"
    );
    p.test()
        .args(["certs", "status"])
        .stdout_has("next retry")
        .stdout_has("last error")
        .run();
}
