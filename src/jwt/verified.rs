//! A token whose signature and claims have been checked, with typed read access to the claims
//! the gateway's policies use: RFC 7519 §4.1 registered claims, RFC 9068 §2.2 (`client_id`,
//! `scope`), RFC 9068 §2.2.3.1 / RFC 7643 (`roles`, `groups`), OIDC Core §2 (`nonce`, `azp`,
//! `auth_time`), and Entra ID's `scp` and `tid`.
//!
//! Helpers are lenient readers: a claim of an unexpected JSON type reads as absent. Claims that
//! decide validity were already type-checked by [`ClaimRules`](super::ClaimRules).

use serde_json::{Map, Value};

use super::claims::numeric_date;
use super::parse::JwtHeader;

/// A verified JWT: its header and its claims set.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedJwt {
    header: JwtHeader,
    claims: Map<String, Value>,
}

impl VerifiedJwt {
    pub(crate) fn new(header: JwtHeader, claims: Map<String, Value>) -> Self {
        Self { header, claims }
    }

    pub fn header(&self) -> &JwtHeader {
        &self.header
    }

    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    pub fn into_claims(self) -> Map<String, Value> {
        self.claims
    }

    /// Any claim, for policies on claims without a typed helper.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// A string claim.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub fn sub(&self) -> Option<&str> {
        self.string("sub")
    }

    pub fn iss(&self) -> Option<&str> {
        self.string("iss")
    }

    /// `aud` as a list, whether the token gave a string or an array.
    pub fn audiences(&self) -> Vec<&str> {
        self.list("aud", false)
    }

    pub fn exp(&self) -> Option<u64> {
        self.date("exp")
    }

    pub fn iat(&self) -> Option<u64> {
        self.date("iat")
    }

    pub fn nbf(&self) -> Option<u64> {
        self.date("nbf")
    }

    pub fn auth_time(&self) -> Option<u64> {
        self.date("auth_time")
    }

    pub fn azp(&self) -> Option<&str> {
        self.string("azp")
    }

    /// The ID token `nonce` claim (not the JOSE header parameter).
    pub fn nonce(&self) -> Option<&str> {
        self.string("nonce")
    }

    pub fn client_id(&self) -> Option<&str> {
        self.string("client_id")
    }

    pub fn jti(&self) -> Option<&str> {
        self.string("jti")
    }

    /// Entra ID tenant.
    pub fn tid(&self) -> Option<&str> {
        self.string("tid")
    }

    /// Granted scopes: RFC 9068 `scope`, else Entra's `scp`; each may be a space-separated
    /// string or an array of strings.
    pub fn scopes(&self) -> Vec<&str> {
        if self.claims.contains_key("scope") { self.list("scope", true) } else { self.list("scp", true) }
    }

    /// `roles` (array of strings, or one string).
    pub fn roles(&self) -> Vec<&str> {
        self.list("roles", false)
    }

    /// `groups` (array of strings, or one string).
    pub fn groups(&self) -> Vec<&str> {
        self.list("groups", false)
    }

    /// Any string-list claim (array of strings, or one string), e.g. Entra's `wids`.
    pub fn list_claim(&self, name: &str) -> Vec<&str> {
        self.list(name, false)
    }

    fn date(&self, name: &'static str) -> Option<u64> {
        numeric_date(&self.claims, name).ok().flatten()
    }

    /// A string-list claim. `split`: a single string is a space-separated list (scopes).
    /// Non-string array items are ignored rather than guessed at.
    fn list(&self, name: &str, split: bool) -> Vec<&str> {
        match self.claims.get(name) {
            Some(Value::String(s)) if split => s.split(' ').filter(|p| !p.is_empty()).collect(),
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::JwsAlgorithm;
    use serde_json::json;

    fn token(claims: Value) -> VerifiedJwt {
        let header = JwtHeader { alg: JwsAlgorithm::Rs256, kid: None, typ: None, has_nonce: false };
        let Value::Object(map) = claims else { unreachable!() };
        VerifiedJwt::new(header, map)
    }

    #[test]
    fn typed_helpers() {
        let t = token(json!({
            "sub": "u1", "iss": "https://idp", "aud": ["a", 5, "b"], "exp": 200, "iat": 100.9,
            "nbf": 100, "auth_time": 90, "azp": "c", "nonce": "n", "client_id": "c",
            "jti": "j", "tid": "t", "scp": "read  write", "roles": "admin",
            "groups": ["g1", {"x": 1}]
        }));
        assert_eq!(t.sub(), Some("u1"));
        assert_eq!(t.iss(), Some("https://idp"));
        assert_eq!(t.audiences(), ["a", "b"]);
        assert_eq!((t.exp(), t.iat(), t.nbf(), t.auth_time()), (Some(200), Some(100), Some(100), Some(90)));
        assert_eq!(
            (t.azp(), t.nonce(), t.client_id(), t.jti(), t.tid()),
            (Some("c"), Some("n"), Some("c"), Some("j"), Some("t"))
        );
        assert_eq!(t.scopes(), ["read", "write"]);
        assert_eq!(t.roles(), ["admin"]);
        assert_eq!(t.groups(), ["g1"]);
        assert_eq!(t.claim("jti"), Some(&json!("j")));
    }

    #[test]
    fn scope_forms() {
        let cases = [
            (json!({"scope": "a b"}), vec!["a", "b"]),
            (json!({"scope": ["a", "b"]}), vec!["a", "b"]),
            (json!({"scp": ["x"]}), vec!["x"]),
            (json!({"scope": "a", "scp": "x"}), vec!["a"]),
            (json!({"scope": 5}), vec![]),
            (json!({}), vec![]),
        ];
        for (claims, want) in cases {
            assert_eq!(token(claims.clone()).scopes(), want, "{claims}");
        }
    }

    #[test]
    fn wrong_types_read_as_absent() {
        let t = token(json!({"sub": 5, "aud": "one", "exp": "soon", "roles": {"a": 1}}));
        assert_eq!(t.sub(), None);
        assert_eq!(t.audiences(), ["one"]);
        assert_eq!(t.exp(), None);
        assert!(t.roles().is_empty());
    }
}
