//! Checkout: `POST /api/orders`, `GET /api/orders/{id}`, `POST /api/payments/verify`, `GET /api/payments/mode`.
use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    audit::{self, Outcome},
    error::AppError,
    extract::Json as Body,
    otp::random_token,
    state::AppState,
};

const CURRENCY: &str = "INR";

#[derive(Debug, Deserialize)]
pub struct Line {
    handle: String,
    quantity: i32,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Customer {
    name: String,
    phone: String,
    #[serde(default)]
    email: String,
    address: String,
    city: String,
    #[serde(default)]
    state: String,
    pincode: String,
}

#[derive(Debug, Deserialize)]
pub struct NewOrder {
    items: Vec<Line>,
    customer: Customer,
}

fn validate(order: &NewOrder) -> Result<BTreeMap<String, i32>, AppError> {
    if order.items.is_empty() || order.items.len() > 50 {
        return Err(AppError::bad_request(
            "invalid_order",
            "an order has 1 to 50 items",
        ));
    }
    let mut lines = BTreeMap::new();
    for line in &order.items {
        if !(1..=10).contains(&line.quantity) {
            return Err(AppError::bad_request(
                "invalid_order",
                "`quantity` must be 1 to 10",
            ));
        }
        *lines.entry(line.handle.clone()).or_insert(0) += line.quantity;
    }
    let c = &order.customer;
    for (name, value) in [
        ("name", &c.name),
        ("phone", &c.phone),
        ("address", &c.address),
        ("city", &c.city),
        ("pincode", &c.pincode),
    ] {
        if value.trim().is_empty() || value.len() > 300 {
            return Err(AppError::bad_request(
                "invalid_order",
                format!("`customer.{name}` is required"),
            ));
        }
    }
    Ok(lines)
}

/// `POST /api/orders`: prices from the catalog, stock reserved; online through the gateway, or cash on
/// delivery while the payment fallback mode is on.
pub async fn create(
    State(state): State<AppState>,
    Body(order): Body<NewOrder>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let lines = validate(&order)?;
    let handles: Vec<&str> = lines.keys().map(String::as_str).collect();
    let mut client = state.db.client().await?;
    let rows = client
        .query(
            "SELECT handle, title, price FROM products WHERE handle = ANY($1)",
            &[&handles],
        )
        .await?;
    let mut priced = Vec::new();
    for (handle, quantity) in &lines {
        let row = rows
            .iter()
            .find(|row| row.get::<_, &str>(0) == handle)
            .ok_or_else(|| {
                AppError::bad_request("unknown_product", format!("no product `{handle}`"))
            })?;
        let title: String = row.try_get(1)?;
        let price: i64 = row.try_get(2)?;
        priced.push((handle.clone(), title, price, *quantity));
    }
    let amount_paise: i64 = priced
        .iter()
        .map(|(_, _, price, quantity)| price * 100 * i64::from(*quantity))
        .sum();
    let id = format!("ord_{}", &random_token()?[..20]);
    let cash_on_delivery = state.payment_fallback();
    let gateway_order_id = if cash_on_delivery {
        None
    } else {
        Some(
            state
                .gateway
                .create_order(amount_paise, CURRENCY, &id)
                .await?,
        )
    };
    let (status, mode) = if cash_on_delivery {
        ("confirmed", "cod")
    } else {
        ("pending_payment", "online")
    };
    let customer = serde_json::to_value(&order.customer).map_err(AppError::internal)?;
    let transaction = client.transaction().await?;
    for (handle, _, _, quantity) in &priced {
        let reserved = transaction
            .execute(
                "UPDATE products SET stock = stock - $2 WHERE handle = $1 AND stock >= $2",
                &[handle, quantity],
            )
            .await?;
        if reserved == 0 {
            return Err(AppError::Conflict(format!(
                "`{handle}` does not have enough stock"
            )));
        }
    }
    transaction
        .execute(
            "INSERT INTO orders (id, status, payment_mode, amount_paise, currency, gateway_order_id, customer)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&id, &status, &mode, &amount_paise, &CURRENCY, &gateway_order_id, &customer],
        )
        .await?;
    for (handle, title, price, quantity) in &priced {
        transaction
            .execute(
                "INSERT INTO order_items (order_id, handle, title, price, quantity) VALUES ($1, $2, $3, $4, $5)",
                &[&id, handle, title, price, quantity],
            )
            .await?;
    }
    transaction.commit().await?;
    tracing::info!(order_id = %id, payment_mode = mode, amount_paise, "order_created");
    let gateway = gateway_order_id.map(|order_id| {
        json!({ "provider": "razorpay", "key_id": state.gateway.key_id(), "order_id": order_id })
    });
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "order_id": id, "status": status, "payment_mode": mode,
            "amount_paise": amount_paise, "currency": CURRENCY, "gateway": gateway,
        })),
    ))
}

/// `GET /api/orders/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let client = state.db.client().await?;
    let row = client
        .query_opt("SELECT status, payment_mode, amount_paise, currency, shipment FROM orders WHERE id = $1", &[&id])
        .await?
        .ok_or(AppError::NotFound("order"))?;
    let items = client
        .query("SELECT handle, title, price, quantity FROM order_items WHERE order_id = $1 ORDER BY handle", &[&id])
        .await?
        .iter()
        .map(|item| {
            Ok(json!({
                "handle": item.try_get::<_, String>(0)?, "title": item.try_get::<_, String>(1)?,
                "price": item.try_get::<_, i64>(2)?, "quantity": item.try_get::<_, i32>(3)?,
            }))
        })
        .collect::<Result<Vec<Value>, tokio_postgres::Error>>()?;
    Ok(Json(json!({
        "order_id": id,
        "status": row.try_get::<_, String>(0)?,
        "payment_mode": row.try_get::<_, String>(1)?,
        "amount_paise": row.try_get::<_, i64>(2)?,
        "currency": row.try_get::<_, String>(3)?,
        "shipment": row.try_get::<_, Option<Value>>(4)?,
        "items": items,
    })))
}

#[derive(Debug, Deserialize)]
pub struct PaymentConfirmation {
    razorpay_order_id: String,
    razorpay_payment_id: String,
    razorpay_signature: String,
}

/// `POST /api/payments/verify`: the checkout's payment confirmation, checked against the key secret.
pub async fn verify_payment(
    State(state): State<AppState>,
    Body(body): Body<PaymentConfirmation>,
) -> Result<Json<Value>, AppError> {
    let valid = state.gateway.verify(
        &body.razorpay_order_id,
        &body.razorpay_payment_id,
        &body.razorpay_signature,
    )?;
    if !valid {
        tracing::error!(
            gateway_order_id = %body.razorpay_order_id,
            payment_id = %body.razorpay_payment_id,
            "payment_verification_failed"
        );
        audit::record(
            &state.db,
            "checkout",
            "payment_verify",
            &body.razorpay_order_id,
            Outcome::Failed,
            json!({ "payment_id": body.razorpay_payment_id }),
        )
        .await;
        return Err(AppError::PaymentVerificationFailed);
    }
    let client = state.db.client().await?;
    let row = client
        .query_opt(
            "UPDATE orders SET status = 'paid', gateway_payment_id = $2, updated_at = now()
             WHERE gateway_order_id = $1 AND (status = 'pending_payment' OR gateway_payment_id = $2)
             RETURNING id",
            &[&body.razorpay_order_id, &body.razorpay_payment_id],
        )
        .await?
        .ok_or(AppError::NotFound("order"))?;
    let id: String = row.try_get(0)?;
    tracing::info!(order_id = %id, "payment_verified");
    Ok(Json(json!({ "order_id": id, "status": "paid" })))
}

/// `GET /api/payments/mode`: whether checkout takes cash on delivery right now.
pub async fn payment_mode(State(state): State<AppState>) -> Json<Value> {
    let fallback = state.payment_fallback();
    Json(json!({ "payment_fallback": fallback, "mode": if fallback { "cod" } else { "online" } }))
}
