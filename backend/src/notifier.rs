//! Delivery of one-time passwords: email over SMTP, `WhatsApp` through the Cloud API, or the log.
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::header::ContentType,
};
use serde_json::json;

use crate::{config::Config, otp::Destination, secret::Secret};

/// Why a code was not delivered (logged; the client sees `notification_failed`).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("smtp: {0}")]
    Smtp(String),
    #[error("whatsapp: {0}")]
    WhatsApp(String),
}

struct WhatsApp {
    http: reqwest::Client,
    url: String,
    token: Secret,
    template: String,
}

/// The channels this instance delivers through; a destination without a configured channel goes to the log.
pub struct Notifier {
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, String)>,
    whatsapp: Option<WhatsApp>,
    log_codes: bool,
}

/// Which channel carried a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Smtp,
    WhatsApp,
    Log,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp => "smtp",
            Self::WhatsApp => "whatsapp",
            Self::Log => "log",
        }
    }
}

impl Notifier {
    pub fn new(config: &Config, http: reqwest::Client) -> Result<Self, NotifyError> {
        let smtp = if config.smtp_url.is_empty() {
            None
        } else {
            let transport =
                AsyncSmtpTransport::<Tokio1Executor>::from_url(config.smtp_url.expose())
                    .map_err(|_| {
                        NotifyError::Smtp(
                            "`SMTP_URL` is not a valid smtp:// or smtps:// URL".into(),
                        )
                    })?
                    .timeout(Some(config.http_timeout()))
                    .build();
            Some((transport, config.smtp_from.clone()))
        };
        let whatsapp = (!config.whatsapp_phone_number_id.is_empty()
            && !config.whatsapp_token.is_empty())
        .then(|| WhatsApp {
            http,
            url: format!(
                "{}/{}/messages",
                config.whatsapp_api_url.trim_end_matches('/'),
                config.whatsapp_phone_number_id
            ),
            token: config.whatsapp_token.clone(),
            template: config.whatsapp_template.clone(),
        });
        Ok(Self {
            smtp,
            whatsapp,
            log_codes: config.otp_log_codes,
        })
    }

    /// Sends `code` to `destination`; returns the channel used.
    pub async fn send_code(
        &self,
        destination: &Destination,
        code: &str,
        ttl_s: u64,
    ) -> Result<Channel, NotifyError> {
        match (destination, &self.smtp, &self.whatsapp) {
            (Destination::Email(email), Some((transport, from)), _) => {
                let message = Message::builder()
                    .from(from.parse().map_err(|_| NotifyError::Address("`SMTP_FROM`".into()))?)
                    .to(email.parse().map_err(|_| NotifyError::Address("recipient".into()))?)
                    .subject("Your Vaibava login code")
                    .header(ContentType::TEXT_PLAIN)
                    .body(format!(
                        "Your login code is {code}. It expires in {} minutes.\n\nIf you did not ask for it, ignore this email.\n",
                        ttl_s.div_ceil(60)
                    ))
                    .map_err(|e| NotifyError::Smtp(e.to_string()))?;
                transport
                    .send(message)
                    .await
                    .map_err(|e| NotifyError::Smtp(e.to_string()))?;
                Ok(Channel::Smtp)
            }
            (Destination::Phone(number), _, Some(whatsapp)) => {
                let body = json!({
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": number.trim_start_matches('+'),
                    "type": "template",
                    "template": {
                        "name": whatsapp.template,
                        "language": { "code": "en" },
                        "components": [
                            { "type": "body", "parameters": [ { "type": "text", "text": code } ] },
                            { "type": "button", "sub_type": "url", "index": "0",
                              "parameters": [ { "type": "text", "text": code } ] }
                        ]
                    }
                });
                let response = whatsapp
                    .http
                    .post(&whatsapp.url)
                    .bearer_auth(whatsapp.token.expose())
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| NotifyError::WhatsApp(e.without_url().to_string()))?;
                let status = response.status();
                if !status.is_success() {
                    return Err(NotifyError::WhatsApp(format!("status {}", status.as_u16())));
                }
                let reply: serde_json::Value = response
                    .json()
                    .await
                    .map_err(|_| NotifyError::WhatsApp("unreadable reply".into()))?;
                if reply["messages"][0]["id"].as_str().is_none() {
                    return Err(NotifyError::WhatsApp("reply without a message id".into()));
                }
                Ok(Channel::WhatsApp)
            }
            _ => {
                if self.log_codes {
                    tracing::info!(destination = %destination.masked(), code, "otp_logged");
                } else {
                    tracing::info!(destination = %destination.masked(), "otp_logged");
                }
                Ok(Channel::Log)
            }
        }
    }
}
