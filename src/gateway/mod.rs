//! The request pipeline: route → authenticate → forward, generic over the [`Ports`].
//!
//! One `Gateway` lives per isolate (built from the validated config on the first request) and
//! keeps the provider metadata, signing keys and warm sessions in memory.

mod app_token;
mod assertion;
mod bearer;
mod callback;
mod client_auth;
mod consent;
mod dpop;
pub mod entry;
mod frontchannel;
mod groups_overage;
pub mod headers;
mod identity_headers;
mod login;
mod logout;
mod me;
mod on_behalf_of;
mod origin_token;
pub mod paths;
mod providers;
mod rate_limit;
mod refresh;
mod request;
mod respond;
mod session;
mod step_up;
mod websocket;

#[cfg(test)]
pub(crate) mod tests;

pub use consent::CONSENT_ERRORS;
pub use headers::{DECISION_HEADERS, RequestHeaders};
pub use login::safe_return_path;
pub use rate_limit::{Counted, RATE_LIMIT_BINDING, RateLimitCheck, rate_limited_decision, rate_limited_endpoint};
pub use request::{
    Decision, DecisionLog, ForwardPlan, IncomingRequest, MAX_FORM_BYTES, MAX_HEADER_BYTES, Outcome, Refusal,
};
pub use websocket::{CLOSE_SESSION_ENDED, SocketPlan, SocketWatch};

use crate::config::{Config, ConfigErrors};
use crate::error::GatewayError;
use crate::jwt::{JwksCache, JwksCachePolicy};
use crate::oidc::ProviderState;
use crate::policy::{AuthMode, Origin, Route, normalise_path};
use crate::ports::Ports;
use crate::proxy::{Credential, origin_headers};
use crate::session::cleanup_cookies;
use crate::store::SessionStore;
use respond::{error_response, json};

/// The gateway for one isolate.
pub struct Gateway<P: Ports> {
    config: Config,
    provider: ProviderState<P::Key>,
    sessions: SessionStore,
    refreshing: refresh::Refreshing,
    /// Claim rules for bearer tokens, derived once per discovery document (Entra's issuers
    /// depend on the tenant discovery names).
    bearer_rules: bearer::BearerRules,
    /// DPoP proofs already used in this isolate (RFC 9449 §11.1).
    dpop_replay: std::cell::RefCell<crate::dpop::ReplayGuard>,
    /// Proof keys already imported (a client's later proofs cost no `importKey`).
    dpop_keys: crate::dpop::ProofKeys<P::Key>,
    /// Forwarded requests seen by this isolate, for log sampling.
    forwarded: std::cell::Cell<u64>,
    /// Bearer tokens verified in full, so a repeated token skips parsing and the signature.
    verified_tokens: crate::jwt::VerifiedTokenCache,
    /// The `private_key_jwt` signing key, imported on first use.
    client_key: crate::jwt::SigningKeySlot<P::SigningKey>,
    /// Client-credentials tokens for `origin_token: app` routes.
    app_tokens: app_token::AppTokens,
    /// The user-assertion signing key, imported on first use.
    assertion_key: crate::jwt::SigningKeySlot<P::SigningKey>,
    /// Exchanged tokens for `origin_token: on_behalf_of` routes.
    on_behalf_of: on_behalf_of::OnBehalfOfTokens,
    /// Entra group memberships read from Microsoft Graph (group overage).
    overage_groups: groups_overage::OverageGroups,
    /// The state of every provider but the default one (whose state is in the fields above),
    /// by index into the provider table less one.
    more_providers: Vec<providers::ProviderSlot<P>>,
    /// Each provider's session cookie name, by provider index.
    session_cookies: Vec<String>,
    /// Session cookie values already opened (a warm session skips AES-GCM).
    opened_cookies: crate::session::OpenedCookies,
}

fn log(req: &IncomingRequest, reason: &'static str, status: Option<u16>) -> DecisionLog {
    DecisionLog {
        event: "decision",
        reason,
        status,
        method: req.method.to_string(),
        path: req.path.chars().take(256).collect(),
        sub: None,
        detail: None,
        notes: Vec::new(),
    }
}

fn respond_with(response: http::Response<Vec<u8>>, log: DecisionLog) -> Decision {
    Decision { outcome: Outcome::Respond(response), log, quiet: false }
}

/// The answer to every request while the settings are invalid: a 500 page naming each bad
/// setting (the same text goes to the log), never a panic.
pub fn config_error_decision(errors: &ConfigErrors, req: &IncomingRequest) -> Decision {
    let err = GatewayError::Config(errors.clone());
    let mut entry = log(req, err.reason(), Some(500));
    entry.detail = Some(errors.to_string());
    respond_with(error_response(&err, req, "edgeguard", &[]), entry)
}

/// The answer when the origin cannot be reached (the edge performs the origin fetch).
pub fn origin_failure_decision(req: &IncomingRequest, detail: String) -> Refusal {
    refusal(GatewayError::OriginUnreachable(detail), req)
}

/// `err`'s answer, and its log line with the error as detail.
fn refusal(err: GatewayError, req: &IncomingRequest) -> Refusal {
    let mut entry = log(req, err.reason(), Some(err.status()));
    entry.detail = Some(err.to_string());
    Refusal { response: error_response(&err, req, "edgeguard", &[]), log: entry }
}

impl<P: Ports> Gateway<P> {
    pub fn new(config: Config) -> Self {
        let policy = JwksCachePolicy {
            unknown_kid_cooldown_secs: config.api.jwks_refetch_cooldown_secs,
            ..JwksCachePolicy::default()
        };
        let sessions = SessionStore::with_revalidation(config.session.revalidate_secs);
        let more_providers = config.providers.iter().map(|_| providers::ProviderSlot::new(policy.clone())).collect();
        let session_cookies = Self::session_cookie_names(&config);
        Self {
            bearer_rules: bearer::BearerRules::default(),
            more_providers,
            session_cookies,
            opened_cookies: crate::session::OpenedCookies::default(),
            config,
            provider: ProviderState::new(JwksCache::new(policy)),
            sessions,
            refreshing: refresh::Refreshing::default(),
            dpop_replay: Default::default(),
            dpop_keys: Default::default(),
            forwarded: std::cell::Cell::new(0),
            verified_tokens: crate::jwt::VerifiedTokenCache::default(),
            client_key: crate::jwt::SigningKeySlot::default(),
            app_tokens: app_token::AppTokens::default(),
            assertion_key: crate::jwt::SigningKeySlot::default(),
            on_behalf_of: on_behalf_of::OnBehalfOfTokens::default(),
            overage_groups: groups_overage::OverageGroups::default(),
        }
    }

    /// The storage keys of the sessions this isolate ended, or found ended, since the last
    /// call: the edge closes their proxied WebSockets.
    pub fn take_ended_sessions(&self) -> Vec<String> {
        self.sessions.take_just_ended()
    }

    fn realm(&self) -> String {
        self.config.public_url.host_str().unwrap_or("edgeguard").to_owned()
    }

    fn refuse(&self, req: &IncomingRequest, err: GatewayError, set_cookies: &[String]) -> Decision {
        let mut entry = log(req, err.reason(), Some(err.status()));
        entry.detail = Some(err.to_string());
        respond_with(error_response(&err, req, &self.realm(), set_cookies), entry)
    }

    /// Decide what to do with one request. Never panics; every refusal is a [`GatewayError`].
    pub async fn handle(&self, ports: &P, req: &IncomingRequest) -> Decision {
        let size = req.header_bytes();
        if size > MAX_HEADER_BYTES {
            return self.refuse(req, GatewayError::HeadersTooLarge(size), &[]);
        }
        if req.form_too_large() {
            return self.refuse(req, GatewayError::BodyTooLarge(MAX_FORM_BYTES), &[]);
        }
        // Everything below sees only the canonical path, and the origin receives exactly it.
        let canonical = match normalise_path(&req.path) {
            Ok(path) => path,
            Err(why) => return self.refuse(req, GatewayError::InvalidRequest(why.reason()), &[]),
        };
        if canonical != req.path {
            let req = IncomingRequest { path: canonical, ..req.clone() };
            return self.dispatch(ports, &req).await;
        }
        self.dispatch(ports, req).await
    }

    /// Send a request with a canonical path to the gateway endpoint or route it names.
    async fn dispatch(&self, ports: &P, req: &IncomingRequest) -> Decision {
        match req.path.as_str() {
            paths::HEALTH => {
                respond_with(json(200, &serde_json::json!({ "status": "ok" })), log(req, "health", Some(200)))
            }
            paths::CALLBACK => self.callback(ports, req).await,
            paths::ADMIN_CONSENT => self.admin_consent(ports, req).await,
            paths::LOGIN => {
                let query = req.query.as_deref().unwrap_or_default();
                let rd = login::login_return_to(query, &self.config.public_url);
                let mut request = login::AuthRequest::from_login_query(query);
                request.provider = match self.login_provider(query, &rd) {
                    Ok(provider) => provider,
                    Err(err) => return self.refuse(req, err, &[]),
                };
                match self.start_login_with(ports, &rd, Vec::new(), request).await {
                    Ok(response) => respond_with(response, log(req, "login_redirect", Some(302))),
                    Err(err) => self.refuse(req, err, &[]),
                }
            }
            paths::ME => self.me(ports, req).await,
            paths::LOGOUT => self.logout(ports, req).await,
            paths::BACKCHANNEL_LOGOUT => self.backchannel_logout(ports, req).await,
            paths::FRONTCHANNEL_LOGOUT => self.frontchannel_logout(ports, req).await,
            paths::ASSERTION_JWKS if self.config.assertion.is_some() => self.assertion_jwks(req),
            _ => self.route(ports, req).await,
        }
    }

    /// Pick the route for the path and authenticate as it says.
    async fn route(&self, ports: &P, req: &IncomingRequest) -> Decision {
        let route = match self.config.routes.find(&req.path) {
            Ok(Some(route)) => route,
            Ok(None) => return self.refuse(req, GatewayError::RouteNotFound, &[]),
            Err(why) => return self.refuse(req, GatewayError::InvalidRequest(why.reason()), &[]),
        };
        if route.cors_preflight && req.is_cors_preflight() {
            let anonymous = origin_token::CallerScope::default();
            return self.forward(req, route, &Credential::Anonymous, &anonymous, "cors_preflight_forwarded");
        }
        match route.auth {
            AuthMode::Public => {
                self.forward_as(ports, req, route, origin_token::Caller::anonymous(), "public_forwarded").await
            }
            AuthMode::Session => self.session_route(ports, req, route).await,
            AuthMode::Bearer => self.bearer_route(ports, req, route).await,
            AuthMode::SessionOrBearer if bearer::presents_bearer(req) => self.bearer_route(ports, req, route).await,
            AuthMode::SessionOrBearer => self.session_route(ports, req, route).await,
        }
    }

    /// Send the request on to the route's origin with what `credential` vouches for.
    fn forward(
        &self,
        req: &IncomingRequest,
        route: &Route,
        credential: &Credential<'_>,
        caller: &origin_token::CallerScope<'_>,
        reason: &'static str,
    ) -> Decision {
        let forwarding = &self.config.forwarding;
        let mut headers = origin_headers(&req.headers, credential, &self.config.public_url, &forwarding.strip_headers);
        if let Some(assertion) = &route.assertion {
            assertion::strip_client_header(&mut headers, &req.headers, &assertion.header);
        }
        if websocket::passes_upgrade(route, req) {
            websocket::keep_handshake(&mut headers);
        }
        let notes = self.add_identity_headers(&mut headers, req, route, credential);
        let (url, binding) = match &route.origin {
            Origin::Http(base) => (format!("{}{}", base.as_str().trim_end_matches('/'), req.path_and_query()), None),
            Origin::Binding(name) => {
                (format!("{}{}", self.config.public_origin(), req.path_and_query()), Some(name.clone()))
            }
        };
        let plan = ForwardPlan {
            url,
            binding,
            headers,
            set_cookies: Vec::new(),
            answer_headers: Vec::new(),
            socket: websocket::socket_plan(route, req, caller, self.config.session.revalidate_secs),
            rate_limit: rate_limit::route_limit(route, caller),
        };
        let mut entry = log(req, reason, None);
        entry.notes = notes;
        // A header left out is worth a line even when forwarded requests are not logged.
        let quiet = !self.log_this_forward() && entry.notes.is_empty();
        Decision { outcome: Outcome::Forward(plan), log: entry, quiet }
    }

    /// Whether this forwarded request gets its log line: `LOG_FORWARDED`, then one in every
    /// `LOG_FORWARDED_SAMPLE` per isolate (a counter, so the rate is exact, not random).
    fn log_this_forward(&self) -> bool {
        let seen = self.forwarded.get();
        self.forwarded.set(seen.wrapping_add(1));
        self.config.log_forwarded && seen.is_multiple_of(self.config.forwarding.log_sample.max(1))
    }

    async fn callback(&self, ports: &P, req: &IncomingRequest) -> Decision {
        if let Some(retry) = self.retry_with_consent(ports, req).await {
            return retry;
        }
        match self.handle_callback(ports, req).await {
            Ok(signed_in) => {
                let mut entry = log(req, "signed_in", Some(302));
                entry.sub = Some(signed_in.sub);
                entry.notes = signed_in.notes;
                respond_with(signed_in.response, entry)
            }
            Err(err) => {
                // Whatever went wrong, this flow is over: clear its transaction cookie so a
                // retry starts clean instead of looping on a stale one.
                let state = req
                    .query
                    .as_deref()
                    .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "state"))
                    .map(|(_, v)| v.into_owned());
                let cleared = cleanup_cookies(
                    &req.cookie_header(),
                    state.as_deref(),
                    &self.config.session.keys,
                    ports.now_secs(),
                );
                self.refuse(req, err, &cleared)
            }
        }
    }
}
