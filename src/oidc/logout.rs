//! Ending sessions with the provider: refresh-token revocation (RFC 7009), RP-initiated logout
//! (OpenID Connect RP-Initiated Logout 1.0 §2) and back-channel logout tokens (OpenID Connect
//! Back-Channel Logout 1.0 §2.4–2.6).

use super::client_auth::ClientAuthentication;
use super::token::client_authenticated_post;
use crate::config::ProviderConfig;
use crate::error::GatewayError;
use crate::jwt::{
    ClaimRules, DEFAULT_MAX_TOKEN_LEN, ErrorClass, IssuerRule, JwksCache, UnverifiedJwt, verify_with_cache,
};
use crate::oidc::ProviderError;
use crate::ports::{OutgoingRequest, Ports};
use url::{Url, form_urlencoded};

/// The event a logout token must carry.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Logout tokens issued longer ago than this are refused (and their `jti`s need only be
/// remembered this long).
pub const LOGOUT_TOKEN_MAX_AGE_SECS: u64 = 300;

/// Ask the provider to revoke a refresh token (RFC 7009 §2.1).
pub fn build_revocation_request(
    endpoint: &str,
    auth: &ClientAuthentication<'_>,
    refresh_token: &str,
) -> Result<OutgoingRequest, http::Error> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", refresh_token).append_pair("token_type_hint", "refresh_token");
    client_authenticated_post(endpoint, auth, form)
}

/// Where to send the browser to end its session at the provider too.
pub fn build_end_session_url(
    endpoint: &str,
    id_token_hint: &str,
    post_logout_redirect_uri: &Url,
    client_id: &str,
) -> Result<String, url::ParseError> {
    let mut url = Url::parse(endpoint)?;
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token_hint)
        .append_pair("post_logout_redirect_uri", post_logout_redirect_uri.as_str())
        .append_pair("client_id", client_id);
    Ok(url.into())
}

/// Whom a valid logout token logs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub sid: Option<String>,
    pub sub: Option<String>,
    pub jti: String,
}

fn rejected(why: impl Into<String>) -> GatewayError {
    GatewayError::LogoutTokenRejected(why.into())
}

/// Validate a logout token (§2.6): signature, `iss`, `aud`, `iat` (recent), `exp`, `jti`,
/// the back-channel `events` member, `sid` or `sub`, and no `nonce`; `typ` if present must be
/// `logout+jwt`. Replay of `jti` is the caller's check (it needs the store).
pub async fn validate_logout_token<P: Ports>(
    ports: &P,
    keys: &JwksCache<P::Key>,
    jwks_uri: &str,
    logout_token: &str,
    provider: &ProviderConfig,
) -> Result<LogoutRequest, GatewayError> {
    let token = UnverifiedJwt::parse(logout_token, DEFAULT_MAX_TOKEN_LEN).map_err(|e| rejected(e.reason()))?;
    if token.header().typ.as_deref().is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t != "logout+jwt" && t != "application/logout+jwt"
    }) {
        return Err(rejected("typ_mismatch"));
    }
    let mut rules = ClaimRules::new(IssuerRule::Exact(provider.issuer.clone()), vec![provider.client_id.clone()]);
    rules.leeway_secs = provider.clock_skew_secs;
    rules.require_iat = true;
    rules.max_age_secs = Some(LOGOUT_TOKEN_MAX_AGE_SECS);
    let now = ports.now_secs();
    let verification = verify_with_cache(ports, keys, jwks_uri, &token, &provider.allowed_algs, &rules, now).await;
    let verified = verification.result.map_err(|e| match e.class() {
        ErrorClass::Token => rejected(e.reason()),
        ErrorClass::Provider | ErrorClass::Internal => GatewayError::Provider(ProviderError::Keys(e)),
    })?;
    let claims = verified.claims();
    if claims.contains_key("nonce") {
        return Err(rejected("nonce_present"));
    }
    let has_event = claims
        .get("events")
        .and_then(|e| e.as_object())
        .is_some_and(|events| events.get(BACKCHANNEL_LOGOUT_EVENT).is_some_and(|v| v.is_object()));
    if !has_event {
        return Err(rejected("events_missing"));
    }
    let jti = verified.jti().filter(|j| !j.is_empty()).ok_or_else(|| rejected("jti_missing"))?.to_owned();
    let sid = verified.string("sid").map(str::to_owned);
    let sub = verified.sub().map(str::to_owned);
    if sid.is_none() && sub.is_none() {
        return Err(rejected("sid_and_sub_missing"));
    }
    Ok(LogoutRequest { sid, sub, jti })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_session_url_carries_hint_redirect_and_client() {
        let url = build_end_session_url(
            "https://idp.example.com/session/end?x=1",
            "id.token.hint",
            &Url::parse("https://gw.example.com/signed-out").unwrap(),
            "edgeguard",
        )
        .unwrap();
        let q: std::collections::HashMap<_, _> = Url::parse(&url).unwrap().query_pairs().into_owned().collect();
        assert_eq!(q["x"], "1");
        assert_eq!(q["id_token_hint"], "id.token.hint");
        assert_eq!(q["post_logout_redirect_uri"], "https://gw.example.com/signed-out");
        assert_eq!(q["client_id"], "edgeguard");
    }

    #[test]
    fn revocation_names_the_refresh_token_and_authenticates_the_client() {
        let secret = crate::config::Secret::new("s".into());
        let auth = ClientAuthentication::Basic { client_id: "edgeguard", secret: &secret };
        let req = build_revocation_request("https://idp/revoke", &auth, "rt-1").unwrap();
        let form: std::collections::HashMap<_, _> = form_urlencoded::parse(req.body()).into_owned().collect();
        assert_eq!(form["token"], "rt-1");
        assert_eq!(form["token_type_hint"], "refresh_token");
        assert!(req.headers()["authorization"].to_str().unwrap().starts_with("Basic "));
    }
}
