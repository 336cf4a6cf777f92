//! Settings (Worker vars and secrets, all strings) turned into a validated [`Config`].
//!
//! Validation collects every problem, each naming the setting and how to fix it, so an
//! operator fixes a deployment in one round instead of one error at a time.

pub mod bindings;
mod duration;
mod entra;
mod private_key;
mod secret;
mod url;

pub use self::private_key::{
    KeyKind, Pkcs8Der, SigningKeyConfig, parse_pkcs8_pem, parse_thumbprint, public_jwk_members,
};
pub use self::secret::Secret;
pub use self::url::{is_loopback, parse_secure_url};

use crate::jwt::JwsAlgorithm;
use crate::policy::RouteTable;
use crate::session::SessionKeys;
use ::url::Url;
use std::fmt;

/// Every setting the Worker reads, in README order. Secrets are marked in README.
pub mod names {
    pub const OIDC_ISSUER: &str = "OIDC_ISSUER";
    pub const OIDC_CLIENT_ID: &str = "OIDC_CLIENT_ID";
    pub const OIDC_CLIENT_SECRET: &str = "OIDC_CLIENT_SECRET";
    pub const OIDC_CLIENT_AUTH_METHOD: &str = "OIDC_CLIENT_AUTH_METHOD";
    pub const OIDC_CLIENT_PRIVATE_KEY: &str = "OIDC_CLIENT_PRIVATE_KEY";
    pub const OIDC_CLIENT_ASSERTION_ALG: &str = "OIDC_CLIENT_ASSERTION_ALG";
    pub const OIDC_CLIENT_CERT_THUMBPRINT_SHA256: &str = "OIDC_CLIENT_CERT_THUMBPRINT_SHA256";
    pub const OIDC_CLIENT_CERT_THUMBPRINT_SHA1: &str = "OIDC_CLIENT_CERT_THUMBPRINT_SHA1";
    pub const ON_BEHALF_OF_GRANT: &str = "ON_BEHALF_OF_GRANT";
    pub const ASSERTION_SIGNING_KEY: &str = "ASSERTION_SIGNING_KEY";
    pub const ASSERTION_SIGNING_ALG: &str = "ASSERTION_SIGNING_ALG";
    pub const ASSERTION_PREVIOUS_SIGNING_KEY: &str = "ASSERTION_PREVIOUS_SIGNING_KEY";
    pub const OIDC_SCOPES: &str = "OIDC_SCOPES";
    pub const OIDC_RESOURCE: &str = "OIDC_RESOURCE";
    pub const OIDC_ALLOWED_ALGS: &str = "OIDC_ALLOWED_ALGS";
    pub const OIDC_CLOCK_SKEW: &str = "OIDC_CLOCK_SKEW";
    pub const PUBLIC_URL: &str = "PUBLIC_URL";
    pub const ORIGIN_URL: &str = "ORIGIN_URL";
    pub const SESSION_SECRET: &str = "SESSION_SECRET";
    pub const SESSION_TTL: &str = "SESSION_TTL";
    pub const SESSION_IDLE_TIMEOUT: &str = "SESSION_IDLE_TIMEOUT";
    pub const SESSION_REVALIDATE: &str = "SESSION_REVALIDATE";
    pub const POST_LOGOUT_REDIRECT_URL: &str = "POST_LOGOUT_REDIRECT_URL";
    pub const API_PATH_PREFIXES: &str = "API_PATH_PREFIXES";
    pub const ROUTES: &str = "ROUTES";
    pub const API_AUDIENCES: &str = "API_AUDIENCES";
    pub const API_TOKEN_TYPES: &str = "API_TOKEN_TYPES";
    pub const JWKS_REFETCH_COOLDOWN: &str = "JWKS_REFETCH_COOLDOWN";
    pub const LOG_FORWARDED: &str = "LOG_FORWARDED";
    pub const EMAIL_VERIFIED_REQUIRED: &str = "EMAIL_VERIFIED_REQUIRED";
    pub const AUTH_ME_ACCESS_TOKEN: &str = "AUTH_ME_ACCESS_TOKEN";
    pub const OIDC_AUTH_PARAMS: &str = "OIDC_AUTH_PARAMS";
    pub const LOG_FORWARDED_SAMPLE: &str = "LOG_FORWARDED_SAMPLE";
    pub const STRIP_HEADERS: &str = "STRIP_HEADERS";
    pub const DPOP_NONCE: &str = "DPOP_NONCE";
    pub const DPOP_REPLAY_KV: &str = "DPOP_REPLAY_KV";
    pub const ENTRA_TENANT: &str = "ENTRA_TENANT";
    pub const ENTRA_VERSION: &str = "ENTRA_VERSION";
    pub const ENTRA_AUTHORITY: &str = "ENTRA_AUTHORITY";
    pub const ENTRA_ALLOWED_TENANTS: &str = "ENTRA_ALLOWED_TENANTS";
    pub const ENTRA_API_TOKEN_VERSIONS: &str = "ENTRA_API_TOKEN_VERSIONS";
    pub const ENTRA_GROUPS_OVERAGE: &str = "ENTRA_GROUPS_OVERAGE";
    pub const ENTRA_GRAPH_URL: &str = "ENTRA_GRAPH_URL";
    pub const PROVIDERS: &str = "PROVIDERS";
}

/// Defaults, documented in README's settings table.
pub mod defaults {
    pub const SCOPES: &str = "openid profile email";
    pub const CLOCK_SKEW_SECS: u64 = 60;
    pub const SESSION_TTL_SECS: u64 = 8 * 3600;
    pub const SESSION_IDLE_SECS: u64 = 3600;
    /// How long a warm session copy is trusted before KV (and its object) is asked again.
    pub const SESSION_REVALIDATE_SECS: u64 = crate::store::WARM_REVALIDATE_SECS;
    /// Longest clock skew accepted: more would make `exp` meaningless.
    pub const MAX_CLOCK_SKEW_SECS: u64 = 300;
    /// Shortest secret accepted, in bytes of the setting (32 bytes of entropy at least).
    pub const MIN_SECRET_LEN: usize = 32;
    pub const API_TOKEN_TYPES: &str = "at+jwt,JWT";
    pub const JWKS_REFETCH_COOLDOWN_SECS: u64 = 10;
}

/// How the gateway authenticates to the token endpoint (OIDC Core §9), with what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1). The default.
    ClientSecretBasic(Secret),
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost(Secret),
    /// A JWT client assertion signed with the gateway's private key (RFC 7523 §2.2); no
    /// shared secret at all. Entra ID calls this a certificate credential.
    PrivateKeyJwt(ClientAssertionConfig),
}

/// The key and certificate references for `private_key_jwt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAssertionConfig {
    pub key: SigningKeyConfig,
    /// base64url SHA-256 certificate thumbprint, sent as `x5t#S256`.
    pub x5t_s256: Option<String>,
    /// base64url SHA-1 certificate thumbprint, sent as `x5t` (what Entra ID matches on).
    pub x5t: Option<String>,
}

/// The name of the provider the flat `OIDC_*` / `ENTRA_*` settings describe.
pub const DEFAULT_PROVIDER: &str = "default";

/// An identity provider and this gateway's client registration there: the flat `OIDC_*`
/// settings (named [`DEFAULT_PROVIDER`]) or one entry of the `PROVIDERS` table.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// How routes, sessions, cookies and `/auth/login?provider=` refer to it.
    pub name: String,
    /// The issuer exactly as configured; discovery must echo it byte for byte. With the Entra
    /// preset, the derived authority (discovery then checks the tenant's issuer instead).
    pub issuer: String,
    /// Where the discovery document is read from.
    pub discovery_url: String,
    /// The Entra ID preset (`ENTRA_TENANT`), which replaces `OIDC_ISSUER`.
    pub entra: Option<crate::entra::EntraConfig>,
    pub client_id: String,
    pub client_auth: ClientAuth,
    /// Scopes to request; `openid` is always first. `offline_access` is added when discovery
    /// lists it (see [`crate::oidc::ProviderMetadata::scopes_for`]).
    pub scopes: Vec<String>,
    /// RFC 8707 resource (Azure AD v1 `resource`), so the access token is minted for that API.
    pub resource: Option<String>,
    /// Signature algorithms accepted from this provider.
    pub allowed_algs: Vec<JwsAlgorithm>,
    /// Tolerance for `exp`, `nbf` and `iat` between the provider's clock and ours.
    pub clock_skew_secs: u64,
    /// How `origin_token: on_behalf_of` exchanges the caller's token.
    pub on_behalf_of: OnBehalfOfGrant,
    /// Accepted `aud` values of bearer tokens this provider issues; a token must name one.
    /// Never the client ID, so ID tokens are not accepted as access tokens.
    pub audiences: Vec<String>,
    /// Extra authorization-request parameters for every sign-in with it (`OIDC_AUTH_PARAMS`).
    pub auth_params: Vec<(String, String)>,
}

/// The grant that exchanges a caller's access token for one for another API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBehalfOfGrant {
    /// RFC 8693 token exchange (`subject_token`): the standard, and the default.
    TokenExchange,
    /// Entra ID on-behalf-of: the JWT bearer grant (RFC 7523 §2.1) with
    /// `requested_token_use=on_behalf_of`.
    JwtBearer,
}

/// The key that signs user assertions for origins, and what `/.well-known/jwks.json` serves.
#[derive(Debug, Clone)]
pub struct AssertionConfig {
    pub key: SigningKeyConfig,
    /// RFC 7638 thumbprint of the signing key's public half.
    pub kid: String,
    /// The JWKS document: the signing key, then the previous one during a rotation.
    pub jwks: String,
}

/// The validated configuration of one deployment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The default provider: the flat settings, else the `PROVIDERS` entry named `default`,
    /// else the table's first entry. Index 0 of [`Config::provider_at`].
    pub provider: ProviderConfig,
    /// The other `PROVIDERS` entries, in table order (indexes 1.. of [`Config::provider_at`]).
    pub providers: Vec<ProviderConfig>,
    /// The gateway's external origin (scheme, host, port, no path). `redirect_uri` and every
    /// post-login redirect are built from it, never from the request's `Host` header.
    pub public_url: Url,
    /// Which paths need what, and where they go (`ROUTES`, or everything to `ORIGIN_URL`).
    pub routes: RouteTable,
    /// How bearer access tokens are checked.
    pub api: ApiConfig,
    pub session: SessionConfig,
    /// Paths that are APIs: an unauthenticated request there gets 401, never a redirect.
    pub api_path_prefixes: Vec<String>,
    /// Log a line for every forwarded request, not only refusals and errors.
    pub log_forwarded: bool,
    /// Forward a token's `email` only when the token states it verified (`email_verified` or
    /// Entra's `xms_edov`); otherwise also when it states nothing. Stated unverified: never.
    pub email_verified_required: bool,
    /// Include the session's access token in `GET /auth/me` (off: a token in page scripts is
    /// one XSS away from theft).
    pub me_access_token: bool,
    /// The origin request's extra strip rules and the forwarded-request log sampling.
    pub forwarding: ForwardingConfig,
    /// User assertions for origins; set when `ASSERTION_SIGNING_KEY` is.
    pub assertion: Option<AssertionConfig>,
}

/// How requests are forwarded and logged beyond the route itself.
#[derive(Debug, Clone, Default)]
pub struct ForwardingConfig {
    /// A deployment's own client headers to strip (`STRIP_HEADERS`), beside the built-in list.
    pub strip_headers: Vec<crate::proxy::StripRule>,
    /// Log one forwarded request in every this many (`LOG_FORWARDED_SAMPLE`, 1 = all).
    pub log_sample: u64,
}

/// Browser sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Cookie-sealing and KV-encryption keys, newest secret first.
    pub keys: SessionKeys,
    /// Absolute lifetime from sign-in.
    pub ttl_secs: u64,
    /// A session unused for this long ends.
    pub idle_secs: u64,
    /// A warm session is re-read (KV, and its object when bound) after this long: the bound
    /// on how long a session ended elsewhere keeps working in this isolate.
    pub revalidate_secs: u64,
    /// Where the provider sends the browser after RP-initiated logout; without it, logout
    /// ends at the gateway's own signed-out page.
    pub post_logout_redirect_url: Option<Url>,
}

/// Bearer access-token rules (RFC 9068, RFC 8725 §3.8–3.11).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Accepted JOSE `typ` values (required).
    pub token_types: Vec<String>,
    /// At most one JWKS refetch per this many seconds for unknown `kid`s.
    pub jwks_refetch_cooldown_secs: u64,
    /// DPoP proof rules beyond RFC 9449's required checks.
    pub dpop: DpopSettings,
}

/// Optional DPoP protections (RFC 9449 §8, §11.1), both off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DpopSettings {
    /// Require a server-provided nonce in every proof (`DPOP_NONCE`).
    pub nonce: bool,
    /// Also record proof `jti`s in KV, so a replay to another isolate is caught once KV has
    /// converged (`DPOP_REPLAY_KV`).
    pub replay_kv: bool,
}

/// One bad setting, what is wrong with it and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub setting: &'static str,
    pub problem: String,
    pub fix: &'static str,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}. Fix: {}", self.setting, self.problem, self.fix)
    }
}

/// Every problem found in the settings, in settings order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ConfigErrors(pub Vec<SettingError>);

mod parse;

impl Config {
    /// Build the configuration from a lookup of settings by name (Worker vars and secrets).
    /// Blank values count as unset.
    pub fn from_settings(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
        parse::from_settings(&|name| lookup(name).filter(|v| !v.trim().is_empty()))
    }

    /// The OAuth `redirect_uri`: the gateway's callback under `PUBLIC_URL`.
    pub fn redirect_uri(&self) -> String {
        format!("{}{}", self.public_origin(), crate::gateway::paths::CALLBACK)
    }

    /// The provider at `index` (0: [`Config::provider`], then [`Config::providers`]). Indexes
    /// come from the validated config; one out of range gets the default provider.
    pub fn provider_at(&self, index: usize) -> &ProviderConfig {
        index.checked_sub(1).and_then(|i| self.providers.get(i)).unwrap_or(&self.provider)
    }

    /// The index of the provider called `name`.
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        if self.provider.name == name {
            return Some(0);
        }
        self.providers.iter().position(|p| p.name == name).map(|i| i + 1)
    }

    /// `PUBLIC_URL` as an origin string without a trailing slash.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }
}
