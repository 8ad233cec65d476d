//! Health follows the database (503 while it is down, 200 when it returns), and graceful shutdown lets
#![allow(clippy::unwrap_used)]
//! every in-flight request finish.
mod common;

use std::time::{Duration, Instant};

use common::{CATALOG, PgCluster, TestApp, config, read};

async fn wait_for_status(app: &TestApp, want: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, body) = read(app.http.get(app.at("/api/health")).send().await.unwrap()).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "health never answered {want}; last: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn health_is_503_while_the_database_is_down_and_200_after_it_returns() {
    let cluster = PgCluster::init();
    // The service starts before its database exists and keeps retrying.
    let app = TestApp::spawn_unready(config(&cluster)).await;
    let body = wait_for_status(&app, 503).await;
    assert_eq!(body["database"]["status"], "starting");
    assert_eq!(body["error"]["code"], "database_unavailable");
    let (status, body) = app.get("/api/products").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("database_unavailable"))
    );

    cluster.start_server();
    cluster.create_database();
    let body = wait_for_status(&app, 200).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"]["status"], "up");
    assert!(body["database"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_s"].is_u64());
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(app.import(CATALOG).await.0, 200);

    cluster.stop_server();
    let body = wait_for_status(&app, 503).await;
    assert_eq!(body["database"]["status"], "down");
    assert_eq!(
        body["catalog"]["products"], 50,
        "the catalog size is still known"
    );
    let (status, _) = app.get("/api/search?q=silk").await;
    assert_eq!(
        status, 200,
        "search is served from memory while the database is away"
    );

    cluster.start_server();
    let body = wait_for_status(&app, 200).await;
    assert_eq!(body["database"]["status"], "up");
    let (status, list) = app.get("/api/products").await;
    assert_eq!((status, list["total"].as_u64()), (200, Some(50)));
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_every_in_flight_request() {
    let cluster = PgCluster::start();
    let mut config = config(&cluster);
    config.db_pool_size = 40;
    config.shutdown_grace_s = 60;
    let mut app = TestApp::spawn(config).await;
    assert_eq!(app.import(CATALOG).await.0, 200);

    // Hold a lock so that catalog reads wait inside their handlers.
    let mut blocker = cluster.connect().await;
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let requests: Vec<_> = (0..30)
        .map(|i| {
            let (http, url) = (
                app.http.clone(),
                app.at(&format!("/api/products?offset={i}")),
            );
            tokio::spawn(async move { http.get(url).send().await })
        })
        .collect();
    // Wait until all of them are inside the server, waiting on the lock.
    let db = cluster.connect().await;
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let waiting: i64 = db
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'vl-backend'", &[])
            .await
            .unwrap()
            .get(0);
        if waiting == 30 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {waiting} requests reached the database"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let server = app.begin_shutdown();
    // New connections are refused soon after the signal.
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::Client::new()
        .get(app.at("/api/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "the listener kept accepting after shutdown began"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !server.is_finished(),
        "the server must wait for in-flight requests"
    );
    lock.rollback().await.unwrap();

    for request in requests {
        let response = request
            .await
            .unwrap()
            .expect("an in-flight request was dropped");
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["total"], 50);
    }
    server.await.unwrap().unwrap();
    assert!(
        app.state.db.client().await.is_err(),
        "the pool is closed after shutdown"
    );
}
