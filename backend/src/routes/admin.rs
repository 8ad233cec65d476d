//! Admin routes (admin token required): catalog import and deletes, stock, search cache, payment mode, audit.
use axum::{
    Extension, Json,
    extract::{Path, State},
};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    audit::{self, Outcome},
    catalog, catalog_csv,
    error::AppError,
    extract::{Admin, Json as Body, Query},
    request_log::RequestId,
    state::AppState,
};

/// Writes an admin action to the audit log with who and which request.
async fn record(
    state: &AppState,
    admin: &Admin,
    request: &RequestId,
    action: &str,
    target: &str,
    outcome: Outcome,
    mut detail: Value,
) {
    detail["ip"] = json!(admin.ip);
    detail["request_id"] = json!(request.0);
    audit::record(&state.db, "admin", action, target, outcome, detail).await;
}

/// Refuses `action` in safe mode, auditing the refusal.
async fn refuse_in_safe_mode(
    state: &AppState,
    admin: &Admin,
    request: &RequestId,
    action: &str,
    target: &str,
    detail: Value,
) -> Result<(), AppError> {
    if !state.config.operator_safe_mode {
        return Ok(());
    }
    record(
        state,
        admin,
        request,
        action,
        target,
        Outcome::Refused,
        detail.clone(),
    )
    .await;
    tracing::warn!(action, target, "safe_mode_refused");
    let mut details = json!({ "action": action });
    if let Some(changes) = detail.get("price_changes") {
        details["price_changes"] = changes.clone();
    }
    Err(AppError::SafeMode(details))
}

/// `POST /api/admin/catalog/import` with the catalog CSV as the body.
pub async fn import(
    State(state): State<AppState>,
    admin: Admin,
    Extension(request): Extension<RequestId>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let body = body?;
    let products = match catalog_csv::parse(&body) {
        Ok(products) => products,
        Err(errors) => {
            let detail =
                json!({ "errors": errors.len(), "first_line": errors.first().map(|e| e.line) });
            record(
                &state,
                &admin,
                &request,
                "catalog_import",
                "",
                Outcome::Failed,
                detail,
            )
            .await;
            return Err(AppError::InvalidCatalog(json!({ "errors": errors })));
        }
    };
    let changes = catalog::price_changes(&state.db, &products).await?;
    if !changes.is_empty() {
        let detail = json!({ "rows": products.len(), "price_changes": changes });
        refuse_in_safe_mode(
            &state,
            &admin,
            &request,
            "catalog_import_price_change",
            "",
            detail,
        )
        .await?;
    }
    let summary = catalog::import(&state.db, &products).await?;
    state.reindex().await;
    let detail = json!({ "imported": summary.imported, "created": summary.created, "updated": summary.updated, "price_changes": changes.len() });
    record(
        &state,
        &admin,
        &request,
        "catalog_import",
        "",
        Outcome::Done,
        detail,
    )
    .await;
    Ok(Json(json!(summary)))
}

/// `DELETE /api/admin/products/{handle}`.
pub async fn delete_product(
    State(state): State<AppState>,
    admin: Admin,
    Extension(request): Extension<RequestId>,
    Path(handle): Path<String>,
) -> Result<Json<Value>, AppError> {
    refuse_in_safe_mode(
        &state,
        &admin,
        &request,
        "product_delete",
        &handle,
        json!({}),
    )
    .await?;
    let deleted = catalog::delete(&state.db, std::slice::from_ref(&handle)).await?;
    if deleted.is_empty() {
        return Err(AppError::NotFound("product"));
    }
    state.reindex().await;
    record(
        &state,
        &admin,
        &request,
        "product_delete",
        &handle,
        Outcome::Done,
        json!({}),
    )
    .await;
    Ok(Json(json!({ "deleted": deleted })))
}

#[derive(Debug, Deserialize)]
pub struct BulkDelete {
    handles: Vec<String>,
}

/// `POST /api/admin/products/bulk-delete` with `{"handles": [...]}`.
pub async fn bulk_delete(
    State(state): State<AppState>,
    admin: Admin,
    Extension(request): Extension<RequestId>,
    Body(body): Body<BulkDelete>,
) -> Result<Json<Value>, AppError> {
    let target = format!("{} products", body.handles.len());
    refuse_in_safe_mode(
        &state,
        &admin,
        &request,
        "product_bulk_delete",
        &target,
        json!({ "handles": body.handles }),
    )
    .await?;
    if body.handles.is_empty() || body.handles.len() > 1000 {
        return Err(AppError::bad_request(
            "invalid_body",
            "`handles` must list 1 to 1000 handles",
        ));
    }
    let deleted = catalog::delete(&state.db, &body.handles).await?;
    state.reindex().await;
    record(
        &state,
        &admin,
        &request,
        "product_bulk_delete",
        &target,
        Outcome::Done,
        json!({ "deleted": deleted }),
    )
    .await;
    Ok(Json(json!({ "deleted": deleted })))
}

/// `DELETE /api/admin/catalog`: removes every product.
pub async fn wipe(
    State(state): State<AppState>,
    admin: Admin,
    Extension(request): Extension<RequestId>,
) -> Result<Json<Value>, AppError> {
    refuse_in_safe_mode(
        &state,
        &admin,
        &request,
        "catalog_wipe",
        "catalog",
        json!({}),
    )
    .await?;
    let deleted = catalog::wipe(&state.db).await?;
    state.reindex().await;
    record(
        &state,
        &admin,
        &request,
        "catalog_wipe",
        "catalog",
        Outcome::Done,
        json!({ "deleted": deleted }),
    )
    .await;
    Ok(Json(json!({ "deleted": deleted })))
}

#[derive(Debug, Deserialize)]
pub struct StockUpdate {
    stock: i32,
}

/// `PATCH /api/admin/products/{handle}/stock` with `{"stock": n}` (allowed in safe mode).
pub async fn set_stock(
    State(state): State<AppState>,
    admin: Admin,
    Extension(request): Extension<RequestId>,
    Path(handle): Path<String>,
    Body(body): Body<StockUpdate>,
) -> Result<Json<Value>, AppError> {
    if body.stock < 0 {
        return Err(AppError::bad_request(
            "invalid_body",
            "`stock` must not be negative",
        ));
    }
    let updated = catalog::set_stock(&state.db, &handle, body.stock).await?;
    state.reindex().await;
    record(
        &state,
        &admin,
        &request,
        "stock_update",
        &handle,
        Outcome::Done,
        json!({ "stock": body.stock }),
    )
    .await;
    Ok(Json(updated))
}

/// `POST /api/admin/search/cache/flush`: empties the search cache and reloads the index.
pub async fn flush_search_cache(
    State(state): State<AppState>,
    admin: Admin,
    Extension(request): Extension<RequestId>,
) -> Result<Json<Value>, AppError> {
    let flushed = state.search.flush();
    state.reindex().await;
    tracing::info!(flushed, "search_cache_flushed");
    record(
        &state,
        &admin,
        &request,
        "search_cache_flush",
        "",
        Outcome::Done,
        json!({ "flushed": flushed }),
    )
    .await;
    Ok(Json(
        json!({ "flushed": flushed, "products": state.search.catalog_size() }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct FallbackMode {
    enabled: bool,
}

/// `PUT /api/admin/payments/fallback` with `{"enabled": bool}`: cash on delivery instead of the gateway.
pub async fn set_payment_fallback(
    State(state): State<AppState>,
    admin: Admin,
    Extension(request): Extension<RequestId>,
    Body(body): Body<FallbackMode>,
) -> Json<Value> {
    state.set_payment_fallback(body.enabled);
    tracing::warn!(enabled = body.enabled, "payment_fallback_mode_changed");
    record(
        &state,
        &admin,
        &request,
        "payment_fallback",
        "",
        Outcome::Done,
        json!({ "enabled": body.enabled }),
    )
    .await;
    Json(json!({ "payment_fallback": body.enabled }))
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
}

/// `GET /api/admin/audit?limit=`: the newest audit rows.
pub async fn audit_log(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, AppError> {
    let entries = audit::recent(&state.db, query.limit.unwrap_or(50).clamp(1, 500)).await?;
    Ok(Json(json!({ "entries": entries })))
}
