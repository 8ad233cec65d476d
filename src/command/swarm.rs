//! `vldeploy swarm`: forms the Docker Swarm of an environment with `hosts:`.

use super::{CommandError, Context};
use crate::cli::Output;

pub(crate) async fn swarm(ctx: &Context) -> Result<i32, CommandError> {
    if ctx.stack.hosts.is_empty() {
        return Err(CommandError::Usage(format!(
            "environment `{}` runs on one host (`host:`): there is no swarm to form\n  help: list its hosts by role under `hosts:` to run it across several",
            ctx.stack.environment
        )));
    }
    let done = crate::swarm::form(&ctx.stack, &ctx.out).await?;
    let hosts = ctx.stack.hosts.len();
    match ctx.output {
        Output::Human if done.is_empty() => println!("swarm of {hosts} hosts: no changes"),
        Output::Human => {
            let plural = if done.len() == 1 { "" } else { "s" };
            println!("swarm of {hosts} hosts: {} change{plural}", done.len());
        }
        Output::Json => {
            let json = serde_json::json!({"hosts": hosts, "changes": done});
            println!("{json}");
        }
    }
    Ok(0)
}
