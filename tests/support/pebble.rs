//! Pebble (Let's Encrypt's test CA) running inside a project's sandbox host, with EAB required.
//!
//! Pebble runs on the sandbox host itself, so both `vldeploy up` (through the host) and the renewal job (on the
//! host, from cron) reach it on the host's loopback, and its validator reaches nginx's port 80 there. The
//! domain resolves to 127.0.0.1 through the host's `/etc/hosts`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};

use super::project::Project;

/// The EAB key id Pebble knows.
pub const KID: &str = "kid-1";
/// Its HMAC key, base64url without padding (32 bytes).
pub const HMAC: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
/// The directory URL as the sandbox host sees it.
pub const DIRECTORY: &str = "https://127.0.0.1:14000/dir";

pub struct Pebble {
    container: String,
    /// The CA of Pebble's listener certificate (what `ca_bundle` names).
    pub listener_ca: PathBuf,
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
        .unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    match issuer {
        None => {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(KeyUsage::new().critical().key_cert_sign().build().unwrap())
                .unwrap();
            b.sign(key, MessageDigest::sha256()).unwrap();
        }
        Some((ca, ca_key)) => {
            b.append_extension(BasicConstraints::new().critical().build().unwrap())
                .unwrap();
            b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
                .unwrap();
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .dns("localhost")
                .build(&b.x509v3_context(Some(ca), None))
                .unwrap();
            b.append_extension(san).unwrap();
            b.sign(ca_key, MessageDigest::sha256()).unwrap();
        }
    }
    b.build()
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

impl Pebble {
    /// Starts Pebble in `p`'s sandbox host. `validity_s` sets `certificateValidityPeriod`; `domain` is made to
    /// resolve to the host's loopback.
    pub fn start(p: &Project, domain: &str, validity_s: Option<u64>) -> Pebble {
        let container = format!("vldeploy-sandbox-{}", p.name);
        let dir = p.path().join("pebble");
        std::fs::create_dir_all(&dir).unwrap();
        write_listener_certs(&dir);
        let mut config = serde_json::json!({"pebble": {
            "listenAddress": "0.0.0.0:14000",
            "managementListenAddress": "127.0.0.1:15000",
            "certificate": "/opt/pebble/cert.pem",
            "privateKey": "/opt/pebble/key.pem",
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": true,
            "externalAccountMACKeys": {KID: HMAC, "kid-2": "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH"},
        }});
        if let Some(v) = validity_s {
            config["pebble"]["certificateValidityPeriod"] = v.into();
        }
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let run = |cmd: &str| {
            let out = docker(&["exec", &container, "sh", "-c", cmd]);
            assert!(
                out.status.success(),
                "`{cmd}` in the sandbox host failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run("mkdir -p /opt/pebble");
        for (from, to) in [
            ("/usr/bin/pebble".into(), "/opt/pebble/pebble"),
            (dir.join("config.json"), "/opt/pebble/config.json"),
            (dir.join("cert.pem"), "/opt/pebble/cert.pem"),
            (dir.join("key.pem"), "/opt/pebble/key.pem"),
        ] {
            let from: PathBuf = from;
            let out = docker(&[
                "cp",
                &from.display().to_string(),
                &format!("{container}:{to}"),
            ]);
            assert!(
                out.status.success(),
                "docker cp {}: {}",
                from.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        run(&format!(
            "grep -q ' {domain}$' /etc/hosts || echo '127.0.0.1 {domain}' >> /etc/hosts"
        ));
        let pebble = Pebble {
            container,
            listener_ca: dir.join("ca.pem"),
        };
        pebble.resume();
        pebble
    }

    /// Starts (again) the Pebble process; its state (accounts, roots) starts over.
    pub fn resume(&self) {
        let out = docker(&[
            "exec",
            "-d",
            &self.container,
            "sh",
            "-c",
            "echo $$ > /run/pebble.pid; cd /opt/pebble && PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 exec ./pebble -config config.json >> /var/log/pebble.log 2>&1",
        ]);
        assert!(
            out.status.success(),
            "starting pebble: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = docker(&[
                "exec",
                &self.container,
                "curl",
                "-sfk",
                "https://127.0.0.1:14000/dir",
            ]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pebble did not start: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Points the sandbox environment at this CA: `EAB_HMAC` set to `hmac` in the sandbox's secrets file, and
    /// `tls: acme` for `domain` with the key id `kid` and `ca_bundle` this listener's CA.
    pub fn use_in(&self, p: &Project, domain: &str, kid: &str, hmac: &str) {
        p.set_secret("EAB_HMAC", hmac);
        let ca = self.listener_ca.display().to_string();
        p.write_stack(&p.stack_yaml(|t| {
            *t = t.replacen(
                "    domain: localhost\n",
                &format!(
                    "    domain: {domain}\n    tls:\n      acme:\n        directory: {DIRECTORY}\n        email: ops@{domain}\n        eab_kid: {kid}\n        eab_hmac: ${{EAB_HMAC}}\n        ca_bundle: {ca}\n"
                ),
                1,
            );
        }));
    }

    /// Stops the Pebble process (the CA becomes unreachable).
    pub fn stop(&self) {
        let out = docker(&[
            "exec",
            &self.container,
            "sh",
            "-c",
            "kill $(cat /run/pebble.pid) && rm -f /run/pebble.pid",
        ]);
        assert!(
            out.status.success(),
            "stopping pebble: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The root that signs Pebble's certificates (it changes on every start).
    pub fn root(&self) -> Vec<u8> {
        let out = docker(&[
            "exec",
            &self.container,
            "curl",
            "-sfk",
            "https://127.0.0.1:15000/roots/0",
        ]);
        assert!(
            out.status.success(),
            "fetching pebble's root: {}",
            self.logs()
        );
        out.stdout
    }

    /// Pebble's log, for failure messages.
    pub fn logs(&self) -> String {
        let out = docker(&[
            "exec",
            &self.container,
            "tail",
            "-n",
            "60",
            "/var/log/pebble.log",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A free port on the loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Pebble (EAB required) running where the tests run, beside `pebble-challtestsrv` as its DNS server (every
/// name resolves to 127.0.0.1). Its validator fetches HTTP-01 tokens from `127.0.0.1:<http_port>`: one edge's
/// published port 80, so a token is only found if it was written on that edge. Both stop when dropped.
pub struct LocalPebble {
    children: Vec<std::process::Child>,
    /// The directory URL, as vldeploy (running here too) reaches it.
    pub directory: String,
    pub listener_ca: PathBuf,
    management: u16,
    log: PathBuf,
}

/// Writes a CA (`ca.pem`) and the listener's certificate for 127.0.0.1 it signed (`cert.pem`, `key.pem`) into `dir`.
fn write_listener_certs(dir: &std::path::Path) {
    let ca_key = key();
    let ca = cert("vldeploy test listener CA", &ca_key, None);
    let leaf_key = key();
    let leaf = cert("127.0.0.1", &leaf_key, Some((&ca, &ca_key)));
    std::fs::write(dir.join("ca.pem"), ca.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.to_pem().unwrap()).unwrap();
    std::fs::write(
        dir.join("key.pem"),
        leaf_key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
}

impl LocalPebble {
    pub fn start(p: &Project, http_port: u16) -> LocalPebble {
        let dir = p.path().join("pebble-local");
        std::fs::create_dir_all(&dir).unwrap();
        write_listener_certs(&dir);
        let (listen, management, dns, dns_management) =
            (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.join("cert.pem"),
            "privateKey": dir.join("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": true,
            "externalAccountMACKeys": {KID: HMAC},
        }});
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let log = dir.join("pebble.log");
        let out = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap()
        };
        let dns_server = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(out())
            .stderr(out())
            .spawn()
            .expect("pebble-challtestsrv runs");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(dir.join("config.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(out())
            .stderr(out())
            .spawn()
            .expect("pebble runs");
        let pebble = LocalPebble {
            children: vec![dns_server, pebble],
            directory: format!("https://127.0.0.1:{listen}/dir"),
            listener_ca: dir.join("ca.pem"),
            management,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Command::new("curl")
            .args(["-sfk", "-o", "/dev/null", &pebble.directory])
            .status()
            .map_or(true, |s| !s.success())
        {
            assert!(
                Instant::now() < deadline,
                "pebble did not start: {}",
                pebble.logs()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        pebble
    }

    /// The root that signs its certificates.
    pub fn root(&self) -> Vec<u8> {
        let out = Command::new("curl")
            .args([
                "-sfk",
                &format!("https://127.0.0.1:{}/roots/0", self.management),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fetching pebble's root: {}",
            self.logs()
        );
        out.stdout
    }

    /// How many certificates it has issued.
    pub fn issued(&self) -> usize {
        self.logs_all().matches("Issued certificate serial").count()
    }

    fn logs_all(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The end of its log, for failure messages.
    pub fn logs(&self) -> String {
        let all = self.logs_all();
        let lines: Vec<&str> = all.lines().rev().take(60).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for LocalPebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
