//! What a swarm node is asked over SSH: the address it reaches the others from, and whether Swarm's ports of the
//! other nodes answer it.

use super::Command;

/// The route to a public address, one line: `1.1.1.1 via … dev eth0 src 172.30.0.2 …`; its `src` is the address
/// the host sends from, which it advertises to the swarm. The lookup sends no packet.
pub fn route_source() -> Command {
    Command::argv(["ip", "-4", "-o", "route", "get", "1.1.1.1"])
}

/// The `src` address of a [`route_source`] line.
pub fn parse_route_source(text: &str) -> Option<std::net::IpAddr> {
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// Probes each `(address, port)` over TCP at once, 2 s each at most: one line `address:port open` or
/// `address:port closed` per probe (in any order).
pub fn port_probes(probes: &[(std::net::IpAddr, u16)]) -> Command {
    use std::fmt::Write as _;
    let mut script = String::new();
    for (address, port) in probes {
        let _ = write!(
            script,
            "(timeout 2 bash -c '</dev/tcp/{address}/{port}' 2>/dev/null && echo '{address}:{port} open' || echo '{address}:{port} closed') & "
        );
    }
    script.push_str("wait");
    // Every value is an IP address and a number: nothing to quote.
    Command::script(script)
}

/// The `(address:port, open)` answers of [`port_probes`].
pub fn parse_port_probes(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|l| {
            let (at, said) = l.trim().split_once(' ')?;
            match said {
                "open" => Some((at.to_owned(), true)),
                "closed" => Some((at.to_owned(), false)),
                _ => None,
            }
        })
        .collect()
}

/// A service task's command: `sh -c` exports each `(variable, file)` secret as its variable (the variable
/// names are checked by the caller), then runs `argv` in its place.
pub fn secrets_entrypoint(files: &[(String, String)], argv: &[String]) -> Vec<String> {
    use std::fmt::Write as _;
    let mut script = String::new();
    for (variable, path) in files {
        let _ = write!(
            script,
            "{variable}=\"$(cat {path})\" && export {variable} && ",
            path = super::shell_quote(path)
        );
    }
    script.push_str("exec \"$@\"");
    let mut command = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        script,
        "vldeploy-secrets".to_string(),
    ];
    command.extend(argv.iter().cloned());
    command
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_route_lookup_is_one_ip_command() {
        assert_eq!(route_source().text(), "ip -4 -o route get 1.1.1.1");
    }

    #[test]
    fn port_probes_run_at_once_and_answer_one_line_each() {
        let probes = [
            ("10.0.0.2".parse().unwrap(), 2377),
            ("10.0.0.3".parse().unwrap(), 7946),
        ];
        assert_eq!(
            port_probes(&probes).text(),
            "(timeout 2 bash -c '</dev/tcp/10.0.0.2/2377' 2>/dev/null && echo '10.0.0.2:2377 open' || echo '10.0.0.2:2377 closed') & (timeout 2 bash -c '</dev/tcp/10.0.0.3/7946' 2>/dev/null && echo '10.0.0.3:7946 open' || echo '10.0.0.3:7946 closed') & wait"
        );
        assert_eq!(
            parse_port_probes("10.0.0.3:7946 closed\n10.0.0.2:2377 open\nbash: warning\n"),
            [
                ("10.0.0.3:7946".to_owned(), false),
                ("10.0.0.2:2377".to_owned(), true)
            ]
        );
    }

    #[test]
    fn the_source_address_is_read_from_the_route() {
        assert_eq!(
            parse_route_source(
                "1.1.1.1 via 172.30.0.1 dev eth0 src 172.30.0.2 uid 0 \\    cache \n"
            ),
            Some("172.30.0.2".parse().unwrap())
        );
        assert_eq!(
            parse_route_source("RTNETLINK answers: Network is unreachable"),
            None
        );
        assert_eq!(parse_route_source("1.1.1.1 dev eth0 src ;rm"), None);
    }
}
