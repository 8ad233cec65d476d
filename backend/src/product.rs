//! A catalog product, with the fields of the shop's catalog CSV.
use serde::Serialize;
use tokio_postgres::Row;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub handle: String,
    pub title: String,
    pub category: String,
    pub department: String,
    /// Price in whole rupees.
    pub price: i64,
    pub stock: i32,
    pub image_url: String,
    pub fabric: String,
    pub occasion: String,
    pub color: String,
    pub work_type: String,
    pub dispatch_time: String,
    pub return_eligible: bool,
    pub description: String,
    pub seo_title: String,
    pub seo_description: String,
    pub hero_prompt: String,
    pub detail_prompt: String,
    pub lifestyle_prompt: String,
}

impl Product {
    /// The column list, in the order `from_row` reads it.
    pub const COLUMNS: &'static str = "handle, title, category, department, price, stock, image_url, fabric, \
        occasion, color, work_type, dispatch_time, return_eligible, description, seo_title, seo_description, \
        hero_prompt, detail_prompt, lifestyle_prompt";

    pub fn from_row(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            handle: row.try_get(0)?,
            title: row.try_get(1)?,
            category: row.try_get(2)?,
            department: row.try_get(3)?,
            price: row.try_get(4)?,
            stock: row.try_get(5)?,
            image_url: row.try_get(6)?,
            fabric: row.try_get(7)?,
            occasion: row.try_get(8)?,
            color: row.try_get(9)?,
            work_type: row.try_get(10)?,
            dispatch_time: row.try_get(11)?,
            return_eligible: row.try_get(12)?,
            description: row.try_get(13)?,
            seo_title: row.try_get(14)?,
            seo_description: row.try_get(15)?,
            hero_prompt: row.try_get(16)?,
            detail_prompt: row.try_get(17)?,
            lifestyle_prompt: row.try_get(18)?,
        })
    }
}
