//! The command line: clap derive and nothing else.

use clap::Parser;

/// Deploys nginx, postgres and the shop backend to a Linux host over SSH, from `stack.yaml`.
#[derive(Debug, Parser)]
#[command(name = "vldeploy", version)]
pub struct Cli {}
