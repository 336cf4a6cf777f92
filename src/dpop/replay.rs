//! Per-isolate memory of the DPoP proofs already used (RFC 9449 §11.1), so a captured proof
//! cannot be sent again while its `iat` is still inside the acceptance window.

use std::collections::{HashMap, VecDeque};

/// At most this many proofs are remembered. A flood past it evicts the oldest entries first;
/// an evicted proof could be replayed only until its own `iat` leaves the window.
pub const MAX_REMEMBERED: usize = 20_000;

/// Proof identifiers (hash of key thumbprint and `jti`) with the time they stop mattering.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    until: HashMap<[u8; 32], u64>,
    order: VecDeque<([u8; 32], u64)>,
}

impl ReplayGuard {
    /// Record `id` as used until `expires_at`; `false` if it was already used (a replay).
    pub fn first_use(&mut self, id: [u8; 32], expires_at: u64, now: u64) -> bool {
        self.forget_expired(now);
        if self.until.get(&id).is_some_and(|until| *until > now) {
            return false;
        }
        while self.order.len() >= MAX_REMEMBERED {
            if let Some((old, _)) = self.order.pop_front() {
                self.until.remove(&old);
            }
        }
        self.until.insert(id, expires_at);
        self.order.push_back((id, expires_at));
        true
    }

    fn forget_expired(&mut self, now: u64) {
        while let Some((id, until)) = self.order.front().copied() {
            if until > now {
                break;
            }
            self.order.pop_front();
            if self.until.get(&id) == Some(&until) {
                self.until.remove(&id);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> [u8; 32] {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_be_bytes());
        id
    }

    #[test]
    fn a_proof_is_accepted_once_while_it_matters() {
        let mut guard = ReplayGuard::default();
        assert!(guard.first_use(id(1), 1_100, 1_000));
        assert!(!guard.first_use(id(1), 1_100, 1_050), "replayed inside the window");
        assert!(guard.first_use(id(2), 1_100, 1_050));
        assert!(guard.first_use(id(1), 1_300, 1_200), "the old entry expired with its window");
        assert_eq!(guard.len(), 1, "expired entries are forgotten");
    }

    #[test]
    fn memory_stays_bounded_under_a_flood() {
        let mut guard = ReplayGuard::default();
        for n in 0..(MAX_REMEMBERED as u32 + 500) {
            assert!(guard.first_use(id(n), 10_000, 1_000));
        }
        assert_eq!(guard.len(), MAX_REMEMBERED);
        assert!(!guard.first_use(id(MAX_REMEMBERED as u32 + 499), 10_000, 1_000), "recent ones are remembered");
    }
}
