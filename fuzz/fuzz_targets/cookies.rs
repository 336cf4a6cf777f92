//! The `Cookie` header parser and the sealed cookies: the session cookie
//! (`src/session/record.rs`) and the login-transaction cookie (`src/session/transaction.rs`).
//!
//! The input is: a seed for the `Rng` port, the rest of the browser's `Cookie` header (attacker
//! text), a session cookie's deadlines, a login transaction's fields, and where to tamper.
//!
//! Invariants: no panic; parsed pairs never contain `;`, names never `=`, and well-formed pairs
//! parse back to themselves; the `Cookie` text for the origin keeps exactly the client's other
//! pairs and none of the gateway's; nothing in attacker text unseals (AES-GCM tags cannot be guessed);
//! a sealed cookie, placed among that text, unseals to exactly what was sealed, also after a
//! secret rotation, but not under another secret; any single-byte change of the sealed value,
//! or any single character changed in its text, fails to unseal; an unfinished transaction is
//! never cleared by the clean-up, a finished one always is; a transaction completes only with
//! the browser binding it was started with.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use edgeguard::session::cookie::{
    BINDING_COOKIE_PREFIX, MAX_COOKIE_VALUE_LEN, SESSION_COOKIE, TX_COOKIE_PREFIX, is_gateway_cookie,
    parse_cookie_header, without_gateway_cookies,
};
use edgeguard::session::{
    LoginTransaction, SessionCookie, SessionId, SessionKeys, TX_TTL_SECS, binding_cookie_name, cleanup_cookies,
    new_binding, random_token,
};
use edgeguard_fuzz::{FuzzRng, Input};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

const SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret-0001";
const NEWER: &str = "fuzz-newer-secret-fuzz-newer-secret-0002";

/// Derived once: HKDF per input would spend the fuzzer's time on key derivation.
static KEYS: LazyLock<SessionKeys> = LazyLock::new(|| SessionKeys::derive(&[SECRET]));
static ROTATED: LazyLock<SessionKeys> = LazyLock::new(|| SessionKeys::derive(&[NEWER, SECRET]));
static OTHER: LazyLock<SessionKeys> = LazyLock::new(|| SessionKeys::derive(&[NEWER]));

/// Where to tamper with a sealed value.
#[derive(Clone, Copy)]
struct Tamper {
    at: u64,
    xor: u8,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let rng = FuzzRng::new(input.u64());
    let noise = input.text_line();
    let now = input.u64() >> 2;
    let tamper = Tamper { at: input.u64(), xor: input.byte().max(1) };
    let keys = &*KEYS;

    check_parser(&noise);
    check_unforgeable(&noise, keys, now);

    let cookie = SessionCookie { id: SessionId::generate(&rng), expires_at: input.u64(), idle_until: input.u64() };
    check_session_cookie(&cookie, &noise, keys, &rng, now, tamper);

    let binding = new_binding(&rng);
    let mut tx = LoginTransaction::begin(&rng, now, String::new(), &binding);
    tx.state = input.text_line();
    tx.nonce = input.text_line();
    tx.pkce_verifier = input.text_line();
    tx.return_to = input.text_line();
    check_binding(&tx, &binding, &noise, &rng);
    check_transaction(&tx, &noise, keys, &rng, tamper);
});

fn check_parser(header: &str) {
    let pairs: Vec<(&str, &str)> = parse_cookie_header(header).collect();
    for (name, value) in &pairs {
        assert!(!name.contains([';', '=']) && !value.contains(';'), "{name:?}={value:?}");
        assert_eq!(*name, name.trim());
    }
    // What the origin gets: exactly the client's other pairs, none of the gateway's.
    let others: Vec<(&str, &str)> = pairs.iter().copied().filter(|(n, _)| !is_gateway_cookie(n)).collect();
    match without_gateway_cookies(header) {
        Some(text) => assert_eq!(parse_cookie_header(&text).collect::<Vec<_>>(), others, "{text:?}"),
        None => assert!(others.is_empty(), "dropped the client's cookies {others:?}"),
    }
    // parse(serialise(x)) = x for pairs that are well formed by RFC 6265 §4.1.1.
    let well_formed: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter(|(n, v)| !n.is_empty() && n.bytes().all(is_tchar) && v.bytes().all(is_cookie_octet))
        .collect();
    let serialised = well_formed.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
    assert_eq!(parse_cookie_header(&serialised).collect::<Vec<_>>(), well_formed);
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// Attacker text alone never yields a session or a transaction, and the clean-up only ever
/// clears transaction cookies.
fn check_unforgeable(header: &str, keys: &SessionKeys, now: u64) {
    assert!(SessionCookie::from_cookie_header(header, keys).is_none(), "forged session cookie");
    for (name, value) in parse_cookie_header(header) {
        for state in [name, value] {
            assert!(LoginTransaction::find(header, state, keys, now).is_none(), "forged transaction");
        }
    }
    for cleared in cleanup_cookies(header, None, keys, now) {
        let ours = cleared.starts_with(TX_COOKIE_PREFIX) || cleared.starts_with(BINDING_COOKIE_PREFIX);
        assert!(ours && cleared.contains("Max-Age=0"), "{cleared}");
    }
}

/// A transaction completes only in the browser holding its own binding cookie: no other value,
/// no other sign-in's binding, nor the stored hash passes.
fn check_binding(tx: &LoginTransaction, binding: &str, noise: &str, rng: &FuzzRng) {
    let name = binding_cookie_name(&tx.state);
    assert!(name.starts_with(BINDING_COOKIE_PREFIX));
    let set = tx.binding_set_cookie(binding);
    assert_eq!(pair(&set), (name.as_str(), binding));
    let held = parse_cookie_header(noise).any(|(n, v)| n == name && v == binding);
    assert_eq!(tx.is_bound_to(noise), held, "bound to a browser without its binding cookie");
    assert!(tx.is_bound_to(&format!("{noise}; {name}={binding}")));
    let other = random_token(rng);
    assert!(!tx.is_bound_to(&format!("{name}={other}")), "bound to another browser");
    assert!(!tx.is_bound_to(&format!("{name}={}", tx.binding)), "the stored hash passed as the value");
}

/// The `name=value` part of a `Set-Cookie` value.
fn pair(set_cookie: &str) -> (&str, &str) {
    set_cookie.split(';').next().and_then(|p| p.split_once('=')).unwrap()
}

fn check_session_cookie(
    cookie: &SessionCookie,
    noise: &str,
    keys: &SessionKeys,
    rng: &FuzzRng,
    now: u64,
    tamper: Tamper,
) {
    let set = cookie.to_set_cookie(keys, rng, now);
    let (name, value) = pair(&set);
    assert_eq!(name, SESSION_COOKIE);
    let header = format!("{noise}; {name}={value}");
    assert_eq!(SessionCookie::from_cookie_header(&header, keys).as_ref(), Some(cookie), "round trip");
    assert_eq!(SessionCookie::from_cookie_header(&header, &ROTATED).as_ref(), Some(cookie), "after rotation");
    assert!(SessionCookie::from_cookie_header(&header, &OTHER).is_none(), "opened under another secret");
    for bad in tampered(value, tamper) {
        let header = format!("{noise}; {name}={bad}");
        assert!(SessionCookie::from_cookie_header(&header, keys).is_none(), "tampered cookie opened: {bad}");
    }
}

fn check_transaction(tx: &LoginTransaction, noise: &str, keys: &SessionKeys, rng: &FuzzRng, tamper: Tamper) {
    let set = tx.to_set_cookie(keys, rng);
    let (name, value) = pair(&set);
    assert!(name.starts_with(TX_COOKIE_PREFIX));
    let header = format!("{noise}; {name}={value}");
    let now = tx.created_at;
    let found = LoginTransaction::find(&header, &tx.state, keys, now);
    if value.len() > MAX_COOKIE_VALUE_LEN {
        assert!(found.is_none(), "an over-long cookie was opened");
        return;
    }
    assert_eq!(found.as_ref(), Some(tx), "round trip");
    assert!(LoginTransaction::find(&header, &format!("{}x", tx.state), keys, now).is_none(), "other state");
    assert!(LoginTransaction::find(&header, &tx.state, keys, now + TX_TTL_SECS).is_none(), "expired");
    let cleared = |finished: Option<&str>| {
        cleanup_cookies(&header, finished, keys, now).iter().any(|c| c.starts_with(&format!("{name}=")))
    };
    // Not even an unreadable cookie of the same name makes the clean-up clear a live one.
    assert!(!cleared(None), "a live transaction was cleared");
    assert!(cleared(Some(&tx.state)), "the finished transaction was kept");
    for bad in tampered(value, tamper) {
        let header = format!("{noise}; {name}={bad}");
        assert!(LoginTransaction::find(&header, &tx.state, keys, now).is_none(), "tampered transaction opened");
    }
}

/// The sealed value with one byte changed, and its text with one character changed.
fn tampered(value: &str, tamper: Tamper) -> Vec<String> {
    let mut sealed = B64.decode(value).unwrap();
    let at = (tamper.at % sealed.len() as u64) as usize;
    if let Some(b) = sealed.get_mut(at) {
        *b ^= tamper.xor;
    }
    let mut text = value.as_bytes().to_vec();
    let at = (tamper.at % text.len() as u64) as usize;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if let Some(c) = text.get_mut(at) {
        let next = ALPHABET.iter().position(|a| a == c).map_or(0, |i| i + 1 + usize::from(tamper.xor) % 63);
        *c = ALPHABET[next % ALPHABET.len()];
    }
    vec![B64.encode(sealed), String::from_utf8(text).unwrap()]
}
