//! Building the sandbox's images on the local engine through the engine's build, one build at a time.

use std::collections::HashMap;
use std::fs::File;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use crate::engine::BuildContext;
use crate::engine::{BuildInputs, Engine, INPUTS_LABEL};

use super::error::{SandboxError, tail_block};

/// Every sandbox recipe's Dockerfile is at the root of its context under this name.
const DOCKERFILE: &str = "Dockerfile";

/// How long one image build or import may take before the engine is considered stuck.
const BUILD_TIMEOUT: Duration = Duration::from_hours(1);

/// Where concurrent vldeploy processes agree on who builds an image.
const LOCK_PATH: &str = "/var/tmp/vldeploy-image-build.lock";

/// Connects to the local Docker engine (`DOCKER_HOST` or `/var/run/docker.sock`) and agrees on an API version.
pub async fn connect() -> Result<Engine, SandboxError> {
    Ok(Engine::local_negotiated().await?)
}

/// Whether the local engine has an image by that reference.
pub async fn image_exists(engine: &Engine, reference: &str) -> Result<bool, SandboxError> {
    Ok(engine.has_image(reference).await?)
}

/// `<repository>:<the first 12 hex digits of the hash of the build's inputs>`: the same hash the stack's
/// images carry in their `vldeploy.build-inputs` label, so a changed recipe or argument names a new image.
pub(crate) fn image_name(
    repository: &str,
    context: &BuildContext,
    build_args: &[(&str, &str)],
) -> Result<String, SandboxError> {
    let tar = context.to_tar()?;
    let args = arg_map(build_args);
    let inputs = BuildInputs {
        context: &tar,
        dockerfile: DOCKERFILE,
        args: &args,
        bases: &[],
    };
    Ok(format!("{repository}:{}", &inputs.hash()[..12]))
}

fn arg_map(build_args: &[(&str, &str)]) -> HashMap<String, String> {
    build_args
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Builds `context` as `tag` on the local engine through the engine's one build path, passing
/// `build_args`; the image carries the hash of its inputs like the stack's. The build output goes to the
/// debug log; on failure its last lines are part of the error.
pub async fn build_image(
    engine: &Engine,
    context: &BuildContext,
    tag: &str,
    build_args: &[(&str, &str)],
) -> Result<(), SandboxError> {
    let tar = context.to_tar()?;
    let args = arg_map(build_args);
    let inputs = BuildInputs {
        context: &tar,
        dockerfile: DOCKERFILE,
        args: &args,
        bases: &[],
    };
    let labels = HashMap::from([(INPUTS_LABEL.to_owned(), inputs.hash())]);
    engine
        .with_timeout(BUILD_TIMEOUT)
        .build(&inputs, tag, &labels)
        .await
        .map_err(|failure| SandboxError::Build {
            image: tag.to_owned(),
            tail: tail_block(&failure.output.join("\n"), 30),
            message: failure.message,
        })
}

/// Holds an exclusive lock so that one process at a time builds images; released on drop.
#[derive(Debug)]
pub(crate) struct BuildLock {
    _file: File,
}

impl BuildLock {
    pub(crate) async fn acquire() -> Result<Self, SandboxError> {
        tokio::task::spawn_blocking(|| {
            // Locking needs no write access, so a lock file made by another user still works.
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(LOCK_PATH)
                .or_else(|_| File::open(LOCK_PATH))
                .map_err(SandboxError::io(LOCK_PATH))?;
            file.lock().map_err(SandboxError::io(LOCK_PATH))?;
            Ok(Self { _file: file })
        })
        .await
        .map_err(|e| SandboxError::Io {
            path: LOCK_PATH.into(),
            source: std::io::Error::other(e),
        })?
    }
}

/// The first 12 hex digits of the sha256 of `parts`, each followed by a NUL: names the base image, which is
/// made by debootstrap rather than built.
pub(crate) fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..12].to_owned()
}
