//! The backup host of a repository on another machine (`backup.archive.repo: ssh://…`): what its container is
//! made of (pure), and preparing it over SSH with the environment's own credentials.
//!
//! The backup host runs one container of the stack's own postgres image (so both sides run the very same
//! pgBackRest) whose entrypoint serves the repository with `pgbackrest server` over TLS on [`TLS_PORT`]. Its
//! configuration, the passphrase and its TLS key reach it in a variables file of mode 0600 beside vldeploy's
//! other files on that host; the container's label carries a keyed hash of it, so an unchanged configuration
//! leaves the container running as it is.

use super::BackupError;
use super::archive::{ArchiveConfig, ContainerValue, Peers, TLS_PORT, tls_env};
use super::repo_tls::Material;
use crate::engine::Engine;
use crate::remote::backup_host::{RepoContainer, inspect, replace};
use crate::secret::Secret;
use crate::stack::{ArchiveRepo, Stack};
use crate::transport::{Remote, Target};

/// The repository's container on the backup host.
pub fn container_name(stack: &str) -> String {
    format!("vl_{stack}_pgbackrest")
}

/// The repository's volume on the backup host.
pub fn volume_name(stack: &str) -> String {
    crate::layout::volume_name(stack, "pgbackrest_repo")
}

/// The backup host's SSH target, from `repo`'s URL.
pub fn target(stack: &Stack) -> Option<Target> {
    match &stack.backup.as_ref()?.archive.as_ref()?.repo {
        ArchiveRepo::Ssh {
            user, host, port, ..
        } => Some(Target {
            user: user.clone(),
            host: host.clone(),
            port: *port,
        }),
        ArchiveRepo::Local(_) => None,
    }
}

/// The variables file of the repository's container: its pgbackrest.conf, TLS files and the passphrase, as
/// `KEY=value` lines (base64 values: nothing to escape). Secret: never printed.
pub fn env_file(stack: &Stack, material: &Material) -> Result<Secret, BackupError> {
    let bad = |detail: String| BackupError::Step {
        host: "this machine".into(),
        step: "rendering the backup host's pgBackRest configuration".into(),
        detail,
    };
    let archive = stack
        .backup
        .as_ref()
        .and_then(|b| b.archive.as_ref())
        .ok_or_else(|| bad("`backup.archive` is not set".into()))?;
    let passphrase = match &archive.encrypt_passphrase {
        None => None,
        Some(name) => Some(
            stack
                .named_secrets
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.expose().is_empty())
                .ok_or_else(|| {
                    bad(format!(
                        "the secret `{name}` (`backup.archive.encrypt_passphrase`) has no value; set it in the secrets file"
                    ))
                })?,
        ),
    };
    let mut config = ArchiveConfig::new(&stack.name, archive, None).with_peers(Peers::of(stack));
    config.encrypted = passphrase.is_some();
    let conf = config.repository_conf()?;
    let b64 =
        |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s.as_bytes());
    let mut text = format!("VL_PGBACKREST_CONF={}\n", b64(&conf));
    for (k, v) in tls_env(&material.ca, &material.repo) {
        let v = match v {
            ContainerValue::Plain(s) => s,
            ContainerValue::Secret(s) => s.expose().to_owned(),
        };
        text.push_str(&format!("{k}={v}\n"));
    }
    if let Some(p) = passphrase {
        let v = p.expose();
        if v.chars().any(char::is_control) {
            return Err(bad(
                "the repository passphrase holds a control character".into()
            ));
        }
        text.push_str(&format!("PGBACKREST_REPO1_CIPHER_PASS={v}\n"));
    }
    Ok(Secret::new(text))
}

/// The path of the variables file on the backup host.
pub fn env_path(stack: &str) -> String {
    format!(
        "{}/pgbackrest-repository.env",
        crate::layout::stack_dir(stack)
    )
}

/// Makes the backup host serve the repository: the postgres image there (its missing layers sent), the
/// variables file, the container started when its configuration changed. Returns the change made, `None`
/// when everything was as wanted.
pub async fn prepare(
    remote: &Remote,
    local: &Engine,
    stack: &Stack,
    image: (&str, &str),
    material: &Material,
) -> Result<Option<String>, BackupError> {
    let (image_id, image_ref) = image;
    let Some(ArchiveRepo::Ssh { path, .. }) = stack
        .backup
        .as_ref()
        .and_then(|b| b.archive.as_ref())
        .map(|a| &a.repo)
    else {
        return Ok(None);
    };
    let host = remote.name().to_owned();
    let step = |step: &str, detail: String| BackupError::Step {
        host: host.clone(),
        step: step.to_owned(),
        detail,
    };
    let engine = Engine::connect(remote).await?;
    let mut sent = None;
    if !engine.has_image(image_id).await? {
        let quiet: crate::engine::Progress = std::sync::Arc::new(|_, _| {});
        let delivered =
            crate::engine::deliver_images(local, &engine, &[image_ref.to_owned()], quiet).await?;
        sent = Some(delivered.summary());
    }
    let text = env_file(stack, material)?;
    let key = crate::facts::hash_key(remote, &stack.name)
        .await
        .map_err(|e| step("reading the host's hash key", e.to_string()))?;
    let hash = key.mac(&format!("{image_id}\n{}", text.expose()));
    let spec = RepoContainer {
        container: container_name(&stack.name),
        // By its ID: the host may hold the image under another build's name.
        image: image_id.to_owned(),
        volume: volume_name(&stack.name),
        path: path.clone(),
        env_file: env_path(&stack.name),
        port: TLS_PORT,
        hash: hash.clone(),
    };
    let cron = install_cron(remote, stack).await?;
    let now = remote.exec(&inspect(&spec.container)).await?;
    if now.stdout_str().trim() == format!("{hash} true") && sent.is_none() {
        return Ok(cron);
    }
    remote
        .upload(&spec.env_file, text.expose().as_bytes(), 0o600)
        .await?;
    let out = remote.exec(&replace(&spec)).await?;
    if !out.success() {
        return Err(step(
            "starting the pgBackRest repository's container",
            format!("it exited with {}: {}", out.status, out.stderr_tail(5)),
        ));
    }
    let served = format!(
        "backup host {host}: pgBackRest repository `{}` served on port {TLS_PORT} by `{}`{}",
        path,
        spec.container,
        sent.map(|s| format!(" ({s})")).unwrap_or_default()
    );
    Ok(Some(match cron {
        Some(cron) => format!("{served}\n{cron}"),
        None => served,
    }))
}

/// Writes the backup host's cron entry for pgBackRest's scheduled backups when it differs (the repository is
/// there, so its backups run there). Returns the change made, `None` when it was as wanted.
async fn install_cron(remote: &Remote, stack: &Stack) -> Result<Option<String>, BackupError> {
    let setup = super::Setup::from_stack(stack);
    let Some(text) = setup.render_backup_host_cron()? else {
        return Ok(None);
    };
    let path = setup.backup_host_cron_path();
    if remote.read_file(&path).await?.as_deref() == Some(text.as_bytes()) {
        return Ok(None);
    }
    crate::host_file::write(remote, &stack.name, &path, text.as_bytes(), 0o644).await?;
    Ok(Some(format!(
        "backup host {}: cron entry `{path}` takes pgBackRest's full backups at `{}`{}, logged to {}",
        remote.name(),
        setup.archive_full.as_deref().unwrap_or("-"),
        setup
            .archive_diff
            .as_deref()
            .map(|d| format!(" and differential ones at `{d}`"))
            .unwrap_or_default(),
        setup.backup_host_log()
    )))
}
