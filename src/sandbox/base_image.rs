//! The Debian bookworm base image every stack image and the sandbox host build from.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::error::{SandboxError, tail_block};
use super::image_build::{BuildLock, image_exists, short_hash};
use crate::engine::Engine;

/// The image used where a registry is reachable.
pub const UPSTREAM_BASE: &str = "debian:bookworm-slim";

/// The repository of the locally built base image.
pub const LOCAL_BASE_REPO: &str = "vldeploy/bookworm";

const SUITE: &str = "bookworm";
const VARIANT: &str = "minbase";
const INCLUDE: &str = "nginx-light,postgresql-15,curl,ca-certificates,procps,gzip";
const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";
/// Overrides the Debian mirror debootstrap downloads from.
pub const MIRROR_ENV: &str = "VLDEPLOY_DEBIAN_MIRROR";
const PULL_TIMEOUT: Duration = Duration::from_secs(20);

/// Returns an image reference usable as the `BASE` build-arg: `debian:bookworm-slim` when the engine has it or can
/// pull it quickly, otherwise `vldeploy/bookworm:<hash12>` built once with debootstrap and reused.
pub async fn ensure_base_image(docker: &Engine) -> Result<String, SandboxError> {
    if image_exists(docker, UPSTREAM_BASE).await? {
        return Ok(UPSTREAM_BASE.to_owned());
    }
    let recipe = Recipe::from_system();
    let local = recipe.image();
    if image_exists(docker, &local).await? {
        return Ok(local);
    }
    let _lock = BuildLock::acquire().await?;
    // Another process may have finished while this one waited for the lock.
    if image_exists(docker, &local).await? || image_exists(docker, UPSTREAM_BASE).await? {
        return Ok(if image_exists(docker, &local).await? {
            local
        } else {
            UPSTREAM_BASE.to_owned()
        });
    }
    if try_pull(docker).await {
        return Ok(UPSTREAM_BASE.to_owned());
    }
    build_with_debootstrap(docker, &recipe).await?;
    Ok(local)
}

/// What the local base image is made of; its hash names the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recipe {
    pub(crate) mirror: String,
}

impl Recipe {
    /// `VLDEPLOY_DEBIAN_MIRROR` when set, else the mirror apt uses here, else deb.debian.org.
    fn from_system() -> Self {
        let mirror = std::env::var(MIRROR_ENV)
            .ok()
            .map(|m| m.trim().trim_end_matches('/').to_owned())
            .filter(|m| !m.is_empty())
            .or_else(system_mirror)
            .unwrap_or_else(|| FALLBACK_MIRROR.to_owned());
        Self { mirror }
    }

    pub(crate) fn image(&self) -> String {
        let hash = short_hash(&[SUITE, VARIANT, INCLUDE, &self.mirror]);
        format!("{LOCAL_BASE_REPO}:{hash}")
    }
}

/// The Debian mirror this machine's apt uses (deb822 `.sources` first, then `sources.list`).
fn system_mirror() -> Option<String> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sources"))
        .collect();
    sources.sort();
    for path in sources {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Some(m) = mirror_from_deb822(&text)
        {
            return Some(m);
        }
    }
    let text = std::fs::read_to_string("/etc/apt/sources.list").ok()?;
    mirror_from_one_line(&text)
}

/// The first `URIs:` of a stanza that serves a plain `bookworm` suite (not the security archive).
pub(crate) fn mirror_from_deb822(text: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let l = l.trim();
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(|v| v.trim().to_owned())
            })
        };
        let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
            continue;
        };
        if field("Types").is_some_and(|t| !t.split_whitespace().any(|t| t == "deb")) {
            continue;
        }
        if suites.split_whitespace().any(|s| s == SUITE)
            && let Some(uri) = uris.split_whitespace().next()
        {
            return Some(uri.trim_end_matches('/').to_owned());
        }
    }
    None
}

/// The URI of the first `deb URI bookworm …` line of a one-line-style `sources.list`.
pub(crate) fn mirror_from_one_line(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut words = line
            .split_whitespace()
            .filter(|w| !w.starts_with('['))
            .peekable();
        if words.next()? != "deb" {
            return None;
        }
        let uri = words.next()?;
        (words.next()? == SUITE).then(|| uri.trim_end_matches('/').to_owned())
    })
}

/// Tries `docker pull debian:bookworm-slim`, giving up after a few seconds.
async fn try_pull(docker: &Engine) -> bool {
    crate::output::Output::global().note(format!("trying to pull {UPSTREAM_BASE}…"));
    let pull = async {
        match docker.pull("debian", "bookworm-slim").await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("pull of {UPSTREAM_BASE} failed: {e}");
                false
            }
        }
    };
    match tokio::time::timeout(PULL_TIMEOUT, pull).await {
        Ok(true) => image_exists(docker, UPSTREAM_BASE).await.unwrap_or(false),
        Ok(false) => false,
        Err(_) => {
            tracing::debug!("pull of {UPSTREAM_BASE} timed out");
            false
        }
    }
}

async fn build_with_debootstrap(docker: &Engine, recipe: &Recipe) -> Result<(), SandboxError> {
    let image = recipe.image();
    crate::output::Output::global().note(format!(
        "building base image {image} with debootstrap (about a minute)…"
    ));
    let started = Instant::now();
    let dir = temp_dir()?;
    let result = async {
        let rootfs = dir.join("rootfs");
        debootstrap(&rootfs, &recipe.mirror).await?;
        trim_rootfs(&rootfs);
        import_rootfs(docker, &rootfs, &image).await
    }
    .await;
    remove_temp_dir(&dir).await;
    result?;
    crate::output::Output::global().note(format!(
        "built base image {image} in {} s",
        started.elapsed().as_secs()
    ));
    Ok(())
}

fn temp_dir() -> Result<PathBuf, SandboxError> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| SandboxError::Io {
        path: "/var/tmp".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let dir = PathBuf::from(format!(
        "/var/tmp/vldeploy-debootstrap-{}",
        hex::encode(bytes)
    ));
    std::fs::create_dir(&dir).map_err(SandboxError::io(&dir))?;
    Ok(dir)
}

async fn debootstrap(rootfs: &Path, mirror: &str) -> Result<(), SandboxError> {
    let args = [
        format!("--variant={VARIANT}"),
        format!("--include={INCLUDE}"),
        SUITE.to_owned(),
        rootfs.to_string_lossy().into_owned(),
        mirror.to_owned(),
    ];
    let output = tokio::process::Command::new("debootstrap")
        .args(&args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| SandboxError::Spawn {
            program: "debootstrap".to_owned(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if let Ok(log) = std::fs::read_to_string(rootfs.join("debootstrap/debootstrap.log")) {
        text.push_str(&log);
    }
    Err(SandboxError::Command {
        command: format!("debootstrap {}", args.join(" ")),
        status: output.status.to_string(),
        tail: tail_block(&text, 25),
    })
}

/// Drops what an image does not need: downloaded packages, apt lists and Debian's default cluster.
fn trim_rootfs(rootfs: &Path) {
    for dir in [
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "etc/postgresql/15/main",
        "var/lib/postgresql/15/main",
    ] {
        let path = rootfs.join(dir);
        if let Ok(entries) = std::fs::read_dir(&path) {
            for entry in entries.filter_map(Result::ok) {
                let p = entry.path();
                let _ = if p.is_dir() && !p.is_symlink() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
    let _ = std::fs::create_dir_all(rootfs.join("var/cache/apt/archives/partial"));
    let _ = std::fs::create_dir_all(rootfs.join("var/lib/apt/lists/partial"));
}

/// `tar -C rootfs -c . | docker import - image`, streaming through the engine API.
async fn import_rootfs(docker: &Engine, rootfs: &Path, image: &str) -> Result<(), SandboxError> {
    let (repo, tag) = image.split_once(':').unwrap_or((image, "latest"));
    let mut child = tokio::process::Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(rootfs)
        .args(["-c", "."])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| SandboxError::Spawn {
            program: "tar".to_owned(),
            source,
        })?;
    let stdout = child.stdout.take().ok_or_else(|| SandboxError::Spawn {
        program: "tar".to_owned(),
        source: std::io::Error::other("no stdout"),
    })?;
    let body = futures_util::stream::unfold(stdout, |mut out| async move {
        let mut buf = vec![0u8; 1 << 20];
        match out.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), out))
            }
            Err(e) => Some((Err(e), out)),
        }
    });
    let failure = docker
        .with_timeout(Duration::from_hours(1))
        .import_rootfs(body, repo, tag, vec![r#"CMD ["/bin/bash"]"#.to_owned()])
        .await
        .err();
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| SandboxError::Spawn {
            program: "tar".to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(SandboxError::Command {
            command: format!("tar -C {} -c .", rootfs.display()),
            status: out.status.to_string(),
            tail: tail_block(&String::from_utf8_lossy(&out.stderr), 10),
        });
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    if !image_exists(docker, image).await? {
        return Err(SandboxError::Build {
            image: image.to_owned(),
            message: "the import finished but the image does not exist".to_owned(),
            tail: String::new(),
        });
    }
    Ok(())
}

/// Unmounts anything debootstrap left mounted under `dir`, then removes it.
async fn remove_temp_dir(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in &mounts {
        let _ = tokio::process::Command::new("umount")
            .args(["-l", m])
            .status()
            .await;
    }
    let still_mounted = std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|m| m.starts_with(&format!("{prefix}/")));
    if still_mounted {
        crate::output::Output::global().warning(format!(
            "left {} in place: something is still mounted under it",
            dir.display()
        ));
        return;
    }
    let owned = dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(owned)).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mirror_comes_from_the_bookworm_stanza() {
        let text = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
                    Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n\
                    Suites: bookworm-security\nComponents: main\n";
        assert_eq!(
            mirror_from_deb822(text).as_deref(),
            Some("http://mirror.example/debian")
        );
        let security_only =
            "Types: deb\nURIs: http://x/debian-security\nSuites: bookworm-security\n";
        assert_eq!(mirror_from_deb822(security_only), None);
    }

    #[test]
    fn mirror_comes_from_a_one_line_sources_list() {
        let text = "# comment\ndeb [arch=amd64] http://ftp.example/debian/ bookworm main\n";
        assert_eq!(
            mirror_from_one_line(text).as_deref(),
            Some("http://ftp.example/debian")
        );
        assert_eq!(
            mirror_from_one_line("deb http://x/debian trixie main\n"),
            None
        );
    }

    #[test]
    fn image_name_follows_the_mirror() {
        let a = Recipe {
            mirror: "http://a/debian".into(),
        }
        .image();
        let b = Recipe {
            mirror: "http://b/debian".into(),
        }
        .image();
        assert!(a.starts_with("vldeploy/bookworm:"));
        assert_eq!(a.len(), "vldeploy/bookworm:".len() + 12);
        assert_ne!(a, b);
    }
}
