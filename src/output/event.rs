//! The events of a run: steps starting, moving, ending or failing, and the notes and warnings around them.

use std::time::Duration;

/// A step as the operator sees it: its summary and, in a plan, its place (`[2/5]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub summary: String,
    /// `(index, total)`, counted from 1; `None` for a phase of a flow that is not numbered (a restore's phases).
    pub position: Option<(usize, usize)>,
}

impl Step {
    /// Step `index` of `total` of a plan.
    pub fn numbered(index: usize, total: usize, summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            position: Some((index, total)),
        }
    }

    /// A phase of a flow, without a number.
    pub fn phase(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            position: None,
        }
    }

    /// `[2/5] summary`, or the summary alone.
    pub(crate) fn label(&self) -> String {
        match self.position {
            Some((i, n)) => format!("[{i}/{n}] {}", self.summary),
            None => self.summary.clone(),
        }
    }
}

/// The last lines of the log of the container a failed step concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTail {
    pub container: String,
    pub lines: Vec<String>,
    /// The error text already quotes these lines (a health check failure does): people see them once, in the
    /// error; machines get them here too.
    pub in_error: bool,
}

/// One thing that happened, for whichever renderer was chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    StepStarted(Step),
    /// Bytes moved so far within a step, of `total` when known. `step` names it where steps run at once;
    /// `None` is the one step under way.
    Progress {
        step: Option<Step>,
        bytes: u64,
        total: Option<u64>,
    },
    StepDone {
        step: Step,
        took: Duration,
        /// Bytes the step read or sent, when it counts them.
        bytes: Option<u64>,
    },
    StepFailed {
        step: Step,
        took: Duration,
        error: String,
        log: Option<LogTail>,
    },
    /// A line for the operator about what is happening.
    Note(String),
    /// Something the operator should know; the run goes on.
    Warning(String),
    /// The command failed: the message it ends with.
    Error(String),
    /// A line of vldeploy's log (`VLDEPLOY_LOG`), already formatted.
    Log(String),
    /// A question the operator answers on standard input (no line end follows).
    Prompt(String),
}

impl Event {
    /// The same event with every text passed through `clean` (secret values removed).
    pub(crate) fn map_text(self, clean: &dyn Fn(&str) -> String) -> Self {
        let step = |s: Step| Step {
            summary: clean(&s.summary),
            ..s
        };
        match self {
            Event::StepStarted(s) => Event::StepStarted(step(s)),
            Event::Progress {
                step: s,
                bytes,
                total,
            } => Event::Progress {
                step: s.map(step),
                bytes,
                total,
            },
            Event::StepDone {
                step: s,
                took,
                bytes,
            } => Event::StepDone {
                step: step(s),
                took,
                bytes,
            },
            Event::StepFailed {
                step: s,
                took,
                error,
                log,
            } => Event::StepFailed {
                step: step(s),
                took,
                error: clean(&error),
                log: log.map(|l| LogTail {
                    lines: l.lines.iter().map(|x| clean(x)).collect(),
                    ..l
                }),
            },
            Event::Note(t) => Event::Note(clean(&t)),
            Event::Warning(t) => Event::Warning(clean(&t)),
            Event::Error(t) => Event::Error(clean(&t)),
            Event::Log(t) => Event::Log(clean(&t)),
            Event::Prompt(t) => Event::Prompt(clean(&t)),
        }
    }
}

/// `1.2 MB`-style megabytes (MiB, one decimal), as the progress lines print them.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}
