//! Structural parsing of a JWS Compact Serialization (RFC 7515 §7.1, §5.2) before any key is
//! touched, refusing everything RFC 8725 §3 calls dangerous:
//!
//! - a size bound first, so no work is spent on huge inputs;
//! - exactly three segments (five is a JWE, RFC 7516 §7.1: refused as such);
//! - strict base64url without padding (RFC 7515 §2): no `=`, `+`, `/`, whitespace, or
//!   non-canonical trailing bits, so one token has exactly one spelling;
//! - header and payload each a JSON object without duplicate member names (RFC 8725 §3.2);
//! - `alg` an asymmetric algorithm (RFC 8725 §3.1: `none` and HMAC are not representable);
//! - no `crit` (RFC 7515 §4.1.11: we understand no extensions, so must refuse any);
//! - no `jwk`/`jku`/`x5u`/`x5c` (RFC 8725 §3.10: keys come only from the configured JWKS);
//! - no `b64: false` (RFC 7797) and no nested JWT (`cty: JWT`).
//!
//! `jwt_compact::UntrustedToken` is not used here: it hides the decoded header and payload
//! bytes that duplicate detection needs, and ignores `crit`, so it would add a second decode
//! without removing any of these checks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::alg::JwsAlgorithm;
use super::error::{JwtError, log_snippet};
use crate::json::{self, StrictJsonError};

/// The default bound on a token's length: 16 KiB is far above real ID and access tokens
/// (Entra tokens with many groups stay under 8 KiB) and far below what costs real CPU.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;

/// Header parameters that carry or point at a key. A token must never choose its own key.
const EMBEDDED_KEY_PARAMS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// The JOSE header fields the gateway uses. Everything else in the header is ignored, except
/// the parameters refused during parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtHeader {
    /// The signature algorithm, already known to be asymmetric.
    pub alg: JwsAlgorithm,
    /// The key hint (RFC 7515 §4.1.4), matched against the provider's JWKS.
    pub kid: Option<String>,
    /// The explicit type (RFC 7515 §4.1.9), e.g. `at+jwt` for RFC 9068 access tokens.
    pub typ: Option<String>,
    /// Whether the header carries a `nonce`. Entra ID puts one in Microsoft Graph access
    /// tokens, whose signature only Graph itself can check; the caller may want to say so.
    pub has_nonce: bool,
}

/// A token that is well formed but whose signature and claims are not yet checked.
#[derive(Debug, Clone)]
pub struct UnverifiedJwt {
    header: JwtHeader,
    claims: Map<String, Value>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl UnverifiedJwt {
    /// Parse a compact JWS, refusing anything structurally unsafe (see the module doc).
    pub fn parse(token: &str, max_len: usize) -> Result<Self, JwtError> {
        Self::parse_inner(token, max_len, KeyParams::Refused).map(|(jwt, _)| jwt)
    }

    /// Parse a DPoP proof (RFC 9449 §4.2): a JWS that must carry its own public key as the
    /// `jwk` header parameter (returned beside it), under the same rules otherwise. The key
    /// only proves possession; what it may do is decided by the token's `cnf.jkt`.
    pub fn parse_with_own_key(token: &str, max_len: usize) -> Result<(Self, Map<String, Value>), JwtError> {
        let (jwt, jwk) = Self::parse_inner(token, max_len, KeyParams::OwnJwk)?;
        jwt_with_key(jwt, jwk)
    }

    fn parse_inner(
        token: &str,
        max_len: usize,
        key_params: KeyParams,
    ) -> Result<(Self, Option<Map<String, Value>>), JwtError> {
        if token.len() > max_len {
            return Err(JwtError::TokenTooLarge { len: token.len(), max: max_len });
        }
        // Six pieces are enough to tell JWS (3), JWE (5) and garbage apart.
        let segments: Vec<&str> = token.splitn(6, '.').collect();
        let [header_b64, payload_b64, signature_b64] = segments.as_slice() else {
            return Err(if segments.len() == 5 {
                JwtError::JweUnsupported
            } else {
                JwtError::Malformed("a JWS has exactly three segments")
            });
        };

        // Header first: an `alg: none` token (empty signature) must be refused for its `alg`.
        let header_json = decode_segment(header_b64, "header is not base64url")?;
        let header_map = json_object(&header_json, "header")?;
        let header = check_header(&header_map, key_params)?;
        let own_key = match key_params {
            KeyParams::Refused => None,
            KeyParams::OwnJwk => match header_map.get("jwk") {
                Some(Value::Object(jwk)) => Some(jwk.clone()),
                Some(_) => return Err(JwtError::Malformed("jwk is not a JSON object")),
                None => None,
            },
        };
        let payload_json = decode_segment(payload_b64, "payload is not base64url")?;
        let claims = json_object(&payload_json, "payload")?;
        let signature = decode_segment(signature_b64, "signature is not base64url")?;

        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        let signing_input =
            token.as_bytes().get(..signing_input_len).ok_or(JwtError::Malformed("signing input"))?.to_vec();
        Ok((Self { header, claims, signing_input, signature }, own_key))
    }

    pub fn header(&self) -> &JwtHeader {
        &self.header
    }

    pub fn alg(&self) -> JwsAlgorithm {
        self.header.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The claims, NOT verified: fit for routing (choosing which issuer's rules apply), never
    /// for an access decision.
    pub fn unverified_claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// `BASE64URL(header) '.' BASE64URL(payload)`, the bytes the signature covers.
    pub fn signing_input(&self) -> &[u8] {
        &self.signing_input
    }

    /// The decoded signature bytes (JOSE encoding: raw `r || s` for ECDSA).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// Which key-carrying header parameters a token may have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyParams {
    /// None of them: provider tokens are checked only with the configured JWKS.
    Refused,
    /// `jwk` (and no other): a DPoP proof signed with the key it carries.
    OwnJwk,
}

fn jwt_with_key(
    jwt: UnverifiedJwt,
    jwk: Option<Map<String, Value>>,
) -> Result<(UnverifiedJwt, Map<String, Value>), JwtError> {
    match jwk {
        Some(jwk) => Ok((jwt, jwk)),
        None => Err(JwtError::Malformed("jwk missing")),
    }
}

/// Strict base64url (RFC 7515 §2): the `NO_PAD` engine refuses `=` and refuses non-zero
/// trailing bits, and the URL-safe alphabet refuses `+`, `/` and whitespace.
fn decode_segment(segment: &str, what: &'static str) -> Result<Vec<u8>, JwtError> {
    if segment.is_empty() {
        return Err(JwtError::Malformed("empty segment"));
    }
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| JwtError::Malformed(what))
}

fn json_object(bytes: &[u8], part: &'static str) -> Result<Map<String, Value>, JwtError> {
    json::parse_object(bytes).map_err(|e| match e {
        StrictJsonError::DuplicateMember => JwtError::DuplicateJsonMember(part),
        StrictJsonError::Invalid | StrictJsonError::NotObject if part == "header" => {
            JwtError::Malformed("header is not a JSON object")
        }
        StrictJsonError::Invalid | StrictJsonError::NotObject => JwtError::Malformed("payload is not a JSON object"),
    })
}

/// Apply the header rules in the order that gives the most telling reason: the algorithm first
/// (the classic attacks are `none` and HMAC), then extensions, then key references.
fn check_header(header: &Map<String, Value>, key_params: KeyParams) -> Result<JwtHeader, JwtError> {
    let alg = match header.get("alg") {
        Some(Value::String(name)) => {
            name.parse::<JwsAlgorithm>().map_err(|_| JwtError::AlgNotAllowed(log_snippet(name)))?
        }
        Some(_) => return Err(JwtError::Malformed("alg is not a string")),
        None => return Err(JwtError::Malformed("alg missing")),
    };
    if header.contains_key("enc") {
        // A JWE header squeezed into three segments.
        return Err(JwtError::JweUnsupported);
    }
    if header.contains_key("crit") {
        return Err(JwtError::CritUnsupported);
    }
    let allowed = |p: &str| key_params == KeyParams::OwnJwk && p == "jwk";
    if let Some(param) = EMBEDDED_KEY_PARAMS.into_iter().find(|p| header.contains_key(*p) && !allowed(p)) {
        return Err(JwtError::EmbeddedKeyRefused(param));
    }
    match header.get("b64") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Err(JwtError::UnencodedPayload),
        Some(_) => return Err(JwtError::Malformed("b64 is not a boolean")),
    }
    let cty = optional_string(header, "cty")?;
    if cty.is_some_and(|c| c.eq_ignore_ascii_case("JWT")) {
        return Err(JwtError::NestedJwtUnsupported);
    }
    Ok(JwtHeader {
        alg,
        kid: optional_string(header, "kid")?.map(str::to_owned),
        typ: optional_string(header, "typ")?.map(str::to_owned),
        has_nonce: header.contains_key("nonce"),
    })
}

fn optional_string<'a>(header: &'a Map<String, Value>, name: &'static str) -> Result<Option<&'a str>, JwtError> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwtError::Malformed("header parameter has the wrong type")),
    }
}

#[cfg(test)]
mod tests;
