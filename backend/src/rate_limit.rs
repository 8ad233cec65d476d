//! Fixed-window request limits per key (a client address, a phone number or an email address).
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Counts requests per key in windows of `window`; at most `limit` per window.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Keys kept before expired windows are swept.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window: window.max(Duration::from_secs(1)),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `key`; `Err(seconds)` says how long to wait when over the limit.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= SWEEP_AT {
            let window = self.window;
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let left = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs() + u64::from(left.subsec_nanos() > 0));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_until_the_window_ends() {
        let limiter = RateLimiter::new(2, Duration::from_mins(1));
        let start = Instant::now();
        assert!(limiter.check_at("a", start).is_ok());
        assert!(limiter.check_at("a", start).is_ok());
        assert_eq!(
            limiter.check_at("a", start + Duration::from_secs(10)),
            Err(50)
        );
        assert!(limiter.check_at("b", start).is_ok());
        assert!(
            limiter
                .check_at("a", start + Duration::from_mins(1))
                .is_ok()
        );
    }
}
