//! A container's log as a stream of chunks, for `vldeploy logs` and error messages.

use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::{Stream, StreamExt};

use super::{Engine, EngineError, is_not_found};

impl Engine {
    /// The container's stdout and stderr from its last `tail` lines on, and, with `follow`, what it writes
    /// afterwards. A missing container ends the stream with [`EngineError::Missing`].
    pub fn log_stream(
        &self,
        name: &str,
        tail: usize,
        follow: bool,
    ) -> impl Stream<Item = Result<Vec<u8>, EngineError>> + '_ {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail(&tail.to_string())
            .build();
        let name = name.to_owned();
        self.docker.logs(&name, Some(opts)).map(move |chunk| {
            chunk.map(|c| c.into_bytes().to_vec()).map_err(|e| {
                if is_not_found(&e) {
                    EngineError::Missing {
                        host: self.host.clone(),
                        name: name.clone(),
                    }
                } else {
                    self.fail(format!("reading logs of `{name}`"))(e)
                }
            })
        })
    }

    /// The last `n` lines of a container's stdout and stderr.
    pub async fn log_tail(&self, name: &str, n: usize) -> Result<String, EngineError> {
        let mut stream = std::pin::pin!(self.log_stream(name, n, false));
        let mut out = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            out.push_str(&String::from_utf8_lossy(&chunk));
        }
        Ok(out)
    }
}
