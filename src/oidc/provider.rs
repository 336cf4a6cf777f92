//! What the gateway remembers about its provider in isolate memory: the discovery document and
//! the signing keys. Nothing here is fetched on the hot path once warm.

use super::discovery::{DiscoveryError, ProviderMetadata, discovery_url};
use super::token::TokenError;
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

struct CachedMetadata {
    metadata: Rc<ProviderMetadata>,
    fetched_at: u64,
}

/// Per-isolate provider state.
pub struct ProviderState<K> {
    metadata: RefCell<Option<CachedMetadata>>,
    pub keys: JwksCache<K>,
}

impl<K> ProviderState<K> {
    pub fn new(keys: JwksCache<K>) -> Self {
        Self { metadata: RefCell::new(None), keys }
    }

    /// The discovery document, fetched when missing or older than an hour. A failed refresh
    /// keeps serving the last good document, so a provider blip does not stop sign-ins.
    pub async fn metadata(
        &self,
        ports: &(impl HttpClient + Clock),
        issuer: &str,
    ) -> Result<Rc<ProviderMetadata>, ProviderError> {
        let now = ports.now_secs();
        let cached = self
            .metadata
            .borrow()
            .as_ref()
            .map(|c| (Rc::clone(&c.metadata), now < c.fetched_at.saturating_add(METADATA_TTL_SECS)));
        match cached {
            Some((metadata, true)) => Ok(metadata),
            Some((stale, false)) => Ok(self.fetch(ports, issuer, now).await.unwrap_or(stale)),
            None => self.fetch(ports, issuer, now).await,
        }
    }

    async fn fetch(
        &self,
        ports: &impl HttpClient,
        issuer: &str,
        now: u64,
    ) -> Result<Rc<ProviderMetadata>, ProviderError> {
        let request = http::Request::get(discovery_url(issuer))
            .header("accept", "application/json")
            .body(Vec::new())
            .map_err(|e| ProviderError::DiscoveryUnreachable(HttpError::Network(e.to_string())))?;
        let response = ports.send(request).await.map_err(ProviderError::DiscoveryUnreachable)?;
        if !response.status().is_success() {
            return Err(ProviderError::DiscoveryStatus(response.status().as_u16()));
        }
        let metadata = Rc::new(ProviderMetadata::parse(response.body(), issuer)?);
        *self.metadata.borrow_mut() = Some(CachedMetadata { metadata: Rc::clone(&metadata), fetched_at: now });
        Ok(metadata)
    }
}
