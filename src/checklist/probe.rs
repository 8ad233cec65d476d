//! The probes behind each item: what they look at (the live release from outside, or a staged one on the host).

use std::path::PathBuf;
use std::time::Duration;

use super::report::Finding;
use super::{ATTESTED_ITEMS, AUTH_PROBE_REQUESTS, Inputs, freshness};
use crate::layout::container_name;
use crate::stack::{Stack, Tls};

/// What the release-level items (`health`, `safe_mode`, `auth_rate_limit`) look at.
#[derive(Debug, Clone)]
pub enum Subject {
    /// The release nginx serves, through the public endpoint from where vldeploy runs.
    Live,
    /// A release started and healthy but not yet serving: probed from the nginx container on the host.
    Staged {
        container: String,
        alias: String,
        port: u16,
    },
}

impl Subject {
    pub fn describe(&self) -> String {
        match self {
            Self::Live => "the live release".into(),
            Self::Staged { container, .. } => format!("the staged release `{container}`"),
        }
    }

    fn container(&self) -> String {
        match self {
            Self::Live => container_name("backend"),
            Self::Staged { container, .. } => container.clone(),
        }
    }
}

/// Judges one item.
pub(super) async fn judge(inputs: &Inputs<'_>, item: &str, now: u64) -> Finding {
    match item {
        "ssl" => ssl(inputs.stack, now).await,
        "secrets" => secrets(inputs.stack),
        "safe_mode" => safe_mode(inputs).await,
        "backup" => backup(inputs, now).await,
        "firewall" => firewall(inputs.stack).await,
        "auth_rate_limit" => auth_rate_limit(inputs, now).await,
        "health" => health(inputs).await,
        "homepage" => homepage(inputs).await,
        other if ATTESTED_ITEMS.contains(&other) => attested(inputs, other, now).await,
        other => Finding::fail(
            other,
            "no such checklist item",
            "remove it from `checklist.items`",
        ),
    }
}

/// Where the public HTTPS (443) or HTTP (80) listener is reached from here.
fn public_address(stack: &Stack, port: u16) -> Option<String> {
    match crate::firewall::Reach::for_stack(stack) {
        r @ crate::firewall::Reach::Published { .. } => r.address(port),
        crate::firewall::Reach::Direct { .. } => Some(format!("{}:{port}", stack.domain)),
    }
}

/// Extra roots to trust: the CA bundle of `tls: acme` (a private or test CA).
fn extra_roots(stack: &Stack) -> Option<PathBuf> {
    match &stack.tls {
        Tls::Acme(acme) => acme.ca_bundle.clone(),
        _ => None,
    }
}

async fn ssl(stack: &Stack, now: u64) -> Finding {
    const ITEM: &str = "ssl";
    if stack.tls == Tls::Off {
        return Finding::fail(
            ITEM,
            "`tls: off`: the domain has no HTTPS",
            "add `tls: {acme: {directory: letsencrypt, email: ...}}` to the environment and run `vldeploy up`",
        );
    }
    let Some(addr) = public_address(stack, 443) else {
        return Finding::fail(
            ITEM,
            "port 443 cannot be reached from here",
            "publish 443 (`vldeploy sandbox up --publish 443`)",
        );
    };
    match super::ssl::check(&addr, &stack.domain, extra_roots(stack), now).await {
        Ok(s) => Finding::pass(
            ITEM,
            format!(
                "certificate {} for {} issued by {}, chain trusted, {} days left",
                s.cert.serial,
                s.cert.sans.join(", "),
                s.cert.issuer,
                s.days_left
            ),
        ),
        Err(why) => Finding::fail(
            ITEM,
            format!("{} at {addr}: {why}", stack.domain),
            "`vldeploy certs status` shows the certificate; `vldeploy certs renew --force` issues a new one (the domain must point at the host)",
        ),
    }
}

fn secrets(stack: &Stack) -> Finding {
    const ITEM: &str = "secrets";
    let weak = super::secrets::weak_secrets(&stack.named_secrets);
    if stack.named_secrets.is_empty() {
        return Finding::fail(
            ITEM,
            "the stack declares no secrets",
            "list the secret variables under `secrets:` in stack.yaml",
        );
    }
    if weak.is_empty() {
        let names: Vec<&str> = stack
            .named_secrets
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        return Finding::pass(
            ITEM,
            format!(
                "{} secrets, none a default, short or predictable: {}",
                names.len(),
                names.join(", ")
            ),
        );
    }
    let lines: Vec<String> = weak
        .iter()
        .map(|(n, w)| format!("`{n}` is {}", w.describe()))
        .collect();
    Finding::fail(
        ITEM,
        lines.join("; "),
        "put generated values (`openssl rand -base64 24`) in the secrets file and run `vldeploy up`; a database password must also be changed inside postgres (`ALTER USER ... PASSWORD`)",
    )
}

async fn safe_mode(inputs: &Inputs<'_>) -> Finding {
    const ITEM: &str = "safe_mode";
    let name = inputs.subject.container();
    let fix = "set `OPERATOR_SAFE_MODE: \"true\"` in the backend's env in stack.yaml and run `vldeploy up`";
    let env = match inputs.engine.inspect(&name).await {
        Ok(Some(c)) => c.env,
        Ok(None) => {
            return Finding::fail(
                ITEM,
                format!("`{name}` cannot be read on the host: no such container"),
                "`vldeploy up` starts the backend",
            );
        }
        Err(e) => {
            return Finding::fail(
                ITEM,
                format!("`{name}` cannot be read on the host: {e}"),
                "`vldeploy up` starts the backend",
            );
        }
    };
    let value = env
        .iter()
        .find_map(|kv| kv.strip_prefix("OPERATOR_SAFE_MODE="))
        .map(str::to_owned);
    match value {
        Some(v) if v.eq_ignore_ascii_case("true") => {
            Finding::pass(ITEM, format!("OPERATOR_SAFE_MODE=true in `{name}`"))
        }
        Some(v) => Finding::fail(
            ITEM,
            format!("OPERATOR_SAFE_MODE is `{v}` in `{name}`"),
            fix,
        ),
        None => Finding::fail(
            ITEM,
            format!("OPERATOR_SAFE_MODE is not set in `{name}`"),
            fix,
        ),
    }
}

/// What to do when archiving is stalled.
const ARCHIVING_FIX: &str = "`vldeploy backup status` and `vldeploy logs postgres` show pgBackRest's error (a repository that is full, unwritable or missing its stanza: `vldeploy backup now` makes it); archiving catches up by itself once it is fixed";

/// What to do when no backup leaves the database host.
const OFF_SITE_FIX: &str = "set `backup.archive.repo: ssh://user@host/path` (a backup host for pgBackRest's repository) or `backup.copy_to: user@host:/dir` (the daily dump copied there), then run `vldeploy up`";

/// The `backup` item: a fresh dump verified by a scratch restore and, with `backup.archive` in a gated
/// environment, a copy off the database host and archiving that is not stalled (what `backup status` computes).
async fn backup(inputs: &Inputs<'_>, now: u64) -> Finding {
    const ITEM: &str = "backup";
    let archive = inputs
        .stack
        .backup
        .as_ref()
        .and_then(|b| b.archive.as_ref())
        .filter(|_| inputs.stack.gated);
    let archiving = match archive {
        None => None,
        Some(a) => {
            let setup = crate::backup::Setup::from_stack(inputs.stack);
            let timeout_s = a.timeout.as_secs();
            let backup_host = crate::backup::backup_host::target(inputs.stack).map(|t| t.name());
            let lag = crate::backup::archive_status_via(
                inputs.remote,
                &setup,
                timeout_s,
                now,
                backup_host.as_deref(),
            )
            .await
            .map_err(|e| format!("the archiving state cannot be read: {e}"))
            .and_then(|s| archiving(&s, timeout_s));
            let copy_to = inputs
                .stack
                .backup
                .as_ref()
                .and_then(|b| b.copy_to.as_deref());
            Some(archive_verdict(
                off_site(&a.repo, backup_host.as_deref(), copy_to),
                lag,
            ))
        }
    };
    let dump = verified_dump(inputs, now).await;
    match archiving {
        None => dump,
        Some(Ok(evidence)) => Finding {
            evidence: format!("{}; {evidence}", dump.evidence),
            ..dump
        },
        Some(Err((problem, fix))) if dump.status == super::Status::Pass => {
            Finding::fail(ITEM, format!("{problem}; {}", dump.evidence), fix)
        }
        Some(Err((problem, fix))) => Finding::fail(
            ITEM,
            format!("{problem}; {}", dump.evidence),
            format!("{fix}; {}", dump.fix),
        ),
    }
}

/// Where a copy of the shop's backups lives off the database host: the pgBackRest repository on the backup host
/// (`backup_host`, from an `ssh://` repository), or the dumps' `copy_to`. A local repository alone is not one.
fn off_site(
    repo: &crate::stack::ArchiveRepo,
    backup_host: Option<&str>,
    copy_to: Option<&str>,
) -> Result<String, String> {
    match (repo, backup_host, copy_to) {
        (crate::stack::ArchiveRepo::Ssh { path, .. }, Some(host), _) => Ok(format!(
            "off-site: the pgBackRest repository `{path}` is on the backup host {host}"
        )),
        (_, _, Some(to)) => Ok(format!("off-site: the daily dump is copied to `{to}`")),
        (crate::stack::ArchiveRepo::Local(path), _, None) => Err(format!(
            "no backup leaves the database host: the pgBackRest repository `{path}` is on it and `backup.copy_to` is not set"
        )),
        (crate::stack::ArchiveRepo::Ssh { .. }, None, None) => {
            Err("no backup leaves the database host: `backup.copy_to` is not set".to_owned())
        }
    }
}

/// Both conditions of archiving in a gated environment, with what to do about each that fails.
fn archive_verdict(
    off_site: Result<String, String>,
    lag: Result<String, String>,
) -> Result<String, (String, String)> {
    match (off_site, lag) {
        (Ok(o), Ok(l)) => Ok(format!("{l}; {o}")),
        (Err(o), Ok(_)) => Err((o, OFF_SITE_FIX.to_owned())),
        (Ok(_), Err(l)) => Err((l, ARCHIVING_FIX.to_owned())),
        (Err(o), Err(l)) => Err((
            format!("{l}; {o}"),
            format!("{ARCHIVING_FIX}; {OFF_SITE_FIX}"),
        )),
    }
}

/// The checklist's reading of `backup status`: evidence when archiving is not stalled, the problem when it is.
fn archiving(s: &crate::backup::archive::ArchiveStatus, timeout_s: u64) -> Result<String, String> {
    let span = crate::timestamp::span;
    let wal = s.last_archived_wal.as_deref().unwrap_or("none");
    if !s.stalled {
        return Ok(format!(
            "continuous archiving: WAL `{wal}` archived {} ago (within twice archive_timeout, {}s)",
            span(s.last_archived_age_s.unwrap_or(0)),
            2 * timeout_s
        ));
    }
    let failing = match (s.last_failed_age_s, s.last_archived_age_s) {
        (Some(f), Some(a)) => f < a,
        (Some(_), None) => true,
        _ => false,
    };
    Err(match (failing, s.last_archived_age_s) {
        (true, _) => format!(
            "continuous archiving is stalled: the last WAL push failed {} ago ({} failed since postgres started; the last archived WAL is `{wal}`)",
            span(s.last_failed_age_s.unwrap_or(0)),
            s.failed_count
        ),
        (false, None) => "continuous archiving is stalled: no WAL was archived yet".to_owned(),
        (false, Some(age)) => format!(
            "continuous archiving is stalled: the last WAL (`{wal}`) was archived {} ago, more than twice archive_timeout ({}s)",
            span(age),
            2 * timeout_s
        ),
    })
}

/// The newest dump verified by a scratch restore: still on the host, whole, and fresh.
async fn verified_dump(inputs: &Inputs<'_>, now: u64) -> Finding {
    const ITEM: &str = "backup";
    let fix = "`vldeploy backup now`, then `vldeploy backup verify` (a scratch restore that records the evidence)";
    let stack = &inputs.stack.name;
    let record = match super::read_backup_verified(inputs.remote, stack).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Finding::fail(
                ITEM,
                "no backup was ever verified by a scratch restore",
                fix,
            );
        }
        Err(e) => return Finding::fail(ITEM, format!("the evidence cannot be read: {e}"), fix),
    };
    let setup = crate::backup::Setup::from_stack(inputs.stack);
    let present = match crate::backup::list(inputs.remote, &setup).await {
        Ok(entries) => entries.into_iter().find(|e| e.name.file == record.file),
        Err(e) => {
            return Finding::fail(ITEM, format!("the backups cannot be listed: {e}"), fix);
        }
    };
    let Some(entry) = present else {
        return Finding::fail(
            ITEM,
            format!(
                "the verified backup `{}` is no longer on the host",
                record.file
            ),
            fix,
        );
    };
    if entry.checksum != crate::backup::Checksum::Ok {
        return Finding::fail(
            ITEM,
            format!(
                "the verified backup `{}` no longer matches its checksum ({})",
                record.file,
                entry.checksum.as_str()
            ),
            fix,
        );
    }
    let age = now.saturating_sub(record.taken);
    let window = freshness(inputs.stack, ITEM);
    let evidence = format!(
        "`{}` taken {} ago, restored into a scratch database {} ago: {} tables, {} rows",
        record.file,
        crate::timestamp::span(age),
        crate::timestamp::span(now.saturating_sub(record.verified)),
        record.tables,
        record.rows
    );
    if Duration::from_secs(age) > window {
        return Finding::stale(
            ITEM,
            format!(
                "{evidence} (older than {})",
                crate::timestamp::span(window.as_secs())
            ),
            fix,
        );
    }
    Finding::pass(ITEM, evidence)
}

async fn firewall(stack: &Stack) -> Finding {
    const ITEM: &str = "firewall";
    let fix = "`vldeploy up` applies the firewall; `vldeploy firewall probe` shows every port";
    match crate::firewall::probe(stack).await {
        Ok(report) => {
            let probed = |open: bool| -> Vec<String> {
                report
                    .ports
                    .iter()
                    .filter(|p| {
                        p.ok.is_some() && (p.expect == crate::firewall::Expect::Open) == open
                    })
                    .map(|p| p.port.to_string())
                    .collect()
            };
            if report.passed() {
                Finding::pass(ITEM, firewall_evidence(&probed(true), &probed(false)))
            } else if report.ports.iter().all(|p| p.ok.is_none()) {
                Finding::fail(ITEM, "no port could be probed from here", fix)
            } else {
                Finding::fail(
                    ITEM,
                    format!("from outside: {}", report.failures().join(", ")),
                    fix,
                )
            }
        }
        Err(e) => Finding::fail(ITEM, e.to_string(), fix),
    }
}

/// `from outside: 22, 80, 443 answer; 5432 closed`, leaving out a list that is empty.
fn firewall_evidence(open: &[String], closed: &[String]) -> String {
    let mut parts = Vec::new();
    if !open.is_empty() {
        parts.push(format!("{} answer", open.join(", ")));
    }
    if !closed.is_empty() {
        parts.push(format!("{} closed", closed.join(", ")));
    }
    format!("from outside: {}", parts.join("; "))
}

/// An HTTP answer: status and `Retry-After`.
struct Answer {
    status: u16,
    retry_after: Option<String>,
}

/// Requests for the release-level items, to the subject.
async fn request(
    inputs: &Inputs<'_>,
    method: &str,
    path: &str,
    body: Option<&str>,
    https: bool,
) -> Result<Answer, String> {
    match &inputs.subject {
        Subject::Live => live_request(inputs.stack, method, path, body, https).await,
        Subject::Staged { alias, port, .. } => {
            let url = format!("http://{alias}:{port}{path}");
            let mut cmd = vec![
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-D",
                "-",
                "--max-time",
                "10",
                "-X",
                method,
            ];
            if let Some(b) = body {
                cmd.extend(["-H", "content-type: application/json", "--data", b]);
            }
            cmd.push(&url);
            let nginx = &inputs.nginx;
            let (status, out) = inputs
                .engine
                .exec(nginx, &cmd)
                .await
                .map_err(|e| format!("from `{nginx}`: {e}"))?;
            if status != 0 {
                return Err(format!(
                    "`{url}` from `{nginx}` failed (curl exit {status})"
                ));
            }
            parse_head(&out).ok_or_else(|| format!("`{url}` gave no HTTP answer"))
        }
    }
}

fn parse_head(head: &str) -> Option<Answer> {
    let status = head
        .lines()
        .find(|l| l.starts_with("HTTP/"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let retry_after = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("retry-after")
            .then(|| v.trim().to_owned())
    });
    Some(Answer {
        status,
        retry_after,
    })
}

async fn live_request(
    stack: &Stack,
    method: &str,
    path: &str,
    body: Option<&str>,
    https: bool,
) -> Result<Answer, String> {
    let port = if https { 443 } else { 80 };
    let addr = public_address(stack, port)
        .ok_or_else(|| format!("port {port} cannot be reached from here"))?;
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    let url = if https {
        let socket = tokio::net::lookup_host(&addr)
            .await
            .map_err(|e| format!("`{addr}` does not resolve: {e}"))?
            .next()
            .ok_or_else(|| format!("`{addr}` has no address"))?;
        builder = builder.resolve(&stack.domain, socket);
        if let Some(bundle) = extra_roots(stack) {
            let pem = std::fs::read(&bundle)
                .map_err(|e| format!("the CA bundle `{}`: {e}", bundle.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("the CA bundle `{}`: {e}", bundle.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        format!("https://{}:{}{path}", stack.domain, socket.port())
    } else {
        format!("http://{addr}{path}")
    };
    let client = builder.build().map_err(|e| e.to_string())?;
    let mut req = client.request(
        reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?,
        &url,
    );
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = req.send().await.map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        format!("{url}: {text}")
    })?;
    Ok(Answer {
        status: resp.status().as_u16(),
        retry_after: resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    })
}

async fn health(inputs: &Inputs<'_>) -> Finding {
    const ITEM: &str = "health";
    let fix = "`vldeploy doctor` names the cause and the action";
    let https = matches!(inputs.subject, Subject::Live);
    if https && inputs.stack.tls == Tls::Off {
        return Finding::fail(
            ITEM,
            "`tls: off`: /api/health is not served over HTTPS",
            "add `tls: acme` (or `provided`) to the environment and run `vldeploy up`",
        );
    }
    match request(inputs, "GET", "/api/health", None, https).await {
        Ok(a) if a.status == 200 => Finding::pass(
            ITEM,
            match &inputs.subject {
                Subject::Live => "GET /api/health over HTTPS answered 200".to_owned(),
                Subject::Staged { container, .. } => format!(
                    "GET /api/health on `{container}` answered 200 (HTTPS is the `ssl` item)"
                ),
            },
        ),
        Ok(a) => Finding::fail(ITEM, format!("GET /api/health answered {}", a.status), fix),
        Err(e) => Finding::fail(ITEM, format!("GET /api/health: {e}"), fix),
    }
}

/// The storefront (or the placeholder page) through nginx: 200, its marker, its assets. The page is static, so
/// a staged release shows the same as the live one.
async fn homepage(inputs: &Inputs<'_>) -> Finding {
    const ITEM: &str = "homepage";
    let fix = "`vldeploy doctor` shows nginx's last error lines; check `vldeploy logs nginx`";
    let verdict = match crate::site::homepage::load_in(inputs.engine, &inputs.nginx).await {
        Ok(loaded) => crate::site::homepage::judge(&loaded),
        Err(e) => Err(format!(
            "blank homepage: loading / inside `{}` failed: {e}",
            inputs.nginx
        )),
    };
    match verdict {
        Ok(seen) => Finding::pass(ITEM, seen),
        Err(problem) => Finding::fail(ITEM, problem, fix),
    }
}

async fn auth_rate_limit(inputs: &Inputs<'_>, now: u64) -> Finding {
    const ITEM: &str = "auth_rate_limit";
    let fix = "the backend must limit /api/auth: remove any `AUTH_RATE_LIMIT_*` override that lifts the limits (defaults: 30 requests per IP and 5 per phone or email in 10 minutes)";
    // An address that is never delivered to (`.invalid`), new on every run so earlier runs do not count.
    let body = format!(r#"{{"email":"checklist-probe-{now}@example.invalid"}}"#);
    let https = matches!(inputs.subject, Subject::Live) && inputs.stack.tls != Tls::Off;
    let mut statuses = Vec::new();
    // Each backend task counts on its own: with several, the requests are spread over them.
    let requests = AUTH_PROBE_REQUESTS * backend_tasks(inputs.stack);
    for n in 1..=requests {
        match request(inputs, "POST", "/api/auth/otp/request", Some(&body), https).await {
            Ok(a) if a.status == 429 => {
                return Finding::pass(
                    ITEM,
                    format!(
                        "POST /api/auth/otp/request answered 429 at request {n} of {requests}{}",
                        a.retry_after
                            .map(|r| format!(" (Retry-After: {r})"))
                            .unwrap_or_default()
                    ),
                );
            }
            Ok(a) => statuses.push(a.status),
            Err(e) => {
                return Finding::fail(ITEM, format!("POST /api/auth/otp/request: {e}"), fix);
            }
        }
    }
    statuses.dedup();
    let seen: Vec<String> = statuses.iter().map(ToString::to_string).collect();
    Finding::fail(
        ITEM,
        format!(
            "{requests} requests to POST /api/auth/otp/request, none answered 429 (answers: {})",
            seen.join(", ")
        ),
        fix,
    )
}

/// How many backend tasks share the requests: one on one host; on a swarm, its replicas.
fn backend_tasks(stack: &Stack) -> u32 {
    if stack.hosts.is_empty() {
        return 1;
    }
    let app_hosts = stack
        .hosts
        .iter()
        .filter(|h| h.has(crate::stack::Role::App))
        .count();
    stack
        .services
        .get("backend")
        .and_then(|s| s.replicas)
        .unwrap_or_else(|| u32::try_from(app_hosts.max(1)).unwrap_or(1))
}

async fn attested(inputs: &Inputs<'_>, item: &str, now: u64) -> Finding {
    let fix = format!("check it by hand, then `vldeploy checklist attest {item} --note \"…\"`");
    let all = match super::read_attestations(inputs.remote, &inputs.stack.name).await {
        Ok(a) => a,
        Err(e) => return Finding::fail(item, format!("attestations cannot be read: {e}"), fix),
    };
    let Some(a) = all.get(item) else {
        return Finding::fail(item, "not attested yet", fix);
    };
    let age = now.saturating_sub(a.time);
    let evidence = format!(
        "attested by {} {} ago: \"{}\"",
        a.actor,
        crate::timestamp::span(age),
        a.note
    );
    let window = freshness(inputs.stack, item);
    if Duration::from_secs(age) > window {
        return Finding::stale(
            item,
            format!(
                "{evidence} (older than {})",
                crate::timestamp::span(window.as_secs())
            ),
            fix,
        );
    }
    Finding::pass(item, evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backup_item_reads_archiving_from_what_backup_status_computes() {
        use crate::backup::archive::parse_status;
        let info = r#"[{"backup":[{"info":{"repository":{"delta":10}},"timestamp":{"start":90,"stop":100}}]}]"#;
        let status = |row: &str| parse_status(row, info, 300, 5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            archiving(&status("000000010000000000000007\t297\t0\t\n"), 5),
            Ok("continuous archiving: WAL `000000010000000000000007` archived 3 s ago (within twice archive_timeout, 10s)".into())
        );
        // A push that failed after the last success: stalled at once, whatever the age.
        assert_eq!(
            archiving(&status("000000010000000000000007\t297\t4\t299\n"), 5),
            Err("continuous archiving is stalled: the last WAL push failed 1 s ago (4 failed since postgres started; the last archived WAL is `000000010000000000000007`)".into())
        );
        // An older failure does not count once a segment was archived after it.
        assert!(archiving(&status("w\t297\t4\t200\n"), 5).is_ok());
        assert_eq!(
            archiving(&status("000000010000000000000007\t289\t0\t\n"), 5),
            Err("continuous archiving is stalled: the last WAL (`000000010000000000000007`) was archived 11 s ago, more than twice archive_timeout (10s)".into())
        );
        assert_eq!(
            archiving(&status("\t\t0\t\n"), 5),
            Err("continuous archiving is stalled: no WAL was archived yet".into())
        );
    }

    #[test]
    fn a_gated_archive_needs_a_copy_off_the_database_host_and_a_fresh_wal() {
        use crate::stack::ArchiveRepo;
        let local = ArchiveRepo::Local("/var/lib/pgbackrest".into());
        let far = ArchiveRepo::Ssh {
            user: "root".into(),
            host: "vault".into(),
            port: 22,
            path: "/srv/pgbackrest".into(),
        };
        assert_eq!(
            off_site(&far, Some("root@vault:22"), None),
            Ok("off-site: the pgBackRest repository `/srv/pgbackrest` is on the backup host root@vault:22".into())
        );
        assert_eq!(
            off_site(&local, None, Some("b@vault:/srv")),
            Ok("off-site: the daily dump is copied to `b@vault:/srv`".into())
        );
        let alone = off_site(&local, None, None);
        assert_eq!(
            alone,
            Err("no backup leaves the database host: the pgBackRest repository `/var/lib/pgbackrest` is on it and `backup.copy_to` is not set".into())
        );
        let fresh = Ok::<String, String>("continuous archiving: WAL `w` archived 3 s ago".into());
        let stalled = Err::<String, String>("continuous archiving is stalled".into());
        assert_eq!(
            archive_verdict(off_site(&far, Some("root@vault:22"), None), fresh.clone()),
            Ok("continuous archiving: WAL `w` archived 3 s ago; off-site: the pgBackRest repository `/srv/pgbackrest` is on the backup host root@vault:22".into())
        );
        let Err((problem, fix)) = archive_verdict(alone.clone(), fresh) else {
            panic!("a local repository alone passed")
        };
        assert!(
            problem.starts_with("no backup leaves the database host"),
            "{problem}"
        );
        assert!(
            fix.contains("`backup.archive.repo: ssh://") && fix.contains("`backup.copy_to"),
            "{fix}"
        );
        let Err((_, fix)) = archive_verdict(Ok("o".into()), stalled.clone()) else {
            panic!("a stalled archive passed")
        };
        assert_eq!(fix, ARCHIVING_FIX);
        let Err((problem, fix)) = archive_verdict(alone, stalled) else {
            panic!("both failing passed")
        };
        assert!(
            problem.contains("stalled") && problem.contains("no backup leaves"),
            "{problem}"
        );
        assert!(
            fix.contains("vldeploy backup status") && fix.contains("copy_to"),
            "{fix}"
        );
    }

    #[test]
    fn a_head_gives_status_and_retry_after() {
        let a = parse_head(
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 37\r\ncontent-length: 0\r\n\r\n",
        )
        .unwrap_or_else(|| panic!("parsed"));
        assert_eq!(a.status, 429);
        assert_eq!(a.retry_after.as_deref(), Some("37"));
        assert!(parse_head("curl: (7) failed").is_none());
    }

    #[test]
    fn firewall_evidence_names_only_what_was_probed() {
        let list = |s: &[&str]| s.iter().map(|p| (*p).to_string()).collect::<Vec<_>>();
        assert_eq!(
            firewall_evidence(&list(&["22", "80", "443"]), &[]),
            "from outside: 22, 80, 443 answer"
        );
        assert_eq!(
            firewall_evidence(&list(&["22", "80"]), &list(&["5432", "8080"])),
            "from outside: 22, 80 answer; 5432, 8080 closed"
        );
    }
}
