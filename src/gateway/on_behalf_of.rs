//! On-behalf-of tokens for `origin_token: on_behalf_of` routes: the caller's access token
//! exchanged for one for the route's `token_target` (RFC 8693, or Entra ID's OBO flow), so
//! each origin gets a token for its own audience that still names the user.
//!
//! Cached in isolate memory per (caller token, target) — a session's token changes only when it
//! is refreshed, so this is per session and audience — and used until a fifth of its lifetime
//! is left; concurrent exchanges of one token share one grant. Not kept in KV: the entry dies
//! with the caller's token anyway.

use super::Gateway;
use super::app_token::{AppToken, TokenMemory};
use crate::coalesce::Coalescer;
use crate::encoding::{hex, sha256};
use crate::oidc::{AppTokenError, build_on_behalf_of_request, parse_token_response};
use crate::policy::TokenTarget;
use crate::ports::Ports;

/// Per-isolate on-behalf-of tokens and the exchanges in flight.
#[derive(Default)]
pub struct OnBehalfOfTokens {
    memory: TokenMemory,
    exchanging: Coalescer<Result<AppToken, AppTokenError>>,
}

impl<P: Ports> Gateway<P> {
    /// A token for `target` on behalf of the caller whose access token is `subject_token`.
    /// The exchange happens at `provider`, the one that issued the caller's token.
    pub(super) async fn on_behalf_of_token(
        &self,
        ports: &P,
        provider: usize,
        subject_token: &str,
        target: &TokenTarget,
    ) -> Result<String, AppTokenError> {
        let issuer = &self.provider_at(provider).config.issuer;
        let key = hex(&sha256([issuer, subject_token, &target.cache_key()].join("\0").as_bytes()));
        let now = ports.now_secs();
        let cached = self.on_behalf_of.memory.get(&key).filter(|t| now < t.renew_at);
        if let Some(token) = cached {
            return Ok(token.access_token);
        }
        let (result, _) = self
            .on_behalf_of
            .exchanging
            .run(ports, &key, || self.exchange_on_behalf_of(ports, provider, &key, subject_token, target))
            .await;
        result.map(|token| token.access_token)
    }

    async fn exchange_on_behalf_of(
        &self,
        ports: &P,
        provider: usize,
        key: &str,
        subject_token: &str,
        target: &TokenTarget,
    ) -> Result<AppToken, AppTokenError> {
        let unavailable = |e: &dyn std::fmt::Display| AppTokenError::Unavailable(e.to_string());
        let provider = self.provider_at(provider);
        let metadata = provider.state.metadata(ports, provider.config).await.map_err(|e| unavailable(&e))?;
        let endpoint = &metadata.token_endpoint;
        let auth = self.client_authentication(ports, &provider, endpoint).await.map_err(|e| unavailable(&e))?;
        let request = build_on_behalf_of_request(endpoint, provider.config.on_behalf_of, subject_token, target, &auth)
            .map_err(|e| unavailable(&e))?;
        let now = ports.now_secs();
        let token = AppToken::issued(parse_token_response(ports.send(request).await)?, now, ports);
        self.on_behalf_of.memory.remember(key, &token, now);
        Ok(token)
    }
}
