//! The go-live checklist on a swarm, and the gate of `up` there: each item's evidence read where it lives —
//! the certificate on every edge, the verified backup on the db node, the secrets as Swarm secrets, the
//! firewall of every node, the API's health and the homepage through the nginx task of every edge.
//!
//! What "staged" means on a swarm, so that the shop keeps serving whatever the checklist says:
//! - a first launch (no backend service yet) goes up behind the maintenance page on every edge, and the page
//!   is lifted only when the checklist passes against the backend service the launch started;
//! - a later release is held: its backend design starts as a service of its own (`<stack>_backend-candidate`,
//!   one task, a name nginx never resolves) while `<stack>_backend` keeps its spec and serves; the checklist
//!   looks at the candidate, which is then removed, and only when it passed does the backend service get its
//!   rolling update. A refused release changes no service that serves.

use std::sync::Arc;

use super::{CommandError, Context};
use crate::checklist::{Finding, Inputs, Report, Status, Subject};
use crate::cli::Output;
use crate::stack::Tls;
use crate::swarm::Node;
use crate::transport::Remote;

/// What the release-level items of a swarm's checklist look at: a backend service, by the name it answers to
/// on the overlay network.
pub(super) struct Looked {
    /// The Swarm service (`<stack>_backend`, or the candidate's).
    pub service: String,
    pub alias: String,
    /// What the report says it checked.
    pub describe: String,
}

/// The backend service that serves, asked directly (past the maintenance page of a held first launch).
pub(super) fn serving(ctx: &Context) -> Looked {
    Looked {
        service: crate::swarm::service_name(&ctx.stack.name, "backend"),
        alias: "backend".into(),
        describe: "the backend service across the swarm".into(),
    }
}

/// A candidate release of the backend.
pub(super) fn candidate(service: &str) -> Looked {
    Looked {
        service: service.to_owned(),
        alias: crate::swarm::CANDIDATE_ALIAS.into(),
        describe: format!("the candidate release `{service}`"),
    }
}

/// Every item of the environment against the swarm `nodes` (`manager` among them).
pub(super) async fn run(
    ctx: &Context,
    nodes: &[Node],
    manager: &Node,
    looked: &Looked,
    waivers: &[(String, String)],
) -> Report {
    let now = crate::state::now();
    let mut findings = Vec::new();
    for item in crate::checklist::items(&ctx.stack) {
        let started = std::time::Instant::now();
        let mut f = judge(ctx, nodes, manager, looked, &item, now).await;
        f.took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        findings.push(crate::checklist::waive(f, waivers));
    }
    Report {
        environment: ctx.stack.environment.clone(),
        subject: looked.describe.clone(),
        checked_at: now,
        findings,
    }
}

async fn judge(
    ctx: &Context,
    nodes: &[Node],
    manager: &Node,
    looked: &Looked,
    item: &str,
    now: u64,
) -> Finding {
    let edges = crate::swarm::edges(nodes);
    match item {
        "ssl" => ssl(ctx, nodes).await,
        "secrets" => secrets(ctx, manager).await,
        "safe_mode" => safe_mode(manager, &looked.service).await,
        "firewall" => firewall(ctx, nodes).await,
        "health" | "homepage" => {
            let mut per_edge = Vec::new();
            for edge in &edges {
                per_edge.push(on_edge(ctx, edge, looked, item, now).await);
            }
            every_edge(item, &per_edge)
        }
        "auth_rate_limit" => match edges.first() {
            Some(edge) => on_edge(ctx, edge, looked, item, now).await,
            None => Finding::fail(
                item,
                "the swarm has no edge node",
                "list one under `hosts.edge`",
            ),
        },
        // The backup's evidence is on the db node; attestations where `checklist attest` keeps them, with
        // the cluster's lock and audit log on its first host.
        "backup" => match db_node(nodes) {
            Some(db) => on_node(ctx, db, looked, item, now).await,
            None => Finding::fail(
                item,
                "the swarm has no db node",
                "list one under `hosts.db`",
            ),
        },
        _ => on_node(ctx, &nodes[0], looked, item, now).await,
    }
}

fn db_node(nodes: &[Node]) -> Option<&Node> {
    nodes.iter().find(|n| n.host.has(crate::stack::Role::Db))
}

/// What the checklist reads on `node` of the release `looked` names, asked through the nginx container `nginx`.
fn inputs<'a>(ctx: &'a Context, node: &'a Node, looked: &Looked, nginx: String) -> Inputs<'a> {
    Inputs {
        stack: &ctx.stack,
        remote: &node.remote,
        engine: &node.engine,
        subject: Subject::Staged {
            container: looked.service.clone(),
            alias: looked.alias.clone(),
            port: ctx.backend_port(),
        },
        nginx,
        waivers: &[],
    }
}

/// One item judged as on one host, on `node`.
async fn on_node(ctx: &Context, node: &Node, looked: &Looked, item: &str, now: u64) -> Finding {
    crate::checklist::judge(&inputs(ctx, node, looked, String::new()), item, now).await
}

/// One item asked through the nginx task of the edge `node`.
async fn on_edge(ctx: &Context, node: &Node, looked: &Looked, item: &str, now: u64) -> Finding {
    let host = node.remote.name();
    let task = match node
        .remote
        .run(&crate::remote::edge::nginx_task(&ctx.stack.name))
        .await
    {
        Ok(out) => out.stdout_str().trim().to_owned(),
        Err(e) => {
            return Finding::fail(
                item,
                format!("edge {host}: its nginx task cannot be found: {e}"),
                "`vldeploy doctor` names the cause",
            );
        }
    };
    if task.is_empty() {
        return Finding::fail(
            item,
            format!("edge {host}: no nginx task runs there"),
            format!(
                "`vldeploy status -e {env}` shows where nginx runs; `vldeploy up -e {env}` puts it back on every edge",
                env = ctx.stack.environment
            ),
        );
    }
    let mut f = crate::checklist::judge(&inputs(ctx, node, looked, task), item, now).await;
    f.evidence = format!("edge {host}: {}", f.evidence);
    f
}

/// One finding of `item` from each edge's (whose evidence names its edge): passes when every edge passes,
/// else names each edge that does not.
fn every_edge(item: &str, per_edge: &[Finding]) -> Finding {
    if per_edge.is_empty() {
        return Finding::fail(
            item,
            "the swarm has no edge node",
            "list one under `hosts.edge`",
        );
    }
    let failing: Vec<&Finding> = per_edge
        .iter()
        .filter(|f| f.status != Status::Pass)
        .collect();
    let evidence: Vec<&str> = per_edge.iter().map(|f| f.evidence.as_str()).collect();
    match failing.first() {
        None => Finding::pass(item, evidence.join("; ")),
        Some(first) => Finding::fail(
            item,
            failing
                .iter()
                .map(|f| f.evidence.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            first.fix.clone(),
        ),
    }
}

/// The certificate installed on every edge: a real one, the same on each, not about to expire.
async fn ssl(ctx: &Context, nodes: &[Node]) -> Finding {
    const ITEM: &str = "ssl";
    let env = &ctx.stack.environment;
    if ctx.stack.tls == Tls::Off {
        return Finding::fail(
            ITEM,
            "`tls: off`: the domain has no HTTPS",
            "add `tls: {acme: {directory: letsencrypt, email: ...}}` to the environment and run `vldeploy up`",
        );
    }
    let edges: Vec<Arc<Remote>> = crate::swarm::edge_remotes(nodes);
    let fix = format!(
        "`vldeploy certs status -e {env}` shows each edge's certificate; `vldeploy certs renew -e {env}` gives every edge the first edge's"
    );
    let rows = match crate::tls::edge_certificates(&ctx.stack, &edges).await {
        Ok(r) => r,
        Err(e) => return Finding::fail(ITEM, e.to_string(), fix),
    };
    let now = crate::state::now();
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for r in &rows {
        match &r.certificate {
            None => problems.push(format!("edge {}: no certificate installed", r.host)),
            Some(c) if c.placeholder => problems.push(format!(
                "edge {}: only the placeholder certificate (the CA has not issued one)",
                r.host
            )),
            Some(_) if r.differs => problems.push(format!(
                "edge {}: another certificate than edge {}'s",
                r.host, rows[0].host
            )),
            Some(c) if c.not_after <= now => {
                problems.push(format!("edge {}: certificate {} expired", r.host, c.serial));
            }
            Some(c) => seen.push(format!(
                "edge {}: certificate {} for {} issued by {}, {} days left",
                r.host,
                c.serial,
                c.sans.join(", "),
                c.issuer,
                (c.not_after - now) / 86_400
            )),
        }
    }
    if problems.is_empty() {
        Finding::pass(ITEM, seen.join("; "))
    } else {
        Finding::fail(ITEM, problems.join("; "), fix)
    }
}

/// The secrets are strong, and each is a Swarm secret of the stack (never in a service's environment).
async fn secrets(ctx: &Context, manager: &Node) -> Finding {
    let inputs = Inputs {
        stack: &ctx.stack,
        remote: &manager.remote,
        engine: &manager.engine,
        subject: Subject::Live,
        nginx: String::new(),
        waivers: &[],
    };
    let strong = crate::checklist::judge(&inputs, "secrets", 0).await;
    if strong.status != Status::Pass {
        return strong;
    }
    let held = match manager.engine.swarm_secret_ids(&ctx.stack.name).await {
        Ok(h) => h,
        Err(e) => {
            return Finding::fail(
                "secrets",
                format!("the swarm's secrets cannot be listed: {e}"),
                "`vldeploy doctor` names the cause",
            );
        }
    };
    let missing: Vec<&str> = ctx
        .stack
        .named_secrets
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| {
            let part = format!("_{}_", n.to_lowercase());
            !held.keys().any(|k| k.contains(&part))
        })
        .collect();
    if missing.is_empty() {
        return Finding::pass(
            "secrets",
            format!("{}; held as {} Swarm secrets", strong.evidence, held.len()),
        );
    }
    Finding::fail(
        "secrets",
        format!(
            "{}; but no Swarm secret holds {}",
            strong.evidence,
            missing.join(", ")
        ),
        "`vldeploy up` creates each secret a service reads as a Swarm secret",
    )
}

/// `OPERATOR_SAFE_MODE=true` in the environment the service gives its tasks.
async fn safe_mode(manager: &Node, service: &str) -> Finding {
    const ITEM: &str = "safe_mode";
    let fix = "set `OPERATOR_SAFE_MODE: \"true\"` in the backend's env in stack.yaml and run `vldeploy up`";
    let env = match manager.engine.service_env(service).await {
        Ok(Some(env)) => env,
        Ok(None) => {
            return Finding::fail(
                ITEM,
                format!("the swarm has no service `{service}`"),
                "`vldeploy up` starts the backend",
            );
        }
        Err(e) => {
            return Finding::fail(
                ITEM,
                format!("`{service}` cannot be read through a manager: {e}"),
                "`vldeploy doctor` names the cause",
            );
        }
    };
    match env
        .iter()
        .find_map(|kv| kv.strip_prefix("OPERATOR_SAFE_MODE="))
    {
        Some(v) if v.eq_ignore_ascii_case("true") => Finding::pass(
            ITEM,
            format!("OPERATOR_SAFE_MODE=true in service `{service}`"),
        ),
        Some(v) => Finding::fail(
            ITEM,
            format!("OPERATOR_SAFE_MODE is `{v}` in service `{service}`"),
            fix,
        ),
        None => Finding::fail(
            ITEM,
            format!("OPERATOR_SAFE_MODE is not set in service `{service}`"),
            fix,
        ),
    }
}

/// Every node's firewall is the ruleset the stack asks of it, Swarm's ports open to the other nodes alone.
async fn firewall(ctx: &Context, nodes: &[Node]) -> Finding {
    const ITEM: &str = "firewall";
    let fix = format!(
        "`vldeploy up -e {}` applies every node's firewall",
        ctx.stack.environment
    );
    let prepared = match crate::swarm::node_firewalls(&ctx.stack, nodes).await {
        Ok(p) => p,
        Err(e) => return Finding::fail(ITEM, e.to_string(), fix),
    };
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (node, (p, peers)) in nodes.iter().zip(&prepared) {
        let host = node.remote.name();
        if p.change.is_unchanged() {
            good.push(format!(
                "{host}: ruleset {} (Swarm's ports open to {peers} other nodes)",
                p.ruleset.hash
            ));
        } else {
            bad.push(format!(
                "{host}: the firewall is not the ruleset {} the stack asks for",
                p.ruleset.hash
            ));
        }
    }
    if bad.is_empty() {
        Finding::pass(ITEM, good.join("; "))
    } else {
        Finding::fail(ITEM, bad.join("; "), fix)
    }
}

/// `vldeploy check -e cluster`: the checklist against the backend service that serves.
pub(super) async fn check(ctx: &Context) -> Result<i32, CommandError> {
    let nodes = crate::swarm::connect(&ctx.stack).await?;
    let manager = crate::swarm::manager(&nodes).await?;
    let report = run(ctx, &nodes, manager, &serving(ctx), &[]).await;
    print(ctx, &report);
    Ok(i32::from(!report.passed()))
}

/// The report, for people or as JSON, scrubbed of any secret a note could quote.
pub(super) fn print(ctx: &Context, report: &Report) {
    let text = match ctx.output {
        Output::Human => report.render_human(),
        Output::Json => format!("{}\n", report.to_json()),
    };
    print!("{}", crate::secret::scrub(&text, &ctx.stack.secrets));
}

/// Whether the gate lets the release go live; the error names each item that does not pass, with what
/// keeps serving.
pub(super) fn verdict(report: &Report, first_launch: bool) -> Result<(), CommandError> {
    if report.passed() {
        return Ok(());
    }
    let names: Vec<String> = report
        .blocking()
        .iter()
        .map(|f| format!("{} ({})", f.item, f.evidence))
        .collect();
    let serving = if first_launch {
        "this is the first launch: every edge shows the maintenance page until the checklist passes"
    } else {
        "the backend service keeps its release and serves; the candidate was removed"
    };
    Err(CommandError::Gate(format!(
        "the go-live checklist holds the release back: {} of {} items do not pass: {}\n{serving}\n  help: fix what each item's `fix:` line says and run `vldeploy up` again; record hand-checked items with `vldeploy checklist attest ITEM --note \"…\"`; or go live anyway with `--waive ITEM --reason \"…\"` (audited)",
        names.len(),
        report.findings.len(),
        names.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            environment: "cluster".into(),
            subject: "the candidate release `shop_backend-candidate`".into(),
            checked_at: 0,
            findings,
        }
    }

    #[test]
    fn an_item_asked_on_every_edge_passes_only_when_each_does_and_names_those_that_do_not() {
        let ok = |edge: &str| {
            Finding::pass(
                "health",
                format!("edge {edge}: GET /api/health answered 200"),
            )
        };
        let both = every_edge("health", &[ok("a"), ok("b")]);
        assert_eq!(both.status, Status::Pass);
        assert_eq!(
            both.evidence,
            "edge a: GET /api/health answered 200; edge b: GET /api/health answered 200"
        );
        let one = every_edge(
            "health",
            &[
                ok("a"),
                Finding::fail(
                    "health",
                    "edge b: GET /api/health answered 502",
                    "`vldeploy doctor`",
                ),
            ],
        );
        assert_eq!(one.status, Status::Fail);
        assert_eq!(one.evidence, "edge b: GET /api/health answered 502");
        assert_eq!(one.fix, "`vldeploy doctor`");
        assert_eq!(every_edge("health", &[]).status, Status::Fail);
    }

    #[test]
    fn the_verdict_names_each_failing_item_and_what_keeps_serving() {
        assert!(verdict(&report(vec![Finding::pass("secrets", "2 secrets")]), false).is_ok());
        let held = report(vec![
            Finding::pass("secrets", "2 secrets"),
            Finding::fail(
                "safe_mode",
                "OPERATOR_SAFE_MODE is `false` in service `shop_backend-candidate`",
                "set it",
            ),
        ]);
        let Err(CommandError::Gate(later)) = verdict(&held, false) else {
            panic!("held back");
        };
        assert!(later.starts_with(
            "the go-live checklist holds the release back: 1 of 2 items do not pass: safe_mode (OPERATOR_SAFE_MODE is `false` in service `shop_backend-candidate`)\nthe backend service keeps its release and serves; the candidate was removed\n"
        ), "{later}");
        let Err(CommandError::Gate(first)) = verdict(&held, true) else {
            panic!("held back");
        };
        assert!(first.contains("\nthis is the first launch: every edge shows the maintenance page until the checklist passes\n"), "{first}");
    }
}
