//! Signing out: `GET /auth/logout` asks for confirmation, `POST /auth/logout` ends the session.
//!
//! The POST is CSRF-safe twice over: the session cookie is SameSite=Lax (not sent on
//! cross-site POSTs), and a present `Origin` must be the gateway's own.

use super::request::IncomingRequest;
use super::respond::html_page;
use super::{Decision, Gateway, log, respond_with};
use crate::error::GatewayError;
use crate::ports::Ports;
use crate::session::SessionCookie;
use crate::session::cookie::{SESSION_COOKIE, clear_cookie};
use http::Method;

impl<P: Ports> Gateway<P> {
    pub(super) async fn logout(&self, ports: &P, req: &IncomingRequest) -> Decision {
        if req.method != Method::POST {
            let form = format!(
                "<form method=\"post\" action=\"{}\"><button type=\"submit\">Sign out</button></form>",
                super::paths::LOGOUT
            );
            return respond_with(html_page(200, "Sign out?", &form, &[]), log(req, "logout_confirm", Some(200)));
        }
        if let Some(origin) = req.header("origin").filter(|o| *o != self.config.public_origin()) {
            return self.refuse(req, GatewayError::CrossOrigin(origin.to_owned()), &[]);
        }
        let now = ports.now_secs();
        if let Some(cookie) = SessionCookie::from_cookie_header(&req.cookie_header(), &self.config.session_keys, now)
            && let Err(err) = self.sessions.delete(ports, &cookie.id).await
        {
            return self.refuse(req, GatewayError::Store(err), &[]);
        }
        let page = html_page(
            200,
            "Signed out",
            "<p>You are signed out of this site.</p><p><a href=\"/\">Sign in again</a></p>",
            &[clear_cookie(SESSION_COOKIE, "/")],
        );
        respond_with(page, log(req, "signed_out", Some(200)))
    }
}
