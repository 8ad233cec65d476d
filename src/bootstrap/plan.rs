//! What bootstrap would change on a host: a pure function of what it should be and what it is.

use std::fmt::Write as _;

use super::facts::HostFacts;
use crate::remote::bootstrap::{HELPER_PATH, STATE_ROOT, SUDOERS_PATH};
use crate::remote::sshd::DROPIN_PATH;

pub use crate::remote::bootstrap::TOOLS;

/// The engine's package when no engine is installed (the distribution's own).
pub const ENGINE_PACKAGE: &str = "docker.io";

/// What the host should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub stack: String,
    /// The environment's deploy user (`root`: no user, group, keys or sudoers to manage).
    pub user: String,
    /// The operator's public keys, one OpenSSH line each.
    pub keys: Vec<String>,
    /// sha256 of the root helper's text.
    pub helper_hash: String,
    /// The sudoers drop-in's text.
    pub sudoers: String,
    /// The sshd drop-in, when hardening was asked for.
    pub sshd_dropin: Option<String>,
    /// The stack's backup directory, the deploy user's.
    pub backup_dir: String,
    /// The backup log, the deploy user's.
    pub backup_log: String,
}

/// One change, in the order bootstrap applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    InstallPackages {
        packages: Vec<String>,
    },
    EnableServices {
        units: Vec<String>,
        reason: String,
    },
    CreateUser {
        user: String,
    },
    AddToGroup {
        user: String,
        group: String,
    },
    WriteAuthorizedKeys {
        user: String,
        text: String,
        reason: String,
    },
    InstallHelper {
        reason: String,
    },
    WriteSudoers {
        reason: String,
    },
    MakeDir {
        path: String,
        owner: String,
        mode: String,
        reason: String,
    },
    /// A file the deploy user writes where it may not create one (the backup log).
    MakeFile {
        path: String,
        owner: String,
        mode: String,
        reason: String,
    },
    HardenSsh {
        reason: String,
    },
}

impl Step {
    pub fn sign(&self) -> char {
        match self {
            Step::InstallPackages { .. } | Step::CreateUser { .. } => '+',
            _ => '~',
        }
    }

    pub fn summary(&self) -> String {
        match self {
            Step::InstallPackages { packages } => format!("install {}", packages.join(" ")),
            Step::EnableServices { units, .. } => format!("enable and start {}", units.join(" ")),
            Step::CreateUser { user } => format!("create user `{user}`"),
            Step::AddToGroup { user, group } => format!("add `{user}` to group `{group}`"),
            Step::WriteAuthorizedKeys { user, .. } => format!("write `{user}`'s authorized_keys"),
            Step::InstallHelper { .. } => format!("install {HELPER_PATH}"),
            Step::WriteSudoers { .. } => format!("write {SUDOERS_PATH}"),
            Step::MakeDir {
                path, owner, mode, ..
            } => format!("directory {path} ({owner}, {mode})"),
            Step::MakeFile {
                path, owner, mode, ..
            } => format!("file {path} ({owner}, {mode})"),
            Step::HardenSsh { .. } => format!("harden sshd ({DROPIN_PATH})"),
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Step::InstallPackages { .. } => "not installed".to_owned(),
            Step::CreateUser { .. } => "the deploy user does not exist".to_owned(),
            Step::AddToGroup { group, .. } => {
                format!("it runs containers through the `{group}` group")
            }
            Step::EnableServices { reason, .. }
            | Step::WriteAuthorizedKeys { reason, .. }
            | Step::InstallHelper { reason }
            | Step::WriteSudoers { reason }
            | Step::MakeDir { reason, .. }
            | Step::MakeFile { reason, .. }
            | Step::HardenSsh { reason } => reason.clone(),
        }
    }
}

/// The steps that bring the host from `facts` to `wanted`; empty when it is ready.
#[allow(clippy::too_many_lines)] // one table of decisions, in the order they are applied
pub fn plan(wanted: &Wanted, facts: &HostFacts) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut packages: Vec<String> = Vec::new();
    if !facts.has_engine() {
        packages.push(ENGINE_PACKAGE.to_owned());
    }
    packages.extend(
        TOOLS
            .iter()
            .filter(|p| !facts.installed.contains(**p))
            .map(|p| (*p).to_owned()),
    );
    let mut units = Vec::new();
    let mut why = Vec::new();
    for (unit, package) in [("docker", None), ("cron", Some("cron"))] {
        let fresh = match package {
            None => !facts.has_engine(),
            Some(p) => !facts.installed.contains(p),
        };
        let state = facts.services.get(unit).cloned().unwrap_or_default();
        if fresh {
            why.push(format!("{unit}: installed now"));
        } else if !state.running() {
            let show = |s: &str| {
                if s.is_empty() {
                    "unknown".to_owned()
                } else {
                    s.to_owned()
                }
            };
            why.push(format!(
                "{unit}: {}, {}",
                show(&state.enabled),
                show(&state.active)
            ));
        } else {
            continue;
        }
        units.push(unit.to_owned());
    }
    if !packages.is_empty() {
        steps.push(Step::InstallPackages { packages });
    }
    if !units.is_empty() && !facts.no_systemd {
        steps.push(Step::EnableServices {
            units,
            reason: why.join("; "),
        });
    }
    let user = wanted.user.as_str();
    let root = user == "root";
    if !root {
        if facts.home.is_none() {
            steps.push(Step::CreateUser {
                user: user.to_owned(),
            });
        }
        if !facts.groups.iter().any(|g| g == "docker") {
            steps.push(Step::AddToGroup {
                user: user.to_owned(),
                group: "docker".to_owned(),
            });
        }
        if let Some(step) = authorized_keys(wanted, facts) {
            steps.push(step);
        }
        let helper = facts.paths.get(HELPER_PATH);
        let reason = match (&facts.helper_hash, helper) {
            (None, _) | (_, None) => Some("missing".to_owned()),
            (Some(h), _) if *h != wanted.helper_hash => {
                Some("differs from this version's".to_owned())
            }
            (_, Some(o)) if !o.is("root", "0755") => {
                Some(format!("{}, should be root:root 0755", o.describe()))
            }
            _ => None,
        };
        if let Some(reason) = reason {
            steps.push(Step::InstallHelper { reason });
        }
        let sudoers = facts.paths.get(SUDOERS_PATH);
        let reason = match (&facts.sudoers, sudoers) {
            (None, _) | (_, None) => Some("missing".to_owned()),
            (Some(t), _) if *t != wanted.sudoers => {
                Some("differs from the rule vldeploy needs".to_owned())
            }
            (_, Some(o)) if !o.is("root", "0440") => {
                Some(format!("{}, should be root:root 0440", o.describe()))
            }
            _ => None,
        };
        if let Some(reason) = reason {
            steps.push(Step::WriteSudoers { reason });
        }
    }
    let stack_dir = format!("{STATE_ROOT}/{}", wanted.stack);
    for (path, owner, mode) in [
        (STATE_ROOT.to_owned(), "root", "0755"),
        (stack_dir, user, "0750"),
        (wanted.backup_dir.clone(), user, "0750"),
    ] {
        let reason = match facts.paths.get(&path) {
            None => "missing".to_owned(),
            Some(o) if !o.is(owner, mode) => {
                format!("{}, should be {owner}:{owner} {mode}", o.describe())
            }
            Some(_) => continue,
        };
        steps.push(Step::MakeDir {
            path,
            owner: owner.to_owned(),
            mode: mode.to_owned(),
            reason,
        });
    }
    let reason = match facts.paths.get(&wanted.backup_log) {
        None => Some("missing".to_owned()),
        Some(o) if !o.is(user, "0640") => {
            Some(format!("{}, should be {user}:{user} 0640", o.describe()))
        }
        Some(_) => None,
    };
    if let Some(reason) = reason {
        steps.push(Step::MakeFile {
            path: wanted.backup_log.clone(),
            owner: user.to_owned(),
            mode: "0640".to_owned(),
            reason,
        });
    }
    if let Some(dropin) = &wanted.sshd_dropin {
        let reason = match &facts.sshd_dropin {
            None => Some("passwords and root may log in".to_owned()),
            Some(t) if t != dropin => Some("the drop-in differs from vldeploy's".to_owned()),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            steps.push(Step::HardenSsh { reason });
        }
    }
    steps
}

/// The key of an OpenSSH public key line (type and blob), without options or comment.
fn key_of(line: &str) -> Option<(String, String)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|f| f.starts_with("ssh-") || f.starts_with("ecdsa-") || f.starts_with("sk-"))?;
    Some((
        (*fields.get(at)?).to_owned(),
        (*fields.get(at + 1)?).to_owned(),
    ))
}

/// The operator's keys added to what the file holds (its other keys are kept), with owner and mode fixed.
fn authorized_keys(wanted: &Wanted, facts: &HostFacts) -> Option<Step> {
    let existing = facts.authorized_keys.clone().unwrap_or_default();
    let have: Vec<(String, String)> = existing.lines().filter_map(key_of).collect();
    let missing: Vec<&String> = wanted
        .keys
        .iter()
        .filter(|k| key_of(k).is_some_and(|k| !have.contains(&k)))
        .collect();
    let home = facts.home.as_deref().unwrap_or("");
    let file = facts.paths.get(&format!("{home}/.ssh/authorized_keys"));
    let dir = facts.paths.get(&format!("{home}/.ssh"));
    let user = wanted.user.as_str();
    let reason = if facts.authorized_keys.is_none() {
        "missing".to_owned()
    } else if !missing.is_empty() {
        "lacks the operator's key".to_owned()
    } else if let Some(o) = file.filter(|o| !o.is(user, "0600")) {
        format!("{}, should be {user}:{user} 0600", o.describe())
    } else if let Some(o) = dir.filter(|o| !o.is(user, "0700")) {
        format!("~/.ssh is {}, should be {user}:{user} 0700", o.describe())
    } else {
        return None;
    };
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for k in missing {
        let _ = writeln!(text, "{}", k.trim());
    }
    Some(Step::WriteAuthorizedKeys {
        user: user.to_owned(),
        text,
        reason,
    })
}

/// The plan for people, in the look of `vldeploy plan`.
pub fn render(steps: &[Step], target: &str) -> String {
    let mut out = String::new();
    if steps.is_empty() {
        let _ = writeln!(out, "{target}: no changes; the host is ready for vldeploy.");
        return out;
    }
    let n = steps.len();
    let _ = writeln!(out, "{target}: {n} change{}", if n == 1 { "" } else { "s" });
    let lines: Vec<_> = steps
        .iter()
        .map(|s| (s.sign(), s.summary(), s.reason()))
        .collect();
    crate::plan::step_lines(&mut out, &lines);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use crate::bootstrap::facts::{Owned, Service};

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperator operator@laptop";

    fn wanted() -> Wanted {
        Wanted {
            stack: "shop".into(),
            user: "deploy".into(),
            keys: vec![KEY.into()],
            helper_hash: "abc".into(),
            sudoers: crate::bootstrap::sudoers("deploy"),
            sshd_dropin: None,
            backup_dir: "/var/backups/shop".into(),
            backup_log: "/var/log/vl_backup.log".into(),
        }
    }

    fn owned(owner: &str, mode: &str) -> Owned {
        Owned {
            owner: owner.into(),
            group: owner.into(),
            mode: mode.into(),
        }
    }

    /// A host that bootstrap already made ready.
    fn ready() -> HostFacts {
        let mut f = HostFacts::default();
        f.installed = ["docker.io"]
            .iter()
            .chain(TOOLS)
            .map(|s| (*s).to_owned())
            .collect();
        for unit in ["docker", "cron"] {
            f.services.insert(
                unit.into(),
                Service {
                    enabled: "enabled".into(),
                    active: "active".into(),
                },
            );
        }
        f.home = Some("/home/deploy".into());
        f.groups = vec!["deploy".into(), "docker".into()];
        f.authorized_keys = Some(format!("{KEY}\n"));
        f.sudoers = Some(crate::bootstrap::sudoers("deploy"));
        f.helper_hash = Some("abc".into());
        for (p, o, m) in [
            (HELPER_PATH, "root", "755"),
            (SUDOERS_PATH, "root", "440"),
            (STATE_ROOT, "root", "755"),
            ("/var/lib/vldeploy/shop", "deploy", "750"),
            ("/var/backups/shop", "deploy", "750"),
            ("/var/log/vl_backup.log", "deploy", "640"),
            ("/home/deploy/.ssh", "deploy", "700"),
            ("/home/deploy/.ssh/authorized_keys", "deploy", "600"),
        ] {
            f.paths.insert(p.into(), owned(o, m));
        }
        f
    }

    fn summaries(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| format!("{} ({})", s.summary(), s.reason()))
            .collect()
    }

    #[test]
    fn a_fresh_host_gets_everything() {
        let steps = plan(&wanted(), &HostFacts::default());
        assert_eq!(
            summaries(&steps),
            [
                "install docker.io nftables cron gzip sudo ca-certificates procps iproute2 (not installed)",
                "enable and start docker cron (docker: installed now; cron: installed now)",
                "create user `deploy` (the deploy user does not exist)",
                "add `deploy` to group `docker` (it runs containers through the `docker` group)",
                "write `deploy`'s authorized_keys (missing)",
                "install /usr/local/lib/vldeploy/vldeploy-root (missing)",
                "write /etc/sudoers.d/vldeploy (missing)",
                "directory /var/lib/vldeploy (root, 0755) (missing)",
                "directory /var/lib/vldeploy/shop (deploy, 0750) (missing)",
                "directory /var/backups/shop (deploy, 0750) (missing)",
                "file /var/log/vl_backup.log (deploy, 0640) (missing)",
            ]
        );
        let Step::WriteAuthorizedKeys { text, .. } = &steps[4] else {
            panic!("{steps:?}")
        };
        assert_eq!(text, &format!("{KEY}\n"));
    }

    #[test]
    fn a_ready_host_has_no_changes() {
        let steps = plan(&wanted(), &ready());
        assert_eq!(steps, []);
        assert_eq!(
            render(&steps, "root@h:22"),
            "root@h:22: no changes; the host is ready for vldeploy.\n"
        );
    }

    #[test]
    fn an_engine_already_there_is_kept() {
        let mut f = ready();
        f.installed.remove("docker.io");
        f.installed.insert("docker-ce".into());
        f.installed.remove("cron");
        let steps = plan(&wanted(), &f);
        assert_eq!(
            summaries(&steps),
            [
                "install cron (not installed)",
                "enable and start cron (cron: installed now)"
            ]
        );
    }

    #[test]
    fn drift_is_named_with_what_it_is_and_should_be() {
        let mut f = ready();
        f.services.insert(
            "docker".into(),
            Service {
                enabled: "disabled".into(),
                active: "inactive".into(),
            },
        );
        f.authorized_keys = Some("ssh-rsa AAAAother someone\n".into());
        f.helper_hash = Some("old".into());
        f.paths.insert(SUDOERS_PATH.into(), owned("root", "644"));
        f.paths
            .insert("/var/lib/vldeploy/shop".into(), owned("root", "755"));
        let steps = plan(&wanted(), &f);
        assert_eq!(
            summaries(&steps),
            [
                "enable and start docker (docker: disabled, inactive)",
                "write `deploy`'s authorized_keys (lacks the operator's key)",
                "install /usr/local/lib/vldeploy/vldeploy-root (differs from this version's)",
                "write /etc/sudoers.d/vldeploy (root:root 0644, should be root:root 0440)",
                "directory /var/lib/vldeploy/shop (deploy, 0750) (root:root 0755, should be deploy:deploy 0750)",
            ]
        );
        let Step::WriteAuthorizedKeys { text, .. } = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(
            text,
            &format!("ssh-rsa AAAAother someone\n{KEY}\n"),
            "other keys are kept"
        );
    }

    #[test]
    fn a_key_with_another_comment_or_options_counts_as_present() {
        let mut f = ready();
        f.authorized_keys =
            Some("no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperator renamed\n".into());
        assert_eq!(plan(&wanted(), &f), []);
        f.paths.insert(
            "/home/deploy/.ssh/authorized_keys".into(),
            owned("deploy", "644"),
        );
        assert_eq!(
            summaries(&plan(&wanted(), &f)),
            ["write `deploy`'s authorized_keys (deploy:deploy 0644, should be deploy:deploy 0600)"]
        );
    }

    #[test]
    fn root_as_the_deploy_user_needs_no_user_keys_or_sudoers() {
        let w = Wanted {
            user: "root".into(),
            ..wanted()
        };
        let mut f = ready();
        for dir in ["/var/lib/vldeploy/shop", "/var/backups/shop"] {
            f.paths.insert(dir.into(), owned("root", "750"));
        }
        f.paths
            .insert("/var/log/vl_backup.log".into(), owned("root", "640"));
        assert_eq!(plan(&w, &f), []);
    }

    #[test]
    fn hardening_is_a_step_until_the_dropin_is_in_place() {
        let w = Wanted {
            sshd_dropin: Some(crate::remote::sshd::dropin(&[])),
            ..wanted()
        };
        let mut f = ready();
        assert_eq!(
            summaries(&plan(&w, &f)),
            [
                "harden sshd (/etc/ssh/sshd_config.d/00-vldeploy-hardening.conf) (passwords and root may log in)"
            ]
        );
        f.sshd_dropin = w.sshd_dropin.clone();
        assert_eq!(plan(&w, &f), []);
    }

    #[test]
    fn the_plan_reads_like_vldeploy_plan() {
        let steps = plan(
            &wanted(),
            &HostFacts {
                home: Some("/home/deploy".into()),
                ..ready()
            },
        );
        assert_eq!(steps, []);
        let mut f = ready();
        f.groups = vec!["deploy".into()];
        f.installed.remove("gzip");
        assert_eq!(
            render(&plan(&wanted(), &f), "root@h:22"),
            "root@h:22: 2 changes\n  + install gzip                    (not installed)\n  ~ add `deploy` to group `docker`  (it runs containers through the `docker` group)\n"
        );
    }
}
