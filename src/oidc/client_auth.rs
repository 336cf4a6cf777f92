//! Client authentication at the token endpoint (OIDC Core §9): `client_secret_basic`
//! (RFC 6749 §2.3.1), `client_secret_post`, and `private_key_jwt` (RFC 7523 §2.2, §3).
//!
//! The assertion is built here (claims, header with certificate thumbprints) and signed by the
//! caller through the [`crate::ports::Signer`] port, so this module stays free of I/O.

use crate::config::{ClientAssertionConfig, Secret};
use base64::Engine;
use serde_json::{Value, json};
use url::form_urlencoded;

/// RFC 7523 §2.2 `client_assertion_type`.
pub const JWT_BEARER_CLIENT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion: short, as each is used once (Entra ID allows up to 10 min).
pub const CLIENT_ASSERTION_LIFETIME_SECS: u64 = 300;

/// How one request authenticates the client, ready to apply.
pub enum ClientAuthentication<'a> {
    Basic {
        client_id: &'a str,
        secret: &'a Secret,
    },
    Post {
        client_id: &'a str,
        secret: &'a Secret,
    },
    /// A signed, single-use client assertion JWT.
    Assertion {
        client_id: &'a str,
        assertion: String,
    },
}

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl ClientAuthentication<'_> {
    /// Add the credentials to a form POST: an `Authorization` header or form fields.
    pub fn apply(
        &self,
        builder: http::request::Builder,
        form: &mut form_urlencoded::Serializer<'_, String>,
    ) -> http::request::Builder {
        match self {
            ClientAuthentication::Basic { client_id, secret } => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
                let pair = format!("{}:{}", form_encode(client_id), form_encode(secret.expose()));
                let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                form.append_pair("client_id", client_id);
                builder.header(http::header::AUTHORIZATION, format!("Basic {basic}"))
            }
            ClientAuthentication::Post { client_id, secret } => {
                form.append_pair("client_id", client_id).append_pair("client_secret", secret.expose());
                builder
            }
            ClientAuthentication::Assertion { client_id, assertion } => {
                form.append_pair("client_id", client_id)
                    .append_pair("client_assertion_type", JWT_BEARER_CLIENT_ASSERTION)
                    .append_pair("client_assertion", assertion);
                builder
            }
        }
    }
}

/// Header and claims of a client assertion (RFC 7523 §3): `iss` = `sub` = the client ID,
/// `aud` = the token endpoint, a fresh `jti`, and `exp` five minutes on. The header names the
/// certificate by thumbprint (`x5t#S256`, and `x5t` which Entra ID matches on).
pub fn client_assertion_claims(
    client_id: &str,
    token_endpoint: &str,
    config: &ClientAssertionConfig,
    now: u64,
    jti: &str,
) -> (Value, Value) {
    let mut header = serde_json::Map::new();
    header.insert("alg".into(), json!(config.key.alg.name()));
    header.insert("typ".into(), json!("JWT"));
    if let Some(x5t_s256) = &config.x5t_s256 {
        header.insert("x5t#S256".into(), json!(x5t_s256));
    }
    if let Some(x5t) = &config.x5t {
        header.insert("x5t".into(), json!(x5t));
    }
    let header = Value::Object(header);
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint,
        "jti": jti,
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(CLIENT_ASSERTION_LIFETIME_SECS),
    });
    (header, claims)
}
