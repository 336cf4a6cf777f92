//! The OpenID Connect relying party, sans I/O: discovery, the authorization request, the
//! callback, the token endpoint and ID token validation. Requests are built and answers parsed
//! here; sending them is the caller's business through [`crate::ports::HttpClient`].

mod app_grants;
mod authorize;
mod callback;
mod client_auth;
mod discovery;
mod id_token;
mod logout;
mod provider;
mod refreshed;
mod token;

pub use app_grants::{AppTokenError, build_client_credentials_request, build_on_behalf_of_request};
pub use authorize::{build_authorize_url, pkce_challenge};
pub use callback::AuthorizationResponse;
pub use client_auth::{
    CLIENT_ASSERTION_LIFETIME_SECS, ClientAuthentication, JWT_BEARER_CLIENT_ASSERTION, client_assertion_claims,
};
pub use discovery::{DiscoveryError, ProviderMetadata, discovery_url};
pub use id_token::{IdTokenError, validate_id_token};
pub use logout::{
    BACKCHANNEL_LOGOUT_EVENT, LogoutRequest, build_end_session_url, build_revocation_request, validate_logout_token,
};
pub use provider::{ProviderError, ProviderState};
pub use refreshed::{ContinuityError, refreshed_identity};
pub use token::{Grant, TokenError, TokenResponse, build_token_request, parse_token_response};
