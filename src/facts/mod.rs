//! Reading the host: containers, networks, volumes, images, managed files, what nginx last loaded, the
//! firewall and the certificate.

mod hash_key;

use std::collections::BTreeMap;

use futures_util::future::join_all;

pub use hash_key::{
    ephemeral as ephemeral_hash_key, key_path as hash_key_path, read as read_hash_key,
    read_or_create as hash_key,
};

use crate::engine::{Engine, EngineError};
use crate::firewall::Observed;
use crate::layout::loaded_marker;
use crate::plan::{Desired, Facts, ObservedCertificate};
use crate::remote::Command;
use crate::transport::{Remote, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(
        "the hash key `{path}` on `{host}` is unreadable (not 64 hex digits)\n  help: remove it; the next `vldeploy up` makes a new one (containers with secrets are then re-created once)"
    )]
    HashKey { host: String, path: String },
    #[error("no random bytes for a new hash key: {0}")]
    Random(String),
    /// Something exists on the host but could not be read: never taken as missing.
    #[error(
        "could not read {what} on `{host}`: {detail}\n  help: vldeploy must be able to read it to plan (connect as root, or fix its permissions); nothing was changed"
    )]
    Unreadable {
        host: String,
        what: String,
        detail: String,
    },
}

/// The facts, and the firewall as observed (the firewall's safe apply starts from the same reading).
#[derive(Debug, Clone)]
pub struct Gathered {
    pub facts: Facts,
    pub firewall: Observed,
}

/// Gathers what the planner needs to compare `desired` with the host: the Docker objects through the engine,
/// and everything else (managed files, loaded markers, the firewall, the certificate) in one command.
pub async fn gather(
    remote: &Remote,
    engine: &Engine,
    desired: &Desired,
) -> Result<Gathered, FactsError> {
    let stack = desired.stack.as_str();
    let image_checks = join_all(
        desired
            .images
            .iter()
            .map(|i| async move { (i.id.clone(), engine.has_image(&i.id).await) }),
    );
    let script = host_script(desired);
    let (networks, volumes, containers, images, host) = tokio::join!(
        engine.stack_networks(stack),
        engine.stack_volumes(stack),
        engine.stack_containers(stack),
        image_checks,
        remote.exec(&script),
    );
    let mut facts = Facts {
        networks: networks?.into_iter().collect(),
        volumes: volumes?.into_iter().collect(),
        containers: containers?,
        now: crate::state::now(),
        ..Facts::default()
    };
    for (id, present) in images {
        if present? {
            facts.images.insert(id);
        }
    }
    let out = host?;
    let name = remote.name().to_string();
    if out.status != 0 {
        return Err(FactsError::Unreadable {
            host: name,
            what: "the managed files, the firewall and the certificate".into(),
            detail: format!(
                "the command exited with {}: {}",
                out.status,
                out.stderr_tail(5)
            ),
        });
    }
    let read = parse_host(&String::from_utf8_lossy(&out.stdout));
    if let Some(path) = read.unreadable.first() {
        return Err(FactsError::Unreadable {
            host: name,
            what: format!("`{path}`"),
            detail: "it exists, but reading it failed (permission denied?)".into(),
        });
    }
    let firewall = Observed::parse(&read.firewall);
    if firewall.nft && !firewall.root {
        return Err(FactsError::Unreadable {
            host: name,
            what: format!("the nftables table `{}`", crate::firewall::TABLE),
            detail: "listing nftables tables needs root, and vldeploy does not connect as root"
                .into(),
        });
    }
    if let Some(e) = &firewall.unreadable {
        return Err(FactsError::Unreadable {
            host: name,
            what: format!("the nftables table `{}`", crate::firewall::TABLE),
            detail: format!("`nft list tables` failed: {e}"),
        });
    }
    facts.firewall = Some(firewall.facts());
    if let Some(pem) = &read.certificate {
        facts.certificate = Some(certificate(pem).map_err(|detail| FactsError::Unreadable {
            host: name.clone(),
            what: format!(
                "the certificate `{}`",
                crate::tls::current_chain_path(stack)
            ),
            detail,
        })?);
    }
    if desired.containers.iter().any(|c| c.release_alias.is_some()) {
        facts.releases = Some(last_releases(read.releases.as_deref()).map_err(|detail| {
            FactsError::Unreadable {
                host: name.clone(),
                what: format!(
                    "the release history `{}`",
                    crate::rollout::history_path(stack)
                ),
                detail,
            }
        })?);
    }
    facts.files = read.files;
    facts.loaded = read.loaded;
    facts.site = read.site;
    Ok(Gathered { facts, firewall })
}

/// Per service, the id of its newest release in the history (`None`: no history file yet).
fn last_releases(text: Option<&str>) -> Result<BTreeMap<String, String>, String> {
    let Some(text) = text else {
        return Ok(BTreeMap::new());
    };
    let history: crate::rollout::History =
        crate::state::store::decode(text.as_bytes()).map_err(|e| match e {
            crate::state::store::Undecodable::Corrupt(e) => {
                format!("it is not a release history: {e}")
            }
            crate::state::store::Undecodable::Newer(v) => {
                format!("it was written by a newer vldeploy (format version {v}): upgrade vldeploy")
            }
        })?;
    Ok(history
        .releases
        .into_iter()
        .map(|r| (r.service, r.id))
        .collect())
}

fn certificate(pem: &str) -> Result<ObservedCertificate, String> {
    crate::tls::observed_certificate(pem.as_bytes()).map_err(|e| e.to_string())
}

/// The one command that reads the host: for each managed file `file HASH PATH`, `missing PATH` or
/// `unreadable PATH`; each service's loaded marker as `loaded SERVICE HASH`; the firewall's observation
/// between `--firewall` and `--end`; the installed certificate chain between `--certificate` and `--end`.
fn host_script(desired: &Desired) -> Command {
    let mut services: Vec<&str> = desired
        .files
        .iter()
        .filter_map(|f| f.reloads.as_deref())
        .collect();
    services.sort_unstable();
    services.dedup();
    let markers: Vec<(String, String)> = services
        .iter()
        .map(|s| ((*s).to_owned(), loaded_marker(&desired.stack, s)))
        .collect();
    let files: Vec<&str> = desired.files.iter().map(|f| f.path.as_str()).collect();
    let chain = desired
        .certificate
        .as_ref()
        .map(|_| crate::tls::current_chain_path(&desired.stack));
    let releases = desired
        .containers
        .iter()
        .any(|c| c.release_alias.is_some())
        .then(|| crate::rollout::history_path(&desired.stack));
    let site_link = desired
        .site
        .as_ref()
        .map(|_| crate::layout::site_current(&desired.stack));
    crate::remote::facts::host_read(&crate::remote::facts::HostRead {
        files: &files,
        markers: &markers,
        certificate_chain: chain.as_deref(),
        releases: releases.as_deref(),
        site_link: site_link.as_deref(),
    })
}

/// What the one command printed.
#[derive(Debug, Default, PartialEq, Eq)]
struct HostRead {
    files: BTreeMap<String, String>,
    loaded: BTreeMap<String, String>,
    unreadable: Vec<String>,
    firewall: String,
    certificate: Option<String>,
    releases: Option<String>,
    site: Option<String>,
}

fn parse_host(text: &str) -> HostRead {
    let mut read = HostRead::default();
    let mut section: Option<&str> = None;
    for line in text.lines() {
        match (section, line) {
            (None, "--firewall") => section = Some("firewall"),
            (None, "--certificate") => {
                section = Some("certificate");
                read.certificate = Some(String::new());
            }
            (None, "--releases") => {
                section = Some("releases");
                read.releases = Some(String::new());
            }
            (Some(_), "--end") => section = None,
            (Some("firewall"), l) => {
                read.firewall.push_str(l);
                read.firewall.push('\n');
            }
            (Some(which), l) => {
                let text = if which == "releases" {
                    read.releases.as_mut()
                } else {
                    read.certificate.as_mut()
                };
                if let Some(t) = text {
                    t.push_str(l);
                    t.push('\n');
                }
            }
            (None, l) => {
                let (kind, rest) = l.split_once(' ').unwrap_or((l, ""));
                match kind {
                    "file" => {
                        if let Some((hash, path)) = rest.split_once(' ') {
                            read.files.insert(path.to_string(), hash.to_string());
                        }
                    }
                    "loaded" => {
                        if let Some((service, hash)) = rest.split_once(' ')
                            && !hash.trim().is_empty()
                        {
                            read.loaded
                                .insert(service.to_string(), hash.trim().to_string());
                        }
                    }
                    "unreadable" => read.unreadable.push(rest.to_string()),
                    "site" if !rest.trim().is_empty() => read.site = Some(rest.trim().to_string()),
                    _ => {}
                }
            }
        }
    }
    read
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_hashes_markers_the_firewall_and_the_certificate() {
        let text = "file abc /var/lib/vldeploy/s/nginx/conf.d/site.conf\nmissing /etc/cron.d/vldeploy-s-backup\n\
                    file def /var/lib/vldeploy/s/www/index.html\nloaded nginx 1234\nloaded other \n\
                    --firewall\nnft=yes\ntable=yes\n--end\n--certificate\n-----BEGIN CERTIFICATE-----\nMII\n--end\n";
        let read = parse_host(text);
        assert_eq!(
            read,
            HostRead {
                files: [
                    (
                        "/var/lib/vldeploy/s/nginx/conf.d/site.conf".into(),
                        "abc".into()
                    ),
                    ("/var/lib/vldeploy/s/www/index.html".into(), "def".into()),
                ]
                .into(),
                loaded: [("nginx".into(), "1234".into())].into(),
                unreadable: vec![],
                firewall: "nft=yes\ntable=yes\n".into(),
                certificate: Some("-----BEGIN CERTIFICATE-----\nMII\n".into()),
                releases: None,
                site: None,
            }
        );
    }

    #[test]
    fn the_newest_release_of_each_service_is_the_last_in_the_history() {
        let read = parse_host(
            "--firewall\n--end\n--releases\n{\"releases\": [\n{\"id\": \"backend-a\", \"service\": \"backend\", \"image_id\": \"i\", \"image_ref\": \"r\", \"created\": 1, \"actor\": \"ops\"},\n{\"id\": \"backend-b\", \"service\": \"backend\", \"image_id\": \"i\", \"image_ref\": \"r\", \"created\": 2, \"actor\": \"ops\"}\n]}\n--end\n",
        );
        assert_eq!(
            last_releases(read.releases.as_deref()).unwrap(),
            [("backend".to_string(), "backend-b".to_string())].into()
        );
        assert_eq!(last_releases(None).unwrap(), BTreeMap::new());
        // What the state store writes: the history inside its versioned envelope.
        let stored = crate::state::store::encode(&crate::rollout::History {
            releases: vec![crate::rollout::Release {
                id: "backend-c".into(),
                service: "backend".into(),
                image_id: "i".into(),
                image_ref: "r".into(),
                created: 3,
                actor: "ops".into(),
                git: None,
            }],
        });
        assert_eq!(
            last_releases(Some(&String::from_utf8(stored).unwrap())).unwrap(),
            BTreeMap::from([("backend".to_string(), "backend-c".to_string())])
        );
        assert!(
            last_releases(Some("{not json"))
                .unwrap_err()
                .starts_with("it is not a release history: ")
        );
    }

    #[test]
    fn an_unreadable_file_is_named_not_taken_as_missing() {
        let read =
            parse_host("unreadable /var/lib/vldeploy/s/backup/backup.sh\n--firewall\n--end\n");
        assert_eq!(
            read.unreadable,
            vec!["/var/lib/vldeploy/s/backup/backup.sh".to_string()]
        );
        assert!(read.files.is_empty() && read.certificate.is_none());
    }

    #[test]
    fn the_script_reads_files_markers_firewall_and_certificate_and_sh_parses_it() {
        let desired = Desired {
            stack: "s".into(),
            files: vec![crate::plan::DesiredFile {
                path: "/var/lib/vldeploy/s/nginx/it's.conf".into(),
                hash: String::new(),
                mode: 0o644,
                content: vec![],
                reloads: Some("nginx".into()),
            }],
            certificate: Some(crate::plan::DesiredCertificate {
                domains: vec!["shop.test".into()],
                provided: None,
            }),
            ..Desired::default()
        };
        let script = host_script(&desired).text().to_owned();
        assert!(
            script.starts_with(
                "if [ -e '/var/lib/vldeploy/s/nginx/it'\\''s.conf' ]; then if h=$(sha256sum < '/var/lib/vldeploy/s/nginx/it'\\''s.conf'); then printf 'file %s %s\\n' \"${h%% *}\" '/var/lib/vldeploy/s/nginx/it'\\''s.conf'; "
            ),
            "{script}"
        );
        assert!(script.contains("echo --firewall; "), "{script}");
        assert!(
            script.contains("/var/lib/vldeploy/s/certs/current/fullchain.pem"),
            "{script}"
        );
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn the_script_run_by_sh_reports_present_missing_and_unreadable_files() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("present");
        std::fs::write(&present, b"hello").unwrap();
        let unreadable = dir.path().join("a-directory");
        std::fs::create_dir(&unreadable).unwrap();
        let file = |p: &std::path::Path| crate::plan::DesiredFile {
            path: p.display().to_string(),
            hash: String::new(),
            mode: 0o644,
            content: vec![],
            reloads: None,
        };
        let desired = Desired {
            stack: "s".into(),
            files: vec![
                file(&present),
                file(&dir.path().join("missing")),
                file(&unreadable),
            ],
            ..Desired::default()
        };
        let out = std::process::Command::new("sh")
            .args(["-c", host_script(&desired).text()])
            .output()
            .unwrap();
        let read = parse_host(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            read.files,
            [(
                present.display().to_string(),
                crate::plan::content_hash(b"hello")
            )]
            .into()
        );
        assert_eq!(read.unreadable, vec![unreadable.display().to_string()]);
    }
}
