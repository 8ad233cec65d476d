//! The main end-to-end flows connected as `deploy`, the user a real server has: not root, made by `vldeploy
//! bootstrap`, with root's steps through `sudo -n` and the root helper. Each test runs one suite's own flow on
//! its own sandbox host. These flows run as `deploy` only: connecting as root is the path of every other
//! end-to-end test, and a flow that passes through `sudo -n` passes through every step root takes.
#![allow(clippy::unwrap_used)]

use crate::support::project::As;

#[test]
fn up_from_nothing_serves_the_shop_and_a_second_up_changes_nothing_as_deploy() {
    crate::up::up_from_nothing_serves_the_shop_and_a_second_up_changes_nothing_as(As::Deploy);
}

#[test]
fn backup_by_cron_makes_a_checked_file_never_overlaps_and_a_failed_dump_leaves_nothing_as_deploy() {
    crate::backup::backup_by_cron_makes_a_checked_file_never_overlaps_and_a_failed_dump_leaves_nothing_as(As::Deploy);
}

#[test]
fn backup_round_trip_restores_exactly_and_bad_backups_are_refused_before_anything_stops_as_deploy()
{
    crate::backup::backup_round_trip_restores_exactly_and_bad_backups_are_refused_before_anything_stops_as(As::Deploy);
}

#[test]
fn firewall_after_up_only_ssh_http_and_https_answer_even_for_ports_docker_publishes_as_deploy() {
    crate::firewall::firewall_after_up_only_ssh_http_and_https_answer_even_for_ports_docker_publishes_as(As::Deploy);
}

#[test]
fn oncall_doctor_names_a_stopped_database_and_the_commands_bring_it_back_as_deploy() {
    crate::oncall::oncall_doctor_names_a_stopped_database_and_the_commands_bring_it_back_as(
        As::Deploy,
    );
}

#[test]
fn oncall_maintenance_on_answers_503_and_off_serves_again_as_deploy() {
    crate::oncall::oncall_maintenance_on_answers_503_and_off_serves_again_as(As::Deploy);
}

#[test]
fn release_rollback_goes_back_without_dropping_a_request_as_deploy() {
    crate::release::release_rollback_goes_back_without_dropping_a_request_as(As::Deploy);
}

#[test]
fn checklist_gate_holds_a_failing_release_until_attested_or_waived_as_deploy() {
    crate::checklist::checklist_gate_holds_a_failing_release_until_attested_or_waived_as(
        As::Deploy,
    );
}

#[test]
fn certs_up_issues_with_eab_serves_https_and_refusals_keep_the_served_certificate_as_deploy() {
    crate::certs::certs_up_issues_with_eab_serves_https_and_refusals_keep_the_served_certificate_as(
        As::Deploy,
    );
}
/// What vldeploy may change on the host: its state, the cron entries, the loaded ruleset.
fn host_hashes(p: &crate::support::project::Project) -> String {
    crate::support::ssh::ssh_ok(
        p,
        "find /var/lib/vldeploy /etc/cron.d /etc/vldeploy -type f -exec sha256sum {} + 2>/dev/null | sort; \
         nft -s list ruleset | sha256sum",
    )
}

#[test]
fn a_deploy_user_without_sudo_rights_gets_one_clear_error_and_the_host_is_unchanged() {
    let p = crate::support::project::Project::deployed_as("deploy_no_sudo", As::Deploy);
    crate::support::ssh::ssh_ok(&p, "rm /etc/sudoers.d/vldeploy");
    let before = host_hashes(&p);
    for args in [&["up"][..], &["plan"][..], &["firewall", "status"][..]] {
        let started = std::time::Instant::now();
        let run = p
            .test()
            .args(args.iter().copied())
            .status(1)
            .stderr_has(format!(
                "`{}` lacks what vldeploy needs as `deploy`:\n  - `sudo -n /usr/local/lib/vldeploy/vldeploy-root` failed: sudo: ",
                p.target()
            ))
            .stderr_has("run `vldeploy bootstrap -e sandbox`")
            .stderr_has("deploy ALL=(root) NOPASSWD: /usr/local/lib/vldeploy/vldeploy-root")
            .run();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{args:?} took {:?}: {}",
            started.elapsed(),
            run.stderr
        );
        assert_eq!(
            run.stderr.matches("lacks what vldeploy needs").count(),
            1,
            "one error: {}",
            run.stderr
        );
    }
    assert_eq!(host_hashes(&p), before, "nothing changed on the host");

    // bootstrap puts the rule back; everything works again.
    p.vldeploy(&["bootstrap"]).ok();
    p.test().arg("up").stdout(p.converged()).run();
}

/// The repository's own staging and production environments (both log in as `deploy`) plan against a host
/// bootstrapped for `deploy`, with only their address and keys pointed at the sandbox host.
#[test]
fn staging_and_production_plan_against_a_host_made_for_deploy() {
    let p = crate::support::project::Project::deployed_as("envs_plan", As::Deploy);
    let port = p.sandbox_var("SANDBOX_SSH_PORT");
    let keys = "    ssh_key: .vldeploy/sandbox/id_ed25519\n    known_hosts: .vldeploy/sandbox/known_hosts\n";
    let yaml = p.stack_yaml(|t| {
        for (from, to) in [
            ("ssh://deploy@staging.vaibava.example:22", format!("ssh://deploy@127.0.0.1:{port}")),
            ("ssh://deploy@vaibava.example:22", format!("ssh://deploy@127.0.0.1:{port}")),
            ("    ssh_agent: true\n    known_hosts: ~/.ssh/known_hosts\n", keys.to_owned()),
            (
                "    ssh_key: ~/.ssh/vaibava_deploy\n    host_key: SHA256:REPLACE_WITH_THE_HOST_KEY_FINGERPRINT\n",
                keys.to_owned(),
            ),
        ] {
            assert!(t.contains(from), "{from} in stack.yaml");
            *t = t.replacen(from, &to, 1);
        }
    });
    p.write_stack(&yaml);
    std::fs::create_dir_all(p.path().join("secrets")).unwrap();
    let secrets = format!(
        "POSTGRES_PASSWORD={}\nADMIN_TOKEN={}\n",
        p.secret("POSTGRES_PASSWORD"),
        p.secret("ADMIN_TOKEN")
    );
    for env in ["staging", "production"] {
        std::fs::write(p.path().join(format!("secrets/{env}.env")), &secrets).unwrap();
        let run = p
            .test()
            .args(["plan", "-e", env])
            .status(0)
            .stdout_has(format!("deploy@127.0.0.1:{port}: "))
            .run();
        // Each differs from the sandbox's deployment: its certificate at least.
        assert!(run.stdout.contains("change"), "{env}: {}", run.stdout);
        assert!(
            !run.stdout.contains(&p.secret("ADMIN_TOKEN")),
            "no secret in the plan"
        );
    }
}

/// `bootstrap_user:` a user with sudo (as on a cloud image's `ubuntu`), not root: bootstrap runs everything,
/// its lock and audit log included, through `sudo -n`; a second run changes nothing; then `deploy` runs the shop.
#[test]
fn bootstrap_as_a_sudo_user_makes_the_host_ready_for_deploy() {
    let p = crate::support::project::Project::new_as("sudo_bootstrap", As::Deploy);
    p.sandbox_up_bare_of_users(&[]);
    crate::support::ssh::ssh_ok(
        &p,
        "useradd -m -s /bin/bash ubuntu && install -d -m 0700 -o ubuntu -g ubuntu /home/ubuntu/.ssh && \
         install -m 0600 -o ubuntu -g ubuntu /root/.ssh/authorized_keys /home/ubuntu/.ssh/authorized_keys && \
         echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users && \
         chmod 0440 /etc/sudoers.d/90-cloud-init-users",
    );
    let yaml = p.stack_yaml(|t| {
        *t = t.replacen(
            "    bootstrap_user: root\n",
            "    bootstrap_user: ubuntu\n",
            1,
        );
    });
    assert!(yaml.contains("bootstrap_user: ubuntu"), "{yaml}");
    p.write_stack(&yaml);
    let port = p.sandbox_var("SANDBOX_SSH_PORT");
    p.test()
        .arg("bootstrap")
        .stdout_has(format!("ubuntu@127.0.0.1:{port}: "))
        .stdout_has("create user `deploy`")
        .run();
    p.test()
        .arg("bootstrap")
        .stdout(format!(
            "ubuntu@127.0.0.1:{port}: no changes; the host is ready for vldeploy.\n"
        ))
        .run();
    let audit = crate::support::ssh::ssh_ok(
        &p,
        &format!(
            "stat -c '%U' /var/lib/vldeploy/{0}/audit.log && cat /var/lib/vldeploy/{0}/audit.log",
            p.name
        ),
    );
    assert!(audit.starts_with("deploy\n"), "{audit}");
    assert!(
        audit.contains("\"command\":\"bootstrap\"") && audit.contains("as `ubuntu`"),
        "{audit}"
    );
    p.test().arg("up").stdout_has(p.is_up()).run();
    assert!(p.audited("up"), "{:?}", p.audit());
}
