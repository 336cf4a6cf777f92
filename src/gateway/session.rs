//! Session routes: a valid session is forwarded with its access token; anything else is sent to
//! sign in (browser navigations) or answered 401 (everything else).

use super::request::IncomingRequest;
use super::{Decision, Gateway, log};
use crate::error::GatewayError;
use crate::policy::Route;
use crate::ports::Ports;
use crate::proxy::{Credential, ForwardIdentity};
use crate::session::cookie::{SESSION_COOKIE, clear_cookie};
use crate::session::{SessionCookie, SessionRecord};

impl<P: Ports> Gateway<P> {
    /// The session behind the request's cookie, or why there is none.
    async fn current_session(
        &self,
        ports: &P,
        req: &IncomingRequest,
    ) -> Result<Result<SessionRecord, &'static str>, GatewayError> {
        let now = ports.now_secs();
        let cookies = req.cookie_header();
        let Some(cookie) = SessionCookie::from_cookie_header(&cookies, &self.config.session_keys, now) else {
            let presented = cookies.contains(SESSION_COOKIE);
            return Ok(Err(if presented { "session_cookie_invalid" } else { "session_missing" }));
        };
        let Some(record) = self.sessions.load(ports, &self.config.session_keys, &cookie.id, now).await? else {
            return Ok(Err("session_unknown"));
        };
        if record.access_expires_at.is_some_and(|at| at <= now) {
            return Ok(Err("access_token_expired"));
        }
        Ok(Ok(record))
    }

    pub(super) async fn session_route(&self, ports: &P, req: &IncomingRequest, route: &Route) -> Decision {
        let why = match self.current_session(ports, req).await {
            Err(err) => return self.refuse(req, err, &[]),
            Ok(Ok(record)) => {
                if let Err(unmet) = route.requirements.check(&record.identity.claims()) {
                    return self.refuse(req, GatewayError::InsufficientScope(unmet), &[]);
                }
                let identity =
                    ForwardIdentity { subject: &record.identity.sub, email: record.identity.email.as_deref() };
                let credential = Credential::Authenticated { access_token: &record.access_token, identity };
                let mut decision = self.forward(req, route, &credential, "forwarded");
                decision.log.sub = Some(record.identity.sub.clone());
                return decision;
            }
            Ok(Err(why)) => why,
        };
        // A cookie that no longer leads anywhere is cleared so the browser stops sending it.
        let clear = if why == "session_missing" { Vec::new() } else { vec![clear_cookie(SESSION_COOKIE, "/")] };
        let is_api = self.config.api_path_prefixes.iter().any(|p| req.path.starts_with(p.as_str()));
        if is_api || !req.is_navigation() {
            return self.refuse(req, GatewayError::Unauthenticated(why), &clear);
        }
        match self.start_login(ports, &req.path_and_query(), clear).await {
            Ok(response) => {
                let mut entry = log(req, "login_redirect", Some(302));
                entry.detail = Some(why.to_owned());
                super::respond_with(response, entry)
            }
            Err(err) => self.refuse(req, err, &[]),
        }
    }
}
