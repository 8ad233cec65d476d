//! The one test binary: each `tests/<feature>.rs` is a module of it, and `tests/support/` is what they share.
//!
//! One binary links the crate once, and `--test-threads` spreads every feature's tests over the same threads.
//! `cargo test <name>` still selects one test; `cargo test --test suite <feature>::` runs one feature.
//!
//! A new feature: write `tests/<feature>.rs`, name it below with `mod <feature>;`, and reach the shared helpers
//! as `crate::support::…` (the file itself declares no `mod support;`). Runs of the binary go through
//! `support::test::Test` (`Project::test()` in a sandbox project).
//!
//! libtest starts tests in the order of their names: the longest (`cluster::`, three hosts forming a swarm) is
//! named to start while plenty of others are left to run beside it, not last and alone.

mod support;

mod as_deploy;
mod backup;
mod backup_archive;
mod backup_dr;
mod backup_host;
mod backup_offsite;
mod bootstrap;
mod certs;
mod checklist;
mod cluster;
mod delivery;
mod faults;
mod firewall;
mod hostile_input;
mod keepalive;
mod oncall;
mod output;
mod plan_drift;
mod release;
mod sandbox;
mod shape;
mod stack_errors;
mod stack_hosts;
mod store;
mod storefront;
mod swarm_data;
mod swarm_edge;
mod swarm_gate;
mod swarm_releases;
mod swarm_site;
mod transport;
mod up;

/// A feature file that is not a module here would never run (`autotests` is off): name it above.
#[test]
fn every_feature_file_is_a_module_of_the_suite() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let declared = include_str!("lib.rs");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/ is readable") {
        let path = entry.expect("a directory entry").path();
        let Some(stem) = path
            .extension()
            .filter(|e| *e == "rs")
            .and_then(|_| path.file_stem())
            .and_then(|s| s.to_str())
        else {
            continue;
        };
        if stem != "lib" && !declared.lines().any(|l| l == format!("mod {stem};")) {
            missing.push(format!("tests/{stem}.rs"));
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "these files are not modules of the test binary, so they never run: {missing:?}\n\
         add `mod <feature>;` to tests/lib.rs for each"
    );
}
