//! Requests to the origin: a valid session is forwarded with its bearer token; anything else is
//! sent to sign in (browser navigations) or answered 401 (everything else).

use super::request::{ForwardPlan, IncomingRequest, Outcome};
use super::{Decision, Gateway, log};
use crate::error::GatewayError;
use crate::ports::Ports;
use crate::proxy::{ForwardIdentity, origin_headers};
use crate::session::cookie::{SESSION_COOKIE, clear_cookie};
use crate::session::{SessionCookie, SessionRecord};

impl<P: Ports> Gateway<P> {
    /// The session behind the request's cookie, if any, and whether a stale cookie should be
    /// cleared.
    async fn current_session(
        &self,
        ports: &P,
        req: &IncomingRequest,
    ) -> Result<Result<SessionRecord, &'static str>, GatewayError> {
        let now = ports.now_secs();
        let cookies = req.cookie_header();
        let Some(cookie) =
            SessionCookie::from_cookie_header(&cookies, &self.config.session_keys, now)
        else {
            let presented = cookies.contains(SESSION_COOKIE);
            return Ok(Err(if presented {
                "session_cookie_invalid"
            } else {
                "session_missing"
            }));
        };
        let Some(record) = self
            .sessions
            .load(ports, &self.config.session_keys, &cookie.id, now)
            .await?
        else {
            return Ok(Err("session_unknown"));
        };
        if record.access_expires_at.is_some_and(|at| at <= now) {
            return Ok(Err("access_token_expired"));
        }
        Ok(Ok(record))
    }

    fn forward_plan(&self, req: &IncomingRequest, record: &SessionRecord) -> ForwardPlan {
        let identity = ForwardIdentity {
            subject: &record.identity.sub,
            email: record.identity.email.as_deref(),
        };
        let headers = origin_headers(
            &req.headers,
            &record.access_token,
            &identity,
            &self.config.public_url,
        );
        let base = self.config.origin_url.as_str().trim_end_matches('/');
        ForwardPlan {
            url: format!("{base}{}", req.path_and_query()),
            headers,
        }
    }

    pub(super) async fn protected(&self, ports: &P, req: &IncomingRequest) -> Decision {
        let session = match self.current_session(ports, req).await {
            Ok(session) => session,
            Err(err) => return self.refuse(req, err, &[]),
        };
        let why = match session {
            Ok(record) => {
                let mut entry = log(req, "forwarded", None);
                entry.sub = Some(record.identity.sub.clone());
                return Decision {
                    outcome: Outcome::Forward(self.forward_plan(req, &record)),
                    log: entry,
                };
            }
            Err(why) => why,
        };
        // A cookie that no longer leads anywhere is cleared so the browser stops sending it.
        let clear = if why == "session_missing" {
            Vec::new()
        } else {
            vec![clear_cookie(SESSION_COOKIE, "/")]
        };
        let is_api = self
            .config
            .api_path_prefixes
            .iter()
            .any(|p| req.path.starts_with(p.as_str()));
        if is_api || !req.is_navigation() {
            return self.refuse(req, GatewayError::Unauthenticated(why), &clear);
        }
        match self.start_login(ports, &req.path_and_query(), clear).await {
            Ok(response) => {
                let mut entry = log(req, "login_redirect", Some(302));
                entry.detail = Some(why.to_owned());
                Decision {
                    outcome: Outcome::Respond(response),
                    log: entry,
                }
            }
            Err(err) => self.refuse(req, err, &[]),
        }
    }
}
