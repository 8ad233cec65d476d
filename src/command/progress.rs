//! Progress of applied steps, as plain lines on stderr.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::apply::Progress;

/// Prints `[i/n] summary` when a step starts and its time when it ends; transfer sizes at most every 2 s.
pub(crate) struct Lines {
    last_bytes: Mutex<Option<Instant>>,
    started: Instant,
}

impl Lines {
    pub(crate) fn new() -> Self {
        Self {
            last_bytes: Mutex::new(None),
            started: Instant::now(),
        }
    }
}

impl Progress for Lines {
    fn step_started(&self, index: usize, total: usize, summary: &str) {
        eprintln!("[{index}/{total}] {summary} …");
    }

    fn step_finished(&self, index: usize, total: usize, summary: &str, took: Duration) {
        eprintln!(
            "[{index}/{total}] {summary}: done in {:.1}s",
            took.as_secs_f64()
        );
    }

    fn bytes_sent(&self, total: u64) {
        let Ok(mut last) = self.last_bytes.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(2)) {
            return;
        }
        *last = Some(Instant::now());
        #[allow(clippy::cast_precision_loss)]
        let mb = total as f64 / 1_048_576.0;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        eprintln!("      sent {mb:.1} MB ({:.1} MB/s)", mb / secs);
    }
}
