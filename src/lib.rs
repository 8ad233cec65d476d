//! vldeploy: makes a Linux host run a declarative `stack.yaml` over SSH.

pub mod apply;
pub mod backup;
pub mod bootstrap;
pub mod builder;
pub mod catalog;
pub mod checklist;
pub mod cli;
mod command;
pub mod engine;
pub mod facts;
pub mod firewall;
pub mod host;
pub mod host_file;
pub mod layout;
pub mod log;
mod manual;
pub mod output;
pub mod plan;
pub mod prepare_inputs;
pub mod remote;
pub mod render;
pub mod rollout;
mod run;
pub mod sandbox;
pub mod secret;
pub mod site;
pub mod stack;
pub mod state;
pub mod swarm;
pub mod timestamp;
pub mod tls;
pub mod transport;

pub use run::run;
