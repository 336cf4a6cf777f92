//! Session records in Workers KV, encrypted, with a warm copy in isolate memory.
//!
//! KV key schema (also in README):
//! - `session:v1:<hex sha256(session id)>` → AES-GCM(record JSON); TTL = remaining lifetime.
//! - `refresh-grace:v1:<hex sha256(refresh token)>` → AES-GCM(tokens that replaced it); 120 s.
//! - `session-by-sid:v1:<hex sha256(iss, sid)>:<session hash>` and
//!   `session-by-sub:v1:<hex sha256(iss, sub)>:<session hash>` → empty; one key per session,
//!   found with a prefix list, so concurrent sign-ins never lose an index entry; TTL = session
//!   lifetime.
//! - `session-ended:v1:<session hash>` → tombstone of a logged-out session, read beside the
//!   record on every KV read of it and before a refresh writes, so a refresh that was in flight
//!   (here, or in a location the logout had not reached) cannot bring the session back; TTL =
//!   session lifetime.
//! - `logout-jti:v1:<hex sha256(iss, jti)>` → replay guard for logout tokens; 10 min.
//!
//! The warm copy means a signed-in request on a warm isolate reads no KV; it is re-read every
//! `SESSION_REVALIDATE` (default [`WARM_REVALIDATE_SECS`]) so a session ended elsewhere (logout
//! in another isolate, back-channel logout) stops working here too. One request re-reads it; the
//! session's other requests meanwhile keep the copy (one read per session, not one per request
//! in flight when the copy falls due). KV itself is eventually
//! consistent: about 60 s across locations. With a session object bound ([`coordinator`]),
//! each re-read also asks the object, which knows at once that a session ended anywhere.

use crate::encoding::{hex, sha256};
use crate::ports::{KvError, KvStore, Rng};
use crate::session::{Identity, Purpose, SessionId, SessionKeys, SessionRecord, random_nonce};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

pub mod coordinator;
pub mod session_object;
pub use coordinator::{ObjectAnswer, ObjectCall, SessionCoordinator};

/// How many sessions one isolate keeps warm before it forgets the oldest half.
const WARM_CAPACITY: usize = 10_000;
/// How long a warm copy is trusted before KV is asked again.
pub const WARM_REVALIDATE_SECS: u64 = 30;
/// KV refuses TTLs under 60 s.
pub const KV_MIN_TTL_SECS: u64 = 60;
/// How long a refresh result is kept for requests still holding the refresh token it replaced.
pub const GRACE_TTL_SECS: u64 = 120;
/// How long a logout token's `jti` is remembered (logout tokens older than this are refused).
pub const JTI_TTL_SECS: u64 = 600;

/// Tokens that replaced a refresh token, for requests that still hold the old one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrace {
    pub access_token: String,
    pub access_expires_at: Option<u64>,
    #[serde(default)]
    pub access_issued_at: Option<u64>,
    pub refresh_token: Option<String>,
    /// The refresh response's ID token, verified by the refresh's leader, and the identity
    /// the session takes from it. `None` (also in records written before it was kept): the
    /// session keeps its ID token and identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<RefreshedIdToken>,
}

/// A refresh's checked ID token (OIDC Core §12.2) and what the session learns from it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshedIdToken {
    pub id_token: String,
    pub identity: Identity,
}

/// Marks a session as being re-read until dropped (also when the request is cancelled).
struct Revalidating<'a> {
    set: &'a RefCell<HashSet<String>>,
    key: String,
}

impl<'a> Revalidating<'a> {
    fn start(set: &'a RefCell<HashSet<String>>, key: &str) -> Self {
        set.borrow_mut().insert(key.to_owned());
        Self { set, key: key.to_owned() }
    }
}

impl Drop for Revalidating<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.try_borrow_mut() {
            set.remove(&self.key);
        }
    }
}

/// The claims of a session's ID token, parsed once per warm copy.
pub type IdTokenClaims = Rc<serde_json::Map<String, serde_json::Value>>;

/// A warm copy of a session record: when it was read, and its ID token's claims once a route
/// forwarding claims needed them (kept beside the record, not in it: the record is what is
/// sealed into KV).
struct Warm {
    /// Shared with the requests using it: a warm request takes a reference, not a copy of
    /// every token and claim in the record.
    record: Rc<SessionRecord>,
    loaded_at: u64,
    id_token_claims: Option<IdTokenClaims>,
}

fn keyed(prefix: &str, parts: &[&str]) -> String {
    format!("{prefix}:v1:{}", hex(&sha256(parts.join("\0").as_bytes())))
}

/// The session store for one isolate.
pub struct SessionStore {
    warm: RefCell<HashMap<String, Warm>>,
    /// Sessions ended in this isolate (logout, back-channel logout, rejected refresh).
    ended: RefCell<HashSet<String>>,
    /// How long a warm copy is trusted before KV (and the session's object) is asked again.
    revalidate_secs: u64,
    /// Sessions whose warm copy a request is re-reading right now: the other requests of that
    /// session meanwhile keep using the copy (at most one read per session at a time, instead
    /// of one per concurrent request every `revalidate_secs`).
    revalidating: RefCell<HashSet<String>>,
    /// Sessions ended, or found ended, since the edge last asked ([`SessionStore::take_just_ended`]):
    /// its proxied WebSockets close.
    just_ended: RefCell<Vec<String>>,
}

impl Default for SessionStore {
    fn default() -> Self {
        Self::with_revalidation(WARM_REVALIDATE_SECS)
    }
}

impl SessionStore {
    /// A store whose warm copies are re-checked every `revalidate_secs`.
    pub fn with_revalidation(revalidate_secs: u64) -> Self {
        Self {
            warm: RefCell::default(),
            ended: RefCell::default(),
            revalidating: RefCell::default(),
            just_ended: RefCell::default(),
            revalidate_secs,
        }
    }

    /// The record for `id`, from memory if warm and recent, else from KV. `Ok(None)` for
    /// unknown, expired, or unreadable records (sealed under a secret no longer configured).
    pub async fn load(
        &self,
        kv: &(impl KvStore + SessionCoordinator),
        keys: &SessionKeys,
        id: &SessionId,
        now: u64,
    ) -> Result<Option<Rc<SessionRecord>>, KvError> {
        self.load_at(kv, keys, id.storage_key(), now).await
    }

    /// [`Self::load`] by the session's storage key, when the caller has it already.
    pub async fn load_at(
        &self,
        kv: &(impl KvStore + SessionCoordinator),
        keys: &SessionKeys,
        key: String,
        now: u64,
    ) -> Result<Option<Rc<SessionRecord>>, KvError> {
        if self.ended.borrow().contains(&key) {
            return Ok(None);
        }
        let warm = self.warm.borrow().get(&key).map(|w| (Rc::clone(&w.record), w.loaded_at));
        let record = match warm {
            Some((record, loaded_at)) if now < loaded_at.saturating_add(self.revalidate_secs) => Some(record),
            // Another request of this session is re-reading it: the copy is at most that
            // read's few milliseconds staler than it would be anyway.
            Some((record, _)) if self.revalidating.borrow().contains(&key) => Some(record),
            Some(_) => {
                let _reading = Revalidating::start(&self.revalidating, &key);
                self.read_through(kv, keys, key.clone(), now).await?
            }
            None => self.read_through(kv, keys, key, now).await?,
        };
        Ok(record.filter(|r| now < r.expires_at))
    }

    /// Read the record and its tombstone from KV, and ask the session's object if one is bound
    /// (all at once, so no extra latency). A record beside a tombstone was written back by a
    /// refresh that did not see the logout (it checked just before it, or in a location the
    /// tombstone had not reached yet): the session stays ended, and the stray record is deleted.
    /// The object knows of a logout anywhere at once, before KV has carried the tombstone here.
    async fn read_through(
        &self,
        kv: &(impl KvStore + SessionCoordinator),
        keys: &SessionKeys,
        key: String,
        now: u64,
    ) -> Result<Option<Rc<SessionRecord>>, KvError> {
        let tombstone = tombstone_key(&key);
        let check = kv.ask_session_object(session_hash(&key), &ObjectCall::Check);
        let (sealed, ended, object) = futures::future::join3(kv.get(&key), kv.get(&tombstone), check).await;
        let record = sealed?.and_then(|s| SessionRecord::open(&s, &key, keys)).map(Rc::new);
        if ended?.is_some() || object? == Some(ObjectAnswer::Ended) {
            self.warm.borrow_mut().remove(&key);
            if record.is_some() {
                // Best effort: ended either way, and the next read finds the tombstone again.
                let _ = kv.delete(&key).await;
            }
            self.remember_ended(key);
            return Ok(None);
        }
        match &record {
            Some(record) => self.remember(key, Rc::clone(record), now),
            None => {
                self.warm.borrow_mut().remove(&key);
            }
        }
        Ok(record)
    }

    /// Write the record to KV (TTL = remaining lifetime) and keep it warm.
    pub async fn save(
        &self,
        kv: &impl KvStore,
        keys: &SessionKeys,
        rng: &impl Rng,
        id: &SessionId,
        record: &SessionRecord,
        now: u64,
    ) -> Result<(), KvError> {
        let key = id.storage_key();
        let sealed = record.seal(&key, keys, rng);
        kv.put(&key, &sealed, ttl(record.expires_at, now)).await?;
        self.remember(key, Rc::new(record.clone()), now);
        Ok(())
    }

    /// Whether the session was ended (here, or in another isolate as far as KV has seen).
    /// Checked before a refresh writes its result, so a logout wins over a refresh in flight.
    pub async fn is_ended(&self, kv: &impl KvStore, id: &SessionId) -> Result<bool, KvError> {
        let key = id.storage_key();
        if self.ended.borrow().contains(&key) {
            return Ok(true);
        }
        Ok(kv.get(&tombstone_key(&key)).await?.is_some())
    }

    /// End a session (by its storage key) here, in its object if one is bound (everywhere at
    /// once) and in KV, leaving a tombstone for the rest of its possible lifetime. KV is written
    /// even when the object cannot be reached (its error is returned after): else the object,
    /// once back and unaware of the logout, would let every isolate serve the session again.
    pub async fn end_key(
        &self,
        kv: &(impl KvStore + SessionCoordinator),
        key: &str,
        lifetime_secs: u64,
    ) -> Result<(), KvError> {
        self.forget(key);
        let object = kv.ask_session_object(session_hash(key), &ObjectCall::End { keep_secs: lifetime_secs }).await;
        kv.put(&tombstone_key(key), b"1", lifetime_secs.max(KV_MIN_TTL_SECS)).await?;
        kv.delete(key).await?;
        object.map(|_| ())
    }

    /// End the session here and in KV.
    pub async fn end(
        &self,
        kv: &(impl KvStore + SessionCoordinator),
        id: &SessionId,
        lifetime_secs: u64,
    ) -> Result<(), KvError> {
        self.end_key(kv, &id.storage_key(), lifetime_secs).await
    }

    /// Treat the session as ended in this isolate (its object or KV said so).
    pub fn forget(&self, key: &str) {
        self.warm.borrow_mut().remove(key);
        self.remember_ended(key.to_owned());
    }

    /// Keep `record` warm without writing it: tokens another isolate refreshed and stored
    /// already (a second KV write of one key within a second would hit KV's write limit).
    pub fn keep_warm(&self, id: &SessionId, record: &SessionRecord, now: u64) {
        self.remember(id.storage_key(), Rc::new(record.clone()), now);
    }

    /// The storage keys of the sessions ended or found ended since the last call.
    pub fn take_just_ended(&self) -> Vec<String> {
        std::mem::take(&mut *self.just_ended.borrow_mut())
    }

    fn remember_ended(&self, key: String) {
        let mut just_ended = self.just_ended.borrow_mut();
        if just_ended.len() < WARM_CAPACITY {
            just_ended.push(key.clone());
        }
        let mut ended = self.ended.borrow_mut();
        if ended.len() >= WARM_CAPACITY {
            ended.clear();
        }
        ended.insert(key);
    }

    fn remember(&self, key: String, record: Rc<SessionRecord>, now: u64) {
        let mut warm = self.warm.borrow_mut();
        if warm.len() >= WARM_CAPACITY {
            let drop: Vec<String> = warm.keys().take(WARM_CAPACITY / 2).cloned().collect();
            for k in drop {
                warm.remove(&k);
            }
        }
        warm.insert(key, Warm { record, loaded_at: now, id_token_claims: None });
    }

    /// The claims of `record`'s ID token (stored under `key`), parsed once per warm copy: the
    /// copy's parse is reused while the copy holds that same ID token. A new copy (a refresh,
    /// a re-read from KV) starts unparsed, and a record that is not the warm copy's (another
    /// ID token) is parsed on its own, so the claims always follow the record handed in.
    pub fn id_token_claims(&self, key: &str, record: &SessionRecord) -> Option<IdTokenClaims> {
        let mut warm = self.warm.borrow_mut();
        let Some(copy) = warm.get_mut(key).filter(|w| w.record.id_token == record.id_token) else {
            return record.id_token_claims().map(Rc::new);
        };
        if let Some(claims) = &copy.id_token_claims {
            return Some(Rc::clone(claims));
        }
        let claims = Rc::new(record.id_token_claims()?);
        copy.id_token_claims = Some(Rc::clone(&claims));
        Some(claims)
    }

    /// The tokens that replaced `refresh_token`, if another request refreshed it recently.
    pub async fn grace(
        &self,
        kv: &impl KvStore,
        keys: &SessionKeys,
        refresh_token: &str,
    ) -> Result<Option<RefreshGrace>, KvError> {
        let key = keyed("refresh-grace", &[refresh_token]);
        let Some(sealed) = kv.get(&key).await? else {
            return Ok(None);
        };
        let plain = keys.open(Purpose::Store, key.as_bytes(), &sealed);
        Ok(plain.and_then(|p| crate::json::decode(&p).ok()))
    }

    /// Remember what replaced `old_refresh_token`, briefly, for requests still holding it.
    pub async fn save_grace(
        &self,
        kv: &impl KvStore,
        keys: &SessionKeys,
        rng: &impl Rng,
        old_refresh_token: &str,
        grace: &RefreshGrace,
    ) -> Result<(), KvError> {
        let key = keyed("refresh-grace", &[old_refresh_token]);
        let json = serde_json::to_vec(grace).unwrap_or_default();
        let sealed = keys.seal(Purpose::Store, key.as_bytes(), &json, random_nonce(rng));
        kv.put(&key, &sealed, GRACE_TTL_SECS).await
    }

    /// Index a new session under the provider's `sid` and the user's `sub`, so back-channel
    /// logout can find it. One KV key per session and index: no read-modify-write to race.
    pub async fn index(
        &self,
        kv: &impl KvStore,
        issuer: &str,
        record: &SessionRecord,
        id: &SessionId,
        now: u64,
    ) -> Result<(), KvError> {
        let session = session_hash(&id.storage_key()).to_owned();
        let mut prefixes = vec![keyed("session-by-sub", &[issuer, &record.identity.sub])];
        if let Some(sid) = &record.identity.sid {
            prefixes.push(keyed("session-by-sid", &[issuer, sid]));
        }
        for prefix in prefixes {
            kv.put(&format!("{prefix}:{session}"), b"", ttl(record.expires_at, now)).await?;
        }
        Ok(())
    }

    /// The storage keys of the sessions a back-channel logout names (by `sid` if given, else by
    /// `sub`); their index entries are removed.
    pub async fn sessions_for(
        &self,
        kv: &impl KvStore,
        issuer: &str,
        sid: Option<&str>,
        sub: Option<&str>,
    ) -> Result<Vec<String>, KvError> {
        let prefix = match (sid, sub) {
            (Some(sid), _) => keyed("session-by-sid", &[issuer, sid]),
            (None, Some(sub)) => keyed("session-by-sub", &[issuer, sub]),
            (None, None) => return Ok(Vec::new()),
        };
        let mut sessions = Vec::new();
        for entry in kv.list(&format!("{prefix}:")).await? {
            if let Some(hash) = entry.rsplit(':').next() {
                sessions.push(format!("session:v1:{hash}"));
            }
            kv.delete(&entry).await?;
        }
        Ok(sessions)
    }

    /// Record a logout token's `jti`; `false` if it was seen already (a replay).
    pub async fn first_use_of_jti(&self, kv: &impl KvStore, issuer: &str, jti: &str) -> Result<bool, KvError> {
        let key = keyed("logout-jti", &[issuer, jti]);
        if kv.get(&key).await?.is_some() {
            return Ok(false);
        }
        kv.put(&key, b"1", JTI_TTL_SECS).await?;
        Ok(true)
    }
}

fn ttl(expires_at: u64, now: u64) -> u64 {
    expires_at.saturating_sub(now).max(KV_MIN_TTL_SECS)
}

/// The hash part of a session storage key (`session:v1:<hash>`): its object's name.
pub fn session_hash(storage_key: &str) -> &str {
    storage_key.rsplit(':').next().unwrap_or(storage_key)
}

/// The KV key of a session's tombstone (see the schema above).
pub fn tombstone_key(storage_key: &str) -> String {
    format!("session-ended:v1:{}", session_hash(storage_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Identity;
    use crate::testkit::{FakeKv, FakeRng, block_on};

    const SECRET: &str = "a-test-secret-that-is-long-enough-0001";

    fn record(expires_at: u64) -> SessionRecord {
        SessionRecord {
            identity: Identity { sub: "alice".into(), email: Some("a@example.com".into()), ..Default::default() },
            access_token: "at".into(),
            access_expires_at: None,
            access_issued_at: None,
            refresh_token: Some("refresh-me".into()),
            id_token: "idt".into(),
            created_at: 0,
            expires_at,
            provider: String::new(),
        }
    }

    #[test]
    fn saves_encrypted_with_ttl_and_serves_warm_without_kv() {
        block_on(async {
            let kv = FakeKv::default();
            let rng = FakeRng::new(1);
            let keys = SessionKeys::derive(&["a-test-secret-that-is-long-enough-0001"]);
            let store = SessionStore::default();
            let id = SessionId::generate(&rng);
            store.save(&kv, &keys, &rng, &id, &record(1000), 200).await.unwrap();
            let (raw, ttl) = kv.entry(&id.storage_key()).unwrap();
            assert_eq!(ttl, 800);
            assert!(!String::from_utf8_lossy(&raw).contains("refresh-me"));
            let reads = kv.reads();
            assert_eq!(store.load(&kv, &keys, &id, 200).await.unwrap(), Some(Rc::new(record(1000))));
            assert_eq!(kv.reads(), reads, "warm load must not read KV");

            // a cold isolate reads KV once (the record and its tombstone, side by side), then is warm
            let cold = SessionStore::default();
            assert_eq!(cold.load(&kv, &keys, &id, 200).await.unwrap(), Some(Rc::new(record(1000))));
            assert_eq!(kv.reads(), reads + 2);
            assert_eq!(cold.load(&kv, &keys, &id, 1000).await.unwrap(), None, "expired");

            // a session deleted elsewhere stops working here once the warm copy is re-checked
            kv.delete(&id.storage_key()).await.unwrap();
            assert!(store.load(&kv, &keys, &id, 200 + WARM_REVALIDATE_SECS - 1).await.unwrap().is_some());
            assert_eq!(store.load(&kv, &keys, &id, 200 + WARM_REVALIDATE_SECS).await.unwrap(), None);
        });
    }

    /// A record whose ID token carries `name`.
    fn record_named(name: &str) -> SessionRecord {
        let signer = crate::testkit::idp::Signer::new("k1");
        let id_token = signer.sign_claims(&serde_json::json!({"iss": "https://idp", "sub": "alice", "name": name}));
        SessionRecord { id_token, ..record(1000) }
    }

    fn name_in(claims: &IdTokenClaims) -> &str {
        claims.get("name").and_then(|v| v.as_str()).unwrap_or_default()
    }

    #[test]
    fn id_token_claims_are_parsed_once_per_warm_copy_and_follow_the_record() {
        block_on(async {
            let (kv, rng, keys, store) =
                (FakeKv::default(), FakeRng::new(5), SessionKeys::derive(&[SECRET]), SessionStore::default());
            let id = SessionId::generate(&rng);
            let key = id.storage_key();
            let first = record_named("Alice");
            store.save(&kv, &keys, &rng, &id, &first, 100).await.unwrap();
            let warm = store.load(&kv, &keys, &id, 101).await.unwrap().unwrap();
            let claims = store.id_token_claims(&key, &warm).unwrap();
            assert_eq!(name_in(&claims), "Alice");
            for now in 102..110 {
                let again = store.load(&kv, &keys, &id, now).await.unwrap().unwrap();
                let reused = store.id_token_claims(&key, &again).unwrap();
                assert!(Rc::ptr_eq(&claims, &reused), "parsed again at {now}");
            }
            // A record with another ID token than the warm copy's is never given the copy's claims.
            let other = record_named("Mallory");
            assert_eq!(name_in(&store.id_token_claims(&key, &other).unwrap()), "Mallory");
            assert!(Rc::ptr_eq(&claims, &store.id_token_claims(&key, &warm).unwrap()), "the copy's parse is kept");
            // A new warm copy (saved after a refresh, or re-read from KV) with a new ID token.
            let renamed = record_named("Alice Cooper");
            store.save(&kv, &keys, &rng, &id, &renamed, 110).await.unwrap();
            let warm = store.load(&kv, &keys, &id, 111).await.unwrap().unwrap();
            assert_eq!(name_in(&store.id_token_claims(&key, &warm).unwrap()), "Alice Cooper");
            kv.put(&key, &first.seal(&key, &keys, &rng), 900).await.unwrap();
            let reread = store.load(&kv, &keys, &id, 111 + WARM_REVALIDATE_SECS).await.unwrap().unwrap();
            assert_eq!(name_in(&store.id_token_claims(&key, &reread).unwrap()), "Alice");
        });
    }

    #[test]
    fn ending_a_session_forgets_it_everywhere_and_short_ttls_are_raised() {
        block_on(async {
            let kv = FakeKv::default();
            let rng = FakeRng::new(2);
            let keys = SessionKeys::derive(&["a-test-secret-that-is-long-enough-0001"]);
            let store = SessionStore::default();
            let id = SessionId::generate(&rng);
            store.save(&kv, &keys, &rng, &id, &record(110), 100).await.unwrap();
            assert_eq!(kv.entry(&id.storage_key()).unwrap().1, KV_MIN_TTL_SECS);
            store.end(&kv, &id, 3600).await.unwrap();
            assert!(store.is_ended(&kv, &id).await.unwrap());
            assert!(SessionStore::default().is_ended(&kv, &id).await.unwrap(), "other isolates see the tombstone");
            assert_eq!(store.load(&kv, &keys, &id, 101).await.unwrap(), None);
            assert!(kv.entry(&id.storage_key()).is_none());
        });
    }

    #[test]
    fn grace_records_are_encrypted_and_keyed_by_the_old_token() {
        block_on(async {
            let (kv, rng, keys, store) =
                (FakeKv::default(), FakeRng::new(3), SessionKeys::derive(&[SECRET]), SessionStore::default());
            let grace = RefreshGrace {
                access_token: "at-2".into(),
                access_expires_at: Some(5),
                access_issued_at: Some(1),
                refresh_token: Some("rt-2".into()),
                id_token: None,
            };
            store.save_grace(&kv, &keys, &rng, "rt-1", &grace).await.unwrap();
            assert!(store.grace(&kv, &keys, "rt-1").await.unwrap() == Some(grace));
            assert!(store.grace(&kv, &keys, "rt-2").await.unwrap().is_none());
            assert_eq!(kv.len(), 1);
            let (raw, ttl) = kv.entry(&keyed("refresh-grace", &["rt-1"])).unwrap();
            assert_eq!(ttl, GRACE_TTL_SECS);
            assert!(!String::from_utf8_lossy(&raw).contains("rt-2"));
        });
    }

    #[test]
    fn sessions_are_found_by_sid_or_sub_and_jtis_only_once() {
        block_on(async {
            let (kv, rng, store) = (FakeKv::default(), FakeRng::new(4), SessionStore::default());
            let mut with_sid = record(1000);
            with_sid.identity.sid = Some("sid-1".into());
            let (a, b) = (SessionId::generate(&rng), SessionId::generate(&rng));
            store.index(&kv, "https://idp", &with_sid, &a, 0).await.unwrap();
            store.index(&kv, "https://idp", &record(1000), &b, 0).await.unwrap();
            assert_eq!(
                store.sessions_for(&kv, "https://idp", Some("sid-1"), None).await.unwrap(),
                vec![a.storage_key()]
            );
            let mut by_sub = store.sessions_for(&kv, "https://idp", None, Some("alice")).await.unwrap();
            by_sub.sort();
            let mut expected = vec![a.storage_key(), b.storage_key()];
            expected.sort();
            assert_eq!(by_sub, expected);
            assert!(
                store.sessions_for(&kv, "https://idp", None, Some("alice")).await.unwrap().is_empty(),
                "index consumed"
            );
            assert!(store.sessions_for(&kv, "https://other", None, Some("alice")).await.unwrap().is_empty());
            assert!(store.first_use_of_jti(&kv, "https://idp", "j1").await.unwrap());
            assert!(!store.first_use_of_jti(&kv, "https://idp", "j1").await.unwrap());
            assert!(store.first_use_of_jti(&kv, "https://other", "j1").await.unwrap());
        });
    }
}
