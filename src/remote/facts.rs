//! The facts' command: what the host's managed files, loaded markers, firewall, certificate and releases hold,
//! read in one round trip.

use std::fmt::Write as _;

use super::{Command, q};

/// What the one read of the host covers.
pub struct HostRead<'a> {
    /// Managed files: each prints `file HASH PATH`, `missing PATH` or `unreadable PATH`.
    pub files: &'a [&'a str],
    /// `(service, marker)`: each marker that exists prints `loaded SERVICE CONTENTS` (or `unreadable MARKER`).
    pub markers: &'a [(String, String)],
    /// The installed certificate chain, printed between `--certificate` and `--end`.
    pub certificate_chain: Option<&'a str>,
    /// The release history, printed between `--releases` and `--end`.
    pub releases: Option<&'a str>,
    /// The storefront's `current` symlink: prints `site TARGET` when it exists.
    pub site_link: Option<&'a str>,
}

/// Reads everything in `read` and the firewall's observation (between `--firewall` and `--end`). A file that
/// exists but cannot be read is reported as `unreadable`, never as missing.
pub fn host_read(read: &HostRead<'_>) -> Command {
    let mut cmd = String::new();
    for path in read.files {
        let p = q(path);
        let _ = write!(
            cmd,
            "if [ -e {p} ]; then if h=$(sha256sum < {p}); then printf 'file %s %s\\n' \"${{h%% *}}\" {p}; \
             else printf 'unreadable %s\\n' {p}; fi; else printf 'missing %s\\n' {p}; fi; "
        );
    }
    for (service, marker) in read.markers {
        let m = q(marker);
        let _ = write!(
            cmd,
            "if [ -e {m} ]; then if l=$(cat {m}); then printf 'loaded %s %s\\n' {s} \"$l\"; \
             else printf 'unreadable %s\\n' {m}; fi; fi; ",
            s = q(service)
        );
    }
    let _ = write!(
        cmd,
        "echo --firewall; {}; echo --end; ",
        super::nft::observe().text()
    );
    for (section, path) in [
        ("certificate", read.certificate_chain),
        ("releases", read.releases),
    ] {
        if let Some(path) = path {
            let p = q(path);
            let _ = write!(
                cmd,
                "if [ -e {p} ]; then if c=$(cat {p}); then echo --{section}; printf '%s\\n' \"$c\"; echo --end; \
                 else printf 'unreadable %s\\n' {p}; fi; fi; "
            );
        }
    }
    if let Some(link) = read.site_link {
        let l = q(link);
        let _ = write!(
            cmd,
            "if [ -L {l} ]; then printf 'site %s\\n' \"$(readlink {l})\"; fi; "
        );
    }
    cmd.push_str("true");
    // Files are read as the connection's user; the firewall's observation (nftables tables, root's files) is
    // root's helper's.
    Command::script(cmd).with_helper()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_read_of_files_markers_firewall_certificate_and_releases() {
        let markers = [("nginx".to_string(), "/s/nginx/.loaded".to_string())];
        let cmd = host_read(&HostRead {
            files: &["/s/x y"],
            markers: &markers,
            certificate_chain: Some("/s/tls/chain.pem"),
            releases: Some("/s/releases.json"),
            site_link: Some("/s/site/current"),
        });
        let firewall = crate::remote::nft::observe();
        assert_eq!(
            cmd.text(),
            format!(
                "if [ -e '/s/x y' ]; then if h=$(sha256sum < '/s/x y'); then printf 'file %s %s\\n' \"${{h%% *}}\" '/s/x y'; \
                 else printf 'unreadable %s\\n' '/s/x y'; fi; else printf 'missing %s\\n' '/s/x y'; fi; \
                 if [ -e /s/nginx/.loaded ]; then if l=$(cat /s/nginx/.loaded); then printf 'loaded %s %s\\n' nginx \"$l\"; \
                 else printf 'unreadable %s\\n' /s/nginx/.loaded; fi; fi; \
                 echo --firewall; {}; echo --end; \
                 if [ -e /s/tls/chain.pem ]; then if c=$(cat /s/tls/chain.pem); then echo --certificate; printf '%s\\n' \"$c\"; echo --end; \
                 else printf 'unreadable %s\\n' /s/tls/chain.pem; fi; fi; \
                 if [ -e /s/releases.json ]; then if c=$(cat /s/releases.json); then echo --releases; printf '%s\\n' \"$c\"; echo --end; \
                 else printf 'unreadable %s\\n' /s/releases.json; fi; fi; \
                 if [ -L /s/site/current ]; then printf 'site %s\\n' \"$(readlink /s/site/current)\"; fi; true",
                firewall.text()
            )
        );
        assert!(cmd.needs_root() && cmd.uses_helper());
    }

    #[test]
    fn without_certificate_or_releases_only_files_and_the_firewall() {
        let cmd = host_read(&HostRead {
            files: &[],
            markers: &[],
            certificate_chain: None,
            releases: None,
            site_link: None,
        });
        assert_eq!(
            cmd.text(),
            format!(
                "echo --firewall; {}; echo --end; true",
                crate::remote::nft::observe().text()
            )
        );
    }
}
