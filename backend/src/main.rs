//! The shop API.
fn main() {}
