//! edgeguard: an OpenID Connect sign-in gateway for Cloudflare Workers.
//!
//! The core (everything but `edge`) is pure: it does no I/O and talks to the world through the
//! traits in [`ports`], so `cargo test` runs every protocol rule on the host. `edge` adapts those
//! ports to workers-rs and is the only runtime-specific module.

mod coalesce;
pub mod config;
pub mod dpop;
pub mod drive;
mod encoding;
pub mod entra;
pub mod error;
pub mod gateway;
pub mod json;
pub mod jwt;
pub mod oidc;
pub mod policy;
pub mod ports;
pub mod proxy;
pub mod session;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(test)]
mod testkit;
