//! Logging through `tracing` into the output stream (stderr), with every known secret value scrubbed.

use std::io::Write;
use std::sync::{OnceLock, RwLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::secret::{Secret, scrub};

static SECRETS: OnceLock<RwLock<Vec<Secret>>> = OnceLock::new();

fn secrets() -> &'static RwLock<Vec<Secret>> {
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// Makes these values unprintable in logs from now on (called once the stack and its secrets are loaded).
pub fn register_secrets(values: &[Secret]) {
    if let Ok(mut s) = secrets().write() {
        s.extend(values.iter().cloned());
    }
}

/// Starts logging. `VLDEPLOY_LOG` is a level (`debug`) for vldeploy's own events, or full `tracing` directives;
/// other crates log at `warn` unless named. Whatever is enabled, secret values never reach the output. `ansi`
/// colours the lines (stderr is a terminal: the run's output mode says so).
pub fn init(ansi: bool) {
    let spec = std::env::var("VLDEPLOY_LOG").unwrap_or_default();
    let spec = spec.trim();
    let directives = if spec.is_empty() {
        "warn".to_string()
    } else if spec.contains('=') || spec.contains(',') {
        spec.to_string()
    } else {
        format!("warn,vldeploy={spec}")
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ScrubbedStderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// The process's output stream (stderr, drawn as the run's mode says), one event at a time, scrubbed.
struct ScrubbedStderr;

/// Collects one event, then writes it scrubbed when dropped.
struct EventBuffer(Vec<u8>);

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = EventBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer(Vec::with_capacity(256))
    }
}

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let clean = match secrets().read() {
            Ok(s) if !s.is_empty() => scrub(&text, &s),
            _ => text.into_owned(),
        };
        let line = clean.strip_suffix('\n').unwrap_or(&clean);
        crate::output::Output::global().log(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_secret_is_scrubbed_from_an_event() {
        register_secrets(&[Secret::new("tr0ub4dor-and-3")]);
        let text = "Env: POSTGRES_PASSWORD=tr0ub4dor-and-3";
        let guard = secrets().read().unwrap();
        assert_eq!(scrub(text, &guard), "Env: POSTGRES_PASSWORD=<secret>");
    }
}
