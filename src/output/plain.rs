//! Plain lines on stderr, for logs and pipes: one line per step start and end, transfer sizes every 2 s.

use std::io::Write;
use std::time::{Duration, Instant};

use super::event::{Event, LogTail, Step, megabytes};
use super::{Clock, Render};

/// How often a transfer's size is printed.
const EVERY: Duration = Duration::from_secs(2);

/// Renders events as the lines vldeploy has always printed.
pub(crate) struct Plain {
    out: Box<dyn Write + Send>,
    clock: Clock,
    /// When the current step's transfer started, and when its size was last printed.
    transfer: Option<(Instant, Instant)>,
    /// The step the transfer belongs to, when its events name it (steps running at once).
    transfer_step: Option<Step>,
}

impl Plain {
    pub(crate) fn new(out: Box<dyn Write + Send>, clock: Clock) -> Self {
        Self {
            out,
            clock,
            transfer: None,
            transfer_step: None,
        }
    }

    /// A step ended: its transfer's timing with it (a step that ends beside a transfer leaves that alone).
    fn end_transfer(&mut self, ended: &Step) {
        if self.transfer_step.as_ref().is_none_or(|s| s == ended) {
            self.transfer = None;
            self.transfer_step = None;
        }
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// `      sent 12.3 MB (4.5 MB/s)` (with a known total: `3.0 of 12.0 MB (25%), 1.5 MB/s, 6s left`), at most every 2 s (the first one 2 s after the transfer began).
    fn progress(&mut self, bytes: u64, total: Option<u64>) {
        let now = (self.clock)();
        let (started, last) = *self.transfer.get_or_insert((now, now));
        if now.duration_since(last) < EVERY {
            return;
        }
        self.transfer = Some((started, now));
        let mb = megabytes(bytes);
        let rate = mb / now.duration_since(started).as_secs_f64().max(0.001);
        let text = match total {
            Some(total) if total > 0 => {
                let total_mb = megabytes(total);
                let left = (total_mb - mb).max(0.0) / rate.max(0.001);
                format!(
                    "      {mb:.1} of {total_mb:.1} MB ({:.0}%), {rate:.1} MB/s, {left:.0}s left",
                    mb / total_mb * 100.0
                )
            }
            _ => format!("      sent {mb:.1} MB ({rate:.1} MB/s)"),
        };
        self.line(&text);
    }
}

/// `[2/5] summary`, or `  phase` for a phase without a number.
fn head(step: &Step) -> String {
    match step.position {
        Some(_) => step.label(),
        None => format!("  {}", step.summary),
    }
}

/// ` 3.4 MB, 5.6 MB/s` after a phase's time, when it counted bytes.
fn rate(took: Duration, bytes: Option<u64>) -> String {
    bytes.map_or_else(String::new, |b| {
        let mb = megabytes(b);
        format!(
            "  {mb:.1} MB, {:.1} MB/s",
            mb / took.as_secs_f64().max(0.001)
        )
    })
}

/// The lines of a failing container's log, unless the error quotes them already.
pub(crate) fn log_lines(log: Option<&LogTail>) -> Vec<String> {
    match log {
        Some(l) if !l.in_error && !l.lines.is_empty() => {
            std::iter::once(format!("  last log lines of `{}`:", l.container))
                .chain(l.lines.iter().map(|x| format!("    {x}")))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The final error as people read it: `error: …` (once, even when the message already starts so).
pub(crate) fn error_text(text: &str) -> String {
    if text.starts_with("error") {
        text.to_string()
    } else {
        format!("error: {text}")
    }
}

impl Render for Plain {
    fn render(&mut self, event: &Event) {
        match event {
            Event::StepStarted(step) => {
                self.transfer = None;
                self.line(&format!("{} …", head(step)));
            }
            Event::Progress { step, bytes, total } => {
                self.transfer_step.clone_from(step);
                self.progress(*bytes, *total);
            }
            Event::StepDone { step, took, bytes } => {
                self.end_transfer(step);
                let secs = took.as_secs_f64();
                let text = match step.position {
                    Some(_) => format!("{}: done in {secs:.1}s", head(step)),
                    None => format!("{}: done {secs:.1}s{}", head(step), rate(*took, *bytes)),
                };
                self.line(&text);
            }
            Event::StepFailed {
                step, took, log, ..
            } => {
                self.end_transfer(step);
                self.line(&format!(
                    "{}: failed after {:.1}s",
                    head(step),
                    took.as_secs_f64()
                ));
                for l in log_lines(log.as_ref()) {
                    self.line(&l);
                }
            }
            Event::Note(text) | Event::Log(text) => self.line(text),
            Event::Warning(text) => self.line(&format!("warning: {text}")),
            Event::Error(text) => self.line(&error_text(text)),
            Event::Prompt(text) => {
                let _ = write!(self.out, "{text}");
                let _ = self.out.flush();
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{fixed_sequence, render_all};
    use super::*;

    #[test]
    fn output_plain_renders_a_run_as_todays_lines() {
        let text = render_all(
            |out, clock| Box::new(Plain::new(out, clock)),
            &fixed_sequence(),
        );
        assert_eq!(
            text,
            "\
[1/3] create network `vl_net` …
[1/3] create network `vl_net`: done in 0.2s
[2/3] send images …
      sent 8.0 MB (4.0 MB/s)
      sent 20.0 MB (5.0 MB/s)
[2/3] send images: done in 4.5s
warning: `DB_PASSWORD` is set in this shell's environment
[3/3] release `backend` …
[3/3] release `backend`: failed after 31.0s
  last log lines of `vl_backend_candidate`:
    listening on 0.0.0.0:8080
    panic: cannot reach the database
  load …
      3.0 of 12.0 MB (25%), 1.5 MB/s, 6s left
  load: done 4.0s  12.0 MB, 3.0 MB/s
nothing was changed
error: step 3/3 `release `backend`` failed
"
        );
    }

    #[test]
    fn output_plain_says_error_once() {
        assert_eq!(error_text("error: no"), "error: no");
        assert_eq!(error_text("no host"), "error: no host");
    }
}
