//! What every command starts from: the loaded stack, a connection to its host, the two Docker engines.

use std::time::Duration;

use crate::apply::ApplyError;
use crate::builder::{BuildError, Builds, build_all};
use crate::cli::{Global, Output};
use crate::engine::{Engine, EngineError};
use crate::facts::FactsError;
use crate::plan::{Desired, Images, desired_from_stack};
use crate::render::RenderError;
use crate::stack::{Stack, StackError};
use crate::transport::{Remote, TransportError};

/// Any failure of a command; each carries enough to act on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Facts(#[from] FactsError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Store(#[from] crate::state::StoreError),
    #[error(transparent)]
    Rollout(#[from] crate::rollout::RolloutError),
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    #[error(transparent)]
    Firewall(#[from] crate::firewall::FirewallError),
    #[error(transparent)]
    Bootstrap(#[from] crate::bootstrap::BootstrapError),
    #[error(transparent)]
    Swarm(#[from] crate::swarm::SwarmError),
    #[error(transparent)]
    Deploy(#[from] crate::swarm::DeployError),
    #[error("{0}")]
    Usage(String),
    /// The go-live checklist held a release back (the report was printed).
    #[error("{0}")]
    Gate(String),
    #[error("{0}")]
    Io(String),
}

/// A loaded stack and, once connected, its host.
pub(crate) struct Context {
    pub(crate) stack: Stack,
    pub(crate) output: Output,
    /// Where progress, notes and warnings go (stderr, as the run's renderer draws them).
    pub(crate) out: crate::output::Output,
    /// Build images even when an image from the same inputs exists.
    pub(crate) rebuild: bool,
}

/// A connected host.
pub(crate) struct Connected {
    pub(crate) remote: std::sync::Arc<Remote>,
    pub(crate) engine: Engine,
    /// The host that keeps the deploy lock and the audit log when it is another one: a cluster's first host,
    /// for a command that acts on its db node. `None`: this host keeps them.
    pub(crate) keeper: Option<std::sync::Arc<Remote>>,
}

impl Context {
    pub(crate) fn load(global: &Global, out: &crate::output::Output) -> Result<Self, CommandError> {
        let stack = crate::stack::load(&global.file, &global.env).map_err(|e| {
            let dir = global.file.parent().unwrap_or(std::path::Path::new("."));
            if global.env == "sandbox" && !dir.join(".vldeploy/sandbox").exists() {
                CommandError::Usage(format!(
                    "{e}\nhint: the sandbox host has not been created yet: `vldeploy sandbox up` creates it and writes these files"
                ))
            } else if global.env == "cluster" && !dir.join(".vldeploy/cluster").exists() {
                CommandError::Usage(format!(
                    "{e}\nhint: the sandbox cluster has not been created yet: `vldeploy sandbox up --nodes 3` creates its hosts and writes these files"
                ))
            } else {
                CommandError::Stack(e)
            }
        })?;
        out.register_secrets(&stack.secrets);
        for (name, file) in &stack.overridden {
            out.warning(format!(
                "`{name}` is set in this shell's environment and differs from `{file}`; the environment's value is used (unset it to use the file's)"
            ));
        }
        Ok(Self {
            stack,
            output: global.output,
            out: out.clone(),
            rebuild: global.rebuild,
        })
    }

    /// Refuses an environment with `hosts:`: the commands that connect to one host would act on its first only.
    pub(crate) fn one_host(&self) -> Result<(), String> {
        if self.stack.hosts.is_empty() {
            return Ok(());
        }
        Err(format!(
            "environment `{}` runs across {} hosts (`hosts:`), and this command works on an environment with one `host:` so far\n  help: run it on an environment with `host:`; `vldeploy swarm` forms this one's swarm",
            self.stack.environment,
            self.stack.hosts.len(),
        ))
    }

    /// `user@host:port` of the environment's host.
    pub(crate) fn target_name(&self) -> String {
        let t = &self.stack.target;
        format!("{}@{}:{}", t.user, t.host, t.port)
    }

    /// Opens the one SSH connection of this command and the Docker API through it, and warns on stderr when
    /// the host records an interrupted restore.
    pub(crate) async fn connect(&self) -> Result<Connected, CommandError> {
        let c = self.connect_quiet().await?;
        if let Some(j) = self.interrupted_restore(&c).await {
            self.out.warning(j.describe(&self.stack.environment));
        }
        Ok(c)
    }

    /// The host's interrupted restore, if any (a journal whose restore no longer runs). A host that cannot be
    /// asked counts as none: the command's own steps report that host's trouble.
    pub(crate) async fn interrupted_restore(
        &self,
        c: &Connected,
    ) -> Option<crate::backup::Journal> {
        match crate::backup::interrupted(&c.remote, &self.stack.name).await {
            Ok(j) => j,
            Err(e) => {
                self.out.warning(e.to_string());
                None
            }
        }
    }

    /// [`Context::connect`] without the interrupted-restore warning (for commands that report it themselves).
    pub(crate) async fn connect_quiet(&self) -> Result<Connected, CommandError> {
        self.one_host().map_err(CommandError::Usage)?;
        self.open().await
    }

    /// Connects to the host that keeps the deploy lock and the audit log: the environment's host (as
    /// [`Context::connect`]), or the first host of `hosts:`, where `up` on a cluster takes its lock.
    pub(crate) async fn connect_keeper(&self) -> Result<Connected, CommandError> {
        if self.stack.hosts.is_empty() {
            return self.connect().await;
        }
        self.open().await
    }

    /// The SSH connection to `stack.target` (the first host of `hosts:` for a cluster) and Docker through it.
    async fn open(&self) -> Result<Connected, CommandError> {
        let remote = crate::host::connect(&self.stack, Duration::from_secs(15)).await?;
        let engine = Engine::connect(&remote).await?;
        Ok(Connected {
            remote: std::sync::Arc::new(remote),
            engine,
            keeper: None,
        })
    }

    /// Builds the images (nothing is changed on the host before they are built: a stack that cannot be built
    /// changes nothing).
    pub(crate) async fn build(&self, local: &Engine) -> Result<Builds, CommandError> {
        let say = |line: &str| self.out.note(line);
        Ok(build_all(&self.stack, local, self.rebuild, &say).await?)
    }

    /// The image the host runs for each service: a build's own, or the host's image of the same build inputs
    /// when it has one (builds are not byte-for-byte reproducible, so the same inputs can give two IDs; the
    /// host keeps what it has instead of receiving and releasing a copy).
    async fn images_on_host(&self, c: &Connected, builds: &Builds) -> Result<Images, CommandError> {
        // One query pair per built service, all at once: each is a round trip to the host.
        let found = futures_util::future::join_all(builds.inputs.iter().map(
            |(service, inputs)| async move {
                let on_host = crate::engine::images_built_from(&c.engine, inputs).await?;
                let running = if on_host.is_empty() {
                    None
                } else {
                    c.engine
                        .container_state(&crate::layout::container_name(service))
                        .await?
                        .and_then(|s| s.image)
                };
                Ok::<_, CommandError>((service, on_host, running))
            },
        ))
        .await;
        let mut images = builds.images.clone();
        for found in found {
            let (service, on_host, running) = found?;
            let Some((id, reference)) = images.get_mut(service) else {
                continue;
            };
            if on_host.is_empty() {
                continue;
            }
            let chosen = crate::engine::pick_on_host(id, &on_host, running.as_deref());
            if chosen != *id {
                tracing::debug!(%service, built = %id, host = %chosen, "the host has an image of the same build inputs");
                let repository = reference
                    .rsplit_once(':')
                    .map_or(reference.as_str(), |(r, _)| r);
                *reference = format!("{repository}:{}", crate::layout::short_id(&chosen));
                *id = chosen;
            }
        }
        Ok(images)
    }

    /// Works out what the host should have. Secrets are hashed with the host's key: made when missing if
    /// `create_key` (a run that changes the host), else a throwaway one (a plan before the first `up`).
    pub(crate) async fn desired(
        &self,
        c: &Connected,
        builds: &Builds,
        create_key: bool,
    ) -> Result<Desired, CommandError> {
        let stack = self.stack.name.as_str();
        let key = async {
            Ok::<_, CommandError>(if create_key {
                crate::facts::hash_key(&c.remote, stack).await?
            } else {
                match crate::facts::read_hash_key(&c.remote, stack).await? {
                    Some(key) => key,
                    None => crate::facts::ephemeral_hash_key()?,
                }
            })
        };
        let (images, key) = tokio::try_join!(self.images_on_host(c, builds), key)?;
        let mut desired = desired_from_stack(&self.stack, &images, &key)?;
        // The storefront (`site:`): packed here, named by its content hash, released on the host by `apply`.
        desired.site = crate::site::desired(&self.stack)
            .map_err(|e| CommandError::Usage(format!("{e}\n  nothing was changed")))?;
        // The backup script and its cron entry are files like the nginx config: written when they change.
        desired
            .files
            .extend(crate::backup::Setup::from_stack(&self.stack).files()?);
        // So is the certificate renewal job's cron entry; the certificate itself is planned too.
        desired
            .files
            .extend(crate::tls::renewal_files(&self.stack)?);
        desired.certificate = crate::tls::wanted(&self.stack).map_err(|e| {
            CommandError::Io(format!(
                "the certificate for `{}`: {e}\n  nothing was changed",
                self.stack.domain
            ))
        })?;
        self.add_repository_host_tls(&mut desired)?;
        Ok(desired)
    }

    /// With the repository on a backup host: the stack's TLS identities (made here once), the database side's
    /// in the postgres container, and its `pgbackrest server`'s port published for the backup host.
    fn add_repository_host_tls(&self, desired: &mut Desired) -> Result<(), CommandError> {
        let Some(material) = self.repository_tls()? else {
            return Ok(());
        };
        let Some(postgres) = desired
            .containers
            .iter_mut()
            .find(|c| c.service == "postgres")
        else {
            return Ok(());
        };
        for (k, v) in crate::backup::archive::tls_env(&material.ca, &material.db) {
            let entry = match v {
                crate::backup::archive::ContainerValue::Plain(s) => crate::plan::EnvEntry::Plain(s),
                crate::backup::archive::ContainerValue::Secret(s) => {
                    crate::plan::EnvEntry::Secret(s)
                }
            };
            postgres.env.insert(k, entry);
        }
        let port = crate::backup::archive::TLS_PORT;
        if !postgres.publish.iter().any(|p| p.host_port == port) {
            postgres.publish.push(crate::plan::Publish {
                host_ip: None,
                host_port: port,
                container_port: port,
            });
        }
        Ok(())
    }

    /// The TLS identities of repository-host mode, when the repository is on a backup host.
    pub(crate) fn repository_tls(
        &self,
    ) -> Result<Option<crate::backup::repo_tls::Material>, CommandError> {
        let Some(peers) = crate::backup::archive::Peers::of(&self.stack) else {
            return Ok(None);
        };
        let dir = crate::backup::repo_tls::dir(&self.stack.project_dir, &self.stack.environment);
        crate::backup::repo_tls::load_or_create(&dir, &self.stack.name, &peers.repo, &peers.db)
            .map(Some)
            .map_err(|e| CommandError::Io(format!("{e}\n  nothing was changed")))
    }

    /// The port the backend listens on, on the private network (what nginx's upstream names).
    pub(crate) fn backend_port(&self) -> u16 {
        self.stack
            .services
            .get("backend")
            .and_then(|s| s.port)
            .unwrap_or(crate::layout::BACKEND_PORT)
    }

    /// Where the shop answers once it is up.
    pub(crate) fn url(&self) -> String {
        if self.stack.environment == "sandbox" {
            let env_file = self.stack.project_dir.join(".vldeploy/sandbox/sandbox.env");
            if let Ok(text) = std::fs::read_to_string(env_file) {
                if let Some(port) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("SANDBOX_HTTP_PORT="))
                {
                    return format!("http://127.0.0.1:{}/", port.trim());
                }
            }
        }
        format!("http://{}/", self.stack.domain)
    }
}

impl Context {
    /// The backend's `ADMIN_TOKEN`, for an admin call of the backend's API; `call` says which (for the error).
    pub(crate) fn admin_token(&self, call: &str) -> Result<String, CommandError> {
        self.stack
            .services
            .get("backend")
            .and_then(|s| s.env.get("ADMIN_TOKEN"))
            .map(|v| v.expose().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                CommandError::Usage(format!(
                    "the backend has no `ADMIN_TOKEN` in stack.yaml: {call} is an admin call of its API"
                ))
            })
    }
}

impl Context {
    /// Runs `body` holding the stack's deploy lock, then records the outcome in the host's audit log.
    /// `body` returns the change summaries to record alongside its result.
    pub(crate) async fn locked<F, Fut>(
        &self,
        c: &Connected,
        command: &str,
        body: F,
    ) -> Result<i32, CommandError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (Vec<String>, Result<i32, CommandError>)>,
    {
        self.locked_audited(c, command, || async {
            let (changes, result) = body().await;
            (
                Audited {
                    changes,
                    ..Audited::default()
                },
                result,
            )
        })
        .await
    }

    /// `locked`, where `body` also names waived checklist items and a note for the audit entry.
    /// An entry is written when something changed, something was waived or noted, or the command failed.
    pub(crate) async fn locked_audited<F, Fut>(
        &self,
        c: &Connected,
        command: &str,
        body: F,
    ) -> Result<i32, CommandError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (Audited, Result<i32, CommandError>)>,
    {
        self.locked_audited_on(c.keeper.as_ref().unwrap_or(&c.remote), command, body)
            .await
    }

    /// [`Self::locked_audited`] with the lock and the audit log on `remote`: the host of a one-host
    /// environment, the first host of `hosts:` for a cluster.
    pub(crate) async fn locked_audited_on<F, Fut>(
        &self,
        remote: &std::sync::Arc<Remote>,
        command: &str,
        body: F,
    ) -> Result<i32, CommandError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (Audited, Result<i32, CommandError>)>,
    {
        let lock = crate::state::acquire(remote.clone(), &self.stack.name, command).await?;
        let (audited, result) = body().await;
        let quiet =
            audited.changes.is_empty() && audited.waived.is_empty() && audited.note.is_none();
        if quiet && result.is_ok() {
            if let Err(e) = lock.release().await {
                tracing::warn!("could not release the lock: {e}");
            }
            return result;
        }
        let entry = crate::state::AuditEntry {
            time: crate::state::now(),
            actor: crate::state::actor(),
            command: command.to_string(),
            environment: self.stack.environment.clone(),
            changes: audited.changes,
            result: if result.is_ok() {
                "ok".into()
            } else {
                "failed".into()
            },
            error: result.as_ref().err().map(ToString::to_string),
            waived: audited.waived,
            note: audited.note,
        };
        if let Err(e) =
            crate::state::audit_append(remote, &self.stack.name, &entry, &self.stack.secrets).await
        {
            tracing::warn!("could not write the audit log: {e}");
        }
        if let Err(e) = lock.release().await {
            tracing::warn!("could not release the lock: {e}");
        }
        result
    }
}

/// What a locked command leaves in the audit log besides its result.
#[derive(Debug, Default)]
pub(crate) struct Audited {
    pub changes: Vec<String>,
    /// Checklist items waived, as `item: reason`.
    pub waived: Vec<String>,
    pub note: Option<String>,
}

/// The commit the project is at, with `-dirty` when it has uncommitted changes; `None` outside git.
pub(crate) fn git_commit(dir: &std::path::Path) -> Option<String> {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = run(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty = run(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

/// Asks the operator to type the stack's name before something that destroys data. Without a terminal it
/// refuses with `refusal` (which names `--yes`); a wrong answer changes nothing.
pub(crate) fn confirm_by_stack_name(
    ctx: &Context,
    refusal: String,
    prompt: &str,
) -> Result<(), CommandError> {
    use std::io::{BufRead, IsTerminal};
    let stack = &ctx.stack.name;
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::Usage(refusal));
    }
    ctx.out
        .prompt(format!("{prompt} Type `{stack}` to confirm: "));
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CommandError::Io(e.to_string()))?;
    if line.trim() == stack {
        Ok(())
    } else {
        Err(CommandError::Usage(
            "not confirmed; nothing was changed".into(),
        ))
    }
}
