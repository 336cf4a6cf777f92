//! Server-provided DPoP nonces (RFC 9449 §8, §9), stateless: a nonce is an HMAC of the current
//! time window under a key derived from `SESSION_SECRET`, so every isolate makes and accepts
//! the same nonces without storing any. A proof must carry the nonce of the current or the
//! previous window, which bounds how long before its use a proof can have been made (§11.2:
//! pre-generated proofs), whatever `iat` a client with a wrong clock writes.

use crate::encoding::b64url;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long one nonce is current. It is accepted for one more window, so a nonce lives 5 to
/// 10 minutes: a client pays at most one `use_dpop_nonce` round trip per window.
pub const NONCE_WINDOW_SECS: u64 = 300;

/// The nonce of the window `window` under `key`.
fn nonce_for(key: &[u8; 32], window: u64) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"dpop-nonce\0");
    mac.update(&window.to_be_bytes());
    b64url(&mac.finalize().into_bytes())
}

/// The nonce to hand out at `now`, under the newest key.
pub fn current_nonce<'a>(mut keys: impl Iterator<Item = &'a [u8; 32]>, now: u64) -> String {
    keys.next().map(|key| nonce_for(key, now / NONCE_WINDOW_SECS)).unwrap_or_default()
}

/// Whether `nonce` is the current or the previous window's, under any of the keys.
pub fn nonce_accepted<'a>(keys: impl Iterator<Item = &'a [u8; 32]>, nonce: &str, now: u64) -> bool {
    let window = now / NONCE_WINDOW_SECS;
    let mut accepted = false;
    for key in keys {
        for w in [window, window.saturating_sub(1)] {
            // Every candidate is compared, in constant time, so timing tells nothing.
            accepted |= bool::from(nonce_for(key, w).as_bytes().ct_eq(nonce.as_bytes()));
        }
    }
    accepted && !nonce.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];
    const T: u64 = 1_700_000_100; // in the middle of a window

    #[test]
    fn a_nonce_is_accepted_in_its_window_and_the_next_only() {
        let nonce = current_nonce([&A].into_iter(), T);
        assert_eq!(nonce.len(), 43, "256-bit HMAC, base64url");
        assert!(nonce_accepted([&A].into_iter(), &nonce, T));
        assert!(nonce_accepted([&A].into_iter(), &nonce, T + NONCE_WINDOW_SECS));
        assert!(!nonce_accepted([&A].into_iter(), &nonce, T + 2 * NONCE_WINDOW_SECS), "expired");
        assert!(!nonce_accepted([&A].into_iter(), &nonce, T - NONCE_WINDOW_SECS), "from the future");
        assert_ne!(current_nonce([&A].into_iter(), T + NONCE_WINDOW_SECS), nonce, "a new window, a new nonce");
    }

    #[test]
    fn nonces_of_another_key_or_garbage_are_refused() {
        let nonce = current_nonce([&B].into_iter(), T);
        assert!(!nonce_accepted([&A].into_iter(), &nonce, T));
        assert!(nonce_accepted([&A, &B].into_iter(), &nonce, T), "a rotated-out secret's nonce still works");
        for bad in ["", "x", &nonce[..42]] {
            assert!(!nonce_accepted([&B].into_iter(), bad, T), "{bad:?}");
        }
    }
}
