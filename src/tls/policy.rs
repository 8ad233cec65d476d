//! When to renew, how long to back off after a failure, and what a CA's `Retry-After` asks for: pure decisions.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::cert::CertInfo;
use super::state::Status;

/// Below this lifetime, a certificate is renewed at half of it instead of at two thirds.
pub(super) const SHORT_LIFETIME_S: u64 = 10 * 86_400;
/// The first wait after a failed attempt; it doubles with each further failure.
pub(super) const BACKOFF_FIRST_S: u64 = 5 * 60;
/// The longest wait between attempts, so a certificate is still retried several times a day.
pub(super) const BACKOFF_MAX_S: u64 = 6 * 3600;
/// A CA that says `rateLimited` without saying until when is left alone at least this long.
pub(super) const RATE_LIMITED_MIN_S: u64 = 3600;

/// The moment a certificate becomes due: a third of its lifetime left (half, below ten days).
pub fn renew_at(cert: &CertInfo) -> u64 {
    let life = cert.lifetime_s();
    let keep = if life < SHORT_LIFETIME_S {
        life / 2
    } else {
        life / 3
    };
    cert.not_after.saturating_sub(keep)
}

/// What a renewal check decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Ask the CA now, for this reason.
    Renew { reason: String },
    /// Nothing to do before `at` (the certificate is not due).
    Wait { at: u64 },
    /// Due, but an earlier failure (or the CA) asks to wait until `at`.
    Backoff { at: u64 },
}

/// Decides whether to ask the CA now. `force` renews a certificate that is not due, but never before a
/// CA's `Retry-After`.
pub fn decide(
    now: u64,
    cert: Option<&CertInfo>,
    domains: &[String],
    status: &Status,
    force: bool,
) -> Decision {
    let reason = match cert {
        None => Some("no certificate is installed".to_string()),
        Some(c) if c.placeholder => Some("only the placeholder is installed".to_string()),
        Some(c) if !same_names(&c.sans, domains) => Some(format!(
            "the certificate names {} but the stack serves {}",
            c.sans.join(", "),
            domains.join(", ")
        )),
        Some(c) if now >= renew_at(c) => Some(format!(
            "it expires {} and is due for renewal since {}",
            date(c.not_after),
            date(renew_at(c))
        )),
        Some(_) if force => Some("renewal was forced".to_string()),
        Some(_) => None,
    };
    let Some(reason) = reason else {
        return Decision::Wait {
            at: cert.map_or(now, renew_at),
        };
    };
    if let Some(at) = status.retry_after.filter(|at| *at > now) {
        return Decision::Backoff { at };
    }
    if let Some(at) = status.next_attempt.filter(|at| !force && *at > now) {
        return Decision::Backoff { at };
    }
    Decision::Renew { reason }
}

fn same_names(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

/// The wait after the `failures`-th failure in a row: 5 min, 10 min, 20 min, … at most 6 h.
pub fn backoff(failures: u32) -> u64 {
    let shift = failures.saturating_sub(1).min(16);
    (BACKOFF_FIRST_S << shift).min(BACKOFF_MAX_S)
}

/// When the next attempt may happen after a failure: the backoff, or later when the CA asked for it.
pub(super) fn next_attempt(now: u64, failures: u32, retry_after: Option<u64>) -> u64 {
    (now + backoff(failures)).max(retry_after.unwrap_or(0))
}

/// A `Retry-After` header value (seconds, or an HTTP date) as an absolute time.
pub fn parse_retry_after(value: &str, now: u64) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(now + secs);
    }
    // IMF-fixdate: `Wed, 21 Oct 2015 07:28:00 GMT`.
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let text = format!("{year}-{month:02}-{day:0>2}T{time}Z");
    parse_rfc3339(&text)
}

/// The time a CA's problem text names, as in Let's Encrypt's `retry after 2025-05-01 10:00:00 UTC`.
pub(super) fn retry_after_in_detail(detail: &str) -> Option<u64> {
    let lower = detail.to_ascii_lowercase();
    let start = lower.find("retry after ")? + "retry after ".len();
    let rest = detail.get(start..)?;
    let mut words = rest.split_whitespace();
    let day = words.next()?;
    let time = words.next()?.trim_end_matches([',', ':', '.']);
    parse_rfc3339(&format!("{day}T{time}Z"))
}

fn parse_rfc3339(text: &str) -> Option<u64> {
    humantime::parse_rfc3339(text)
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// A time for people: `2025-05-01T10:00:00Z`.
pub fn date(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(epoch)).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cert(not_before: u64, days: u64, sans: &[&str]) -> CertInfo {
        CertInfo {
            serial: "01".into(),
            fingerprint: "ff".into(),
            not_before,
            not_after: not_before + days * 86_400,
            sans: sans.iter().map(|s| (*s).to_string()).collect(),
            issuer: "CA".into(),
            key_type: "ecdsa-p256".into(),
            placeholder: false,
        }
    }

    fn names() -> Vec<String> {
        vec!["shop.test".into()]
    }

    #[test]
    fn a_90_day_certificate_is_due_with_30_days_left_and_a_6_day_one_at_half() {
        let c = cert(1_000_000, 90, &["shop.test"]);
        assert_eq!(renew_at(&c), 1_000_000 + 60 * 86_400);
        let short = cert(1_000_000, 6, &["shop.test"]);
        assert_eq!(renew_at(&short), 1_000_000 + 3 * 86_400);
        let tiny = CertInfo {
            not_after: 1_000_000 + 120,
            ..short
        };
        assert_eq!(renew_at(&tiny), 1_000_060);
    }

    #[test]
    fn decisions() {
        let s = Status::default();
        let c = cert(1_000_000, 90, &["shop.test"]);
        let before = 1_000_000 + 59 * 86_400;
        let after = 1_000_000 + 61 * 86_400;
        assert_eq!(
            decide(before, Some(&c), &names(), &s, false),
            Decision::Wait {
                at: 1_000_000 + 60 * 86_400
            }
        );
        assert!(matches!(
            decide(after, Some(&c), &names(), &s, false),
            Decision::Renew { .. }
        ));
        assert!(matches!(
            decide(before, Some(&c), &names(), &s, true),
            Decision::Renew { .. }
        ));
        assert!(matches!(
            decide(before, None, &names(), &s, false),
            Decision::Renew { .. }
        ));
        let other = cert(1_000_000, 90, &["old.test"]);
        let Decision::Renew { reason } = decide(before, Some(&other), &names(), &s, false) else {
            panic!("a certificate for other names is replaced");
        };
        assert!(reason.contains("old.test"), "{reason}");
        let placeholder = CertInfo {
            placeholder: true,
            ..c.clone()
        };
        assert!(matches!(
            decide(before, Some(&placeholder), &names(), &s, false),
            Decision::Renew { .. }
        ));
    }

    #[test]
    fn failures_back_off_and_retry_after_holds_even_when_forced() {
        let c = cert(1_000_000, 90, &["shop.test"]);
        let now = 1_000_000 + 61 * 86_400;
        let failed = Status {
            failures: 2,
            next_attempt: Some(now + 100),
            ..Status::default()
        };
        assert_eq!(
            decide(now, Some(&c), &names(), &failed, false),
            Decision::Backoff { at: now + 100 }
        );
        assert!(matches!(
            decide(now, Some(&c), &names(), &failed, true),
            Decision::Renew { .. }
        ));
        let limited = Status {
            retry_after: Some(now + 7200),
            ..failed
        };
        assert_eq!(
            decide(now, Some(&c), &names(), &limited, true),
            Decision::Backoff { at: now + 7200 }
        );
        assert!(matches!(
            decide(now + 7201, Some(&c), &names(), &limited, false),
            Decision::Renew { .. }
        ));
    }

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        assert_eq!(backoff(1), 300);
        assert_eq!(backoff(2), 600);
        assert_eq!(backoff(3), 1200);
        assert_eq!(backoff(30), BACKOFF_MAX_S);
        assert_eq!(next_attempt(1000, 1, None), 1300);
        assert_eq!(next_attempt(1000, 1, Some(5000)), 5000);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120", 1000), Some(1120));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 0),
            Some(1_445_412_480)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(
            retry_after_in_detail(
                "too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2015-10-21 07:28:00 UTC: see https://letsencrypt.org/docs/rate-limits/"
            ),
            Some(1_445_412_480)
        );
        assert_eq!(retry_after_in_detail("no hint here"), None);
        assert_eq!(date(1_445_412_480), "2015-10-21T07:28:00Z");
    }
}
