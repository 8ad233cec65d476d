//! Catalog storage: reads, the all-or-nothing import, deletes and stock updates.
use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;

use crate::{database::Database, error::AppError, product::Product, search::SearchIndex};

/// What an import did.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    pub imported: usize,
    pub created: usize,
    pub updated: usize,
}

/// A price the import would change (refused in safe mode).
#[derive(Debug, Serialize)]
pub struct PriceChange {
    pub handle: String,
    pub current: i64,
    pub proposed: i64,
}

pub async fn all(db: &Database) -> Result<Vec<Product>, AppError> {
    let client = db.client().await?;
    let sql = format!("SELECT {} FROM products ORDER BY handle", Product::COLUMNS);
    let rows = client.query(&sql, &[]).await?;
    rows.iter()
        .map(Product::from_row)
        .collect::<Result<_, _>>()
        .map_err(AppError::from)
}

pub async fn list(
    db: &Database,
    category: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<Product>), AppError> {
    let client = db.client().await?;
    let sql = format!(
        "SELECT {}, count(*) OVER () FROM products WHERE ($1::text IS NULL OR category = $1) \
         ORDER BY handle LIMIT $2 OFFSET $3",
        Product::COLUMNS
    );
    let rows = client.query(&sql, &[&category, &limit, &offset]).await?;
    let total = if let Some(row) = rows.first() {
        row.try_get(19)?
    } else {
        let row = client
            .query_one(
                "SELECT count(*) FROM products WHERE ($1::text IS NULL OR category = $1)",
                &[&category],
            )
            .await?;
        row.try_get(0)?
    };
    let products = rows
        .iter()
        .map(Product::from_row)
        .collect::<Result<_, _>>()?;
    Ok((total, products))
}

pub async fn get(db: &Database, handle: &str) -> Result<Product, AppError> {
    let client = db.client().await?;
    let sql = format!(
        "SELECT {} FROM products WHERE handle = $1",
        Product::COLUMNS
    );
    let row = client
        .query_opt(&sql, &[&handle])
        .await?
        .ok_or(AppError::NotFound("product"))?;
    Ok(Product::from_row(&row)?)
}

/// Prices in `products` that differ from the stored ones.
pub async fn price_changes(
    db: &Database,
    products: &[Product],
) -> Result<Vec<PriceChange>, AppError> {
    let client = db.client().await?;
    let handles: Vec<&str> = products.iter().map(|p| p.handle.as_str()).collect();
    let rows = client
        .query(
            "SELECT handle, price FROM products WHERE handle = ANY($1)",
            &[&handles],
        )
        .await?;
    let current: HashMap<String, i64> = rows
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()?;
    Ok(products
        .iter()
        .filter_map(|p| {
            let old = *current.get(&p.handle)?;
            (old != p.price).then(|| PriceChange {
                handle: p.handle.clone(),
                current: old,
                proposed: p.price,
            })
        })
        .collect())
}

/// Inserts or updates every product in one transaction.
pub async fn import(db: &Database, products: &[Product]) -> Result<ImportSummary, AppError> {
    let mut client = db.client().await?;
    let transaction = client.transaction().await?;
    let sql = format!(
        "INSERT INTO products ({}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)
         ON CONFLICT (handle) DO UPDATE SET title = EXCLUDED.title, category = EXCLUDED.category,
           department = EXCLUDED.department, price = EXCLUDED.price, stock = EXCLUDED.stock,
           image_url = EXCLUDED.image_url, fabric = EXCLUDED.fabric, occasion = EXCLUDED.occasion,
           color = EXCLUDED.color, work_type = EXCLUDED.work_type, dispatch_time = EXCLUDED.dispatch_time,
           return_eligible = EXCLUDED.return_eligible, description = EXCLUDED.description,
           seo_title = EXCLUDED.seo_title, seo_description = EXCLUDED.seo_description,
           hero_prompt = EXCLUDED.hero_prompt, detail_prompt = EXCLUDED.detail_prompt,
           lifestyle_prompt = EXCLUDED.lifestyle_prompt, updated_at = now()
         RETURNING (xmax = 0)",
        Product::COLUMNS
    );
    let statement = transaction.prepare(&sql).await?;
    let mut created = 0;
    for p in products {
        let row = transaction
            .query_one(
                &statement,
                &[
                    &p.handle,
                    &p.title,
                    &p.category,
                    &p.department,
                    &p.price,
                    &p.stock,
                    &p.image_url,
                    &p.fabric,
                    &p.occasion,
                    &p.color,
                    &p.work_type,
                    &p.dispatch_time,
                    &p.return_eligible,
                    &p.description,
                    &p.seo_title,
                    &p.seo_description,
                    &p.hero_prompt,
                    &p.detail_prompt,
                    &p.lifestyle_prompt,
                ],
            )
            .await?;
        if row.try_get::<_, bool>(0)? {
            created += 1;
        }
    }
    transaction.commit().await?;
    Ok(ImportSummary {
        imported: products.len(),
        created,
        updated: products.len() - created,
    })
}

/// Deletes the named products; returns the handles that existed.
pub async fn delete(db: &Database, handles: &[String]) -> Result<Vec<String>, AppError> {
    let client = db.client().await?;
    let rows = client
        .query(
            "DELETE FROM products WHERE handle = ANY($1) RETURNING handle",
            &[&handles],
        )
        .await?;
    rows.iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(AppError::from)
}

/// Deletes every product; returns how many there were.
pub async fn wipe(db: &Database) -> Result<u64, AppError> {
    let client = db.client().await?;
    Ok(client.execute("DELETE FROM products", &[]).await?)
}

pub async fn set_stock(
    db: &Database,
    handle: &str,
    stock: i32,
) -> Result<serde_json::Value, AppError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            "UPDATE products SET stock = $2, updated_at = now() WHERE handle = $1 RETURNING handle, stock",
            &[&handle, &stock],
        )
        .await?
        .ok_or(AppError::NotFound("product"))?;
    let handle: String = row.try_get(0)?;
    let stock: i32 = row.try_get(1)?;
    Ok(json!({ "handle": handle, "stock": stock }))
}

/// Rebuilds the search index from the stored catalog.
pub async fn index(db: &Database) -> Result<SearchIndex, AppError> {
    Ok(SearchIndex::new(&all(db).await?))
}
