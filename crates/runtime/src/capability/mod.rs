//! Capabilities the host grants to plugins, one module each.

pub mod address;
pub mod binding;
pub mod hosts;
pub mod http;
pub mod oauth;
