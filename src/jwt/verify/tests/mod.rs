//! Signature verification end to end: every algorithm, and the attacks RFC 8725 lists.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod rfc_vectors;
mod with_cache;

use super::*;
use crate::jwt::{DEFAULT_MAX_TOKEN_LEN, IssuerRule, Jwks};
use crate::testkit::native_crypto::{NativeKey, NativeVerifier, TestKey, b64, jwks_doc, sign_raw, sign_token};
use futures::executor::block_on;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.example";

struct Fixture {
    rsa: TestKey,
    rsa_b: TestKey,
    ec256: TestKey,
    ec384: TestKey,
    ed: TestKey,
    keys: KeySet<NativeKey>,
    verifier: NativeVerifier,
}

fn fixture() -> Fixture {
    let (rsa, rsa_b) = (TestKey::rsa_a(), TestKey::rsa_b());
    let (ec256, ec384, ed) = (TestKey::es256(), TestKey::es384(), TestKey::ed25519());
    let mut pinned = rsa.jwk("rsa-pinned");
    pinned["alg"] = json!("RS256");
    let doc =
        jwks_doc(&[rsa.jwk("rsa"), rsa_b.jwk("rsa-b"), pinned, ec256.jwk("ec256"), ec384.jwk("ec384"), ed.jwk("ed")]);
    let keys = KeySet::new(Jwks::parse(&doc).unwrap());
    Fixture { rsa, rsa_b, ec256, ec384, ed, keys, verifier: NativeVerifier::default() }
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": "api", "sub": "alice", "exp": NOW + 300, "iat": NOW - 5,
           "scp": "read write"})
}

fn rules() -> ClaimRules {
    ClaimRules::new(IssuerRule::Exact(ISS.into()), vec!["api".into()])
}

fn run(f: &Fixture, token: &str, algs: &[JwsAlgorithm], rules: &ClaimRules) -> Result<VerifiedJwt, JwtError> {
    let parsed = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_LEN)?;
    block_on(verify(&f.verifier, &f.keys, &parsed, algs, rules, NOW))
}

fn reason(result: Result<VerifiedJwt, JwtError>) -> &'static str {
    result.map_or_else(|e| e.reason(), |_| "ok")
}

#[test]
fn every_supported_algorithm_round_trips() {
    use JwsAlgorithm::*;
    let f = fixture();
    let cases: Vec<(&TestKey, JwsAlgorithm, &str)> = vec![
        (&f.rsa, Rs256, "rsa"),
        (&f.rsa, Rs384, "rsa"),
        (&f.rsa, Rs512, "rsa"),
        (&f.rsa, Ps256, "rsa"),
        (&f.rsa, Ps384, "rsa"),
        (&f.rsa, Ps512, "rsa"),
        (&f.rsa_b, Rs256, "rsa-b"),
        (&f.rsa, Rs256, "rsa-pinned"),
        (&f.ec256, Es256, "ec256"),
        (&f.ec384, Es384, "ec384"),
        (&f.ed, EdDsa, "ed"),
    ];
    for (key, alg, kid) in cases {
        let token = sign_token(key, &json!({"alg": alg.name(), "kid": kid}), &claims());
        let verified = run(&f, &token, &JwsAlgorithm::ALL, &rules()).unwrap_or_else(|e| panic!("{alg} {kid}: {e}"));
        assert_eq!(verified.sub(), Some("alice"));
        assert_eq!(verified.scopes(), ["read", "write"]);
        assert_eq!(verified.header().alg, alg);
    }
    // One import per (key, alg): RSA key "rsa" was imported for six algorithms.
    assert_eq!(f.verifier.imports(), 11);
    let again = sign_token(&f.rsa, &json!({"alg": "PS256", "kid": "rsa"}), &claims());
    run(&f, &again, &JwsAlgorithm::ALL, &rules()).unwrap();
    assert_eq!(f.verifier.imports(), 11);
}

fn hs256_with_public_key_as_secret(f: &Fixture) -> String {
    let header = b64(br#"{"alg":"HS256","kid":"rsa"}"#);
    let input = format!("{header}.{}", b64(claims().to_string().as_bytes()));
    let secret = f.rsa.jwk("rsa").to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

#[test]
fn attacks_table() {
    use JwsAlgorithm::*;
    let f = fixture();
    let attacker = TestKey::es256();
    let signed = |key: &TestKey, header: Value| sign_token(key, &header, &claims());
    let with_claim = |name: &str, value: Value| {
        let mut c = claims();
        c[name] = value;
        sign_token(&f.rsa, &json!({"alg": "RS256", "kid": "rsa"}), &c)
    };
    let good = signed(&f.rsa, json!({"alg": "RS256", "kid": "rsa"}));
    let (input, _) = good.rsplit_once('.').unwrap();
    let tampered = {
        let mut c = claims();
        c["sub"] = json!("admin");
        let sig = good.rsplit_once('.').unwrap().1;
        format!("{}.{}.{sig}", input.split('.').next().unwrap(), b64(c.to_string().as_bytes()))
    };
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims().to_string().as_bytes()));
    let embedded = signed(&attacker, json!({"alg": "ES256", "kid": "ec256", "jwk": attacker.jwk("")}));
    let jku = signed(&attacker, json!({"alg": "ES256", "jku": "https://evil.example/jwks"}));
    let x5c = signed(&f.rsa, json!({"alg": "RS256", "kid": "rsa", "x5c": ["MIIC"]}));
    let crit = signed(&f.rsa, json!({"alg": "RS256", "kid": "rsa", "crit": ["urn:x"], "urn:x": 1}));
    let dup_alg = sign_raw(&f.rsa, Rs256, r#"{"alg":"RS256","kid":"rsa","alg":"none"}"#, &claims().to_string());
    let dup_sub = sign_raw(
        &f.rsa,
        Rs256,
        r#"{"alg":"RS256","kid":"rsa"}"#,
        &format!(r#"{{"iss":"{ISS}","aud":"api","exp":{},"sub":"alice","sub":"admin"}}"#, NOW + 60),
    );
    let jwe = format!("{input}.{}.{}.{}", b64(b"iv"), b64(b"ct"), b64(b"tag"));
    let padded = format!("{good}==");

    let cases: Vec<(&str, String, &str)> = vec![
        ("baseline", good.clone(), "ok"),
        ("alg none", none, "alg_not_allowed"),
        ("HS256 with RSA public key as secret", hs256_with_public_key_as_secret(&f), "alg_not_allowed"),
        ("embedded jwk", embedded, "embedded_key_refused"),
        ("jku", jku, "embedded_key_refused"),
        ("x5c", x5c, "embedded_key_refused"),
        ("unknown crit", crit, "crit_unsupported"),
        ("JWE", jwe, "jwe_unsupported"),
        ("padded signature", padded, "malformed_token"),
        ("standard base64", good.replace('-', "+").replace('_', "/"), "malformed_token"),
        ("duplicate alg", dup_alg, "duplicate_json_member"),
        ("duplicate sub", dup_sub, "duplicate_json_member"),
        ("oversize", with_claim("pad", json!("x".repeat(DEFAULT_MAX_TOKEN_LEN))), "token_too_large"),
        ("tampered payload", tampered, "signature_invalid"),
        ("wrong kid", signed(&f.rsa, json!({"alg": "RS256", "kid": "nope"})), "kid_unknown"),
        ("other key under our kid", signed(&f.rsa_b, json!({"alg": "RS256", "kid": "rsa"})), "signature_invalid"),
        ("no kid, two RSA keys", signed(&f.rsa, json!({"alg": "RS256"})), "kid_required"),
        ("no kid, one P-256 key", signed(&f.ec256, json!({"alg": "ES256"})), "ok"),
        ("attacker key, no kid", signed(&attacker, json!({"alg": "ES256"})), "signature_invalid"),
        ("ES384 under a P-256 kid", signed(&f.ec384, json!({"alg": "ES384", "kid": "ec256"})), "key_alg_mismatch"),
        ("RS256 under an EC kid", signed(&f.rsa, json!({"alg": "RS256", "kid": "ec256"})), "key_alg_mismatch"),
        (
            "PS256 under an RS256-pinned key",
            signed(&f.rsa, json!({"alg": "PS256", "kid": "rsa-pinned"})),
            "key_alg_mismatch",
        ),
        ("expired", with_claim("exp", json!(NOW - 120)), "token_expired"),
        ("nbf in future", with_claim("nbf", json!(NOW + 3600)), "token_not_yet_valid"),
        ("iat in future", with_claim("iat", json!(NOW + 3600)), "iat_in_future"),
        ("wrong iss", with_claim("iss", json!("https://evil.example")), "issuer_mismatch"),
        ("wrong aud", with_claim("aud", json!("other-api")), "audience_mismatch"),
    ];
    for (name, token, want) in cases {
        assert_eq!(reason(run(&f, &token, &JwsAlgorithm::ALL, &rules())), want, "{name}");
    }
}

#[test]
fn allow_list_and_typ() {
    let f = fixture();
    let es = sign_token(&f.ec256, &json!({"alg": "ES256", "kid": "ec256", "typ": "at+jwt"}), &claims());
    assert_eq!(reason(run(&f, &es, &[JwsAlgorithm::Rs256], &rules())), "alg_not_allowed");
    assert_eq!(reason(run(&f, &es, &[], &rules())), "alg_not_allowed");
    let at_rules = ClaimRules { accepted_types: vec!["application/at+jwt".into()], ..rules() };
    assert_eq!(reason(run(&f, &es, &[JwsAlgorithm::Es256], &at_rules)), "ok");
    let id_token = sign_token(&f.ec256, &json!({"alg": "ES256", "kid": "ec256", "typ": "JWT"}), &claims());
    assert_eq!(reason(run(&f, &id_token, &[JwsAlgorithm::Es256], &at_rules)), "typ_mismatch");
}

#[test]
fn malformed_signatures_never_reach_the_verifier() {
    let f = fixture();
    let good = sign_token(&f.ec256, &json!({"alg": "ES256", "kid": "ec256"}), &claims());
    let (input, sig) = good.rsplit_once('.').unwrap();
    let sig = unb64(sig);
    let zero_r = [&[0u8; 32][..], &sig[32..]].concat();
    let zero_s = [&sig[..32], &[0u8; 32][..]].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("63 bytes", sig[..63].to_vec()),
        ("65 bytes", [&sig[..], &[1]].concat()),
        ("DER-encoded length", vec![0x30; 70]),
        ("r = 0", zero_r),
        ("s = 0", zero_s),
        ("all zero", vec![0; 64]),
    ];
    for (name, bad) in cases {
        let token = format!("{input}.{}", b64(&bad));
        assert_eq!(reason(run(&f, &token, &JwsAlgorithm::ALL, &rules())), "signature_malformed", "{name}");
    }
    assert_eq!(f.verifier.imports(), 0, "refused before any key was imported");

    let rsa = sign_token(&f.rsa, &json!({"alg": "RS256", "kid": "rsa"}), &claims());
    let (input, sig) = rsa.rsplit_once('.').unwrap();
    let short = format!("{input}.{}", b64(&unb64(sig)[1..]));
    assert_eq!(reason(run(&f, &short, &JwsAlgorithm::ALL, &rules())), "signature_malformed");
}

fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}
