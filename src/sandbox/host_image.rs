//! The sandbox host images, built from the base image: the full host (sshd, cron, nftables and an inner Docker
//! engine) and the bare one (systemd and sshd only, like a freshly rented server).

use std::time::Instant;

use super::error::SandboxError;
use super::image_build::{BuildContext, BuildLock, build_image, image_exists, image_name};
use crate::engine::Engine;

/// The repository of the sandbox host image; the tag is a hash of its recipe and base.
pub const HOST_IMAGE_REPO: &str = "vldeploy/sandbox-host";

/// The repository of the bare sandbox host image.
pub const BARE_IMAGE_REPO: &str = "vldeploy/sandbox-bare";

const DOCKERFILE: &str = include_str!("host/Dockerfile");
const BARE_DOCKERFILE: &str = include_str!("host/bare.Dockerfile");
const INIT: &str = include_str!("host/sandbox-init");
const DOCKERD: &str = include_str!("host/sandbox-dockerd");
const SSHD_CONF: &str = include_str!("host/sshd.conf");

/// Which kind of host a sandbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// Ready for `vldeploy up`: sshd, cron, nftables and a Docker engine, root login.
    #[default]
    Full,
    /// A fresh server: systemd and sshd with a root login, nothing else installed.
    Bare,
}

impl Flavor {
    /// The value of the sandbox container's flavor label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Bare => "bare",
        }
    }
}

fn context(flavor: Flavor) -> BuildContext {
    match flavor {
        Flavor::Full => BuildContext::new()
            .file("Dockerfile", DOCKERFILE, 0o644)
            .file("sandbox-init", INIT, 0o755)
            .file("sandbox-dockerd", DOCKERD, 0o755)
            .file("sshd.conf", SSHD_CONF, 0o644),
        Flavor::Bare => BuildContext::new()
            .file("Dockerfile", BARE_DOCKERFILE, 0o644)
            .file("sshd.conf", SSHD_CONF, 0o644),
    }
}

/// The image reference for a host built from `base`: changes when the recipe or the base changes.
pub fn host_image_name(base: &str, flavor: Flavor) -> Result<String, SandboxError> {
    let repo = match flavor {
        Flavor::Full => HOST_IMAGE_REPO,
        Flavor::Bare => BARE_IMAGE_REPO,
    };
    image_name(repo, &context(flavor), &[("BASE", base)])
}

/// Builds the sandbox host image from `base` unless the engine already has it; returns its reference.
pub async fn ensure_host_image(
    engine: &Engine,
    base: &str,
    flavor: Flavor,
) -> Result<String, SandboxError> {
    let image = host_image_name(base, flavor)?;
    if image_exists(engine, &image).await? {
        return Ok(image);
    }
    let _lock = BuildLock::acquire().await?;
    if image_exists(engine, &image).await? {
        return Ok(image);
    }
    crate::output::Output::global().note(format!(
        "building sandbox host image {image} from {base} (a minute or two)…"
    ));
    let started = Instant::now();
    build_image(engine, &context(flavor), &image, &[("BASE", base)]).await?;
    crate::output::Output::global().note(format!(
        "built sandbox host image {image} in {} s",
        started.elapsed().as_secs()
    ));
    Ok(image)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn name_depends_on_the_base() {
        let a = host_image_name("debian:bookworm-slim", Flavor::Full).unwrap();
        let b = host_image_name("vldeploy/bookworm:0123456789ab", Flavor::Full).unwrap();
        assert!(a.starts_with("vldeploy/sandbox-host:"));
        assert_eq!(a.len(), "vldeploy/sandbox-host:".len() + 12);
        assert_ne!(a, b);
        assert_eq!(
            a,
            host_image_name("debian:bookworm-slim", Flavor::Full).unwrap()
        );
        let bare = host_image_name("debian:bookworm-slim", Flavor::Bare).unwrap();
        assert!(bare.starts_with("vldeploy/sandbox-bare:"), "{bare}");
    }
}
