//! `vldeploy doctor`: the playbook's incident table as checks, each finding with the action to take.

use serde::Serialize;

use super::context::Connected;
use super::{CommandError, Context};
use crate::cli::Output;
use crate::layout::{SERVICES, container_name};

/// The playbook's key error events, as the backend logs them.
pub(crate) const KEY_ERRORS: [&str; 3] = [
    "database_connection_failed",
    "payment_verification_failed",
    "shiprocket_auth_error",
];

/// How many of the backend's latest log lines the counts look at.
const LOG_WINDOW: usize = 2000;

#[derive(Debug, Clone, Serialize)]
struct Finding {
    check: String,
    /// `ok`, `warn` or `fail`.
    status: &'static str,
    finding: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
}

impl Finding {
    fn new(check: &str, status: &'static str, finding: String, action: Option<String>) -> Self {
        Self {
            check: check.into(),
            status,
            finding,
            action,
        }
    }
}

pub(crate) async fn doctor(ctx: &Context) -> Result<i32, CommandError> {
    let c = ctx.connect_quiet().await?;
    let findings = examine(ctx, &c).await?;
    let failed = findings.iter().any(|f| f.status == "fail");
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"stack": ctx.stack.name, "host": ctx.target_name(), "healthy": !failed, "findings": findings})
        ),
        Output::Human => {
            println!(
                "{} ({}) on {}",
                ctx.stack.name,
                ctx.stack.environment,
                ctx.target_name()
            );
            for f in &findings {
                let mark = match f.status {
                    "ok" => "ok  ",
                    "warn" => "WARN",
                    _ => "FAIL",
                };
                println!("  {mark} {:<18} {}", f.check, f.finding);
                if let Some(a) = &f.action {
                    println!("       {:<18} → {a}", "");
                }
            }
            if !failed {
                println!("nothing needs action.");
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

async fn examine(ctx: &Context, c: &Connected) -> Result<Vec<Finding>, CommandError> {
    let mut out = Vec::new();
    let env = &ctx.stack.environment;
    let observed = c.engine.stack_containers(&ctx.stack.name).await?;

    // A restore killed part-way, and a maintenance page: the API's 503 has a cause that is not the backend.
    let interrupted = ctx.interrupted_restore(c).await;
    if let Some(j) = &interrupted {
        let (finding, action) = j
            .describe(env)
            .split_once("\n  help: ")
            .map(|(f, a)| (f.to_string(), a.to_string()))
            .unwrap_or_default();
        out.push(Finding::new("restore", "fail", finding, Some(action)));
    }
    let maintenance = super::maintenance::on_since(ctx, c).await;
    if let (Some(since), None) = (&maintenance, &interrupted) {
        out.push(Finding::new(
            "maintenance",
            "warn",
            format!("the maintenance page is on since {since}: nginx answers /api/ with 503 on purpose"),
            Some(format!("who and why: `vldeploy audit -e {env}`; lift it with `vldeploy maintenance off -e {env}`")),
        ));
    }

    // Containers: API down, DB connection failures, a blank homepage — each starts with its container.
    for service in SERVICES {
        let name = container_name(service);
        let check = format!("{service} container");
        match observed.iter().find(|o| o.name == name) {
            None => out.push(Finding::new(&check, "fail", format!("`{name}` does not exist"), Some(format!("`vldeploy up -e {env}` creates it")))),
            Some(o) if !o.is_running() && service == "backend" && interrupted.is_some() => out.push(Finding::new(
                &check,
                "fail",
                format!("`{name}` is {}: the interrupted restore stopped it", o.state),
                Some(format!("`vldeploy restore --resume -e {env}` or `vldeploy restore --abort -e {env}` starts it on the right data")),
            )),
            Some(o) if !o.is_running() => {
                let tail = c.engine.log_tail(&name, 8).await.unwrap_or_default();
                let why = if service == "postgres" {
                    "the database is down: the API fails with `database_connection_failed`".to_string()
                } else {
                    format!("`{name}` is {}", o.state)
                };
                out.push(Finding::new(
                    &check,
                    "fail",
                    format!("{why}; last log lines:\n{}", indent(&tail)),
                    Some(format!("`vldeploy restart {service} -e {env}`; if it stops again, `vldeploy logs {service} -n 200 -e {env}`")),
                ));
            }
            Some(o) if o.health.as_deref() == Some("unhealthy") => out.push(Finding::new(
                &check,
                "fail",
                format!("`{name}` runs but fails its health check"),
                Some(format!("`vldeploy logs {service} -n 200 -e {env}`, then `vldeploy restart {service} -e {env}`")),
            )),
            Some(o) => out.push(Finding::new(&check, "ok", format!("`{name}` {}{}", o.state, o.health.as_deref().map(|h| format!(", {h}")).unwrap_or_default()), None)),
        }
    }

    // Disk space: a full disk stops postgres (and backups).
    let df = c.remote.exec(&crate::remote::host::docker_disk()).await?;
    let line = String::from_utf8_lossy(&df.stdout).into_owned();
    if let Some(pct) = line
        .split_whitespace()
        .nth(4)
        .and_then(|p| p.trim_end_matches('%').parse::<u32>().ok())
    {
        let (status, action) = match pct {
            0..=79 => ("ok", None),
            80..=89 => (
                "warn",
                Some(
                    "free space: `docker system prune` on the host, old backups, logs".to_string(),
                ),
            ),
            _ => (
                "fail",
                Some("free space now: the database stops when the disk is full".to_string()),
            ),
        };
        out.push(Finding::new(
            "disk space",
            status,
            format!("/var/lib/docker is {pct}% full"),
            action,
        ));
    }

    // The API through nginx, as a customer reaches it.
    if observed
        .iter()
        .any(|o| o.name == container_name("nginx") && o.is_running())
    {
        let (code, body) = c
            .engine
            .exec(
                &container_name("nginx"),
                &[
                    "curl",
                    "-s",
                    "-m",
                    "5",
                    "-w",
                    "\n%{http_code}",
                    "http://127.0.0.1/api/health",
                ],
            )
            .await
            .unwrap_or((1, String::new()));
        let status_code = body.lines().last().unwrap_or("000").to_string();
        if code == 0 && status_code == "200" {
            out.push(Finding::new(
                "api health",
                "ok",
                "GET /api/health through nginx: 200".into(),
                None,
            ));
        } else if status_code == "503" && maintenance.is_some() {
            let (status, action) = if interrupted.is_some() {
                (
                    "fail",
                    format!(
                        "end the interrupted restore above: `vldeploy restore --resume -e {env}` or `--abort`"
                    ),
                )
            } else {
                (
                    "warn",
                    format!(
                        "the maintenance page above; `vldeploy maintenance off -e {env}` serves the API again"
                    ),
                )
            };
            out.push(Finding::new(
                "api health",
                status,
                "GET /api/health through nginx answered 503: the maintenance page".into(),
                Some(action),
            ));
        } else {
            out.push(Finding::new(
                "api health",
                "fail",
                format!("GET /api/health through nginx answered {status_code}"),
                Some(format!("see the backend and postgres findings; `vldeploy logs backend --errors -e {env}`")),
            ));
        }
    }

    // Key error events in the backend's recent logs.
    let logs = c
        .engine
        .log_tail(&container_name("backend"), LOG_WINDOW)
        .await
        .unwrap_or_default();
    let counts: Vec<(&str, usize)> = KEY_ERRORS
        .iter()
        .map(|e| (*e, count_event(&logs, e)))
        .collect();
    for (event, n) in counts {
        let (check, action) = match event {
            "database_connection_failed" => (
                "db connections",
                format!(
                    "check the postgres container and disk space above; `vldeploy restart postgres -e {env}` if it is down"
                ),
            ),
            "payment_verification_failed" => (
                "payments",
                format!(
                    "look for gateway errors with `vldeploy logs backend --errors -e {env}`; if the gateway fails, set PAYMENT_FALLBACK_MODE=true (cash on delivery) and `vldeploy up -e {env}`"
                ),
            ),
            _ => (
                "shipping",
                "check the Shiprocket credentials in the secrets file, then `vldeploy up`"
                    .to_string(),
            ),
        };
        if n == 0 {
            out.push(Finding::new(
                check,
                "ok",
                format!("no `{event}` in the last {LOG_WINDOW} log lines"),
                None,
            ));
        } else {
            out.push(Finding::new(
                check,
                "warn",
                format!("{n} × `{event}` in the last {LOG_WINDOW} log lines"),
                Some(action),
            ));
        }
    }

    // Slow search: the in-memory cache.
    let (hits, misses) = (
        count_field(&logs, "search_cache", "\"cache\":\"hit\""),
        count_field(&logs, "search_cache", "\"cache\":\"miss\""),
    );
    let searches = hits + misses;
    if searches > 0 {
        #[allow(clippy::cast_precision_loss)]
        let rate = hits as f64 * 100.0 / searches as f64;
        out.push(Finding::new(
            "search cache",
            "ok",
            format!("{searches} searches in the window, {rate:.0}% from the cache"),
            Some(format!(
                "if search is slow or stale: `vldeploy cache flush -e {env}` (no restart needed)"
            )),
        ));
    }
    Ok(out)
}

/// Lines of JSON logs whose event (`message`) is `event`.
pub(crate) fn count_event(logs: &str, event: &str) -> usize {
    logs.lines().filter(|l| is_event(l, event)).count()
}

fn count_field(logs: &str, event: &str, needle: &str) -> usize {
    logs.lines()
        .filter(|l| is_event(l, event) && l.contains(needle))
        .count()
}

/// Whether a JSON log line is the event `event`.
pub(crate) fn is_event(line: &str, event: &str) -> bool {
    let start = line.find('{').unwrap_or(0);
    serde_json::from_str::<serde_json::Value>(&line[start..])
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("fields").and_then(|f| f.get("message")))
                .and_then(|m| m.as_str().map(|s| s == event))
        })
        .unwrap_or(false)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("         | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_from_json_lines() {
        let logs = r#"{"timestamp":"t","level":"ERROR","message":"database_connection_failed","attempt":1}
{"timestamp":"t","level":"INFO","message":"request_completed","path":"/api/health"}
not json at all database_connection_failed
{"timestamp":"t","level":"INFO","message":"search_cache","cache":"hit"}
{"timestamp":"t","level":"INFO","fields":{"message":"payment_verification_failed"}}"#;
        assert_eq!(count_event(logs, "database_connection_failed"), 1);
        assert_eq!(count_event(logs, "payment_verification_failed"), 1);
        assert_eq!(count_field(logs, "search_cache", "\"cache\":\"hit\""), 1);
    }
}
