//! The route table from the `ROUTES` setting.

use super::Requirements;
use super::assertion::{AssertionRoute, assertion_route};
use super::claim_headers::{ClaimHeader, parse_claim_headers};
use super::origin::Origin;
use super::origin_token::{OriginToken, TokenTarget, check_origin_token};
use super::path::PathError;
use super::rate_limit::{RouteRateLimit, check_rate_limit};
use super::route_providers::{self, RouteProviders};
use super::step_up::StepUp;
use super::websocket::{WebSocketMode, check_websocket};
use serde::Deserialize;
use url::Url;

/// How a route authenticates callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No authentication; identity headers are still stripped.
    Public,
    /// A browser session (sign-in redirect for navigations, 401 otherwise).
    Session,
    /// An `Authorization: Bearer` JWT access token.
    Bearer,
    /// A bearer token when one is presented, otherwise a session.
    SessionOrBearer,
}

/// Whether a bearer route takes DPoP-bound tokens only (RFC 9449).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpopMode {
    /// `Bearer` and `DPoP` both accepted; a DPoP-bound token still needs its proof.
    #[default]
    Allowed,
    /// Only `Authorization: DPoP` with a valid proof.
    Required,
}

/// One route, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: String,
    pub auth: AuthMode,
    /// Where matching requests go; `ORIGIN_URL` unless the route names another URL or a binding.
    pub origin: Origin,
    pub requirements: Requirements,
    /// Let CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) through
    /// without credentials, as browsers send none on them.
    pub cors_preflight: bool,
    /// Whether bearer tokens must be DPoP-bound here.
    pub dpop: DpopMode,
    /// The authentication strength or recency this route needs (step-up).
    pub step_up: StepUp,
    /// What the origin receives in `Authorization`.
    pub origin_token: OriginToken,
    /// The token to obtain for `origin_token` app and on_behalf_of.
    pub token_target: Option<TokenTarget>,
    /// A gateway-signed user assertion for the origin.
    pub assertion: Option<AssertionRoute>,
    /// Headers the origin receives from the caller's claims (`headers`).
    pub claim_headers: Vec<ClaimHeader>,
    /// Easy Auth's `X-MS-CLIENT-PRINCIPAL` headers for the origin (`client_principal`).
    pub client_principal: bool,
    /// The identity providers the route signs in with and takes bearer tokens from.
    pub providers: RouteProviders,
    /// Whether WebSocket upgrades go through, and how.
    pub websocket: WebSocketMode,
    /// A per-caller limit counted by a rate-limiting binding, after authentication.
    pub rate_limit: Option<RouteRateLimit>,
}

impl Route {
    /// Whether forwarding needs the caller's whole claim set (not only the identity fields).
    pub fn needs_claims(&self) -> bool {
        self.client_principal || !self.claim_headers.is_empty()
    }

    /// Whether bearer tokens are accepted here.
    pub fn takes_bearer(&self) -> bool {
        matches!(self.auth, AuthMode::Bearer | AuthMode::SessionOrBearer)
    }
}

/// Every field a route may carry, in README's order. Named in the problem for an unknown field,
/// because the flattened requirements keep serde from listing them itself.
pub const ROUTE_FIELDS: &[&str] = &[
    "prefix",
    "auth",
    "origin",
    "scopes",
    "roles",
    "groups",
    "tenants",
    "wids",
    "caller",
    "cors_preflight",
    "acr_values",
    "max_age",
    "dpop",
    "origin_token",
    "token_target",
    "assertion",
    "assertion_header",
    "assertion_audience",
    "headers",
    "client_principal",
    "provider",
    "providers",
    "websocket",
    "rate_limit",
];

/// The routes as written in `ROUTES`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    #[serde(default)]
    auth: Option<AuthMode>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    cors_preflight: bool,
    #[serde(default)]
    dpop: DpopMode,
    #[serde(default)]
    acr_values: Vec<String>,
    #[serde(default)]
    max_age: Option<u64>,
    #[serde(default)]
    origin_token: OriginToken,
    #[serde(default)]
    token_target: Option<TokenTarget>,
    #[serde(default)]
    assertion: bool,
    #[serde(default)]
    assertion_header: Option<String>,
    #[serde(default)]
    assertion_audience: Option<String>,
    #[serde(default)]
    headers: Option<serde_json::Value>,
    #[serde(default)]
    client_principal: bool,
    provider: Option<String>,
    #[serde(default)]
    providers: Option<Vec<String>>,
    #[serde(default)]
    websocket: WebSocketMode,
    #[serde(default)]
    rate_limit: Option<RouteRateLimit>,
    #[serde(flatten)]
    requirements: Requirements,
}

/// Every route, longest prefix first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// Every header any route maps from claims (lower case, once each): client copies are
    /// stripped from every request, whatever its route.
    claim_header_names: Vec<String>,
}

/// Parse `ROUTES` (a JSON array) for a deployment with one provider. Returns every problem
/// found, each prefixed with its place.
pub fn parse_routes(raw: &str, default_origin: Option<&Url>) -> Result<RouteTable, Vec<String>> {
    parse_routes_for(raw, default_origin, &[crate::config::DEFAULT_PROVIDER])
}

/// [`parse_routes`] with the providers' names (the default provider first), which routes may
/// name in `provider` and `providers`.
pub fn parse_routes_for(
    raw: &str,
    default_origin: Option<&Url>,
    provider_names: &[&str],
) -> Result<RouteTable, Vec<String>> {
    let raw_routes: Vec<serde_json::Value> =
        crate::json::decode(raw.as_bytes()).map_err(|e| vec![format!("is not a JSON array of routes ({e})")])?;
    let mut errors = Vec::new();
    let mut routes = Vec::new();
    for (i, value) in raw_routes.into_iter().enumerate() {
        let mut route: RawRoute = match serde_json::from_value(value) {
            Ok(route) => route,
            // A nested object's own unknown field comes with serde's list of its fields.
            Err(e) if e.to_string().starts_with("unknown field") && !e.to_string().contains("expected") => {
                errors.push(format!("route {i}: {e} (a route's fields: {})", ROUTE_FIELDS.join(", ")));
                continue;
            }
            Err(e) => {
                errors.push(format!("route {i}: {e}"));
                continue;
            }
        };
        match super::normalise_path(&route.prefix) {
            // Stored canonical, as request paths are matched canonical.
            Ok(canonical) => route.prefix = canonical,
            Err(_) => errors.push(format!(
                "route {i}: prefix {:?} must start with / and be a plain path (no //, . or .. segments, ; or %2F)",
                route.prefix
            )),
        }
        let origin = match (&route.origin, default_origin) {
            (Some(raw), _) => match Origin::parse(raw) {
                Ok(origin) => Some(origin),
                Err(problem) => {
                    errors.push(format!("route {i}: origin {raw:?} {problem}"));
                    None
                }
            },
            (None, Some(default)) => Some(Origin::Http(default.clone())),
            (None, None) => {
                errors.push(format!("route {i}: names no origin and ORIGIN_URL is not set"));
                None
            }
        };
        // Prefixes equal but for letter case would leave paths under them to the order of ROUTES
        // (and the one listed second unreachable).
        if routes.iter().any(|r: &Route| r.prefix.eq_ignore_ascii_case(&route.prefix)) {
            errors.push(format!("route {i}: prefix {:?} is listed twice (letter case aside)", route.prefix));
        }
        let auth = route.auth.unwrap_or(AuthMode::Session);
        if let Some(problem) = check_origin_token(auth, route.origin_token, route.token_target.as_ref()) {
            errors.push(format!("route {i}: {problem}"));
        }
        let problems = [
            check_websocket(auth, route.websocket),
            route.rate_limit.as_ref().and_then(|limit| check_rate_limit(auth, limit)),
        ];
        errors.extend(problems.into_iter().flatten().map(|problem| format!("route {i}: {problem}")));
        let assertion = origin.as_ref().map(|origin| {
            let (header, audience) = (route.assertion_header.as_deref(), route.assertion_audience.as_deref());
            assertion_route(auth, route.assertion, header, audience, origin)
        });
        let assertion = match assertion {
            Some(Err(problem)) => {
                errors.push(format!("route {i}: {problem}"));
                None
            }
            Some(Ok(assertion)) => assertion,
            None => None,
        };
        let (claim_headers, client_principal) = match route_claim_headers(&route, auth) {
            Ok(found) => found,
            Err(problems) => {
                errors.extend(problems.into_iter().map(|p| format!("route {i}: {p}")));
                (Vec::new(), false)
            }
        };
        if let Some(assertion) = &assertion
            && claim_headers.iter().any(|h| h.name == assertion.header)
        {
            errors.push(format!(
                "route {i}: header {:?} is both its assertion_header and mapped from a claim",
                assertion.header
            ));
        }
        let providers =
            route_providers::resolve(auth, route.provider.as_deref(), route.providers.as_deref(), provider_names)
                .unwrap_or_else(|problem| {
                    errors.push(format!("route {i}: {problem}"));
                    RouteProviders::default()
                });
        if let Some(origin) = origin {
            routes.push(Route {
                prefix: route.prefix,
                auth,
                origin,
                requirements: route.requirements,
                cors_preflight: route.cors_preflight,
                dpop: route.dpop,
                step_up: StepUp { acr_values: route.acr_values, max_age: route.max_age },
                origin_token: route.origin_token,
                token_target: route.token_target,
                assertion,
                claim_headers,
                client_principal,
                providers,
                websocket: route.websocket,
                rate_limit: route.rate_limit,
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Longest first. Unstable is enough (and 2–3 KB less wasm than a stable sort): two prefixes
    // of one length never match the same path, and case twins were refused above.
    routes.sort_unstable_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    let mut claim_header_names: Vec<String> = Vec::new();
    for header in routes.iter().flat_map(|r| &r.claim_headers) {
        if !claim_header_names.contains(&header.name) {
            claim_header_names.push(header.name.clone());
        }
    }
    Ok(RouteTable { routes, claim_header_names })
}

/// A route's `headers` and `client_principal`, which need a caller to take claims from.
fn route_claim_headers(route: &RawRoute, auth: AuthMode) -> Result<(Vec<ClaimHeader>, bool), Vec<String>> {
    let headers = match &route.headers {
        None => Vec::new(),
        Some(serde_json::Value::Object(map)) => parse_claim_headers(map)?,
        Some(_) => return Err(vec!["headers must be an object of header name to claim".into()]),
    };
    if auth == AuthMode::Public && (route.client_principal || !headers.is_empty()) {
        return Err(vec![
            "headers and client_principal need a caller: use auth session, bearer or session_or_bearer".into(),
        ]);
    }
    Ok((headers, route.client_principal))
}

fn matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// [`matches`] with ASCII letters compared without case. Also how `API_PATH_PREFIXES` are
/// matched: there a wider match only turns a sign-in redirect into a `401`.
pub fn matches_ignoring_case(prefix: &str, path: &str) -> bool {
    match path.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => matches(head, path),
        _ => false,
    }
}

impl RouteTable {
    /// The route for a normalised path (see [`super::normalise_path`]): the longest matching
    /// prefix, compared with case as paths are (RFC 3986 §6.2.2.1). A path that would match a
    /// different route with case ignored is refused, so neither a case-sensitive nor a
    /// case-insensitive origin can be reached under the wrong route's rules.
    pub fn find(&self, path: &str) -> Result<Option<&Route>, PathError> {
        let exact = self.routes.iter().find(|r| matches(&r.prefix, path));
        let folded = self.routes.iter().find(|r| matches_ignoring_case(&r.prefix, path));
        match (exact, folded) {
            (Some(a), Some(b)) if std::ptr::eq(a, b) => Ok(exact),
            (None, None) => Ok(None),
            _ => Err(PathError::CaseAmbiguous),
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The Worker bindings routes send requests to, each once (checked in the env at start-up).
    pub fn bindings(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.routes.iter().filter_map(|r| r.origin.binding()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The rate-limiting bindings routes count with, each once (checked in the env at start-up).
    pub fn rate_limit_bindings(&self) -> Vec<&str> {
        let mut names: Vec<&str> =
            self.routes.iter().filter_map(|r| r.rate_limit.as_ref().map(|l| l.binding.as_str())).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The table when `ROUTES` is not set: everything needs a session and goes to `origin`.
    pub fn everything_to(origin: Url) -> Self {
        let route = Route {
            prefix: "/".into(),
            auth: AuthMode::Session,
            origin: Origin::Http(origin),
            requirements: Requirements::default(),
            cors_preflight: false,
            dpop: DpopMode::Allowed,
            step_up: StepUp::default(),
            origin_token: OriginToken::Caller,
            token_target: None,
            assertion: None,
            claim_headers: Vec::new(),
            client_principal: false,
            providers: RouteProviders::default(),
            websocket: WebSocketMode::Off,
            rate_limit: None,
        };
        Self { routes: vec![route], claim_header_names: Vec::new() }
    }

    /// Every header name a route maps from claims (lower case): never taken from a client.
    pub fn claim_header_names(&self) -> &[String] {
        &self.claim_header_names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Url {
        Url::parse("https://origin.internal").unwrap()
    }

    #[test]
    fn parses_and_matches_longest_prefix_on_segments() {
        let table = parse_routes(
            r#"[{"prefix":"/","auth":"public"},{"prefix":"/api","auth":"bearer","scopes":["read"]},
                {"prefix":"/api/admin/","auth":"bearer","roles":["Admin"],"origin":"https://admin.internal"}]"#,
            Some(&origin()),
        )
        .unwrap();
        let admin = &table.find("/api/admin/x").unwrap().unwrap().origin;
        assert_eq!(admin, &Origin::Http(Url::parse("https://admin.internal/").unwrap()));
        assert_eq!(table.find("/api/items").unwrap().unwrap().requirements.scopes, vec!["read"]);
        assert_eq!(table.find("/api").unwrap().unwrap().auth, AuthMode::Bearer);
        assert_eq!(table.find("/apix").unwrap().unwrap().auth, AuthMode::Public);
        assert_eq!(table.find("/api/admin").unwrap().unwrap().prefix, "/api", "/api/admin/ needs the slash");
        let no_root = parse_routes(r#"[{"prefix":"/api/"}]"#, Some(&origin())).unwrap();
        assert_eq!(no_root.find("/api/x").unwrap().unwrap().auth, AuthMode::Session);
        assert!(no_root.find("/other").unwrap().is_none());
    }

    #[test]
    fn reports_every_bad_route() {
        let errors = parse_routes(
            r#"[{"prefix":"api"},{"prefix":"/a","auth":"magic"},{"prefix":"/b","scopez":[]},
                {"prefix":"/c","origin":"ftp://x"},{"prefix":"/d"},{"prefix":"/d"}]"#,
            Some(&origin()),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        let typo = errors.iter().find(|e| e.contains("scopez")).unwrap();
        assert!(typo.contains("a route's fields: prefix, auth,") && typo.contains("rate_limit"), "{typo}");
        assert!(parse_routes("{}", Some(&origin())).is_err());
        let twins = parse_routes(r#"[{"prefix":"/a"},{"prefix":"/A"}]"#, Some(&origin())).unwrap_err();
        assert!(twins[0].contains("letter case aside"), "{twins:?}");
        // A field given twice would otherwise be read as whichever copy the parser keeps.
        let repeated = parse_routes(r#"[{"prefix":"/a","auth":"public","auth":"bearer"}]"#, Some(&origin()));
        let repeated = repeated.unwrap_err();
        assert!(repeated[0].contains("duplicate member name at line 1 column"), "{repeated:?}");
    }

    #[test]
    fn a_path_whose_route_depends_on_case_is_refused() {
        let table = parse_routes(
            r#"[{"prefix":"/","auth":"session"},{"prefix":"/api/admin/","auth":"bearer","roles":["Admin"]},
                {"prefix":"/Public/","auth":"public"}]"#,
            Some(&origin()),
        )
        .unwrap();
        assert_eq!(table.find("/api/admin/x").unwrap().unwrap().prefix, "/api/admin/");
        assert_eq!(table.find("/API/admin/x"), Err(PathError::CaseAmbiguous));
        assert_eq!(table.find("/api/ADMIN/x"), Err(PathError::CaseAmbiguous));
        assert_eq!(table.find("/public/x"), Err(PathError::CaseAmbiguous));
        assert_eq!(table.find("/Public/x").unwrap().unwrap().auth, AuthMode::Public);
        assert_eq!(table.find("/API/other").unwrap().unwrap().prefix, "/", "same route either way");
        assert_eq!(table.find("/é").unwrap().unwrap().prefix, "/", "non-ASCII never panics");
    }

    #[test]
    fn origin_token_modes_and_their_targets() {
        let table = parse_routes(
            r#"[{"prefix":"/a/","origin_token":"app","token_target":{"resource":"api://a"}},
                {"prefix":"/n/","origin_token":"none"},{"prefix":"/"}]"#,
            Some(&origin()),
        )
        .unwrap();
        let app = table.find("/a/x").unwrap().unwrap();
        assert_eq!(app.origin_token, OriginToken::App);
        assert_eq!(app.token_target.as_ref().unwrap().cache_key(), "resource=api://a");
        assert_eq!(table.find("/n/").unwrap().unwrap().origin_token, OriginToken::None);
        assert_eq!(table.find("/x").unwrap().unwrap().origin_token, OriginToken::Caller);
        let errors = parse_routes(
            r#"[{"prefix":"/a","origin_token":"app"},{"prefix":"/b","origin_token":"app","token_target":{"scope":" "}},
                {"prefix":"/c","origin_token":"magic"},{"prefix":"/d","token_target":{"scope":"x"}},
                {"prefix":"/e","origin_token":"app","token_target":{"scopes":"x"}}]"#,
            Some(&origin()),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].contains("needs a token_target"), "{errors:?}");
        assert!(errors[3].contains("only used with origin_token app or on_behalf_of"), "{errors:?}");
        let errors = parse_routes(
            r#"[{"prefix":"/p","auth":"public","origin_token":"on_behalf_of","token_target":{"scope":"x"}}]"#,
            Some(&origin()),
        )
        .unwrap_err();
        assert!(errors[0].contains("needs a caller"), "{errors:?}");
    }

    #[test]
    fn websocket_and_rate_limit_fields() {
        let table = parse_routes(
            r#"[{"prefix":"/ws/","websocket":"proxy","rate_limit":{"binding":"API_LIMIT","key":"sub"}},
                {"prefix":"/live/","auth":"public","websocket":"pass","rate_limit":{"binding":"IP_LIMIT","key":"ip"}},
                {"prefix":"/api/","auth":"bearer","rate_limit":{"binding":"API_LIMIT","key":"client_id"}},{"prefix":"/"}]"#,
            Some(&origin()),
        )
        .unwrap();
        let ws = table.find("/ws/x").unwrap().unwrap();
        assert_eq!(ws.websocket, WebSocketMode::Proxy);
        assert_eq!(ws.rate_limit.as_ref().unwrap().key, super::super::rate_limit::RateLimitKey::Sub);
        assert_eq!(table.find("/live/").unwrap().unwrap().websocket, WebSocketMode::Pass);
        assert_eq!(table.find("/x").unwrap().unwrap().websocket, WebSocketMode::Off, "off unless asked");
        assert_eq!(table.rate_limit_bindings(), vec!["API_LIMIT", "IP_LIMIT"]);
        let errors = parse_routes(
            r#"[{"prefix":"/a","auth":"public","websocket":"proxy"},{"prefix":"/b","websocket":"yes"},
                {"prefix":"/c","rate_limit":{"binding":"x-y","key":"sub"}},{"prefix":"/d","rate_limit":{"binding":"L"}},
                {"prefix":"/e","auth":"public","rate_limit":{"binding":"L","key":"sub"}}]"#,
            Some(&origin()),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].contains("websocket \"pass\""), "{errors:?}");
    }

    #[test]
    fn assertion_fields() {
        let table = parse_routes(
            r#"[{"prefix":"/a/","assertion":true},
                {"prefix":"/b/","auth":"bearer","assertion":true,"assertion_header":"X-User-JWT","assertion_audience":"api://b"}]"#,
            Some(&Url::parse("https://origin.internal:8443/base/").unwrap()),
        )
        .unwrap();
        let a = table.find("/a/").unwrap().unwrap().assertion.clone().unwrap();
        assert_eq!((a.header.as_str(), a.audience.as_str()), ("x-edgeguard-assertion", "https://origin.internal:8443"));
        let b = table.find("/b/").unwrap().unwrap().assertion.clone().unwrap();
        assert_eq!((b.header.as_str(), b.audience.as_str()), ("x-user-jwt", "api://b"));
        let errors = parse_routes(
            r#"[{"prefix":"/a","auth":"public","assertion":true},{"prefix":"/b","assertion":true,"assertion_header":"Cookie"},
                {"prefix":"/c","assertion":true,"assertion_header":"x y"},{"prefix":"/d","assertion_header":"x"}]"#,
            Some(&origin()),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn the_route_fields_named_in_problems_are_readmes_routes_table() {
        let readme = include_str!("../../README.md");
        let table = readme.split("### Routes").nth(1).and_then(|rest| rest.split("\n### ").next()).unwrap();
        let documented: Vec<&str> =
            table.lines().filter_map(|line| line.strip_prefix("| `")?.split('`').next()).collect();
        assert_eq!(documented, ROUTE_FIELDS);
        for field in ROUTE_FIELDS.iter().filter(|f| **f != "prefix") {
            let problems = parse_routes(&format!(r#"[{{"prefix":"/x","{field}":-1.5}}]"#), Some(&origin()));
            let problems = problems.err().unwrap_or_default().join(" ");
            assert!(!problems.contains("unknown field"), "{field} is a route field: {problems}");
        }
    }
}
