//! Times as people read them: a date, how long ago, how long.

use std::time::{Duration, UNIX_EPOCH};

/// `2026-12-01 23:05 UTC`.
pub fn date(epoch: u64) -> String {
    let text =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(epoch)).to_string();
    // `2026-12-01T23:05:09Z` → `2026-12-01 23:05 UTC`
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => text,
    }
}

/// A span in its two largest units: `40 s`, `12 min`, `2 h 5 min`, `3 d 4 h`.
pub fn span(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    let pair = |a: u64, ua: &str, b: u64, ub: &str| {
        if b == 0 {
            format!("{a} {ua}")
        } else {
            format!("{a} {ua} {b} {ub}")
        }
    };
    if d > 0 {
        pair(d, "d", h, "h")
    } else if h > 0 {
        pair(h, "h", m, "min")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{secs} s")
    }
}

/// `12 min ago`, `just now`, or `in 3 d 4 h` for a time still to come.
pub fn relative(epoch: u64, now: u64) -> String {
    match now.checked_sub(epoch) {
        Some(0..=4) => "just now".into(),
        Some(past) => format!("{} ago", span(past)),
        None => format!("in {}", span(epoch - now)),
    }
}

/// `2026-12-01 23:05 UTC (12 min ago)`.
pub fn when(epoch: u64, now: u64) -> String {
    format!("{} ({})", date(epoch), relative(epoch, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_day_and_minute() {
        assert_eq!(date(1_796_159_922), "2026-12-01 21:18 UTC");
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
    }

    #[test]
    fn spans_keep_two_units() {
        assert_eq!(span(40), "40 s");
        assert_eq!(span(12 * 60 + 5), "12 min");
        assert_eq!(span(2 * 3600 + 5 * 60 + 7), "2 h 5 min");
        assert_eq!(span(2 * 3600), "2 h");
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 59), "3 d 4 h");
        assert_eq!(span(86_400), "1 d");
    }

    #[test]
    fn relative_times_say_which_way() {
        let now = 1_796_159_922;
        assert_eq!(relative(now - 2, now), "just now");
        assert_eq!(relative(now - 12 * 60, now), "12 min ago");
        assert_eq!(relative(now + 3 * 86_400, now), "in 3 d");
        assert_eq!(
            when(now - 12 * 60, now),
            "2026-12-01 21:06 UTC (12 min ago)"
        );
    }
}
