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

/// Refresh when the access token expires within this many seconds.
pub const REFRESH_MARGIN_SECS: u64 = 30;

/// Why a refresh produced no tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshFailure {
    /// The provider refused the refresh token (`invalid_grant`: revoked, expired, reused). The
    /// session is over.
    Rejected(String),
    /// The provider or KV failed; the session may work again later.
    Unavailable(String),
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
        let unavailable = |e: &dyn std::fmt::Display| RefreshFailure::Unavailable(e.to_string());
        let old = record.refresh_token.clone().ok_or_else(|| RefreshFailure::Rejected("no refresh token".into()))?;
        let grace = match self.sessions.grace(ports, keys, &old).await.map_err(|e| unavailable(&e))? {
            Some(grace) => grace,
            None => {
                let metadata =
                    self.provider.metadata(ports, &self.config.provider.issuer).await.map_err(|e| unavailable(&e))?;
                let grant = Grant::RefreshToken { refresh_token: &old };
                let request = build_token_request(&metadata.token_endpoint, &self.config.provider, &grant)
                    .map_err(|e| unavailable(&e))?;
                let now = ports.now_secs();
                let tokens = match parse_token_response(ports.send(request).await) {
                    Ok(tokens) => tokens,
                    Err(TokenError::Refused { error, .. }) => return Err(RefreshFailure::Rejected(error)),
                    Err(other) => return Err(unavailable(&other)),
                };
                let grace = RefreshGrace {
                    access_token: tokens.access_token,
                    access_expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
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
        if self.sessions.is_ended(ports, id).await.map_err(|e| unavailable(&e))? {
            return Err(RefreshFailure::Rejected("session ended during refresh".into()));
        }
        record.access_token = grace.access_token;
        record.access_expires_at = grace.access_expires_at;
        record.refresh_token = grace.refresh_token;
        let now = ports.now_secs();
        self.sessions.save(ports, keys, ports, id, &record, now).await.map_err(|e| unavailable(&e))?;
        Ok(record)
    }
}
