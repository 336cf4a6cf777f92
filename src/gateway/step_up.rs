//! Step-up on session routes: a session whose sign-in is too weak or too old for the route
//! is sent back to the provider asking for exactly what the route needs (browsers), or told
//! what to obtain with an RFC 9470 challenge (API clients).

use super::login::AuthRequest;
use super::request::IncomingRequest;
use super::{Decision, Gateway, log, respond_with};
use crate::error::GatewayError;
use crate::policy::{Route, StepUpUnmet};
use crate::ports::Ports;
use crate::session::Identity;

impl<P: Ports> Gateway<P> {
    /// `None` when the session's authentication meets the route's step-up; otherwise the answer.
    pub(super) async fn step_up_session(
        &self,
        ports: &P,
        req: &IncomingRequest,
        route: &Route,
        identity: &Identity,
    ) -> Option<Decision> {
        let now = ports.now_secs();
        let skew = self.provider_at(route.providers.session).config.clock_skew_secs;
        let unmet = route.step_up.check(identity.acr.as_deref(), identity.auth_time, now, skew).err()?;
        if !req.is_navigation() {
            return Some(self.refuse(req, GatewayError::StepUpRequired(route.step_up.clone(), unmet), &[]));
        }
        // Not every provider honours max_age; prompt=login makes the re-authentication explicit.
        let hints = match unmet {
            StepUpUnmet::TooOld => vec![("prompt", "login".to_owned())],
            StepUpUnmet::Acr => Vec::new(),
        };
        let request = AuthRequest { step_up: route.step_up.clone(), hints, provider: route.providers.session };
        Some(match self.start_login_with(ports, &req.path_and_query(), Vec::new(), request).await {
            Ok(response) => {
                let mut entry = log(req, "step_up_redirect", Some(302));
                entry.detail = Some(unmet.reason().to_owned());
                entry.sub = Some(identity.sub.clone());
                respond_with(response, entry)
            }
            Err(err) => self.refuse(req, err, &[]),
        })
    }
}
