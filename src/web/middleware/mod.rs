//! The layers every request passes through before a handler: the host check, who the client
//! is, the rate limit, Basic auth, cross-site protection, sessions, security headers and
//! compression. The route table in `web/mod.rs` says which group has which.

pub mod auth;
pub mod client;
pub(crate) mod compression;
pub mod csrf;
pub(crate) mod headers;
pub(crate) mod hosts;
pub mod rate_limit;
pub mod sessions;
