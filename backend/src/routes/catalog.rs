//! Public catalog reads: `GET /api/products`, `GET /api/products/{handle}`.
use axum::{
    Json,
    extract::{Path, State},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{catalog, error::AppError, extract::Query, product::Product, state::AppState};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    category: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, AppError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let offset = query.offset.unwrap_or(0).max(0);
    let category = query.category.as_deref().filter(|c| !c.is_empty());
    let (total, products) = catalog::list(&state.db, category, limit, offset).await?;
    Ok(Json(
        json!({ "total": total, "limit": limit, "offset": offset, "products": products }),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    Path(handle): Path<String>,
) -> Result<Json<Product>, AppError> {
    Ok(Json(catalog::get(&state.db, &handle).await?))
}
