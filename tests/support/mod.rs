//! Shared test harnesses.
#![allow(unreachable_pub, dead_code)]

pub mod project;
