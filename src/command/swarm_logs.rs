//! `vldeploy logs [SERVICE]` on an environment with `hosts:`: the logs of every task of a service (or of all),
//! read through one manager's task logs API, merged in time order, each line prefixed `<service>.<slot>@<host>`.
//!
//! The manager's `/tasks/{id}/logs` (Docker 20.10 has it; the tasks log through the default `json-file`
//! driver, which it reads) reaches each task's node over the swarm itself: one SSH connection, no connection
//! to every node. A task on a node the swarm calls down is skipped with a warning naming the node, and a task
//! whose log does not come within [`TASK_LOG_LIMIT`] is skipped the same way.

use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;

use super::{CommandError, Context};
use crate::cli::LogsArgs;
use crate::layout::SERVICES;
use crate::swarm::{LogLine, LogSource, Node};

/// How long one task's log may take to come (its node may have gone since the manager last heard of it).
const TASK_LOG_LIMIT: Duration = Duration::from_secs(20);

pub(crate) async fn logs(ctx: &Context, args: &LogsArgs) -> Result<i32, CommandError> {
    let services: Vec<&str> = match args.service.as_deref() {
        Some(s) if SERVICES.contains(&s) => vec![s],
        Some(s) => {
            return Err(CommandError::Usage(format!(
                "unknown service `{s}`; the stack has `{}`",
                SERVICES.join("`, `")
            )));
        }
        None => SERVICES.to_vec(),
    };
    let manager = super::swarm_status::reach_manager(ctx).await?;
    let snapshot = manager.engine.swarm_snapshot(&ctx.stack.name).await?;
    let (sources, skipped) = crate::swarm::log_sources(&snapshot, &services);
    for w in skipped {
        ctx.out.warning(w);
    }
    if sources.is_empty() {
        return Err(CommandError::Usage(format!(
            "no task of {} runs on a node that answers in environment `{}`; `vldeploy status -e {}` shows them",
            services.join(", "),
            ctx.stack.environment,
            ctx.stack.environment
        )));
    }
    if args.follow {
        return follow(ctx, args, &manager, &sources).await;
    }
    let reads = sources
        .iter()
        .map(|s| read_task(ctx, &manager, s, args.tail));
    let mut lines = Vec::new();
    for read in futures_util::future::join_all(reads).await {
        lines.extend(read);
    }
    let mut out = std::io::stdout().lock();
    for line in crate::swarm::merge(lines) {
        if keep(args, &line.text) {
            let _ = writeln!(out, "{}", line.render());
        }
    }
    let _ = out.flush();
    Ok(0)
}

/// Whether `--errors` keeps the line.
fn keep(args: &LogsArgs, text: &str) -> bool {
    !args.errors
        || super::doctor::KEY_ERRORS
            .iter()
            .any(|e| super::doctor::is_event(text, e))
}

/// One task's last `tail` lines, secrets scrubbed; none (and a warning naming its node) when it cannot be read.
async fn read_task(ctx: &Context, manager: &Node, source: &LogSource, tail: usize) -> Vec<LogLine> {
    let read = async {
        let mut stream =
            std::pin::pin!(manager.engine.task_log_stream(&source.task_id, tail, false));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk?));
        }
        Ok::<_, crate::engine::EngineError>(text)
    };
    match tokio::time::timeout(TASK_LOG_LIMIT, read).await {
        Ok(Ok(text)) => crate::swarm::task_lines(
            &source.prefix,
            &crate::secret::scrub(&text, &ctx.stack.secrets),
        ),
        Ok(Err(e)) => {
            ctx.out.warning(format!(
                "node `{}`: the log of {} is skipped: {e}",
                source.node, source.prefix
            ));
            Vec::new()
        }
        Err(_) => {
            ctx.out.warning(format!(
                "node `{}`: the log of {} did not come within {} s; skipped",
                source.node,
                source.prefix,
                TASK_LOG_LIMIT.as_secs()
            ));
            Vec::new()
        }
    }
}

/// `-f`: every task's lines as they come, prefixed; a task whose stream fails is named and the others go on.
async fn follow(
    ctx: &Context,
    args: &LogsArgs,
    manager: &Node,
    sources: &[LogSource],
) -> Result<i32, CommandError> {
    let streams = sources.iter().map(|s| {
        manager
            .engine
            .task_log_stream(&s.task_id, args.tail, true)
            .map(move |chunk| (s, chunk))
            .boxed()
    });
    let mut all = futures_util::stream::select_all(streams);
    let mut out = std::io::stdout();
    while let Some((source, chunk)) = all.next().await {
        match chunk {
            Ok(chunk) => {
                let text =
                    crate::secret::scrub(&String::from_utf8_lossy(&chunk), &ctx.stack.secrets);
                for line in crate::swarm::task_lines(&source.prefix, &text) {
                    if keep(args, &line.text) {
                        let _ = writeln!(out, "{}", line.render());
                    }
                }
                let _ = out.flush();
            }
            Err(e) => ctx.out.warning(format!(
                "node `{}`: the log of {} stopped: {e}",
                source.node, source.prefix
            )),
        }
    }
    Ok(0)
}
