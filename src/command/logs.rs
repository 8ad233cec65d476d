//! `vldeploy logs SERVICE [-f]`: a service's container logs, streamed over the SSH connection.

use std::io::Write;

use futures_util::StreamExt;

use super::{CommandError, Context};
use crate::cli::LogsArgs;
use crate::layout::{SERVICES, container_name};

pub(crate) async fn logs(ctx: &Context, args: &LogsArgs) -> Result<i32, CommandError> {
    if !ctx.stack.hosts.is_empty() {
        return super::swarm_logs::logs(ctx, args).await;
    }
    let Some(service) = args.service.as_deref() else {
        return Err(CommandError::Usage(format!(
            "name the service whose logs to show: `{}`",
            SERVICES.join("`, `")
        )));
    };
    if !SERVICES.contains(&service) {
        return Err(CommandError::Usage(format!(
            "unknown service `{service}`; the stack has `{}`",
            SERVICES.join("`, `")
        )));
    }
    let c = ctx.connect().await?;
    let name = container_name(service);
    let mut stream = std::pin::pin!(c.engine.log_stream(&name, args.tail, args.follow));
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                let mut text =
                    crate::secret::scrub(&String::from_utf8_lossy(&chunk), &ctx.stack.secrets);
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
            Err(crate::engine::EngineError::Missing { .. }) => {
                return Err(CommandError::Usage(format!(
                    "`{name}` does not exist on {}; run `vldeploy up` first",
                    ctx.target_name()
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(0)
}
