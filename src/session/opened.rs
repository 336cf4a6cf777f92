//! Session cookies this isolate has opened already.
//!
//! Every signed-in request presents the same sealed `__Host-edgeguard` value until its idle
//! deadline moves. Opening it is AES-256-GCM in wasm (no AES instructions there: about 5 µs
//! natively with the software cipher, more in wasm), the largest piece of a warm session's own
//! work. Remembering what an exact value opened to skips that: the value is the ciphertext
//! that authenticated under this isolate's keys (which never change while it lives), so a hit
//! is as good as a decryption, and anything else — a tampered, foreign or renamed cookie — is a
//! miss that is decrypted (and refused) as before. What the cookie says is still checked on
//! every request (its deadlines, then the session behind it).

use super::SessionCookie;
use super::SessionKeys;
use super::cookie::parse_cookie_header;
use std::cell::RefCell;
use std::collections::HashMap;

/// Opened values kept per isolate. Past it the memory starts again empty: a flood of valid
/// cookies can cost their owners one decryption more, never memory.
pub const MAX_OPENED_COOKIES: usize = 2048;

/// Sealed cookie value → what it opened to.
#[derive(Default)]
pub struct OpenedCookies {
    by_value: RefCell<HashMap<String, Opened>>,
}

struct Opened {
    /// The cookie name it was opened under (sealed in: another name does not open it).
    name: String,
    cookie: SessionCookie,
    /// Its session's storage key (a SHA-256 of the id), derived once too.
    storage_key: String,
}

impl OpenedCookies {
    /// The first session cookie `name` in the `Cookie` header that opens under `keys`
    /// ([`SessionCookie::from_cookie_header_named`]), with its session's storage key
    /// ([`SessionId::storage_key`](super::SessionId::storage_key)); from memory when this exact
    /// value was opened under this name before.
    pub fn open(&self, header: &str, name: &str, keys: &SessionKeys) -> Option<(SessionCookie, String)> {
        for (_, value) in parse_cookie_header(header).filter(|(n, _)| *n == name) {
            if let Some(opened) = self.by_value.borrow().get(value)
                && opened.name == name
            {
                return Some((opened.cookie.clone(), opened.storage_key.clone()));
            }
            let Some(cookie) = SessionCookie::open(name, value, keys) else { continue };
            let storage_key = cookie.id.storage_key();
            let mut by_value = self.by_value.borrow_mut();
            if by_value.len() >= MAX_OPENED_COOKIES {
                by_value.clear();
            }
            let opened = Opened { name: name.to_owned(), cookie: cookie.clone(), storage_key: storage_key.clone() };
            by_value.insert(value.to_owned(), opened);
            return Some((cookie, storage_key));
        }
        None
    }

    /// How many opened values are remembered (for tests of the bound).
    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.by_value.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionId;
    use crate::testkit::FakeRng;

    fn keys() -> SessionKeys {
        SessionKeys::derive(&["0123456789abcdef0123456789abcdef"])
    }

    fn sealed(name: &str, seed: u64, keys: &SessionKeys) -> (SessionCookie, String) {
        let rng = FakeRng::new(seed);
        let cookie = SessionCookie { id: SessionId::generate(&rng), expires_at: 2_000, idle_until: 1_500 };
        let set = cookie.to_set_cookie_named(name, keys, &rng, 1_000);
        let pair = set.split(';').next().unwrap().to_owned();
        (cookie, pair)
    }

    #[test]
    fn a_remembered_value_opens_as_before_and_nothing_else_does() {
        let (keys, opened) = (keys(), OpenedCookies::default());
        let (cookie, pair) = sealed("__Host-edgeguard", 1, &keys);
        let storage_key = cookie.id.storage_key();
        assert_eq!(opened.open(&pair, "__Host-edgeguard", &keys), Some((cookie.clone(), storage_key.clone())));
        let again = opened.open(&format!("a=b; {pair}"), "__Host-edgeguard", &keys);
        assert_eq!(again, Some((cookie, storage_key)), "from memory");
        // The same value under another provider's cookie name does not open, remembered or not.
        let renamed = pair.replacen("__Host-edgeguard=", "__Host-edgeguard-partners=", 1);
        assert_eq!(opened.open(&renamed, "__Host-edgeguard-partners", &keys), None);
        // A value one character off is not the remembered one, and does not open.
        let (name, value) = pair.split_once('=').unwrap();
        let flipped = if value.ends_with('A') { "B" } else { "A" };
        let tampered = format!("{name}={}{flipped}", &value[..value.len() - 1]);
        assert_eq!(opened.open(&tampered, "__Host-edgeguard", &keys), None);
        // Under other keys (another deployment's secret) nothing opens, memory or not.
        let other = SessionKeys::derive(&["another-secret-another-secret-0001"]);
        assert_eq!(OpenedCookies::default().open(&pair, "__Host-edgeguard", &other), None);
    }

    #[test]
    fn a_flood_of_valid_cookies_never_grows_the_memory_past_its_bound() {
        let (keys, opened) = (keys(), OpenedCookies::default());
        for seed in 0..(MAX_OPENED_COOKIES as u64 + 10) {
            let (cookie, pair) = sealed("__Host-edgeguard", seed, &keys);
            assert_eq!(opened.open(&pair, "__Host-edgeguard", &keys).map(|(c, _)| c), Some(cookie));
            assert!(opened.remembered() <= MAX_OPENED_COOKIES);
        }
    }
}
