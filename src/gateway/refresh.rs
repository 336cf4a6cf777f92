//! Transparent refresh (RFC 6749 §6) that survives rotating refresh tokens.
//!
//! Providers that rotate refresh tokens (oidc-provider, Auth0, Okta) revoke the whole grant
//! when a used one comes back (RFC 9700 §4.14.2), so two requests refreshing one session at
//! once would end it. Two defences:
//! - in the isolate, concurrent refreshes of one session are coalesced: one request leads,
//!   the others wait for its result ([`Coalescer`]);
//! - across isolates, the leader leaves a short-lived grace record "old refresh token → new
//!   tokens" in KV, which another isolate holding the old token uses instead of the provider.
//!   KV is eventually consistent, so this narrows the race rather than closing it;
//! - with a session object bound (`SESSION_OBJECTS`, see `store::coordinator`), the object
//!   closes it: one leader anywhere makes the grant, everyone else gets its tokens.

use super::Gateway;
use crate::coalesce::Coalescer;
use crate::error::GatewayError;
use crate::oidc::{Grant, TokenError, build_token_request, parse_token_response, refreshed_identity};
use crate::ports::Ports;
use crate::session::{SessionId, SessionRecord};
use crate::store::coordinator::{access_hash, open_tokens, seal_tokens};
use crate::store::{ObjectAnswer, ObjectCall, RefreshGrace, RefreshedIdToken, session_hash};

/// Most answers one refresh takes from a session's object (adopted tokens that are due already
/// lead to one more question).
const MAX_OBJECT_TURNS: usize = 3;

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
    /// The session's object says the session ended (logged out somewhere).
    Ended,
    /// The refresh response's ID token failed a check (OIDC Core §12.2; `reason` is the
    /// check's log code): the session is over, never served with what that token says.
    IdTokenInvalid(&'static str),
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

    /// This isolate's one refresh of the session: through its object when one is bound, else
    /// with KV alone.
    async fn lead_refresh(
        &self,
        ports: &P,
        id: &SessionId,
        record: SessionRecord,
    ) -> Result<SessionRecord, RefreshFailure> {
        let key = id.storage_key();
        let ask = ObjectCall::Refresh { access: access_hash(&record.access_token) };
        match ports.ask_session_object(session_hash(&key), &ask).await.map_err(|e| store_down(&e))? {
            None => self.kv_refresh(ports, id, record).await,
            Some(answer) => self.object_refresh(ports, id, record, answer).await,
        }
    }

    /// Follow the session object's answers: use the tokens another caller got, or lead.
    async fn object_refresh(
        &self,
        ports: &P,
        id: &SessionId,
        mut record: SessionRecord,
        mut answer: ObjectAnswer,
    ) -> Result<SessionRecord, RefreshFailure> {
        let key = id.storage_key();
        let hash = session_hash(&key);
        for _ in 0..MAX_OBJECT_TURNS {
            match answer {
                ObjectAnswer::Ended => return Err(RefreshFailure::Ended),
                ObjectAnswer::Lead { lease } => return self.refresh_under_lease(ports, id, record, lease).await,
                ObjectAnswer::Current { sealed } => {
                    adopt(&mut record, self.open_object_tokens(hash, &sealed)?);
                    if !needs_refresh(&record, ports.now_millis()) {
                        self.sessions.keep_warm(id, &record, ports.now_secs());
                        return Ok(record);
                    }
                }
                ObjectAnswer::Busy | ObjectAnswer::Live => break,
            }
            let ask = ObjectCall::Refresh { access: access_hash(&record.access_token) };
            let next = ports.ask_session_object(hash, &ask).await.map_err(|e| store_down(&e))?;
            answer = next.unwrap_or(ObjectAnswer::Busy);
        }
        Err(RefreshFailure::unavailable("session_object_busy", &"another refresh of this session did not finish"))
    }

    /// The one refresh grant anywhere for this session's current tokens: report the result to
    /// the object (which hands it to every caller waiting there), then store the record in KV.
    async fn refresh_under_lease(
        &self,
        ports: &P,
        id: &SessionId,
        mut record: SessionRecord,
        lease: String,
    ) -> Result<SessionRecord, RefreshFailure> {
        let keys = &self.config.session.keys;
        let key = id.storage_key();
        let hash = session_hash(&key);
        let old = record.refresh_token.clone().ok_or_else(|| RefreshFailure::Rejected("no refresh token".into()))?;
        let tokens = match self.refresh_grant(ports, &record, &old).await {
            Ok(tokens) => tokens,
            Err(failure) => {
                // A rejected token ends the session (and its object, in session.rs); anything
                // else lets the next caller try at once. Best effort: the lease runs out anyway.
                if matches!(failure, RefreshFailure::Unavailable { .. }) {
                    let _ = ports.ask_session_object(hash, &ObjectCall::Abandon { lease }).await;
                }
                return Err(failure);
            }
        };
        let sealed = seal_tokens(keys, ports, hash, &tokens);
        let keep_secs = record.expires_at.saturating_sub(ports.now_secs());
        let report = ObjectCall::Refreshed { lease, access: access_hash(&tokens.access_token), sealed, keep_secs };
        match ports.ask_session_object(hash, &report).await.map_err(|e| store_down(&e))? {
            Some(ObjectAnswer::Live) => {
                adopt(&mut record, tokens);
                let now = ports.now_secs();
                self.sessions.save(ports, keys, ports, id, &record, now).await.map_err(|e| store_down(&e))?;
                Ok(record)
            }
            Some(ObjectAnswer::Ended) => Err(RefreshFailure::Ended),
            // Our lease ran out and another leader's tokens were stored first: theirs count.
            Some(ObjectAnswer::Current { sealed }) => {
                adopt(&mut record, self.open_object_tokens(hash, &sealed)?);
                self.sessions.keep_warm(id, &record, ports.now_secs());
                Ok(record)
            }
            _ => Err(RefreshFailure::unavailable("session_object_busy", &"unexpected answer to a refresh report")),
        }
    }

    fn open_object_tokens(&self, hash: &str, sealed: &str) -> Result<RefreshGrace, RefreshFailure> {
        open_tokens(&self.config.session.keys, hash, sealed)
            .ok_or_else(|| RefreshFailure::unavailable("session_object_unreadable", &"its tokens do not open"))
    }

    /// Today's KV-only refresh: a grace record another isolate left, else the provider.
    async fn kv_refresh(
        &self,
        ports: &P,
        id: &SessionId,
        mut record: SessionRecord,
    ) -> Result<SessionRecord, RefreshFailure> {
        let keys = &self.config.session.keys;
        let old = record.refresh_token.clone().ok_or_else(|| RefreshFailure::Rejected("no refresh token".into()))?;
        let grace = match self.sessions.grace(ports, keys, &old).await.map_err(|e| store_down(&e))? {
            Some(grace) => grace,
            None => {
                let grace = self.refresh_grant(ports, &record, &old).await?;
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
        adopt(&mut record, grace);
        let now = ports.now_secs();
        self.sessions.save(ports, keys, ports, id, &record, now).await.map_err(|e| store_down(&e))?;
        Ok(record)
    }

    /// The refresh grant (RFC 6749 §6) at the provider the session `record` was signed in with
    /// (its `provider`), and the check of the ID token it may bring.
    async fn refresh_grant(
        &self,
        ports: &P,
        record: &SessionRecord,
        old: &str,
    ) -> Result<RefreshGrace, RefreshFailure> {
        let Some(index) = self.provider_named(&record.provider) else {
            return Err(RefreshFailure::Rejected("the session's provider is not configured".into()));
        };
        let provider = self.provider_at(index);
        let metadata = provider
            .state
            .metadata(ports, provider.config)
            .await
            .map_err(|e| RefreshFailure::unavailable(e.reason(), &e))?;
        let grant = Grant::RefreshToken { refresh_token: old };
        let auth = self
            .client_authentication(ports, &provider, &metadata.token_endpoint)
            .await
            .map_err(|e| RefreshFailure::unavailable("signing_key_unusable", &e))?;
        let request = build_token_request(&metadata.token_endpoint, provider.config, &grant, &auth)
            .map_err(|e| RefreshFailure::unavailable("provider_error", &e))?;
        let now = ports.now_secs();
        let answer = ports.send(request).await;
        let rate_limited = matches!(&answer, Ok(r) if r.status() == http::StatusCode::TOO_MANY_REQUESTS);
        let tokens = match parse_token_response(answer) {
            Ok(tokens) => tokens,
            Err(error) => return Err(RefreshFailure::from_token_answer(rate_limited, error)),
        };
        let id_token = match &tokens.id_token {
            Some(id_token) => {
                let identity =
                    check_refreshed_id_token(ports, &provider, &metadata, record, id_token, &tokens.access_token)
                        .await?;
                Some(RefreshedIdToken { id_token: id_token.clone(), identity })
            }
            None => None,
        };
        Ok(RefreshGrace {
            id_token,
            access_token: tokens.access_token,
            access_expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
            access_issued_at: Some(now),
            // Providers that do not rotate return no new refresh token: keep the old one.
            refresh_token: tokens.refresh_token.or(Some(old.to_owned())),
        })
    }
}

fn store_down(e: &dyn std::fmt::Display) -> RefreshFailure {
    RefreshFailure::unavailable("store_unavailable", e)
}

/// A refresh's ID token, checked as at sign-in (signature with the provider's cached keys,
/// `iss`, `aud`/`azp`, `exp`, `iat`, `at_hash`; no `nonce` required) and as the same user and
/// authentication as the session's (OIDC Core §12.2): the identity the session takes from it.
async fn check_refreshed_id_token<P: Ports>(
    ports: &P,
    provider: &super::providers::Provider<'_, P>,
    metadata: &crate::oidc::ProviderMetadata,
    record: &SessionRecord,
    id_token: &str,
    access_token: &str,
) -> Result<crate::session::Identity, RefreshFailure> {
    let mut notes = Vec::new();
    let keys = &provider.state.keys;
    let checked = crate::oidc::validate_id_token(
        ports,
        keys,
        metadata,
        id_token,
        provider.config,
        None,
        access_token,
        &mut notes,
    )
    .await;
    let identity = match checked {
        Ok(identity) => identity,
        Err(GatewayError::IdToken(e)) => return Err(RefreshFailure::IdTokenInvalid(e.reason())),
        // The provider's keys could not be had: not the token's fault.
        Err(e) => return Err(RefreshFailure::unavailable("provider_keys_unavailable", &e)),
    };
    refreshed_identity(&record.identity, &record.id_token, id_token, identity)
        .map_err(|e| RefreshFailure::IdTokenInvalid(e.reason()))
}

/// The session's tokens become `tokens`; with a refreshed ID token (checked by the refresh's
/// leader, here or in the isolate that sealed `tokens`), its identity too.
fn adopt(record: &mut SessionRecord, tokens: RefreshGrace) {
    if let Some(refreshed) = tokens.id_token {
        record.id_token = refreshed.id_token;
        record.identity = refreshed.identity;
    }
    record.access_token = tokens.access_token;
    record.access_expires_at = tokens.access_expires_at;
    record.access_issued_at = tokens.access_issued_at;
    record.refresh_token = tokens.refresh_token;
}
