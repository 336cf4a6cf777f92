//! `OIDC_CLIENT_AUTH_METHOD` and what each method needs: a client secret, or a PKCS#8 private
//! key with optional certificate thumbprints for `private_key_jwt`.

use super::Collector;
use crate::config::{
    ClientAssertionConfig, ClientAuth, KeyKind, OnBehalfOfGrant, Secret, SigningKeyConfig, names, parse_pkcs8_pem,
    parse_thumbprint,
};
use crate::jwt::JwsAlgorithm;

const SECRET_FIX: &str = "store the client secret as a Worker secret: `wrangler secret put OIDC_CLIENT_SECRET` (locally in .dev.vars), or use OIDC_CLIENT_AUTH_METHOD=private_key_jwt";
const KEY_FIX: &str = "store a PKCS#8 PEM key as a Worker secret: `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out client.key && wrangler secret put OIDC_CLIENT_PRIVATE_KEY < client.key` (convert an older key with `openssl pkcs8 -topk8 -nocrypt -in old.key -out client.key`)";

pub(super) fn client_auth(c: &mut Collector<'_>) -> Option<ClientAuth> {
    match c.optional(names::OIDC_CLIENT_AUTH_METHOD).as_deref().map(str::trim) {
        None | Some("client_secret_basic") => {
            c.required(names::OIDC_CLIENT_SECRET, SECRET_FIX).map(|s| ClientAuth::ClientSecretBasic(Secret::new(s)))
        }
        Some("client_secret_post") => {
            c.required(names::OIDC_CLIENT_SECRET, SECRET_FIX).map(|s| ClientAuth::ClientSecretPost(Secret::new(s)))
        }
        Some("private_key_jwt") => client_assertion(c).map(ClientAuth::PrivateKeyJwt),
        Some(other) => {
            c.fail(
                names::OIDC_CLIENT_AUTH_METHOD,
                format!("unknown method {other:?}"),
                "use client_secret_basic (default), client_secret_post or private_key_jwt",
            );
            None
        }
    }
}

/// A signing key from a PEM setting and an optional algorithm setting; the algorithm defaults
/// to the key's own kind (RS256 for RSA, ES256 for P-256) and must fit the key.
pub(in crate::config) fn signing_key(
    c: &mut Collector<'_>,
    key_setting: &'static str,
    alg_setting: &'static str,
    fix: &'static str,
) -> Option<SigningKeyConfig> {
    let raw = c.required(key_setting, fix)?;
    let (pkcs8, kind) = match parse_pkcs8_pem(&raw) {
        Ok(parsed) => parsed,
        Err(problem) => {
            c.fail(key_setting, problem, fix);
            return None;
        }
    };
    let alg = match c.optional(alg_setting) {
        None => kind.default_alg(),
        Some(name) => match name.trim().parse::<JwsAlgorithm>() {
            Ok(alg) if kind.signs(alg) => alg,
            _ => {
                let fix = if kind == KeyKind::Rsa {
                    "use RS256 or PS256 for an RSA key"
                } else {
                    "use ES256 for a P-256 key"
                };
                c.fail(alg_setting, format!("{name:?} cannot be signed with this key"), fix);
                return None;
            }
        },
    };
    Some(SigningKeyConfig { pkcs8, alg })
}

fn thumbprint(
    c: &mut Collector<'_>,
    setting: &'static str,
    digest_len: usize,
    fix: &'static str,
) -> Option<Option<String>> {
    let Some(raw) = c.optional(setting) else {
        return Some(None);
    };
    match parse_thumbprint(&raw, digest_len) {
        Ok(value) => Some(Some(value)),
        Err(problem) => {
            c.fail(setting, problem, fix);
            None
        }
    }
}

fn client_assertion(c: &mut Collector<'_>) -> Option<ClientAssertionConfig> {
    let key = signing_key(c, names::OIDC_CLIENT_PRIVATE_KEY, names::OIDC_CLIENT_ASSERTION_ALG, KEY_FIX);
    let x5t_s256 = thumbprint(
        c,
        names::OIDC_CLIENT_CERT_THUMBPRINT_SHA256,
        32,
        "give the certificate's SHA-256 fingerprint: `openssl x509 -in client.crt -noout -fingerprint -sha256` (64 hex digits)",
    );
    let x5t = thumbprint(
        c,
        names::OIDC_CLIENT_CERT_THUMBPRINT_SHA1,
        20,
        "give the certificate's SHA-1 thumbprint as the Entra portal shows it, or `openssl x509 -in client.crt -noout -fingerprint -sha1` (40 hex digits)",
    );
    Some(ClientAssertionConfig { key: key?, x5t_s256: x5t_s256?, x5t: x5t? })
}

pub(super) fn on_behalf_of_grant(c: &mut Collector<'_>) -> Option<OnBehalfOfGrant> {
    match c.optional(names::ON_BEHALF_OF_GRANT).as_deref().map(str::trim) {
        None | Some("token_exchange") => Some(OnBehalfOfGrant::TokenExchange),
        Some("jwt_bearer") => Some(OnBehalfOfGrant::JwtBearer),
        Some(other) => {
            c.fail(
                names::ON_BEHALF_OF_GRANT,
                format!("unknown grant {other:?}"),
                "use token_exchange (RFC 8693, default) or jwt_bearer (Entra ID on-behalf-of)",
            );
            None
        }
    }
}
