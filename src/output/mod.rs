//! The one stream of progress events: a cheap handle that flows and commands emit into, and the renderer chosen
//! once per run (a terminal view, plain lines, or JSON lines), all on stderr.

mod event;
mod json;
mod plain;
mod terminal;

use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

pub use event::{Event, LogTail, Step};

use crate::secret::Secret;

/// How the events of a run look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Spinners and progress bars, redrawn in place (stderr is a terminal).
    Terminal,
    /// One line per event, as in a CI log or a pipe.
    Plain,
    /// One JSON object per line (`--output json`).
    Json,
}

impl Mode {
    /// JSON when asked for; otherwise a terminal view on a terminal and plain lines elsewhere.
    pub fn choose(json: bool, stderr_is_terminal: bool) -> Self {
        match (json, stderr_is_terminal) {
            (true, _) => Mode::Json,
            (false, true) => Mode::Terminal,
            (false, false) => Mode::Plain,
        }
    }

    /// [`Mode::choose`] for this process's stderr: the one place vldeploy asks whether stderr is a terminal.
    pub fn detect(json: bool) -> Self {
        Self::choose(json, std::io::stderr().is_terminal())
    }
}

/// Draws events; one per run.
pub(crate) trait Render: Send {
    fn render(&mut self, event: &Event);
}

/// The time source of a renderer (a test's own clock in tests).
pub(crate) type Clock = Box<dyn FnMut() -> Instant + Send>;

struct Shared {
    mode: Mode,
    render: Mutex<Box<dyn Render>>,
    secrets: RwLock<Vec<Secret>>,
}

/// The handle events go through. Clones share one renderer; every text is cleaned of known secret values.
#[derive(Clone)]
pub struct Output {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("mode", &self.shared.mode)
            .finish()
    }
}

static GLOBAL: OnceLock<Output> = OnceLock::new();

impl Output {
    /// A renderer of `mode` on this process's stderr.
    pub fn new(mode: Mode) -> Self {
        let clock: Clock = Box::new(Instant::now);
        let render: Box<dyn Render> = match mode {
            Mode::Terminal => Box::new(terminal::Terminal::new(
                indicatif::ProgressDrawTarget::stderr(),
                Box::new(std::io::stderr()),
                true,
            )),
            Mode::Plain => Box::new(plain::Plain::new(Box::new(std::io::stderr()), clock)),
            Mode::Json => Box::new(json::Json::new(Box::new(std::io::stderr()), clock)),
        };
        Self::with_renderer(mode, render)
    }

    pub(crate) fn with_renderer(mode: Mode, render: Box<dyn Render>) -> Self {
        Self {
            shared: Arc::new(Shared {
                mode,
                render: Mutex::new(render),
                secrets: RwLock::new(Vec::new()),
            }),
        }
    }

    /// Makes this the handle of the whole process, for the parts that are not handed one (the sandbox, the
    /// lock). The first one installed stays.
    pub fn install(&self) {
        let _ = GLOBAL.set(self.clone());
    }

    /// The process's handle: the installed one, else plain lines on stderr.
    pub fn global() -> Self {
        GLOBAL.get_or_init(|| Output::new(Mode::Plain)).clone()
    }

    pub fn mode(&self) -> Mode {
        self.shared.mode
    }

    /// Makes these values unprintable in every event from now on.
    pub fn register_secrets(&self, values: &[Secret]) {
        if let Ok(mut s) = self.shared.secrets.write() {
            s.extend(values.iter().cloned());
        }
    }

    pub fn emit(&self, event: Event) {
        let event = match self.shared.secrets.read() {
            Ok(s) if !s.is_empty() => event.map_text(&|t| crate::secret::scrub(t, &s)),
            _ => event,
        };
        if let Ok(mut r) = self.shared.render.lock() {
            r.render(&event);
        }
    }

    pub fn step_started(&self, step: &Step) {
        self.emit(Event::StepStarted(step.clone()));
    }

    /// Bytes moved so far in the current step, of `total` when known.
    pub fn progress(&self, bytes: u64, total: Option<u64>) {
        self.emit(Event::Progress {
            step: None,
            bytes,
            total,
        });
    }

    /// Bytes moved so far in `step`, one of several under way, of `total` when known.
    pub fn step_progress(&self, step: &Step, bytes: u64, total: Option<u64>) {
        self.emit(Event::Progress {
            step: Some(step.clone()),
            bytes,
            total,
        });
    }

    pub fn step_done(&self, step: &Step, took: Duration, bytes: Option<u64>) {
        self.emit(Event::StepDone {
            step: step.clone(),
            took,
            bytes,
        });
    }

    pub fn step_failed(&self, step: &Step, took: Duration, error: &str, log: Option<LogTail>) {
        self.emit(Event::StepFailed {
            step: step.clone(),
            took,
            error: error.to_string(),
            log,
        });
    }

    pub fn note(&self, text: impl Into<String>) {
        self.emit(Event::Note(text.into()));
    }

    pub fn warning(&self, text: impl Into<String>) {
        self.emit(Event::Warning(text.into()));
    }

    /// The message a failed command ends with.
    pub fn error(&self, text: impl Into<String>) {
        self.emit(Event::Error(text.into()));
    }

    /// A line of vldeploy's log.
    pub fn log(&self, text: impl Into<String>) {
        self.emit(Event::Log(text.into()));
    }

    /// A question for the operator; the answer is read from standard input.
    pub fn prompt(&self, text: impl Into<String>) {
        self.emit(Event::Prompt(text.into()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    pub(crate) struct Buffer(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    const MB: u64 = 1_048_576;

    /// A run: a step, a transfer, a warning, a failure with a log, a phase with a load, the final error.
    /// Each event comes after the given time has passed.
    pub(crate) fn fixed_sequence() -> Vec<(Duration, Event)> {
        let ms = Duration::from_millis;
        let net = Step::numbered(1, 3, "create network `vl_net`");
        let send = Step::numbered(2, 3, "send images");
        let release = Step::numbered(3, 3, "release `backend`");
        let load = Step::phase("load");
        vec![
            (ms(0), Event::StepStarted(net.clone())),
            (
                ms(0),
                Event::StepDone {
                    step: net,
                    took: ms(200),
                    bytes: None,
                },
            ),
            (ms(0), Event::StepStarted(send.clone())),
            (
                ms(0),
                Event::Progress {
                    step: Some(send.clone()),
                    bytes: MB,
                    total: None,
                },
            ),
            (
                ms(2000),
                Event::Progress {
                    step: Some(send.clone()),
                    bytes: 8 * MB,
                    total: None,
                },
            ),
            (
                ms(500),
                Event::Progress {
                    step: Some(send.clone()),
                    bytes: 10 * MB,
                    total: None,
                },
            ),
            (
                ms(1500),
                Event::Progress {
                    step: Some(send.clone()),
                    bytes: 20 * MB,
                    total: None,
                },
            ),
            (
                ms(500),
                Event::StepDone {
                    step: send,
                    took: ms(4500),
                    bytes: None,
                },
            ),
            (
                ms(0),
                Event::Warning("`DB_PASSWORD` is set in this shell's environment".into()),
            ),
            (ms(0), Event::StepStarted(release.clone())),
            (
                ms(0),
                Event::StepFailed {
                    step: release,
                    took: ms(31_000),
                    error: "`vl_backend_candidate` did not become healthy".into(),
                    log: Some(LogTail {
                        container: "vl_backend_candidate".into(),
                        lines: vec![
                            "listening on 0.0.0.0:8080".into(),
                            "panic: cannot reach the database".into(),
                        ],
                        in_error: false,
                    }),
                },
            ),
            (ms(0), Event::StepStarted(load.clone())),
            (
                ms(0),
                Event::Progress {
                    step: None,
                    bytes: MB,
                    total: Some(12 * MB),
                },
            ),
            (
                ms(2000),
                Event::Progress {
                    step: None,
                    bytes: 3 * MB,
                    total: Some(12 * MB),
                },
            ),
            (
                ms(2000),
                Event::StepDone {
                    step: load,
                    took: ms(4000),
                    bytes: Some(12 * MB),
                },
            ),
            (ms(0), Event::Note("nothing was changed".into())),
            (
                ms(0),
                Event::Error("step 3/3 `release `backend`` failed".into()),
            ),
        ]
    }

    /// Renders `events` with a renderer made by `make` on a test clock; returns what it wrote.
    pub(crate) fn render_all(
        make: impl FnOnce(Box<dyn std::io::Write + Send>, Clock) -> Box<dyn Render>,
        events: &[(Duration, Event)],
    ) -> String {
        let buffer = Buffer::default();
        let now = Arc::new(Mutex::new(Instant::now()));
        let clock_now = now.clone();
        let clock: Clock = Box::new(move || *clock_now.lock().unwrap());
        let mut render = make(Box::new(buffer.clone()), clock);
        for (after, event) in events {
            *now.lock().unwrap() += *after;
            render.render(event);
        }
        buffer.text()
    }

    #[test]
    fn output_mode_is_json_when_asked_terminal_on_a_tty_plain_elsewhere() {
        assert_eq!(Mode::choose(true, true), Mode::Json);
        assert_eq!(Mode::choose(true, false), Mode::Json);
        assert_eq!(Mode::choose(false, true), Mode::Terminal);
        assert_eq!(Mode::choose(false, false), Mode::Plain);
    }

    #[test]
    fn output_handle_scrubs_secrets_from_every_event() {
        let buffer = Buffer::default();
        let clock: Clock = Box::new(Instant::now);
        let out = Output::with_renderer(
            Mode::Plain,
            Box::new(plain::Plain::new(Box::new(buffer.clone()), clock)),
        );
        out.register_secrets(&[Secret::new("hunter2-is-long")]);
        let copy = out.clone();
        copy.warning("password hunter2-is-long rejected");
        out.step_failed(
            &Step::numbered(1, 1, "start `db`"),
            Duration::from_secs(1),
            "hunter2-is-long",
            Some(LogTail {
                container: "vl_db".into(),
                lines: vec!["auth hunter2-is-long".into()],
                in_error: false,
            }),
        );
        assert_eq!(
            buffer.text(),
            "warning: password <secret> rejected\n[1/1] start `db`: failed after 1.0s\n  last log lines of `vl_db`:\n    auth <secret>\n"
        );
    }
}
