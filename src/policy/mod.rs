//! Routes: which paths need what (public, a browser session, a bearer token, either), where
//! they go, and which scopes, roles, groups or tenants a caller must have.
//!
//! Matching is on the canonical path ([`normalise_path`]: unreserved percent-escapes decoded,
//! so `/%61pi/` is `/api/`), by the longest prefix, on segment boundaries (`/api` matches
//! `/api` and `/api/x`, not `/apix`), and the origin receives exactly that path. Paths origins
//! read differently (encoded slashes, `;` parameters, dot or empty segments, a route that
//! changes with letter case) are refused outright: that is how route checks get bypassed.

mod assertion;
mod claim_headers;
mod email;
mod origin;
mod origin_token;
mod path;
mod rate_limit;
mod requirements;
mod route_providers;
mod routes;
mod step_up;
mod websocket;

pub use assertion::{AssertionRoute, DEFAULT_ASSERTION_HEADER};
pub use claim_headers::{CLIENT_PRINCIPAL_MAX, ClaimFormat, ClaimHeader, DEFAULT_CLAIM_HEADER_MAX};
pub use email::{email_verified, forwardable_email};
pub use origin::{BINDING_PREFIX, Origin};
pub use origin_token::{OriginToken, TokenTarget};
pub use path::{PathError, normalise_path};
pub use rate_limit::{RateLimitKey, RouteRateLimit};
pub use requirements::{Claims, Requirements, Unmet};
pub use route_providers::RouteProviders;
pub use routes::{AuthMode, DpopMode, Route, RouteTable, matches_ignoring_case, parse_routes, parse_routes_for};
pub use step_up::{StepUp, StepUpUnmet};
pub use websocket::WebSocketMode;
