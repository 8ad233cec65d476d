//! The payment gateway (Razorpay's API shape): order creation and payment signature checks.
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use crate::{config::Config, error::AppError, secret::Secret};

/// A client for the gateway's Orders API.
pub struct PaymentGateway {
    http: reqwest::Client,
    base_url: String,
    key_id: String,
    key_secret: Secret,
}

#[derive(Deserialize)]
struct GatewayOrder {
    id: String,
}

impl PaymentGateway {
    pub fn new(config: &Config, http: reqwest::Client) -> Self {
        Self {
            http,
            base_url: config.razorpay_base_url.trim_end_matches('/').to_owned(),
            key_id: config.razorpay_key_id.clone(),
            key_secret: config.razorpay_key_secret.clone(),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn configured(&self) -> Result<(), AppError> {
        if self.key_id.is_empty() || self.key_secret.is_empty() {
            Err(AppError::NotConfigured(
                "RAZORPAY_KEY_ID/RAZORPAY_KEY_SECRET",
            ))
        } else {
            Ok(())
        }
    }

    /// `POST /v1/orders`: returns the gateway's order id.
    pub async fn create_order(
        &self,
        amount_paise: i64,
        currency: &str,
        receipt: &str,
    ) -> Result<String, AppError> {
        self.configured()?;
        let response = self
            .http
            .post(format!("{}/v1/orders", self.base_url))
            .basic_auth(&self.key_id, Some(self.key_secret.expose()))
            .json(&json!({ "amount": amount_paise, "currency": currency, "receipt": receipt }))
            .send()
            .await
            .map_err(|error| {
                tracing::error!(error = %error.without_url(), "payment_gateway_error");
                AppError::PaymentGatewayUnavailable
            })?;
        let status = response.status();
        if !status.is_success() {
            tracing::error!(status = status.as_u16(), "payment_gateway_error");
            return Err(AppError::PaymentGatewayUnavailable);
        }
        let order: GatewayOrder = response.json().await.map_err(|_| {
            tracing::error!(error = "unreadable reply", "payment_gateway_error");
            AppError::PaymentGatewayUnavailable
        })?;
        Ok(order.id)
    }

    /// Checks `signature == hex(HMAC-SHA256(key_secret, order_id | payment_id))` in constant time.
    pub fn verify(
        &self,
        order_id: &str,
        payment_id: &str,
        signature: &str,
    ) -> Result<bool, AppError> {
        self.configured()?;
        Ok(verify_signature(
            &self.key_secret,
            order_id,
            payment_id,
            signature,
        ))
    }
}

/// The gateway's payment signature check.
pub fn verify_signature(
    key_secret: &Secret,
    order_id: &str,
    payment_id: &str,
    signature: &str,
) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key_secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(order_id.as_bytes());
    mac.update(b"|");
    mac.update(payment_id.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// The signature the gateway would send (for tests and test doubles).
pub fn sign(key_secret: &Secret, order_id: &str, payment_id: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key_secret.expose().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{order_id}|{payment_id}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_inputs() {
        let key = Secret::new("key_secret");
        let signature = sign(&key, "order_1", "pay_1");
        assert!(verify_signature(&key, "order_1", "pay_1", &signature));
        assert!(!verify_signature(&key, "order_1", "pay_2", &signature));
        assert!(!verify_signature(
            &Secret::new("other"),
            "order_1",
            "pay_1",
            &signature
        ));
        assert!(!verify_signature(&key, "order_1", "pay_1", "not hex"));
    }

    #[test]
    fn signature_matches_a_known_value() {
        // echo -n 'order_1|pay_1' | openssl dgst -sha256 -hmac key_secret
        let key = Secret::new("key_secret");
        assert_eq!(
            sign(&key, "order_1", "pay_1"),
            "dd0f51ec9e75790ad1f7cc8e1a83d12f0a58a9641601a3cffa5c695972543c82"
        );
    }
}
