//! Building images on the local engine: build contexts as tar archives, the build stream, a build lock.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::error::{SandboxError, is_not_found, tail_block};

/// How long one image build or import may take before the engine is considered stuck.
const BUILD_TIMEOUT: Duration = Duration::from_hours(1);

/// Where concurrent vldeploy processes agree on who builds an image.
const LOCK_PATH: &str = "/var/tmp/vldeploy-image-build.lock";

/// Connects to the local Docker engine (`DOCKER_HOST` or `/var/run/docker.sock`) and agrees on an API version.
pub async fn connect() -> Result<Docker, SandboxError> {
    let docker = Docker::connect_with_local_defaults().map_err(SandboxError::Connect)?;
    docker
        .negotiate_version()
        .await
        .map_err(SandboxError::Connect)
}

/// A build context: files by their path inside the context, with their modes.
#[derive(Debug, Default, Clone)]
pub struct BuildContext {
    files: Vec<(String, Vec<u8>, u32)>,
}

impl BuildContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file at `path` (relative, `/`-separated) with `mode`.
    #[must_use]
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.files.push((path.to_owned(), contents.into(), mode));
        self
    }

    /// Reads every regular file under `dir` (recursively) into a context, keeping their modes.
    pub fn from_dir(dir: &Path) -> Result<Self, SandboxError> {
        let mut ctx = Self::new();
        let mut pending = vec![PathBuf::new()];
        while let Some(rel) = pending.pop() {
            let abs = dir.join(&rel);
            let mut entries: Vec<_> = std::fs::read_dir(&abs)
                .map_err(SandboxError::io(&abs))?
                .collect::<Result<_, _>>()
                .map_err(SandboxError::io(&abs))?;
            entries.sort_by_key(std::fs::DirEntry::file_name);
            for entry in entries {
                let path = entry.path();
                let meta = std::fs::metadata(&path).map_err(SandboxError::io(&path))?;
                let name = rel.join(entry.file_name());
                if meta.is_dir() {
                    pending.push(name);
                } else if meta.is_file() {
                    let contents = std::fs::read(&path).map_err(SandboxError::io(&path))?;
                    let mode =
                        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
                    ctx.files
                        .push((name.to_string_lossy().into_owned(), contents, mode));
                }
            }
        }
        ctx.files.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(ctx)
    }

    /// A stable hash of the paths, modes and contents: the recipe's identity.
    pub fn digest(&self) -> String {
        let mut files: Vec<_> = self.files.iter().collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut h = Sha256::new();
        for (path, contents, mode) in files {
            h.update(path.as_bytes());
            h.update([0]);
            h.update(mode.to_le_bytes());
            h.update((contents.len() as u64).to_le_bytes());
            h.update(contents);
        }
        hex::encode(h.finalize())
    }

    /// The context as an uncompressed tar archive.
    pub fn to_tar(&self) -> Result<Vec<u8>, SandboxError> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents, mode) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(*mode);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, path, contents.as_slice())
                .map_err(SandboxError::io(path))?;
        }
        builder
            .into_inner()
            .map_err(SandboxError::io("build context"))
    }
}

/// Whether the local engine has an image by that reference.
pub async fn image_exists(docker: &Docker, reference: &str) -> Result<bool, SandboxError> {
    match docker.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(SandboxError::docker(format!(
            "inspect of image `{reference}`"
        ))(e)),
    }
}

/// Builds `context` as `tag` on the local engine with the classic builder, passing `build_args`.
/// The build output goes to the debug log; on failure its last lines are part of the error.
pub async fn build_image(
    docker: &Docker,
    context: &BuildContext,
    tag: &str,
    build_args: &[(&str, &str)],
) -> Result<(), SandboxError> {
    let docker = docker.clone().with_timeout(BUILD_TIMEOUT);
    let args: HashMap<String, String> = build_args
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&args)
        .build();
    let tar = context.to_tar()?;
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
    let mut output = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    tracing::debug!(image = tag, "{}", text.trim_end());
                    output.push_str(text);
                }
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(SandboxError::Build {
                        image: tag.to_owned(),
                        message: err,
                        tail: tail_block(&output, 30),
                    });
                }
            }
            Err(e) => {
                let message = match e {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                return Err(SandboxError::Build {
                    image: tag.to_owned(),
                    message,
                    tail: tail_block(&output, 30),
                });
            }
        }
    }
    if !image_exists(&docker, tag).await? {
        return Err(SandboxError::Build {
            image: tag.to_owned(),
            message: "the engine reported no error but the image does not exist".to_owned(),
            tail: tail_block(&output, 30),
        });
    }
    Ok(())
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

/// The first 12 hex digits of the sha256 of `parts`, each followed by a NUL.
pub(crate) fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..12].to_owned()
}
