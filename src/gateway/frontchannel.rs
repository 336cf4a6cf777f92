//! OpenID Connect Front-Channel Logout 1.0: `GET /auth/frontchannel-logout?iss=…&sid=…`, which
//! the provider loads in an iframe when the user signs out there (register it as the client's
//! `frontchannel_logout_uri`; Entra: *Front-channel logout URL*).
//!
//! Sessions are found by the provider's `sid` through the index back-channel logout uses, never by
//! cookie: in a cross-site iframe the SameSite=Lax session cookie is not sent, and a request that
//! ended whatever session its cookie named would let any page sign its visitors out.
//!
//! `iss` must name this provider (§2: `sid` is unique only per issuer). Microsoft Entra ID sends
//! `sid` alone (a known deviation, e.g. nginx-openid-connect issue #117), so with the Entra preset
//! a request without `iss` is accepted; `iss`, when present, is checked there too. An `iss` adds
//! no secrecy (it is public): what ends a session is knowing its `sid`.

use super::request::IncomingRequest;
use super::respond::html_page;
use super::{Decision, Gateway, log, respond_with};
use crate::error::GatewayError;
use crate::ports::Ports;
use url::form_urlencoded;

impl<P: Ports> Gateway<P> {
    pub(super) async fn frontchannel_logout(&self, ports: &P, req: &IncomingRequest) -> Decision {
        match self.end_sessions_for_sid(ports, req).await {
            Ok(ended) => {
                let mut entry = log(req, "frontchannel_logout", Some(200));
                entry.detail = Some(format!("{ended} session(s) ended"));
                let page = html_page(200, "Signed out", "<p>You are signed out of this site.</p>", &[]);
                respond_with(page, entry)
            }
            Err(err) => self.refuse(req, err, &[]),
        }
    }

    /// End every session the provider's `sid` names, after checking the request names this
    /// provider; how many were ended.
    async fn end_sessions_for_sid(&self, ports: &P, req: &IncomingRequest) -> Result<usize, GatewayError> {
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return Err(GatewayError::InvalidRequest("frontchannel_logout_not_get"));
        }
        let query = req.query.as_deref().unwrap_or_default();
        let param =
            |name: &str| form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let sid = param("sid").filter(|sid| !sid.is_empty() && sid.len() <= 256);
        let Some(sid) = sid else {
            return Err(GatewayError::InvalidRequest("frontchannel_logout_sid_missing"));
        };
        // With several providers, `iss` says whose `sid` it is; without it, the default one's.
        let provider = match param("iss") {
            None if self.config.provider.entra.is_some() => &self.config.provider,
            None => return Err(GatewayError::InvalidRequest("frontchannel_logout_iss_missing")),
            Some(iss) => self.provider_naming(ports, &iss).await?,
        };
        let sessions = self.sessions.sessions_for(ports, &provider.issuer, Some(&sid), None).await?;
        for key in &sessions {
            self.sessions.end_key(ports, key, self.config.session.ttl_secs).await?;
        }
        Ok(sessions.len())
    }

    /// The provider `iss` names (see [`crate::entra::names_this_provider`]): its issuer exactly,
    /// or for an Entra preset one of its tenants' (known from its discovery document).
    async fn provider_naming(&self, ports: &P, iss: &str) -> Result<&crate::config::ProviderConfig, GatewayError> {
        let mut outage = None;
        for index in 0..self.provider_count() {
            let provider = self.provider_at(index);
            if provider.config.entra.is_none() {
                if provider.config.issuer == iss {
                    return Ok(provider.config);
                }
                continue;
            }
            match provider.state.metadata(ports, provider.config).await {
                Ok(metadata) if crate::entra::names_this_provider(provider.config, &metadata.issuer, iss) => {
                    return Ok(provider.config);
                }
                Ok(_) => {}
                Err(err) => outage = Some(err),
            }
        }
        match outage {
            Some(err) => Err(err.into()),
            None => Err(GatewayError::InvalidRequest("frontchannel_logout_issuer_mismatch")),
        }
    }
}
