//! Forwarding with what the route's `origin_token` says the origin receives in
//! `Authorization`: the caller's own token, the gateway's app token, an on-behalf-of token, or
//! nothing.

use super::assertion::AssertionSubject;
use super::request::IncomingRequest;
use super::{Decision, Gateway};
use crate::error::GatewayError;
use crate::policy::{OriginToken, Route};
use crate::ports::Ports;
use crate::proxy::{Credential, ForwardIdentity};

fn copy<'a>(i: &ForwardIdentity<'a>) -> ForwardIdentity<'a> {
    ForwardIdentity { claims: i.claims, ..*i }
}

/// The identity a caller's credential vouches for, if any.
fn identity<'a>(credential: &Credential<'a>) -> Option<ForwardIdentity<'a>> {
    match credential {
        Credential::Authenticated { identity, .. } | Credential::Presented { identity } => Some(copy(identity)),
        Credential::Replaced { identity, .. } => identity.as_ref().map(copy),
        Credential::Anonymous => None,
    }
}

/// Who is calling, as the forwarding step needs it.
pub(super) struct Caller<'a> {
    /// What the caller's own credential sends.
    pub credential: Credential<'a>,
    /// The caller's access token, for on-behalf-of exchanges.
    pub token: Option<&'a str>,
    /// What a signed assertion says about the caller.
    pub who: Option<AssertionSubject<'a>>,
    /// What route limits and WebSocket watches count and close by.
    pub scope: CallerScope<'a>,
    /// The provider that vouched for the caller (its session's, or its token's issuer): an
    /// on-behalf-of exchange goes there, never to another provider.
    pub provider: usize,
}

/// Who the caller is for a route's `rate_limit`, and when their authentication ends for a
/// proxied WebSocket.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct CallerScope<'a> {
    pub sub: Option<&'a str>,
    /// The provider's name, with several providers: `sub` is unique per issuer only.
    pub provider: Option<&'a str>,
    /// The token's client application (`client_id`, `azp` or `appid`).
    pub client_id: Option<&'a str>,
    /// The session's storage key, for a session caller.
    pub session_key: Option<&'a str>,
    /// When the caller's authentication ends (seconds): the session's absolute or idle
    /// deadline, or the token's `exp`.
    pub ends_at: Option<u64>,
}

impl Caller<'_> {
    /// A public route's caller: nobody.
    pub fn anonymous() -> Self {
        Self { credential: Credential::Anonymous, token: None, who: None, scope: CallerScope::default(), provider: 0 }
    }
}

impl<P: Ports> Gateway<P> {
    /// Forward an authenticated (or public) request: the caller's own credential, unless the
    /// route replaces its token, plus a signed assertion about the caller if the route wants one.
    pub(super) async fn forward_as(
        &self,
        ports: &P,
        req: &IncomingRequest,
        route: &Route,
        caller: Caller<'_>,
        reason: &'static str,
    ) -> Decision {
        let decision = self.forward_with_token(ports, req, route, &caller, reason).await;
        self.add_assertion(ports, req, route, caller.who.as_ref(), decision).await
    }

    async fn forward_with_token(
        &self,
        ports: &P,
        req: &IncomingRequest,
        route: &Route,
        caller: &Caller<'_>,
        reason: &'static str,
    ) -> Decision {
        let identity = identity(&caller.credential);
        let scope = &caller.scope;
        let obtained = match (route.origin_token, route.token_target.as_ref(), caller.token) {
            // The gateway's own token at the route's provider.
            (OriginToken::App, Some(target), _) => self.app_token(ports, route.providers.session, target).await,
            (OriginToken::OnBehalfOf, Some(target), Some(token)) => {
                self.on_behalf_of_token(ports, caller.provider, token, target).await
            }
            (OriginToken::OnBehalfOf, _, _) => {
                return self.refuse(req, GatewayError::Unauthenticated("caller_token_missing"), &[]);
            }
            (OriginToken::None, _, _) => {
                let credential = Credential::Replaced { access_token: None, identity };
                return self.forward(req, route, &credential, scope, reason);
            }
            _ => return self.forward(req, route, &caller.credential, scope, reason),
        };
        match obtained {
            Ok(token) => {
                let credential = Credential::Replaced { access_token: Some(&token), identity };
                self.forward(req, route, &credential, scope, reason)
            }
            Err(err) => self.refuse(req, GatewayError::OriginToken(err), &[]),
        }
    }
}
