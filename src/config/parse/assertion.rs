//! The key that signs user assertions for origins, and the JWKS published for it
//! (`ASSERTION_SIGNING_KEY`, `ASSERTION_SIGNING_ALG`, `ASSERTION_PREVIOUS_SIGNING_KEY`).

use super::Collector;
use super::client_auth::signing_key;
use crate::config::{AssertionConfig, KeyKind, Pkcs8Der, names, parse_pkcs8_pem, public_jwk_members};
use crate::encoding::{b64url, sha256};
use crate::jwt::JwsAlgorithm;
use crate::policy::RouteTable;

const KEY_FIX: &str = "store a PKCS#8 PEM key as a Worker secret: `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out assertion.key && wrangler secret put ASSERTION_SIGNING_KEY < assertion.key`";

/// A public JWK (RFC 7517) with its RFC 7638 thumbprint as `kid`, as JSON text.
fn public_jwk(der: &Pkcs8Der, kind: KeyKind, alg: JwsAlgorithm) -> Option<(String, String)> {
    let members = public_jwk_members(der, kind)?;
    // RFC 7638 §3: the required members, sorted, no whitespace (they already are sorted).
    let canonical: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":\"{v}\"")).collect();
    let kid = b64url(&sha256(format!("{{{}}}", canonical.join(",")).as_bytes()));
    let jwk = format!("{{{},\"kid\":\"{kid}\",\"alg\":\"{}\",\"use\":\"sig\"}}", canonical.join(","), alg.name());
    Some((kid, jwk))
}

fn key_problem(c: &mut Collector<'_>, setting: &'static str) {
    c.fail(
        setting,
        "holds no public key (an EC key needs its public point)",
        "export it again with `openssl pkcs8 -topk8 -nocrypt`",
    );
}

pub(super) fn assertion(c: &mut Collector<'_>, routes: Option<&RouteTable>) -> Option<Option<AssertionConfig>> {
    let needed = routes.is_some_and(|t| t.routes().iter().any(|r| r.assertion.is_some()));
    if c.optional(names::ASSERTION_SIGNING_KEY).is_none() {
        if needed {
            c.fail(names::ASSERTION_SIGNING_KEY, "is not set but a route sends an assertion", KEY_FIX);
            return None;
        }
        return Some(None);
    }
    let key = signing_key(c, names::ASSERTION_SIGNING_KEY, names::ASSERTION_SIGNING_ALG, KEY_FIX)?;
    let kind = if key.alg == JwsAlgorithm::Es256 { KeyKind::EcP256 } else { KeyKind::Rsa };
    let Some((kid, current)) = public_jwk(&key.pkcs8, kind, key.alg) else {
        key_problem(c, names::ASSERTION_SIGNING_KEY);
        return None;
    };
    let mut published = vec![current];
    if let Some(raw) = c.optional(names::ASSERTION_PREVIOUS_SIGNING_KEY) {
        let previous =
            parse_pkcs8_pem(&raw).map_err(|problem| c.fail(names::ASSERTION_PREVIOUS_SIGNING_KEY, problem, KEY_FIX));
        let (der, kind) = previous.ok()?;
        let alg = if kind.signs(key.alg) { key.alg } else { kind.default_alg() };
        let Some((_, jwk)) = public_jwk(&der, kind, alg) else {
            key_problem(c, names::ASSERTION_PREVIOUS_SIGNING_KEY);
            return None;
        };
        published.push(jwk);
    }
    let jwks = format!("{{\"keys\":[{}]}}", published.join(","));
    Some(Some(AssertionConfig { key, kid, jwks }))
}
