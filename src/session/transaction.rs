//! The login transaction: what the callback needs to finish one sign-in (OIDC Core §3.1.2.1,
//! RFC 7636, RFC 9700 §2.1).
//!
//! It rides in its own sealed `__Secure-` cookie whose path is the callback, so it never
//! accompanies other requests, and whose name is derived from `state`, so several sign-ins in
//! parallel tabs each find their own transaction. No KV write happens before sign-in.
//!
//! A `__Secure-` cookie can be planted by a sibling subdomain (`Domain=`), so a transaction
//! alone does not prove that this browser started the sign-in (login CSRF, RFC 9700 §4.7):
//! each transaction also carries the hash of a random `__Host-` binding cookie of its own
//! ([`BINDING_COOKIE_PREFIX`]), which no other host can set, and the callback requires both.

use super::cookie::{self, BINDING_COOKIE_PREFIX, TX_COOKIE_PREFIX};
use super::keys::{Purpose, SessionKeys};
use crate::encoding::{b64url, b64url_decode, ct_eq, hex, sha256};
use crate::ports::Rng;
use serde::{Deserialize, Serialize};

/// How long a user may take at the provider before the callback is refused.
pub const TX_TTL_SECS: u64 = 600;
/// At most this many unfinished sign-ins are kept; older ones are cleared at the next callback.
pub const MAX_PENDING_TX: usize = 5;
/// Longest return path kept in a transaction. Browsers drop cookies over 4,096 bytes, and
/// several sign-ins in flight add up on the callback request; at this cap a transaction cookie
/// stays near 1 KB.
pub const MAX_RETURN_PATH_LEN: usize = 512;

/// One sign-in in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginTransaction {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Same-origin path (and query) to return to after sign-in, at most
    /// `MAX_RETURN_PATH_LEN` bytes.
    pub return_to: String,
    pub created_at: u64,
    /// SHA-256 (base64url) of the binding cookie's value in the browser that started it.
    pub binding: String,
    /// The step-up this sign-in asked for; the callback refuses an answer that does not meet
    /// it (rather than loop back to the provider).
    #[serde(default, skip_serializing_if = "crate::policy::StepUp::is_empty")]
    pub step_up: crate::policy::StepUp,
    /// The `prompt` sent with the authorization request (`consent` when retried for consent,
    /// which stops a second retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The provider this sign-in went to (its name in the provider table). The callback takes
    /// its token endpoint, keys and issuer from here, never from the response; empty in
    /// transactions started before there could be several (the default provider's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
}

/// A fresh binding value for one sign-in (see [`LoginTransaction::binding_set_cookie`]).
pub fn new_binding(rng: &impl Rng) -> String {
    random_token(rng)
}

fn binding_hash(value: &str) -> String {
    b64url(&sha256(value.as_bytes()))
}

/// `return_to` if it fits in a transaction; otherwise its path alone if that fits, else `/`.
/// A sign-in that lands on the page without its long query beats one whose cookie the
/// browser drops, which would fail at the callback.
pub fn cap_return_path(return_to: String) -> String {
    if return_to.len() <= MAX_RETURN_PATH_LEN {
        return return_to;
    }
    match return_to.split_once('?') {
        Some((path, _)) if path.len() <= MAX_RETURN_PATH_LEN => path.to_owned(),
        _ => "/".into(),
    }
}

/// 32 random bytes, base64url: the entropy RFC 7636 §7.1 and RFC 9700 ask for.
pub fn random_token(rng: &impl Rng) -> String {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    b64url(&bytes)
}

pub fn random_nonce(rng: &impl Rng) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce);
    nonce
}

/// What names the cookies of the sign-in with `state`.
fn name_suffix(state: &str) -> String {
    let digest = sha256(state.as_bytes());
    hex(digest.get(..8).unwrap_or_default())
}

/// The cookie name that holds the transaction for `state`.
pub fn cookie_name(state: &str) -> String {
    format!("{TX_COOKIE_PREFIX}{}", name_suffix(state))
}

/// The binding cookie's name for the sign-in with `state`.
pub fn binding_cookie_name(state: &str) -> String {
    format!("{BINDING_COOKIE_PREFIX}{}", name_suffix(state))
}

impl LoginTransaction {
    /// A new transaction bound to `binding` (see [`new_binding`]); the browser gets it with
    /// [`Self::binding_set_cookie`].
    pub fn begin(rng: &impl Rng, now: u64, return_to: String, binding: &str) -> Self {
        Self {
            state: random_token(rng),
            nonce: random_token(rng),
            pkce_verifier: random_token(rng),
            return_to: cap_return_path(return_to),
            created_at: now,
            binding: binding_hash(binding),
            step_up: crate::policy::StepUp::default(),
            prompt: None,
            provider: String::new(),
        }
    }

    /// The `Set-Cookie` value that gives the browser this sign-in's binding `value`.
    pub fn binding_set_cookie(&self, value: &str) -> String {
        cookie::set_cookie(&binding_cookie_name(&self.state), value, "/", TX_TTL_SECS)
    }

    /// Whether the request's cookies hold the binding value this transaction was started with.
    pub fn is_bound_to(&self, cookie_header: &str) -> bool {
        let name = binding_cookie_name(&self.state);
        cookie::parse_cookie_header(cookie_header)
            .filter(|(n, _)| *n == name)
            .any(|(_, value)| ct_eq(&binding_hash(value), &self.binding))
    }

    /// The `Set-Cookie` value that stores this transaction.
    pub fn to_set_cookie(&self, keys: &SessionKeys, rng: &impl Rng) -> String {
        let name = cookie_name(&self.state);
        let json = serde_json::to_vec(self).unwrap_or_default();
        let sealed = keys.seal(Purpose::Cookie, name.as_bytes(), &json, random_nonce(rng));
        cookie::set_cookie(&name, &b64url(&sealed), crate::gateway::paths::CALLBACK, TX_TTL_SECS)
    }

    fn open(name: &str, value: &str, keys: &SessionKeys) -> Option<Self> {
        if value.len() > cookie::MAX_COOKIE_VALUE_LEN {
            return None;
        }
        let sealed = b64url_decode(value)?;
        let json = keys.open(Purpose::Cookie, name.as_bytes(), &sealed)?;
        crate::json::decode(&json).ok()
    }

    fn is_live(&self, now: u64) -> bool {
        now < self.created_at.saturating_add(TX_TTL_SECS) && self.created_at <= now.saturating_add(60)
    }

    /// Find and open the transaction for the callback's `state`. `None` when there is none, it
    /// was tampered with, it expired, or its state differs (checked in constant time).
    pub fn find(cookie_header: &str, state: &str, keys: &SessionKeys, now: u64) -> Option<Self> {
        let name = cookie_name(state);
        cookie::parse_cookie_header(cookie_header)
            .filter(|(n, _)| *n == name)
            .filter_map(|(n, v)| Self::open(n, v, keys))
            .find(|tx| tx.is_live(now) && ct_eq(&tx.state, state))
    }
}

/// `Set-Cookie` values that clear the finished transaction, expired or unreadable ones, and the
/// oldest ones beyond `MAX_PENDING_TX`, so transaction cookies cannot pile up; each with its
/// binding cookie.
pub fn cleanup_cookies(cookie_header: &str, finished_state: Option<&str>, keys: &SessionKeys, now: u64) -> Vec<String> {
    let finished = finished_state.map(cookie_name);
    let mut clear = Vec::new();
    let mut live: Vec<(u64, String)> = Vec::new();
    for (name, value) in cookie::parse_cookie_header(cookie_header) {
        if !name.starts_with(TX_COOKIE_PREFIX) {
            continue;
        }
        match LoginTransaction::open(name, value, keys) {
            Some(tx) if tx.is_live(now) && finished.as_deref() != Some(name) => {
                live.push((tx.created_at, name.to_owned()))
            }
            _ => clear.push(name.to_owned()),
        }
    }
    // Newest first; which of two started in the same second is kept does not matter.
    live.sort_unstable_by_key(|(created_at, _)| std::cmp::Reverse(*created_at));
    let kept: Vec<String> = live.iter().take(MAX_PENDING_TX).map(|(_, name)| name.clone()).collect();
    clear.extend(live.into_iter().skip(MAX_PENDING_TX).map(|(_, name)| name));
    // A name also held by a live transaction stays: clearing an unreadable twin (a cookie of the
    // same name from a sibling domain, say) would clear the live one with it.
    clear.retain(|name| !kept.contains(name));
    clear.sort_unstable();
    clear.dedup();
    let held: Vec<&str> = cookie::parse_cookie_header(cookie_header).map(|(name, _)| name).collect();
    let mut set_cookies = Vec::new();
    for name in &clear {
        set_cookies.push(cookie::clear_cookie(name, crate::gateway::paths::CALLBACK));
        let binding = name.strip_prefix(TX_COOKIE_PREFIX).map(|suffix| format!("{BINDING_COOKIE_PREFIX}{suffix}"));
        if let Some(binding) = binding.filter(|b| held.contains(&b.as_str())) {
            set_cookies.push(cookie::clear_cookie(&binding, "/"));
        }
    }
    set_cookies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::FakeRng;

    fn keys() -> SessionKeys {
        SessionKeys::derive(&["a-test-secret-that-is-long-enough-0001"])
    }

    fn header_for(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap().to_owned()
    }

    const BIND: &str = "Ym91bmQtdG8tdGhpcy1icm93c2VyLTMyLWJ5dGVzLi4";

    #[test]
    fn round_trips_through_its_cookie() {
        let rng = FakeRng::new(1);
        let tx = LoginTransaction::begin(&rng, 1000, "/docs?page=2".into(), BIND);
        let set = tx.to_set_cookie(&keys(), &rng);
        assert!(set.contains("Path=/auth/callback"));
        assert!(set.contains("Max-Age=600"));
        assert!(set.starts_with(TX_COOKIE_PREFIX));
        let found = LoginTransaction::find(&header_for(&set), &tx.state, &keys(), 1100).unwrap();
        assert_eq!(found, tx);
    }

    #[test]
    fn refuses_wrong_state_expired_or_foreign_cookie() {
        let rng = FakeRng::new(2);
        let tx = LoginTransaction::begin(&rng, 1000, "/".into(), BIND);
        let header = header_for(&tx.to_set_cookie(&keys(), &rng));
        assert!(LoginTransaction::find(&header, "another-state", &keys(), 1100).is_none());
        assert!(LoginTransaction::find(&header, &tx.state, &keys(), 1000 + TX_TTL_SECS).is_none());
        let other_keys = SessionKeys::derive(&["another-secret-that-is-long-enough-02"]);
        assert!(LoginTransaction::find(&header, &tx.state, &other_keys, 1100).is_none());
    }

    #[test]
    fn parallel_sign_ins_each_find_their_own() {
        let rng = FakeRng::new(3);
        let a = LoginTransaction::begin(&rng, 1000, "/a".into(), BIND);
        let b = LoginTransaction::begin(&rng, 1001, "/b".into(), BIND);
        let header =
            format!("{}; {}", header_for(&a.to_set_cookie(&keys(), &rng)), header_for(&b.to_set_cookie(&keys(), &rng)));
        assert_eq!(LoginTransaction::find(&header, &a.state, &keys(), 1100).unwrap().return_to, "/a");
        assert_eq!(LoginTransaction::find(&header, &b.state, &keys(), 1100).unwrap().return_to, "/b");
    }

    #[test]
    fn cleanup_clears_finished_expired_and_excess() {
        let rng = FakeRng::new(4);
        let mut parts = Vec::new();
        let mut states = Vec::new();
        for i in 0..8 {
            let tx = LoginTransaction::begin(&rng, 1000 + i, "/".into(), BIND);
            parts.push(header_for(&tx.to_set_cookie(&keys(), &rng)));
            states.push(tx.state);
        }
        parts.push(format!("{TX_COOKIE_PREFIX}garbage=xyz"));
        let header = parts.join("; ");
        let cleared = cleanup_cookies(&header, Some(&states[7]), &keys(), 1100);
        // finished one + garbage + the 2 oldest beyond the 5 newest of the remaining 7
        assert_eq!(cleared.len(), 4, "{cleared:?}");
        assert!(cleared.iter().all(|c| c.contains("Max-Age=0")));
        assert!(cleared.iter().any(|c| c.starts_with(&cookie_name(&states[0]))));
        assert!(!cleared.iter().any(|c| c.starts_with(&cookie_name(&states[6]))));
    }

    #[test]
    fn a_transaction_completes_only_in_the_browser_that_started_it() {
        let rng = FakeRng::new(5);
        let value = new_binding(&rng);
        let tx = LoginTransaction::begin(&rng, 1000, "/".into(), &value);
        let set = tx.binding_set_cookie(&value);
        let name = binding_cookie_name(&tx.state);
        assert!(set.starts_with(&format!("{name}={value}; Path=/;")), "{set}");
        assert!(name.starts_with("__Host-"));
        assert!(tx.is_bound_to(&format!("a=b; {name}={value}")));
        // The attacker's own transaction, planted in the victim's browser, carries the hash of
        // the attacker's binding; the victim's browser never holds that cookie.
        assert!(!tx.is_bound_to(&format!("{name}={}", new_binding(&FakeRng::new(6)))));
        assert!(!tx.is_bound_to(""));
        assert!(!tx.is_bound_to(&format!("{name}={}", tx.binding)), "the hash is not the value");
        let other = LoginTransaction::begin(&rng, 1000, "/".into(), &value);
        assert!(!other.is_bound_to(&format!("{name}={value}")), "another sign-in's binding does not count");
    }

    #[test]
    fn sign_ins_started_at_the_same_moment_each_keep_their_binding() {
        let rng = FakeRng::new(7);
        let (va, vb) = (new_binding(&rng), new_binding(&rng));
        let a = LoginTransaction::begin(&rng, 1000, "/a".into(), &va);
        let b = LoginTransaction::begin(&rng, 1000, "/b".into(), &vb);
        let (sa, sb) = (a.binding_set_cookie(&va), b.binding_set_cookie(&vb));
        assert_ne!(header_for(&sa).split('=').next(), header_for(&sb).split('=').next(), "distinct names");
        let jar = format!("{}; {}", header_for(&sa), header_for(&sb));
        assert!(a.is_bound_to(&jar) && b.is_bound_to(&jar));
    }

    #[test]
    fn long_return_paths_are_capped_so_the_cookie_survives() {
        let rng = FakeRng::new(8);
        let long_query = format!("/search?q={}", "x".repeat(3000));
        let tx = LoginTransaction::begin(&rng, 1000, long_query, BIND);
        assert_eq!(tx.return_to, "/search");
        let tx = LoginTransaction::begin(&rng, 1000, format!("/{}", "p".repeat(3000)), BIND);
        assert_eq!(tx.return_to, "/");
        let fits = format!("/s?q={}", "x".repeat(MAX_RETURN_PATH_LEN - 5));
        assert_eq!(LoginTransaction::begin(&rng, 1000, fits.clone(), BIND).return_to, fits);
        let set = LoginTransaction::begin(&rng, 1000, fits, BIND).to_set_cookie(&keys(), &rng);
        assert!(set.len() < 1400, "a transaction cookie at the cap is {} bytes", set.len());
    }

    #[test]
    fn a_finished_sign_in_clears_its_own_binding_only() {
        let rng = FakeRng::new(9);
        let a = LoginTransaction::begin(&rng, 1000, "/a".into(), BIND);
        let b = LoginTransaction::begin(&rng, 1001, "/b".into(), BIND);
        let jar = [
            header_for(&a.to_set_cookie(&keys(), &rng)),
            header_for(&b.to_set_cookie(&keys(), &rng)),
            header_for(&a.binding_set_cookie(BIND)),
            header_for(&b.binding_set_cookie(BIND)),
        ]
        .join("; ");
        let cleared = cleanup_cookies(&jar, Some(&a.state), &keys(), 1100);
        assert!(cleared.iter().any(|c| c.starts_with(&format!("{}=;", binding_cookie_name(&a.state)))), "{cleared:?}");
        assert!(!cleared.iter().any(|c| c.starts_with(&binding_cookie_name(&b.state))), "b is still in flight");
    }

    #[test]
    fn an_unreadable_twin_does_not_clear_a_live_transaction() {
        let rng = FakeRng::new(10);
        let tx = LoginTransaction::begin(&rng, 1000, "/".into(), BIND);
        let live = header_for(&tx.to_set_cookie(&keys(), &rng));
        let twin = format!("{}=garbage", cookie_name(&tx.state));
        let cleared = cleanup_cookies(&format!("{twin}; {live}"), None, &keys(), 1100);
        assert!(cleared.is_empty(), "{cleared:?}");
    }
}
