//! The verified-token cache: a bounded per-isolate map from the SHA-256 of a whole bearer token
//! to its verified claims and the JWKS key that verified it (the answer Envoy's
//! `jwt_cache_config` gives to the same complaint: an API client sends one token many times,
//! and checking its signature each time costs more than the rest of the request).
//!
//! Rules, and why:
//! - Only fully verified tokens enter (signature, claims, and the gateway's own checks on the
//!   subject); a refused token never does, so a refusal is never remembered as good.
//! - The key is a 256-bit hash of the *whole* token, header and signature included: two tokens
//!   that differ in any byte are different entries, so no altered token can ride on a cached
//!   one. Nothing is parsed on a hit.
//! - A hit re-checks the claims (`exp`, `nbf`, `iat` with the configured skew, `iss`, `aud`,
//!   `typ`) against the current clock with the same [`ClaimRules`]; route policy is checked by
//!   the caller on every request, so one entry serves routes with different requirements.
//! - An entry dies when its key leaves the provider's JWKS: a hit first checks that the key
//!   that verified the token is still in the current key set (hard rotation revokes at once).
//! - An entry records which provider's keys and rules verified it, and serves only a route that
//!   takes that provider, checked against that provider's current keys and rules. So a route
//!   taking several providers needs no parse to learn the token's `iss` on a hit, and a token
//!   of one provider never counts on a route of another, even when both publish the same key.
//! - Memory is bounded twice: at most `capacity` entries and at most `byte_budget` bytes of
//!   token text (the parsed claims grow with it). Nothing grows past either bound.
//!
//! Eviction, chosen so a flood of distinct tokens cannot push out the callers who are being
//! served from the cache: when the cache is full, expired entries go first; then the oldest
//! entry that has not been hit since it entered ("probation"). An entry hit at least once is
//! "protected" and is only ever considered after every hit count has been halved, which happens
//! only when no probationary entry is left — i.e. when every entry is in real use. A flood of
//! one-shot tokens (each must be a valid token, as refused ones never enter) therefore only
//! churns the probationary entries among themselves; a repeat caller keeps its entry. Finding
//! the victim is a scan, paid only on an insert into a full cache, which follows a full
//! signature check that costs far more; hits never scan.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::claims::ClaimRules;
use super::error::JwtError;
use super::keys::{KeySet, UsableKey};
use super::verified::VerifiedJwt;
use crate::encoding::sha256;

/// Default bound on entries: more than the distinct API clients an isolate sees at once.
pub const DEFAULT_CAPACITY: usize = 1024;
/// Default bound on the token text held: 4 MiB, small beside the 128 MB isolate limit even
/// with the parsed claims beside it.
pub const DEFAULT_BYTE_BUDGET: usize = 4 * 1024 * 1024;
/// Hit counts saturate here, so a halving or four always brings any entry back to probation.
const MAX_HITS: u8 = 15;
/// A full cache sweeps out expired entries at most this often (seconds).
const SWEEP_INTERVAL_SECS: u64 = 60;

/// The SHA-256 of a whole compact token: the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        Self(sha256(token.as_bytes()))
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum CachedVerdict {
    /// Not cached, or cached but its key has left the JWKS: verify in full.
    Miss,
    /// Cached, its key still published, its claims still valid now; with the index of the
    /// provider whose keys verified it.
    Valid(Rc<VerifiedJwt>, usize),
    /// Cached, but its claims no longer hold now (expired): the entry is gone, and this is
    /// the same refusal a full verification would give.
    Refused(JwtError),
}

struct Entry {
    jwt: Rc<VerifiedJwt>,
    /// The JWKS key that verified the signature.
    key: UsableKey,
    /// The index of the provider whose keys and rules verified it.
    provider: usize,
    /// `exp` plus leeway: past this the entry can never be valid again.
    dead_after: u64,
    token_len: usize,
    hits: u8,
    /// Insertion order, for "oldest probationary entry first".
    seq: u64,
}

/// A `HashMap` and a plain `Vec` as the queue rather than ordered maps or a `VecDeque`: each
/// new instantiation of BTreeMap's removal code cost ~4 KB of gzipped wasm.
#[derive(Default)]
struct State {
    entries: HashMap<TokenDigest, Entry>,
    /// Entries with no hits, in insertion order, for eviction in O(1). Hits and removals leave
    /// stale items behind (skipped when popped, since their entry's `seq` or `hits` no longer
    /// match); the queue is compacted when it outgrows twice the capacity.
    probation: Vec<(u64, TokenDigest)>,
    /// Items before this index have been popped.
    probation_head: usize,
    bytes: usize,
    next_seq: u64,
    /// When expired entries were last swept (a sweep is a scan: at most one a minute).
    last_sweep: u64,
}

/// The cache for one isolate. Single-threaded (a Worker isolate): no borrow outlives a call.
pub struct VerifiedTokenCache {
    capacity: usize,
    byte_budget: usize,
    state: RefCell<State>,
}

impl Default for VerifiedTokenCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY, DEFAULT_BYTE_BUDGET)
    }
}

impl VerifiedTokenCache {
    /// A cache holding at most `capacity` entries and `byte_budget` bytes of tokens; a zero
    /// capacity caches nothing.
    pub fn new(capacity: usize, byte_budget: usize) -> Self {
        Self { capacity, byte_budget, state: RefCell::new(State::default()) }
    }

    pub fn len(&self) -> usize {
        self.state.borrow().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of token text held.
    pub fn bytes(&self) -> usize {
        self.state.borrow().bytes
    }

    /// Drop a token the full path has just refused under the provider at index `provider`
    /// (e.g. its key is gone and the keys were due for a refresh, so no lookup saw it): a
    /// refused token is never left cached. An entry of another provider stays: that refusal
    /// says nothing about it (say a token of one Entra tenant tried on another tenant's route,
    /// both verified with Microsoft's shared keys).
    pub fn forget(&self, digest: &TokenDigest, provider: usize) {
        let mut st = self.state.borrow_mut();
        if st.entries.get(digest).is_some_and(|e| e.provider == provider) {
            st.remove(digest);
        }
    }

    /// The cached verdict for a token at `now`. `provider_keys` is asked about the provider that
    /// verified the entry: its current keys and rules if the caller accepts that provider and
    /// has its keys fresh, else `None` (a miss that keeps the entry, as it may serve a route of
    /// that provider). It must not use this cache (it runs inside its borrow).
    pub fn lookup<K>(
        &self,
        digest: &TokenDigest,
        now: u64,
        provider_keys: impl FnOnce(usize) -> Option<(Rc<KeySet<K>>, Rc<ClaimRules>)>,
    ) -> CachedVerdict {
        let mut st = self.state.borrow_mut();
        let Some(entry) = st.entries.get_mut(digest) else {
            return CachedVerdict::Miss;
        };
        let Some((keys, rules)) = provider_keys(entry.provider) else {
            return CachedVerdict::Miss;
        };
        if !keys.jwks().keys().contains(&entry.key) {
            st.remove(digest);
            return CachedVerdict::Miss;
        }
        if let Err(refusal) = rules.validate(entry.jwt.header(), entry.jwt.claims(), now) {
            st.remove(digest);
            return CachedVerdict::Refused(refusal);
        }
        entry.hits = entry.hits.saturating_add(1).min(MAX_HITS);
        CachedVerdict::Valid(entry.jwt.clone(), entry.provider)
    }

    /// Remember a token of `token_len` bytes, verified in full at `now` by `key` of the provider
    /// at index `provider`, under its `rules`.
    pub fn insert(
        &self,
        (digest, token_len): (TokenDigest, usize),
        jwt: Rc<VerifiedJwt>,
        (provider, key): (usize, UsableKey),
        rules: &ClaimRules,
        now: u64,
    ) {
        let Some(exp) = jwt.exp() else { return };
        if self.capacity == 0 || token_len > self.byte_budget {
            return;
        }
        let mut st = self.state.borrow_mut();
        st.remove(&digest);
        if st.is_full(self, token_len) && now >= st.last_sweep.saturating_add(SWEEP_INTERVAL_SECS) {
            st.last_sweep = now;
            st.purge_expired(now);
        }
        while st.is_full(self, token_len) {
            if !st.evict_one() {
                return;
            }
        }
        let seq = st.next_seq;
        st.next_seq = seq.wrapping_add(1);
        st.bytes = st.bytes.saturating_add(token_len);
        let entry =
            Entry { jwt, key, provider, dead_after: exp.saturating_add(rules.leeway_secs), token_len, hits: 0, seq };
        st.entries.insert(digest, entry);
        st.probation.push((seq, digest));
        if st.probation.len() > self.capacity.saturating_mul(2).max(64) {
            st.compact_probation();
        }
    }
}

impl State {
    fn is_full(&self, cache: &VerifiedTokenCache, incoming_len: usize) -> bool {
        self.entries.len() >= cache.capacity || self.bytes.saturating_add(incoming_len) > cache.byte_budget
    }

    /// Drop every entry that can no longer be valid at `now`.
    fn purge_expired(&mut self, now: u64) {
        let Self { entries, bytes, .. } = self;
        entries.retain(|_, e| {
            let live = now < e.dead_after;
            if !live {
                *bytes = bytes.saturating_sub(e.token_len);
            }
            live
        });
    }

    fn remove(&mut self, digest: &TokenDigest) {
        if let Some(old) = self.entries.remove(digest) {
            self.bytes = self.bytes.saturating_sub(old.token_len);
        }
    }

    /// Whether a queued item still stands for a probationary entry.
    fn on_probation(&self, (seq, digest): &(u64, TokenDigest)) -> bool {
        self.entries.get(digest).is_some_and(|e| e.seq == *seq && e.hits == 0)
    }

    fn compact_probation(&mut self) {
        let queue = std::mem::take(&mut self.probation);
        let unpopped = queue.get(self.probation_head..).unwrap_or_default();
        self.probation = unpopped.iter().filter(|item| self.on_probation(item)).copied().collect();
        self.probation_head = 0;
    }

    fn pop_probation(&mut self) -> Option<(u64, TokenDigest)> {
        let item = self.probation.get(self.probation_head).copied();
        self.probation_head += usize::from(item.is_some());
        item
    }

    /// Evict the oldest probationary entry; with none left, halve every hit count first (a
    /// scan, only when every entry is in use). Returns false only when the cache is empty.
    fn evict_one(&mut self) -> bool {
        for _ in 0..=MAX_HITS.ilog2() + 1 {
            while let Some(item) = self.pop_probation() {
                if self.on_probation(&item) {
                    self.remove(&item.1);
                    return true;
                }
            }
            let mut demoted: Vec<(u64, TokenDigest)> = Vec::new();
            for (digest, e) in self.entries.iter_mut() {
                e.hits /= 2;
                if e.hits == 0 {
                    demoted.push((e.seq, *digest));
                }
            }
            demoted.sort_unstable_by_key(|(seq, _)| *seq);
            self.compact_probation();
            self.probation.extend(demoted);
        }
        false
    }
}

#[cfg(test)]
mod tests;
