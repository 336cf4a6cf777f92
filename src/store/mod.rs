//! Session records in Workers KV, encrypted, with a warm copy in isolate memory.
//!
//! KV key schema (also in README):
//! - `session:v1:<hex sha256(session id)>` → AES-GCM(record JSON), TTL = remaining lifetime.
//!
//! The warm copy means a signed-in request on a warm isolate reads no KV at all; a cold isolate
//! reads once. KV is eventually consistent (about 60 s across locations), so a record written
//! here may be unseen elsewhere for that long.

use crate::ports::{KvError, KvStore, Rng};
use crate::session::{SessionId, SessionKeys, SessionRecord};
use std::cell::RefCell;
use std::collections::HashMap;

/// How many sessions one isolate keeps warm before it forgets the oldest half.
const WARM_CAPACITY: usize = 10_000;
/// KV refuses TTLs under 60 s.
pub const KV_MIN_TTL_SECS: u64 = 60;

/// The session store for one isolate.
#[derive(Default)]
pub struct SessionStore {
    warm: RefCell<HashMap<String, SessionRecord>>,
}

impl SessionStore {
    /// The record for `id`, from memory if warm, else from KV. `Ok(None)` for unknown, expired,
    /// or unreadable records (sealed under a secret no longer configured).
    pub async fn load(
        &self,
        kv: &impl KvStore,
        keys: &SessionKeys,
        id: &SessionId,
        now: u64,
    ) -> Result<Option<SessionRecord>, KvError> {
        let key = id.storage_key();
        let warm = self.warm.borrow().get(&key).cloned();
        let record = match warm {
            Some(record) => Some(record),
            None => {
                let sealed = kv.get(&key).await?;
                let record = sealed.and_then(|s| SessionRecord::open(&s, &key, keys));
                if let Some(record) = &record {
                    self.remember(key.clone(), record.clone());
                }
                record
            }
        };
        Ok(record.filter(|r| now < r.expires_at))
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
        let ttl = record.expires_at.saturating_sub(now).max(KV_MIN_TTL_SECS);
        kv.put(&key, &sealed, ttl).await?;
        self.remember(key, record.clone());
        Ok(())
    }

    /// Forget the session here and in KV.
    pub async fn delete(&self, kv: &impl KvStore, id: &SessionId) -> Result<(), KvError> {
        let key = id.storage_key();
        self.warm.borrow_mut().remove(&key);
        kv.delete(&key).await
    }

    fn remember(&self, key: String, record: SessionRecord) {
        let mut warm = self.warm.borrow_mut();
        if warm.len() >= WARM_CAPACITY {
            let drop: Vec<String> = warm.keys().take(WARM_CAPACITY / 2).cloned().collect();
            for k in drop {
                warm.remove(&k);
            }
        }
        warm.insert(key, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Identity;
    use crate::testkit::{FakeKv, FakeRng, block_on};

    fn record(expires_at: u64) -> SessionRecord {
        SessionRecord {
            identity: Identity { sub: "alice".into(), email: Some("a@example.com".into()), ..Default::default() },
            access_token: "at".into(),
            access_expires_at: None,
            refresh_token: Some("refresh-me".into()),
            id_token: "idt".into(),
            created_at: 0,
            expires_at,
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
            store.save(&kv, &keys, &rng, &id, &record(1000), 100).await.unwrap();
            let (raw, ttl) = kv.entry(&id.storage_key()).unwrap();
            assert_eq!(ttl, 900);
            assert!(!String::from_utf8_lossy(&raw).contains("refresh-me"));
            let reads = kv.reads();
            assert_eq!(store.load(&kv, &keys, &id, 200).await.unwrap(), Some(record(1000)));
            assert_eq!(kv.reads(), reads, "warm load must not read KV");

            // a cold isolate reads KV once, then is warm
            let cold = SessionStore::default();
            assert_eq!(cold.load(&kv, &keys, &id, 200).await.unwrap(), Some(record(1000)));
            assert_eq!(kv.reads(), reads + 1);
            assert_eq!(cold.load(&kv, &keys, &id, 1000).await.unwrap(), None, "expired");
        });
    }

    #[test]
    fn delete_forgets_everywhere_and_short_ttls_are_raised() {
        block_on(async {
            let kv = FakeKv::default();
            let rng = FakeRng::new(2);
            let keys = SessionKeys::derive(&["a-test-secret-that-is-long-enough-0001"]);
            let store = SessionStore::default();
            let id = SessionId::generate(&rng);
            store.save(&kv, &keys, &rng, &id, &record(110), 100).await.unwrap();
            assert_eq!(kv.entry(&id.storage_key()).unwrap().1, KV_MIN_TTL_SECS);
            store.delete(&kv, &id).await.unwrap();
            assert_eq!(store.load(&kv, &keys, &id, 101).await.unwrap(), None);
            assert!(kv.entry(&id.storage_key()).is_none());
        });
    }
}
