//! One-time passwords: where they go, how they are made, and how they are kept (hashed, never plain).
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{error::AppError, secret::Secret};

/// Where a code is sent: a phone number (`WhatsApp`) or an email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Phone(String),
    Email(String),
}

impl Destination {
    /// From a request's `phone` or `email` (exactly one of them), normalised.
    pub fn from_parts(phone: Option<&str>, email: Option<&str>) -> Result<Self, AppError> {
        match (
            phone.map(str::trim).filter(|p| !p.is_empty()),
            email.map(str::trim).filter(|e| !e.is_empty()),
        ) {
            (Some(phone), None) => Self::phone(phone),
            (None, Some(email)) => Self::email(email),
            _ => Err(AppError::bad_request(
                "invalid_destination",
                "give exactly one of `phone` or `email`",
            )),
        }
    }

    fn phone(raw: &str) -> Result<Self, AppError> {
        let digits: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let number = digits.strip_prefix('+').unwrap_or(&digits);
        if (8..=15).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self::Phone(format!("+{number}")))
        } else {
            Err(AppError::bad_request(
                "invalid_destination",
                "`phone` must be 8 to 15 digits",
            ))
        }
    }

    fn email(raw: &str) -> Result<Self, AppError> {
        let email = raw.to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(char::is_whitespace)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.contains('@')
                    && !domain.starts_with('.')
            });
        if valid {
            Ok(Self::Email(email))
        } else {
            Err(AppError::bad_request(
                "invalid_destination",
                "`email` is not an email address",
            ))
        }
    }

    /// The stored form: `phone:+91…` or `email:…`.
    pub fn key(&self) -> String {
        match self {
            Self::Phone(number) => format!("phone:{number}"),
            Self::Email(email) => format!("email:{email}"),
        }
    }

    /// A form safe for logs: most of the number or address hidden.
    pub fn masked(&self) -> String {
        match self {
            Self::Phone(number) => {
                let tail: String = number
                    .chars()
                    .rev()
                    .take(2)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!("phone:***{tail}")
            }
            Self::Email(email) => match email.split_once('@') {
                Some((local, domain)) => {
                    format!("email:{}***@{domain}", local.chars().next().unwrap_or('*'))
                }
                None => "email:***".into(),
            },
        }
    }
}

/// A fresh six-digit code from the operating system's random source.
pub fn generate_code() -> Result<String, AppError> {
    loop {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).map_err(AppError::internal)?;
        let n = u32::from_le_bytes(bytes);
        // Reject the top sliver so every code is equally likely.
        if n < u32::MAX - (u32::MAX % 1_000_000) {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// `hex(HMAC-SHA256(key, destination | code))`: what is stored instead of the code.
pub fn hash_code(key: &Secret, destination: &Destination, code: &str) -> Result<String, AppError> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).map_err(AppError::internal)?;
    mac.update(destination.key().as_bytes());
    mac.update(b"|");
    mac.update(code.trim().as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// A random token of 32 bytes, hex encoded.
pub fn random_token() -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(AppError::internal)?;
    Ok(hex::encode(bytes))
}

/// What is stored for a session token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn destinations_normalise() {
        assert_eq!(
            Destination::from_parts(Some("+91 98765-43210"), None)
                .unwrap()
                .key(),
            "phone:+919876543210"
        );
        assert_eq!(
            Destination::from_parts(None, Some(" A@Shop.Example "))
                .unwrap()
                .key(),
            "email:a@shop.example"
        );
        assert!(Destination::from_parts(Some("12"), None).is_err());
        assert!(Destination::from_parts(Some("+919876543210"), Some("a@b.c")).is_err());
        assert!(Destination::from_parts(None, Some("nobody")).is_err());
        assert_eq!(
            Destination::Phone("+919876543210".into()).masked(),
            "phone:***10"
        );
    }

    #[test]
    fn codes_are_six_digits_and_hashes_depend_on_everything() {
        let code = generate_code().unwrap();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let key = Secret::new("k");
        let to = Destination::Phone("+911234567890".into());
        let hash = hash_code(&key, &to, "123456").unwrap();
        assert_ne!(hash, hash_code(&key, &to, "123457").unwrap());
        assert_ne!(
            hash,
            hash_code(&Secret::new("other"), &to, "123456").unwrap()
        );
        assert!(!hash.contains("123456"));
    }
}
