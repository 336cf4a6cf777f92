//! Session routes: a valid session is forwarded with its access token (refreshed first when it
//! is about to expire); anything else is sent to sign in (browser navigations) or answered 401.

use super::refresh::{RefreshFailure, needs_refresh};
use super::request::IncomingRequest;
use super::{Decision, Gateway, log};
use crate::error::GatewayError;
use crate::policy::Route;
use crate::ports::Ports;
use crate::proxy::{Credential, ForwardIdentity};
use crate::session::SessionRecord;
use crate::session::cookie::clear_cookie;
use std::rc::Rc;

/// A live session, the re-sealed cookie to send back if its idle deadline moved, and log notes
/// (a refresh put off because the provider failed).
pub(super) struct Live {
    /// The warm copy itself, shared (not copied per request).
    pub(super) record: Rc<SessionRecord>,
    /// Where the record is stored (also names what is kept beside it).
    pub(super) storage_key: String,
    pub(super) set_cookie: Option<String>,
    pub(super) notes: Vec<&'static str>,
    /// When the session ends unless used again: its absolute or its (possibly just moved) idle
    /// deadline, whichever is first.
    pub(super) ends_at: u64,
}

/// Why a request has no live session: its log reason, and for a refresh whose ID token failed a
/// check, which check (a log note, so an operator sees `sub_changed` or `token_expired`).
pub(super) struct NoSession {
    pub(super) why: &'static str,
    pub(super) note: Option<&'static str>,
}

impl From<&'static str> for NoSession {
    fn from(why: &'static str) -> Self {
        NoSession { why, note: None }
    }
}

impl<P: Ports> Gateway<P> {
    /// The live session of the provider at `provider` behind the request's cookie (each
    /// provider has its own, see [`crate::session::cookie::session_cookie_name`]), or why
    /// there is none. Another provider's session never counts: it stays, and this provider
    /// signs the user in beside it.
    pub(super) async fn current_session(
        &self,
        ports: &P,
        req: &IncomingRequest,
        provider: usize,
    ) -> Result<Result<Live, NoSession>, GatewayError> {
        let now = ports.now_secs();
        let keys = &self.config.session.keys;
        let cookies = req.cookie_header();
        let name = self.provider_at(provider).cookie;
        let Some((cookie, storage_key)) = self.opened_cookies.open(&cookies, name, keys) else {
            let presented = crate::session::cookie::parse_cookie_header(&cookies).any(|(n, _)| n == name);
            return Ok(Err(if presented { "session_cookie_invalid" } else { "session_missing" }.into()));
        };
        if let Some(why) = cookie.ended(now) {
            return Ok(Err(why.into()));
        }
        let Some(mut record) = self.sessions.load_at(ports, keys, storage_key.clone(), now).await? else {
            return Ok(Err("session_unknown".into()));
        };
        // The cookie's name is sealed into it, so this holds unless the table was edited
        // under a live session: then it is no session of this provider.
        if !self.record_is_from(&record, provider) {
            return Ok(Err("session_other_provider".into()));
        }
        let mut notes = Vec::new();
        if needs_refresh(&record, ports.now_millis()) {
            if record.refresh_token.is_none() {
                return Ok(Err("access_token_expired".into()));
            }
            let still_valid = record.access_expires_at.is_some_and(|at| now < at);
            match self.refresh_session(ports, &cookie.id, SessionRecord::clone(&record)).await {
                Ok(refreshed) => record = Rc::new(refreshed),
                // Logged out in another isolate or location: its object said so.
                Err(RefreshFailure::Ended) => {
                    self.sessions.forget(&storage_key);
                    return Ok(Err("session_ended".into()));
                }
                Err(RefreshFailure::Rejected(_)) => {
                    self.sessions.end(ports, &cookie.id, self.config.session.ttl_secs).await?;
                    return Ok(Err("refresh_token_rejected".into()));
                }
                // The provider answered for someone, or something, else: sign in again.
                Err(RefreshFailure::IdTokenInvalid(check)) => {
                    self.sessions.end(ports, &cookie.id, self.config.session.ttl_secs).await?;
                    return Ok(Err(NoSession { why: "refresh_id_token_invalid", note: Some(check) }));
                }
                // Still valid for a moment: serve with it rather than fail.
                Err(RefreshFailure::Unavailable { reason, .. }) if still_valid => {
                    notes = vec!["refresh_deferred", reason];
                }
                Err(RefreshFailure::Unavailable { reason, detail }) => {
                    return Err(GatewayError::RefreshUnavailable(format!("{reason}: {detail}")));
                }
            }
        }
        let touched = cookie.touched(now, self.config.session.idle_secs);
        let ends_at = touched.as_ref().unwrap_or(&cookie).idle_until.min(cookie.expires_at).min(record.expires_at);
        let set_cookie = touched.map(|c| c.to_set_cookie_named(name, keys, ports, now));
        Ok(Ok(Live { record, storage_key, set_cookie, notes, ends_at }))
    }

    pub(super) async fn session_route(&self, ports: &P, req: &IncomingRequest, route: &Route) -> Decision {
        let provider = route.providers.session;
        let gone = match self.current_session(ports, req, provider).await {
            Err(err) => return self.refuse(req, err, &[]),
            Ok(Ok(Live { record, storage_key, set_cookie, notes, ends_at })) => {
                let identity = &record.identity;
                let owner = super::groups_overage::GroupsOwner {
                    tid: identity.tenant.as_deref(),
                    oid: identity.oid.as_deref(),
                    caller: crate::entra::CallerKind::User,
                    session: Some(&storage_key),
                    until: record.expires_at,
                    provider,
                };
                let resolved = match self.overage_groups(ports, route, &identity.claims(), owner).await {
                    Ok(resolved) => resolved,
                    Err(err) => return self.refuse(req, err, &[]),
                };
                let claims = super::groups_overage::with_groups(identity.claims(), resolved.as_deref());
                if let Err(unmet) = route.requirements.check(&claims) {
                    return self.refuse(req, GatewayError::InsufficientScope(unmet), &[]);
                }
                if let Some(step_up) = self.step_up_session(ports, req, route, &record.identity).await {
                    return step_up;
                }
                let email = crate::policy::forwardable_email(
                    record.identity.email.as_deref(),
                    record.identity.email_verified,
                    self.config.email_verified_required,
                );
                let id_token_claims =
                    route.needs_claims().then(|| self.sessions.id_token_claims(&storage_key, &record)).flatten();
                let identity = ForwardIdentity {
                    subject: &record.identity.sub,
                    email,
                    object_id: record.identity.oid.as_deref(),
                    tenant: record.identity.tenant.as_deref(),
                    provider: self.forwarded_provider(provider),
                    claims: id_token_claims.as_deref(),
                };
                let credential = Credential::Authenticated { access_token: &record.access_token, identity };
                let caller = super::origin_token::Caller {
                    credential,
                    token: Some(&record.access_token),
                    who: Some(super::assertion::AssertionSubject {
                        idp: self.forwarded_provider(provider),
                        ..super::assertion::AssertionSubject::from_identity(&record.identity)
                    }),
                    scope: super::origin_token::CallerScope {
                        sub: Some(&record.identity.sub),
                        provider: self.forwarded_provider(provider),
                        client_id: None,
                        session_key: Some(&storage_key),
                        ends_at: Some(ends_at),
                    },
                    provider,
                };
                let mut decision = self.forward_as(ports, req, route, caller, "forwarded").await;
                decision.log.sub = Some(record.identity.sub.clone());
                decision.log.notes.extend(notes);
                if let (super::Outcome::Forward(plan), Some(cookie)) = (&mut decision.outcome, set_cookie) {
                    plan.set_cookies.push(cookie);
                }
                return decision;
            }
            Ok(Err(gone)) => gone,
        };
        let NoSession { why, note } = gone;
        // A cookie that no longer leads anywhere is cleared so the browser stops sending it.
        let clear = match why {
            "session_missing" => Vec::new(),
            _ => vec![clear_cookie(self.provider_at(provider).cookie, "/")],
        };
        let is_api = self.config.api_path_prefixes.iter().any(|p| crate::policy::matches_ignoring_case(p, &req.path));
        let mut decision = if is_api || !req.is_navigation() {
            self.refuse(req, GatewayError::Unauthenticated(why), &clear)
        } else {
            match self.start_login(ports, provider, &req.path_and_query(), clear).await {
                Ok(response) => {
                    let mut entry = log(req, "login_redirect", Some(302));
                    entry.detail = Some(why.to_owned());
                    super::respond_with(response, entry)
                }
                Err(err) => self.refuse(req, err, &[]),
            }
        };
        decision.log.notes.extend(note);
        decision
    }
}
