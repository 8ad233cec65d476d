//! Shell quoting: the one function that makes a value one word for a POSIX shell.

use std::borrow::Cow;

/// Quotes `s` as one word for a POSIX shell. Plain words are left alone; anything else is wrapped in single
/// quotes, with each `'` written as `'\''`.
pub fn shell_quote(s: &str) -> Cow<'_, str> {
    let plain = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'.' | b'_' | b'-' | b'+' | b'=' | b':' | b'@' | b',' | b'%'
                )
        })
        && !s.starts_with('-');
    if plain {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("'{}'", s.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(
            shell_quote("/opt/vldeploy/nginx.conf"),
            "/opt/vldeploy/nginx.conf"
        );
        assert_eq!(shell_quote("a=b,c:d@e%f+g"), "a=b,c:d@e%f+g");
    }

    #[test]
    fn everything_else_is_single_quoted() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(shell_quote("-rf"), "'-rf'");
        assert_eq!(shell_quote("a\nb"), "'a\nb'");
        assert_eq!(shell_quote("*"), "'*'");
    }

    #[test]
    fn quoted_words_survive_a_real_shell() {
        for word in [
            "it's", "a b", "$HOME", "`id`", "\\", "''", "\"x\"", "-n", "ünï", "a\nb", "",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(word)))
                .output()
                .expect("sh runs");
            assert_eq!(
                String::from_utf8(out.stdout).expect("utf-8"),
                word,
                "word {word:?}"
            );
        }
    }
}
