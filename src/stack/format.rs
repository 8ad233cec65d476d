//! Parsers for the small string formats of stack.yaml: ssh URLs, fingerprints, durations, volume and port
//! specs, cron schedules, CIDR ranges, names.

use std::net::IpAddr;
use std::time::Duration;

use super::model::{PortMapping, SshUrl, VolumeMount};
use super::reader::Problem;

const SSH_HELP: &str =
    "write it as `ssh://user@host` or `ssh://user@host:port`, e.g. `ssh://deploy@example.com:22`";

/// `ssh://user@host[:port]`; the port defaults to 22; IPv6 hosts go in brackets.
pub(crate) fn ssh_url(s: &str) -> Result<SshUrl, Problem> {
    let bad = |why: &str| Problem::new(format!("invalid ssh URL `{s}`: {why}"), SSH_HELP);
    let Some(rest) = s.strip_prefix("ssh://") else {
        return Err(bad("it must start with `ssh://`"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(bad("it must not have a path"));
    }
    let Some((user, hostport)) = rest.rsplit_once('@') else {
        return Err(Problem::new(
            format!("invalid ssh URL `{s}`: the user is missing"),
            format!("name the login user: `ssh://deploy@{rest}`"),
        ));
    };
    if user.is_empty() || user.contains(':') || user.chars().any(char::is_whitespace) {
        return Err(bad("the user is missing or invalid"));
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return Err(bad("unclosed `[` around the host"));
        };
        (h, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '@') {
        return Err(bad("the host is missing or invalid"));
    }
    let port = match port {
        None => 22,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(Problem::new(
                    format!("invalid port `{p}` in ssh URL `{s}`"),
                    "use a port from 1 to 65535, or leave it out for 22",
                ));
            }
        },
    };
    Ok(SshUrl {
        user: user.to_owned(),
        host: host.to_owned(),
        port,
    })
}

/// `SHA256:<base64>`, as `ssh-keygen -lf` prints it.
pub(crate) fn fingerprint(s: &str) -> Result<String, Problem> {
    let ok = s.strip_prefix("SHA256:").is_some_and(|b| {
        !b.is_empty()
            && b.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_'))
    });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Problem::new(
            format!("invalid host key fingerprint `{s}`"),
            "write it as `SHA256:` and the base64 digest, as `ssh-keyscan HOST | ssh-keygen -lf -` prints it",
        ))
    }
}

/// `500ms`, `2s`, `1m`, `1h`, `1d`, or several together (`1m30s`).
pub(crate) fn duration(s: &str) -> Result<Duration, Problem> {
    let bad = || {
        Problem::new(
            format!("invalid duration `{s}`"),
            "write a whole number and a unit: `500ms`, `2s`, `1m`, `1h` or `1d`",
        )
    };
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let tail = &rest[digits..];
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let step = match &tail[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(step);
        rest = &tail[unit_len..];
    }
    Ok(total)
}

fn is_volume_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `source:target[:ro]`: the source is a named volume (`[a-z0-9_-]`) or an absolute host path.
pub(crate) fn volume(s: &str) -> Result<VolumeMount, Problem> {
    const HELP: &str =
        "write `name:/path` or `/host/path:/path`, with `:ro` at the end for read-only";
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [source, target] | [source, target, "rw"] => (*source, *target, false),
        [source, target, "ro"] => (*source, *target, true),
        [_, _, mode] => {
            return Err(Problem::new(
                format!("invalid volume mode `{mode}` in `{s}`"),
                "the mode is `ro` (read-only) or `rw`",
            ));
        }
        _ => return Err(Problem::new(format!("invalid volume `{s}`"), HELP)),
    };
    if !(source.starts_with('/') || is_volume_name(source)) {
        return Err(Problem::new(
            format!("invalid volume source `{source}` in `{s}`"),
            "use a named volume (lowercase letters, digits, `_`, `-`) or an absolute host path",
        ));
    }
    if !target.starts_with('/') {
        return Err(Problem::new(
            format!("invalid volume target `{target}` in `{s}`"),
            "the target is an absolute path inside the container",
        ));
    }
    Ok(VolumeMount {
        source: source.to_owned(),
        target: target.to_owned(),
        read_only,
    })
}

/// `host:container` or `ip:host:container` (`[v6]:host:container`).
pub(crate) fn port_mapping(s: &str) -> Result<PortMapping, Problem> {
    const HELP: &str =
        "write `host:container` or `ip:host:container`, e.g. `443:443` or `127.0.0.1:8080:80`";
    let (ip, rest) = if let Some(v6) = s.strip_prefix('[') {
        let Some((ip, rest)) = v6.split_once("]:") else {
            return Err(Problem::new(format!("invalid port mapping `{s}`"), HELP));
        };
        (Some(ip), rest)
    } else {
        match s.split(':').collect::<Vec<_>>().as_slice() {
            [_, _] => (None, s),
            [ip, _, _] => (Some(*ip), &s[ip.len() + 1..]),
            _ => return Err(Problem::new(format!("invalid port mapping `{s}`"), HELP)),
        }
    };
    let host_ip = match ip {
        None => None,
        Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| {
            Problem::new(
                format!("invalid IP address `{ip}` in port mapping `{s}`"),
                "use an IPv4 or IPv6 address, e.g. `127.0.0.1`",
            )
        })?),
    };
    let Some((host, container)) = rest.split_once(':') else {
        return Err(Problem::new(format!("invalid port mapping `{s}`"), HELP));
    };
    let port = |p: &str| match p.parse::<u64>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(u16::try_from(n).unwrap_or(u16::MAX)),
        Ok(_) => Err(Problem::new(
            format!("port {p} is out of range in port mapping `{s}`"),
            "use ports from 1 to 65535",
        )),
        Err(_) => Err(Problem::new(
            format!("invalid port `{p}` in port mapping `{s}`"),
            HELP,
        )),
    };
    Ok(PortMapping {
        host_ip,
        host: port(host)?,
        container: port(container)?,
    })
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A five-field cron schedule: minute hour day-of-month month day-of-week.
pub(crate) fn cron(s: &str) -> Result<String, Problem> {
    const HELP: &str = "write five fields: minute hour day-of-month month day-of-week, e.g. `0 2 * * *` for 02:00 every day";
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(Problem::new(
            format!(
                "invalid cron schedule `{s}`: expected 5 fields, found {}",
                fields.len()
            ),
            HELP,
        ));
    }
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day of month", 1, 31, &[], 0),
        ("month", 1, 12, MONTHS, 1),
        ("day of week", 0, 7, DAYS, 0),
    ];
    for (field, (what, min, max, names, base)) in fields.iter().zip(specs) {
        let value = |v: &str| -> Option<u32> {
            let lower = v.to_ascii_lowercase();
            names
                .iter()
                .position(|n| *n == lower)
                .and_then(|i| u32::try_from(i).ok())
                .map(|i| i + base)
                .or_else(|| v.parse().ok())
                .filter(|n| (min..=max).contains(n))
        };
        let ok = field.split(',').all(|part| {
            let (range, step) = match part.split_once('/') {
                Some((r, st)) => (r, Some(st)),
                None => (part, None),
            };
            let step_ok = step.is_none_or(|st| st.parse::<u32>().is_ok_and(|n| n > 0));
            let range_ok = range == "*"
                || match range.split_once('-') {
                    Some((a, b)) => matches!((value(a), value(b)), (Some(a), Some(b)) if a <= b),
                    None => value(range).is_some(),
                };
            step_ok && range_ok
        });
        if !ok {
            return Err(Problem::new(
                format!("invalid cron schedule `{s}`: bad {what} field `{field}`"),
                format!(
                    "the {what} field takes `*`, numbers from {min} to {max}, ranges `a-b`, lists `a,b` and steps `*/n`"
                ),
            ));
        }
    }
    Ok(fields.join(" "))
}

/// A value as it may be shown inside a message: control characters as escapes (`\n`), at most 80 characters.
fn shown(s: &str) -> String {
    shown_within(s, 80)
}

/// A value as a message shows it: control characters as escapes (`\n`), cut with `…` after `max` characters.
/// Shared with the renderers' escapers, whose errors quote the value the same way.
pub(crate) fn shown_within(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars().take(max) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// A character as a message names it: `` `;` ``, or its escape for one that does not print (`` `\n` ``).
fn named(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        c if c.is_control() => format!("`{}`", c.escape_debug()),
        '`' => "a backtick".to_owned(),
        c => format!("`{c}`"),
    }
}

const DOMAIN_HELP: &str = "write the host name nginx serves, e.g. `shop.example`: labels of letters, digits and `-` separated by dots (no scheme, port or path)";

/// Why `s` is not an RFC 1123 host name (labels of 1 to 63 `[a-z0-9-]`, not starting or ending with `-`, at
/// most 253 characters in all), if it is not one; `s` is lowercase ASCII.
fn hostname_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".to_owned());
    }
    if s.len() > 253 {
        return Some(format!(
            "it is {} characters long; a domain has at most 253",
            s.len()
        ));
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Some("it has an empty label (a leading, trailing or doubled `.`)".to_owned());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Some(format!(
                "{} is not allowed in a domain (letters, digits, `-` and `.` are)",
                named(c)
            ));
        }
        if label.len() > 63 {
            return Some(format!(
                "the label `{}` is {} characters long; a label has at most 63",
                shown(label),
                label.len()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("the label `{label}` starts or ends with `-`"));
        }
    }
    None
}

/// The domain nginx serves and certificates are issued for: an RFC 1123 host name, case-insensitive (returned in
/// lowercase); `localhost` is one. An international name is written in its punycode (`xn--`) form. A wildcard is
/// refused: certificates are issued through HTTP-01, which cannot issue one.
pub(crate) fn domain(s: &str) -> Result<String, Problem> {
    let bad = |why: String, help: &str| {
        Problem::new(format!("invalid domain `{}`: {why}", shown(s)), help)
    };
    if s.contains("://") || s.contains(['/', ':']) {
        return Err(bad(
            "it is a URL or has a port or path".to_owned(),
            "write a bare host name, e.g. `shop.example` (no scheme, port or path)",
        ));
    }
    if s.starts_with("*.") {
        return Err(bad(
            "wildcard domains cannot be served".to_owned(),
            "name the host itself, e.g. `shop.example`: certificates are issued through the HTTP-01 challenge, which cannot issue a wildcard certificate",
        ));
    }
    if !s.is_ascii() && !s.chars().any(char::is_control) {
        let help = match idna::domain_to_ascii(s) {
            Ok(ascii) if hostname_problem(&ascii).is_none() => {
                format!("write the international name in its punycode form: `{ascii}`")
            }
            _ => "write an international name in its punycode form (`xn--…`)".to_owned(),
        };
        return Err(bad("it is not ASCII".to_owned(), &help));
    }
    let lower = s.to_ascii_lowercase();
    match hostname_problem(&lower) {
        Some(why) => Err(bad(why, DOMAIN_HELP)),
        None => Ok(lower),
    }
}

/// The path an HTTP health check requests: absolute, with the characters RFC 3986 allows in a path and a
/// query (unreserved, sub-delims, `:`, `@`, `/`, `?`, and `%` with two hex digits); anything else must be
/// percent-encoded. (Sub-delims such as `;`, `'` and `$` are legal: whoever puts the path into a command quotes it.)
pub(crate) fn health_path(s: &str) -> Result<String, Problem> {
    const HELP: &str = "write the path as it goes in a URL: letters, digits and `-._~!$&'()*+,;=:@/?`, anything else percent-encoded (a space is `%20`)";
    if !s.starts_with('/') {
        return Err(Problem::new(
            format!("invalid health path `{}`", shown(s)),
            "write a path starting with `/`, e.g. `/api/health`",
        ));
    }
    let bytes = s.as_bytes();
    for (i, c) in s.char_indices() {
        let ok = c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?".contains(c);
        if ok {
            continue;
        }
        if c == '%' {
            let hex = bytes.get(i + 1..i + 3);
            if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                continue;
            }
            return Err(Problem::new(
                format!(
                    "invalid health path `{}`: `%` must start a percent-encoded byte such as `%20`",
                    shown(s)
                ),
                HELP,
            ));
        }
        let why = if c == '#' {
            "`#` starts a fragment, which is never sent to the server".to_owned()
        } else {
            format!("{} is not allowed in a URL path", named(c))
        };
        return Err(Problem::new(
            format!("invalid health path `{}`: {why}", shown(s)),
            HELP,
        ));
    }
    Ok(s.to_owned())
}

/// The contact address given to the ACME CA: `local@domain`, the local part of RFC 5321's atoms and dots, the
/// domain an RFC 1123 host name.
pub(crate) fn email(s: &str) -> Result<String, Problem> {
    const HELP: &str = "write one address, e.g. `ops@shop.example`";
    let bad = |why: String| Problem::new(format!("invalid email `{}`: {why}", shown(s)), HELP);
    if let Some(c) = s.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad(format!("{} is not allowed in an address", named(c))));
    }
    let Some((local, host)) = s.rsplit_once('@') else {
        return Err(bad("it has no `@`".to_owned()));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(bad(
            "the part before `@` must be 1 to 64 characters".to_owned()
        ));
    }
    if let Some(c) = local
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-.".contains(*c)))
    {
        return Err(bad(format!("{} is not allowed in an address", named(c))));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(bad(
            "the part before `@` has a leading, trailing or doubled `.`".to_owned(),
        ));
    }
    if !host.is_ascii() {
        return Err(bad(
            "the domain is not ASCII; write it in punycode (`xn--…`)".to_owned(),
        ));
    }
    if let Some(why) = hostname_problem(&host.to_ascii_lowercase()) {
        return Err(bad(format!("the domain: {why}")));
    }
    Ok(s.to_owned())
}

/// An absolute path on a host, without control characters.
pub(crate) fn host_path(s: &str, what: &str, example: &str) -> Result<String, Problem> {
    if !s.starts_with('/') {
        return Err(Problem::new(
            format!("{what} `{}` is not an absolute path", shown(s)),
            format!("write an absolute path on the host, e.g. `{example}`"),
        ));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(Problem::new(
            format!(
                "{what} `{}` holds the control character {}",
                shown(s),
                named(c)
            ),
            format!("write an absolute path on the host, e.g. `{example}`"),
        ));
    }
    Ok(s.to_owned())
}

/// A path inside the project: relative to the stack file, without `..`, `~` or control characters (`site:`,
/// `catalog:`). Whether it exists is checked by the loader, which knows the project's directory.
pub(crate) fn project_path(s: &str, what: &str, example: &str) -> Result<String, Problem> {
    let help =
        format!("write a path inside the project, relative to the stack file, e.g. `{example}`");
    let bad = |why: String| {
        Problem::new(
            format!("invalid {what} `{}`: {why}", shown(s)),
            help.clone(),
        )
    };
    if s.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if s.starts_with('/') || s.starts_with('~') {
        return Err(bad("it is not relative to the project".into()));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(bad(format!("it holds the control character {}", named(c))));
    }
    if s.split(['/', '\\']).any(|part| part == "..") {
        return Err(bad("`..` leaves the project".into()));
    }
    Ok(s.to_owned())
}

/// Where a copy of each backup goes: an absolute path on the host, or `[user@]host:/path` reached over ssh.
pub(crate) fn copy_to(s: &str) -> Result<String, Problem> {
    const HELP: &str = "write an absolute path on the host (`/mnt/offsite/shop`) or `user@host:/path` (copied over ssh)";
    if s.starts_with('/') {
        return host_path(s, "backup copy_to", "/mnt/offsite/shop");
    }
    let bad = |why: String| {
        Problem::new(
            format!("invalid backup copy_to `{}`: {why}", shown(s)),
            HELP,
        )
    };
    let Some((login, path)) = s.split_once(':') else {
        return Err(bad(
            "it is neither an absolute path nor `host:/path`".to_owned()
        ));
    };
    let (user, host) = match login.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, login),
    };
    if let Some(u) = user {
        let ok = u
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && u.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
            });
        if !ok {
            return Err(bad(format!(
                "the user `{}` is not a login name ([a-z_][a-z0-9_.-]*)",
                shown(u)
            )));
        }
    }
    if let Some(why) = hostname_problem(&host.to_ascii_lowercase()) {
        return Err(bad(format!("the host: {why}")));
    }
    host_path(path, "the path of backup copy_to", "/srv/backups/shop").map_err(|p| {
        Problem::new(
            format!("invalid backup copy_to `{}`: {}", shown(s), p.message),
            HELP,
        )
    })?;
    Ok(s.to_owned())
}

/// A host's address as another host reaches it: an IP address or a DNS name (letters, digits, `.` and `-`, not
/// starting with `-`). It is written into pgbackrest.conf, a certificate and the firewall.
pub(crate) fn peer_address(s: &str) -> Result<String, Problem> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(s.to_owned());
    }
    let ok = !s.is_empty()
        && s.len() <= 253
        && !s.starts_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Problem::new(
            format!("invalid address `{}`", shown(s)),
            "write an IP address such as `10.0.0.7` or a host name such as `vault.example`",
        ))
    }
}

/// pgBackRest's repository: `ssh://user@host[:port]/path` (a backup host) or an absolute path on the host. Paths
/// are written into pgbackrest.conf: letters, digits and `/_.-` only.
pub(crate) fn archive_repo(s: &str) -> Result<crate::stack::ArchiveRepo, Problem> {
    use crate::stack::ArchiveRepo;
    const HELP: &str = "write `ssh://backup@vault.example/var/lib/pgbackrest` (a backup host over ssh) or an absolute path such as `/var/lib/pgbackrest`";
    let bad =
        |why: String| Problem::new(format!("invalid archive repo `{}`: {why}", shown(s)), HELP);
    let path_ok = |p: &str| -> Result<(), Problem> {
        if !p.starts_with('/') || p == "/" {
            return Err(bad("the path must be absolute and not `/`".to_owned()));
        }
        if let Some(c) = p
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-')))
        {
            return Err(bad(format!(
                "the path holds {}; use letters, digits and `/_.-`",
                named(c)
            )));
        }
        if p.split('/').any(|part| part == "..") {
            return Err(bad("the path must not contain `..`".to_owned()));
        }
        Ok(())
    };
    if let Some(rest) = s.strip_prefix("ssh://") {
        let Some(slash) = rest.find('/') else {
            return Err(bad("the path on the backup host is missing".to_owned()));
        };
        let (authority, path) = rest.split_at(slash);
        let url = ssh_url(&format!("ssh://{authority}")).map_err(|p| {
            Problem::new(
                format!("invalid archive repo `{}`: {}", shown(s), p.message),
                HELP,
            )
        })?;
        path_ok(path)?;
        return Ok(ArchiveRepo::Ssh {
            user: url.user,
            host: url.host,
            port: url.port,
            path: path.trim_end_matches('/').to_owned(),
        });
    }
    if s.starts_with('/') {
        path_ok(s)?;
        return Ok(ArchiveRepo::Local(s.trim_end_matches('/').to_owned()));
    }
    Err(bad(
        "it is neither `ssh://user@host/path` nor an absolute path".to_owned(),
    ))
}

/// An address or a network: `203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`.
pub(crate) fn cidr(s: &str) -> Result<String, Problem> {
    let bad = || {
        Problem::new(
            format!("invalid address range `{s}`"),
            "write an address or a CIDR range, e.g. `203.0.113.7` or `10.0.0.0/8`",
        )
    };
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if let Some(p) = prefix {
        match p.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => return Err(bad()),
        }
    }
    Ok(s.to_owned())
}

/// A stack name: lowercase letters, digits and `-`, 1 to 40 characters.
pub(crate) fn stack_name(s: &str) -> Result<String, Problem> {
    let ok = (1..=40).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Problem::new(
            format!("invalid stack name `{s}`"),
            "use 1 to 40 lowercase letters, digits and `-`, e.g. `shop`",
        ))
    }
}

/// A login user name as `useradd` takes it: a lowercase letter or `_`, then lowercase letters, digits, `_` or
/// `-`, 1 to 32 characters.
pub(crate) fn user_name(s: &str) -> Result<String, Problem> {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let ok = s.len() <= 32
        && first_ok
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Problem::new(
            format!("invalid user name `{s}`"),
            "use a lowercase letter or `_`, then lowercase letters, digits, `_` or `-` (at most 32), e.g. `root` or `ubuntu`",
        ))
    }
}

/// An environment name: letters, digits, `-` and `_`, 1 to 63 characters (it names files, cron comments and
/// the `-e` flag).
pub(crate) fn environment_name(s: &str) -> Result<String, Problem> {
    let ok = (1..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Problem::new(
            format!("invalid environment name `{}`", shown(s)),
            "use 1 to 63 letters, digits, `-` and `_`, e.g. `production`",
        ))
    }
}

/// An image reference such as `nginx:1.27` or `registry.example/app@sha256:...`.
pub(crate) fn image(s: &str) -> Result<String, Problem> {
    if s.is_empty() || s.chars().any(char::is_whitespace) || s.starts_with([':', '@', '/']) {
        Err(Problem::new(
            format!("invalid image reference `{s}`"),
            "write an image reference such as `nginx:1.27`",
        ))
    } else {
        Ok(s.to_owned())
    }
}

/// An ACME directory URL, or `letsencrypt` / `letsencrypt-staging`.
pub(crate) fn acme_directory(s: &str) -> Result<String, Problem> {
    match s {
        "letsencrypt" => Ok("https://acme-v02.api.letsencrypt.org/directory".to_owned()),
        "letsencrypt-staging" => {
            Ok("https://acme-staging-v02.api.letsencrypt.org/directory".to_owned())
        }
        _ if (s.starts_with("https://") || s.starts_with("http://"))
            && s.len() > "https://".len() =>
        {
            Ok(s.to_owned())
        }
        _ => Err(Problem::new(
            format!("invalid ACME directory `{s}`"),
            "write `letsencrypt`, `letsencrypt-staging` or the directory URL (`https://...`)",
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert_eq!(user_name("ubuntu").unwrap(), "ubuntu");
        assert_eq!(user_name("_ops-1").unwrap(), "_ops-1");
        for bad in ["", "Root", "1st", "a b", "x;rm", &"a".repeat(33)] {
            let e = user_name(bad).unwrap_err();
            assert_eq!(e.message, format!("invalid user name `{bad}`"));
        }
    }

    #[test]
    fn archive_repos() {
        use crate::stack::ArchiveRepo;
        assert_eq!(
            archive_repo("ssh://backup@vault.example:2222/var/lib/pgbackrest/").unwrap(),
            ArchiveRepo::Ssh {
                user: "backup".into(),
                host: "vault.example".into(),
                port: 2222,
                path: "/var/lib/pgbackrest".into()
            }
        );
        assert_eq!(
            archive_repo("/srv/pgbackrest").unwrap(),
            ArchiveRepo::Local("/srv/pgbackrest".into())
        );
        assert_eq!(
            archive_repo("ssh://backup@vault.example")
                .unwrap_err()
                .message,
            "invalid archive repo `ssh://backup@vault.example`: the path on the backup host is missing"
        );
        assert_eq!(
            archive_repo("/srv/pg backrest").unwrap_err().message,
            "invalid archive repo `/srv/pg backrest`: the path holds a space; use letters, digits and `/_.-`"
        );
        assert_eq!(
            archive_repo("ssh://vault/x").unwrap_err().message,
            "invalid archive repo `ssh://vault/x`: invalid ssh URL `ssh://vault`: the user is missing"
        );
        assert!(archive_repo("/srv/../etc").is_err());
        assert!(archive_repo("vault:/x").is_err());
    }

    #[test]
    fn ssh_urls() {
        assert_eq!(
            ssh_url("ssh://root@127.0.0.1:2222").unwrap(),
            SshUrl {
                user: "root".into(),
                host: "127.0.0.1".into(),
                port: 2222
            }
        );
        assert_eq!(ssh_url("ssh://d@h").unwrap().port, 22);
        assert_eq!(ssh_url("ssh://d@[::1]:2200").unwrap().host, "::1");
        assert_eq!(
            ssh_url("ssh://host").unwrap_err().message,
            "invalid ssh URL `ssh://host`: the user is missing"
        );
        assert!(ssh_url("http://d@h").is_err());
        assert!(ssh_url("ssh://d@h:0").is_err());
        assert!(ssh_url("ssh://d@h:x").is_err());
        assert!(ssh_url("ssh://d@h:99999").is_err());
        assert!(ssh_url("ssh://d@:22").is_err());
        assert!(ssh_url("ssh://d@h/x").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("1d").unwrap(), Duration::from_hours(24));
        for bad in ["", "5", "s", "2 s", "2x", "-1s", "1.5s"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volumes() {
        assert_eq!(
            volume("pgdata:/var/lib/postgresql/data").unwrap(),
            VolumeMount {
                source: "pgdata".into(),
                target: "/var/lib/postgresql/data".into(),
                read_only: false
            }
        );
        assert!(volume("/etc/x:/x:ro").unwrap().read_only);
        for bad in ["./data:/x", "Data:/x", "a:b", "a:/b:rx", "a", "a:/b:ro:x"] {
            assert!(volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_mappings() {
        assert_eq!(
            port_mapping("80:8080").unwrap(),
            PortMapping {
                host_ip: None,
                host: 80,
                container: 8080
            }
        );
        let p = port_mapping("127.0.0.1:8443:443").unwrap();
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(port_mapping("[::1]:80:80").unwrap().host, 80);
        for bad in ["80", "0:80", "80:70000", "x:80:80", "a:b", "1:2:3:4"] {
            assert!(port_mapping(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domains() {
        for (good, stored) in [
            ("shop.example", "shop.example"),
            ("Shop.Example", "shop.example"),
            ("localhost", "localhost"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("a-1.b2.example", "a-1.b2.example"),
            ("127.0.0.1", "127.0.0.1"),
        ] {
            assert_eq!(domain(good).unwrap(), stored, "{good}");
        }
        let long_label = format!("{}.example", "a".repeat(63));
        assert!(domain(&long_label).is_ok());
        for bad in [
            "",
            "shop.test;\n\tadd_header X yes",
            "shop.test;\nadd_header",
            "shop_test.example",
            "-shop.example",
            "shop-.example",
            "shop..example",
            "shop.example.",
            ".shop.example",
            "*.shop.example",
            "bücher.example",
            "https://shop.example",
            "shop.example:443",
            "shop.example/x",
            "shop example",
            "shop.example\0",
            "{shop}.example",
            "$(id).example",
        ] {
            assert!(domain(bad).is_err(), "{bad:?}");
        }
        assert!(domain(&format!("{}.example", "a".repeat(64))).is_err());
        assert!(domain(&format!("{}example", "abcdefghi.".repeat(25))).is_err());
        assert_eq!(
            domain("bücher.example").unwrap_err().help,
            "write the international name in its punycode form: `xn--bcher-kva.example`"
        );
    }

    #[test]
    fn health_paths() {
        for good in [
            "/api/health",
            "/api/health?deep=1&x=%20",
            "/a;b=c",
            "/it's/$(x)/(y)*+,!~@:",
        ] {
            assert_eq!(health_path(good).unwrap(), good);
        }
        for bad in [
            "api/health",
            "/a b",
            "/a\"b",
            "/a\\b",
            "/a\nb",
            "/a\tb",
            "/a#frag",
            "/a`id`",
            "/a%2",
            "/a%zz",
            "/a{b}",
            "/a<b>",
            "/a|b",
            "/ü",
        ] {
            assert!(health_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        for good in [
            "ops@shop.example",
            "a.b+tag@x-y.example",
            "o'neil@shop.example",
        ] {
            assert_eq!(email(good).unwrap(), good);
        }
        for bad in [
            "ops",
            "ops @shop.example",
            "ops@shop.example\nbcc@x.example",
            "@shop.example",
            "ops@",
            "ops@shop_x.example",
            ".ops@shop.example",
            "o..ps@shop.example",
            "o<p>s@shop.example",
            "ops@bücher.example",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn backup_copy_targets() {
        for good in [
            "/mnt/offsite/shop",
            "backup@vault.example:/srv/shop",
            "vault.example:/srv/shop it's",
            "_b.k-1@10.0.0.7:/srv",
        ] {
            assert_eq!(copy_to(good).unwrap(), good);
        }
        for bad in [
            "relative/dir",
            "-oProxyCommand=id:/srv",
            "vault.example:srv",
            "Root@vault.example:/srv",
            "a b@vault.example:/srv",
            "vault.example:/srv\nx",
            "/srv\nx",
            "vault_x:/srv",
        ] {
            assert!(copy_to(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn environment_names() {
        for good in ["production", "eu-west_2", "Staging"] {
            assert!(environment_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "prod env",
            "prod\nx",
            "prod;",
            "prod/x",
            &"a".repeat(64),
        ] {
            assert!(environment_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cron_schedules() {
        for good in [
            "0 2 * * *",
            "*/15 * * * 1-5",
            "0 0 1 jan,jul sun",
            "5,10 3-4/1 * * 7",
        ] {
            assert!(cron(good).is_ok(), "{good}");
        }
        for bad in [
            "0 2 * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "*/0 * * * *",
            "5-1 * * * *",
            "@daily",
        ] {
            assert!(cron(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn small_formats() {
        assert!(cidr("10.0.0.0/8").is_ok());
        assert!(cidr("2001:db8::/32").is_ok());
        assert!(cidr("10.0.0.0/33").is_err());
        assert!(cidr("example.com").is_err());
        assert!(stack_name("vaibava").is_ok());
        assert!(stack_name("Vaibava").is_err());
        assert!(stack_name("").is_err());
        assert!(stack_name(&"a".repeat(41)).is_err());
        assert!(fingerprint("SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s").is_ok());
        assert!(fingerprint("MD5:aa").is_err());
        assert!(fingerprint("SHA256:a b").is_err());
        assert!(
            acme_directory("letsencrypt")
                .unwrap()
                .starts_with("https://acme-v02")
        );
        assert!(acme_directory("ftp://x").is_err());
    }
}
