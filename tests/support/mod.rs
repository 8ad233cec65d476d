//! Shared helpers for the integration tests.

#![allow(dead_code, unreachable_pub)]

pub mod keepalive;
pub mod load;
pub mod pebble;
pub mod peer;
pub mod project;
pub mod source;
pub mod ssh;
pub mod sshd;
pub mod test;
pub mod warm;
