//! The authorization request (OIDC Core §3.1.2.1) with PKCE S256 (RFC 7636 §4) and RFC 8707
//! `resource`.

use super::ProviderMetadata;
use crate::config::{Config, ProviderConfig};
use crate::encoding::{b64url, sha256};
use crate::session::LoginTransaction;
use url::Url;

/// `BASE64URL(SHA256(verifier))` (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    b64url(&sha256(verifier.as_bytes()))
}

/// The URL the browser is sent to for sign-in.
pub fn build_authorize_url(
    metadata: &ProviderMetadata,
    config: &Config,
    provider: &ProviderConfig,
    tx: &LoginTransaction,
) -> Result<String, url::ParseError> {
    let mut url = Url::parse(&metadata.authorization_endpoint)?;
    let scopes = metadata.scopes_for(&provider.scopes).join(" ");
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", &config.redirect_uri())
            .append_pair("scope", &scopes)
            .append_pair("state", &tx.state)
            .append_pair("nonce", &tx.nonce)
            .append_pair("code_challenge", &pkce_challenge(&tx.pkce_verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(resource) = &provider.resource {
            query.append_pair("resource", resource);
        }
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::FakeRng;
    use std::collections::HashMap;

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn carries_every_required_parameter() {
        let config = crate::gateway::tests::config(&[("OIDC_RESOURCE", "https://api.example.test")]);
        let metadata = crate::gateway::tests::metadata("https://idp.example.com");
        let tx = LoginTransaction::begin(&FakeRng::new(1), 0, "/".into(), "binding");
        let url = Url::parse(&build_authorize_url(&metadata, &config, &config.provider, &tx).unwrap()).unwrap();
        assert_eq!(url.path(), "/authorize");
        let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "edgeguard");
        assert_eq!(q["redirect_uri"], "https://gw.example.com/auth/callback");
        assert_eq!(q["scope"], "openid profile email offline_access");
        assert_eq!(q["state"], tx.state);
        assert_eq!(q["nonce"], tx.nonce);
        assert_eq!(q["code_challenge"], pkce_challenge(&tx.pkce_verifier));
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["resource"], "https://api.example.test");
        assert_ne!(tx.state, tx.nonce);
    }
}
