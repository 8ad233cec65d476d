//! The terminal view: a spinner per running step, a progress bar while bytes move, a mark when it ends.

use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Render;
use super::event::{Event, Step};
use super::plain::{error_text, log_lines};

/// Draws running steps in place on a terminal; ended steps, notes and warnings scroll above them, in order.
pub(crate) struct Terminal {
    multi: MultiProgress,
    /// Where lines that stay are written (stderr), with the bars cleared meanwhile.
    lines: Box<dyn Write + Send>,
    /// The running steps, innermost last.
    bars: Vec<(Step, ProgressBar)>,
    /// A transfer reported outside any step; cleared once something else happens.
    loose: Option<ProgressBar>,
    /// Animate spinners between events (off where nothing watches, as in tests).
    tick: bool,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .progress_chars("=> ")
}

fn label(step: &Step) -> String {
    step.label()
}

impl Terminal {
    pub(crate) fn new(
        target: ProgressDrawTarget,
        lines: Box<dyn Write + Send>,
        tick: bool,
    ) -> Self {
        Self {
            multi: MultiProgress::with_draw_target(target),
            lines,
            bars: Vec::new(),
            loose: None,
            tick,
        }
    }

    /// Writes a line that stays, above the running bars.
    fn println(&mut self, text: &str) {
        let lines = &mut self.lines;
        self.multi.suspend(|| {
            let _ = writeln!(lines, "{text}");
            let _ = lines.flush();
        });
    }

    /// Removes the innermost bar and leaves `message` in the scrolled lines.
    /// Ends `step`'s bar (steps may run at once: any of them may end first) and prints `message` above the
    /// bars still running.
    fn finish(&mut self, step: &Step, message: &str) {
        let at = self
            .bars
            .iter()
            .rposition(|(s, _)| s == step)
            .or_else(|| self.bars.len().checked_sub(1));
        if let Some(at) = at {
            let (_, bar) = self.bars.remove(at);
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.println(message);
    }

    /// The bar a transfer's bytes go to: its step's, else the newest step's, else a loose one.
    fn progress_bar(&mut self, step: Option<&Step>) -> &ProgressBar {
        let at = step
            .and_then(|step| self.bars.iter().rposition(|(s, _)| s == step))
            .or_else(|| self.bars.len().checked_sub(1));
        match at {
            Some(at) => &self.bars[at].1,
            None => self.loose.get_or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_message("");
                bar
            }),
        }
    }
}

impl Render for Terminal {
    fn render(&mut self, event: &Event) {
        if !matches!(event, Event::Progress { .. }) {
            if let Some(bar) = self.loose.take() {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
        match event {
            Event::StepStarted(step) => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(style("{spinner:.cyan} {msg} {elapsed:.dim}"));
                bar.set_message(label(step));
                if self.tick {
                    bar.enable_steady_tick(Duration::from_millis(120));
                } else {
                    bar.tick();
                }
                self.bars.push((step.clone(), bar));
            }
            Event::Progress { step, bytes, total } => {
                let bar = self.progress_bar(step.as_ref());
                match total {
                    Some(t) if *t > 0 => {
                        if bar.length() != Some(*t) {
                            bar.set_style(style(
                                    "{spinner:.cyan} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
                                ));
                            bar.set_length(*t);
                        }
                    }
                    _ => {
                        if bar.length().is_some() {
                            bar.unset_length();
                        }
                        bar.set_style(style("{spinner:.cyan} {msg} {bytes} ({bytes_per_sec})"));
                    }
                }
                bar.set_position(*bytes);
            }
            Event::StepDone { step, took, .. } => {
                self.finish(
                    step,
                    &format!("✓ {} ({:.1}s)", label(step), took.as_secs_f64()),
                );
            }
            Event::StepFailed {
                step, took, log, ..
            } => {
                self.finish(
                    step,
                    &format!("✗ {}: failed after {:.1}s", label(step), took.as_secs_f64()),
                );
                for l in log_lines(log.as_ref()) {
                    self.println(&l);
                }
            }
            Event::Note(text) | Event::Log(text) => self.println(text),
            Event::Warning(text) => self.println(&format!("warning: {text}")),
            Event::Error(text) => {
                for (_, bar) in self.bars.drain(..) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.println(&error_text(text));
            }
            Event::Prompt(text) => {
                let lines = &mut self.lines;
                self.multi.suspend(|| {
                    let _ = write!(lines, "{text}");
                    let _ = lines.flush();
                });
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::super::tests::{Buffer, fixed_sequence};
    use super::*;

    /// A terminal in memory: what was written, line by line.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            let mut t = self.0.lock().unwrap();
            t.push_str(s);
            t.push('\n');
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_terminal_scrolls_ended_steps_notes_and_the_failing_log_in_order() {
        let screen = Screen::default();
        let lines = Buffer::default();
        let mut t = Terminal::new(
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
            Box::new(lines.clone()),
            false,
        );
        for (_, event) in fixed_sequence() {
            t.render(&event);
        }
        assert_eq!(
            lines.text(),
            "\
✓ [1/3] create network `vl_net` (0.2s)
✓ [2/3] send images (4.5s)
warning: `DB_PASSWORD` is set in this shell's environment
✗ [3/3] release `backend`: failed after 31.0s
  last log lines of `vl_backend_candidate`:
    listening on 0.0.0.0:8080
    panic: cannot reach the database
✓ load (4.0s)
nothing was changed
error: step 3/3 `release `backend`` failed
"
        );
        assert!(t.bars.is_empty(), "every step's bar ended");
        let drawn = screen.0.lock().unwrap().clone();
        assert!(
            drawn.contains("[2/3] send images"),
            "the running step was drawn: {drawn}"
        );
    }

    #[test]
    fn output_terminal_shows_a_bar_while_bytes_move() {
        let screen = Screen::default();
        let mut t = Terminal::new(
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
            Box::new(Buffer::default()),
            false,
        );
        t.render(&Event::StepStarted(Step::phase("load")));
        t.render(&Event::Progress {
            step: None,
            bytes: 6 * 1_048_576,
            total: Some(12 * 1_048_576),
        });
        let bar = &t.bars.last().unwrap().1;
        assert_eq!(bar.length(), Some(12 * 1_048_576));
        assert_eq!(bar.position(), 6 * 1_048_576);
        bar.tick();
        let drawn = screen.0.lock().unwrap().clone();
        assert!(drawn.contains("load"), "{drawn}");
        assert!(drawn.contains("6.00 MiB/12.00 MiB"), "{drawn}");
    }

    #[test]
    fn output_terminal_keeps_a_bar_per_step_under_way_and_ends_the_one_that_ended() {
        let screen = Screen::default();
        let lines = Buffer::default();
        let mut t = Terminal::new(
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
            Box::new(lines.clone()),
            false,
        );
        let send = Step::numbered(1, 3, "send images");
        let file = Step::numbered(2, 3, "write `/srv/a.conf`");
        t.render(&Event::StepStarted(send.clone()));
        t.render(&Event::StepStarted(file.clone()));
        // The transfer's bytes go to its own bar, not to the newest one.
        t.render(&Event::Progress {
            step: Some(send.clone()),
            bytes: 3 * 1_048_576,
            total: Some(12 * 1_048_576),
        });
        assert_eq!(t.bars[0].1.length(), Some(12 * 1_048_576));
        assert_eq!(t.bars[0].1.position(), 3 * 1_048_576);
        assert_eq!(t.bars[1].1.length(), None);
        // The file ends first: its bar goes, the transfer's stays and goes on.
        t.render(&Event::StepDone {
            step: file.clone(),
            took: Duration::from_millis(100),
            bytes: None,
        });
        assert_eq!(t.bars.len(), 1);
        assert_eq!(t.bars[0].0, send);
        t.render(&Event::Progress {
            step: Some(send.clone()),
            bytes: 6 * 1_048_576,
            total: Some(12 * 1_048_576),
        });
        assert_eq!(t.bars[0].1.position(), 6 * 1_048_576);
        t.render(&Event::StepDone {
            step: send,
            took: Duration::from_secs(2),
            bytes: None,
        });
        assert!(t.bars.is_empty());
        let printed = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            printed,
            "✓ [2/3] write `/srv/a.conf` (0.1s)\n✓ [1/3] send images (2.0s)\n"
        );
    }
}
