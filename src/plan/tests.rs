//! Planner tables: a desired state and host facts in, the exact steps out.

use std::collections::BTreeMap;

use super::*;
use crate::secret::Secret;

fn spec(service: &str, image: &str, deps: &[&str]) -> ContainerSpec {
    let mut env = BTreeMap::new();
    env.insert("RUST_LOG".to_string(), EnvEntry::Plain("info".into()));
    env.insert(
        "DB_PASSWORD".to_string(),
        EnvEntry::Secret(Secret::new("s3cret-value")),
    );
    let mut networks = BTreeMap::new();
    networks.insert("shop_private".to_string(), vec![service.to_string()]);
    ContainerSpec {
        service: service.into(),
        name: format!("vl_{service}"),
        image_id: format!("sha256:{image}"),
        image_ref: format!("vl/shop-{service}:{image}"),
        env,
        networks,
        mounts: vec![],
        publish: vec![],
        health: None,
        depends_on: deps.iter().map(|d| (*d).to_string()).collect(),
        release_alias: None,
        hash_key: Some(test_key()),
    }
}

fn test_key() -> HashKey {
    HashKey::from_bytes([7; 32])
}

/// The backend, released blue/green.
fn with_release(mut d: Desired) -> Desired {
    let backend = d
        .containers
        .iter_mut()
        .find(|c| c.service == "backend")
        .unwrap();
    let alias = format!("backend-{}", backend.config_hash());
    backend.release_alias = Some(alias);
    d
}

/// nginx's way to the backend: the same for every release.
fn upstream() -> DesiredFile {
    let body = "resolver 127.0.0.11 valid=1s ipv6=off;";
    DesiredFile {
        path: "/var/lib/vldeploy/shop/nginx/conf.d/00-upstream.conf".into(),
        hash: content_hash(body.as_bytes()),
        mode: 0o644,
        content: body.as_bytes().to_vec(),
        reloads: Some("nginx".into()),
    }
}

fn nginx_conf(body: &str) -> DesiredFile {
    DesiredFile {
        path: "/var/lib/vldeploy/shop/nginx/site.conf".into(),
        hash: content_hash(body.as_bytes()),
        mode: 0o644,
        content: body.as_bytes().to_vec(),
        reloads: Some("nginx".into()),
    }
}

fn desired() -> Desired {
    with_release(Desired {
        stack: "shop".into(),
        networks: vec!["shop_private".into(), "shop_public".into()],
        volumes: vec!["shop_pgdata".into()],
        images: ["postgres", "backend", "nginx"]
            .iter()
            .map(|s| DesiredImage {
                service: (*s).into(),
                id: format!("sha256:{s}1111111111111111"),
                reference: format!("vl/shop-{s}:1"),
                pulled: false,
            })
            .collect(),
        files: vec![nginx_conf("server { listen 80; }"), upstream()],
        containers: vec![
            spec("postgres", "postgres1111111111111111", &[]),
            spec("backend", "backend1111111111111111", &["postgres"]),
            spec("nginx", "nginx1111111111111111", &["backend"]),
        ],
        firewall: Some(RULESET.into()),
        certificate: Some(DesiredCertificate {
            domains: vec!["shop.test".into()],
            provided: None,
        }),
        site: None,
    })
}

/// The hash of the ruleset the stack asks for.
const RULESET: &str = "sha256:aaaaaaaaaaaaaaaa";

/// 2026-12-02 00:00 UTC: when the tests read the host.
const NOW: u64 = 1_796_169_600;
const DAY: u64 = 86_400;

/// A certificate from the CA for `shop.test`, 90 days long, issued 10 days before `NOW`.
fn issued() -> ObservedCertificate {
    let not_after = NOW + 80 * DAY;
    ObservedCertificate {
        serial: "0A1B2C".into(),
        fingerprint: "f1".into(),
        sans: vec!["shop.test".into()],
        not_after,
        renew_at: not_after - 30 * DAY,
        placeholder: false,
    }
}

fn observed(spec: &ContainerSpec) -> ObservedContainer {
    ObservedContainer {
        id: format!("id-{}", spec.name),
        name: spec.name.clone(),
        service: Some(spec.service.clone()),
        config_hash: Some(spec.config_hash()),
        aspects: spec
            .aspect_hashes()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        env_hashes: spec.env_hashes(),
        hash_key: spec.hash_key.as_ref().map(HashKey::id),
        image_id: spec.image_id.clone(),
        state: "running".into(),
        health: Some("healthy".into()),
        // A release that serves is on the serving network.
        networks: spec
            .networks
            .keys()
            .cloned()
            .chain(
                spec.release_alias
                    .as_ref()
                    .map(|_| crate::layout::serving_network("shop")),
            )
            .collect(),
    }
}

/// The facts of a host on which `desired` was fully applied.
fn converged(d: &Desired) -> Facts {
    Facts {
        networks: d.networks.iter().cloned().collect(),
        volumes: d.volumes.iter().cloned().collect(),
        images: d.images.iter().map(|i| i.id.clone()).collect(),
        containers: d.containers.iter().map(observed).collect(),
        files: d
            .files
            .iter()
            .map(|f| (f.path.clone(), f.hash.clone()))
            .collect(),
        loaded: [("nginx".to_string(), loaded_hash(d, "nginx"))]
            .into_iter()
            .collect(),
        firewall: d.firewall.as_ref().map(|h| RulesetFacts {
            loaded: true,
            live_hash: Some(h.clone()),
            edited: false,
            file_hash: Some(h.clone()),
            boot_disabled: false,
        }),
        certificate: d.certificate.as_ref().map(|_| issued()),
        releases: Some(
            d.containers
                .iter()
                .filter_map(|c| Some((c.service.clone(), c.release_alias.clone()?)))
                .collect(),
        ),
        site: d.site.as_ref().map(|s| s.hash.clone()),
        now: NOW,
    }
}

fn summaries(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| format!("{} {} ({})", s.sign(), s.summary(), s.reason()))
        .collect()
}

#[test]
fn converged_host_needs_nothing() {
    let d = desired();
    let p = plan(&d, &converged(&d));
    assert!(p.is_empty(), "{:?}", summaries(&p));
}

#[test]
fn empty_host_gets_everything_in_dependency_order() {
    let d = desired();
    let p = plan(&d, &Facts::default());
    assert_eq!(
        summaries(&p),
        vec![
            "+ create network `shop_private` (missing on the host)",
            "+ create network `shop_public` (missing on the host)",
            "+ create volume `shop_pgdata` (missing on the host)",
            "+ send images vl/shop-postgres:1 (postgres1111), vl/shop-backend:1 (backend11111), vl/shop-nginx:1 (nginx1111111) (the host lacks these image IDs)",
            "~ write `/var/lib/vldeploy/shop/nginx/site.conf` (missing on the host)",
            // nginx's way to the backend names no release: it is written with the site, before any container.
            "~ write `/var/lib/vldeploy/shop/nginx/conf.d/00-upstream.conf` (missing on the host)",
            "+ create container `vl_postgres` (not on the host)",
            "~ release `vl_backend` (blue/green) (not on the host)",
            "+ create container `vl_nginx` (not on the host)",
            "~ issue certificate for shop.test (no certificate is installed)",
            "~ apply firewall ruleset sha256:aaaaaaaaaaaaaaaa (no vldeploy firewall on the host)",
        ]
    );
}

#[test]
fn preparation_steps_run_at_once_and_each_container_after_its_dependencies() {
    let d = desired();
    let p = plan(&d, &Facts::default()).for_apply();
    assert!(p.steps[..6].iter().all(Step::is_preparation));
    assert!(!p.steps[6..].iter().any(Step::is_preparation));
    let waits = p.prerequisites(&d);
    let prep: Vec<usize> = (0..6).collect();
    // Networks, the volume, the images and the files together; postgres after them, the backend after
    // postgres; nginx resolves the backend per request, so it starts beside postgres and the backend.
    assert_eq!(
        waits[..6],
        vec![Vec::<usize>::new(); 6][..],
        "{:?}",
        summaries(&p)
    );
    assert_eq!(waits[6], prep, "postgres");
    assert_eq!(waits[7], [prep.clone(), vec![6]].concat(), "the backend");
    assert_eq!(waits[8], prep, "nginx");

    // Without the upstream file, nginx's `depends_on: [backend]` holds: after the backend (and not after
    // postgres, which it does not depend on).
    let mut plain = d.clone();
    plain
        .files
        .retain(|f| !f.path.ends_with("00-upstream.conf"));
    let waits = p.prerequisites(&plain);
    assert_eq!(
        waits[8],
        [prep.clone(), vec![7]].concat(),
        "nginx after the backend"
    );

    // A preparation step after a container step waits for every step that is not a preparation; a step
    // that is neither (a reload) waits for all before it.
    let mut mixed = p.clone();
    let file = mixed.steps[4].clone();
    mixed.steps.push(file);
    mixed.steps.push(Step::Reload {
        service: "nginx".into(),
        name: "vl_nginx".into(),
        reason: "its files changed".into(),
    });
    let waits = mixed.prerequisites(&d);
    assert_eq!(waits[9], vec![6, 7, 8], "{:?}", summaries(&mixed));
    assert_eq!(waits[10], (0..10).collect::<Vec<_>>());
    assert!(
        Plan {
            stack: "s".into(),
            steps: Vec::new()
        }
        .prerequisites(&d)
        .is_empty()
    );
}

#[test]
fn one_env_value_recreates_only_that_container_and_names_the_variable() {
    let d = desired();
    let facts = converged(&d);
    let mut d2 = d.clone();
    d2.containers[1]
        .env
        .insert("RUST_LOG".into(), EnvEntry::Plain("debug".into()));
    let p = plan(&with_release(d2), &facts);
    assert_eq!(
        summaries(&p),
        vec!["~ release `vl_backend` (blue/green) (env ~RUST_LOG)"]
    );
}

#[test]
fn a_changed_secret_is_named_but_never_shown() {
    let d = desired();
    let facts = converged(&d);
    let mut d2 = d.clone();
    d2.containers[0].env.insert(
        "DB_PASSWORD".into(),
        EnvEntry::Secret(Secret::new("n3w-secret-value")),
    );
    let p = plan(&d2, &facts);
    let human = p.render_human("root@h:22");
    let json = p.render_json("root@h:22").to_string();
    assert!(human.contains("env ~DB_PASSWORD"), "{human}");
    for out in [&human, &json] {
        assert!(
            !out.contains("n3w-secret-value") && !out.contains("s3cret-value"),
            "{out}"
        );
    }
}

#[test]
fn added_and_removed_env_vars_are_named() {
    let d = desired();
    let facts = converged(&d);
    let mut d2 = d.clone();
    d2.containers[1].env.remove("RUST_LOG");
    d2.containers[1]
        .env
        .insert("NEW_FLAG".into(), EnvEntry::Plain("1".into()));
    let p = plan(&with_release(d2), &facts);
    assert_eq!(
        summaries(&p)[0],
        "~ release `vl_backend` (blue/green) (env +NEW_FLAG -RUST_LOG)"
    );
}

#[test]
fn nginx_template_change_reloads_nginx_only() {
    let d = desired();
    let facts = converged(&d);
    let mut d2 = d.clone();
    d2.files[0] = nginx_conf("server { listen 80; gzip on; }");
    let p = plan(&d2, &facts);
    assert_eq!(
        summaries(&p),
        vec![
            "~ write `/var/lib/vldeploy/shop/nginx/site.conf` (content changed)",
            "~ reload `vl_nginx` (its configuration changed)",
        ]
    );
}

#[test]
fn config_written_but_never_loaded_is_reloaded() {
    // An earlier run wrote the file and was stopped before the reload.
    let d = desired();
    let mut facts = converged(&d);
    facts
        .loaded
        .insert("nginx".into(), "something-older".into());
    let p = plan(&d, &facts);
    assert_eq!(
        summaries(&p),
        vec!["~ reload `vl_nginx` (the running process has not loaded the current configuration)"]
    );
}

#[test]
fn new_image_recreates_with_both_ids_shown() {
    let d = desired();
    let facts = converged(&d);
    let mut d2 = d.clone();
    d2.images[1].id = "sha256:backend2222222222222222".into();
    d2.containers[1].image_id = "sha256:backend2222222222222222".into();
    let d2 = with_release(d2);
    let p = plan(&d2, &facts);
    assert_eq!(
        summaries(&p),
        vec![
            "+ send image vl/shop-backend:1 (backend22222) (the host lacks these image IDs)",
            "~ release `vl_backend` (blue/green) (image backend11111 → backend22222)",
        ]
    );
}

#[test]
fn images_present_on_the_host_are_not_sent() {
    let d = desired();
    let mut facts = Facts::default();
    facts.images.insert(d.images[0].id.clone());
    facts.images.insert(d.images[2].id.clone());
    let p = plan(&d, &facts);
    let send: Vec<&Step> = p
        .steps
        .iter()
        .filter(|s| matches!(s, Step::TransferImages { .. }))
        .collect();
    assert_eq!(send.len(), 1);
    assert_eq!(
        send[0].summary(),
        "send image vl/shop-backend:1 (backend11111)"
    );
}

#[test]
fn pulled_images_are_pulled_by_the_host() {
    let mut d = desired();
    d.images[0].pulled = true;
    let mut facts = converged(&d);
    facts.images.clear();
    let p = plan(&d, &facts);
    assert_eq!(p.steps[0].summary(), "pull image `vl/shop-postgres:1`");
    assert!(matches!(p.steps[1], Step::TransferImages { ref images } if images.len() == 2));
}

#[test]
fn stopped_container_is_started_not_recreated() {
    let d = desired();
    let mut facts = converged(&d);
    facts.containers[0].state = "exited".into();
    let p = plan(&d, &facts);
    assert_eq!(
        summaries(&p),
        vec!["~ start container `vl_postgres` (it is exited)"]
    );
}

#[test]
fn interrupted_run_leftovers_are_removed_last() {
    let d = desired();
    let mut facts = converged(&d);
    facts.containers.remove(1);
    facts.containers.push(ObservedContainer {
        id: "x".into(),
        name: "vl_backend_candidate".into(),
        service: Some("backend".into()),
        state: "created".into(),
        ..ObservedContainer::default()
    });
    facts.containers.push(ObservedContainer {
        id: "y".into(),
        name: "vl_redis".into(),
        service: Some("redis".into()),
        state: "running".into(),
        ..ObservedContainer::default()
    });
    let p = plan(&d, &facts);
    assert_eq!(
        summaries(&p),
        vec![
            // The release replaces its own candidate (a gated first launch keeps one on purpose).
            "~ release `vl_backend` (blue/green) (not on the host)",
            "- remove container `vl_redis` (service `redis` is no longer in the stack)",
        ]
    );
}

#[test]
fn a_leftover_candidate_without_a_release_is_removed() {
    let d = desired();
    let mut facts = converged(&d);
    facts.containers.push(ObservedContainer {
        id: "x".into(),
        name: "vl_backend_candidate".into(),
        service: Some("backend".into()),
        state: "exited".into(),
        ..ObservedContainer::default()
    });
    assert_eq!(
        summaries(&plan(&d, &facts)),
        vec![
            "- remove container `vl_backend_candidate` (a leftover of service `backend` (an interrupted run))"
        ]
    );
}

#[test]
fn container_without_recorded_config_is_recreated() {
    let d = desired();
    let mut facts = converged(&d);
    facts.containers[2].config_hash = None;
    facts.containers[2].aspects.clear();
    let p = plan(&d, &facts);
    assert_eq!(
        summaries(&p),
        vec![
            "~ recreate container `vl_nginx` (created by an older vldeploy (no recorded configuration))"
        ]
    );
}

#[test]
fn published_port_change_is_named() {
    let d = desired();
    let facts = converged(&d);
    let mut d2 = d.clone();
    d2.containers[2].publish.push(Publish {
        host_ip: None,
        host_port: 8443,
        container_port: 443,
    });
    let p = plan(&d2, &facts);
    assert_eq!(
        summaries(&p),
        vec!["~ recreate container `vl_nginx` (ports changed)"]
    );
}

#[test]
fn recreated_nginx_is_not_also_reloaded() {
    let d = desired();
    let facts = converged(&d);
    let mut d2 = d.clone();
    d2.files[0] = nginx_conf("server { listen 81; }");
    d2.containers[2].image_id = "sha256:nginx2".into();
    d2.containers[1].image_id = "sha256:backend2".into();
    let p = plan(&d2, &facts);
    assert!(
        !p.steps.iter().any(|s| matches!(s, Step::Reload { .. })),
        "{:?}",
        summaries(&p)
    );
}

#[test]
fn missing_network_and_volume_are_created_alone() {
    let d = desired();
    let mut facts = converged(&d);
    facts.networks.remove("shop_public");
    facts.volumes.clear();
    let p = plan(&d, &facts);
    assert_eq!(
        summaries(&p),
        vec![
            "+ create network `shop_public` (missing on the host)",
            "+ create volume `shop_pgdata` (missing on the host)",
        ]
    );
}

#[test]
fn human_rendering_aligns_reasons_and_json_counts_changes() {
    let d = desired();
    let facts = converged(&d);
    let mut d2 = d.clone();
    d2.containers[0]
        .env
        .insert("RUST_LOG".into(), EnvEntry::Plain("debug".into()));
    d2.files[0] = nginx_conf("server { listen 8080; }");
    let p = plan(&d2, &facts);
    assert_eq!(
        p.render_human("root@127.0.0.1:2222"),
        "root@127.0.0.1:2222: 3 changes\n  ~ write `/var/lib/vldeploy/shop/nginx/site.conf`  (content changed)\n  ~ recreate container `vl_postgres`                (env ~RUST_LOG)\n  ~ reload `vl_nginx`                               (its configuration changed)\n"
    );
    let json = p.render_json("t");
    assert_eq!(json["changes"], 3);
    assert_eq!(json["steps"][1]["action"], "recreate_container");
    assert_eq!(json["steps"][1]["reason"], "env ~RUST_LOG");
    assert_eq!(
        plan(&d, &facts).render_human("t"),
        "t: no changes; the host matches the stack.\n"
    );
}

#[test]
fn config_hash_is_stable_and_sensitive() {
    let a = spec("backend", "x", &[]);
    let b = spec("backend", "x", &[]);
    assert_eq!(a.config_hash(), b.config_hash());
    let mut c = b.clone();
    c.mounts.push(Mount {
        source: MountSource::Volume("v".into()),
        target: "/d".into(),
        read_only: false,
    });
    assert_ne!(a.config_hash(), c.config_hash());
    let mut e = b.clone();
    e.health = Some(Health {
        test: vec!["CMD".into(), "true".into()],
        interval_ms: 1,
        timeout_ms: 1,
        retries: 1,
    });
    assert_ne!(a.config_hash(), e.config_hash());
}

#[test]
fn a_release_changes_no_nginx_file_and_reloads_nothing() {
    let d = desired();
    let facts = converged(&d);
    let mut d2 = d.clone();
    d2.containers[1]
        .env
        .insert("FEATURE".into(), EnvEntry::Plain("on".into()));
    let d2 = with_release(d2);
    let p = plan(&d2, &facts);
    // nginx resolves the stable name the release moves into: no file to write, no reload.
    assert_eq!(
        summaries(&p),
        vec!["~ release `vl_backend` (blue/green) (env +FEATURE)"]
    );
}

#[test]
fn a_release_outside_the_stable_name_is_put_in_service() {
    // A host set up by an older vldeploy: the live backend is not on the serving network nginx resolves.
    let d = desired();
    let mut facts = converged(&d);
    facts.containers[1].networks.retain(|n| n != "shop_serving");
    assert_eq!(
        summaries(&plan(&d, &facts)),
        vec!["~ release `vl_backend` (blue/green) (it is not in service: nginx does not reach it)"]
    );
}

#[test]
fn an_upstream_changed_on_the_host_is_written_and_reloaded() {
    let d = desired();
    let mut facts = converged(&d);
    facts.files.insert(
        "/var/lib/vldeploy/shop/nginx/conf.d/00-upstream.conf".into(),
        "old".into(),
    );
    assert_eq!(
        summaries(&plan(&d, &facts)),
        vec![
            "~ write `/var/lib/vldeploy/shop/nginx/conf.d/00-upstream.conf` (content changed)",
            "~ reload `vl_nginx` (its configuration changed)",
        ]
    );
}

#[test]
fn a_stopped_backend_is_released_not_just_started() {
    let d = desired();
    let mut facts = converged(&d);
    facts.containers[1].state = "exited".into();
    let p = plan(&d, &facts);
    assert_eq!(
        summaries(&p),
        vec!["~ release `vl_backend` (blue/green) (it is exited)"]
    );
}

#[test]
fn containers_whose_labels_hash_secrets_without_the_key_are_replaced_once_and_say_why() {
    let d = desired();
    let mut facts = converged(&d);
    // Labels written before secrets were keyed: no key id, the secret's plain SHA-256.
    for (c, spec) in facts.containers.iter_mut().zip(&d.containers) {
        let mut old = spec.clone();
        old.hash_key = None;
        let legacy = crate::layout::short_hash("DB_PASSWORD=s3cret-value");
        c.env_hashes = old.env_hashes();
        c.env_hashes.insert("DB_PASSWORD".into(), legacy);
        c.hash_key = None;
        c.config_hash = Some("legacy".into());
        c.aspects.insert("env".into(), "legacy".into());
    }
    let p = plan(&with_release(d.clone()), &facts);
    let reasons: Vec<String> = p.steps.iter().map(Step::reason).collect();
    assert_eq!(
        reasons,
        vec![
            "secrets hashed with the host's key",
            "secrets hashed with the host's key",
            "secrets hashed with the host's key",
        ],
        "{:?}",
        summaries(&p)
    );
    // Once replaced, nothing more.
    let d = with_release(d);
    assert!(plan(&d, &converged(&d)).is_empty());
}

#[test]
fn another_host_key_gives_other_hashes_and_aliases_for_the_same_secrets() {
    let d = with_release(desired());
    let mut other = desired();
    for c in &mut other.containers {
        c.hash_key = Some(HashKey::from_bytes([8; 32]));
    }
    let other = with_release(other);
    assert_ne!(
        d.containers[1].release_alias, other.containers[1].release_alias,
        "the alias is keyed"
    );
    assert_eq!(
        d.containers[1].env_hashes()["RUST_LOG"],
        other.containers[1].env_hashes()["RUST_LOG"],
        "plain values hash as before"
    );
}

#[test]
fn the_firewall_is_planned_from_the_table_and_its_boot_file() {
    let d = desired();
    let b = "sha256:bbbbbbbbbbbbbbbb";
    let seen = |loaded: bool, live: Option<&str>, file: Option<&str>| RulesetFacts {
        loaded,
        live_hash: live.map(str::to_owned),
        edited: false,
        file_hash: file.map(str::to_owned),
        boot_disabled: false,
    };
    let edited = RulesetFacts {
        edited: true,
        ..seen(true, Some(RULESET), Some(RULESET))
    };
    let disabled = RulesetFacts {
        boot_disabled: true,
        ..seen(true, Some(RULESET), Some(RULESET))
    };
    let cases: [(Option<RulesetFacts>, &[&str]); 8] = [
        (
            None,
            &[
                "~ apply firewall ruleset sha256:aaaaaaaaaaaaaaaa (no vldeploy firewall on the host)",
            ],
        ),
        (
            Some(seen(false, None, Some(RULESET))),
            &[
                "~ apply firewall ruleset sha256:aaaaaaaaaaaaaaaa (no vldeploy firewall on the host)",
            ],
        ),
        (
            Some(seen(true, Some(b), Some(b))),
            &["~ apply firewall ruleset sha256:aaaaaaaaaaaaaaaa (loaded sha256:bbbbbbbbbbbbbbbb)"],
        ),
        (
            Some(seen(true, None, Some(RULESET))),
            &[
                "~ apply firewall ruleset sha256:aaaaaaaaaaaaaaaa (the loaded table was changed by hand)",
            ],
        ),
        (
            Some(edited),
            &[
                "~ apply firewall ruleset sha256:aaaaaaaaaaaaaaaa (the loaded table was changed by hand)",
            ],
        ),
        (
            Some(seen(true, Some(RULESET), None)),
            &[
                "~ install firewall ruleset sha256:aaaaaaaaaaaaaaaa for boot (no ruleset file for boot)",
            ],
        ),
        (
            Some(disabled),
            &[
                "~ install firewall ruleset sha256:aaaaaaaaaaaaaaaa for boot (the boot unit is not enabled)",
            ],
        ),
        (Some(seen(true, Some(RULESET), Some(RULESET))), &[]),
    ];
    for (firewall, want) in cases {
        let facts = Facts {
            firewall: firewall.clone(),
            ..converged(&d)
        };
        assert_eq!(summaries(&plan(&d, &facts)), want, "{firewall:?}");
    }
}

#[test]
fn the_certificate_is_planned_when_missing_a_placeholder_misnamed_or_due() {
    let d = desired();
    let due = ObservedCertificate {
        renew_at: NOW - DAY,
        ..issued()
    };
    let cases: [(Option<ObservedCertificate>, &[&str]); 6] = [
        (
            None,
            &["~ issue certificate for shop.test (no certificate is installed)"],
        ),
        (
            Some(ObservedCertificate {
                placeholder: true,
                ..issued()
            }),
            &["~ issue certificate for shop.test (only the placeholder is installed)"],
        ),
        (
            Some(ObservedCertificate {
                sans: vec!["old.test".into()],
                ..issued()
            }),
            &[
                "~ issue certificate for shop.test (the certificate names old.test but the stack serves shop.test)",
            ],
        ),
        (
            Some(due),
            &[
                "~ issue certificate for shop.test (it expires 2027-02-20 00:00 UTC and is due for renewal since 2026-12-01 00:00 UTC)",
            ],
        ),
        (
            Some(ObservedCertificate {
                not_after: NOW - 1,
                renew_at: NOW - 10 * DAY,
                ..issued()
            }),
            &["~ issue certificate for shop.test (it expired 2026-12-01 23:59 UTC)"],
        ),
        (Some(issued()), &[]),
    ];
    for (certificate, want) in cases {
        let facts = Facts {
            certificate: certificate.clone(),
            ..converged(&d)
        };
        assert_eq!(summaries(&plan(&d, &facts)), want, "{certificate:?}");
    }
}

#[test]
fn a_provided_certificate_is_compared_by_fingerprint_and_tls_off_plans_none() {
    let mut d = desired();
    d.certificate = Some(DesiredCertificate {
        domains: vec!["shop.test".into()],
        provided: Some("f2".into()),
    });
    assert_eq!(
        summaries(&plan(&d, &converged(&d))),
        [
            "~ install the provided certificate for shop.test (the host serves certificate 0A1B2C, not the provided one)"
        ]
    );
    let facts = Facts {
        certificate: None,
        ..converged(&d)
    };
    assert_eq!(
        summaries(&plan(&d, &facts)),
        ["~ install the provided certificate for shop.test (no certificate is installed)"]
    );
    d.certificate = Some(DesiredCertificate {
        domains: vec!["shop.test".into()],
        provided: Some("f1".into()),
    });
    assert!(plan(&d, &converged(&d)).is_empty());
    d.certificate = None;
    assert!(plan(&d, &facts).is_empty(), "tls: off wants no certificate");
}

#[test]
fn the_certificate_and_the_firewall_come_after_the_containers_and_apply_leaves_them_out() {
    let d = desired();
    let mut facts = converged(&d);
    facts.containers.retain(|c| c.name != "vl_postgres");
    facts.certificate = None;
    facts.firewall = None;
    let p = plan(&d, &facts);
    assert_eq!(
        summaries(&p),
        [
            "+ create container `vl_postgres` (not on the host)",
            "~ issue certificate for shop.test (no certificate is installed)",
            "~ apply firewall ruleset sha256:aaaaaaaaaaaaaaaa (no vldeploy firewall on the host)",
        ]
    );
    assert_eq!(
        summaries(&p.for_apply()),
        ["+ create container `vl_postgres` (not on the host)"]
    );
    let json = p.render_json("t");
    assert_eq!(json["changes"], 3);
    assert_eq!(json["steps"][1]["action"], "certificate");
    assert_eq!(json["steps"][1]["domains"][0], "shop.test");
    assert_eq!(json["steps"][2]["action"], "firewall");
    assert_eq!(json["steps"][2]["apply"], true);
    assert_eq!(
        json["steps"][2]["reason"],
        "no vldeploy firewall on the host"
    );
}

#[test]
fn an_edited_cron_entry_or_backup_script_is_written_again() {
    let mut d = desired();
    let cron = |path: &str, body: &str| DesiredFile {
        path: path.into(),
        hash: content_hash(body.as_bytes()),
        mode: 0o644,
        content: body.as_bytes().to_vec(),
        reloads: None,
    };
    d.files.push(cron(
        "/etc/cron.d/vldeploy-shop-certs",
        "* * * * * root renew\n",
    ));
    d.files.push(cron(
        "/var/lib/vldeploy/shop/backup/backup.sh",
        "#!/bin/bash\n",
    ));
    let mut facts = converged(&d);
    facts.files.insert(
        "/etc/cron.d/vldeploy-shop-certs".into(),
        content_hash(b"edited"),
    );
    facts
        .files
        .remove("/var/lib/vldeploy/shop/backup/backup.sh");
    assert_eq!(
        summaries(&plan(&d, &facts)),
        [
            "~ write `/etc/cron.d/vldeploy-shop-certs` (content changed)",
            "~ write `/var/lib/vldeploy/shop/backup/backup.sh` (missing on the host)",
        ]
    );
}

#[test]
fn a_serving_release_missing_from_the_history_is_recorded() {
    let d = desired();
    let alias = d.containers[1].release_alias.clone().unwrap();
    let mut facts = converged(&d);
    facts.releases = Some(BTreeMap::new());
    assert_eq!(
        summaries(&plan(&d, &facts)),
        [format!(
            "~ record release `{alias}` in the history (it serves, but the history has no release of it)"
        )]
    );
    facts.releases = Some([("backend".to_string(), "backend-0ld".to_string())].into());
    let p = plan(&d, &facts);
    assert_eq!(
        summaries(&p),
        [format!(
            "~ record release `{alias}` in the history (it serves, but the history ends at `backend-0ld`)"
        )]
    );
    assert_eq!(p.for_apply(), p, "`apply` records it");
    // A release being made records itself.
    facts
        .containers
        .retain(|c| c.service.as_deref() != Some("backend"));
    assert!(
        !summaries(&plan(&d, &facts))
            .iter()
            .any(|s| s.contains("record release")),
    );
}

#[test]
fn a_storefront_release_is_planned_when_the_host_serves_another() {
    let mut d = desired();
    d.site = Some(crate::plan::DesiredSite {
        hash: "0123456789abcdef".into(),
        files: 3,
        archive: vec![],
    });
    let mut f = converged(&d);
    f.site = Some("0123456789abcdef".into());
    assert!(plan(&d, &f).is_empty(), "{:?}", plan(&d, &f));

    f.site = Some("fedcba9876543210".into());
    let p = plan(&d, &f);
    assert_eq!(
        summaries(&p),
        vec!["~ site 0123456789abcdef (the host serves fedcba9876543210)"]
    );
    assert_eq!(p.steps[0].reason(), "the host serves fedcba9876543210");

    f.site = None;
    let p = plan(&d, &f);
    assert_eq!(p.steps[0].reason(), "no storefront on the host");
    assert_eq!(
        p.render_human("h"),
        "h: 1 change\n  ~ site 0123456789abcdef  (no storefront on the host)\n"
    );
}
