//! `vldeploy certs status|renew` and the renewal job's own entry point, `vldeploy renew-on-host`.

use std::fmt::Write as _;

use super::context::Connected;
use super::{CommandError, Context};
use crate::cli::{CertsAction, Output, RenewOnHostArgs};
use crate::stack::Tls;
use crate::tls::{self, Converged, TlsError, date};

pub(crate) async fn certs(ctx: &Context, action: &CertsAction) -> Result<i32, CommandError> {
    if !ctx.stack.hosts.is_empty() {
        return super::swarm_edge::certs(ctx, action).await;
    }
    match action {
        CertsAction::Status => status(ctx).await,
        CertsAction::Renew { force } => renew(ctx, *force).await,
    }
}

/// A certificate failure as the operator reads it: the domain, the host, what failed.
pub(crate) fn cert_error(ctx: &Context, host: &str, e: &TlsError) -> CommandError {
    CommandError::Io(format!(
        "certificate for `{}` on `{host}`: {e}\n  the certificate served before (if any) is still served",
        ctx.stack.domain
    ))
}

/// The certificate step of `up` and `certs renew`, under the caller's lock: the renewal job installed and run.
pub(crate) async fn certificate_step(
    ctx: &Context,
    c: &Connected,
    force: bool,
) -> Result<Option<Converged>, CommandError> {
    if !matches!(ctx.stack.tls, Tls::Acme(_)) {
        return Ok(None);
    }
    ctx.out.note(format!(
        "certificate for {}: checking on the host…",
        ctx.stack.domain
    ));
    tls::converge(&c.remote, &ctx.stack, force)
        .await
        .map(Some)
        .map_err(|e| cert_error(ctx, c.remote.name(), &e))
}

/// With `tls: provided`, a certificate that `prepare` just installed is loaded by a tested reload of nginx.
pub(crate) async fn reload_provided(
    ctx: &Context,
    c: &Connected,
    installed: bool,
) -> Result<(), CommandError> {
    if !installed || !matches!(ctx.stack.tls, Tls::Provided(_)) {
        return Ok(());
    }
    let nginx = crate::layout::container_name("nginx");
    let (status, output) = c.engine.exec(&nginx, &["nginx", "-t"]).await?;
    if status != 0 {
        return Err(CommandError::Io(format!(
            "`nginx -t` on `{}` rejected the provided certificate:\n{}",
            c.remote.name(),
            output.trim_end()
        )));
    }
    c.engine
        .exec_checked(&nginx, &["nginx", "-s", "reload"])
        .await?;
    // One of the rare reloads (a release needs none): said as it happens.
    ctx.out.note("nginx reloaded: certificate changed");
    Ok(())
}

/// One line about the outcome of the certificate step.
pub(crate) fn describe(domain: &str, c: &Converged) -> String {
    let cert = c.report.certificate.as_ref();
    match (c.report.outcome.as_str(), cert) {
        ("renewed", Some(cert)) => format!(
            "certificate for {domain}: issued {} ({}), expires {}; nginx reloaded: certificate changed",
            cert.serial,
            cert.key_type,
            date(cert.not_after)
        ),
        (_, Some(cert)) => format!(
            "certificate for {domain}: {} ({}) valid until {}; {}",
            cert.serial,
            cert.key_type,
            date(cert.not_after),
            c.report.reason.clone().unwrap_or_default()
        ),
        (_, None) => format!(
            "certificate for {domain}: {}",
            c.report.reason.clone().unwrap_or_default()
        ),
    }
}

async fn renew(ctx: &Context, force: bool) -> Result<i32, CommandError> {
    if !matches!(ctx.stack.tls, Tls::Acme(_)) {
        return Err(CommandError::Usage(format!(
            "environment `{}` does not use `tls: acme`: there is nothing to renew",
            ctx.stack.environment
        )));
    }
    let connected = ctx.connect().await?;
    let host = connected.remote.name().to_string();
    ctx.locked(&connected, "certs renew", || async {
        let mut changes = Vec::new();
        match tls::prepare(&connected.remote, &ctx.stack).await {
            Ok(Some(c)) => changes.push(c),
            Ok(None) => {}
            Err(e) => return (changes, Err(cert_error(ctx, &host, &e))),
        }
        match certificate_step(ctx, &connected, force).await {
            Ok(Some(c)) => {
                changes.extend(c.changes.clone());
                match ctx.output {
                    Output::Human => println!("{}", describe(&ctx.stack.domain, &c)),
                    Output::Json => {
                        println!("{}", serde_json::to_string(&c.report).unwrap_or_default());
                    }
                }
                (changes, Ok(0))
            }
            Ok(None) => (changes, Ok(0)),
            Err(e) => (changes, Err(e)),
        }
    })
    .await
}

async fn status(ctx: &Context) -> Result<i32, CommandError> {
    let connected = ctx.connect().await?;
    let host = connected.remote.name().to_string();
    let s = tls::status(&connected.remote, &ctx.stack)
        .await
        .map_err(|e| cert_error(ctx, &host, &e))?;
    let now = crate::state::now();
    if ctx.output == Output::Json {
        let mut v = serde_json::to_value(&s).unwrap_or_default();
        v["now"] = now.into();
        println!("{v}");
        return Ok(0);
    }
    let mut out = String::new();
    let _ = writeln!(out, "domain        {} (tls: {})", s.domain, s.mode);
    if let Some(d) = &s.directory {
        let _ = writeln!(out, "CA            {d}");
    }
    match &s.certificate {
        None => {
            let _ = writeln!(out, "certificate   none installed");
        }
        Some(c) => {
            let left = c.not_after.saturating_sub(now);
            let _ = writeln!(
                out,
                "certificate   {}{} ({}, issued by {})",
                c.serial,
                if c.placeholder { " placeholder" } else { "" },
                c.key_type,
                c.issuer
            );
            let _ = writeln!(out, "names         {}", c.sans.join(", "));
            let _ = writeln!(
                out,
                "expires       {} (in {})",
                date(c.not_after),
                humantime::format_duration(std::time::Duration::from_secs(left))
            );
        }
    }
    if let Some(at) = s.renew_at {
        let _ = writeln!(out, "renewal due   {}", date(at));
    }
    let _ = writeln!(
        out,
        "renewal job   {}",
        if s.job_installed {
            "installed (cron, checks every minute)"
        } else {
            "not installed"
        }
    );
    let when = |t: Option<u64>| t.map_or_else(|| "never".to_string(), date);
    let _ = writeln!(out, "last renewal  {}", when(s.status.last_renewal));
    let _ = writeln!(
        out,
        "last attempt  {}{}",
        when(s.status.last_attempt),
        s.status
            .last_result
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    if let Some(e) = &s.status.last_error {
        let _ = writeln!(out, "last error    {e}");
    }
    if s.status.failures > 0 {
        let _ = writeln!(
            out,
            "next retry    {} (after {} failure{})",
            when(s.status.next_attempt),
            s.status.failures,
            if s.status.failures == 1 { "" } else { "s" }
        );
    }
    print!("{}", crate::secret::scrub(&out, &ctx.stack.secrets));
    Ok(0)
}

/// `vldeploy renew-on-host`: one check on this host. Prints the report as one JSON line (with `--quiet`, only
/// when something was attempted); exits 1 when a renewal failed.
pub(crate) async fn renew_on_host(args: &RenewOnHostArgs) -> i32 {
    if args.stack.is_empty()
        || !args
            .stack
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        crate::output::Output::global().error(format!("invalid stack name `{}`", args.stack));
        return crate::run::FAILURE;
    }
    let report = tls::renew_on_host(
        &args.stack,
        tls::HostOptions {
            force: args.force,
            lock_held: args.lock_held,
            trigger: args.trigger.clone(),
        },
    )
    .await;
    if !args.quiet || matches!(report.outcome.as_str(), "renewed" | "failed") {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        v["time"] = date(crate::state::now()).into();
        println!("{v}");
    }
    i32::from(report.outcome == "failed")
}
