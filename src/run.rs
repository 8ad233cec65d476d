//! Dispatch from parsed arguments to commands, and the exit code.

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::command::{self, CommandError, Context};
use crate::output::{Mode, Output};

/// Exit status of a failed command.
pub(crate) const FAILURE: i32 = 1;

/// Parses the process arguments, runs the command and returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { FAILURE } else { 0 };
        }
    };
    let mode = Mode::detect(cli.global.output == crate::cli::Output::Json);
    let out = Output::new(mode);
    out.install();
    crate::log::init(mode == Mode::Terminal);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error(format!("cannot start the async runtime: {e}"));
            return FAILURE;
        }
    };
    runtime.block_on(dispatch(cli, &out))
}

async fn dispatch(cli: Cli, out: &Output) -> i32 {
    let mut secrets = Vec::new();
    let result = async {
        match &cli.command {
            Command::Schema => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&crate::stack::schema()).unwrap_or_default()
                );
                Ok(0)
            }
            Command::Completions { shell } => Ok(crate::manual::completions(*shell)),
            Command::Man => Ok(crate::manual::man_page()),
            Command::Sandbox { action } => command::sandbox(&cli.global, action).await,
            Command::RenewOnHost(args) => Ok(command::renew_on_host(args).await),
            other => {
                let ctx = Context::load(&cli.global, out)?;
                secrets.clone_from(&ctx.stack.secrets);
                crate::log::register_secrets(&ctx.stack.secrets);
                match other {
                    Command::Up(args) => command::up(&ctx, args).await,
                    Command::Plan(args) => command::plan(&ctx, args).await,
                    Command::Down(args) => command::down(&ctx, args).await,
                    Command::Status => command::status(&ctx).await,
                    Command::Logs(args) => command::logs(&ctx, args).await,
                    Command::Releases => command::releases(&ctx).await,
                    Command::Doctor => command::doctor(&ctx).await,
                    Command::Restart { service } => command::restart(&ctx, service).await,
                    Command::Exec(args) => command::exec(&ctx, args).await,
                    Command::Cache {
                        action: crate::cli::CacheAction::Flush,
                    } => command::cache_flush(&ctx).await,
                    Command::Maintenance { action } => command::maintenance(&ctx, action).await,
                    Command::Rollback(args) => command::rollback(&ctx, args).await,
                    Command::Seed => command::seed(&ctx).await,
                    Command::Lock { action } => command::lock(&ctx, action).await,
                    Command::Audit(args) => command::audit(&ctx, args).await,
                    Command::Bootstrap(args) => command::bootstrap(&ctx, args).await,
                    Command::Swarm => command::swarm(&ctx).await,
                    Command::Firewall { action } => command::firewall(&ctx, action).await,
                    Command::Certs { action } => command::certs(&ctx, action).await,
                    Command::Backup { action } => command::backup(&ctx, action).await,
                    Command::Restore(args) => command::restore(&ctx, args).await,
                    Command::Check => command::check(&ctx).await,
                    Command::Checklist { action } => command::checklist(&ctx, action).await,
                    Command::Schema
                    | Command::Completions { .. }
                    | Command::Man
                    | Command::Sandbox { .. }
                    | Command::RenewOnHost(_) => Ok(0),
                }
            }
        }
    }
    .await;
    match result {
        Ok(code) => code,
        Err(e) => {
            report(out, &e, &secrets);
            FAILURE
        }
    }
}

/// Reports an error to the operator: never a secret, always what failed.
fn report(out: &Output, e: &CommandError, secrets: &[crate::secret::Secret]) {
    out.error(crate::secret::scrub(&e.to_string(), secrets));
}
