//! The catalog: migrations, import of the shop's CSV, listing, search ranking, the search cache and its flush.
#![allow(clippy::unwrap_used)]
mod common;

use common::{CATALOG, PgCluster, TestApp, config, read};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn migrations_run_once_and_create_the_schema() {
    let cluster = PgCluster::start();
    let app = TestApp::spawn(config(&cluster)).await;
    let db = cluster.connect().await;
    let versions: Vec<i32> = db
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
    for table in [
        "products",
        "audit_log",
        "otp_codes",
        "sessions",
        "orders",
        "order_items",
    ] {
        let row = db
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0), "table `{table}` is missing");
    }
    app.shutdown().await;
    // A second start finds nothing to apply.
    let app = TestApp::spawn(config(&cluster)).await;
    let count: i64 = db
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
    app.shutdown().await;
}

#[tokio::test]
async fn the_shop_catalog_imports_and_reads_back() {
    let cluster = PgCluster::start();
    let app = TestApp::spawn(config(&cluster)).await;

    let (status, body) = app.import(CATALOG).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "imported": 50, "created": 50, "updated": 0 }));

    let (status, health) = app.get("/api/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["catalog"]["products"], 50);

    let (status, list) = app.get("/api/products?limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 50);
    assert_eq!(list["products"].as_array().unwrap().len(), 10);

    let (status, product) = app.get("/api/products/crimson-kanchi-bride").await;
    assert_eq!(status, 200);
    assert_eq!(product["title"], "Crimson Red Bridal Kanchipuram Saree");
    assert_eq!(product["price"], 28999);
    assert_eq!(product["stock"], 5);
    assert_eq!(product["fabric"], "Pure Silk");
    assert_eq!(product["return_eligible"], false);
    assert_eq!(
        product["hero_prompt"],
        "South Indian bride in a grand temple corridor wearing crimson red Kanchipuram silk saree with heavy gold border, golden hour lighting, cinematic 8k,--ar 3:4"
    );

    let (status, category) = app.get("/api/products?category=kanchipuram-silk").await;
    assert_eq!(status, 200);
    assert_eq!(category["total"], 5);

    let (status, missing) = app.get("/api/products/no-such-thing").await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Importing the same file again updates and creates nothing new.
    let (status, body) = app.import(CATALOG).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "imported": 50, "created": 0, "updated": 50 }));
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_row_is_reported_by_line_and_nothing_is_imported() {
    let cluster = PgCluster::start();
    let app = TestApp::spawn(config(&cluster)).await;
    let text = String::from_utf8(CATALOG.to_vec()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Line 31 gets a price that is not a number; line 45 loses most of its fields.
    let mut fields: Vec<&str> = lines[30].split(',').collect();
    fields[4] = "125OO";
    lines[30] = fields.join(",");
    lines[44] = "half-a-row,Title Only".to_owned();
    let csv = lines.join("\n");

    let (status, body) = app.import(csv.as_bytes()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_catalog");
    let errors = body["error"]["details"]["errors"].as_array().unwrap();
    let reported: Vec<u64> = errors.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(reported, vec![31, 45]);
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("`Price` `125OO`"),
        "{body}"
    );

    let (_, list) = app.get("/api/products").await;
    assert_eq!(
        list["total"], 0,
        "a rejected file must not be half-imported"
    );

    let (status, body) = app.import(b"Handle,Title\nx,y\n").await;
    assert_eq!(
        (
            status,
            body["error"]["details"]["errors"][0]["line"].as_u64()
        ),
        (422, Some(1))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn search_ranks_by_title_then_other_fields() {
    let cluster = PgCluster::start();
    let app = TestApp::spawn(config(&cluster)).await;
    assert_eq!(app.import(CATALOG).await.0, 200);

    let (status, body) = app.get("/api/search?q=silk&limit=100").await;
    assert_eq!(status, 200);
    let results = body["results"].as_array().unwrap();
    assert_eq!(body["total"].as_u64().unwrap() as usize, results.len());
    // Every product with silk in title, category or fabric is found.
    let expected = common::silk_products();
    let mut found: Vec<&str> = results
        .iter()
        .map(|r| r["handle"].as_str().unwrap())
        .collect();
    found.sort_unstable();
    assert_eq!(found, expected);
    // Scores never increase down the list, and a title match comes before any product without one.
    let scores: Vec<u64> = results
        .iter()
        .map(|r| r["score"].as_u64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let in_title: Vec<bool> = results
        .iter()
        .map(|r| r["title"].as_str().unwrap().to_lowercase().contains("silk"))
        .collect();
    let first_without = in_title.iter().position(|t| !t).unwrap();
    assert!(in_title[..first_without].iter().all(|t| *t));
    assert!(
        in_title[first_without..].iter().all(|t| !t),
        "title matches must rank first: {in_title:?}"
    );

    // More matched words rank higher: red silk wedding puts the crimson bridal saree first.
    let (_, body) = app.get("/api/search?q=red%20silk%20wedding").await;
    assert_eq!(
        body["results"][0]["handle"], "crimson-kanchi-bride",
        "{body}"
    );

    let (_, body) = app.get("/api/search?q=velvet").await;
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["fabric"] == "Velvet" || r["title"].as_str().unwrap().contains("Velvet"))
    );
    assert!(body["total"].as_u64().unwrap() >= 5);

    let (status, body) = app.get("/api/search?q=%20%20").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("missing_query"))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_search_cache_hits_and_the_admin_flush_empties_it() {
    let cluster = PgCluster::start();
    let app = TestApp::spawn(config(&cluster)).await;
    assert_eq!(app.import(CATALOG).await.0, 200);
    let cache =
        |response: &reqwest::Response| response.headers()["x-cache"].to_str().unwrap().to_owned();

    let first = app
        .http
        .get(app.at("/api/search?q=Silk"))
        .send()
        .await
        .unwrap();
    assert_eq!(cache(&first), "miss");
    let first_body = first.text().await.unwrap();
    let second = app
        .http
        .get(app.at("/api/search?q=silk"))
        .send()
        .await
        .unwrap();
    assert_eq!(cache(&second), "hit", "the same words are the same query");
    assert_eq!(second.text().await.unwrap(), first_body);

    let unauthorized = app
        .http
        .post(app.at("/api/admin/search/cache/flush"))
        .send()
        .await
        .unwrap();
    let (status, body) = read(unauthorized).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );

    let (status, body) = read(
        app.admin(Method::POST, "/api/admin/search/cache/flush")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["flushed"].as_u64().unwrap() >= 1);
    let third = app
        .http
        .get(app.at("/api/search?q=silk"))
        .send()
        .await
        .unwrap();
    assert_eq!(cache(&third), "miss");

    // A catalog change also empties the cache and is visible at once.
    let (status, _) = read(
        app.admin(Method::PATCH, "/api/admin/products/mustard-soft-silk/stock")
            .json(&json!({"stock": 0}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let fourth = app
        .http
        .get(app.at("/api/search?q=silk&limit=100"))
        .send()
        .await
        .unwrap();
    assert_eq!(cache(&fourth), "miss");
    let body: serde_json::Value = fourth.json().await.unwrap();
    let mustard = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["handle"] == "mustard-soft-silk")
        .unwrap();
    assert_eq!(mustard["stock"], 0);
    app.shutdown().await;
}

#[tokio::test]
async fn every_error_is_json_with_a_code() {
    let cluster = PgCluster::start();
    let app = TestApp::spawn(config(&cluster)).await;
    let (status, body) = app.get("/nowhere").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = read(app.http.delete(app.at("/api/health")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, body) = read(
        app.http
            .post(app.at("/api/auth/otp/request"))
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, body) = app.get("/api/products?limit=many").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, body) = read(
        app.http
            .get(app.at("/api/admin/audit"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    app.shutdown().await;
}
