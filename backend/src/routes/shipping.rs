//! `POST /api/admin/orders/{id}/shipment`: hands a paid (or cash-on-delivery) order to Shiprocket.
use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde_json::{Value, json};

use crate::{
    audit::{self, Outcome},
    error::AppError,
    extract::Admin,
    request_log::RequestId,
    shiprocket::{ShipmentItem, ShipmentRequest},
    state::AppState,
};

pub async fn create_shipment(
    State(state): State<AppState>,
    admin: Admin,
    Extension(request): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let client = state.db.client().await?;
    let row = client
        .query_opt(
            "SELECT status, payment_mode, amount_paise, customer, shipment IS NOT NULL,
                    to_char(created_at AT TIME ZONE 'Asia/Kolkata', 'YYYY-MM-DD HH24:MI')
             FROM orders WHERE id = $1",
            &[&id],
        )
        .await?
        .ok_or(AppError::NotFound("order"))?;
    let status: String = row.try_get(0)?;
    let mode: String = row.try_get(1)?;
    let amount_paise: i64 = row.try_get(2)?;
    if row.try_get::<_, bool>(4)? {
        return Err(AppError::Conflict(
            "the order already has a shipment".into(),
        ));
    }
    if status != "paid" && status != "confirmed" {
        return Err(AppError::Conflict(format!(
            "an order in status `{status}` cannot ship"
        )));
    }
    let items = client
        .query("SELECT handle, title, price, quantity FROM order_items WHERE order_id = $1 ORDER BY handle", &[&id])
        .await?
        .iter()
        .map(|item| {
            Ok(ShipmentItem { sku: item.try_get(0)?, name: item.try_get(1)?, selling_price: item.try_get(2)?, units: item.try_get(3)? })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    let shipment_request = ShipmentRequest {
        order_id: id.clone(),
        order_date: row.try_get(5)?,
        customer: row.try_get(3)?,
        items,
        cash_on_delivery: mode == "cod",
        sub_total: amount_paise / 100,
    };
    let detail = |extra: Value| {
        let mut detail = json!({ "ip": admin.ip, "request_id": request.0 });
        if let (Some(target), Value::Object(extra)) = (detail.as_object_mut(), extra) {
            target.extend(extra);
        }
        detail
    };
    let shipment = match state.shiprocket.create_shipment(&shipment_request).await {
        Ok(shipment) => shipment,
        Err(error) => {
            audit::record(
                &state.db,
                "admin",
                "shipment_create",
                &id,
                Outcome::Failed,
                detail(json!({ "code": error.code() })),
            )
            .await;
            return Err(error);
        }
    };
    let shipment = serde_json::to_value(&shipment).map_err(AppError::internal)?;
    client
        .execute(
            "UPDATE orders SET shipment = $2, status = 'shipment_created', updated_at = now() WHERE id = $1",
            &[&id, &shipment],
        )
        .await?;
    audit::record(
        &state.db,
        "admin",
        "shipment_create",
        &id,
        Outcome::Done,
        detail(json!({ "shipment": shipment })),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "order_id": id, "status": "shipment_created", "shipment": shipment })),
    ))
}
