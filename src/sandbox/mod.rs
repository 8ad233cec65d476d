//! A disposable local test host: a container running sshd and its own Docker engine.
//! (Interface placeholder; the full module replaces this file.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SandboxError(String);

pub struct SandboxOptions {
    pub name: String,
    pub dir: PathBuf,
    pub extra_ports: Vec<u16>,
}
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub name: String,
    pub container_id: String,
    pub dir: PathBuf,
    pub ssh_port: u16,
    pub http_port: u16,
    pub https_port: u16,
    pub extra_ports: BTreeMap<u16, u16>,
}
pub async fn up(opts: &SandboxOptions) -> Result<Sandbox, SandboxError> {
    Err(SandboxError(opts.name.clone()))
}
pub async fn down(name: &str, _dir: &Path) -> Result<(), SandboxError> {
    Err(SandboxError(name.into()))
}
pub async fn status(name: &str, _dir: &Path) -> Result<Option<Sandbox>, SandboxError> {
    Err(SandboxError(name.into()))
}
pub async fn ensure_base_image(_docker: &bollard::Docker) -> Result<String, SandboxError> {
    Err(SandboxError("base".into()))
}
pub fn default_name(stack_name: &str) -> String {
    format!("vldeploy-sandbox-{stack_name}")
}
