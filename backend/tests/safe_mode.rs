//! Operator safe mode: destructive catalog operations are refused with 403 and audited; reads and stock work.
#![allow(clippy::unwrap_used)]
mod common;

use common::{CATALOG, PgCluster, TestApp, config, read};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn safe_mode_refuses_destruction_and_audits_it() {
    let cluster = PgCluster::start();
    let mut safe = config(&cluster);
    safe.operator_safe_mode = true;
    let app = TestApp::spawn(safe).await;

    // New products may be imported: no price changes.
    let (status, body) = app.import(CATALOG).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["created"], 50);

    let refusals = [
        app.admin(Method::DELETE, "/api/admin/products/crimson-kanchi-bride"),
        app.admin(Method::POST, "/api/admin/products/bulk-delete")
            .json(&json!({"handles": ["royal-blue-banarasi", "mustard-soft-silk"]})),
        app.admin(Method::DELETE, "/api/admin/catalog"),
    ];
    for request in refusals {
        let (status, body) = read(request.send().await.unwrap()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("safe_mode")),
            "{body}"
        );
    }

    // An import that changes a price is refused as a whole.
    let text = std::str::from_utf8(CATALOG).unwrap();
    let repriced = text.replacen(",Women,28999,5,", ",Women,1,5,", 1).replacen(
        ",Women,12500,8,",
        ",Women,12500,99,",
        1,
    );
    assert_ne!(repriced, text);
    let (status, body) = app.import(repriced.as_bytes()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("safe_mode")),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"]["price_changes"][0]["handle"],
        "crimson-kanchi-bride"
    );

    // Nothing changed: all products, old price, old stock of the product whose stock the refused file changed.
    let (_, list) = app.get("/api/products").await;
    assert_eq!(list["total"], 50);
    let (_, crimson) = app.get("/api/products/crimson-kanchi-bride").await;
    assert_eq!(crimson["price"], 28999);
    let (_, blue) = app.get("/api/products/royal-blue-banarasi").await;
    assert_eq!(blue["stock"], 8);

    // Stock updates and reads still work.
    let (status, body) = read(
        app.admin(
            Method::PATCH,
            "/api/admin/products/royal-blue-banarasi/stock",
        )
        .json(&json!({"stock": 3}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, body["stock"].as_i64()), (200, Some(3)));
    let (status, _) = app.get("/api/search?q=silk").await;
    assert_eq!(status, 200);

    // Each refusal is in the audit log.
    let db = cluster.connect().await;
    let rows = db
        .query(
            "SELECT action, target FROM audit_log WHERE outcome = 'refused' ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let refused: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        refused,
        vec![
            (
                "product_delete".to_owned(),
                "crimson-kanchi-bride".to_owned()
            ),
            ("product_bulk_delete".to_owned(), "2 products".to_owned()),
            ("catalog_wipe".to_owned(), "catalog".to_owned()),
            ("catalog_import_price_change".to_owned(), String::new()),
        ]
    );
    let (status, audit) = read(
        app.admin(Method::GET, "/api/admin/audit?limit=3")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(audit["entries"][0]["action"], "stock_update");
    app.shutdown().await;
}

#[tokio::test]
async fn without_safe_mode_the_same_operations_run() {
    let cluster = PgCluster::start();
    let app = TestApp::spawn(config(&cluster)).await;
    assert_eq!(app.import(CATALOG).await.0, 200);
    let (status, body) = read(
        app.admin(Method::DELETE, "/api/admin/products/crimson-kanchi-bride")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["deleted"][0].as_str()),
        (200, Some("crimson-kanchi-bride"))
    );
    let (status, body) = read(
        app.admin(Method::POST, "/api/admin/products/bulk-delete")
            .json(&json!({"handles": ["royal-blue-banarasi", "nope"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["deleted"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, body) = read(
        app.admin(Method::DELETE, "/api/admin/catalog")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["deleted"].as_u64()), (200, Some(48)));
    let (_, health) = app.get("/api/health").await;
    assert_eq!(health["catalog"]["products"], 0);
    let (_, search) = app.get("/api/search?q=silk").await;
    assert_eq!(search["total"], 0);
    app.shutdown().await;
}
