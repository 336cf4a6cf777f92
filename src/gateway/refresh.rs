//! Transparent refresh (RFC 6749 §6) that survives rotating refresh tokens.
//!
//! Providers that rotate refresh tokens (oidc-provider, Auth0, Okta) revoke the whole grant
//! when a used one comes back (RFC 9700 §4.14.2), so two requests refreshing one session at
//! once would end it. Two defences:
//! - in the isolate, concurrent refreshes of one session are coalesced: one request leads,
//!   the others wait for its result ([`Coalescer`]);
//! - across isolates, the leader leaves a short-lived grace record "old refresh token → new
//!   tokens" in KV, which another isolate holding the old token uses instead of the provider.
//!   KV is eventually consistent, so this narrows the race rather than closing it; a Durable
//!   Object per session would close it (see README, "Consistency").

use super::Gateway;
use crate::coalesce::Coalescer;
use crate::oidc::{Grant, TokenError, build_token_request, parse_token_response};
use crate::ports::Ports;
use crate::session::{SessionId, SessionRecord};
use crate::store::RefreshGrace;

/// Refresh at most this long before the access token expires...
pub const REFRESH_MARGIN_SECS: u64 = 30;
/// ...and at most this fraction (1/n) of its lifetime before: a token that lives less than
/// the margin would otherwise be "about to expire" the moment it is issued, and every request
/// would refresh it again.
const REFRESH_MARGIN_LIFETIME_DIVISOR: u64 = 4;

/// Whether the session's access token should be renewed before it is forwarded at `now_ms`.
pub fn needs_refresh(record: &SessionRecord, now_ms: u64) -> bool {
    let Some(expires_at) = record.access_expires_at else { return false };
    let full_margin_ms = REFRESH_MARGIN_SECS.saturating_mul(1000);
    let margin_ms = match record.access_issued_at {
        Some(issued_at) => {
            let lifetime_ms = expires_at.saturating_sub(issued_at).saturating_mul(1000);
            full_margin_ms.min(lifetime_ms / REFRESH_MARGIN_LIFETIME_DIVISOR)
        }
        None => full_margin_ms,
    };
    now_ms.saturating_add(margin_ms) >= expires_at.saturating_mul(1000)
}

/// Why a refresh produced no tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshFailure {
    /// The provider refused the refresh token (`invalid_grant`: revoked, expired, reused). The
    /// session is over.
    Rejected(String),
    /// The provider or KV failed, or refused for a reason that is not about the refresh token
    /// (rate limiting, `temporarily_unavailable`, `invalid_client` while a client secret is
    /// rotated): the session is kept and may work again later. `reason` is a log code.
    Unavailable { reason: &'static str, detail: String },
}

impl RefreshFailure {
    fn unavailable(reason: &'static str, detail: &dyn std::fmt::Display) -> Self {
        RefreshFailure::Unavailable { reason, detail: detail.to_string() }
    }

    /// Sort the token endpoint's answer to a refresh grant (RFC 6749 §5.2): only
    /// `invalid_grant` says the refresh token itself is dead.
    fn from_token_answer(rate_limited: bool, error: TokenError) -> Self {
        if rate_limited {
            return Self::unavailable("provider_rate_limited", &error);
        }
        let reason = match &error {
            TokenError::Refused { error, .. } if error == "invalid_grant" => {
                return RefreshFailure::Rejected(error.clone());
            }
            TokenError::Refused { error, .. } if error == "temporarily_unavailable" => {
                "provider_temporarily_unavailable"
            }
            TokenError::Refused { error, .. } if error == "invalid_client" || error == "unauthorized_client" => {
                "client_authentication_failed"
            }
            TokenError::Unreachable(_) => "provider_unreachable",
            TokenError::Refused { .. } | TokenError::ProviderStatus(_) | TokenError::Malformed(_) => "provider_error",
        };
        Self::unavailable(reason, &error)
    }
}

/// Refreshes in progress in this isolate, by session storage key.
pub type Refreshing = Coalescer<Result<SessionRecord, RefreshFailure>>;

impl<P: Ports> Gateway<P> {
    /// New tokens for the session, shared with any refresh of it already under way here.
    pub(super) async fn refresh_session(
        &self,
        ports: &P,
        id: &SessionId,
        record: SessionRecord,
    ) -> Result<SessionRecord, RefreshFailure> {
        let key = id.storage_key();
        self.refreshing.run(ports, &key, || self.lead_refresh(ports, id, record)).await.0
    }

    async fn lead_refresh(
        &self,
        ports: &P,
        id: &SessionId,
        mut record: SessionRecord,
    ) -> Result<SessionRecord, RefreshFailure> {
        let keys = &self.config.session.keys;
        let store_down = |e: &dyn std::fmt::Display| RefreshFailure::unavailable("store_unavailable", e);
        let old = record.refresh_token.clone().ok_or_else(|| RefreshFailure::Rejected("no refresh token".into()))?;
        let grace = match self.sessions.grace(ports, keys, &old).await.map_err(|e| store_down(&e))? {
            Some(grace) => grace,
            None => {
                let metadata = self
                    .provider
                    .metadata(ports, &self.config.provider)
                    .await
                    .map_err(|e| RefreshFailure::unavailable(e.reason(), &e))?;
                let grant = Grant::RefreshToken { refresh_token: &old };
                let auth = self
                    .client_authentication(ports, &metadata.token_endpoint)
                    .await
                    .map_err(|e| RefreshFailure::unavailable("signing_key_unusable", &e))?;
                let request = build_token_request(&metadata.token_endpoint, &self.config.provider, &grant, &auth)
                    .map_err(|e| RefreshFailure::unavailable("provider_error", &e))?;
                let now = ports.now_secs();
                let answer = ports.send(request).await;
                let rate_limited = matches!(&answer, Ok(r) if r.status() == http::StatusCode::TOO_MANY_REQUESTS);
                let tokens = match parse_token_response(answer) {
                    Ok(tokens) => tokens,
                    Err(error) => return Err(RefreshFailure::from_token_answer(rate_limited, error)),
                };
                let grace = RefreshGrace {
                    access_token: tokens.access_token,
                    access_expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
                    access_issued_at: Some(now),
                    // Providers that do not rotate return no new refresh token: keep the old one.
                    refresh_token: tokens.refresh_token.or(Some(old.clone())),
                };
                // Best effort: without it another isolate may still refresh with `old`.
                let _ = self.sessions.save_grace(ports, keys, ports, &old, &grace).await;
                grace
            }
        };
        // A logout that landed while the provider was answering wins: never write back a
        // session that was ended meanwhile.
        if self.sessions.is_ended(ports, id).await.map_err(|e| store_down(&e))? {
            return Err(RefreshFailure::Rejected("session ended during refresh".into()));
        }
        record.access_token = grace.access_token;
        record.access_expires_at = grace.access_expires_at;
        record.access_issued_at = grace.access_issued_at;
        record.refresh_token = grace.refresh_token;
        let now = ports.now_secs();
        self.sessions.save(ports, keys, ports, id, &record, now).await.map_err(|e| store_down(&e))?;
        Ok(record)
    }
}
