//! The one pass over the settings that builds a [`Config`] or lists every problem.

use super::duration::parse_duration_secs;
use super::url::parse_secure_url;
use super::{ApiConfig, Config, ConfigErrors, ProviderConfig, SessionConfig, SettingError, defaults, names};
use crate::jwt::JwsAlgorithm;
use crate::policy::{RouteTable, parse_routes_for};
use crate::session::SessionKeys;

mod assertion;
mod client_auth;
mod providers;

/// Collects errors while each setting is parsed.
pub(super) struct Collector<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<SettingError>,
}

impl Collector<'_> {
    pub(super) fn fail(&mut self, setting: &'static str, problem: impl Into<String>, fix: &'static str) {
        self.errors.push(SettingError { setting, problem: problem.into(), fix });
    }

    fn required(&mut self, setting: &'static str, fix: &'static str) -> Option<String> {
        let value = (self.lookup)(setting);
        if value.is_none() {
            self.fail(setting, "is not set", fix);
        }
        value
    }

    pub(super) fn optional(&self, setting: &str) -> Option<String> {
        (self.lookup)(setting)
    }
}

pub(super) fn from_settings(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let mut c = Collector { lookup, errors: Vec::new() };
    let (providers, provider_names) = providers::providers(&mut c);
    let public_url = public_url(&mut c);
    let routes = routes(&mut c, &provider_names);
    let session = session(&mut c);
    let api_path_prefixes = api_path_prefixes(&mut c);
    let api = api(&mut c);
    if let (Some(providers), Some(routes)) = (&providers, &routes) {
        bearer_audiences(&mut c, providers, routes);
    }
    let log_forwarded = flag(&mut c, names::LOG_FORWARDED, true);
    let email_verified_required = flag(&mut c, names::EMAIL_VERIFIED_REQUIRED, true);
    let me_access_token = flag(&mut c, names::AUTH_ME_ACCESS_TOKEN, false);
    let forwarding = forwarding::forwarding(&mut c);
    let assertion = assertion::assertion(&mut c, routes.as_ref());
    let flags = (log_forwarded, email_verified_required, me_access_token, forwarding, assertion);
    let mut providers = providers.unwrap_or_default().into_iter();
    match (providers.next(), public_url, routes, session, api, flags) {
        (
            Some(provider),
            Some(public_url),
            Some(routes),
            Some(session),
            Some(api),
            (
                Some(log_forwarded),
                Some(email_verified_required),
                Some(me_access_token),
                Some(forwarding),
                Some(assertion),
            ),
        ) if c.errors.is_empty() => Ok(Config {
            provider,
            providers: providers.collect(),
            public_url,
            routes,
            api,
            session,
            api_path_prefixes,
            log_forwarded,
            email_verified_required,
            me_access_token,
            forwarding,
            assertion,
        }),
        _ => Err(ConfigErrors(c.errors)),
    }
}

/// One provider from the settings `c` reads: the flat ones, or a `PROVIDERS` entry seen
/// through them (see [`providers`]).
fn provider(c: &mut Collector<'_>, name: &str) -> Option<ProviderConfig> {
    let entra = super::entra::entra(c);
    let issuer = match &entra {
        Ok(None) => oidc_issuer(c),
        Ok(Some(entra)) => Some(entra.authority()),
        Err(()) => None,
    };
    let discovery_url = match &entra {
        Ok(Some(entra)) => entra.discovery_url(),
        _ => issuer.as_deref().map(crate::oidc::discovery_url).unwrap_or_default(),
    };
    let client_id =
        c.required(names::OIDC_CLIENT_ID, "set it to the application (client) ID registered at your provider");
    let client_auth = client_auth::client_auth(c);
    let entra = entra.ok().flatten();
    let mut scopes = scopes(c);
    if entra.as_ref().is_some_and(|e| e.version == crate::entra::EntraVersion::V2)
        && !scopes.iter().any(|s| s == "offline_access")
    {
        // Entra issues refresh tokens only when asked, and a custom scope list replaces its defaults.
        scopes.push("offline_access".to_owned());
    }
    let resource = c.optional(names::OIDC_RESOURCE).map(|r| r.trim().to_owned());
    let allowed_algs = allowed_algs(c);
    let clock_skew_secs =
        duration(c, names::OIDC_CLOCK_SKEW, defaults::CLOCK_SKEW_SECS, 0, defaults::MAX_CLOCK_SKEW_SECS);
    let client_id = client_id?.trim().to_owned();
    let audiences = audiences(c, resource.as_deref(), &client_id);
    let auth_params = auth_params(c);
    Some(ProviderConfig {
        name: name.to_owned(),
        issuer: issuer?,
        discovery_url,
        entra,
        client_id,
        client_auth: client_auth?,
        scopes,
        resource,
        allowed_algs: allowed_algs?,
        clock_skew_secs: clock_skew_secs?,
        on_behalf_of: client_auth::on_behalf_of_grant(c)?,
        audiences,
        auth_params,
    })
}

fn oidc_issuer(c: &mut Collector<'_>) -> Option<String> {
    c.required(
        names::OIDC_ISSUER,
        "set it to your provider's issuer URL, e.g. https://idp.example.com (for Entra ID set ENTRA_TENANT instead)",
    )
    .and_then(|raw| match parse_secure_url(&raw) {
        // Kept as written: discovery must return this exact string (OIDC Discovery §4.3).
        Ok(_) => Some(raw.trim().to_owned()),
        Err(problem) => {
            c.fail(
                names::OIDC_ISSUER,
                problem,
                "use the https issuer URL your provider publishes (plain http only on localhost/127.0.0.1)",
            );
            None
        }
    })
}

/// `openid` first, no duplicates; a list without `openid` gets it added (it is what makes the
/// request OpenID Connect at all).
fn scopes(c: &mut Collector<'_>) -> Vec<String> {
    let raw = c.optional(names::OIDC_SCOPES).unwrap_or_else(|| defaults::SCOPES.to_owned());
    let mut scopes = vec!["openid".to_owned()];
    for scope in raw.split([' ', ',']).filter(|s| !s.is_empty()) {
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

fn allowed_algs(c: &mut Collector<'_>) -> Option<Vec<JwsAlgorithm>> {
    let Some(raw) = c.optional(names::OIDC_ALLOWED_ALGS) else {
        return Some(JwsAlgorithm::ALL.to_vec());
    };
    let mut algs = Vec::new();
    for name in raw.split([' ', ',']).filter(|s| !s.is_empty()) {
        match name.parse::<JwsAlgorithm>() {
            Ok(alg) => algs.push(alg),
            Err(_) => c.fail(
                names::OIDC_ALLOWED_ALGS,
                format!("{name:?} is not an accepted signature algorithm"),
                "list some of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA (none and HS* are never accepted)",
            ),
        }
    }
    if algs.is_empty() {
        c.fail(names::OIDC_ALLOWED_ALGS, "lists no algorithm", "list at least one, e.g. RS256");
        return None;
    }
    Some(algs)
}

fn public_url(c: &mut Collector<'_>) -> Option<::url::Url> {
    let raw = c.required(names::PUBLIC_URL, "set it to the gateway's external origin, e.g. https://app.example.com")?;
    match parse_secure_url(&raw) {
        Ok(url) if url.path() != "/" => {
            c.fail(
                names::PUBLIC_URL,
                format!("has a path ({})", url.path()),
                "give the origin only, e.g. https://app.example.com",
            );
            None
        }
        Ok(url) => Some(url),
        Err(problem) => {
            c.fail(names::PUBLIC_URL, problem, "use https://<your host> (plain http only on localhost/127.0.0.1)");
            None
        }
    }
}

const ORIGIN_FIX: &str = "set it to the origin the gateway protects, e.g. https://origin.internal.example.com";

fn origin_url(c: &mut Collector<'_>, required: bool) -> Option<::url::Url> {
    let raw = if required { c.required(names::ORIGIN_URL, ORIGIN_FIX)? } else { c.optional(names::ORIGIN_URL)? };
    // Tokens and identity headers travel to the origin: never in clear text off this machine.
    match parse_secure_url(&raw) {
        Ok(url) => Some(url),
        Err(problem) => {
            c.fail(
                names::ORIGIN_URL,
                problem,
                "use an absolute https URL without query or fragment (plain http only on localhost/127.0.0.1)",
            );
            None
        }
    }
}

/// `ROUTES` when set (then `ORIGIN_URL` is only the default origin), else everything to
/// `ORIGIN_URL` behind a session.
fn routes(c: &mut Collector<'_>, provider_names: &[String]) -> Option<RouteTable> {
    let names: Vec<&str> = provider_names.iter().map(String::as_str).collect();
    let Some(raw) = c.optional(names::ROUTES) else {
        if names.len() > 1 && names.first() != Some(&super::DEFAULT_PROVIDER) {
            c.fail(
                names::ROUTES,
                "is not set, and with several providers and none named default the one route (everything, behind a session) names no provider",
                "write ROUTES and give each route a provider",
            );
            return None;
        }
        return origin_url(c, true).map(RouteTable::everything_to);
    };
    let default_origin = origin_url(c, false);
    match parse_routes_for(&raw, default_origin.as_ref(), &names) {
        Ok(table) => Some(table),
        Err(problems) => {
            for problem in problems {
                c.fail(
                    names::ROUTES,
                    problem,
                    // The fields themselves are named by the problem (serde lists the expected ones for an
                    // unknown field); README's table is the one list that is kept complete.
                    "write a JSON array of routes, each {prefix, auth: public|session|bearer|session_or_bearer, ...}, with the fields of README's Routes table",
                );
            }
            None
        }
    }
}

fn list(raw: &str) -> Vec<String> {
    raw.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Bearer-token rules shared by every provider.
fn api(c: &mut Collector<'_>) -> Option<ApiConfig> {
    let token_types = list(&c.optional(names::API_TOKEN_TYPES).unwrap_or_else(|| defaults::API_TOKEN_TYPES.to_owned()));
    let cooldown = duration(c, names::JWKS_REFETCH_COOLDOWN, defaults::JWKS_REFETCH_COOLDOWN_SECS, 1, 3600);
    let (nonce, replay_kv) = (flag(c, names::DPOP_NONCE, false), flag(c, names::DPOP_REPLAY_KV, false));
    let dpop = super::DpopSettings { nonce: nonce?, replay_kv: replay_kv? };
    Some(ApiConfig { token_types, jwks_refetch_cooldown_secs: cooldown?, dpop })
}

/// A provider's bearer audiences: `API_AUDIENCES`, else its `OIDC_RESOURCE` (the API the
/// gateway's own access tokens are for).
fn audiences(c: &mut Collector<'_>, resource: Option<&str>, client_id: &str) -> Vec<String> {
    let audiences = match c.optional(names::API_AUDIENCES) {
        Some(raw) => list(&raw),
        None => resource.map(str::to_owned).into_iter().collect(),
    };
    // An ID token is a JWT issued to the client id; were that an accepted audience, a user's ID
    // token (typ JWT, as Entra's access tokens) would pass as an access token (RFC 8725 §3.11).
    if audiences.iter().any(|a| a == client_id) {
        c.fail(
            names::API_AUDIENCES,
            format!("contains OIDC_CLIENT_ID ({client_id}), so ID tokens issued to the gateway would pass as access tokens"),
            "give the API an audience of its own: its App ID URI (api://...) or a separate app registration's client id",
        );
    }
    audiences
}

/// Every provider a route takes bearer tokens from needs an audience to check.
fn bearer_audiences(c: &mut Collector<'_>, providers: &[ProviderConfig], routes: &RouteTable) {
    let mut reported = Vec::new();
    for index in routes.routes().iter().filter(|r| r.takes_bearer()).flat_map(|r| r.providers.bearer.iter()) {
        let Some(provider) = providers.get(*index).filter(|p| p.audiences.is_empty()) else { continue };
        if reported.contains(index) {
            continue;
        }
        reported.push(*index);
        let problem = match providers.len() {
            1 => "is empty but a route accepts bearer tokens".to_owned(),
            _ => format!("is empty for provider {:?}, whose bearer tokens a route accepts", provider.name),
        };
        c.fail(
            names::API_AUDIENCES,
            problem,
            "list the aud values your API's access tokens carry, e.g. api://orders or https://api.example.com (in PROVIDERS: api_audiences)",
        );
    }
}

fn session_keys(c: &mut Collector<'_>) -> Option<SessionKeys> {
    let raw = c.required(
        names::SESSION_SECRET,
        "store a random secret of 32+ characters as a Worker secret: `openssl rand -base64 32 | wrangler secret put SESSION_SECRET`",
    )?;
    let secrets: Vec<&str> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if secrets.iter().any(|s| s.len() < defaults::MIN_SECRET_LEN) {
        c.fail(
            names::SESSION_SECRET,
            format!("every comma-separated secret must be at least {} characters", defaults::MIN_SECRET_LEN),
            "generate one with `openssl rand -base64 32`; list the newest first when rotating",
        );
        return None;
    }
    Some(SessionKeys::derive(&secrets))
}

fn session(c: &mut Collector<'_>) -> Option<SessionConfig> {
    let keys = session_keys(c);
    let ttl_secs = duration(c, names::SESSION_TTL, defaults::SESSION_TTL_SECS, 60, 30 * 86_400);
    let idle_secs = duration(c, names::SESSION_IDLE_TIMEOUT, defaults::SESSION_IDLE_SECS, 60, 30 * 86_400);
    let revalidate_secs = duration(c, names::SESSION_REVALIDATE, defaults::SESSION_REVALIDATE_SECS, 1, 300);
    let post_logout_redirect_url = match c.optional(names::POST_LOGOUT_REDIRECT_URL) {
        None => Some(None),
        Some(raw) => match parse_secure_url(&raw) {
            Ok(url) => Some(Some(url)),
            Err(problem) => {
                c.fail(
                    names::POST_LOGOUT_REDIRECT_URL,
                    problem,
                    "use the https URL registered at the provider as a post-logout redirect URI",
                );
                None
            }
        },
    };
    Some(SessionConfig {
        keys: keys?,
        ttl_secs: ttl_secs?,
        idle_secs: idle_secs?,
        revalidate_secs: revalidate_secs?,
        post_logout_redirect_url: post_logout_redirect_url?,
    })
}

fn flag(c: &mut Collector<'_>, setting: &'static str, default: bool) -> Option<bool> {
    match c.optional(setting).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => Some(default),
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            c.fail(setting, format!("{other:?} is not true or false"), "write true or false");
            None
        }
    }
}

fn duration(c: &mut Collector<'_>, setting: &'static str, default: u64, min: u64, max: u64) -> Option<u64> {
    let Some(raw) = c.optional(setting) else {
        return Some(default);
    };
    match parse_duration_secs(&raw) {
        Some(secs) if (min..=max).contains(&secs) => Some(secs),
        Some(secs) => {
            c.fail(
                setting,
                format!("{secs} s is outside {min}..={max} s"),
                "pick a value inside the range, e.g. 60s, 15m, 8h",
            );
            None
        }
        None => {
            c.fail(
                setting,
                format!("{raw:?} is not a duration"),
                "write a number with an optional unit: 90, 90s, 15m, 8h, 7d",
            );
            None
        }
    }
}

/// Parameters the gateway sets itself (or that would replace the request wholesale) cannot be
/// overridden from `OIDC_AUTH_PARAMS`.
const RESERVED_AUTH_PARAMS: [&str; 12] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "request",
    "request_uri",
    "response_mode",
];

fn auth_params(c: &mut Collector<'_>) -> Vec<(String, String)> {
    let raw = c.optional(names::OIDC_AUTH_PARAMS).unwrap_or_default();
    let mut params = Vec::new();
    for (name, value) in ::url::form_urlencoded::parse(raw.trim().as_bytes()) {
        if name.is_empty() || RESERVED_AUTH_PARAMS.contains(&name.as_ref()) {
            c.fail(
                names::OIDC_AUTH_PARAMS,
                format!("sets {name:?}, which the gateway sets itself"),
                "remove it; use OIDC_SCOPES for scope and OIDC_RESOURCE for resource",
            );
        } else {
            params.push((name.into_owned(), value.into_owned()));
        }
    }
    params
}

fn api_path_prefixes(c: &mut Collector<'_>) -> Vec<String> {
    let raw = c.optional(names::API_PATH_PREFIXES).unwrap_or_default();
    let mut prefixes = Vec::new();
    for prefix in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match crate::policy::normalise_path(prefix) {
            Ok(canonical) => prefixes.push(canonical),
            Err(_) => c.fail(
                names::API_PATH_PREFIXES,
                format!("{prefix:?} is not a plain path prefix"),
                "write path prefixes like /api/ (starting with /, no //, . or .. segments, ; or %2F)",
            ),
        }
    }
    prefixes
}

mod forwarding;

#[cfg(test)]
mod tests;
