//! Builds the stack's images where vldeploy runs, so the host needs no registry.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::engine::{BuildRequest, Engine, EngineError, StampRecord, build_image};
use crate::plan::Images;
use crate::stack::{ImageSource, Stack};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("preparing `{service}`: `{command}` failed (exit {status}) in `{dir}`\n{tail}")]
    Prepare {
        service: String,
        command: String,
        status: i32,
        dir: String,
        tail: String,
    },
    #[error("preparing `{service}`: cannot run `{command}`: {detail}")]
    Spawn {
        service: String,
        command: String,
        detail: String,
    },
    #[error("preparing `{service}`: its `build.inputs` cannot be read: {detail}")]
    Inputs { service: String, detail: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("no base image for the build: {0}")]
    Base(String),
}

/// What `build_all` made: each service's image, and for a built one the hash of its inputs.
#[derive(Debug, Clone, Default)]
pub struct Builds {
    pub images: Images,
    /// Per built service, its image's `vldeploy.build-inputs`.
    pub inputs: BTreeMap<String, String>,
}

/// Builds (or, for `image:`, names) the image of every service. `say` receives progress lines.
pub async fn build_all(
    stack: &Stack,
    local: &Engine,
    fresh: bool,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Builds, BuildError> {
    let mut images = Images::new();
    let mut requests = Vec::new();
    let mut base: Option<String> = None;
    // `prepare` commands run one after another, in service order; then the images build at once (the engine
    // runs builds side by side, and an unchanged one is a query or two).
    for name in crate::layout::SERVICES {
        let Some(service) = stack.services.get(name) else {
            continue;
        };
        match &service.source {
            ImageSource::Image(reference) => {
                images.insert(name.to_string(), (reference.clone(), reference.clone()));
            }
            ImageSource::Build(spec) => {
                if let Some(cmd) = &spec.prepare {
                    prepare_unless_unchanged(stack, name, cmd, &spec.inputs, fresh, say).await?;
                }
                let mut args: HashMap<String, String> = spec.args.clone().into_iter().collect();
                if !args.contains_key("BASE") {
                    if base.is_none() {
                        let found = crate::sandbox::ensure_base_image(local)
                            .await
                            .map_err(|e| BuildError::Base(e.to_string()))?;
                        base = Some(found);
                    }
                    if let Some(b) = &base {
                        args.insert("BASE".into(), b.clone());
                    }
                }
                say(&format!(
                    "building `{name}` from {}",
                    spec.context.display()
                ));
                requests.push(BuildRequest {
                    service: name.to_string(),
                    context: spec.context.clone(),
                    dockerfile: spec.dockerfile.clone(),
                    args,
                    repository: format!("vl/{}-{name}", stack.name),
                    fresh,
                    recorded: recorded_stamp(&stack.project_dir, name),
                });
            }
        }
    }
    let built =
        futures_util::future::join_all(requests.iter().map(|req| build_image(local, req))).await;
    let mut inputs = BTreeMap::new();
    for (req, built) in requests.iter().zip(built) {
        let built = built?;
        if let Some(record) = built
            .record
            .as_ref()
            .filter(|r| req.recorded.as_ref() != Some(*r))
        {
            record_stamp(&stack.project_dir, &req.service, record);
        }
        images.insert(req.service.clone(), (built.id, built.reference));
        inputs.insert(req.service.clone(), built.inputs);
    }
    Ok(Builds { images, inputs })
}

/// Where the stamp of `service`'s last build is kept (`.vldeploy/built/<service>.json`).
fn stamp_path(project_dir: &Path, service: &str) -> PathBuf {
    project_dir
        .join(".vldeploy")
        .join("built")
        .join(format!("{service}.json"))
}

/// The stamp recorded by `service`'s last build; none when absent or unreadable (the files are then read).
fn recorded_stamp(project_dir: &Path, service: &str) -> Option<StampRecord> {
    let text = std::fs::read_to_string(stamp_path(project_dir, service)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records `record` for `service`'s next build; a failure only costs the next run a read of the files.
fn record_stamp(project_dir: &Path, service: &str, record: &StampRecord) {
    let path = stamp_path(project_dir, service);
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(record)?)?;
        std::fs::rename(tmp, &path)
    };
    if let Err(e) = write() {
        tracing::warn!(service, "recording the build stamp failed: {e}");
    }
}

/// Runs `service`'s `prepare` command, unless it declares `inputs` that match the same files as at its last
/// successful run (and the build is not `fresh`). The record is written only once the command succeeded.
async fn prepare_unless_unchanged(
    stack: &Stack,
    service: &str,
    command: &str,
    inputs: &[String],
    fresh: bool,
    say: &(dyn Fn(&str) + Sync),
) -> Result<(), BuildError> {
    let dir = &stack.project_dir;
    let hash = if inputs.is_empty() {
        None
    } else {
        Some(
            crate::prepare_inputs::inputs_hash(dir, command, inputs).map_err(|detail| {
                BuildError::Inputs {
                    service: service.into(),
                    detail,
                }
            })?,
        )
    };
    if !fresh && hash.is_some() && hash == crate::prepare_inputs::recorded(dir, service) {
        say(&format!(
            "`{service}`: prepare skipped, its inputs are unchanged"
        ));
        return Ok(());
    }
    say(&format!("preparing `{service}`: {command}"));
    prepare(service, command, dir).await?;
    if let Some(hash) = hash
        && let Err(e) = crate::prepare_inputs::record(dir, service, &hash)
    {
        // Not fatal: the next run prepares again.
        tracing::warn!(service, "recording the inputs of `prepare` failed: {e}");
    }
    Ok(())
}

/// Runs a service's `prepare` command in the project directory; its output is shown only when it fails.
async fn prepare(service: &str, command: &str, dir: &std::path::Path) -> Result<(), BuildError> {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdin(Stdio::null())
        // Stopped with vldeploy: a connection refused while it runs ends the command.
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| BuildError::Spawn {
            service: service.into(),
            command: command.into(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    Err(BuildError::Prepare {
        service: service.into(),
        command: command.into(),
        status: out.status.code().unwrap_or(-1),
        dir: dir.display().to_string(),
        tail,
    })
}
