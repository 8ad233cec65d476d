//! The Shiprocket client: token login, token reuse until expiry, shipment creation.
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{config::Config, error::AppError, secret::Secret};

/// A Shiprocket API client holding the current token.
pub struct Shiprocket {
    http: reqwest::Client,
    base_url: String,
    email: String,
    password: Secret,
    pickup_location: String,
    token_ttl: Duration,
    token: Mutex<Option<(Secret, Instant)>>,
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

/// One line of a shipment.
#[derive(Debug, Clone, Serialize)]
pub struct ShipmentItem {
    pub name: String,
    pub sku: String,
    pub units: i32,
    pub selling_price: i64,
}

/// What Shiprocket needs to create a shipment for an order.
#[derive(Debug, Clone)]
pub struct ShipmentRequest {
    pub order_id: String,
    pub order_date: String,
    pub customer: Value,
    pub items: Vec<ShipmentItem>,
    pub cash_on_delivery: bool,
    pub sub_total: i64,
}

/// Shiprocket's answer, kept on the order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shipment {
    pub order_id: Value,
    pub shipment_id: Value,
    #[serde(default)]
    pub status: Value,
    #[serde(default)]
    pub awb_code: Value,
}

enum Failure {
    Auth,
    Other,
}

impl Shiprocket {
    pub fn new(config: &Config, http: reqwest::Client) -> Self {
        Self {
            http,
            base_url: config.shiprocket_base_url.trim_end_matches('/').to_owned(),
            email: config.shiprocket_email.clone(),
            password: config.shiprocket_password.clone(),
            pickup_location: config.shiprocket_pickup_location.clone(),
            token_ttl: Duration::from_secs(config.shiprocket_token_ttl_s),
            token: Mutex::new(None),
        }
    }

    /// The current token, logging in when there is none or it has expired.
    async fn token(&self, renew: bool) -> Result<Secret, AppError> {
        if self.email.is_empty() || self.password.is_empty() {
            return Err(AppError::NotConfigured(
                "SHIPROCKET_EMAIL/SHIPROCKET_PASSWORD",
            ));
        }
        let mut token = self.token.lock().await;
        if let Some((value, issued)) = token.as_ref()
            && !renew
            && issued.elapsed() < self.token_ttl
        {
            return Ok(value.clone());
        }
        let response = self
            .http
            .post(format!("{}/v1/external/auth/login", self.base_url))
            .json(&json!({ "email": self.email, "password": self.password.expose() }))
            .send()
            .await
            .map_err(|error| {
                tracing::error!(error = %error.without_url(), "shiprocket_error");
                AppError::ShippingUnavailable
            })?;
        let status = response.status();
        if status.is_client_error() {
            *token = None;
            tracing::error!(status = status.as_u16(), "shiprocket_auth_error");
            return Err(AppError::ShippingAuthFailed);
        }
        if !status.is_success() {
            tracing::error!(status = status.as_u16(), "shiprocket_error");
            return Err(AppError::ShippingUnavailable);
        }
        let login: Login = response.json().await.map_err(|_| {
            tracing::error!(
                error = "login reply without a token",
                "shiprocket_auth_error"
            );
            AppError::ShippingAuthFailed
        })?;
        let value = Secret::new(login.token);
        *token = Some((value.clone(), Instant::now()));
        tracing::info!("shiprocket_login");
        Ok(value)
    }

    /// `POST /v1/external/orders/create/adhoc`; on 401 logs in again once.
    pub async fn create_shipment(&self, request: &ShipmentRequest) -> Result<Shipment, AppError> {
        let body = self.order_body(request);
        let token = self.token(false).await?;
        match self.post_order(&token, &body).await {
            Err(Failure::Auth) => {
                let token = self.token(true).await?;
                self.post_order(&token, &body)
                    .await
                    .map_err(|failure| match failure {
                        Failure::Auth => {
                            tracing::error!(status = 401, "shiprocket_auth_error");
                            AppError::ShippingAuthFailed
                        }
                        Failure::Other => AppError::ShippingUnavailable,
                    })
            }
            Err(Failure::Other) => Err(AppError::ShippingUnavailable),
            Ok(shipment) => Ok(shipment),
        }
    }

    async fn post_order(&self, token: &Secret, body: &Value) -> Result<Shipment, Failure> {
        let response = self
            .http
            .post(format!("{}/v1/external/orders/create/adhoc", self.base_url))
            .bearer_auth(token.expose())
            .json(body)
            .send()
            .await
            .map_err(|error| {
                tracing::error!(error = %error.without_url(), "shiprocket_error");
                Failure::Other
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Failure::Auth);
        }
        if !status.is_success() {
            tracing::error!(status = status.as_u16(), "shiprocket_error");
            return Err(Failure::Other);
        }
        response.json().await.map_err(|_| {
            tracing::error!(error = "unreadable reply", "shiprocket_error");
            Failure::Other
        })
    }

    fn order_body(&self, request: &ShipmentRequest) -> Value {
        let customer = &request.customer;
        let text = |key: &str| customer[key].as_str().unwrap_or_default().to_owned();
        let name = text("name");
        let (first, last) = name.split_once(' ').unwrap_or((name.as_str(), ""));
        let units: i32 = request.items.iter().map(|i| i.units).sum();
        json!({
            "order_id": request.order_id,
            "order_date": request.order_date,
            "pickup_location": self.pickup_location,
            "billing_customer_name": first,
            "billing_last_name": last,
            "billing_address": text("address"),
            "billing_city": text("city"),
            "billing_pincode": text("pincode"),
            "billing_state": text("state"),
            "billing_country": "India",
            "billing_email": text("email"),
            "billing_phone": text("phone"),
            "shipping_is_billing": true,
            "order_items": request.items,
            "payment_method": if request.cash_on_delivery { "COD" } else { "Prepaid" },
            "sub_total": request.sub_total,
            "length": 30,
            "breadth": 25,
            "height": 5,
            "weight": f64::from(units.max(1)) * 0.5,
        })
    }
}
