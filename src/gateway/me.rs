//! `GET /auth/me`: who is signed in, for single-page apps that need to show it (and when the
//! session and its access token expire), without ever handing the browser a token unless the
//! deployment opts in (`AUTH_ME_ACCESS_TOKEN`).

use super::request::IncomingRequest;
use super::respond::json;
use super::session::Live;
use super::{Decision, Gateway, log, respond_with};
use crate::error::GatewayError;
use crate::policy::forwardable_email;
use crate::ports::Ports;
use serde_json::{Value, json};

impl<P: Ports> Gateway<P> {
    pub(super) async fn me(&self, ports: &P, req: &IncomingRequest) -> Decision {
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return self.refuse(req, GatewayError::InvalidRequest("method_not_allowed"), &[]);
        }
        let provider = match self.me_provider(req) {
            Ok(provider) => provider,
            Err(err) => return self.refuse(req, err, &[]),
        };
        let Live { record, set_cookie, notes, .. } = match self.current_session(ports, req, provider).await {
            Ok(Ok(live)) => live,
            // Always JSON with a challenge, never a redirect: the caller is a script.
            Ok(Err(gone)) => {
                let mut decision = self.refuse(req, GatewayError::Unauthenticated(gone.why), &[]);
                decision.log.notes.extend(gone.note);
                return decision;
            }
            Err(err) => return self.refuse(req, err, &[]),
        };
        let identity = &record.identity;
        let email =
            forwardable_email(identity.email.as_deref(), identity.email_verified, self.config.email_verified_required);
        let mut body = json!({
            "sub": identity.sub,
            "name": identity.name,
            "email": email,
            "roles": identity.roles,
            "groups": identity.groups,
            "tenant": identity.tenant,
            "scopes": identity.scopes,
            "provider": self.provider_at(provider).config.issuer,
            "provider_name": self.provider_at(provider).config.name,
            "session_expires_at": record.expires_at,
            "access_token_expires_at": record.access_expires_at,
        });
        if self.config.me_access_token
            && let Value::Object(fields) = &mut body
        {
            fields.insert("access_token".into(), Value::String(record.access_token.clone()));
        }
        let mut response = json(200, &body);
        if let Some(cookie) = set_cookie.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            response.headers_mut().append(http::header::SET_COOKIE, cookie);
        }
        let mut entry = log(req, "me", Some(200));
        entry.sub = Some(identity.sub.clone());
        entry.notes = notes;
        respond_with(response, entry)
    }

    /// Whose session `/auth/me` describes: `?provider=<name>`, else the first provider (the
    /// default one first) whose session cookie the request carries.
    fn me_provider(&self, req: &IncomingRequest) -> Result<usize, GatewayError> {
        let query = req.query.as_deref().unwrap_or_default();
        if let Some((_, name)) = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "provider") {
            return self.config.provider_index(&name).ok_or(GatewayError::InvalidRequest("provider_unknown"));
        }
        let cookies = req.cookie_header();
        let held: Vec<&str> = crate::session::cookie::parse_cookie_header(&cookies).map(|(name, _)| name).collect();
        Ok((0..self.provider_count()).find(|i| held.contains(&self.provider_at(*i).cookie)).unwrap_or(0))
    }
}
