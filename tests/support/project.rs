//! A throwaway project for end-to-end tests: its own stack.yaml, its own sandbox host, the real binary.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The vldeploy binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vldeploy"))
}

/// Builds the backend's release binary into `backend/dist/` once per test process, exactly as stack.yaml's
/// `prepare` does, so the test stacks can skip that step.
pub fn backend_binary() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let status = Command::new("sh")
            .arg("-c")
            .arg(
                "cargo build --release -p vl-backend --target-dir target/backend-release && \
                 install -D -m 0755 target/backend-release/release/vl-backend backend/dist/vl-backend.tmp && \
                 mv -f backend/dist/vl-backend.tmp backend/dist/vl-backend",
            )
            .current_dir(repo())
            // What cargo sets for this test process would make the build differ from the one `.ci/test`
            // made before the tests (build scripts rerun when such a variable changes): leave it out.
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| {
                !(k.starts_with("CARGO_") || k.starts_with("RUST_") || k == "OUT_DIR")
                    || matches!(k.as_str(), "CARGO_HOME" | "CARGO_TERM_COLOR")
            }))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the backend's release binary failed");
    });
}

/// What a run of the binary printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(out: &Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A project directory with a stack named after the test, and its sandbox host.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub name: String,
    /// Everything the binary printed, shown when the test fails.
    transcript: Mutex<String>,
    sandbox_started: Mutex<bool>,
    /// The user vldeploy connects as: `root`, or `deploy` (made by `vldeploy bootstrap` as root when the
    /// sandbox host comes up).
    pub user: String,
    /// Whether the stack keeps the repository's storefront (`site:`) and catalog seed (`catalog:`).
    storefront: bool,
    /// Whether the sandbox host starts without the stack's image layers (`with_cold_sandbox_as`).
    cold: bool,
    /// When the project was made: its lifetime goes to `VLDEPLOY_TEST_TIMES` (see [`record_time`]).
    made: std::time::Instant,
}

/// Who the end-to-end flows connect as: root, or `deploy` for the flows of `tests/as_deploy.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    Root,
    Deploy,
}

impl As {
    pub fn user(self) -> &'static str {
        match self {
            As::Root => "root",
            As::Deploy => "deploy",
        }
    }
}

impl Project {
    /// A project whose stack.yaml is the repository's, renamed and pointing at the repository's build contexts.
    pub fn new(test: &str) -> Self {
        Self::create(test, As::Root, false)
    }

    /// A project whose environment connects as `who`.
    pub fn new_as(test: &str, who: As) -> Self {
        Self::create(test, who, false)
    }

    /// A project with the repository's storefront and catalog seed (`site: frontend/`, `catalog:
    /// data/catalog.csv`, copied into the project), its sandbox host up.
    pub fn with_storefront(test: &str) -> Self {
        let p = Self::create(test, As::Root, true);
        for dir in ["frontend", "data"] {
            let status = Command::new("cp")
                .arg("-r")
                .arg(repo().join(dir))
                .arg(p.path())
                .status()
                .expect("cp runs");
            assert!(status.success(), "copying `{dir}` into the project failed");
        }
        p.sandbox_up(&[]);
        p
    }

    fn create(test: &str, who: As, storefront: bool) -> Self {
        backend_binary();
        // Names are global on the shared Docker engine: a suffix of this test process keeps two checkouts
        // running the same test at once from taking each other's sandbox host.
        // A flow run as `deploy` gets a host of its own beside the same flow run as root.
        let prefix = if who == As::Root { "e2e" } else { "e2d" };
        let name = format!("{prefix}-{}", test.replace('_', "-"));
        let name = format!(
            "{}-{:04x}",
            name[..name.len().min(35)].trim_end_matches('-'),
            std::process::id() & 0xffff
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("vld-{test}-"))
            .tempdir()
            .expect("tempdir");
        let p = Self {
            dir,
            name,
            transcript: Mutex::new(String::new()),
            sandbox_started: Mutex::new(false),
            user: who.user().to_owned(),
            storefront,
            cold: false,
            made: std::time::Instant::now(),
        };
        p.write_stack(&p.stack_yaml(|_| {}));
        p
    }

    /// A project with its sandbox host up: what nearly every end-to-end test starts from.
    pub fn with_sandbox(test: &str) -> Self {
        Self::with_sandbox_publishing(test, &[])
    }

    /// A project whose sandbox host also publishes `ports` (for probes of what must stay closed).
    pub fn with_sandbox_publishing(test: &str, ports: &[u16]) -> Self {
        Self::with_sandbox_as(test, As::Root, ports)
    }

    /// A project connecting as `who` whose sandbox host is up (and bootstrapped, for `deploy`), publishing
    /// `ports` too.
    pub fn with_sandbox_as(test: &str, who: As, ports: &[u16]) -> Self {
        let p = Self::new_as(test, who);
        p.sandbox_up(ports);
        p
    }

    /// Like [`Project::with_sandbox_as`], with a host whose engine holds no image layer yet: for tests of the
    /// first transfer (every other host starts with the stack's layers, see `support::warm`).
    pub fn with_cold_sandbox_as(test: &str, who: As) -> Self {
        let mut p = Self::new_as(test, who);
        p.cold = true;
        p.sandbox_up(&[]);
        p
    }

    /// A project with its sandbox host up and the stack deployed there by a successful `up`.
    pub fn deployed(test: &str) -> Self {
        Self::deployed_as(test, As::Root)
    }

    /// Like [`Project::deployed`], connecting as `who`.
    pub fn deployed_as(test: &str, who: As) -> Self {
        let p = Self::with_sandbox_as(test, who, &[]);
        p.vldeploy(&["up"]).ok();
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The repository's stack.yaml, adapted to this project; `edit` may change the text further.
    pub fn stack_yaml(&self, edit: impl FnOnce(&mut String)) -> String {
        let repo = repo();
        let mut text = std::fs::read_to_string(repo.join("stack.yaml")).expect("stack.yaml");
        if !self.storefront {
            // Most tests need neither the storefront nor the catalog: the placeholder page, an empty catalog.
            text = text
                .lines()
                .filter(|l| !matches!(l.trim(), "site: frontend/" | "catalog: data/catalog.csv"))
                .fold(String::new(), |mut out, l| {
                    out.push_str(l);
                    out.push('\n');
                    out
                });
        }
        text = text.replacen("name: vaibava", &format!("name: {}", self.name), 1);
        let backend = repo.join("backend");
        // The binary is prepared once by the harness; the test stack builds from it directly.
        let start = text
            .find("    build:\n      context: backend")
            .expect("backend build in stack.yaml");
        let end = text[start..].find("    port:").expect("backend port") + start;
        text.replace_range(start..end, &format!("    build: {}\n", backend.display()));
        for image in ["postgres", "nginx"] {
            text = text.replace(
                &format!("build: templates/images/{image}"),
                &format!(
                    "build: {}",
                    repo.join("templates/images").join(image).display()
                ),
            );
        }
        if self.user != "root" {
            let root = "    host: ssh://root@127.0.0.1:${SANDBOX_SSH_PORT}\n";
            assert!(text.contains(root), "the sandbox host line in stack.yaml");
            text = text.replacen(
                root,
                &format!(
                    "    host: ssh://{}@127.0.0.1:${{SANDBOX_SSH_PORT}}\n    bootstrap_user: root\n",
                    self.user
                ),
                1,
            );
        }
        edit(&mut text);
        text
    }

    pub fn write_stack(&self, text: &str) {
        std::fs::write(self.path().join("stack.yaml"), text).expect("write stack.yaml");
    }

    /// The test builder for a run in this project's directory: `p.test().args([..]).stdout(..).run()`.
    pub fn test(&self) -> super::test::Test<'_> {
        super::test::Test::in_project(self)
    }

    /// Runs `vldeploy ARGS` in the project directory.
    pub fn vldeploy(&self, args: &[&str]) -> Run {
        self.vldeploy_env(args, &[])
    }

    pub fn vldeploy_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("vldeploy runs");
        let run = Run::from_output(&out);
        self.record(args, &run);
        run
    }

    /// The command, not yet started (for tests that kill it part-way).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
        cmd.args(args).current_dir(self.path()).stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("VLDEPLOY_") {
                cmd.env_remove(k);
            }
        }
        cmd
    }

    /// Starts `vldeploy ARGS` with stderr delivered line by line as it is printed (for tests that act, or
    /// kill it, when a line appears); stdout is discarded.
    pub fn spawn_watching_stderr(
        &self,
        args: &[&str],
    ) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
        use std::io::BufRead as _;
        let mut child = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vldeploy starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    pub fn record(&self, args: &[&str], run: &Run) {
        if let Ok(mut t) = self.transcript.lock() {
            let _ = write!(
                t,
                "\n$ vldeploy {}\n[exit {}]\n{}{}",
                args.join(" "),
                run.code,
                run.stdout,
                run.stderr
            );
        }
    }

    /// Creates this project's sandbox host and, for a user that is not root, bootstraps it as root.
    pub fn sandbox_up(&self, extra: &[u16]) -> Run {
        let run = self.sandbox_up_bare_of_users(extra);
        if self.user != "root" {
            // The full sandbox host has the engine and the tools: bootstrap makes the user, its key, the
            // sudoers rule, the root helper and the directories.
            self.vldeploy(&["bootstrap"]).ok();
        }
        run
    }

    /// Creates this project's sandbox host, with root's login only (no bootstrap).
    pub fn sandbox_up_bare_of_users(&self, extra: &[u16]) -> Run {
        let mut args = vec!["sandbox".to_string(), "up".to_string()];
        for p in extra {
            args.push("--publish".into());
            args.push(p.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Ok(mut s) = self.sandbox_started.lock() {
            *s = true;
        }
        let run = self.vldeploy(&args).ok();
        if !self.cold {
            super::warm::preload(self);
        }
        run
    }

    /// Creates this project's sandbox cluster of `nodes` hosts (`sandbox up --nodes`); dropping the project
    /// removes it with `sandbox down`. Its hosts start with no image layer, whatever other tests of the run have
    /// built: the cluster test watches each node receive the images its roles run.
    pub fn cluster_up(&self, nodes: usize) -> Run {
        if let Ok(mut s) = self.sandbox_started.lock() {
            *s = true;
        }
        self.vldeploy(&["sandbox", "up", "--nodes", &nodes.to_string()])
            .ok()
    }

    /// A value from `.vldeploy/sandbox/sandbox.env`.
    pub fn sandbox_var(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.path().join(".vldeploy/sandbox/sandbox.env"))
            .expect("sandbox.env");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} not in sandbox.env"))
            .trim()
            .to_string()
    }

    /// The stack's URL on the sandbox host, as vldeploy prints it: `http://127.0.0.1:<http port>/`.
    pub fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/",
            self.sandbox_var("SANDBOX_HTTP_PORT")
        )
    }

    /// The sandbox host as vldeploy names it: `root@127.0.0.1:<ssh port>`.
    pub fn target(&self) -> String {
        format!(
            "{}@127.0.0.1:{}",
            self.user,
            self.sandbox_var("SANDBOX_SSH_PORT")
        )
    }

    /// The line `up` prints on a host that already matches the stack.
    pub fn converged(&self) -> String {
        format!(
            "{}: no changes; the stack is up at {}\n",
            self.name,
            self.url()
        )
    }

    /// The line `plan` prints when the host matches the stack.
    pub fn no_changes(&self) -> String {
        format!(
            "{}: no changes; the host matches the stack.\n",
            self.target()
        )
    }

    /// The start of the line `up` prints after it applied changes.
    pub fn is_up(&self) -> String {
        format!("{} (sandbox) is up at {} — ", self.name, self.url())
    }

    /// A secret from `.vldeploy/sandbox/secrets.env`.
    pub fn secret(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.path().join(".vldeploy/sandbox/secrets.env"))
            .expect("secrets.env");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} not in secrets.env"))
            .trim()
            .trim_matches('"')
            .to_string()
    }

    /// Sets `key` to `value` in `.vldeploy/sandbox/secrets.env` (replacing a line of `key` it had); `value` as it
    /// stands in the file (quote it there when it holds spaces).
    pub fn set_secret(&self, key: &str, value: &str) {
        let path = self.path().join(".vldeploy/sandbox/secrets.env");
        let text = std::fs::read_to_string(&path).expect("secrets.env");
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{key}=")))
            .map(str::to_string)
            .collect();
        lines.push(format!("{key}={value}"));
        std::fs::write(&path, lines.join("\n") + "\n").expect("secrets.env written");
    }

    /// The values of the sandbox cluster's secrets (`.vldeploy/cluster/secrets.env`): what must never be printed.
    pub fn cluster_secret_values(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.path().join(".vldeploy/cluster/secrets.env"))
            .expect("the cluster's secrets.env");
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(_, v)| v.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Runs a shell command on the sandbox host with the OpenSSH client, strictly checking its host key.
    pub fn ssh(&self, command: &str) -> Run {
        super::ssh::ssh(self, command)
    }

    /// The audit log's entries (`vldeploy audit -o json`), oldest first; the output shows no secret.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        let run = self.test().args(["audit", "-o", "json"]).run();
        super::ssh::no_secret(&run, &self.secret_values());
        run.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .flat_map(|v| match v {
                serde_json::Value::Array(a) => a,
                other => vec![other],
            })
            .collect()
    }

    /// Whether the audit log holds an entry for `command` (`restore`, `restore --resume`).
    pub fn audited(&self, command: &str) -> bool {
        self.audit().iter().any(|e| e["command"] == command)
    }

    /// The values of the sandbox's secrets (`POSTGRES_PASSWORD`, `ADMIN_TOKEN`): what must never be printed.
    pub fn secret_values(&self) -> Vec<String> {
        ["POSTGRES_PASSWORD", "ADMIN_TOKEN"]
            .iter()
            .map(|k| self.secret(k))
            .collect()
    }

    /// `GET http://127.0.0.1:<sandbox http port><path>`: status and body.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        let port: u16 = self
            .sandbox_var("SANDBOX_HTTP_PORT")
            .parse()
            .expect("a port");
        http_get(port, path)
    }

    /// Container names of the stack on the sandbox host, with their IDs: `name -> id`.
    pub fn containers(&self) -> std::collections::BTreeMap<String, String> {
        let run = self.ssh(&format!(
            "docker ps -a --filter label=vldeploy.stack={} --format '{{{{.Names}}}} {{{{.ID}}}}'",
            self.name
        ));
        assert_eq!(
            run.code, 0,
            "docker ps on the sandbox host failed: {}",
            run.stderr
        );
        run.stdout
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, i)| (n.to_string(), i.to_string()))
            .collect()
    }

    /// Everything printed so far, and the sandbox host's own logs: what a failed test shows.
    fn diagnostics(&self) -> String {
        let mut out = String::new();
        if let Ok(t) = self.transcript.lock() {
            out.push_str(&t);
        }
        let container = format!("vldeploy-sandbox-{}", self.name);
        if let Ok(o) = Command::new("docker")
            .args(["logs", "--tail", "50", &container])
            .output()
        {
            let _ = write!(
                out,
                "\n--- docker logs {container}\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        if let Ok(o) = Command::new("docker")
            .args(["exec", &container, "sh", "-c", "docker ps -a; for c in $(docker ps -aq); do echo \"--- $c\"; docker logs --tail 30 $c 2>&1; done; tail -n 30 /var/log/dockerd.log"])
            .output()
        {
            let _ = write!(out, "\n--- inside the sandbox host\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        }
        out
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== diagnostics for `{}` =====\n{}",
                self.name,
                self.diagnostics()
            );
        }
        if self.sandbox_started.lock().map(|s| *s).unwrap_or(false)
            && std::env::var_os("VLDEPLOY_KEEP_SANDBOX").is_none()
        {
            let _ = self.command(&["sandbox", "down"]).output();
        }
        record_time(&self.name, self.made.elapsed());
    }
}

/// Appends `seconds test project` to the file `VLDEPLOY_TEST_TIMES` names, if it is set: `.ci/test` prints
/// the slowest tests from it, so the suite's time has a breakdown.
fn record_time(project: &str, lived: std::time::Duration) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("VLDEPLOY_TEST_TIMES") else {
        return;
    };
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{:.1} {test} {project}", lived.as_secs_f64());
    }
}

/// `curl` over HTTPS to `domain` on 127.0.0.1:`port`, trusting only the root certificate `root`: the status and
/// the body, with curl's error text after it.
pub fn https_get(domain: &str, port: u16, root: &Path, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{domain}:{port}:127.0.0.1")])
        .args(["-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("https://{domain}:{port}{path}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// `GET http://127.0.0.1:<port><path>`: status and body (status 0 when nothing answered).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            &format!("http://127.0.0.1:{port}{path}"),
        ])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}
