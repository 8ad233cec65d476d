//! What a host is before bootstrap: read in one round trip, parsed here.

use std::collections::{BTreeMap, BTreeSet};

use super::BootstrapError;

/// The distribution, from `/etc/os-release`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Os {
    pub id: String,
    pub version_id: String,
    pub pretty: String,
}

impl Os {
    /// Debian 12 and 13, Ubuntu 22.04 and 24.04; anything else is an error naming the distribution.
    pub fn supported(&self, host: &str) -> Result<(), BootstrapError> {
        let ok = match self.id.as_str() {
            "debian" => matches!(self.version_id.as_str(), "12" | "13"),
            "ubuntu" => matches!(self.version_id.as_str(), "22.04" | "24.04"),
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let name = if self.pretty.is_empty() {
            format!("{} {}", self.id, self.version_id).trim().to_owned()
        } else {
            self.pretty.clone()
        };
        Err(BootstrapError::Unsupported {
            host: host.to_owned(),
            os: if name.is_empty() {
                "an unknown distribution (no /etc/os-release)".to_owned()
            } else {
                name
            },
        })
    }
}

/// Owner, group and mode of a path (`stat -c '%U %G %a'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub owner: String,
    pub group: String,
    /// Octal, without a leading zero: `755`, `440`.
    pub mode: String,
}

impl Owned {
    pub fn is(&self, owner: &str, mode: &str) -> bool {
        self.owner == owner && self.group == owner && self.mode == mode.trim_start_matches('0')
    }

    pub fn describe(&self) -> String {
        format!("{}:{} {:0>4}", self.owner, self.group, self.mode)
    }
}

/// A systemd unit's state: `systemctl is-enabled` and `is-active`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    pub enabled: String,
    pub active: String,
}

impl Service {
    pub fn running(&self) -> bool {
        self.enabled == "enabled" && self.active == "active"
    }
}

/// The host as bootstrap sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostFacts {
    pub os: Os,
    /// Packages installed (of those asked about).
    pub installed: BTreeSet<String>,
    /// A `dockerd` on the PATH (an engine installed some other way).
    pub dockerd: bool,
    pub services: BTreeMap<String, Service>,
    /// systemd does not run the host (a container's own init starts its services): nothing to enable.
    pub no_systemd: bool,
    /// The deploy user's home, when the user exists.
    pub home: Option<String>,
    pub groups: Vec<String>,
    pub authorized_keys: Option<String>,
    pub sudoers: Option<String>,
    /// sha256 of the installed root helper.
    pub helper_hash: Option<String>,
    pub sshd_dropin: Option<String>,
    pub paths: BTreeMap<String, Owned>,
}

impl HostFacts {
    /// Parses the output of [`crate::remote::bootstrap::facts`]; output cut short is an error, never a
    /// host without those facts.
    pub fn parse(text: &str, host: &str) -> Result<Self, BootstrapError> {
        let mut sections: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut current: Option<&str> = None;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("--- ") {
                current = Some(name.trim());
                sections.entry(name.trim()).or_default();
            } else if let Some(c) = current {
                sections.entry(c).or_default().push(line);
            }
        }
        if !sections.contains_key("end") {
            return Err(BootstrapError::Step {
                host: host.to_owned(),
                step: "facts".to_owned(),
                detail: "the host's answer was cut short; run the command again".to_owned(),
            });
        }
        let get = |name: &str| sections.get(name).cloned().unwrap_or_default();
        let joined = |name: &str| -> Option<String> {
            let lines = sections.get(name)?;
            if lines.is_empty() {
                None
            } else {
                Some(lines.iter().flat_map(|l| [*l, "\n"]).collect())
            }
        };
        let mut os = Os::default();
        for line in get("os-release") {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').to_owned();
            match k.trim() {
                "ID" => os.id = v,
                "VERSION_ID" => os.version_id = v,
                "PRETTY_NAME" => os.pretty = v,
                _ => {}
            }
        }
        let installed = get("packages")
            .into_iter()
            .filter_map(|l| {
                let (name, status) = l.split_once(' ')?;
                status.starts_with("ii").then(|| name.to_owned())
            })
            .collect();
        let services = get("services")
            .into_iter()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let name = f.next()?.to_owned();
                let enabled = f.next().unwrap_or_default().to_owned();
                let active = f.next().unwrap_or_default().to_owned();
                Some((name, Service { enabled, active }))
            })
            .collect();
        let home = get("user")
            .first()
            .and_then(|l| l.split(':').nth(5))
            .filter(|h| !h.is_empty())
            .map(str::to_owned);
        let groups = get("groups")
            .first()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let paths = get("paths")
            .into_iter()
            .filter_map(|l| {
                let mut f = l.splitn(4, ' ');
                let owner = f.next()?.to_owned();
                let group = f.next()?.to_owned();
                let mode = f.next()?.to_owned();
                let path = f.next()?.to_owned();
                Some((path, Owned { owner, group, mode }))
            })
            .collect();
        Ok(Self {
            os,
            installed,
            dockerd: get("engine").iter().any(|l| !l.trim().is_empty()),
            services,
            no_systemd: !get("init").iter().any(|l| l.trim() == "systemd"),
            home,
            groups,
            authorized_keys: joined("authorized_keys"),
            sudoers: joined("sudoers"),
            helper_hash: get("helper").first().map(|l| l.trim().to_owned()),
            sshd_dropin: joined("sshd"),
            paths,
        })
    }

    /// Whether a Docker engine is installed, by any of its package names or otherwise.
    pub fn has_engine(&self) -> bool {
        self.dockerd
            || ["docker.io", "docker-ce", "moby-engine"]
                .iter()
                .any(|p| self.installed.contains(*p))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(crate) const FRESH: &str = "--- os-release\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n\
        --- packages\ngzip ii \nprocps un \n--- engine\n--- services\ndocker  \ncron  \n--- user\n--- groups\n--- authorized_keys\n\
        --- sudoers\n--- helper\n--- sshd\n--- paths\nroot root 755 /var/lib/vldeploy\n--- end\n";

    #[test]
    fn a_fresh_host_reads_as_nothing_installed() {
        let f = HostFacts::parse(FRESH, "h").unwrap();
        assert_eq!(f.os.id, "debian");
        assert_eq!(f.os.version_id, "12");
        assert_eq!(f.installed, BTreeSet::from(["gzip".to_owned()]));
        assert!(!f.has_engine());
        assert_eq!(f.services["docker"], Service::default());
        assert_eq!(f.home, None);
        assert_eq!(f.authorized_keys, None);
        assert_eq!(
            f.paths["/var/lib/vldeploy"],
            Owned {
                owner: "root".into(),
                group: "root".into(),
                mode: "755".into()
            }
        );
        f.os.supported("h").unwrap();
    }

    #[test]
    fn an_answer_cut_short_is_an_error() {
        let cut = &FRESH[..FRESH.len() - 10];
        let e = HostFacts::parse(cut, "root@h:22").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bootstrap of `root@h:22` failed at `facts`: the host's answer was cut short; run the command again"
        );
    }

    #[test]
    fn only_the_supported_distributions_pass() {
        let os = |id: &str, v: &str, pretty: &str| Os {
            id: id.into(),
            version_id: v.into(),
            pretty: pretty.into(),
        };
        for (id, v) in [
            ("debian", "12"),
            ("debian", "13"),
            ("ubuntu", "22.04"),
            ("ubuntu", "24.04"),
        ] {
            os(id, v, "").supported("h").unwrap();
        }
        let e = os("fedora", "40", "Fedora Linux 40")
            .supported("root@h:22")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`root@h:22` runs Fedora Linux 40, which bootstrap does not support: use Debian 12 or 13, or Ubuntu 22.04 or 24.04 (or prepare the host by hand, see README \"Deploying to a real server\")"
        );
        assert!(os("debian", "11", "Debian 11").supported("h").is_err());
        assert!(
            os("", "", "")
                .supported("h")
                .unwrap_err()
                .to_string()
                .contains("an unknown distribution")
        );
    }
}
