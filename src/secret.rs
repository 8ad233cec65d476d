//! A value that never prints itself: `Display`, `Debug` and `Serialize` all redact.

use std::fmt;

/// What a secret looks like wherever it would otherwise be printed.
pub const REDACTED: &str = "<secret>";

/// A string that must never reach output: plan, logs, errors, audit.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value, for the few places that hand it to the host (a 0600 file, a container's env).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printer_redacts() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&s)), format!("Some({REDACTED})"));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{REDACTED}\"")
        );
        assert_eq!(s.expose(), "hunter2");
    }
}

/// Replaces every occurrence of any secret value in `text` with the redaction marker.
/// The last line of defence for text that came from elsewhere (a remote error, a log line).
pub fn scrub(text: &str, secrets: &[Secret]) -> String {
    let mut out = text.to_string();
    let mut values: Vec<&str> = secrets
        .iter()
        .map(Secret::expose)
        .filter(|v| v.len() >= 4)
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values {
        out = out.replace(v, REDACTED);
    }
    out
}

#[cfg(test)]
mod scrub_tests {
    use super::*;

    #[test]
    fn scrub_replaces_every_secret_longest_first() {
        let s = [Secret::new("pass"), Secret::new("password123")];
        assert_eq!(
            scrub("a password123 b pass", &s),
            format!("a {REDACTED} b {REDACTED}")
        );
        assert_eq!(scrub("nothing here", &s), "nothing here");
    }
}
