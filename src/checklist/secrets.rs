//! The `secrets` item: no secret is a known default, empty, or short and guessable. Only names are reported.

use crate::secret::Secret;

/// Values that ship in examples, tutorials and images: never acceptable in a live shop.
const DEFAULTS: &[&str] = &[
    "securepassword",
    "change_this_secret",
    "changethissecret",
    "change_me",
    "changeme",
    "postgres",
    "password",
    "password1",
    "password123",
    "passw0rd",
    "admin",
    "admin123",
    "root",
    "secret",
    "default",
    "test",
    "example",
    "letmein",
    "123456",
    "12345678",
    "qwerty",
    "vaibava",
];

/// Shorter than this is too short for a secret, whatever its letters.
const MIN_LENGTH: usize = 12;
/// Below this many bits (length × Shannon entropy per character), a value is guessable.
const MIN_BITS: f64 = 48.0;

/// Why a secret is weak, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weakness {
    Empty,
    KnownDefault,
    Short { length: usize },
    LowEntropy,
}

impl Weakness {
    pub fn describe(&self) -> String {
        match self {
            Self::Empty => "empty".into(),
            Self::KnownDefault => "a well-known default value".into(),
            Self::Short { length } => {
                format!("only {length} characters (at least {MIN_LENGTH} are needed)")
            }
            Self::LowEntropy => "too predictable (repeated or sequential characters)".into(),
        }
    }
}

/// Judges one value.
pub fn weakness(value: &str) -> Option<Weakness> {
    if value.trim().is_empty() {
        return Some(Weakness::Empty);
    }
    let folded: String = value
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if DEFAULTS
        .iter()
        .any(|d| value.eq_ignore_ascii_case(d) || folded == d.replace('_', ""))
    {
        return Some(Weakness::KnownDefault);
    }
    let length = value.chars().count();
    if length < MIN_LENGTH {
        return Some(Weakness::Short { length });
    }
    if bits(value) < MIN_BITS || sequential(value) {
        return Some(Weakness::LowEntropy);
    }
    None
}

/// Length × Shannon entropy of the value's own character distribution.
fn bits(value: &str) -> f64 {
    let mut counts = std::collections::BTreeMap::new();
    let mut n = 0usize;
    for c in value.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        n += 1;
    }
    let n_f = n as f64;
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n_f;
            -p * p.log2()
        })
        .sum();
    per_char * n_f
}

/// Values like `abcdefghijklmnop` or `1234567890123`: each character one step from the last.
fn sequential(value: &str) -> bool {
    let codes: Vec<i64> = value.chars().map(|c| i64::from(u32::from(c))).collect();
    let steps: Vec<i64> = codes.windows(2).map(|w| w[1] - w[0]).collect();
    !steps.is_empty() && steps.iter().all(|&s| s == steps[0] && s.abs() <= 1)
}

/// Every weak secret, by name: `(name, weakness)`.
pub fn weak_secrets(named: &[(String, Secret)]) -> Vec<(String, Weakness)> {
    named
        .iter()
        .filter_map(|(name, value)| weakness(value.expose()).map(|w| (name.clone(), w)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_empty_and_short_values_are_weak() {
        for v in [
            "securepassword",
            "change_this_secret",
            "CHANGE-THIS-SECRET",
            "postgres",
            "Password",
            "changeme",
        ] {
            assert_eq!(weakness(v), Some(Weakness::KnownDefault), "{v}");
        }
        assert_eq!(weakness(""), Some(Weakness::Empty));
        assert_eq!(weakness("   "), Some(Weakness::Empty));
        assert_eq!(weakness("x7Kp2q"), Some(Weakness::Short { length: 6 }));
    }

    #[test]
    fn long_but_predictable_values_are_weak() {
        assert_eq!(weakness("aaaaaaaaaaaaaaaaaaaa"), Some(Weakness::LowEntropy));
        assert_eq!(weakness("abcdefghijklmnop"), Some(Weakness::LowEntropy));
        assert_eq!(weakness("1212121212121212"), Some(Weakness::LowEntropy));
    }

    #[test]
    fn generated_values_pass() {
        for v in [
            "b3f1c9a0d2e84f6a9c1d7e2b",
            "R9v!tQ2#mL8xZ4wP",
            "correct-horse-battery-staple-42",
        ] {
            assert_eq!(weakness(v), None, "{v}");
        }
    }

    #[test]
    fn only_names_come_back() {
        let named = vec![
            (
                "ADMIN_TOKEN".to_string(),
                Secret::new("b3f1c9a0d2e84f6a9c1d7e2b"),
            ),
            ("POSTGRES_PASSWORD".to_string(), Secret::new("postgres")),
        ];
        let weak = weak_secrets(&named);
        assert_eq!(
            weak,
            vec![("POSTGRES_PASSWORD".to_string(), Weakness::KnownDefault)]
        );
        assert!(!format!("{weak:?}").contains("b3f1c9"));
    }
}
