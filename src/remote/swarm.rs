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
