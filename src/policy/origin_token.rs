//! What a route's origin receives in `Authorization` (the `origin_token` route field), and which
//! token the gateway asks its provider for when it obtains one itself (`token_target`).

use super::AuthMode;
use serde::Deserialize;

/// The origin's `Authorization` on a route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginToken {
    /// The signed-in user's access token, or the bearer caller's own token (the default).
    #[default]
    Caller,
    /// The gateway's own token from the client-credentials grant (RFC 6749 §4.4) for the
    /// route's `token_target`: the "trusted subsystem" call, or a machine-to-machine path.
    App,
    /// A token for the route's `token_target` exchanged from the caller's own token (Entra
    /// on-behalf-of, or RFC 8693 token exchange: `ON_BEHALF_OF_GRANT`).
    OnBehalfOf,
    /// No `Authorization` at all.
    None,
}

/// Which token to ask for, sent to the token endpoint as written: Entra v1 `resource`, Entra v2
/// `scope` (`<App ID URI>/.default`), RFC 8707 `resource`, Auth0-style `audience`, or a mix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenTarget {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
}

impl TokenTarget {
    /// The form parameters this target adds to a grant, in a fixed order.
    pub fn params(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("resource", &self.resource), ("scope", &self.scope), ("audience", &self.audience)]
            .into_iter()
            .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    }

    /// What identifies the token in caches: every parameter, unambiguously joined.
    pub fn cache_key(&self) -> String {
        self.params().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("\0")
    }
}

/// Problems with a route's `origin_token` / `token_target` pair, for the config error list.
pub fn check_origin_token(auth: AuthMode, mode: OriginToken, target: Option<&TokenTarget>) -> Option<String> {
    let has_target = target.is_some_and(|t| t.params().any(|(_, v)| !v.trim().is_empty()));
    match mode {
        OriginToken::App | OriginToken::OnBehalfOf if !has_target => Some(format!(
            "origin_token {} needs a token_target with resource, scope or audience (e.g. {{\"scope\": \"api://orders/.default\"}})",
            name(mode)
        )),
        OriginToken::OnBehalfOf if auth == AuthMode::Public => {
            Some("origin_token on_behalf_of needs a caller: use auth session, bearer or session_or_bearer".into())
        }
        OriginToken::Caller | OriginToken::None if target.is_some() => {
            Some(format!("token_target is only used with origin_token app or on_behalf_of, not {}", name(mode)))
        }
        _ => None,
    }
}

fn name(mode: OriginToken) -> &'static str {
    match mode {
        OriginToken::Caller => "caller",
        OriginToken::App => "app",
        OriginToken::OnBehalfOf => "on_behalf_of",
        OriginToken::None => "none",
    }
}
