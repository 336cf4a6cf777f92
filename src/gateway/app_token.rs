//! The gateway's own access tokens (client-credentials grant), one per token target, for routes
//! with `origin_token: app`.
//!
//! Kept in isolate memory (the hot path reads nothing else) and in KV, sealed like session
//! records, so a fresh isolate reuses a token another one obtained. A token is renewed before it
//! expires, at a margin proportional to its lifetime with random jitter, so isolates do not all
//! renew at once. Concurrent acquisitions in an isolate share one grant ([`Coalescer`]). While
//! renewal fails, a cached token is served until it really expires, never after.
//!
//! KV key: `app-token:v1:<hex sha256(issuer, client_id, target)>` → AES-GCM(`exp renew token`); TTL =
//! the token's remaining lifetime.

use super::Gateway;
use crate::coalesce::Coalescer;
use crate::encoding::{hex, sha256};
use crate::oidc::{AppTokenError, TokenResponse, build_client_credentials_request, parse_token_response};
use crate::policy::TokenTarget;
use crate::ports::{Ports, Rng};
use crate::session::{Purpose, random_nonce};
use std::cell::RefCell;
use std::collections::HashMap;

/// Assumed lifetime when the provider sends no `expires_in` (RFC 6749 §5.1 only recommends it).
pub const DEFAULT_APP_TOKEN_SECS: u64 = 300;

/// One token and when to stop using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppToken {
    pub access_token: String,
    pub expires_at: u64,
    /// From here on the token is renewed; it is still served if renewal fails.
    pub renew_at: u64,
}

impl AppToken {
    /// The token of a grant answered at `now`, due for renewal a fifth of its life early plus up
    /// to a tenth more at random (so isolates do not all renew in the same second).
    pub fn issued(tokens: TokenResponse, now: u64, rng: &impl Rng) -> Self {
        let lifetime = tokens.expires_in.unwrap_or(DEFAULT_APP_TOKEN_SECS);
        let mut bytes = [0u8; 8];
        rng.fill(&mut bytes);
        let jitter = u64::from_le_bytes(bytes) % (lifetime / 10 + 1);
        let expires_at = now.saturating_add(lifetime);
        Self {
            access_token: tokens.access_token,
            expires_at,
            renew_at: expires_at.saturating_sub(lifetime / 5 + jitter),
        }
    }

    /// Seconds left until it expires.
    pub fn lifetime(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }

    /// `expires_at renew_at token`: the KV plaintext (a hand-rolled line keeps serde's
    /// generated code out of the bundle for three fields).
    fn encode(&self) -> String {
        format!("{} {} {}", self.expires_at, self.renew_at, self.access_token)
    }

    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ' ');
        let expires_at = parts.next()?.parse().ok()?;
        let renew_at = parts.next()?.parse().ok()?;
        let access_token = parts.next().filter(|t| !t.is_empty())?.to_owned();
        Some(Self { access_token, expires_at, renew_at })
    }
}

/// Tokens kept per isolate before expired ones are swept out. App tokens are one per target and
/// caller tenant (Graph with `ENTRA_ALLOWED_TENANTS=*` adds one per tenant), on-behalf-of tokens
/// one per caller: either can grow with traffic, so both are bounded.
const MAX_CACHED: usize = 10_000;

/// Tokens in isolate memory by cache key, bounded by [`MAX_CACHED`].
#[derive(Default)]
pub struct TokenMemory(RefCell<HashMap<String, AppToken>>);

impl TokenMemory {
    pub fn get(&self, key: &str) -> Option<AppToken> {
        self.0.borrow().get(key).cloned()
    }

    /// Keep `token`; when full, expired tokens go first, and if every one is still valid the
    /// map starts over (a flood of callers costs grants, never memory).
    pub fn remember(&self, key: &str, token: &AppToken, now: u64) {
        let mut memory = self.0.borrow_mut();
        if memory.len() >= MAX_CACHED && !memory.contains_key(key) {
            memory.retain(|_, t| now < t.expires_at);
            if memory.len() >= MAX_CACHED {
                memory.clear();
            }
        }
        memory.insert(key.to_owned(), token.clone());
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

/// Per-isolate app tokens and the acquisitions in flight.
#[derive(Default)]
pub struct AppTokens {
    memory: TokenMemory,
    acquiring: Coalescer<Result<AppToken, AppTokenError>>,
}

impl<P: Ports> Gateway<P> {
    /// The cache key of `target`'s token from the discovered token endpoint, or from
    /// `token_endpoint` (another tenant's, for Graph) which then is part of the key.
    pub(super) fn app_token_key(&self, provider: usize, token_endpoint: Option<&str>, target: &TokenTarget) -> String {
        let provider = self.provider_at(provider).config;
        let mut parts = vec![provider.issuer.as_str(), provider.client_id.as_str()];
        parts.extend(token_endpoint);
        let target = target.cache_key();
        parts.push(&target);
        format!("app-token:v1:{}", hex(&sha256(parts.join("\0").as_bytes())))
    }

    /// A valid app token for `target` from the provider at `provider`: from memory when fresh,
    /// else renewed (one grant for all concurrent callers), else the cached one while it is
    /// still valid.
    pub(super) async fn app_token(
        &self,
        ports: &P,
        provider: usize,
        target: &TokenTarget,
    ) -> Result<String, AppTokenError> {
        self.app_token_from(ports, provider, None, target).await
    }

    /// [`Self::app_token`] from `token_endpoint` when given (Entra: the user's own tenant)
    /// instead of the discovered one.
    pub(super) async fn app_token_from(
        &self,
        ports: &P,
        provider: usize,
        token_endpoint: Option<&str>,
        target: &TokenTarget,
    ) -> Result<String, AppTokenError> {
        let key = self.app_token_key(provider, token_endpoint, target);
        let now = ports.now_secs();
        let cached = self.app_tokens.memory.get(&key);
        if let Some(token) = cached.as_ref().filter(|t| now < t.renew_at) {
            return Ok(token.access_token.clone());
        }
        let acquire = || self.acquire_app_token(ports, provider, &key, token_endpoint, target);
        let (result, _) = self.app_tokens.acquiring.run(ports, &key, acquire).await;
        match (result, cached) {
            (Ok(token), _) => Ok(token.access_token),
            (Err(_), Some(token)) if ports.now_secs() < token.expires_at => Ok(token.access_token),
            (Err(err), _) => Err(err),
        }
    }

    async fn acquire_app_token(
        &self,
        ports: &P,
        provider: usize,
        key: &str,
        token_endpoint: Option<&str>,
        target: &TokenTarget,
    ) -> Result<AppToken, AppTokenError> {
        let keys = &self.config.session.keys;
        let now = ports.now_secs();
        let stored =
            ports.get(key).await.ok().flatten().and_then(|sealed| keys.open(Purpose::Store, key.as_bytes(), &sealed));
        // Another isolate may have renewed it already.
        if let Some(token) = stored.and_then(|plain| AppToken::decode(&String::from_utf8_lossy(&plain)))
            && now < token.renew_at
        {
            self.app_tokens.memory.remember(key, &token, now);
            return Ok(token);
        }
        let unavailable = |e: &dyn std::fmt::Display| AppTokenError::Unavailable(e.to_string());
        let provider = self.provider_at(provider);
        let endpoint = match token_endpoint {
            Some(endpoint) => endpoint.to_owned(),
            None => provider
                .state
                .metadata(ports, provider.config)
                .await
                .map_err(|e| unavailable(&e))?
                .token_endpoint
                .clone(),
        };
        let auth = self.client_authentication(ports, &provider, &endpoint).await.map_err(|e| unavailable(&e))?;
        let request = build_client_credentials_request(&endpoint, target, &auth).map_err(|e| unavailable(&e))?;
        let now = ports.now_secs();
        let token = AppToken::issued(parse_token_response(ports.send(request).await)?, now, ports);
        self.app_tokens.memory.remember(key, &token, now);
        let sealed = keys.seal(Purpose::Store, key.as_bytes(), token.encode().as_bytes(), random_nonce(ports));
        // Best effort: without it another isolate makes its own grant.
        let _ = ports.put(key, &sealed, token.lifetime(now)).await;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_at: u64) -> AppToken {
        AppToken { access_token: "t".into(), expires_at, renew_at: expires_at - 10 }
    }

    #[test]
    fn a_flood_of_callers_never_grows_the_memory_past_its_bound() {
        let memory = TokenMemory::default();
        for i in 0..MAX_CACHED * 3 {
            memory.remember(&format!("tenant-{i}"), &token(1_000), 100);
            assert!(memory.len() <= MAX_CACHED);
        }
        assert!(memory.get(&format!("tenant-{}", MAX_CACHED * 3 - 1)).is_some(), "the newest is kept");
    }

    #[test]
    fn expired_tokens_make_room_before_valid_ones_are_dropped() {
        let memory = TokenMemory::default();
        memory.remember("valid", &token(1_000), 100);
        for i in 1..MAX_CACHED {
            memory.remember(&format!("old-{i}"), &token(150), 100);
        }
        memory.remember("newcomer", &token(1_000), 200);
        assert!(memory.get("valid").is_some() && memory.get("newcomer").is_some());
        assert_eq!(memory.len(), 2, "the expired ones were swept");
        memory.remember("valid", &token(2_000), 200);
        assert_eq!(memory.get("valid").map(|t| t.expires_at), Some(2_000));
    }
}
