//! The JSON Web Key model (RFC 7517) for provider public keys.

use serde::Deserialize;

/// One public key from a provider's JWKS. Members the gateway does not use are ignored; private
/// members (`d`, `p`, `q`, ...) are never read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    /// `sig` or `enc`; keys marked `enc` are never used to verify.
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default)]
    pub key_ops: Option<Vec<String>>,
    /// RSA modulus and exponent (base64url, big-endian).
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    /// EC / OKP curve and coordinates (base64url).
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
    /// The issuer this key signs for (Entra publishes it, templated with `{tenantid}` on
    /// multi-tenant key sets). When present, a token's `iss` must be it.
    #[serde(default)]
    pub issuer: Option<String>,
}
