//! What the gateway remembers about its provider in isolate memory: the discovery document and
//! the signing keys. Nothing here is fetched on the hot path once warm.

use super::discovery::{DiscoveryError, ProviderMetadata};
use super::token::TokenError;
use crate::coalesce::Coalescer;
use crate::config::ProviderConfig;
use crate::jwt::{JwksCache, JwtError};
use crate::ports::{Clock, HttpClient, HttpError};
use std::cell::RefCell;
use std::rc::Rc;

/// How long a discovery document is trusted before it is fetched again.
const METADATA_TTL_SECS: u64 = 3600;

/// The provider failed us (not the client's fault): 502, or 504 on timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Discovery could not be fetched.
    #[error("discovery fetch failed: {0}")]
    DiscoveryUnreachable(HttpError),
    /// Discovery answered with an error status.
    #[error("discovery answered HTTP {0}")]
    DiscoveryStatus(u16),
    /// Discovery answered with a document the gateway refuses.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The token endpoint failed (not a refusal of the grant: that is the client's problem).
    #[error(transparent)]
    Token(TokenError),
    /// No signing keys could be had (JWKS down with nothing cached, or empty).
    #[error("signing keys unavailable: {0}")]
    Keys(JwtError),
}

impl ProviderError {
    pub fn reason(&self) -> &'static str {
        match self {
            ProviderError::DiscoveryUnreachable(_) | ProviderError::DiscoveryStatus(_) => {
                "provider_discovery_unavailable"
            }
            ProviderError::Discovery(DiscoveryError::IssuerMismatch { .. }) => "provider_discovery_issuer_mismatch",
            ProviderError::Discovery(_) => "provider_discovery_invalid",
            ProviderError::Token(_) => "provider_token_endpoint_failed",
            ProviderError::Keys(_) => "provider_keys_unavailable",
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ProviderError::DiscoveryUnreachable(HttpError::Timeout)
                | ProviderError::Token(TokenError::Unreachable(HttpError::Timeout))
        )
    }
}

/// What this isolate knows about the discovery document: the last good copy, and how the
/// fetches since have gone.
#[derive(Default)]
struct MetadataState {
    cached: Option<CachedMetadata>,
    /// Failed fetches in a row since the last good one.
    failures: u32,
    /// No new attempt before this (Unix seconds) while a stale copy can be served.
    retry_at: u64,
}

struct CachedMetadata {
    metadata: Rc<ProviderMetadata>,
    fetched_at: u64,
}

/// The wait before the next attempt after `failures` failed fetches in a row: 5 s, doubling,
/// at most 5 minutes. A provider that is down is asked once per wait, not once per request.
fn backoff_secs(failures: u32) -> u64 {
    const FIRST_SECS: u64 = 5;
    const MAX_SECS: u64 = 300;
    FIRST_SECS.saturating_mul(1u64 << failures.saturating_sub(1).min(16)).min(MAX_SECS)
}

type FetchOutcome = Result<Rc<ProviderMetadata>, ProviderError>;

/// Per-isolate provider state.
pub struct ProviderState<K> {
    metadata: RefCell<MetadataState>,
    /// The discovery fetch under way, shared by every request that has no copy to serve.
    fetches: Coalescer<FetchOutcome>,
    pub keys: JwksCache<K>,
}

impl<K> ProviderState<K> {
    pub fn new(keys: JwksCache<K>) -> Self {
        Self { metadata: RefCell::new(MetadataState::default()), fetches: Coalescer::default(), keys }
    }

    /// The discovery document, fetched when missing or older than an hour. Once the hour is
    /// up, the stale copy keeps being served: while one request refreshes it (the others do not
    /// wait for that), and after a failed refresh, with retries backing off (`backoff_secs`),
    /// so a provider that is down or hanging costs one request per wait, not every request a
    /// timeout. With no copy at all, concurrent requests share one fetch.
    pub async fn metadata(
        &self,
        ports: &(impl HttpClient + Clock),
        provider: &ProviderConfig,
    ) -> Result<Rc<ProviderMetadata>, ProviderError> {
        let key = provider.discovery_url.as_str();
        let now = ports.now_secs();
        let stale = {
            let state = self.metadata.borrow();
            match &state.cached {
                Some(c) if now < c.fetched_at.saturating_add(METADATA_TTL_SECS) => return Ok(Rc::clone(&c.metadata)),
                Some(c) if now < state.retry_at || self.fetches.is_running(key) => {
                    return Ok(Rc::clone(&c.metadata));
                }
                Some(c) => Some(Rc::clone(&c.metadata)),
                None => None,
            }
        };
        let (outcome, _) = self.fetches.run(ports, key, || self.fetch(ports, provider)).await;
        match (outcome, stale) {
            (Ok(metadata), _) => Ok(metadata),
            (Err(_), Some(stale)) => Ok(stale),
            (Err(e), None) => Err(e),
        }
    }

    /// Fetch the document and record the outcome (run by the one request that leads).
    async fn fetch(&self, ports: &(impl HttpClient + Clock), provider: &ProviderConfig) -> FetchOutcome {
        let fetched = fetch_metadata(ports, provider).await;
        let now = ports.now_secs();
        let mut state = self.metadata.borrow_mut();
        match &fetched {
            Ok(metadata) => {
                state.cached = Some(CachedMetadata { metadata: Rc::clone(metadata), fetched_at: now });
                state.failures = 0;
                state.retry_at = 0;
            }
            Err(_) => {
                state.failures = state.failures.saturating_add(1);
                state.retry_at = now.saturating_add(backoff_secs(state.failures));
            }
        }
        fetched
    }
}

async fn fetch_metadata(ports: &impl HttpClient, provider: &ProviderConfig) -> FetchOutcome {
    let request = http::Request::get(&provider.discovery_url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| ProviderError::DiscoveryUnreachable(HttpError::Network(e.to_string())))?;
    let response = ports.send(request).await.map_err(ProviderError::DiscoveryUnreachable)?;
    if !response.status().is_success() {
        return Err(ProviderError::DiscoveryStatus(response.status().as_u16()));
    }
    Ok(Rc::new(ProviderMetadata::parse_for(response.body(), provider)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ports::TestPorts;
    use crate::testkit::{FakeHttp, block_on, json_response};
    use futures::future::join_all;
    use serde_json::json;
    use std::cell::Cell;

    const ISSUER: &str = "https://idp.example.com";

    fn provider_config() -> ProviderConfig {
        crate::gateway::tests::config(&[("OIDC_ISSUER", ISSUER)]).provider
    }

    /// A provider whose discovery endpoint answers or times out as `up` says.
    fn provider(up: &Rc<Cell<bool>>) -> (TestPorts<FakeHttp>, ProviderState<()>) {
        let up = Rc::clone(up);
        let http = FakeHttp::new(move |_| {
            if !up.get() {
                return Err(HttpError::Timeout);
            }
            Ok(json_response(
                200,
                &json!({
                    "issuer": ISSUER,
                    "authorization_endpoint": format!("{ISSUER}/authorize"),
                    "token_endpoint": format!("{ISSUER}/token"),
                    "jwks_uri": format!("{ISSUER}/jwks"),
                }),
            ))
        });
        (TestPorts::new(http, 1_000_000), ProviderState::new(JwksCache::default()))
    }

    fn fetches(ports: &TestPorts<FakeHttp>) -> usize {
        ports.http.count("/.well-known/openid-configuration")
    }

    #[test]
    fn a_failing_provider_is_asked_with_growing_pauses_while_the_stale_copy_is_served() {
        let up = Rc::new(Cell::new(true));
        let (ports, state) = provider(&up);
        assert!(block_on(state.metadata(&ports, &provider_config())).is_ok());
        up.set(false);
        ports.clock.advance_secs(METADATA_TTL_SECS);
        // Every second for 20 minutes: always served, the provider asked at 0, 5, 15, 35, 75,
        // 155, 315, 615, 915 s (waits 5, 10, 20, ... capped at 300 s).
        let mut asked_at = Vec::new();
        for second in 0..1200 {
            let before = fetches(&ports);
            assert_eq!(block_on(state.metadata(&ports, &provider_config())).unwrap().issuer, ISSUER);
            if fetches(&ports) > before {
                asked_at.push(second);
            }
            ports.clock.advance_secs(1);
        }
        assert_eq!(asked_at, vec![0, 5, 15, 35, 75, 155, 315, 615, 915]);
        // Back up: the next attempt succeeds and the schedule starts over.
        up.set(true);
        ports.clock.advance_secs(300);
        block_on(state.metadata(&ports, &provider_config())).unwrap();
        let after_recovery = fetches(&ports);
        ports.clock.advance_secs(METADATA_TTL_SECS - 1);
        block_on(state.metadata(&ports, &provider_config())).unwrap();
        assert_eq!(fetches(&ports), after_recovery, "fresh again for an hour");
    }

    #[test]
    fn concurrent_requests_share_one_discovery_fetch() {
        let up = Rc::new(Cell::new(true));
        let (ports, state) = provider(&up);
        let config = provider_config();
        // Nothing cached: ten requests, one fetch, all served.
        let results = block_on(join_all((0..10).map(|_| state.metadata(&ports, &config))));
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(fetches(&ports), 1);
        // Stale, provider hanging: one request refreshes, the others are served the stale copy.
        up.set(false);
        ports.clock.advance_secs(METADATA_TTL_SECS);
        let results = block_on(join_all((0..10).map(|_| state.metadata(&ports, &config))));
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(fetches(&ports), 2);
        // Nothing cached and the provider down: one fetch for the burst, and each request gets
        // the provider error (502), not a panic.
        let (ports, state) = provider(&up);
        let results = block_on(join_all((0..10).map(|_| state.metadata(&ports, &config))));
        assert!(results.iter().all(|r| matches!(r, Err(ProviderError::DiscoveryUnreachable(HttpError::Timeout)))));
        assert_eq!(fetches(&ports), 1);
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let waits: Vec<u64> = (1..=10).map(backoff_secs).collect();
        assert_eq!(waits, vec![5, 10, 20, 40, 80, 160, 300, 300, 300, 300]);
        assert_eq!(backoff_secs(u32::MAX), 300);
    }
}
