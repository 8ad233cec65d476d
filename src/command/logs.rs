//! `vldeploy logs SERVICE [-f]`: a service's container logs, streamed over the SSH connection.

use std::io::Write;

use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use super::{CommandError, Context};
use crate::cli::LogsArgs;
use crate::layout::{SERVICES, container_name};

pub(crate) async fn logs(ctx: &Context, args: &LogsArgs) -> Result<i32, CommandError> {
    if !SERVICES.contains(&args.service.as_str()) {
        return Err(CommandError::Usage(format!(
            "unknown service `{}`; the stack has `{}`",
            args.service,
            SERVICES.join("`, `")
        )));
    }
    let c = ctx.connect().await?;
    let name = container_name(&args.service);
    let opts = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .follow(args.follow)
        .tail(&args.tail.to_string())
        .build();
    let mut stream = c.engine.docker.logs(&name, Some(opts));
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                let mut text = crate::secret::scrub(
                    &String::from_utf8_lossy(&chunk.into_bytes()),
                    &ctx.stack.secrets,
                );
                if args.errors {
                    text = text
                        .lines()
                        .filter(|l| {
                            super::doctor::KEY_ERRORS
                                .iter()
                                .any(|e| super::doctor::is_event(l, e))
                        })
                        .map(|l| format!("{l}\n"))
                        .collect();
                }
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            Err(e) if crate::engine::is_not_found(&e) => {
                return Err(CommandError::Usage(format!(
                    "`{name}` does not exist on {}; run `vldeploy up` first",
                    ctx.target_name()
                )));
            }
            Err(source) => {
                return Err(crate::engine::EngineError::Docker {
                    host: c.engine.host.clone(),
                    action: format!("reading logs of `{name}`"),
                    source,
                }
                .into());
            }
        }
    }
    Ok(0)
}
