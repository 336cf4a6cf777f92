//! A route's signed user assertion for its origin (`assertion`, `assertion_header`,
//! `assertion_audience` route fields).

use super::AuthMode;
use super::Origin;

/// The header the assertion rides in unless the route names another.
pub const DEFAULT_ASSERTION_HEADER: &str = "x-edgeguard-assertion";

/// Where and for whom a route's assertion is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionRoute {
    /// Lower-case header name.
    pub header: String,
    /// The `aud` claim: the route's origin (`scheme://host[:port]`, or `binding:NAME`) unless
    /// configured.
    pub audience: String,
}

/// Headers an assertion may never replace.
const RESERVED: &[&str] = &["authorization", "cookie", "host", "content-length", "content-type", "transfer-encoding"];

/// The route's assertion settings, or the problem with them.
pub fn assertion_route(
    auth: AuthMode,
    enabled: bool,
    header: Option<&str>,
    audience: Option<&str>,
    origin: &Origin,
) -> Result<Option<AssertionRoute>, String> {
    if !enabled {
        return match header.or(audience) {
            Some(_) => Err("assertion_header and assertion_audience need \"assertion\": true".into()),
            None => Ok(None),
        };
    }
    if auth == AuthMode::Public {
        return Err("assertion needs a caller: use auth session, bearer or session_or_bearer".into());
    }
    let header = header.unwrap_or(DEFAULT_ASSERTION_HEADER).trim().to_ascii_lowercase();
    if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("assertion_header {header:?} is not a header name (letters, digits and -)"));
    }
    if RESERVED.contains(&header.as_str()) {
        return Err(format!("assertion_header {header:?} is reserved; pick another, e.g. X-Edgeguard-Assertion"));
    }
    let audience = match audience.map(str::trim) {
        Some("") => return Err("assertion_audience is empty".into()),
        Some(aud) => aud.to_owned(),
        None => match origin {
            Origin::Http(url) => url.origin().ascii_serialization(),
            Origin::Binding(name) => format!("{}{name}", super::BINDING_PREFIX),
        },
    };
    Ok(Some(AssertionRoute { header, audience }))
}
