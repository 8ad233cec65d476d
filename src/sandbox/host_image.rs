//! The sandbox host image: sshd, cron, nftables and an inner Docker engine, built from the base image.

use std::time::Instant;

use bollard::Docker;

use super::error::SandboxError;
use super::image_build::{BuildContext, BuildLock, build_image, image_exists, short_hash};

/// The repository of the sandbox host image; the tag is a hash of its recipe and base.
pub const HOST_IMAGE_REPO: &str = "vldeploy/sandbox-host";

const DOCKERFILE: &str = include_str!("host/Dockerfile");
const INIT: &str = include_str!("host/sandbox-init");
const DOCKERD: &str = include_str!("host/sandbox-dockerd");
const SSHD_CONF: &str = include_str!("host/sshd.conf");

fn context() -> BuildContext {
    BuildContext::new()
        .file("Dockerfile", DOCKERFILE, 0o644)
        .file("sandbox-init", INIT, 0o755)
        .file("sandbox-dockerd", DOCKERD, 0o755)
        .file("sshd.conf", SSHD_CONF, 0o644)
}

/// The image reference for a host built from `base`: changes when the recipe or the base changes.
pub fn host_image_name(base: &str) -> String {
    let hash = short_hash(&[&context().digest(), base]);
    format!("{HOST_IMAGE_REPO}:{hash}")
}

/// Builds the sandbox host image from `base` unless the engine already has it; returns its reference.
pub async fn ensure_host_image(docker: &Docker, base: &str) -> Result<String, SandboxError> {
    let image = host_image_name(base);
    if image_exists(docker, &image).await? {
        return Ok(image);
    }
    let _lock = BuildLock::acquire().await?;
    if image_exists(docker, &image).await? {
        return Ok(image);
    }
    eprintln!("building sandbox host image {image} from {base} (a minute or two)…");
    let started = Instant::now();
    build_image(docker, &context(), &image, &[("BASE", base)]).await?;
    eprintln!(
        "built sandbox host image {image} in {} s",
        started.elapsed().as_secs()
    );
    Ok(image)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn name_depends_on_the_base() {
        let a = host_image_name("debian:bookworm-slim");
        let b = host_image_name("vldeploy/bookworm:0123456789ab");
        assert!(a.starts_with("vldeploy/sandbox-host:"));
        assert_ne!(a, b);
        assert_eq!(a, host_image_name("debian:bookworm-slim"));
    }
}
