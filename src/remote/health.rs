//! The health check Docker runs inside a container for an HTTP probe (a `CMD-SHELL` test, run by `/bin/sh -c`).

use super::{Command, q};

/// `GET http://127.0.0.1:<port><path>` with curl where the image has it, else with the backend's own checker.
pub fn http_check(port: u16, path: &str) -> Command {
    // One shell word whatever the path holds.
    let url = q(&format!("http://127.0.0.1:{port}{path}"));
    Command::script(format!(
        "if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null {url}; else vl-backend healthcheck --url {url}; fi"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_one_word() {
        assert_eq!(
            http_check(8080, "/api/health").text(),
            "if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null http://127.0.0.1:8080/api/health; else vl-backend healthcheck --url http://127.0.0.1:8080/api/health; fi"
        );
        assert_eq!(
            http_check(80, "/a b").text(),
            "if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null 'http://127.0.0.1:80/a b'; else vl-backend healthcheck --url 'http://127.0.0.1:80/a b'; fi"
        );
    }
}
