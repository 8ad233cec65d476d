//! `vldeploy doctor`: the playbook's incident table as checks, each finding with the action to take.

use serde::Serialize;

use super::context::Connected;
use super::{CommandError, Context};
use crate::backup::Journal;
use crate::cli::Output;
use crate::layout::{SERVICES, container_name};
use crate::plan::ObservedContainer;

/// The playbook's key error events, as the backend logs them.
pub(crate) const KEY_ERRORS: [&str; 3] = [
    "database_connection_failed",
    "payment_verification_failed",
    "shiprocket_auth_error",
];

/// How many of the backend's latest log lines the counts look at.
const LOG_WINDOW: usize = 2000;

/// How a finding stands. Its own enum, not the checklist's: a finding can be a warning, and its JSON values
/// (`ok`, `warn`, `fail`) are the command's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// The four-column mark of the human table.
    fn mark(self) -> &'static str {
        match self {
            Self::Ok => "ok  ",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Finding {
    check: String,
    status: Status,
    finding: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
}

impl Finding {
    fn new(check: &str, status: Status, finding: String, action: Option<String>) -> Self {
        Self {
            check: check.into(),
            status,
            finding,
            action,
        }
    }
}

pub(crate) async fn doctor(ctx: &Context) -> Result<i32, CommandError> {
    if !ctx.stack.hosts.is_empty() {
        return doctor_cluster(ctx).await;
    }
    let c = ctx.connect_quiet().await?;
    let findings = examine(ctx, &c).await?;
    let failed = findings.iter().any(|f| f.status == Status::Fail);
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"stack": ctx.stack.name, "host": ctx.target_name(), "healthy": !failed, "findings": findings})
        ),
        Output::Human => print_table(ctx, &ctx.target_name(), &findings, failed),
    }
    Ok(if failed { 1 } else { 0 })
}

/// Doctor on an environment with `hosts:`: the swarm's findings, printed and exiting as on one host.
async fn doctor_cluster(ctx: &Context) -> Result<i32, CommandError> {
    let findings: Vec<Finding> = super::swarm_doctor::examine(ctx)
        .await?
        .into_iter()
        .map(|r| {
            let status = match r.verdict {
                crate::swarm::Verdict::Ok => Status::Ok,
                crate::swarm::Verdict::Warn => Status::Warn,
                crate::swarm::Verdict::Fail => Status::Fail,
            };
            Finding::new(&r.check, status, r.finding, r.action)
        })
        .collect();
    let failed = findings.iter().any(|f| f.status == Status::Fail);
    let on = format!("{} hosts", ctx.stack.hosts.len());
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"stack": ctx.stack.name, "environment": ctx.stack.environment, "hosts": ctx.stack.hosts.len(), "healthy": !failed, "findings": findings})
        ),
        Output::Human => print_table(ctx, &on, &findings, failed),
    }
    Ok(i32::from(failed))
}

fn print_table(ctx: &Context, on: &str, findings: &[Finding], failed: bool) {
    println!("{} ({}) on {on}", ctx.stack.name, ctx.stack.environment);
    for f in findings {
        println!("  {} {:<18} {}", f.status.mark(), f.check, f.finding);
        if let Some(a) = &f.action {
            println!("       {:<18} → {a}", "");
        }
    }
    if !failed {
        println!("nothing needs action.");
    }
}

/// Every finding group in the playbook's order.
async fn examine(ctx: &Context, c: &Connected) -> Result<Vec<Finding>, CommandError> {
    let env = &ctx.stack.environment;
    let observed = c.engine.stack_containers(&ctx.stack.name).await?;
    let interrupted = ctx.interrupted_restore(c).await;
    let maintenance = super::maintenance::on_since(ctx, c).await;
    let mut out = maintenance_findings(env, interrupted.as_ref(), maintenance.as_deref());
    for service in SERVICES {
        let o = observed.iter().find(|o| o.name == container_name(service));
        out.push(container_finding(c, env, service, o, interrupted.is_some()).await);
    }
    out.extend(disk_finding(c).await?);
    out.extend(archive_finding(ctx, c).await);
    let blocked = Blocked {
        maintenance: maintenance.is_some(),
        restore: interrupted.is_some(),
    };
    out.extend(health_finding(c, env, &observed, blocked).await);
    out.extend(homepage_finding(c, env, &observed).await);
    let logs = c
        .engine
        .log_tail(&container_name("backend"), LOG_WINDOW)
        .await
        .unwrap_or_default();
    out.extend(event_findings(&logs, env));
    out.extend(search_cache_finding(&logs, env));
    Ok(out)
}

/// Continuous archiving (`backup.archive`): stalled (no WAL archived within twice `archive_timeout`, or the last
/// push failed) or unreadable is a failure with what to do.
async fn archive_finding(ctx: &Context, c: &Connected) -> Option<Finding> {
    let setup = crate::backup::Setup::from_stack(&ctx.stack);
    let env = &ctx.stack.environment;
    let action = format!(
        "`vldeploy logs postgres -e {env}` shows pgBackRest's error (a repository that cannot be written, a missing stanza: `vldeploy backup now -e {env}` makes it); `vldeploy backup status -e {env}` shows the lag"
    );
    let status = super::backup::archive_status(ctx, c, &setup).await;
    if matches!(&status, Ok(Some(s)) if s.backup_host_error.is_none()) {
        if let Some(why) = super::backup::foreign_cluster(ctx, c, &setup).await {
            return Some(Finding::new("archive", Status::Fail, why, None));
        }
    }
    match status {
        Ok(None) => None,
        Ok(Some(s)) if s.backup_host_error.is_some() => Some(Finding::new(
            "archive",
            Status::Fail,
            format!(
                "archiving is stalled: {}; the last WAL was archived {}",
                s.backup_host_error.as_deref().unwrap_or_default(),
                s.last_archived_age_s
                    .map_or_else(|| "never".to_owned(), |a| format!("{a}s ago")),
            ),
            Some(format!(
                "start the backup host {} again (its container `{}`) or mend the network between the hosts; postgres keeps the WAL until it is archived, so archiving catches up by itself; `vldeploy backup status -e {env}` shows the lag",
                s.backup_host.as_deref().unwrap_or("-"),
                crate::backup::backup_host::container_name(&ctx.stack.name)
            )),
        )),
        Ok(Some(s)) if s.stalled => Some(Finding::new(
            "archive",
            Status::Fail,
            format!(
                "archiving is stalled: the last WAL was archived {}, {} failed pushes",
                s.last_archived_age_s
                    .map_or_else(|| "never".to_owned(), |a| format!("{a}s ago")),
                s.failed_count
            ),
            Some(action),
        )),
        Ok(Some(s)) => Some(Finding::new(
            "archive",
            Status::Ok,
            format!(
                "WAL archived {}s ago; {} backups in the repository",
                s.last_archived_age_s.unwrap_or(0),
                s.backups
            ),
            None,
        )),
        Err(e) => Some(Finding::new(
            "archive",
            Status::Fail,
            format!("archiving cannot be read: {e}"),
            Some(action),
        )),
    }
}

/// A restore killed part-way, and a maintenance page: the API's 503 has a cause that is not the backend.
fn maintenance_findings(
    env: &str,
    interrupted: Option<&Journal>,
    maintenance: Option<&str>,
) -> Vec<Finding> {
    if let Some(j) = interrupted {
        let (finding, action) = j
            .describe(env)
            .split_once("\n  help: ")
            .map(|(f, a)| (f.to_string(), a.to_string()))
            .unwrap_or_default();
        return vec![Finding::new("restore", Status::Fail, finding, Some(action))];
    }
    maintenance
        .map(|since| {
            Finding::new(
                "maintenance",
                Status::Warn,
                format!("the maintenance page is on since {since}: nginx answers /api/ with 503 on purpose"),
                Some(format!("who and why: `vldeploy audit -e {env}`; lift it with `vldeploy maintenance off -e {env}`")),
            )
        })
        .into_iter()
        .collect()
}

/// Containers: API down, DB connection failures, a blank homepage — each starts with its container.
async fn container_finding(
    c: &Connected,
    env: &str,
    service: &str,
    observed: Option<&ObservedContainer>,
    interrupted: bool,
) -> Finding {
    let name = container_name(service);
    let check = format!("{service} container");
    match observed {
        None => Finding::new(
            &check,
            Status::Fail,
            format!("`{name}` does not exist"),
            Some(format!("`vldeploy up -e {env}` creates it")),
        ),
        Some(o) if !o.is_running() && service == "backend" && interrupted => Finding::new(
            &check,
            Status::Fail,
            format!(
                "`{name}` is {}: the interrupted restore stopped it",
                o.state
            ),
            Some(format!(
                "`vldeploy restore --resume -e {env}` or `vldeploy restore --abort -e {env}` starts it on the right data"
            )),
        ),
        Some(o) if !o.is_running() => {
            let tail = c.engine.log_tail(&name, 8).await.unwrap_or_default();
            stopped_finding(env, service, o, &tail)
        }
        Some(o) if o.health.as_deref() == Some("unhealthy") => Finding::new(
            &check,
            Status::Fail,
            format!("`{name}` runs but fails its health check"),
            Some(format!(
                "`vldeploy logs {service} -n 200 -e {env}`, then `vldeploy restart {service} -e {env}`"
            )),
        ),
        Some(o) => Finding::new(
            &check,
            Status::Ok,
            format!(
                "`{name}` {}{}",
                o.state,
                o.health
                    .as_deref()
                    .map(|h| format!(", {h}"))
                    .unwrap_or_default()
            ),
            None,
        ),
    }
}

/// A container that does not run, with the last lines of its log.
fn stopped_finding(env: &str, service: &str, o: &ObservedContainer, tail: &str) -> Finding {
    let name = container_name(service);
    let why = if service == "postgres" {
        "the database is down: the API fails with `database_connection_failed`".to_string()
    } else {
        format!("`{name}` is {}", o.state)
    };
    Finding::new(
        &format!("{service} container"),
        Status::Fail,
        format!("{why}; last log lines:\n{}", indent(tail)),
        Some(format!(
            "`vldeploy restart {service} -e {env}`; if it stops again, `vldeploy logs {service} -n 200 -e {env}`"
        )),
    )
}

/// Disk space: a full disk stops postgres (and backups).
async fn disk_finding(c: &Connected) -> Result<Option<Finding>, CommandError> {
    let df = c.remote.exec(&crate::remote::host::docker_disk()).await?;
    Ok(disk_usage(&String::from_utf8_lossy(&df.stdout)))
}

/// The finding for a `df` line of `/var/lib/docker`; none when the line has no percentage.
fn disk_usage(line: &str) -> Option<Finding> {
    let pct = line
        .split_whitespace()
        .nth(4)
        .and_then(|p| p.trim_end_matches('%').parse::<u32>().ok())?;
    let (status, action) = match pct {
        0..=79 => (Status::Ok, None),
        80..=89 => (
            Status::Warn,
            Some("free space: `docker system prune` on the host, old backups, logs".to_string()),
        ),
        _ => (
            Status::Fail,
            Some("free space now: the database stops when the disk is full".to_string()),
        ),
    };
    Some(Finding::new(
        "disk space",
        status,
        format!("/var/lib/docker is {pct}% full"),
        action,
    ))
}

/// What may make the API answer 503 on purpose.
#[derive(Debug, Clone, Copy)]
struct Blocked {
    maintenance: bool,
    restore: bool,
}

/// The API through nginx, as a customer reaches it; none when nginx does not run.
async fn health_finding(
    c: &Connected,
    env: &str,
    observed: &[ObservedContainer],
    blocked: Blocked,
) -> Option<Finding> {
    let nginx = container_name("nginx");
    if !observed.iter().any(|o| o.name == nginx && o.is_running()) {
        return None;
    }
    let (code, body) = c
        .engine
        .exec(
            &nginx,
            &[
                "curl",
                "-s",
                // With `tls:` nginx moves plain HTTP to HTTPS: the one redirect is followed, to its own
                // certificate.
                "-k",
                "-L",
                "--max-redirs",
                "1",
                "-m",
                "5",
                "-w",
                "\n%{http_code}",
                "http://127.0.0.1/api/health",
            ],
        )
        .await
        .unwrap_or((1, String::new()));
    Some(health_answer(env, code, &body, blocked))
}

/// The finding for curl's exit code and output (the body, then the HTTP status on the last line).
fn health_answer(env: &str, code: i64, body: &str, blocked: Blocked) -> Finding {
    let status_code = body.lines().last().unwrap_or("000");
    if code == 0 && status_code == "200" {
        return Finding::new(
            "api health",
            Status::Ok,
            "GET /api/health through nginx: 200".into(),
            None,
        );
    }
    if status_code == "503" && blocked.maintenance {
        let (status, action) = if blocked.restore {
            (
                Status::Fail,
                format!(
                    "end the interrupted restore above: `vldeploy restore --resume -e {env}` or `--abort`"
                ),
            )
        } else {
            (
                Status::Warn,
                format!(
                    "the maintenance page above; `vldeploy maintenance off -e {env}` serves the API again"
                ),
            )
        };
        return Finding::new(
            "api health",
            status,
            "GET /api/health through nginx answered 503: the maintenance page".into(),
            Some(action),
        );
    }
    Finding::new(
        "api health",
        Status::Fail,
        format!("GET /api/health through nginx answered {status_code}"),
        Some(format!(
            "see the backend and postgres findings; `vldeploy logs backend --errors -e {env}`"
        )),
    )
}

/// The playbook's "Frontend: load homepage. If blank, check Nginx logs": `/` through nginx, its marker and its
/// assets; a blank page shows nginx's last error lines. None when nginx does not run (its container finding
/// says so).
async fn homepage_finding(
    c: &Connected,
    env: &str,
    observed: &[ObservedContainer],
) -> Option<Finding> {
    let nginx = container_name("nginx");
    if !observed.iter().any(|o| o.name == nginx && o.is_running()) {
        return None;
    }
    let verdict = match crate::site::homepage::load(&c.engine).await {
        Ok(loaded) => crate::site::homepage::judge(&loaded),
        Err(e) => Err(format!(
            "blank homepage: loading / inside `{nginx}` failed: {e}"
        )),
    };
    let log = match &verdict {
        Ok(_) => String::new(),
        Err(_) => c.engine.log_tail(&nginx, 300).await.unwrap_or_default(),
    };
    Some(homepage_answer(env, verdict, &log))
}

/// The homepage finding for the check's verdict and nginx's recent log.
fn homepage_answer(env: &str, verdict: Result<String, String>, nginx_log: &str) -> Finding {
    match verdict {
        Ok(seen) => Finding::new("homepage", Status::Ok, seen, None),
        Err(problem) => {
            let lines =
                crate::site::homepage::error_lines(nginx_log, crate::site::homepage::ERROR_LINES);
            let shown = if lines.is_empty() {
                "no error lines in nginx's recent log".to_string()
            } else {
                format!("nginx's last error lines:\n{}", indent(&lines.join("\n")))
            };
            Finding::new(
                "homepage",
                Status::Fail,
                format!("{problem}; {shown}"),
                Some(format!(
                    "check `vldeploy logs nginx -e {env}`; `vldeploy up -e {env}` puts the storefront back, `vldeploy rollback -e {env}` the previous one"
                )),
            )
        }
    }
}

/// Key error events in the backend's recent logs.
fn event_findings(logs: &str, env: &str) -> Vec<Finding> {
    KEY_ERRORS
        .iter()
        .map(|event| {
            let (check, action) = event_advice(event, env);
            match count_event(logs, event) {
                0 => Finding::new(
                    check,
                    Status::Ok,
                    format!("no `{event}` in the last {LOG_WINDOW} log lines"),
                    None,
                ),
                n => Finding::new(
                    check,
                    Status::Warn,
                    format!("{n} × `{event}` in the last {LOG_WINDOW} log lines"),
                    Some(action),
                ),
            }
        })
        .collect()
}

/// A key error event's check name, and what to do when it shows up.
fn event_advice(event: &str, env: &str) -> (&'static str, String) {
    match event {
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
            "check the Shiprocket credentials in the secrets file, then `vldeploy up`".to_string(),
        ),
    }
}

/// Slow search: the in-memory cache; none when the window holds no search.
fn search_cache_finding(logs: &str, env: &str) -> Option<Finding> {
    let (hits, misses) = (
        count_field(logs, "search_cache", "\"cache\":\"hit\""),
        count_field(logs, "search_cache", "\"cache\":\"miss\""),
    );
    let searches = hits + misses;
    if searches == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = hits as f64 * 100.0 / searches as f64;
    Some(Finding::new(
        "search cache",
        Status::Ok,
        format!("{searches} searches in the window, {rate:.0}% from the cache"),
        Some(format!(
            "if search is slow or stale: `vldeploy cache flush -e {env}` (no restart needed)"
        )),
    ))
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
    #[test]
    fn a_blank_homepage_fails_with_nginx_error_lines_and_the_logs_command() {
        let log = "{\"path\":\"/\",\"status\":403}\n2026/01/01 10:00:01 [error] 30#30: *1 directory index of \"/var/www/storefront/current/\" is forbidden\n";
        let f = super::homepage_answer(
            "sandbox",
            Err("blank homepage: GET / through nginx answered 403".into()),
            log,
        );
        assert_eq!(f.status, super::Status::Fail);
        assert_eq!(
            f.finding,
            "blank homepage: GET / through nginx answered 403; nginx's last error lines:\n         | 2026/01/01 10:00:01 [error] 30#30: *1 directory index of \"/var/www/storefront/current/\" is forbidden"
        );
        assert!(
            f.action
                .as_deref()
                .unwrap_or_default()
                .starts_with("check `vldeploy logs nginx -e sandbox`")
        );
        let ok = super::homepage_answer("sandbox", Ok("GET / through nginx: 200".into()), "");
        assert_eq!((ok.status, ok.action), (super::Status::Ok, None));
    }

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

    fn statuses(findings: &[Finding]) -> Vec<(&str, Status)> {
        findings
            .iter()
            .map(|f| (f.check.as_str(), f.status))
            .collect()
    }

    #[test]
    fn statuses_keep_their_json_values_and_marks() {
        let json = serde_json::to_value([Status::Ok, Status::Warn, Status::Fail]).unwrap();
        assert_eq!(json, serde_json::json!(["ok", "warn", "fail"]));
        let marks: Vec<_> = [Status::Ok, Status::Warn, Status::Fail]
            .iter()
            .map(|s| s.mark())
            .collect();
        assert_eq!(marks, ["ok  ", "WARN", "FAIL"]);
        let f = Finding::new("disk space", Status::Warn, "x".into(), None);
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"check": "disk space", "status": "warn", "finding": "x"})
        );
    }

    #[test]
    fn an_interrupted_restore_hides_the_maintenance_finding() {
        let on = maintenance_findings("prod", None, Some("2026-12-02 (3 min ago)"));
        assert_eq!(statuses(&on), [("maintenance", Status::Warn)]);
        assert_eq!(
            on[0].finding,
            "the maintenance page is on since 2026-12-02 (3 min ago): nginx answers /api/ with 503 on purpose"
        );
        assert!(maintenance_findings("prod", None, None).is_empty());

        let mut j = Journal::new("b.sql.gz", "shop", "shop_restore_1", "shop_before_1", false);
        j.phase = "swap".into();
        let both = maintenance_findings("prod", Some(&j), Some("then"));
        assert_eq!(statuses(&both), [("restore", Status::Fail)]);
        assert!(both[0].finding.contains("interrupted in phase `swap`"));
        assert_eq!(
            both[0].action.as_deref(),
            Some(
                "`vldeploy restore --resume -e prod` finishes it, `vldeploy restore --abort -e prod` puts the previous data back"
            )
        );
    }

    #[test]
    fn a_stopped_database_names_the_api_error_and_its_log() {
        let o = ObservedContainer {
            state: "exited".into(),
            ..ObservedContainer::default()
        };
        let f = stopped_finding("prod", "postgres", &o, "FATAL one\nFATAL two");
        assert_eq!(
            (f.check.as_str(), f.status),
            ("postgres container", Status::Fail)
        );
        assert_eq!(
            f.finding,
            "the database is down: the API fails with `database_connection_failed`; last log lines:\n         | FATAL one\n         | FATAL two"
        );
        let f = stopped_finding("prod", "nginx", &o, "");
        assert!(
            f.finding.starts_with("`vl_nginx` is exited; "),
            "{}",
            f.finding
        );
    }

    #[test]
    fn disk_usage_warns_at_80_and_fails_at_90_percent() {
        let at = |pct: &str| {
            disk_usage(&format!("/dev/sda1 100G 50G 50G {pct} /var/lib/docker")).map(|f| f.status)
        };
        assert_eq!(at("79%"), Some(Status::Ok));
        assert_eq!(at("80%"), Some(Status::Warn));
        assert_eq!(at("89%"), Some(Status::Warn));
        assert_eq!(at("90%"), Some(Status::Fail));
        assert_eq!(at("-"), None);
        let f = disk_usage("/dev/sda1 100G 50G 50G 42% /var/lib/docker");
        assert_eq!(
            f.map(|f| f.finding).as_deref(),
            Some("/var/lib/docker is 42% full")
        );
    }

    #[test]
    fn a_503_is_the_maintenance_page_only_when_it_is_on() {
        let free = Blocked {
            maintenance: false,
            restore: false,
        };
        let page = Blocked {
            maintenance: true,
            restore: false,
        };
        let restore = Blocked {
            maintenance: true,
            restore: true,
        };
        assert_eq!(health_answer("prod", 0, "{}\n200", free).status, Status::Ok);
        assert_eq!(health_answer("prod", 7, "", free).status, Status::Fail);
        let down = health_answer("prod", 0, "x\n503", free);
        assert_eq!(
            (down.status, down.finding.as_str()),
            (Status::Fail, "GET /api/health through nginx answered 503")
        );
        assert_eq!(
            health_answer("prod", 0, "x\n503", page).status,
            Status::Warn
        );
        let f = health_answer("prod", 0, "x\n503", restore);
        assert_eq!(f.status, Status::Fail);
        assert_eq!(
            f.action.as_deref(),
            Some(
                "end the interrupted restore above: `vldeploy restore --resume -e prod` or `--abort`"
            )
        );
    }

    #[test]
    fn key_events_warn_with_their_count_and_the_cache_reports_its_rate() {
        let line = |m: &str| format!(r#"{{"level":"ERROR","message":"{m}"}}"#);
        let logs = [
            line("payment_verification_failed"),
            line("payment_verification_failed"),
            r#"{"message":"search_cache","cache":"hit"}"#.into(),
            r#"{"message":"search_cache","cache":"hit"}"#.into(),
            r#"{"message":"search_cache","cache":"hit"}"#.into(),
            r#"{"message":"search_cache","cache":"miss"}"#.into(),
        ]
        .join("\n");
        let events = event_findings(&logs, "prod");
        assert_eq!(
            statuses(&events),
            [
                ("db connections", Status::Ok),
                ("payments", Status::Warn),
                ("shipping", Status::Ok)
            ]
        );
        assert_eq!(
            events[1].finding,
            "2 × `payment_verification_failed` in the last 2000 log lines"
        );
        assert!(events[0].action.is_none() && events[1].action.is_some());
        let cache = search_cache_finding(&logs, "prod").map(|f| f.finding);
        assert_eq!(
            cache.as_deref(),
            Some("4 searches in the window, 75% from the cache")
        );
        assert!(search_cache_finding(&line("request_completed"), "prod").is_none());
    }
}
