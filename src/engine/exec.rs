//! Commands run inside a container, with their status and combined output.

use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;

use super::{Engine, EngineError};

impl Engine {
    /// Runs a command inside a running container and returns its status and combined output.
    pub async fn exec(&self, name: &str, cmd: &[&str]) -> Result<(i64, String), EngineError> {
        self.exec_env(name, cmd, &[]).await
    }

    /// Like `exec`, with extra environment variables: a way to hand a command a secret without putting it
    /// on its command line.
    pub async fn exec_env(
        &self,
        name: &str,
        cmd: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(i64, String), EngineError> {
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let created = self
            .docker
            .create_exec(
                name,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd.iter().map(|s| (*s).to_string()).collect()),
                    env: if env.is_empty() { None } else { Some(env) },
                    ..Default::default()
                },
            )
            .await
            .map_err(self.fail(format!("exec in `{name}`")))?;
        let mut output = String::new();
        if let StartExecResults::Attached {
            output: mut out, ..
        } = self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(self.fail(format!("exec in `{name}`")))?
        {
            while let Some(chunk) = out.next().await {
                let chunk = chunk.map_err(self.fail(format!("exec in `{name}`")))?;
                output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(self.fail(format!("exec in `{name}`")))?;
        Ok((inspect.exit_code.unwrap_or(-1), output))
    }

    /// Like `exec`, but a non-zero status is an error carrying the output.
    pub async fn exec_checked(&self, name: &str, cmd: &[&str]) -> Result<String, EngineError> {
        let (status, output) = self.exec(name, cmd).await?;
        if status == 0 {
            Ok(output)
        } else {
            Err(EngineError::Exec {
                host: self.host.clone(),
                name: name.into(),
                command: cmd.join(" "),
                status,
                output,
            })
        }
    }
}
