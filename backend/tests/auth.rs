//! OTP login: delivery over `WhatsApp` and SMTP, hashing at rest, attempts, expiry, and rate limits (429 with Retry-After).
#![allow(clippy::unwrap_used)]
mod common;

use common::{
    PgCluster, TestApp, config,
    doubles::{Smtp, WHATSAPP_PHONE_ID, WHATSAPP_TOKEN, WhatsApp},
    read,
};
use serde_json::json;
use vl_backend::secret::Secret;

async fn app_with_notifiers(cluster: &PgCluster, whatsapp: &WhatsApp, smtp: &Smtp) -> TestApp {
    let mut config = config(cluster);
    config.whatsapp_api_url = whatsapp.start().await;
    config.whatsapp_phone_number_id = WHATSAPP_PHONE_ID.into();
    config.whatsapp_token = Secret::new(WHATSAPP_TOKEN);
    config.smtp_url = Secret::new(smtp.start().await);
    config.auth_rate_limit_per_destination = 3;
    TestApp::spawn(config).await
}

#[tokio::test]
async fn phone_login_over_whatsapp() {
    let cluster = PgCluster::start();
    let (whatsapp, smtp) = (WhatsApp::default(), Smtp::default());
    let app = app_with_notifiers(&cluster, &whatsapp, &smtp).await;

    let (status, body) = app
        .post(
            "/api/auth/otp/request",
            &json!({"phone": "+91 98765 43210"}),
        )
        .await;
    assert_eq!(
        (status, body["channel"].as_str()),
        (202, Some("whatsapp")),
        "{body}"
    );
    let code = whatsapp.last_code();
    assert_eq!(whatsapp.messages.lock().unwrap()[0]["to"], "919876543210");

    // Stored hashed: the code appears nowhere in the table.
    let db = cluster.connect().await;
    let stored: String = db
        .query_one("SELECT code_hash FROM otp_codes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored.len(), 64);
    assert!(!stored.contains(&code));

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = app
        .post(
            "/api/auth/otp/verify",
            &json!({"phone": "+919876543210", "code": wrong}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("otp_invalid"))
    );

    let (status, body) = app
        .post(
            "/api/auth/otp/verify",
            &json!({"phone": "+919876543210", "code": code}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["subject"], "phone:+919876543210");

    // A code works once.
    let (status, _) = app
        .post(
            "/api/auth/otp/verify",
            &json!({"phone": "+919876543210", "code": code}),
        )
        .await;
    assert_eq!(status, 400);

    let (status, body) = read(
        app.http
            .get(app.at("/api/auth/session"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["subject"].as_str()),
        (200, Some("phone:+919876543210"))
    );
    let (status, _) = read(
        app.http
            .get(app.at("/api/auth/session"))
            .bearer_auth("forged")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    app.shutdown().await;
}

#[tokio::test]
async fn email_login_over_smtp_and_attempt_limit() {
    let cluster = PgCluster::start();
    let (whatsapp, smtp) = (WhatsApp::default(), Smtp::default());
    let app = app_with_notifiers(&cluster, &whatsapp, &smtp).await;

    let (status, body) = app
        .post(
            "/api/auth/otp/request",
            &json!({"email": "Asha@Shop.Example"}),
        )
        .await;
    assert_eq!(
        (status, body["channel"].as_str()),
        (202, Some("smtp")),
        "{body}"
    );
    let code = smtp.last_code();
    assert!(smtp.messages.lock().unwrap()[0].contains("To: asha@shop.example"));

    // Two wrong codes, below the limit of five, leave the code valid.
    let wrong = if code == "999999" { "888888" } else { "999999" };
    let mut last = String::new();
    for _ in 0..2 {
        let (status, body) = app
            .post(
                "/api/auth/otp/verify",
                &json!({"email": "asha@shop.example", "code": wrong}),
            )
            .await;
        assert_eq!(status, 400);
        last = body["error"]["code"].as_str().unwrap().to_owned();
    }
    assert_eq!(last, "otp_invalid");
    let (status, body) = app
        .post(
            "/api/auth/otp/verify",
            &json!({"email": "asha@shop.example", "code": code}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.shutdown().await;
}

#[tokio::test]
async fn wrong_codes_exhaust_the_attempts() {
    let cluster = PgCluster::start();
    let (whatsapp, smtp) = (WhatsApp::default(), Smtp::default());
    let mut config = config(&cluster);
    config.whatsapp_api_url = whatsapp.start().await;
    config.whatsapp_phone_number_id = WHATSAPP_PHONE_ID.into();
    config.whatsapp_token = Secret::new(WHATSAPP_TOKEN);
    config.smtp_url = Secret::new(smtp.start().await);
    config.otp_max_attempts = 2;
    let app = TestApp::spawn(config).await;
    assert_eq!(
        app.post("/api/auth/otp/request", &json!({"phone": "9876543210"}))
            .await
            .0,
        202
    );
    let code = whatsapp.last_code();
    let wrong = if code == "123123" { "321321" } else { "123123" };
    let (_, first) = app
        .post(
            "/api/auth/otp/verify",
            &json!({"phone": "9876543210", "code": wrong}),
        )
        .await;
    let (_, second) = app
        .post(
            "/api/auth/otp/verify",
            &json!({"phone": "9876543210", "code": wrong}),
        )
        .await;
    assert_eq!(first["error"]["code"], "otp_invalid");
    assert_eq!(second["error"]["code"], "otp_attempts_exceeded");
    let (status, _) = app
        .post(
            "/api/auth/otp/verify",
            &json!({"phone": "9876543210", "code": code}),
        )
        .await;
    assert_eq!(status, 400, "a voided code must not log in");
    app.shutdown().await;
}

#[tokio::test]
async fn expired_codes_are_refused() {
    let cluster = PgCluster::start();
    let (whatsapp, smtp) = (WhatsApp::default(), Smtp::default());
    let app = app_with_notifiers(&cluster, &whatsapp, &smtp).await;
    assert_eq!(
        app.post("/api/auth/otp/request", &json!({"phone": "9876543211"}))
            .await
            .0,
        202
    );
    let code = whatsapp.last_code();
    let db = cluster.connect().await;
    db.execute(
        "UPDATE otp_codes SET expires_at = now() - interval '1 second'",
        &[],
    )
    .await
    .unwrap();
    let (status, body) = app
        .post(
            "/api/auth/otp/verify",
            &json!({"phone": "9876543211", "code": code}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("otp_expired"))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn requests_past_the_per_destination_limit_get_429() {
    let cluster = PgCluster::start();
    let (whatsapp, smtp) = (WhatsApp::default(), Smtp::default());
    let app = app_with_notifiers(&cluster, &whatsapp, &smtp).await;
    for _ in 0..3 {
        assert_eq!(
            app.post(
                "/api/auth/otp/request",
                &json!({"email": "ravi@shop.example"})
            )
            .await
            .0,
            202
        );
    }
    let response = app
        .http
        .post(app.at("/api/auth/otp/request"))
        .json(&json!({"email": "ravi@shop.example"}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    let (status, body) = read(response).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(
        smtp.messages.lock().unwrap().len(),
        3,
        "no code is sent past the limit"
    );
    // Another address is not affected.
    assert_eq!(
        app.post(
            "/api/auth/otp/request",
            &json!({"email": "meena@shop.example"})
        )
        .await
        .0,
        202
    );
    app.shutdown().await;
}

#[tokio::test]
async fn requests_past_the_per_ip_limit_get_429_on_every_auth_route() {
    let cluster = PgCluster::start();
    let mut config = config(&cluster);
    config.auth_rate_limit_per_ip = 4;
    let app = TestApp::spawn(config).await;
    for i in 0..4 {
        let (status, _) = app
            .post(
                "/api/auth/otp/request",
                &json!({"phone": format!("90000000{i:02}")}),
            )
            .await;
        assert_eq!(status, 202);
    }
    for path in ["/api/auth/otp/request", "/api/auth/otp/verify"] {
        let response = app
            .http
            .post(app.at(path))
            .json(&json!({"phone": "9000000099", "code": "1"}))
            .send()
            .await
            .unwrap();
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(read(response).await.0, 429);
    }
    let (status, _) = read(
        app.http
            .get(app.at("/api/auth/session"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 429);
    // Behind nginx, each client address has its own budget.
    let response = app
        .http
        .post(app.at("/api/auth/otp/request"))
        .header("x-real-ip", "203.0.113.9")
        .json(&json!({"phone": "9000000098"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    app.shutdown().await;
}
