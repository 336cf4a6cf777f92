//! The per-issuer JWKS cache kept in isolate memory (RFC 7517 §5; OIDC Core §10.1.1: signers
//! rotate by publishing new keys, so a verifier refetches the JWK Set on an unfamiliar `kid`).
//!
//! Policy:
//! - fetch on first use; refresh when the response's `Cache-Control: max-age` has passed
//!   (bounded to [5 min, 24 h], 1 h when absent — see `http_cache`);
//! - a token with an unknown `kid` may trigger a refetch, at most once per cooldown (10 s)
//!   counted from the last such refetch (not from scheduled fetches: a key rotated in just
//!   after a fetch must still be found at once);
//!   kids still unknown after a refetch are remembered (until the next successful fetch, or
//!   5 min) so a flood of forged kids costs no fetches;
//! - concurrent callers share one fetch (`Coalescer`: waiters poll on their own timer, as
//!   workerd cancels requests that wait on another request's promise). If the leader's
//!   request is cancelled mid-fetch, a waiter leads a new fetch. Only callers with nothing
//!   usable (or an unknown `kid`) wait: while expired keys are being refreshed, others verify
//!   with them, so a hanging provider delays one request, not all;
//! - a failed refresh (network, non-200, garbage, no usable keys) keeps the last-known-good
//!   keys — for at most `max_stale_secs` past their expiry — and reports
//!   [`CacheEvent::RefreshFailedUsingCached`]; with nothing cached the failure is a
//!   [`JwksError`] (provider problem, 502/503), never a token error. After a failure with
//!   keys cached, no new attempt is made for `failure_backoff_secs`; with nothing cached the
//!   next request tries again (still one fetch at a time), so sign-in recovers with the
//!   provider instead of after a timer.
//!
//! Single-threaded by design (a Worker isolate): state lives in a `RefCell`, and no borrow is
//! ever held across an `.await`, so no borrow can fail.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::coalesce::Coalescer;
use http::header::ACCEPT;
use http::{Method, StatusCode};

use super::error::{JwksError, JwtError};
use super::http_cache::{TtlBounds, freshness_secs};
use super::keys::{Jwks, KeySet};
use crate::ports::{Clock, HttpClient};

/// Longer kids are not remembered as unknown (they stay rate-limited by the cooldown).
const MAX_REMEMBERED_KID_LEN: usize = 256;

/// Tunables of the JWKS cache. `Default` gives the documented policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksCachePolicy {
    /// Freshness when the response has no usable `max-age`.
    pub default_ttl_secs: u64,
    /// Lower bound on freshness: protects the provider (and latency) from `max-age=0`.
    pub min_ttl_secs: u64,
    /// Upper bound on freshness: rotated-out keys are dropped within a day.
    pub max_ttl_secs: u64,
    /// Minimum time between fetch attempts caused by unknown kids.
    pub unknown_kid_cooldown_secs: u64,
    /// After a failed fetch, how long to serve the cached keys without retrying.
    pub failure_backoff_secs: u64,
    /// How long past expiry last-known-good keys may still be used while refreshes fail.
    pub max_stale_secs: u64,
    /// How long a kid found missing by a refetch is remembered.
    pub negative_kid_ttl_secs: u64,
    /// Bound on remembered unknown kids; the memory is cleared when it fills.
    pub max_negative_kids: usize,
    /// Largest JWKS body accepted.
    pub max_body_bytes: usize,
}

impl Default for JwksCachePolicy {
    fn default() -> Self {
        Self {
            default_ttl_secs: 3600,
            min_ttl_secs: 300,
            max_ttl_secs: 86_400,
            unknown_kid_cooldown_secs: 10,
            failure_backoff_secs: 10,
            max_stale_secs: 86_400,
            negative_kid_ttl_secs: 300,
            max_negative_kids: 256,
            max_body_bytes: 256 * 1024,
        }
    }
}

/// Something about the key cache worth a log line, whatever the token's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEvent {
    /// A refresh failed; the last-known-good keys stay in use.
    RefreshFailedUsingCached(JwksError),
}

impl CacheEvent {
    /// A stable snake_case code for the decision log.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::RefreshFailedUsingCached(_) => "jwks_refresh_failed_using_cached",
        }
    }
}

/// Keys to verify with, and whether getting them is worth a log line.
pub struct KeyLookup<K> {
    pub keys: Rc<KeySet<K>>,
    pub event: Option<CacheEvent>,
}

type Outcome<K> = Result<Rc<KeySet<K>>, JwksError>;

struct Current<K> {
    uri: String,
    keys: Rc<KeySet<K>>,
    expires_at_ms: u64,
}

struct State<K> {
    current: Option<Current<K>>,
    /// When an unknown `kid` last caused a fetch: the cooldown counts from there, not from
    /// scheduled fetches, so a key rotated in right after a fetch is still found at once.
    last_kid_refetch_ms: Option<u64>,
    last_failure: Option<(u64, JwksError)>,
    unknown_kids: BTreeMap<String, u64>,
}

enum Plan<K> {
    Use(Rc<KeySet<K>>),
    /// Fetch, or join the fetch under way.
    Fetch,
}

/// One issuer's JWKS, shared by every request the isolate serves.
pub struct JwksCache<K> {
    policy: JwksCachePolicy,
    state: RefCell<State<K>>,
    fetches: Coalescer<Outcome<K>>,
}

fn ms(secs: u64) -> u64 {
    secs.saturating_mul(1000)
}

impl<K> Default for JwksCache<K> {
    fn default() -> Self {
        Self::new(JwksCachePolicy::default())
    }
}

impl<K> JwksCache<K> {
    pub fn new(policy: JwksCachePolicy) -> Self {
        let state =
            State { current: None, last_kid_refetch_ms: None, last_failure: None, unknown_kids: BTreeMap::new() };
        Self { policy, state: RefCell::new(state), fetches: Coalescer::default() }
    }

    pub fn policy(&self) -> &JwksCachePolicy {
        &self.policy
    }

    /// The cached keys while fresh, without fetching or waiting: for a caller that can fall
    /// back to [`key_set`](Self::key_set) (the verified-token cache checks a hit against them).
    pub fn fresh_keys(&self, now_ms: u64) -> Option<Rc<KeySet<K>>> {
        let st = self.state.borrow();
        st.current.as_ref().filter(|c| now_ms < c.expires_at_ms).map(|c| c.keys.clone())
    }

    /// The keys for `jwks_uri`: cached while fresh, fetched (once, shared) otherwise.
    pub async fn key_set<P: HttpClient + Clock>(&self, ports: &P, jwks_uri: &str) -> Result<KeyLookup<K>, JwtError> {
        self.obtain(ports, jwks_uri, None).await
    }

    /// The keys after a refetch prompted by a token whose `kid` was not in the cached set —
    /// unless the cooldown, the unknown-kid memory, or a fetch already in flight says otherwise.
    /// Returns the same `Rc` as before when nothing new was fetched.
    pub async fn refetch_for_unknown_kid<P: HttpClient + Clock>(
        &self,
        ports: &P,
        jwks_uri: &str,
        kid: &str,
    ) -> Result<KeyLookup<K>, JwtError> {
        self.obtain(ports, jwks_uri, Some(kid)).await
    }

    async fn obtain<P: HttpClient + Clock>(
        &self,
        ports: &P,
        uri: &str,
        unknown_kid: Option<&str>,
    ) -> Result<KeyLookup<K>, JwtError> {
        if let Plan::Use(keys) = self.plan(ports.now_millis(), uri, unknown_kid) {
            return Ok(KeyLookup { keys, event: None });
        }
        let (outcome, led) = self
            .fetches
            .run(ports, uri, || async {
                if unknown_kid.is_some() {
                    self.state.borrow_mut().last_kid_refetch_ms = Some(ports.now_millis());
                }
                self.fetch_and_store(ports, uri).await
            })
            .await;
        let now = ports.now_millis();
        match outcome {
            Ok(keys) => {
                if let Some(kid) = unknown_kid {
                    self.remember_if_unknown(kid, &keys, now);
                }
                Ok(KeyLookup { keys, event: None })
            }
            Err(e) => self.fall_back(now, uri, e, led),
        }
    }

    /// Decide, in one short borrow, whether to use the cache, join a fetch, or lead one.
    fn plan(&self, now: u64, uri: &str, unknown_kid: Option<&str>) -> Plan<K> {
        let st = self.state.borrow();
        let current = st.current.as_ref().filter(|c| c.uri == uri);
        let fresh = current.filter(|c| now < c.expires_at_ms);
        let usable = current.filter(|c| now < c.expires_at_ms.saturating_add(ms(self.policy.max_stale_secs)));
        let in_flight = self.fetches.is_running(uri);

        match (unknown_kid, usable) {
            (None, _) => {
                if let Some(c) = fresh {
                    return Plan::Use(c.keys.clone());
                }
                // Expired keys are being refreshed by another request: use them meanwhile
                // rather than wait for a provider that may be hanging.
                if let (true, Some(c)) = (in_flight, usable) {
                    return Plan::Use(c.keys.clone());
                }
            }
            (Some(kid), Some(c)) => {
                let remembered = st.unknown_kids.get(kid).is_some_and(|until| now < *until);
                if c.keys.contains_kid(kid) || remembered {
                    return Plan::Use(c.keys.clone());
                }
                if in_flight {
                    return Plan::Fetch;
                }
                let cooldown = ms(self.policy.unknown_kid_cooldown_secs);
                if st.last_kid_refetch_ms.is_some_and(|t| now < t.saturating_add(cooldown)) {
                    return Plan::Use(c.keys.clone());
                }
            }
            // Nothing usable cached: an unknown kid is just a first fetch.
            (Some(_), None) => {}
        }
        if in_flight {
            return Plan::Fetch;
        }
        // After a failure, stale keys are served for the backoff. With nothing cached there is
        // nothing to serve: every caller may try again (still one fetch at a time), so the
        // first request after the provider recovers succeeds instead of waiting out a timer.
        if let (Some((at, _)), Some(c)) = (&st.last_failure, usable)
            && now < at.saturating_add(ms(self.policy.failure_backoff_secs))
        {
            return Plan::Use(c.keys.clone());
        }
        Plan::Fetch
    }

    /// Fetch the JWKS and update the cache (run by the one request that leads the fetch).
    async fn fetch_and_store<P: HttpClient + Clock>(&self, ports: &P, uri: &str) -> Outcome<K> {
        let fetched = fetch(ports, uri, &self.policy).await;
        let now = ports.now_millis();
        let mut st = self.state.borrow_mut();
        match fetched {
            Ok((jwks, ttl_secs)) => {
                let keys = Rc::new(KeySet::new(jwks));
                let expires_at_ms = now.saturating_add(ms(ttl_secs));
                st.current = Some(Current { uri: uri.to_owned(), keys: keys.clone(), expires_at_ms });
                st.last_failure = None;
                st.unknown_kids.clear();
                Ok(keys)
            }
            Err(e) => {
                st.last_failure = Some((now, e.clone()));
                Err(e)
            }
        }
    }

    /// After a failed fetch: last-known-good keys if still usable, else the provider error.
    /// Only the leader reports the event, so one failed fetch makes one log line.
    fn fall_back(&self, now: u64, uri: &str, error: JwksError, led: bool) -> Result<KeyLookup<K>, JwtError> {
        let st = self.state.borrow();
        let max_stale = ms(self.policy.max_stale_secs);
        let usable = st.current.as_ref().filter(|c| c.uri == uri && now < c.expires_at_ms.saturating_add(max_stale));
        match usable {
            Some(c) => Ok(KeyLookup {
                keys: c.keys.clone(),
                event: led.then_some(CacheEvent::RefreshFailedUsingCached(error)),
            }),
            None => Err(error.into()),
        }
    }

    fn remember_if_unknown(&self, kid: &str, keys: &KeySet<K>, now: u64) {
        if keys.contains_kid(kid) || kid.len() > MAX_REMEMBERED_KID_LEN {
            return;
        }
        let mut st = self.state.borrow_mut();
        if st.unknown_kids.len() >= self.policy.max_negative_kids {
            st.unknown_kids.clear();
        }
        let until = now.saturating_add(ms(self.policy.negative_kid_ttl_secs));
        st.unknown_kids.insert(kid.to_owned(), until);
    }
}

/// GET the JWKS and parse it; returns the keys and their freshness lifetime in seconds.
async fn fetch<P: HttpClient>(ports: &P, uri: &str, policy: &JwksCachePolicy) -> Result<(Jwks, u64), JwksError> {
    let request = http::Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(ACCEPT, "application/jwk-set+json, application/json")
        .body(Vec::new())
        .map_err(|_| JwksError::InvalidUri)?;
    let response = ports.send(request).await?;
    if response.status() != StatusCode::OK {
        return Err(JwksError::Status(response.status().as_u16()));
    }
    let body = response.body();
    if body.len() > policy.max_body_bytes {
        return Err(JwksError::TooLarge(body.len()));
    }
    let jwks = Jwks::parse(body)?;
    let bounds = TtlBounds {
        default_secs: policy.default_ttl_secs,
        min_secs: policy.min_ttl_secs,
        max_secs: policy.max_ttl_secs,
    };
    Ok((jwks, freshness_secs(response.headers(), bounds)))
}

#[cfg(test)]
mod tests;
