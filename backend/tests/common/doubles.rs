//! Local stand-ins for the internet services, on 127.0.0.1, speaking their documented request and reply shapes:
#![allow(clippy::unwrap_used)]
//! the payment gateway's Orders API, Shiprocket's auth and ad-hoc order API, `WhatsApp` Cloud API messages, SMTP.
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn basic(headers: &HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let value = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?,
    )
    .ok()
}

/// The payment gateway: `POST /v1/orders` with basic auth `key_id:key_secret`.
#[derive(Clone, Default)]
pub struct Gateway {
    pub orders: Arc<AtomicUsize>,
    pub failing: Arc<AtomicBool>,
}

pub const KEY_ID: &str = "rzp_test_key";
pub const KEY_SECRET: &str = "rzp-test-secret-9d2e";

impl Gateway {
    pub async fn start(&self) -> String {
        async fn create(
            State(gateway): State<Gateway>,
            headers: HeaderMap,
            Json(body): Json<Value>,
        ) -> (StatusCode, Json<Value>) {
            if gateway.failing.load(Ordering::SeqCst) {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": {"code": "SERVER_ERROR"}})),
                );
            }
            if basic(&headers).as_deref() != Some(&format!("{KEY_ID}:{KEY_SECRET}")) {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(
                        json!({"error": {"code": "BAD_REQUEST_ERROR", "description": "Authentication failed"}}),
                    ),
                );
            }
            let n = gateway.orders.fetch_add(1, Ordering::SeqCst) + 1;
            (
                StatusCode::OK,
                Json(json!({
                    "id": format!("order_T{n:012}"), "entity": "order", "amount": body["amount"], "amount_paid": 0,
                    "amount_due": body["amount"], "currency": body["currency"], "receipt": body["receipt"],
                    "status": "created", "attempts": 0, "created_at": 1_700_000_000,
                })),
            )
        }
        serve(
            Router::new()
                .route("/v1/orders", post(create))
                .with_state(self.clone()),
        )
        .await
    }
}

/// Shiprocket: `POST /v1/external/auth/login` and `POST /v1/external/orders/create/adhoc` (bearer token).
#[derive(Clone, Default)]
pub struct Shiprocket {
    pub logins: Arc<AtomicUsize>,
    pub shipments: Arc<Mutex<Vec<Value>>>,
    pub tokens: Arc<Mutex<Vec<String>>>,
}

pub const SHIPROCKET_EMAIL: &str = "api@vaibava.example";
pub const SHIPROCKET_PASSWORD: &str = "shiprocket-pass-51b";

impl Shiprocket {
    pub async fn start(&self) -> String {
        async fn login(
            State(double): State<Shiprocket>,
            Json(body): Json<Value>,
        ) -> (StatusCode, Json<Value>) {
            if body["email"] != SHIPROCKET_EMAIL || body["password"] != SHIPROCKET_PASSWORD {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(
                        json!({"message": "Invalid email and password combination", "status_code": 400}),
                    ),
                );
            }
            let n = double.logins.fetch_add(1, Ordering::SeqCst) + 1;
            let token = format!("sr-token-{n}");
            double.tokens.lock().unwrap().push(token.clone());
            (
                StatusCode::OK,
                Json(
                    json!({"id": 1, "first_name": "API", "email": SHIPROCKET_EMAIL, "company_id": 7, "token": token}),
                ),
            )
        }
        async fn create(
            State(double): State<Shiprocket>,
            headers: HeaderMap,
            Json(body): Json<Value>,
        ) -> (StatusCode, Json<Value>) {
            let token = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let known = token.is_some_and(|t| double.tokens.lock().unwrap().iter().any(|k| k == t));
            if !known {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"message": "Token has expired", "status_code": 401})),
                );
            }
            let mut shipments = double.shipments.lock().unwrap();
            shipments.push(body);
            let n = shipments.len();
            (
                StatusCode::OK,
                Json(
                    json!({"order_id": 100 + n, "shipment_id": 200 + n, "status": "NEW", "status_code": 1,
                            "onboarding_completed_now": 0, "awb_code": "", "courier_company_id": "", "courier_name": ""}),
                ),
            )
        }
        let router = Router::new()
            .route("/v1/external/auth/login", post(login))
            .route("/v1/external/orders/create/adhoc", post(create))
            .with_state(self.clone());
        serve(router).await
    }

    /// Forgets every issued token, as when they expire.
    pub fn expire_tokens(&self) {
        self.tokens.lock().unwrap().clear();
    }
}

/// `WhatsApp` Cloud API: `POST /{version}/{phone_number_id}/messages` (bearer token).
#[derive(Clone, Default)]
pub struct WhatsApp {
    pub messages: Arc<Mutex<Vec<Value>>>,
}

pub const WHATSAPP_TOKEN: &str = "wa-token-7e3";
pub const WHATSAPP_PHONE_ID: &str = "1098765432";

impl WhatsApp {
    /// Returns the base URL including the API version.
    pub async fn start(&self) -> String {
        async fn send(
            State(double): State<WhatsApp>,
            Path((_version, phone_id)): Path<(String, String)>,
            headers: HeaderMap,
            Json(body): Json<Value>,
        ) -> (StatusCode, Json<Value>) {
            let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(&format!("Bearer {WHATSAPP_TOKEN}"));
            if !authorized || phone_id != WHATSAPP_PHONE_ID {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(
                        json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}),
                    ),
                );
            }
            if body["messaging_product"] != "whatsapp" || body["type"] != "template" {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": {"message": "Invalid parameter", "code": 100}})),
                );
            }
            let to = body["to"].clone();
            double.messages.lock().unwrap().push(body);
            (
                StatusCode::OK,
                Json(
                    json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": "wamid.TEST"}]}),
                ),
            )
        }
        let url = serve(
            Router::new()
                .route("/{version}/{phone_id}/messages", post(send))
                .with_state(self.clone()),
        )
        .await;
        format!("{url}/v21.0")
    }

    /// The code in the last message's body parameter.
    pub fn last_code(&self) -> String {
        let messages = self.messages.lock().unwrap();
        let last = messages.last().expect("no WhatsApp message was sent");
        last["template"]["components"][0]["parameters"][0]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A minimal SMTP server that accepts every message and keeps its data.
#[derive(Clone, Default)]
pub struct Smtp {
    pub messages: Arc<Mutex<Vec<String>>>,
}

impl Smtp {
    /// Returns an `smtp://` URL (no TLS).
    pub async fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = self.messages.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let messages = messages.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write
                        .write_all(b"220 localhost ESMTP test\r\n")
                        .await
                        .ok()?;
                    while let Some(line) = lines.next_line().await.ok()? {
                        let verb = line
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" => b"250-localhost\r\n250 8BITMIME\r\n",
                            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                            "DATA" => {
                                write
                                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                                    .await
                                    .ok()?;
                                let mut data = String::new();
                                while let Some(line) = lines.next_line().await.ok()? {
                                    if line == "." {
                                        break;
                                    }
                                    data.push_str(&line);
                                    data.push('\n');
                                }
                                messages.lock().unwrap().push(data);
                                b"250 OK queued\r\n"
                            }
                            "QUIT" => {
                                write.write_all(b"221 Bye\r\n").await.ok()?;
                                return Some(());
                            }
                            _ => b"502 Command not implemented\r\n",
                        };
                        write.write_all(reply).await.ok()?;
                    }
                    Some(())
                });
            }
        });
        format!("smtp://127.0.0.1:{port}")
    }

    /// The six-digit code in the last message.
    pub fn last_code(&self) -> String {
        let messages = self.messages.lock().unwrap();
        let last = messages.last().expect("no email was sent");
        let start = last
            .find("Your login code is ")
            .expect("no code in the email")
            + "Your login code is ".len();
        last[start..start + 6].to_owned()
    }
}
