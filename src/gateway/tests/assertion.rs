//! The signed user assertion the origin receives, and the JWKS it verifies it with.

use super::*;
use crate::ports::SignatureVerifier;
use crate::testkit::native_crypto::{NativeVerifier, TestKey};

const ROUTES: &str = r#"[
    {"prefix": "/a/", "assertion": true, "origin_token": "app", "token_target": {"scope": "api://a/.default"}},
    {"prefix": "/b/", "assertion": true, "assertion_header": "X-User-JWT", "assertion_audience": "api://b",
     "origin": "https://b.internal"},
    {"prefix": "/", "auth": "session"}
]"#;

struct Keys {
    current: TestKey,
    previous: TestKey,
    current_pem: String,
    previous_pem: String,
}

fn keys() -> Keys {
    let (current, current_pem) = TestKey::es256_with_pem();
    let (previous, previous_pem) = TestKey::es256_with_pem();
    Keys { current, previous, current_pem, previous_pem }
}

fn assertion_world(keys: &Keys) -> World {
    let mut w = world();
    w.gateway = Gateway::new(config(&[
        ("ROUTES", ROUTES),
        ("ASSERTION_SIGNING_KEY", &keys.current_pem),
        ("ASSERTION_PREVIOUS_SIGNING_KEY", &keys.previous_pem),
    ]));
    w
}

fn jwks(w: &World) -> serde_json::Value {
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/.well-known/jwks.json", &[])));
    let r = response(&d);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    serde_json::from_slice(r.body()).unwrap()
}

/// Verify `jwt` with the published JWKS; its claims.
fn verify(w: &World, jwt: &str) -> serde_json::Value {
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let mut parts = input.split('.');
    let decode =
        |p: &str| -> serde_json::Value { serde_json::from_slice(&crate::encoding::b64url_decode(p).unwrap()).unwrap() };
    let (header, claims) = (decode(parts.next().unwrap()), decode(parts.next().unwrap()));
    assert_eq!(header["alg"], "ES256");
    let doc = jwks(w);
    let jwk = doc["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).expect("kid published");
    let jwk: crate::jwt::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let verifier = NativeVerifier::default();
    let key = block_on(verifier.import_key(&jwk, crate::jwt::JwsAlgorithm::Es256)).unwrap();
    let sig = crate::encoding::b64url_decode(sig).unwrap();
    assert!(block_on(verifier.verify(&key, crate::jwt::JwsAlgorithm::Es256, input.as_bytes(), &sig)).unwrap());
    claims
}

#[test]
fn the_origin_gets_a_verifiable_assertion_instead_of_the_clients() {
    let k = keys();
    let w = assertion_world(&k);
    let session = sign_in(&w, "/");
    let req = request(Method::GET, "/a/x", &[("cookie", &session), ("x-edgeguard-assertion", "forged")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let Outcome::Forward(plan) = &d.outcome else { panic!("{:?}", d.log) };
    let sent = plan.headers.apply(&req.headers);
    let values: Vec<_> = sent.get_all("x-edgeguard-assertion").iter().collect();
    assert_eq!(values.len(), 1);
    let claims = verify(&w, values[0].to_str().unwrap());
    assert_eq!(claims["iss"], "https://gw.example.com");
    assert_eq!(claims["aud"], "https://origin.internal");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["name"], "Alice");
    assert_eq!(claims["email"], "alice@example.com", "stated verified by the ID token");
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert_eq!(iat, NOW);
    assert!(exp > iat && exp - iat <= 300);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
    assert_eq!(sent["authorization"], "Bearer app-token-1", "with the app token beside it");
}

#[test]
fn a_custom_header_and_audience_replace_every_client_spelling_of_it() {
    let k = keys();
    let w = assertion_world(&k);
    let session = sign_in(&w, "/");
    let req = request(Method::GET, "/b/x", &[("cookie", &session), ("X-User-JWT", "forged"), ("x_user_jwt", "forged")]);
    let d = block_on(w.gateway.handle(&w.ports, &req));
    let Outcome::Forward(plan) = &d.outcome else { panic!("{:?}", d.log) };
    let sent = plan.headers.apply(&req.headers);
    assert!(sent.get("x_user_jwt").is_none());
    let claims = verify(&w, sent["x-user-jwt"].to_str().unwrap());
    assert_eq!(claims["aud"], "api://b");
}

#[test]
fn entra_claims_are_asserted_and_unverified_emails_never() {
    let k = keys();
    let w = assertion_world(&k);
    let idp = Rc::clone(&w.idp);
    *w.idp.token_answer.borrow_mut() = Some(Box::new(move |nonce| {
        let mut claims = idp.id_claims(nonce, NOW);
        claims.as_object_mut().unwrap().remove("email_verified");
        claims["tid"] = json!("tenant-1");
        claims["roles"] = json!(["Orders.Read"]);
        claims["groups"] = json!(["g1", "g2"]);
        claims["sid"] = json!("sid-1");
        Ok(json_response(200, &idp.token_body(&idp.signer.sign_claims(&claims))))
    }));
    let session = sign_in(&w, "/");
    let d = block_on(w.gateway.handle(&w.ports, &request(Method::GET, "/b/", &[("cookie", &session)])));
    let claims = verify(&w, &set_header(&d, "x-user-jwt").unwrap());
    assert!(claims.get("email").is_none(), "an address nobody vouched for is not asserted");
    assert_eq!(claims["tid"], "tenant-1");
    assert_eq!(claims["roles"], json!(["Orders.Read"]));
    assert_eq!(claims["groups"], json!(["g1", "g2"]));
    assert_eq!(claims["sid"], "sid-1");
}

#[test]
fn the_jwks_publishes_both_keys_of_a_rotation_and_signs_with_the_new_one() {
    let k = keys();
    let w = assertion_world(&k);
    let doc = jwks(&w);
    let published = doc["keys"].as_array().unwrap();
    assert_eq!(published.len(), 2);
    assert_eq!(published[0]["x"], k.current.jwk("")["x"]);
    assert_eq!(published[1]["x"], k.previous.jwk("")["x"]);
    for key in published {
        assert_eq!(
            (key["use"].as_str(), key["alg"].as_str(), key["kty"].as_str()),
            (Some("sig"), Some("ES256"), Some("EC"))
        );
        assert!(key.get("d").is_none(), "never the private part");
        assert_eq!(key["kid"].as_str().unwrap().len(), 43, "RFC 7638 SHA-256 thumbprint");
    }
    // Without an assertion key the path belongs to the origin.
    let plain = block_on(world().gateway.handle(&w.ports, &navigate("/.well-known/jwks.json", "")));
    assert_eq!(response(&plain).status(), 302, "an ordinary session route");
}

#[test]
fn an_assertion_route_without_a_key_is_a_config_error() {
    let errors = Config::from_settings(|name| {
        let value = match name {
            "OIDC_ISSUER" => "https://idp.example.com",
            "OIDC_CLIENT_ID" | "OIDC_CLIENT_SECRET" => "x",
            "PUBLIC_URL" => "https://gw.example.com",
            "ORIGIN_URL" => "https://origin.internal",
            "SESSION_SECRET" => "0123456789abcdef0123456789abcdef",
            "ROUTES" => r#"[{"prefix":"/","assertion":true}]"#,
            _ => return None,
        };
        Some(value.to_owned())
    })
    .unwrap_err();
    assert_eq!(errors.0.iter().map(|e| e.setting).collect::<Vec<_>>(), vec!["ASSERTION_SIGNING_KEY"]);
}
