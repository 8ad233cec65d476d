//! The real binary: starts before its database, logs JSON lines with the playbook's event names, answers the
#![allow(clippy::unwrap_used)]
//! `healthcheck` subcommand, and on SIGTERM drops no request under concurrent load.
mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{
    ADMIN_TOKEN, CATALOG, PgCluster,
    doubles::{KEY_ID, KEY_SECRET},
    free_port,
};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_vl-backend");

fn healthcheck(url: &str) -> i32 {
    Command::new(BIN)
        .args(["healthcheck", "--url", url])
        .output()
        .unwrap()
        .status
        .code()
        .unwrap_or(-1)
}

struct Service {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Service {
    fn start(cluster: &PgCluster, port: u16, shiprocket_url: &str) -> Self {
        let mut child = Command::new(BIN)
            .env_clear()
            .env("DATABASE_URL", cluster.url())
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("DB_RETRY_MAX_MS", "300")
            .env("PAYMENT_FALLBACK_MODE", "true")
            .env("RAZORPAY_KEY_ID", KEY_ID)
            .env("RAZORPAY_KEY_SECRET", KEY_SECRET)
            .env("SHIPROCKET_BASE_URL", shiprocket_url)
            .env("SHIPROCKET_EMAIL", "ops@vaibava.example")
            .env("SHIPROCKET_PASSWORD", "sr-secret-password")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Self { child, lines }
    }

    fn events(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
            .collect()
    }

    fn saw(&self, message: &str) -> bool {
        self.events()
            .iter()
            .any(|event| event["message"] == message)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Shiprocket stand-in that refuses every login.
async fn refusing_shiprocket() -> String {
    use axum::{Json, Router, http::StatusCode, routing::post};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new().route(
        "/v1/external/auth/login",
        post(|| async { (StatusCode::UNAUTHORIZED, Json(json!({"message": "Invalid email and password combination", "status_code": 401}))) }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// True when the request was answered in full; false when its connection was refused (it never reached the
/// server); panics when an accepted request lost its answer.
async fn finished(result: reqwest::Result<reqwest::Response>) -> bool {
    match result {
        Ok(response) => {
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("a response body was cut off");
            true
        }
        Err(error) if error.is_connect() => false,
        Err(error) => panic!("request dropped: {error:?}"),
    }
}

#[tokio::test]
async fn the_binary_logs_json_and_shuts_down_without_dropping_requests() {
    let cluster = PgCluster::init();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let health = format!("{base}/api/health");
    let service = Service::start(&cluster, port, &refusing_shiprocket().await);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_mins(1))
        .build()
        .unwrap();

    // Up before its database: health answers 503 and the retries are logged.
    wait_until("a 503 from health", async || {
        http.get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status() == 503)
    })
    .await;
    assert_eq!(healthcheck(&health), 1);
    wait_until("database_connection_failed in the log", async || {
        service.saw("database_connection_failed")
    })
    .await;

    cluster.start_server();
    cluster.create_database();
    wait_until("a 200 from health", async || {
        http.get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert_eq!(healthcheck(&health), 0);
    assert!(service.saw("database_ready"));

    let import = http
        .post(format!("{base}/api/admin/catalog/import"))
        .bearer_auth(ADMIN_TOKEN)
        .body(CATALOG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(import.status(), 200);
    for _ in 0..2 {
        assert_eq!(
            http.get(format!("{base}/api/search?q=silk"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let forged = json!({"razorpay_order_id": "order_X", "razorpay_payment_id": "pay_X", "razorpay_signature": "00"});
    assert_eq!(
        http.post(format!("{base}/api/payments/verify"))
            .json(&forged)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let order = json!({"items": [{"handle": "crimson-kanchi-bride", "quantity": 1}],
        "customer": {"name": "Asha Rao", "phone": "9876543210", "address": "12 Temple St", "city": "Chennai", "pincode": "600001"}});
    let created: Value = http
        .post(format!("{base}/api/orders"))
        .json(&order)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["order_id"].as_str().unwrap();
    let shipment = http
        .post(format!("{base}/api/admin/orders/{id}/shipment"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(shipment.status(), 502);

    // SIGTERM in the middle of concurrent traffic. As in a release switch, new traffic stops going to this
    // instance just before the signal; every request already sent must get its full answer.
    let switched = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|worker| {
            let (base, switched) = (base.clone(), switched.clone());
            tokio::spawn(async move {
                let mut answered = 0u32;
                let mut pending = Vec::new();
                while !switched.load(std::sync::atomic::Ordering::SeqCst) {
                    let client = reqwest::Client::builder()
                        .pool_max_idle_per_host(0)
                        .timeout(Duration::from_secs(30))
                        .build()
                        .unwrap();
                    let path = if worker % 2 == 0 {
                        "/api/search?q=red%20silk"
                    } else {
                        "/api/products?limit=5"
                    };
                    pending.push(tokio::spawn(client.get(format!("{base}{path}")).send()));
                    if pending.len() >= 4 {
                        answered += u32::from(finished(pending.remove(0).await.unwrap()).await);
                    }
                }
                for request in pending {
                    answered += u32::from(finished(request.await.unwrap()).await);
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    switched.store(true, std::sync::atomic::Ordering::SeqCst);
    let pid = service.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut answered = 0;
    for worker in load {
        answered += worker.await.unwrap();
    }
    assert!(answered > 0);

    let mut service = service;
    let deadline = Instant::now() + Duration::from_mins(1);
    let status = loop {
        if let Some(status) = service.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let refused = reqwest::Client::new()
        .get(&health)
        .send()
        .await
        .unwrap_err();
    assert!(
        refused.is_connect(),
        "the port is closed after exit: {refused:?}"
    );
    std::thread::sleep(Duration::from_millis(200));

    // Every line is a JSON object; the playbook's events are there with their fields.
    let lines = service.lines.lock().unwrap().clone();
    assert!(lines.len() > 10);
    for line in &lines {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            value["timestamp"].is_string()
                && value["level"].is_string()
                && value["message"].is_string(),
            "{line}"
        );
    }
    let events = service.events();
    let completed = events
        .iter()
        .find(|e| e["message"] == "request_completed" && e["path"] == "/api/search")
        .unwrap();
    for field in ["method", "path", "status", "duration_ms", "request_id"] {
        assert!(
            !completed[field].is_null(),
            "request_completed lacks `{field}`: {completed}"
        );
    }
    let caches: Vec<&str> = events
        .iter()
        .filter(|e| e["message"] == "search_cache")
        .filter_map(|e| e["cache"].as_str())
        .collect();
    assert!(
        caches.contains(&"miss") && caches.contains(&"hit"),
        "{caches:?}"
    );
    for event in [
        "database_connection_failed",
        "payment_verification_failed",
        "shiprocket_auth_error",
        "shutdown_started",
        "shutdown_complete",
    ] {
        assert!(service.saw(event), "no `{event}` in the log");
    }
    // Secrets never reach the log.
    let all = lines.join("\n");
    for secret in [ADMIN_TOKEN, KEY_SECRET, "sr-secret-password"] {
        assert!(!all.contains(secret), "a secret was logged");
    }
}
