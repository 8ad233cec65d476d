//! The HTTP routes, one module per area.
pub mod admin;
pub mod auth;
pub mod catalog;
pub mod health;
pub mod orders;
pub mod search;
pub mod shipping;
