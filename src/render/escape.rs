//! Escapers: one function per target language that a rendered value lands in, each registered as a template filter.
//!
//! Grammar is checked when stack.yaml is loaded (a domain is RFC 1123 labels, a path is a path); these functions
//! are the second wall: whatever string reaches a template, the text it becomes is one token of its target
//! (one nginx string, one shell word, one JSON string, one nftables string, one comment line), or rendering fails
//! naming the value's problem. Plain words are left as they are, so ordinary values render unchanged.

use std::fmt::Write as _;

/// Why a value cannot be written in a target language at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsafe(pub String);

fn shown(s: &str) -> String {
    crate::stack::shown_within(s, 60)
}

fn shown_char(c: char) -> String {
    if c.is_control() {
        c.escape_debug().to_string()
    } else {
        c.to_string()
    }
}

fn plain_word(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') || extra.contains(&b)
        })
}

/// The longest value [`nginx_str`] writes: nginx reads a configuration through a 4 KiB buffer, and no token (a
/// comment is one) may be longer.
const NGINX_MAX: usize = 2048;

/// How much of a value [`line`] keeps: comments stay shorter than nginx's longest token.
const LINE_MAX: usize = 200;

/// One nginx configuration token. A plain word (`shop.example`, `/etc/nginx/certs/x.pem`, `host:8080`) is left
/// bare; anything else is a double-quoted string in which `\` and `"` are escaped and newline, tab and carriage
/// return are written `\n`, `\t`, `\r` (nginx reads those escapes back). `;`, `{`, `}` and `#` inside the quotes
/// are plain characters to nginx. Refused: `$` (nginx expands variables inside quotes too, and has no escape for
/// it) and other control characters.
pub fn nginx_str(s: &str) -> Result<String, Unsafe> {
    if s.len() > NGINX_MAX {
        return Err(Unsafe(format!(
            "`{}` is {} bytes long; an nginx string takes at most {NGINX_MAX}",
            shown(s),
            s.len()
        )));
    }
    if s.contains('$') {
        return Err(Unsafe(format!(
            "`{}` holds `$`, which nginx reads as a variable",
            shown(s)
        )));
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(Unsafe(format!(
            "`{}` holds the control character `{}`, which an nginx string cannot carry",
            shown(s),
            shown_char(c)
        )));
    }
    if plain_word(s, b"/:") {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// One POSIX shell word: the project's one shell quoter ([`crate::remote::shell_quote`]). A NUL byte is
/// refused: no shell word can hold one, and bash will not run a script file that contains one.
pub fn sh(s: &str) -> Result<String, Unsafe> {
    if s.contains('\0') {
        return Err(Unsafe(format!(
            "`{}` holds a NUL byte, which a shell word cannot carry",
            shown(s)
        )));
    }
    Ok(crate::remote::shell_quote(s).into_owned())
}

/// One shell word in the command part of a crontab line: shell-quoted, and `%` (which cron turns into a newline)
/// written `\%`. A newline, carriage return or NUL cannot be carried by a cron line and is refused.
pub fn cron_cmd(s: &str) -> Result<String, Unsafe> {
    if let Some(c) = s.chars().find(|c| matches!(c, '\n' | '\r' | '\0')) {
        return Err(Unsafe(format!(
            "`{}` holds `{}`, which would end or cut a cron line",
            shown(s),
            shown_char(c)
        )));
    }
    Ok(sh(s)?.replace('%', "\\%"))
}

/// The five time fields of a crontab line, as stack.yaml's `backup.schedule` grammar allows them: five fields of
/// digits, letters (`mon`, `jan`), `*`, `,`, `-` and `/`, separated by single spaces.
pub fn cron_schedule(s: &str) -> Result<String, Unsafe> {
    let fields: Vec<&str> = s.split(' ').collect();
    let ok = fields.len() == 5
        && fields.iter().all(|f| {
            !f.is_empty()
                && f.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b',' | b'-' | b'/'))
        });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Unsafe(format!(
            "`{}` is not five cron time fields",
            shown(s)
        )))
    }
}

/// A JSON string (quotes included).
pub fn json(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// An nftables quoted string (`comment "…"`). nft has no escape inside quotes, so `"`, `\` and control
/// characters are refused; so is more than 128 bytes, nft's limit for a comment.
pub fn nft_str(s: &str) -> Result<String, Unsafe> {
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '"' | '\\') || c.is_control())
    {
        return Err(Unsafe(format!(
            "`{}` holds `{}`, which an nftables string cannot carry",
            shown(s),
            shown_char(c)
        )));
    }
    if s.len() > 128 {
        return Err(Unsafe(format!(
            "`{}` is longer than the 128 bytes of an nftables comment",
            shown(s)
        )));
    }
    Ok(format!("\"{s}\""))
}

/// An address or network in an nftables set: `203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`, written back in
/// its canonical form. nft takes these bare, so anything that is not one is refused.
pub fn nft_addr(s: &str) -> Result<String, Unsafe> {
    let bad = || Unsafe(format!("`{}` is not an IP address or CIDR range", shown(s)));
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix {
        None => Ok(ip.to_string()),
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u8>() {
                Ok(n) if n <= max => Ok(format!("{ip}/{n}")),
                _ => Err(bad()),
            }
        }
        Some(_) => Err(bad()),
    }
}

/// One argument of a systemd `ExecStart=` line: a plain word bare, anything else double-quoted with `\` and `"`
/// escaped; `%` (a specifier) is written `%%` and `$` (a variable) `$$`. Control characters are refused.
pub fn systemd_arg(s: &str) -> Result<String, Unsafe> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(Unsafe(format!(
            "`{}` holds the control character `{}`, which a unit file line cannot carry",
            shown(s),
            shown_char(c)
        )));
    }
    let body = s.replace('%', "%%").replace('$', "$$");
    if plain_word(s, b"/:") {
        return Ok(body);
    }
    Ok(format!(
        "\"{}\"",
        body.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// Text on one line of any line-based file (a `#` comment, a unit's `Description=`): control characters, the
/// newline first, are shown as escapes (`\n`, `\u{0}`), so the text can never start a line of its own; past
/// 200 characters it is cut short with `…`.
pub fn line(s: &str) -> String {
    if s.chars().count() > LINE_MAX {
        let cut: String = s.chars().take(LINE_MAX).collect();
        let mut shortened = line(&cut);
        shortened.push('…');
        return shortened;
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Registers every escaper as a filter of `env`: `nginx_str`, `sh`, `cron_cmd`, `cron_schedule`, `json`,
/// `nft_str`, `nft_addr`, `systemd_arg`, `line`. HTML needs none: templates named `*.html` are auto-escaped.
pub(crate) fn register(env: &mut minijinja::Environment<'_>) {
    use minijinja::{Error, ErrorKind};
    fn fail(name: &str, e: &Unsafe) -> Error {
        Error::new(ErrorKind::InvalidOperation, format!("{name}: {e}"))
    }
    env.add_filter("nginx_str", |s: String| {
        nginx_str(&s).map_err(|e| fail("nginx_str", &e))
    });
    env.add_filter("sh", |s: String| sh(&s).map_err(|e| fail("sh", &e)));
    env.add_filter("cron_cmd", |s: String| {
        cron_cmd(&s).map_err(|e| fail("cron_cmd", &e))
    });
    env.add_filter("cron_schedule", |s: String| {
        cron_schedule(&s).map_err(|e| fail("cron_schedule", &e))
    });
    env.add_filter("json", |s: String| json(&s));
    env.add_filter("nft_str", |s: String| {
        nft_str(&s).map_err(|e| fail("nft_str", &e))
    });
    env.add_filter("nft_addr", |s: String| {
        nft_addr(&s).map_err(|e| fail("nft_addr", &e))
    });
    env.add_filter("systemd_arg", |s: String| {
        systemd_arg(&s).map_err(|e| fail("systemd_arg", &e))
    });
    env.add_filter("line", |s: String| line(&s));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nginx_strings() {
        for (input, expected) in [
            ("shop.example", "shop.example"),
            (
                "/etc/nginx/certs/current/fullchain.pem",
                "/etc/nginx/certs/current/fullchain.pem",
            ),
            ("backend-0123:8080", "backend-0123:8080"),
            ("a b", "\"a b\""),
            (
                "x;\n\tadd_header X-Injected yes",
                "\"x;\\n\\tadd_header X-Injected yes\"",
            ),
            ("a\"b", "\"a\\\"b\""),
            ("a\\b", "\"a\\\\b\""),
            ("{ } # ' `", "\"{ } # ' `\""),
            ("", "\"\""),
        ] {
            assert_eq!(nginx_str(input).unwrap(), expected, "{input:?}");
        }
        assert_eq!(
            nginx_str("$host").unwrap_err().to_string(),
            "`$host` holds `$`, which nginx reads as a variable"
        );
        assert!(nginx_str(&"a".repeat(2048)).is_ok());
        assert_eq!(
            nginx_str(&"a".repeat(2049)).unwrap_err().to_string(),
            format!(
                "`{}…` is 2049 bytes long; an nginx string takes at most 2048",
                "a".repeat(60)
            )
        );
        assert_eq!(
            nginx_str("a\0b").unwrap_err().to_string(),
            "`a\\0b` holds the control character `\\0`, which an nginx string cannot carry"
        );
    }

    #[test]
    fn shell_words_and_cron_commands() {
        assert_eq!(
            sh("/var/lib/vldeploy/shop/backup/backup.sh").unwrap(),
            "/var/lib/vldeploy/shop/backup/backup.sh"
        );
        assert_eq!(sh("it's $(x)").unwrap(), r"'it'\''s $(x)'");
        assert_eq!(
            sh("a\0b").unwrap_err().to_string(),
            "`a\\0b` holds a NUL byte, which a shell word cannot carry"
        );
        assert_eq!(cron_cmd("/usr/bin/x").unwrap(), "/usr/bin/x");
        assert_eq!(cron_cmd("50%").unwrap(), "50\\%");
        assert_eq!(cron_cmd("a b%c").unwrap(), "'a b\\%c'");
        assert_eq!(
            cron_cmd("a\nb").unwrap_err().to_string(),
            "`a\\nb` holds `\\n`, which would end or cut a cron line"
        );
        assert!(cron_cmd("a\rb").is_err());
        assert!(cron_cmd("a\0b").is_err());
    }

    #[test]
    fn cron_schedules() {
        for good in ["0 2 * * *", "*/15 1-5 1,15 jan mon-fri"] {
            assert_eq!(cron_schedule(good).unwrap(), good);
        }
        for bad in [
            "0 2 * *",
            "0 2 * * * *",
            "0  2 * * *",
            "0 2 * * *\n* * * * * root id",
            "0 2 * * $(id)",
            "",
        ] {
            assert!(cron_schedule(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            cron_schedule("0 2 * * *\nx").unwrap_err().to_string(),
            "`0 2 * * *\\nx` is not five cron time fields"
        );
    }

    #[test]
    fn json_strings() {
        assert_eq!(json("plain"), "\"plain\"");
        assert_eq!(json("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn nftables_strings_and_addresses() {
        assert_eq!(
            nft_str("vldeploy sha256:0123").unwrap(),
            "\"vldeploy sha256:0123\""
        );
        for bad in ["a\"b", "a\\b", "a\nb", &"x".repeat(129)] {
            assert!(nft_str(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            nft_str("a\"; drop").unwrap_err().to_string(),
            "`a\"; drop` holds `\"`, which an nftables string cannot carry"
        );
        assert_eq!(nft_addr("203.0.113.7").unwrap(), "203.0.113.7");
        assert_eq!(nft_addr("10.0.0.0/8").unwrap(), "10.0.0.0/8");
        assert_eq!(nft_addr("2001:DB8::/32").unwrap(), "2001:db8::/32");
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "1.2.3.4 } accept",
            "x",
            "",
        ] {
            assert!(nft_addr(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            nft_addr("1.2.3.4 } accept").unwrap_err().to_string(),
            "`1.2.3.4 } accept` is not an IP address or CIDR range"
        );
    }

    #[test]
    fn systemd_arguments() {
        assert_eq!(
            systemd_arg("/etc/vldeploy/firewall.nft").unwrap(),
            "/etc/vldeploy/firewall.nft"
        );
        assert_eq!(systemd_arg("a b").unwrap(), "\"a b\"");
        assert_eq!(systemd_arg("100%").unwrap(), "\"100%%\"");
        assert_eq!(systemd_arg("$HOME \"x\"").unwrap(), "\"$$HOME \\\"x\\\"\"");
        assert!(systemd_arg("a\nExecStart=/bin/id").is_err());
    }

    #[test]
    fn one_line_text() {
        assert_eq!(line("shop"), "shop");
        assert_eq!(line("a\nb\tc\r\0"), "a\\nb\\tc\\r\\u{0}");
        assert_eq!(line("ünï {;}"), "ünï {;}");
        assert_eq!(line(&"a\n".repeat(150)), format!("{}…", "a\\n".repeat(100)));
    }
}
