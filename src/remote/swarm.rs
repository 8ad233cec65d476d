//! What a swarm node is asked over SSH: the address it reaches the others from.

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
