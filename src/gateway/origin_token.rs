//! Forwarding with what the route's `origin_token` says the origin receives in
//! `Authorization`: the caller's own token, the gateway's app token, or nothing.

use super::assertion::AssertionSubject;
use super::request::IncomingRequest;
use super::{Decision, Gateway};
use crate::error::GatewayError;
use crate::policy::{OriginToken, Route};
use crate::ports::Ports;
use crate::proxy::{Credential, ForwardIdentity};

/// The identity a caller's credential vouches for, if any.
fn identity<'a>(credential: &Credential<'a>) -> Option<ForwardIdentity<'a>> {
    match credential {
        Credential::Authenticated { identity, .. } | Credential::Presented { identity } => {
            Some(ForwardIdentity { subject: identity.subject, email: identity.email })
        }
        Credential::Replaced { identity, .. } => {
            identity.as_ref().map(|i| ForwardIdentity { subject: i.subject, email: i.email })
        }
        Credential::Anonymous => None,
    }
}

impl<P: Ports> Gateway<P> {
    /// Forward an authenticated (or public) request: `caller` is what the caller's own
    /// credential would send; the route may replace its token and add a signed assertion about
    /// `who`.
    pub(super) async fn forward_as(
        &self,
        ports: &P,
        req: &IncomingRequest,
        route: &Route,
        caller: Credential<'_>,
        who: Option<&AssertionSubject<'_>>,
        reason: &'static str,
    ) -> Decision {
        let decision = self.forward_with_token(ports, req, route, caller, reason).await;
        self.add_assertion(ports, req, route, who, decision).await
    }

    async fn forward_with_token(
        &self,
        ports: &P,
        req: &IncomingRequest,
        route: &Route,
        caller: Credential<'_>,
        reason: &'static str,
    ) -> Decision {
        let identity = identity(&caller);
        match (route.origin_token, route.token_target.as_ref()) {
            (OriginToken::None, _) => {
                self.forward(req, route, &Credential::Replaced { access_token: None, identity }, reason)
            }
            (OriginToken::App, Some(target)) => match self.app_token(ports, target).await {
                Ok(token) => {
                    let credential = Credential::Replaced { access_token: Some(&token), identity };
                    self.forward(req, route, &credential, reason)
                }
                Err(err) => self.refuse(req, GatewayError::OriginToken(err), &[]),
            },
            _ => self.forward(req, route, &caller, reason),
        }
    }
}
