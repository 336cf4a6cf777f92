//! JWK thumbprints (RFC 7638): the SHA-256 of a key's required members, which is what a
//! DPoP-bound token's `cnf.jkt` names (RFC 9449 §6.1).

use crate::encoding::{b64url, sha256};
use serde_json::{Map, Value};

/// The required members of each key type, in the lexicographic order RFC 7638 §3.2 demands.
fn required_members(kty: &str) -> Option<&'static [&'static str]> {
    match kty {
        "EC" => Some(&["crv", "kty", "x", "y"]),
        "RSA" => Some(&["e", "kty", "n"]),
        "OKP" => Some(&["crv", "kty", "x"]),
        _ => None,
    }
}

/// The base64url SHA-256 thumbprint of `jwk`, or `None` when a required member is missing or
/// not a string, or the key type has no thumbprint form here.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let kty = jwk.get("kty")?.as_str()?;
    let mut canonical = Map::new();
    for name in required_members(kty)? {
        let value = jwk.get(*name)?.as_str()?;
        canonical.insert((*name).to_owned(), Value::String(value.to_owned()));
    }
    // serde_json's Map keeps keys sorted (no preserve_order feature) and writes no whitespace:
    // exactly the RFC 7638 form for these ASCII members.
    let json = serde_json::to_string(&Value::Object(canonical)).ok()?;
    Some(b64url(&sha256(json.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc_7638_example() {
        // RFC 7638 §3.1: the RSA key and its thumbprint.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(jwk.as_object().unwrap()).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn optional_members_do_not_change_it_and_symmetric_keys_have_none() {
        let ec = json!({"kty": "EC", "crv": "P-256", "x": "abc", "y": "def"});
        let with_extras = json!({"kty": "EC", "crv": "P-256", "x": "abc", "y": "def", "kid": "k", "use": "sig"});
        assert_eq!(jwk_thumbprint(ec.as_object().unwrap()), jwk_thumbprint(with_extras.as_object().unwrap()));
        assert_eq!(jwk_thumbprint(json!({"kty": "oct", "k": "secret"}).as_object().unwrap()), None);
        assert_eq!(jwk_thumbprint(json!({"kty": "EC", "crv": "P-256", "x": "abc"}).as_object().unwrap()), None);
    }
}
