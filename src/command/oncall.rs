//! On-call commands from the playbook: `restart SERVICE`, `exec SERVICE -- CMD`, `cache flush`.

use std::time::Duration;

use super::{CommandError, Context};
use crate::cli::{ExecArgs, Output};
use crate::layout::{SERVICES, container_name};

fn check_service(service: &str) -> Result<String, CommandError> {
    if SERVICES.contains(&service) {
        Ok(container_name(service))
    } else {
        Err(CommandError::Usage(format!(
            "unknown service `{service}`; the stack has `{}`",
            SERVICES.join("`, `")
        )))
    }
}

/// Restarts a service's container (graceful stop, start) and waits for its health check.
pub(crate) async fn restart(ctx: &Context, service: &str) -> Result<i32, CommandError> {
    let name = check_service(service)?;
    let c = ctx.connect().await?;
    ctx.locked(&c, &format!("restart {service}"), || async {
        let result = async {
            ctx.out.note(format!("restarting `{name}` …"));
            c.engine.restart(&name, Duration::from_secs(30)).await?;
            c.engine
                .wait_healthy(
                    &name,
                    "its health check after the restart",
                    Duration::from_secs(120),
                )
                .await?;
            match ctx.output {
                Output::Human => println!("`{name}` restarted and healthy."),
                Output::Json => println!(
                    "{}",
                    serde_json::json!({"restarted": name, "healthy": true})
                ),
            }
            Ok(0)
        }
        .await;
        (vec![format!("restart `{name}`")], result)
    })
    .await
}

/// Runs a command in a service's container, printing its output and exiting with its status.
pub(crate) async fn exec(ctx: &Context, args: &ExecArgs) -> Result<i32, CommandError> {
    let name = check_service(&args.service)?;
    if args.command.is_empty() {
        return Err(CommandError::Usage(
            "nothing to run: `vldeploy exec SERVICE -- COMMAND [ARGS…]`".into(),
        ));
    }
    let c = ctx.connect().await?;
    let cmd: Vec<&str> = args.command.iter().map(String::as_str).collect();
    let (status, output) = c.engine.exec(&name, &cmd).await?;
    print!("{}", crate::secret::scrub(&output, &ctx.stack.secrets));
    let entry = crate::state::AuditEntry {
        time: crate::state::now(),
        actor: crate::state::actor(),
        command: format!("exec {}", args.service),
        environment: ctx.stack.environment.clone(),
        changes: vec![crate::secret::scrub(
            &args.command.join(" "),
            &ctx.stack.secrets,
        )],
        result: if status == 0 {
            "ok".into()
        } else {
            "failed".into()
        },
        error: (status != 0).then(|| format!("exit status {status}")),
        waived: Vec::new(),
        note: None,
    };
    crate::state::audit_append(&c.remote, &ctx.stack.name, &entry, &ctx.stack.secrets).await?;
    Ok(i32::try_from(status).unwrap_or(1))
}

/// Empties the backend's search cache through its admin API (no restart).
pub(crate) async fn cache_flush(ctx: &Context) -> Result<i32, CommandError> {
    let token = ctx.admin_token("the cache flush")?;
    let c = ctx.connect().await?;
    ctx.locked(&c, "cache flush", || async {
        // The token reaches curl through the environment, never its command line.
        let result = c
            .engine
            .exec_env(
                &container_name("nginx"),
                &[
                    "sh",
                    "-c",
                    "curl -s -m 10 -w '\\n%{http_code}' -X POST -H \"Authorization: Bearer $ADMIN_TOKEN\" http://127.0.0.1/api/admin/search/cache/flush",
                ],
                &[("ADMIN_TOKEN", &token)],
            )
            .await;
        let result = match result {
            Ok((0, out)) if out.lines().last() == Some("200") => {
                match ctx.output {
                    Output::Human => println!("search cache flushed."),
                    Output::Json => println!("{}", serde_json::json!({"flushed": true})),
                }
                Ok(0)
            }
            Ok((_, out)) => Err(CommandError::Io(format!(
                "the backend refused the flush (answer: {})",
                crate::secret::scrub(out.lines().last().unwrap_or("none"), &ctx.stack.secrets)
            ))),
            Err(e) => Err(e.into()),
        };
        (vec!["flush the search cache".into()], result)
    })
    .await
}
