//! JSON lines on stderr (`--output json`): one object per event, so CI can follow a run.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::event::{Event, LogTail, Step};
use super::{Clock, Render};

/// How often a transfer's size is reported.
const EVERY: Duration = Duration::from_secs(1);

/// Renders each event as one JSON object on a line of its own.
pub(crate) struct Json {
    out: Box<dyn Write + Send>,
    clock: Clock,
    /// When the current transfer's size was last reported.
    last_progress: Option<Instant>,
}

/// One line; fields in this order, absent ones left out.
#[derive(Serialize)]
struct Line<'a> {
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<Log<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct Log<'a> {
    container: &'a str,
    lines: &'a [String],
}

impl<'a> Line<'a> {
    fn new(event: &'static str) -> Self {
        Self {
            event,
            index: None,
            total: None,
            summary: None,
            seconds: None,
            bytes: None,
            total_bytes: None,
            error: None,
            log: None,
            message: None,
        }
    }

    fn step(event: &'static str, step: &'a Step) -> Self {
        Self {
            index: step.position.map(|p| p.0),
            total: step.position.map(|p| p.1),
            summary: Some(&step.summary),
            ..Self::new(event)
        }
    }

    fn message(event: &'static str, text: &'a str) -> Self {
        Self {
            message: Some(text),
            ..Self::new(event)
        }
    }
}

/// Seconds with millisecond precision (`1.2`, not `1.2000000476`).
fn seconds(d: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let ms = d.as_millis() as f64;
    ms / 1000.0
}

fn log(l: &LogTail) -> Log<'_> {
    Log {
        container: &l.container,
        lines: &l.lines,
    }
}

impl Json {
    pub(crate) fn new(out: Box<dyn Write + Send>, clock: Clock) -> Self {
        Self {
            out,
            clock,
            last_progress: None,
        }
    }

    fn write(&mut self, line: &Line<'_>) {
        if let Ok(text) = serde_json::to_string(line) {
            let _ = writeln!(self.out, "{text}");
            let _ = self.out.flush();
        }
    }
}

impl Render for Json {
    fn render(&mut self, event: &Event) {
        match event {
            Event::StepStarted(step) => {
                self.last_progress = None;
                self.write(&Line::step("step_started", step));
            }
            Event::Progress { step, bytes, total } => {
                let now = (self.clock)();
                if self
                    .last_progress
                    .is_some_and(|last| now.duration_since(last) < EVERY)
                {
                    return;
                }
                self.last_progress = Some(now);
                let line = match step {
                    Some(step) => Line::step("progress", step),
                    None => Line::new("progress"),
                };
                self.write(&Line {
                    bytes: Some(*bytes),
                    total_bytes: *total,
                    ..line
                });
            }
            Event::StepDone { step, took, bytes } => self.write(&Line {
                seconds: Some(seconds(*took)),
                bytes: *bytes,
                ..Line::step("step_done", step)
            }),
            Event::StepFailed {
                step,
                took,
                error,
                log: tail,
            } => self.write(&Line {
                seconds: Some(seconds(*took)),
                error: Some(error),
                log: tail.as_ref().map(log),
                ..Line::step("step_failed", step)
            }),
            Event::Note(text) => self.write(&Line::message("note", text)),
            Event::Warning(text) => self.write(&Line::message("warning", text)),
            Event::Error(text) => self.write(&Line::message("error", text)),
            Event::Log(text) => self.write(&Line::message("log", text)),
            Event::Prompt(text) => self.write(&Line::message("prompt", text)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{fixed_sequence, render_all};
    use super::*;

    #[test]
    fn output_json_renders_one_object_per_event() {
        let text = render_all(
            |out, clock| Box::new(Json::new(out, clock)),
            &fixed_sequence(),
        );
        let expected = [
            r#"{"event":"step_started","index":1,"total":3,"summary":"create network `vl_net`"}"#,
            r#"{"event":"step_done","index":1,"total":3,"summary":"create network `vl_net`","seconds":0.2}"#,
            r#"{"event":"step_started","index":2,"total":3,"summary":"send images"}"#,
            r#"{"event":"progress","index":2,"total":3,"summary":"send images","bytes":1048576}"#,
            r#"{"event":"progress","index":2,"total":3,"summary":"send images","bytes":8388608}"#,
            r#"{"event":"progress","index":2,"total":3,"summary":"send images","bytes":20971520}"#,
            r#"{"event":"step_done","index":2,"total":3,"summary":"send images","seconds":4.5}"#,
            r#"{"event":"warning","message":"`DB_PASSWORD` is set in this shell's environment"}"#,
            r#"{"event":"step_started","index":3,"total":3,"summary":"release `backend`"}"#,
            r#"{"event":"step_failed","index":3,"total":3,"summary":"release `backend`","seconds":31.0,"error":"`vl_backend_candidate` did not become healthy","log":{"container":"vl_backend_candidate","lines":["listening on 0.0.0.0:8080","panic: cannot reach the database"]}}"#,
            r#"{"event":"step_started","summary":"load"}"#,
            r#"{"event":"progress","bytes":1048576,"total_bytes":12582912}"#,
            r#"{"event":"progress","bytes":3145728,"total_bytes":12582912}"#,
            r#"{"event":"step_done","summary":"load","seconds":4.0,"bytes":12582912}"#,
            r#"{"event":"note","message":"nothing was changed"}"#,
            r#"{"event":"error","message":"step 3/3 `release `backend`` failed"}"#,
        ];
        assert_eq!(text, expected.map(|l| format!("{l}\n")).concat());
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["event"].is_string(), "{line}");
        }
    }

    #[test]
    fn output_json_carries_log_lines_as_events() {
        let events = [(
            Duration::ZERO,
            Event::Log("  WARN could not release the lock".into()),
        )];
        let text = render_all(|out, clock| Box::new(Json::new(out, clock)), &events);
        assert_eq!(
            text,
            "{\"event\":\"log\",\"message\":\"  WARN could not release the lock\"}\n"
        );
    }
}
