//! Consent: what happens when the provider says the user (or an administrator) has not agreed
//! to the permissions the gateway asks for.
//!
//! - At the callback, `consent_required` / `interaction_required` (OIDC Core §3.1.2.6; Entra's
//!   AADSTS65001) start the sign-in once more with `prompt=consent`, so the user sees the
//!   consent screen. The retried transaction remembers that it asked, so a second refusal ends
//!   at a page instead of looping.
//! - `/auth/admin-consent` sends an administrator to Entra's admin-consent endpoint
//!   (`/{tenant}/v2.0/adminconsent`; v1: the authorize endpoint with `prompt=admin_consent`)
//!   and shows what came back (`admin_consent=True` and `tenant`, or `error`). Its `state` is
//!   bound to the browser by a short cookie, so a forged answer cannot claim a consent.

use super::login::AuthRequest;
use super::request::IncomingRequest;
use super::respond::{escape_html, html_page, redirect};
use super::{Decision, Gateway, log, paths, respond_with};
use crate::encoding::ct_eq;
use crate::entra::{EntraConfig, EntraTenant, EntraVersion};
use crate::error::GatewayError;
use crate::oidc::{AuthorizationResponse, ProviderError};
use crate::ports::Ports;
use crate::session::cookie::{clear_cookie, parse_cookie_header, set_cookie};
use crate::session::{LoginTransaction, cleanup_cookies, random_token};
use url::Url;

/// The authorization errors that mean "ask for consent" (OIDC Core §3.1.2.6).
pub const CONSENT_ERRORS: [&str; 2] = ["consent_required", "interaction_required"];
/// `prompt` value of a sign-in retried for consent.
const PROMPT_CONSENT: &str = "consent";
/// Binds an admin-consent round trip to the browser that started it.
const ADMIN_CONSENT_COOKIE: &str = "__Secure-edgeguard-admin-consent";
const ADMIN_CONSENT_TTL_SECS: u64 = 600;

fn query_param(req: &IncomingRequest, name: &str) -> Option<String> {
    let query = req.query.as_deref()?;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

impl<P: Ports> Gateway<P> {
    /// At the callback: a consent error for a transaction that has not yet asked for consent
    /// becomes a new sign-in with `prompt=consent`. `None` for every other callback.
    pub(super) async fn retry_with_consent(&self, ports: &P, req: &IncomingRequest) -> Option<Decision> {
        let AuthorizationResponse::Error { error, state: Some(state), iss, .. } =
            AuthorizationResponse::from_query(req.query.as_deref().unwrap_or(""))
        else {
            return None;
        };
        if !CONSENT_ERRORS.contains(&error.as_str()) {
            return None;
        }
        let now = ports.now_secs();
        let keys = &self.config.session.keys;
        let cookies = req.cookie_header();
        // Only this browser's own transaction is retried (the callback refuses the others).
        let tx = LoginTransaction::find(&cookies, &state, keys, now).filter(|tx| tx.is_bound_to(&cookies))?;
        let provider = self.provider_named(&tx.provider)?;
        if iss.is_some_and(|iss| iss != self.provider_at(provider).config.issuer) {
            return None; // another provider's error (a mix-up): the callback refuses it
        }
        if tx.prompt.as_deref().is_some_and(|p| p.split(' ').any(|v| v == PROMPT_CONSENT)) {
            return None; // asked once already: the callback answers with a page
        }
        let set_cookies = cleanup_cookies(&cookies, Some(&state), keys, now);
        // The same sign-in again (including any step-up it asked for), now with the consent screen.
        let request = AuthRequest { hints: vec![("prompt", PROMPT_CONSENT.to_owned())], step_up: tx.step_up, provider };
        Some(match self.start_login_with(ports, &tx.return_to, set_cookies, request).await {
            Ok(response) => {
                let mut entry = log(req, "consent_retry", Some(302));
                entry.detail = Some(error);
                respond_with(response, entry)
            }
            Err(err) => self.refuse(req, err, &[]),
        })
    }

    /// The provider an admin consent is for: `?provider=<name>` (an Entra preset), else the
    /// first provider of the table with an Entra preset (the default one first). `None`: no
    /// such provider here.
    fn admin_consent_provider(&self, req: &IncomingRequest) -> Option<usize> {
        let is_entra = |index: &usize| self.provider_at(*index).config.entra.is_some();
        match query_param(req, "provider") {
            Some(name) => self.config.provider_index(&name).filter(is_entra),
            None => (0..self.provider_count()).find(is_entra),
        }
    }

    /// `/auth/admin-consent`: start an admin-consent round trip, or show how it ended.
    pub(super) async fn admin_consent(&self, ports: &P, req: &IncomingRequest) -> Decision {
        let answered = ["admin_consent", "error", "code"].iter().any(|p| query_param(req, p).is_some());
        if answered {
            return self.admin_consent_answer(req);
        }
        let Some(index) = self.admin_consent_provider(req) else {
            return self.refuse(req, GatewayError::RouteNotFound, &[]);
        };
        let provider = self.provider_at(index);
        let Some(entra) = &provider.config.entra else {
            return self.refuse(req, GatewayError::RouteNotFound, &[]);
        };
        if entra.tenant == EntraTenant::Consumers {
            let page = html_page(
                400,
                "Administrator consent",
                "<p>Personal Microsoft accounts have no administrator: each user consents when signing in.</p>",
                &[],
            );
            return respond_with(page, log(req, "admin_consent_not_applicable", Some(400)));
        }
        let state = random_token(ports);
        let url = match self.admin_consent_url(ports, &provider, entra, &state).await {
            Ok(url) => url,
            Err(err) => return self.refuse(req, err, &[]),
        };
        // The provider's index rides beside the state, for the answer page's tenant check.
        let value = format!("{state}.{index}");
        let cookie = set_cookie(ADMIN_CONSENT_COOKIE, &value, paths::ADMIN_CONSENT, ADMIN_CONSENT_TTL_SECS);
        respond_with(redirect(&url, &[cookie]), log(req, "admin_consent_redirect", Some(302)))
    }

    /// v2: `/{tenant}/v2.0/adminconsent` with the configured scopes (`common` is not allowed
    /// there: `organizations` asks the administrator which tenant). v1: the authorize endpoint
    /// with `prompt=admin_consent`.
    async fn admin_consent_url(
        &self,
        ports: &P,
        provider: &super::providers::Provider<'_, P>,
        entra: &EntraConfig,
        state: &str,
    ) -> Result<String, GatewayError> {
        let redirect_uri = format!("{}{}", self.config.public_origin(), paths::ADMIN_CONSENT);
        let client_id = &provider.config.client_id;
        let bad = |e: url::ParseError| {
            GatewayError::Provider(ProviderError::Discovery(crate::oidc::DiscoveryError::BadEndpoint {
                name: "authorization_endpoint",
                value: e.to_string(),
            }))
        };
        let mut url = match entra.version {
            EntraVersion::V2 => {
                let tenant = if entra.tenant == EntraTenant::Common { "organizations" } else { entra.tenant.segment() };
                Url::parse(&format!("{}/{tenant}/v2.0/adminconsent", entra.authority_host)).map_err(bad)?
            }
            EntraVersion::V1 => {
                let metadata = provider.state.metadata(ports, provider.config).await?;
                Url::parse(&metadata.authorization_endpoint).map_err(bad)?
            }
        };
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", client_id).append_pair("redirect_uri", &redirect_uri);
            query.append_pair("state", state);
            match entra.version {
                EntraVersion::V2 => {
                    let scopes: Vec<&str> =
                        provider.config.scopes.iter().map(String::as_str).filter(|s| *s != "offline_access").collect();
                    query.append_pair("scope", &scopes.join(" "));
                }
                EntraVersion::V1 => {
                    query.append_pair("response_type", "code").append_pair("prompt", "admin_consent");
                    if let Some(resource) = &provider.config.resource {
                        query.append_pair("resource", resource);
                    }
                }
            }
        }
        Ok(url.into())
    }

    /// The page after the administrator answered. Nothing changes at the gateway either way.
    fn admin_consent_answer(&self, req: &IncomingRequest) -> Decision {
        let clear = vec![clear_cookie(ADMIN_CONSENT_COOKIE, paths::ADMIN_CONSENT)];
        let cookies = req.cookie_header();
        let expected = parse_cookie_header(&cookies).find(|(n, _)| *n == ADMIN_CONSENT_COOKIE).map(|(_, v)| v);
        let (expected, index) = match expected.and_then(|v| v.rsplit_once('.')) {
            Some((state, index)) => (Some(state), index.parse::<usize>().ok()),
            None => (None, None),
        };
        let state = query_param(req, "state").unwrap_or_default();
        if !expected.is_some_and(|e| !e.is_empty() && ct_eq(e, &state)) {
            let page = html_page(
                400,
                "Administrator consent",
                "<p>This answer does not belong to a consent request from this browser. \
                 Start again at <a href=\"/auth/admin-consent\">/auth/admin-consent</a>.</p>",
                &clear,
            );
            return respond_with(page, log(req, "admin_consent_state_mismatch", Some(400)));
        }
        if let Some(error) = query_param(req, "error") {
            let shown: String = error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
            let body = format!(
                "<p>Consent was not granted ({}). Nobody in the organization can use the application's \
                 permissions until an administrator consents.</p><p><a href=\"/auth/admin-consent\">Try again</a></p>",
                escape_html(&shown)
            );
            let mut entry = log(req, "admin_consent_denied", Some(403));
            entry.detail = Some(shown);
            return respond_with(html_page(403, "Administrator consent", &body, &clear), entry);
        }
        let granted = query_param(req, "admin_consent").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || query_param(req, "code").is_some();
        if !granted {
            return self.refuse(req, GatewayError::MalformedCallback, &clear);
        }
        let tenant = query_param(req, "tenant").filter(|t| crate::jwt::is_tenant_guid(t));
        let provider = index.filter(|i| *i < self.provider_count()).map(|i| self.provider_at(i));
        let entra = provider.as_ref().and_then(|p| p.config.entra.as_ref());
        let refused = match (&tenant, entra) {
            (Some(t), Some(entra)) => entra.tenant.is_multi_tenant() && !entra.allowed_tenants.allows(t),
            _ => false,
        };
        // Provider names are [a-z0-9-] (checked when PROVIDERS is read): safe in the link as is.
        let login = match provider.filter(|p| p.index > 0) {
            Some(p) => format!("/auth/login?provider={}", p.config.name),
            None => "/auth/login".to_owned(),
        };
        let body = match &tenant {
            Some(t) if refused => format!(
                "<p>Consent was granted for tenant <code>{}</code>, but this gateway does not accept that tenant \
                 yet: add it to <code>ENTRA_ALLOWED_TENANTS</code>.</p>",
                escape_html(t)
            ),
            Some(t) => format!(
                "<p>Consent was granted for tenant <code>{}</code>. Its users can now <a href=\"{login}\">sign in</a>.</p>",
                escape_html(t)
            ),
            None => format!("<p>Consent was granted. Users can now <a href=\"{login}\">sign in</a>.</p>"),
        };
        let mut entry = log(req, "admin_consent_granted", Some(200));
        entry.detail = tenant;
        respond_with(html_page(200, "Administrator consent", &body, &clear), entry)
    }
}
