//! Native micro-benchmark of the bearer-token pipeline, through the crate's public API, as
//! `gateway::bearer` runs it minus I/O: parse -> key selection -> signature -> claims -> route
//! policy. Signatures are checked with `ring` through a small `SignatureVerifier` defined here
//! (the crate's own test verifier lives in `src/testkit`, which benches cannot reach). Also the
//! verified-token cache's hit (one provider, and a route of two), the ID token claims a session
//! route forwards, and a public route's header edits.
//!
//!   cargo bench --bench pipeline                 # full run, ~15 s
//!   cargo bench --bench pipeline -- --quick      # fewer, shorter samples
//!
//! Cargo.toml needs:
//!   [[bench]]
//!   name = "pipeline"
//!   harness = false
//!
//! Only std is used for timing (`Instant`, `black_box`): each case is calibrated to ~`TARGET`
//! per sample; the table shows the median and the best of `SAMPLES` samples, in ns per
//! operation, and each case's ratio to a baseline measured in the same run (`serde_json` parsing
//! the same token's payload into a `Map`, i.e. the least work any JWT library must do). Ratios
//! and differences use the best sample: on a shared machine, other load only ever adds time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Map, Value, json};

use edgeguard::gateway::RequestHeaders;
use edgeguard::jwt::{
    CachedVerdict, ClaimRules, DEFAULT_MAX_TOKEN_LEN, IssuerRule, Jwk, Jwks, JwsAlgorithm, KeySet, TokenDigest,
    UnverifiedJwt, VerifiedTokenCache, verify,
};
use edgeguard::policy::{Claims, normalise_path, parse_routes};
use edgeguard::ports::{CryptoError, SignatureVerifier};
use edgeguard::proxy::{Credential, origin_headers};
use edgeguard::session::{SessionId, SessionRecord};
use edgeguard::store::SessionStore;

const RSA_PKCS8: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys/rsa2048-a.pk8"));
const ISSUER: &str = "https://idp.bench.example";
const AUDIENCE: &str = "https://api.bench.example";
const NOW: u64 = 1_900_000_000;
const PATH: &str = "/api/items";
const ROUTES: &str = r#"[{"prefix":"/api","auth":"bearer","scopes":["api.read"]},{"prefix":"/","auth":"public"}]"#;

// ---------------------------------------------------------------------------------------------
// Verifiers

/// `ring`, with keys imported once (as Web Crypto `CryptoKey`s are) and bound to one algorithm.
struct RingVerifier;

#[derive(Clone)]
enum RingKey {
    Rsa(Rc<PublicKeyComponents<Vec<u8>>>),
    /// Uncompressed P-256 point `04 || x || y`.
    P256(Rc<Vec<u8>>),
}

fn b64(member: &Option<String>) -> Result<Vec<u8>, CryptoError> {
    let text = member.as_deref().ok_or_else(|| CryptoError("member missing".into()))?;
    URL_SAFE_NO_PAD.decode(text).map_err(|_| CryptoError("not base64url".into()))
}

impl SignatureVerifier for RingVerifier {
    type Key = RingKey;

    async fn import_key(&self, jwk: &Jwk, alg: JwsAlgorithm) -> Result<RingKey, CryptoError> {
        match alg {
            JwsAlgorithm::Rs256 if jwk.kty == "RSA" => {
                Ok(RingKey::Rsa(Rc::new(PublicKeyComponents { n: b64(&jwk.n)?, e: b64(&jwk.e)? })))
            }
            JwsAlgorithm::Es256 if jwk.kty == "EC" && jwk.crv.as_deref() == Some("P-256") => {
                Ok(RingKey::P256(Rc::new([&[4u8][..], &b64(&jwk.x)?, &b64(&jwk.y)?].concat())))
            }
            _ => Err(CryptoError(format!("this bench verifier does not do {alg:?} with a {} key", jwk.kty))),
        }
    }

    async fn verify(&self, key: &RingKey, alg: JwsAlgorithm, input: &[u8], sig: &[u8]) -> Result<bool, CryptoError> {
        Ok(match (key, alg) {
            (RingKey::Rsa(c), JwsAlgorithm::Rs256) => {
                c.verify(&signature::RSA_PKCS1_2048_8192_SHA256, input, sig).is_ok()
            }
            (RingKey::P256(point), JwsAlgorithm::Es256) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point.as_slice())
                    .verify(input, sig)
                    .is_ok()
            }
            _ => return Err(CryptoError("key imported for another algorithm".into())),
        })
    }
}

/// Accepts every signature: the pipeline's cost without the public-key operation.
struct NoCrypto;

impl SignatureVerifier for NoCrypto {
    type Key = ();
    async fn import_key(&self, _: &Jwk, _: JwsAlgorithm) -> Result<(), CryptoError> {
        Ok(())
    }
    async fn verify(&self, _: &(), _: JwsAlgorithm, _: &[u8], _: &[u8]) -> Result<bool, CryptoError> {
        Ok(true)
    }
}

/// Every future here completes without waiting (no I/O): poll it to the end.
fn run<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures: keys, JWKS, tokens

struct Fixture {
    rs256: String,
    es256: String,
    jwks: Vec<u8>,
    payload_json: Vec<u8>,
}

fn enc(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn fixture() -> Fixture {
    let rng = SystemRandom::new();
    let rsa = RsaKeyPair::from_pkcs8(RSA_PKCS8).expect("RSA fixture");
    let ec_pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, ec_pkcs8.as_ref(), &rng).unwrap();

    let rsa_pub: PublicKeyComponents<Vec<u8>> = rsa.public().into();
    let point = ec.public_key().as_ref();
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "bench-rs256", "alg": "RS256", "use": "sig", "n": enc(&rsa_pub.n), "e": enc(&rsa_pub.e)},
        {"kty": "EC", "kid": "bench-es256", "alg": "ES256", "use": "sig", "crv": "P-256",
         "x": enc(&point[1..33]), "y": enc(&point[33..65])},
    ]});

    // The RFC 9068 access token the load benchmark mints too.
    let payload = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user-1", "client_id": "edgeguard-bench",
        "scope": "api.read", "name": "Bench User", "jti": "bench-1",
        "iat": NOW - 10, "nbf": NOW - 15, "exp": NOW + 3600,
    });
    let payload_json = serde_json::to_vec(&payload).unwrap();
    let sign = |alg: &str, kid: &str| {
        let header = json!({"alg": alg, "kid": kid, "typ": "at+jwt"});
        let input = format!("{}.{}", enc(&serde_json::to_vec(&header).unwrap()), enc(&payload_json));
        let sig = match alg {
            "RS256" => {
                let mut sig = vec![0; rsa.public().modulus_len()];
                rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig).unwrap();
                sig
            }
            _ => ec.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        };
        format!("{input}.{}", enc(&sig))
    };
    Fixture {
        rs256: sign("RS256", "bench-rs256"),
        es256: sign("ES256", "bench-es256"),
        jwks: serde_json::to_vec(&jwks).unwrap(),
        payload_json,
    }
}

fn rules() -> ClaimRules {
    // As gateway::bearer builds them with the default settings.
    let mut rules = ClaimRules::new(IssuerRule::Exact(ISSUER.into()), vec![AUDIENCE.into()]);
    rules.leeway_secs = 60;
    rules.accepted_types = vec!["at+jwt".into(), "JWT".into()];
    rules
}

// ---------------------------------------------------------------------------------------------
// Timing

const SAMPLES: usize = 15;
const TARGET: Duration = Duration::from_millis(100);

struct Measured {
    name: &'static str,
    median_ns: f64,
    best_ns: f64,
}

/// One case: a name and an operation whose result is passed through `black_box`.
struct Case<'a> {
    name: &'static str,
    op: Box<dyn FnMut() + 'a>,
    batch: u64,
    per_op_ns: Vec<f64>,
}

fn case<'a, T>(name: &'static str, mut op: impl FnMut() -> T + 'a) -> Case<'a> {
    Case { name, op: Box::new(move || drop(black_box(op()))), batch: 1, per_op_ns: Vec::new() }
}

impl Case<'_> {
    /// Double the batch until it takes at least target / 4, then size it to ~target.
    fn calibrate(&mut self, target: Duration) {
        loop {
            let took = self.time_batch();
            if took >= target / 4 || self.batch >= 1 << 30 {
                let per = took.as_secs_f64() / self.batch as f64;
                self.batch = ((target.as_secs_f64() / per.max(1e-9)) as u64).max(1);
                return;
            }
            self.batch *= 2;
        }
    }

    fn time_batch(&mut self) -> Duration {
        let t = Instant::now();
        for _ in 0..self.batch {
            (self.op)();
        }
        t.elapsed()
    }

    fn sample(&mut self) {
        let took = self.time_batch();
        self.per_op_ns.push(took.as_nanos() as f64 / self.batch as f64);
    }

    fn result(&self) -> Measured {
        let mut v = self.per_op_ns.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        Measured { name: self.name, median_ns: v[v.len() / 2], best_ns: v[0] }
    }
}

/// Calibrate every case, then sample them in turn (round-robin), so that a burst of other load
/// on the machine hits every case alike.
fn measure_all(cases: &mut [Case<'_>], samples: usize, target: Duration) -> Vec<Measured> {
    for c in cases.iter_mut() {
        c.calibrate(target);
    }
    for _ in 0..samples {
        for c in cases.iter_mut() {
            c.sample();
        }
    }
    cases.iter().map(Case::result).collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (samples, target) = if quick { (5, Duration::from_millis(30)) } else { (SAMPLES, TARGET) };

    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned();
    let fx = fixture();
    let rules = rules();
    let algs = [JwsAlgorithm::Rs256, JwsAlgorithm::Es256];
    let origin = url::Url::parse("http://127.0.0.1:9401").unwrap();
    let routes = parse_routes(ROUTES, Some(&origin)).expect("ROUTES");
    let ring_keys: Rc<KeySet<RingKey>> = Rc::new(KeySet::new(Jwks::parse(&fx.jwks).expect("JWKS")));
    let no_keys: KeySet<()> = KeySet::new(Jwks::parse(&fx.jwks).expect("JWKS"));

    // The bearer pipeline of gateway::bearer, minus fetching metadata and keys: route, parse,
    // select the key, verify, claims, requirements. Returns the subject, as the gateway forwards it.
    let pipeline = |token: &str, verifier_ring: bool| -> String {
        let path = normalise_path(black_box(PATH)).expect("path");
        let route = routes.find(&path).expect("canonical").expect("route");
        let jwt = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_LEN).expect("parse");
        let verified = if verifier_ring {
            run(verify(&RingVerifier, &*ring_keys, &jwt, &algs, &rules, NOW))
        } else {
            run(verify(&NoCrypto, &no_keys, &jwt, &algs, &rules, NOW))
        }
        .expect("verify");
        let claims = Claims {
            scopes: verified.scopes(),
            roles: verified.roles(),
            groups: verified.groups(),
            tenant: verified.tid(),
            ..Default::default()
        };
        route.requirements.check(&claims).expect("policy");
        verified.sub().expect("sub").to_owned()
    };

    // Prove every case does what it says before timing it (and import the keys once).
    for token in [&fx.rs256, &fx.es256] {
        assert_eq!(pipeline(token, true), "bench-user-1");
        assert_eq!(pipeline(token, false), "bench-user-1");
        // Change one character in the middle of the signature (the last one has padding bits).
        let mut tampered = token.clone().into_bytes();
        let at = tampered.len() - 10;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let jwt = UnverifiedJwt::parse(&tampered, DEFAULT_MAX_TOKEN_LEN).unwrap();
        assert!(run(verify(&RingVerifier, &*ring_keys, &jwt, &algs, &rules, NOW)).is_err(), "tampered token accepted");
    }
    assert!(ring_keys.imported_count() == 2, "keys imported once each");

    // Raw ring verification of the same tokens: the crypto floor.
    let split = |token: &str| {
        let dot = token.rfind('.').unwrap();
        (token.as_bytes()[..dot].to_vec(), URL_SAFE_NO_PAD.decode(&token[dot + 1..]).unwrap())
    };
    let (rs_input, rs_sig) = split(&fx.rs256);
    let (es_input, es_sig) = split(&fx.es256);
    let rs_key = match run(RingVerifier.import_key(&ring_keys.jwks().keys()[0].jwk, JwsAlgorithm::Rs256)) {
        Ok(RingKey::Rsa(c)) => c,
        _ => panic!("RSA key"),
    };
    let es_point = match run(RingVerifier.import_key(&ring_keys.jwks().keys()[1].jwk, JwsAlgorithm::Es256)) {
        Ok(RingKey::P256(p)) => p,
        _ => panic!("EC key"),
    };
    let es_key = signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, es_point.as_slice());

    // The verified-token cache's hit path, as gateway::bearer runs it: hash the whole token, look
    // it up against the current keys of the provider that verified it (if the route takes it),
    // re-check the claims, then route and policy as above. `candidates`: the route's providers
    // (the token's is index 0).
    let cache = VerifiedTokenCache::default();
    let shared_rules = Rc::new(rules.clone());
    for token in [&fx.rs256, &fx.es256] {
        let jwt = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_LEN).unwrap();
        let verified = run(verify(&RingVerifier, &*ring_keys, &jwt, &algs, &rules, NOW)).unwrap();
        let key = ring_keys.jwks().keys()[ring_keys.jwks().select(jwt.header()).unwrap()].clone();
        cache.insert((TokenDigest::of(token), token.len()), Rc::new(verified), (0, key), &rules, NOW);
    }
    let cached_pipeline = |token: &str, candidates: &[usize]| -> String {
        let path = normalise_path(black_box(PATH)).expect("path");
        let route = routes.find(&path).expect("canonical").expect("route");
        let keys_of = |index| candidates.contains(&index).then(|| (Rc::clone(&ring_keys), Rc::clone(&shared_rules)));
        let CachedVerdict::Valid(verified, 0) = cache.lookup(&TokenDigest::of(token), NOW, keys_of) else {
            panic!("expected a cache hit")
        };
        let claims = Claims {
            scopes: verified.scopes(),
            roles: verified.roles(),
            groups: verified.groups(),
            tenant: verified.tid(),
            ..Default::default()
        };
        route.requirements.check(&claims).expect("policy");
        verified.sub().expect("sub").to_owned()
    };
    // Before a hit on a route of several providers skipped the parse: parse the token to read
    // its `iss` (which picks the provider), then the hit as above.
    let parse_then_hit = |token: &str| -> String {
        let jwt = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_LEN).unwrap();
        assert_eq!(jwt.unverified_claims().get("iss").and_then(Value::as_str), Some(ISSUER));
        cached_pipeline(token, &[1, 0])
    };
    assert_eq!(cached_pipeline(&fx.rs256, &[0]), "bench-user-1");
    assert_eq!(parse_then_hit(&fx.rs256), "bench-user-1");
    assert!(matches!(
        cache.lookup(&TokenDigest::of(&fx.rs256), NOW, |_| None::<(Rc<KeySet<RingKey>>, Rc<ClaimRules>)>),
        CachedVerdict::Miss
    ));

    // The origin request's header edits on a public route, for what a browser sends.
    let public_url = url::Url::parse("https://gw.example.com").unwrap();
    let browser = RequestHeaders::from_pairs(&[
        ("host", "gw.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        ),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "en-GB,en;q=0.9"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "none"),
        ("sec-fetch-dest", "document"),
        ("sec-ch-ua-platform", "\"Linux\""),
        ("upgrade-insecure-requests", "1"),
        ("cookie", "theme=dark; _ga=GA1.1.123"),
        ("cf-connecting-ip", "203.0.113.7"),
        ("x-forwarded-for", "203.0.113.7"),
    ]);
    let edits = origin_headers(&browser, &Credential::Anonymous, &public_url, &[]);
    assert_eq!(edits.remove, ["host", "x-forwarded-for"], "host and the spoofable header go");

    // A session route that forwards ID token claims (`headers`, `client_principal`): the claims
    // of the warm session's ID token, as oidc-provider issues it (about 0.9 KB).
    let id_payload = json!({
        "iss": ISSUER, "sub": "bench-user-1", "aud": "edgeguard", "exp": NOW + 3600, "iat": NOW - 10,
        "auth_time": NOW - 10, "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "sid": "9b1e0c3f-2d4a",
        "name": "Bench User", "email": "bench.user@example.com", "email_verified": true,
        "groups": ["readers", "writers", "b1c3e5f7-0a2b-4c6d-8e9f-0a1b2c3d4e5f", "ops", "finance-emea"],
    });
    let id_token = format!(
        "{}.{}.{}",
        enc(br#"{"alg":"ES256","kid":"bench-es256","typ":"JWT"}"#),
        enc(&serde_json::to_vec(&id_payload).unwrap()),
        enc(&[7u8; 64])
    );
    let record = SessionRecord {
        identity: Default::default(),
        access_token: "at".into(),
        access_expires_at: None,
        access_issued_at: None,
        refresh_token: None,
        id_token,
        created_at: NOW,
        expires_at: NOW + 3600,
        provider: String::new(),
    };
    struct FixedRng;
    impl edgeguard::ports::Rng for FixedRng {
        fn fill(&self, buf: &mut [u8]) {
            buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        }
    }
    let session_id = SessionId::generate(&FixedRng);
    let session_key = session_id.storage_key();
    let sessions = SessionStore::default();
    sessions.keep_warm(&session_id, &record, NOW);
    let warm_claims = sessions.id_token_claims(&session_key, &record).unwrap();
    assert_eq!(warm_claims.get("name"), Some(&json!("Bench User")));
    assert!(Rc::ptr_eq(&warm_claims, &sessions.id_token_claims(&session_key, &record).unwrap()), "parsed once");
    assert_eq!(record.id_token_claims().as_ref(), Some(&*warm_claims));

    let token = fx.rs256.as_str();
    let mut cases = vec![
        case("baseline: serde_json::from_slice::<Map> of the payload", || {
            serde_json::from_slice::<Map<String, Value>>(black_box(&fx.payload_json)).unwrap()
        }),
        case("UnverifiedJwt::parse (RS256 token)", || {
            UnverifiedJwt::parse(black_box(token), DEFAULT_MAX_TOKEN_LEN).unwrap()
        }),
        case("parse + ClaimRules::validate", || {
            let jwt = UnverifiedJwt::parse(black_box(token), DEFAULT_MAX_TOKEN_LEN).unwrap();
            rules.validate(jwt.header(), jwt.unverified_claims(), NOW).unwrap();
            jwt
        }),
        case("route + parse + keys + claims + policy, no crypto", || pipeline(black_box(token), false)),
        case("ring RS256 verify only", || {
            rs_key.verify(&signature::RSA_PKCS1_2048_8192_SHA256, black_box(&rs_input), black_box(&rs_sig)).is_ok()
        }),
        case("full pipeline RS256 (ring)", || pipeline(black_box(&fx.rs256), true)),
        case("ring ES256 verify only", || es_key.verify(black_box(&es_input), black_box(&es_sig)).is_ok()),
        case("full pipeline ES256 (ring)", || pipeline(black_box(&fx.es256), true)),
        case("SHA-256 of the whole RS256 token", || TokenDigest::of(black_box(token))),
        case("cache hit RS256: hash + lookup + claims + route + policy", || {
            cached_pipeline(black_box(&fx.rs256), &[0])
        }),
        case("cache hit ES256: hash + lookup + claims + route + policy", || {
            cached_pipeline(black_box(&fx.es256), &[0])
        }),
        case("cache hit RS256, route of 2 providers (now: no parse)", || {
            cached_pipeline(black_box(&fx.rs256), &[1, 0])
        }),
        case("cache hit RS256, route of 2 providers, parsed first (before)", || parse_then_hit(black_box(&fx.rs256))),
        case("session ID token claims per request, parsed (before)", || black_box(&record).id_token_claims()),
        case("session ID token claims per request, warm copy's (now)", || {
            sessions.id_token_claims(black_box(&session_key), black_box(&record))
        }),
        case("origin request header edits, public route, 13 browser headers", || {
            origin_headers(black_box(&browser), &Credential::Anonymous, &public_url, &[])
        }),
    ];
    let rows = measure_all(&mut cases, samples, target);

    let base = rows[0].best_ns;
    println!();
    println!(
        "edgeguard bearer pipeline, native ({} samples of ~{} ms each; token {} bytes RS256, {} bytes ES256)",
        samples,
        target.as_millis(),
        fx.rs256.len(),
        fx.es256.len()
    );
    let loadavg = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned();
    println!("load average before: {load_before}, after: {}", loadavg());
    println!();
    println!("| case | median ns/op | best ns/op | best × baseline |");
    println!("|---|---:|---:|---:|");
    for r in &rows {
        println!("| {} | {:.0} | {:.0} | {:.2} |", r.name, r.median_ns, r.best_ns, r.best_ns / base);
    }
    let by = |name: &str| rows.iter().find(|r| r.name == name).map(|r| r.best_ns).unwrap();
    let no_crypto = by("route + parse + keys + claims + policy, no crypto");
    println!();
    for (alg, full, raw) in [
        ("RS256", "full pipeline RS256 (ring)", "ring RS256 verify only"),
        ("ES256", "full pipeline ES256 (ring)", "ring ES256 verify only"),
    ] {
        let (full, raw) = (by(full), by(raw));
        println!(
            "{alg}: pipeline overhead over the bare signature check {:.0} ns ({:.1} % of the full pipeline); no-crypto pipeline = {:.1} × baseline",
            full - raw,
            100.0 * (full - raw) / full,
            no_crypto / base
        );
    }
}
