//! The gateway's own endpoints. Every other path belongs to the origin.

/// The OAuth redirect URI path (registered at the provider as `PUBLIC_URL` + this).
pub const CALLBACK: &str = "/auth/callback";
/// Starts a sign-in explicitly: `/auth/login?rd=/path`.
pub const LOGIN: &str = "/auth/login";
/// GET shows a confirmation page, POST signs out.
pub const LOGOUT: &str = "/auth/logout";
/// Where the provider POSTs logout tokens (register it as the client's
/// `backchannel_logout_uri`).
pub const BACKCHANNEL_LOGOUT: &str = "/auth/backchannel-logout";
/// Where the provider ends sessions through the browser (OpenID Connect Front-Channel Logout;
/// register `PUBLIC_URL` + this as the client's front-channel logout URL).
pub const FRONTCHANNEL_LOGOUT: &str = "/auth/frontchannel-logout";
/// Entra administrator consent: starts the round trip, and is its redirect URI (register
/// `PUBLIC_URL` + this at the provider).
pub const ADMIN_CONSENT: &str = "/auth/admin-consent";
/// Liveness and configuration check.
pub const HEALTH: &str = "/auth/health";
/// The signed-in user, as JSON, for single-page apps (`401` JSON when signed out).
pub const ME: &str = "/auth/me";
/// The public keys of user assertions (only when `ASSERTION_SIGNING_KEY` is set; otherwise
/// the path belongs to the origin).
pub const ASSERTION_JWKS: &str = "/.well-known/jwks.json";
