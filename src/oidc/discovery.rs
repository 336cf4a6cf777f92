//! Provider metadata (OpenID Connect Discovery 1.0 §3–4).
//!
//! The discovered `issuer` must equal the configured one exactly (§4.3): that is what stops a
//! compromised or mistyped discovery document from pointing the gateway at another provider.

use crate::config::{ProviderConfig, is_loopback};
use serde::Deserialize;
use url::Url;

/// The parts of `/.well-known/openid-configuration` the gateway uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 9207 §3: the provider puts `iss` in every authorization response, so one without
    /// it did not come from this provider as it is (§2.4: the client must refuse it).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// Why a discovery document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// Not JSON, or required members missing.
    #[error("discovery document is malformed: {0}")]
    Malformed(String),
    /// The document names another issuer than the one configured.
    #[error("discovery issuer {found:?} differs from the configured issuer {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    /// An endpoint is not an absolute https URL (http only on loopback).
    #[error("discovery endpoint {name} is not an acceptable URL: {value:?}")]
    BadEndpoint { name: &'static str, value: String },
}

/// Where the discovery document of `issuer` lives (OIDC Discovery §4: appended to the
/// issuer's path, which matters for Entra's `/{tenant}/v2.0` issuers).
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

fn acceptable_endpoint(value: &str) -> bool {
    Url::parse(value).is_ok_and(|u| u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)))
}

impl ProviderMetadata {
    /// Parse a discovery document and check it against the configured issuer.
    pub fn parse(body: &[u8], expected_issuer: &str) -> Result<Self, DiscoveryError> {
        Self::parse_checked(body, expected_issuer, |issuer| issuer == expected_issuer)
    }

    /// Parse the discovery document of the configured provider: the issuer must be the
    /// configured one exactly, or for the Entra preset the one its tenant publishes.
    pub fn parse_for(body: &[u8], provider: &ProviderConfig) -> Result<Self, DiscoveryError> {
        match &provider.entra {
            None => Self::parse(body, &provider.issuer),
            Some(entra) => {
                Self::parse_checked(body, &entra.expected_issuer_text(), |i| entra.accepts_discovered_issuer(i))
            }
        }
    }

    fn parse_checked(body: &[u8], expected_text: &str, accepts: impl Fn(&str) -> bool) -> Result<Self, DiscoveryError> {
        let metadata: ProviderMetadata =
            crate::json::decode(body).map_err(|e| DiscoveryError::Malformed(e.to_string()))?;
        if !accepts(&metadata.issuer) {
            return Err(DiscoveryError::IssuerMismatch { expected: expected_text.to_owned(), found: metadata.issuer });
        }
        let mut endpoints = vec![
            ("authorization_endpoint", Some(&metadata.authorization_endpoint)),
            ("token_endpoint", Some(&metadata.token_endpoint)),
            ("jwks_uri", Some(&metadata.jwks_uri)),
        ];
        endpoints.push(("end_session_endpoint", metadata.end_session_endpoint.as_ref()));
        endpoints.push(("revocation_endpoint", metadata.revocation_endpoint.as_ref()));
        for (name, value) in endpoints {
            if let Some(value) = value.filter(|v| !acceptable_endpoint(v)) {
                return Err(DiscoveryError::BadEndpoint { name, value: value.clone() });
            }
        }
        Ok(metadata)
    }

    /// The scopes to request: the configured ones, plus `offline_access` when the provider
    /// lists it, so sessions can be refreshed without a new sign-in.
    pub fn scopes_for(&self, configured: &[String]) -> Vec<String> {
        let mut scopes = configured.to_vec();
        let offers_offline = self.scopes_supported.as_ref().is_some_and(|s| s.iter().any(|s| s == "offline_access"));
        if offers_offline && !scopes.iter().any(|s| s == "offline_access") {
            scopes.push("offline_access".to_owned());
        }
        scopes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(issuer: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "issuer": issuer,
            "authorization_endpoint": "https://idp.example.com/authorize",
            "token_endpoint": "https://idp.example.com/token",
            "jwks_uri": "https://idp.example.com/jwks",
            "scopes_supported": ["openid", "offline_access"],
        }))
        .unwrap()
    }

    #[test]
    fn url_keeps_the_issuer_path() {
        assert_eq!(
            discovery_url("https://login.microsoftonline.com/tid/v2.0"),
            "https://login.microsoftonline.com/tid/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(discovery_url("https://idp/"), "https://idp/.well-known/openid-configuration");
    }

    #[test]
    fn issuer_must_match_exactly() {
        assert!(ProviderMetadata::parse(&doc("https://idp.example.com"), "https://idp.example.com").is_ok());
        for other in ["https://idp.example.com/", "https://evil.example.com", "https://IDP.example.com"] {
            assert!(matches!(
                ProviderMetadata::parse(&doc(other), "https://idp.example.com"),
                Err(DiscoveryError::IssuerMismatch { .. })
            ));
        }
    }

    #[test]
    fn refuses_garbage_and_plain_http_endpoints() {
        assert!(matches!(ProviderMetadata::parse(b"<html>", "x"), Err(DiscoveryError::Malformed(_))));
        let mut v: serde_json::Value = serde_json::from_slice(&doc("https://i")).unwrap();
        v["token_endpoint"] = json!("http://idp.example.com/token");
        let body = serde_json::to_vec(&v).unwrap();
        assert!(matches!(ProviderMetadata::parse(&body, "https://i"), Err(DiscoveryError::BadEndpoint { .. })));
    }

    #[test]
    fn a_document_naming_a_member_twice_is_refused_not_read_by_its_last_copy() {
        // A lenient parser keeps the last `jwks_uri` (the legitimate one here) and works on;
        // another component reading the first would fetch keys from elsewhere (RFC 8725 §3.2).
        let body = String::from_utf8(doc("https://i")).unwrap();
        let twice = body.replacen('{', r#"{"jwks_uri":"https://evil.example/keys","#, 1);
        assert!(matches!(ProviderMetadata::parse(twice.as_bytes(), "https://i"), Err(DiscoveryError::Malformed(_))));
        assert!(ProviderMetadata::parse(body.as_bytes(), "https://i").is_ok());
    }

    #[test]
    fn adds_offline_access_when_offered() {
        let m = ProviderMetadata::parse(&doc("https://i"), "https://i").unwrap();
        assert_eq!(m.scopes_for(&["openid".into()]), vec!["openid", "offline_access"]);
        let mut m2 = m.clone();
        m2.scopes_supported = Some(vec!["openid".into()]);
        assert_eq!(m2.scopes_for(&["openid".into()]), vec!["openid"]);
    }
}
