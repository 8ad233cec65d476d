//! Checkout and shipping: orders through the payment gateway, signature checks, cash-on-delivery fallback,
#![allow(clippy::unwrap_used)]
//! and shipments through Shiprocket with token reuse.
mod common;

use std::sync::atomic::Ordering;

use common::{
    CATALOG, PgCluster, TestApp, config,
    doubles::{Gateway, KEY_ID, KEY_SECRET, SHIPROCKET_EMAIL, SHIPROCKET_PASSWORD, Shiprocket},
    read,
};
use reqwest::Method;
use serde_json::{Value, json};
use vl_backend::{payment::sign, secret::Secret};

struct Shop {
    app: TestApp,
    gateway: Gateway,
    shiprocket: Shiprocket,
    _cluster: PgCluster,
}

async fn shop(shiprocket_password: &str) -> Shop {
    let cluster = PgCluster::start();
    let (gateway, shiprocket) = (Gateway::default(), Shiprocket::default());
    let mut config = config(&cluster);
    config.razorpay_base_url = gateway.start().await;
    config.razorpay_key_id = KEY_ID.into();
    config.razorpay_key_secret = Secret::new(KEY_SECRET);
    config.shiprocket_base_url = shiprocket.start().await;
    config.shiprocket_email = SHIPROCKET_EMAIL.into();
    config.shiprocket_password = Secret::new(shiprocket_password);
    let app = TestApp::spawn(config).await;
    assert_eq!(app.import(CATALOG).await.0, 200);
    Shop {
        app,
        gateway,
        shiprocket,
        _cluster: cluster,
    }
}

fn order(handle: &str, quantity: i32) -> Value {
    json!({
        "items": [{"handle": handle, "quantity": quantity}],
        "customer": {"name": "Asha Rao", "phone": "9876543210", "email": "asha@shop.example",
                     "address": "12 Temple St", "city": "Chennai", "state": "Tamil Nadu", "pincode": "600001"}
    })
}

#[tokio::test]
async fn an_online_order_is_paid_with_a_valid_signature() {
    let shop = shop(SHIPROCKET_PASSWORD).await;
    let app = &shop.app;
    let (status, created) = app
        .post("/api/orders", &order("royal-blue-banarasi", 2))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["payment_mode"], "online");
    assert_eq!(created["status"], "pending_payment");
    assert_eq!(created["amount_paise"], 2 * 12500 * 100);
    assert_eq!(created["gateway"]["key_id"], KEY_ID);
    let gateway_order = created["gateway"]["order_id"].as_str().unwrap().to_owned();
    assert_eq!(shop.gateway.orders.load(Ordering::SeqCst), 1);
    let (_, product) = app.get("/api/products/royal-blue-banarasi").await;
    assert_eq!(product["stock"], 6, "stock is reserved");

    // A forged signature is refused and audited; the order stays unpaid.
    let forged = sign(&Secret::new("not-the-secret"), &gateway_order, "pay_1");
    let (status, body) = app
        .post("/api/payments/verify", &json!({"razorpay_order_id": gateway_order, "razorpay_payment_id": "pay_1", "razorpay_signature": forged}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("payment_verification_failed"))
    );
    let order_id = created["order_id"].as_str().unwrap();
    let (_, current) = app.get(&format!("/api/orders/{order_id}")).await;
    assert_eq!(current["status"], "pending_payment");
    let (_, audit) = read(
        app.admin(Method::GET, "/api/admin/audit")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "payment_verify" && e["outcome"] == "failed")
    );

    let signature = sign(&Secret::new(KEY_SECRET), &gateway_order, "pay_1");
    let (status, body) = app
        .post("/api/payments/verify", &json!({"razorpay_order_id": gateway_order, "razorpay_payment_id": "pay_1", "razorpay_signature": signature}))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("paid")),
        "{body}"
    );
    let (_, current) = app.get(&format!("/api/orders/{order_id}")).await;
    assert_eq!(current["status"], "paid");
    assert_eq!(current["items"][0]["quantity"], 2);
    shop.app.shutdown().await;
}

#[tokio::test]
async fn fallback_mode_takes_cash_on_delivery_when_the_gateway_fails() {
    let shop = shop(SHIPROCKET_PASSWORD).await;
    let app = &shop.app;
    shop.gateway.failing.store(true, Ordering::SeqCst);
    let (status, body) = app
        .post("/api/orders", &order("mustard-soft-silk", 1))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("payment_gateway_unavailable"))
    );
    let (_, product) = app.get("/api/products/mustard-soft-silk").await;
    assert_eq!(product["stock"], 12, "a failed order reserves nothing");

    let (status, body) = read(
        app.admin(Method::PUT, "/api/admin/payments/fallback")
            .json(&json!({"enabled": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["payment_fallback"].as_bool()),
        (200, Some(true))
    );
    let (_, mode) = app.get("/api/payments/mode").await;
    assert_eq!(mode["mode"], "cod");

    let (status, created) = app
        .post("/api/orders", &order("mustard-soft-silk", 1))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["payment_mode"].as_str(), created["status"].as_str()),
        (Some("cod"), Some("confirmed"))
    );
    assert!(created["gateway"].is_null());
    assert_eq!(
        shop.gateway.orders.load(Ordering::SeqCst),
        0,
        "the gateway is not contacted in fallback mode"
    );

    let (status, body) = app
        .post("/api/orders", &order("mustard-soft-silk", 10))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post("/api/orders", &order("mustard-soft-silk", 2))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "only 1 left"
    );
    shop.app.shutdown().await;
}

#[tokio::test]
async fn shipments_reuse_the_shiprocket_token_and_log_in_again_when_it_expires() {
    let shop = shop(SHIPROCKET_PASSWORD).await;
    let app = &shop.app;
    read(
        app.admin(Method::PUT, "/api/admin/payments/fallback")
            .json(&json!({"enabled": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mut ids = Vec::new();
    for handle in [
        "crimson-kanchi-bride",
        "royal-blue-banarasi",
        "mustard-soft-silk",
    ] {
        let (status, created) = app.post("/api/orders", &order(handle, 1)).await;
        assert_eq!(status, 201);
        ids.push(created["order_id"].as_str().unwrap().to_owned());
    }
    for id in &ids[..2] {
        let (status, body) = read(
            app.admin(Method::POST, &format!("/api/admin/orders/{id}/shipment"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert!(body["shipment"]["shipment_id"].is_number());
    }
    assert_eq!(
        shop.shiprocket.logins.load(Ordering::SeqCst),
        1,
        "the token is reused"
    );
    let sent = shop.shiprocket.shipments.lock().unwrap()[0].clone();
    assert_eq!(sent["order_id"], ids[0].as_str());
    assert_eq!(sent["payment_method"], "COD");
    assert_eq!(sent["billing_customer_name"], "Asha");
    assert_eq!(sent["billing_pincode"], "600001");
    assert_eq!(sent["order_items"][0]["sku"], "crimson-kanchi-bride");
    assert_eq!(sent["sub_total"], 28999);

    let (status, body) = read(
        app.admin(
            Method::POST,
            &format!("/api/admin/orders/{}/shipment", ids[0]),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "one shipment per order"
    );

    shop.shiprocket.expire_tokens();
    let (status, _) = read(
        app.admin(
            Method::POST,
            &format!("/api/admin/orders/{}/shipment", ids[2]),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(shop.shiprocket.logins.load(Ordering::SeqCst), 2);
    let (_, order) = app.get(&format!("/api/orders/{}", ids[2])).await;
    assert_eq!(order["status"], "shipment_created");
    shop.app.shutdown().await;
}

#[tokio::test]
async fn wrong_shiprocket_credentials_fail_the_shipment_cleanly() {
    let shop = shop("wrong-password").await;
    let app = &shop.app;
    read(
        app.admin(Method::PUT, "/api/admin/payments/fallback")
            .json(&json!({"enabled": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (_, created) = app
        .post("/api/orders", &order("crimson-kanchi-bride", 1))
        .await;
    let id = created["order_id"].as_str().unwrap();
    let (status, body) = read(
        app.admin(Method::POST, &format!("/api/admin/orders/{id}/shipment"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("shipping_auth_failed"))
    );
    assert!(!body.to_string().contains("wrong-password"));
    let (_, order) = app.get(&format!("/api/orders/{id}")).await;
    assert_eq!(order["status"], "confirmed");
    assert!(order["shipment"].is_null());
    shop.app.shutdown().await;
}
