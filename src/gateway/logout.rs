//! Signing out: `GET /auth/logout` asks for confirmation, `POST /auth/logout` ends the session
//! here and at the provider; `POST /auth/backchannel-logout` lets the provider end sessions.
//!
//! The POST is CSRF-safe twice over: the session cookie is SameSite=Lax (not sent on
//! cross-site POSTs), and a present `Origin` must be the gateway's own.

use super::request::IncomingRequest;
use super::respond::{html_page, json, redirect};
use super::{Decision, Gateway, log, respond_with};
use crate::error::GatewayError;
use crate::jwt::{DEFAULT_MAX_TOKEN_LEN, UnverifiedJwt};
use crate::oidc::{build_end_session_url, build_revocation_request, validate_logout_token};
use crate::ports::Ports;
use crate::session::SessionCookie;
use crate::session::cookie::{SESSION_COOKIE, clear_cookie, parse_cookie_header};
use http::Method;
use url::form_urlencoded;

/// Whether a state-changing request comes from this site (or from no page at all), else what
/// it came from. Browsers send `Sec-Fetch-Site`, which decides: the `Origin` of a form POST
/// from a page with `Referrer-Policy: no-referrer` (every gateway page) is `null`, so `Origin`
/// alone would refuse the gateway's own sign-out button. `same-site` is refused too: a sibling
/// subdomain is exactly who must not sign users out. Without `Sec-Fetch-Site`, a present
/// `Origin` must be ours; clients that send neither are not browsers a page can drive.
fn from_this_site(req: &IncomingRequest, public_origin: &str) -> Result<(), String> {
    match req.header("sec-fetch-site") {
        Some(site) if site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none") => Ok(()),
        Some(site) => Err(format!("Sec-Fetch-Site {site}")),
        None => match req.header("origin") {
            Some(origin) if origin != public_origin => Err(origin.to_owned()),
            _ => Ok(()),
        },
    }
}

impl<P: Ports> Gateway<P> {
    pub(super) async fn logout(&self, ports: &P, req: &IncomingRequest) -> Decision {
        if req.method != Method::POST {
            let form = format!(
                "<form method=\"post\" action=\"{}\"><button type=\"submit\">Sign out</button></form>",
                super::paths::LOGOUT
            );
            return respond_with(html_page(200, "Sign out?", &form, &[]), log(req, "logout_confirm", Some(200)));
        }
        if let Err(origin) = from_this_site(req, &self.config.public_origin()) {
            return self.refuse(req, GatewayError::CrossOrigin(origin), &[]);
        }
        let keys = &self.config.session.keys;
        let cookies = req.cookie_header();
        let held: Vec<&str> = parse_cookie_header(&cookies).map(|(name, _)| name).collect();
        let mut notes = Vec::new();
        // The first session's provider also ends its own session (RP-initiated logout).
        let mut end_at: Option<(usize, String)> = None;
        let mut cleared = vec![clear_cookie(SESSION_COOKIE, "/")];
        // Every provider's session of this browser ends.
        for index in 0..self.provider_count() {
            let name = self.provider_at(index).cookie;
            if index > 0 && held.contains(&name) {
                cleared.push(clear_cookie(name, "/"));
            }
            let Some(cookie) = SessionCookie::from_cookie_header_named(&cookies, name, keys) else { continue };
            let record = self.sessions.load(ports, keys, &cookie.id, ports.now_secs()).await.ok().flatten();
            if let Err(err) = self.sessions.end(ports, &cookie.id, self.config.session.ttl_secs).await {
                return self.refuse(req, GatewayError::Store(err), &[]);
            }
            let Some(record) = record.filter(|r| self.record_is_from(r, index)) else { continue };
            if let Some(refresh_token) = &record.refresh_token {
                notes.push(self.revoke(ports, index, refresh_token).await);
            }
            end_at.get_or_insert((index, record.id_token.clone()));
        }
        if let (Some((index, id_token)), Some(after)) = (end_at, &self.config.session.post_logout_redirect_url) {
            let provider = self.provider_at(index);
            let end_session = provider.state.metadata(ports, provider.config).await.ok().and_then(|m| {
                let endpoint = m.end_session_endpoint.as_deref()?;
                build_end_session_url(endpoint, &id_token, after, &provider.config.client_id).ok()
            });
            if let Some(location) = end_session {
                let mut entry = log(req, "signed_out", Some(302));
                entry.notes = notes;
                return respond_with(redirect(&location, &cleared), entry);
            }
        }
        let page = html_page(
            200,
            "Signed out",
            "<p>You are signed out of this site.</p><p><a href=\"/\">Sign in again</a></p>",
            &cleared,
        );
        let mut entry = log(req, "signed_out", Some(200));
        entry.notes = notes;
        respond_with(page, entry)
    }

    /// Revoke a refresh token at the provider, best effort: the session is gone either way.
    async fn revoke(&self, ports: &P, provider: usize, refresh_token: &str) -> &'static str {
        let provider = self.provider_at(provider);
        let Ok(metadata) = provider.state.metadata(ports, provider.config).await else {
            return "revocation_skipped_provider_unavailable";
        };
        let Some(endpoint) = metadata.revocation_endpoint.as_deref() else {
            return "revocation_not_supported";
        };
        let Ok(auth) = self.client_authentication(ports, &provider, &metadata.token_endpoint).await else {
            return "revocation_failed";
        };
        let Ok(request) = build_revocation_request(endpoint, &auth, refresh_token) else {
            return "revocation_failed";
        };
        match ports.send(request).await {
            Ok(response) if response.status().is_success() => "refresh_token_revoked",
            _ => "revocation_failed",
        }
    }

    /// OpenID Connect Back-Channel Logout 1.0 §2.5–2.8: end every session the logout token
    /// names; 200 on success, 400 `invalid_request` for a token the gateway refuses.
    pub(super) async fn backchannel_logout(&self, ports: &P, req: &IncomingRequest) -> Decision {
        match self.end_sessions_for_logout_token(ports, req).await {
            Ok(ended) => {
                let mut entry = log(req, "backchannel_logout", Some(200));
                entry.detail = Some(format!("{ended} session(s) ended"));
                respond_with(json(200, &serde_json::json!({})), entry)
            }
            Err(err @ GatewayError::LogoutTokenRejected(_)) => {
                let mut entry = log(req, err.reason(), Some(400));
                entry.detail = Some(err.to_string());
                let body =
                    serde_json::json!({ "error": "invalid_request", "error_description": "invalid logout token" });
                respond_with(json(400, &body), entry)
            }
            Err(err) => self.refuse(req, err, &[]),
        }
    }

    async fn end_sessions_for_logout_token(&self, ports: &P, req: &IncomingRequest) -> Result<usize, GatewayError> {
        let reject = |why: &str| GatewayError::LogoutTokenRejected(why.to_owned());
        if req.method != Method::POST {
            return Err(reject("method_not_post"));
        }
        let body = req.form.as_deref().unwrap_or_default();
        let token = form_urlencoded::parse(body)
            .find(|(name, _)| name == "logout_token")
            .map(|(_, value)| value.into_owned())
            .ok_or_else(|| reject("logout_token_missing"))?;
        let provider = self.logout_token_provider(ports, &token).await?;
        let metadata = provider.state.metadata(ports, provider.config).await?;
        let logout =
            validate_logout_token(ports, &provider.state.keys, &metadata.jwks_uri, &token, provider.config).await?;
        let issuer = &provider.config.issuer;
        if !self.sessions.first_use_of_jti(ports, issuer, &logout.jti).await? {
            return Err(reject("jti_replayed"));
        }
        let sessions = self.sessions.sessions_for(ports, issuer, logout.sid.as_deref(), logout.sub.as_deref()).await?;
        for key in &sessions {
            self.sessions.end_key(ports, key, self.config.session.ttl_secs).await?;
        }
        Ok(sessions.len())
    }

    /// The provider a logout token comes from: the one its unverified `iss` names (then only
    /// that provider's keys and issuer check it). With one provider, that one.
    async fn logout_token_provider(
        &self,
        ports: &P,
        token: &str,
    ) -> Result<super::providers::Provider<'_, P>, GatewayError> {
        if self.provider_count() == 1 {
            return Ok(self.provider_at(0));
        }
        let jwt = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_LEN)
            .map_err(|_| GatewayError::LogoutTokenRejected("malformed".into()))?;
        let iss = jwt.unverified_claims().get("iss").and_then(|v| v.as_str()).unwrap_or_default();
        for index in 0..self.provider_count() {
            let provider = self.provider_at(index);
            if provider.config.issuer == iss {
                return Ok(provider);
            }
            // Entra presets: the tenant's issuer is the discovered one.
            if provider.config.entra.is_some()
                && provider.state.metadata(ports, provider.config).await.is_ok_and(|m| m.issuer == iss)
            {
                return Ok(provider);
            }
        }
        Err(GatewayError::LogoutTokenRejected("issuer_unknown".into()))
    }
}
