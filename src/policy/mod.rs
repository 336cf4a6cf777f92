//! Routes: which paths need what (public, a browser session, a bearer token, either), where
//! they go, and which scopes, roles, groups or tenants a caller must have.
//!
//! Matching is on a normalised path (unreserved percent-escapes decoded, so `/%61pi/` is
//! `/api/`), by the longest prefix, on segment boundaries (`/api` matches `/api` and `/api/x`,
//! not `/apix`). Paths with encoded slashes or backslashes are refused outright: origins
//! disagree on what they mean, which is how route checks get bypassed.

mod requirements;
mod routes;

pub use requirements::{Claims, Requirements, Unmet};
pub use routes::{AuthMode, Route, RouteTable, normalise_path, parse_routes};
