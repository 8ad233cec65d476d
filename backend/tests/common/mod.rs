//! Shared test harness: a throwaway `PostgreSQL` cluster, the app on a loopback port, and local test doubles.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod doubles;

use std::{
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use vl_backend::{AppState, Config, secret::Secret, server};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
pub const ADMIN_TOKEN: &str = "test-admin-token-4f1c";
pub const CATALOG: &[u8] = include_bytes!("../data/catalog.csv");

/// A `PostgreSQL` 15 cluster in a temporary directory, on its own loopback port.
/// Runs as the `postgres` OS user when the tests run as root (`PostgreSQL` refuses root).
pub struct PgCluster {
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgCluster {
    /// `initdb` only; the server is not running yet.
    pub fn init() -> Self {
        let dir = tempfile::Builder::new().prefix("vl-pg-").tempdir().unwrap();
        let as_postgres = running_as_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let cluster = Self {
            dir,
            port: free_port(),
            as_postgres,
        };
        let out = cluster
            .pg("initdb")
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
                "-D",
            ])
            .arg(cluster.data())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    /// A running cluster with the `vaibava_db` database.
    pub fn start() -> Self {
        let cluster = Self::init();
        cluster.start_server();
        let out = cluster
            .pg("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &cluster.port.to_string(),
                "-U",
                "postgres",
                "vaibava_db",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg(&self, program: &str) -> Command {
        let path = Path::new(PG_BIN).join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.current_dir(self.dir.path());
        command
    }

    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .pg("pg_ctl")
            .args(["-w", "-t", "120", "-l"])
            .arg(self.dir.path().join("server.log"))
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn stop_server(&self) {
        let out = self
            .pg("pg_ctl")
            .args(["-w", "-t", "120", "-m", "fast", "-D"])
            .arg(self.data())
            .arg("stop")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates the application database on a cluster made with `init`.
    pub fn create_database(&self) {
        let out = self
            .pg("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "vaibava_db",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/vaibava_db", self.port)
    }

    /// A direct connection for checks the API does not expose.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}

/// Test configuration against `cluster`: admin token set, quick retries.
pub fn config(cluster: &PgCluster) -> Config {
    let mut config = Config::defaults();
    config.database_url = Secret::new(cluster.url());
    config.admin_token = Secret::new(ADMIN_TOKEN);
    config.db_retry_max_ms = 300;
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    config
}

/// The app served on a loopback port, in this process.
pub struct TestApp {
    pub url: String,
    pub state: AppState,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// Serves `config` and waits until the database is migrated and the catalog index loaded.
    pub async fn spawn(config: Config) -> Self {
        let app = Self::spawn_unready(config).await;
        app.wait_healthy().await;
        app
    }

    /// Serves `config` without waiting for the database.
    pub async fn spawn_unready(config: Config) -> Self {
        let grace = Duration::from_secs(config.shutdown_grace_s);
        let retry_max = Duration::from_millis(config.db_retry_max_ms);
        let state = AppState::new(config).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(server::bootstrap(state.clone(), retry_max));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(server::serve(
            listener,
            state.clone(),
            async move {
                let _ = stopped.await;
            },
            grace,
        ));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_mins(1))
            .build()
            .unwrap();
        Self {
            url,
            state,
            http,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(response) = self.http.get(self.at("/api/health")).send().await
                && response.status() == 200
                && self.state.db.is_ready()
            {
                return;
            }
            assert!(Instant::now() < deadline, "the app did not become healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        read(self.http.get(self.at(path)).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        read(
            self.http
                .post(self.at(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.at(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub async fn import(&self, csv: &[u8]) -> (u16, Value) {
        let request = self
            .admin(reqwest::Method::POST, "/api/admin/catalog/import")
            .header("content-type", "text/csv")
            .body(csv.to_vec());
        read(request.send().await.unwrap()).await
    }

    /// Triggers graceful shutdown and waits for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// Triggers graceful shutdown without waiting.
    pub fn begin_shutdown(&mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.take().unwrap()
    }
}

/// Status and JSON body; asserts that the body is JSON and that errors carry a code.
pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text}"));
    if status >= 400 {
        assert!(
            body["error"]["code"].is_string(),
            "error without a code: {body}"
        );
    }
    (status, body)
}

/// Handles of the catalog rows with "silk" in title, category or fabric, read straight from the CSV.
pub fn silk_products() -> Vec<&'static str> {
    let text = std::str::from_utf8(CATALOG).unwrap();
    let mut handles: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let hay = format!("{} {} {}", fields[1], fields[2], fields[7]).to_lowercase();
            hay.split(|c: char| !c.is_alphanumeric())
                .any(|w| w.starts_with("silk"))
                .then_some(fields[0])
        })
        .collect();
    handles.sort_unstable();
    handles
}
