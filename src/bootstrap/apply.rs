//! Reading the host's facts and applying a bootstrap plan, step by step, as root.

use std::time::Instant;

use super::facts::HostFacts;
use super::plan::{Step, Wanted};
use super::{BootstrapError, HELPER};
use crate::remote::Command;
use crate::remote::bootstrap as cmd;
use crate::remote::sshd::DROPIN_PATH;
use crate::transport::Remote;

/// Reads what bootstrap decides on, in one round trip.
pub async fn read_facts(
    remote: &Remote,
    wanted: &Wanted,
    bootstrap_user: &str,
) -> Result<HostFacts, BootstrapError> {
    let stack_dir = format!("{}/{}", cmd::STATE_ROOT, wanted.stack);
    let facts = cmd::as_root(
        cmd::facts(
            &wanted.user,
            &[&stack_dir, &wanted.backup_dir, &wanted.backup_log],
            DROPIN_PATH,
        ),
        bootstrap_user,
    );
    let out = remote.exec(&facts).await?;
    if !out.success() {
        return Err(BootstrapError::Step {
            host: remote.name().to_owned(),
            step: "facts".to_owned(),
            detail: sudo_hint(
                &out.stderr_tail(crate::transport::STDERR_TAIL_LINES),
                bootstrap_user,
            ),
        });
    }
    HostFacts::parse(&out.stdout_str(), remote.name())
}

fn sudo_hint(stderr: &str, bootstrap_user: &str) -> String {
    if bootstrap_user != "root" && stderr.contains("sudo") {
        format!(
            "{stderr}\n  help: `{bootstrap_user}` needs sudo without a password for bootstrap (or set `bootstrap_user: root`)"
        )
    } else {
        stderr.to_owned()
    }
}

/// The command of one step and what it reads on stdin; `None` for the hardening (its own flow).
fn command_of(step: &Step, wanted: &Wanted) -> Option<(Command, Vec<u8>)> {
    let none = Vec::new();
    Some(match step {
        Step::InstallPackages { packages } => (cmd::install_packages(packages), none),
        Step::EnableServices { units, .. } => (cmd::enable_now(units), none),
        Step::CreateUser { user } => (cmd::create_user(user), none),
        Step::AddToGroup { user, group } => (cmd::add_to_group(user, group), none),
        Step::WriteAuthorizedKeys { user, text, .. } => {
            (cmd::write_authorized_keys(user), text.clone().into_bytes())
        }
        Step::InstallHelper { .. } => (cmd::install_helper(), HELPER.as_bytes().to_vec()),
        Step::WriteSudoers { .. } => (cmd::install_sudoers(), wanted.sudoers.clone().into_bytes()),
        Step::MakeDir {
            path, owner, mode, ..
        } => {
            let recursive = path.as_str() != cmd::STATE_ROOT;
            (cmd::make_dir(path, owner, mode, recursive), none)
        }
        Step::MakeFile {
            path, owner, mode, ..
        } => (cmd::make_file(path, owner, mode), none),
        Step::HardenSsh { .. } => return None,
    })
}

/// Applies `steps` (all but the hardening) in order, stopping at the first failure, which names the step.
/// Returns one line per step done, with its time; `say` gets progress lines.
pub async fn apply(
    remote: &Remote,
    steps: &[Step],
    wanted: &Wanted,
    bootstrap_user: &str,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Vec<String>, BootstrapError> {
    let mut done = Vec::new();
    for step in steps {
        let Some((command, stdin)) = command_of(step, wanted) else {
            continue;
        };
        let summary = step.summary();
        if let Step::InstallPackages { packages } = step {
            say(&format!(
                "bootstrap: installing {} package{} with apt-get (the longest step)…",
                packages.len(),
                if packages.len() == 1 { "" } else { "s" }
            ));
        }
        let started = Instant::now();
        let command = cmd::as_root(command, bootstrap_user);
        let out = remote.exec_stdin(&command, stdin).await?;
        if !out.success() {
            return Err(BootstrapError::Step {
                host: remote.name().to_owned(),
                step: summary,
                detail: sudo_hint(
                    &out.stderr_tail(crate::transport::STDERR_TAIL_LINES),
                    bootstrap_user,
                ),
            });
        }
        let secs = started.elapsed().as_secs_f64();
        say(&format!("bootstrap: {summary}: done in {secs:.1}s"));
        done.push(summary);
    }
    Ok(done)
}
