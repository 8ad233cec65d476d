//! Progress of applied steps, as plain lines on stderr.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::apply::Progress;

/// Prints `[i/n] summary` when a step starts and its time when it ends; transfer sizes at most every 2 s.
pub(crate) struct Lines {
    /// When the current transfer started, and when its size was last printed.
    transfer: Mutex<Option<(Instant, Instant)>>,
}

impl Lines {
    pub(crate) fn new() -> Self {
        Self {
            transfer: Mutex::new(None),
        }
    }
}

impl Progress for Lines {
    fn step_started(&self, index: usize, total: usize, summary: &str) {
        if let Ok(mut t) = self.transfer.lock() {
            *t = None;
        }
        eprintln!("[{index}/{total}] {summary} …");
    }

    fn step_finished(&self, index: usize, total: usize, summary: &str, took: Duration) {
        eprintln!(
            "[{index}/{total}] {summary}: done in {:.1}s",
            took.as_secs_f64()
        );
    }

    fn bytes_sent(&self, total: u64) {
        let Ok(mut transfer) = self.transfer.lock() else {
            return;
        };
        let now = Instant::now();
        let (started, last) = *transfer.get_or_insert((now, now));
        if now.duration_since(last) < Duration::from_secs(2) {
            return;
        }
        *transfer = Some((started, now));
        #[allow(clippy::cast_precision_loss)]
        let mb = total as f64 / 1_048_576.0;
        let secs = now.duration_since(started).as_secs_f64().max(0.001);
        eprintln!("      sent {mb:.1} MB ({:.1} MB/s)", mb / secs);
    }
}
