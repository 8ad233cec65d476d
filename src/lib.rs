//! vldeploy: makes a Linux host run a declarative `stack.yaml` over SSH.

pub mod apply;
pub mod backup;
pub mod builder;
pub mod cli;
mod command;
pub mod engine;
pub mod facts;
pub mod log;
pub mod plan;
pub mod render;
mod run;
pub mod sandbox;
pub mod secret;
pub mod stack;
pub mod state;
pub mod transport;

pub use run::run;
