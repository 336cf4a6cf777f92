//! The gateway's own endpoints. Every other path belongs to the origin.

/// The OAuth redirect URI path (registered at the provider as `PUBLIC_URL` + this).
pub const CALLBACK: &str = "/auth/callback";
/// Starts a sign-in explicitly: `/auth/login?rd=/path`.
pub const LOGIN: &str = "/auth/login";
/// GET shows a confirmation page, POST signs out.
pub const LOGOUT: &str = "/auth/logout";
/// Liveness and configuration check.
pub const HEALTH: &str = "/auth/health";
