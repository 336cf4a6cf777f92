//! Starting a sign-in: the redirect to the provider, and where to come back to.

use super::Gateway;
use super::respond::redirect;
use crate::error::GatewayError;
use crate::oidc::{ProviderError, build_authorize_url};
use crate::policy::StepUp;
use crate::ports::Ports;
use crate::session::{LoginTransaction, new_binding};
use url::Url;

/// A same-origin path (with query) to return to after sign-in, or `/`.
///
/// Only relative paths are accepted, and they are resolved against `PUBLIC_URL` and checked to
/// stay there, which refuses `//evil.example`, `/\evil.example`, `https://evil.example`,
/// `javascript:` and encoded variants browsers would normalise into those (RFC 9700 §4.11).
pub fn safe_return_path(public_url: &Url, candidate: &str) -> String {
    let plausible = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.contains('\\')
        && !candidate.chars().any(|c| c.is_control() || c.is_whitespace())
        && !candidate.to_ascii_lowercase().starts_with("/%2f")
        && !candidate.to_ascii_lowercase().starts_with("/%5c");
    if !plausible {
        return "/".into();
    }
    match public_url.join(candidate) {
        Ok(url) => path_on(public_url, &url),
        Err(_) => "/".into(),
    }
}

/// `url`'s path and query if it is on `public_url`'s origin, else `/`.
fn path_on(public_url: &Url, url: &Url) -> String {
    match url.origin() == public_url.origin() {
        true => match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        },
        false => "/".into(),
    }
}

/// Where a sign-in started at `/auth/login` comes back to: `rd` (a same-site path), else the
/// `target_link_uri` of a sign-in the provider initiated (OIDC Core §4: an absolute URL, which
/// must be on the gateway, so it is kept only as that path), else `/`. Anything off the
/// gateway becomes `/` ([`safe_return_path`]), as for `rd`.
pub fn login_return_to(query: &str, public_url: &Url) -> String {
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    };
    if let Some(rd) = param("rd") {
        return rd;
    }
    let Some(target) = param("target_link_uri") else { return "/".into() };
    Url::parse(&target).map_or_else(|_| "/".into(), |url| path_on(public_url, &url))
}

/// Parameters a sign-in started at `/auth/login` may pass on to the provider (OIDC Core
/// §3.1.2.1), and the `prompt` values that make sense there.
const HINTS: [&str; 4] = ["login_hint", "domain_hint", "prompt", "ui_locales"];
const PROMPTS: [&str; 4] = ["login", "select_account", "consent", "none"];

/// What one sign-in asks the provider for beyond the configured defaults.
#[derive(Debug, Default)]
pub(super) struct AuthRequest {
    /// The route's step-up (`acr_values`, `max_age`), checked again at the callback.
    pub step_up: StepUp,
    /// Hints from `/auth/login` (login_hint, domain_hint, prompt, ui_locales).
    pub hints: Vec<(&'static str, String)>,
    /// The provider to sign in with (an index into the provider table).
    pub provider: usize,
}

impl AuthRequest {
    /// The hints in an `/auth/login` query; unknown names and unusable values are dropped (a
    /// hint is a convenience, never worth refusing a sign-in over).
    pub fn from_login_query(query: &str) -> Self {
        let mut hints = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let Some(name) = HINTS.into_iter().find(|h| *h == name) else { continue };
            let usable = !value.is_empty() && value.len() <= 256 && !value.chars().any(char::is_control);
            let prompt_ok = name != "prompt" || value.split(' ').all(|p| PROMPTS.contains(&p));
            if usable && prompt_ok && !hints.iter().any(|(n, _)| *n == name) {
                hints.push((name, value.into_owned()));
            }
        }
        Self { step_up: StepUp::default(), hints, provider: 0 }
    }
}

/// `url` with `params` added, each replacing one of the same name already there or earlier in
/// `params` (so a sign-in's own `prompt` wins over `OIDC_AUTH_PARAMS`', and is sent once).
fn with_params(url: &str, params: &[(&str, String)]) -> Result<String, url::ParseError> {
    if params.is_empty() {
        return Ok(url.to_owned());
    }
    let mut url = Url::parse(url)?;
    let kept: Vec<(String, String)> =
        url.query_pairs().into_owned().filter(|(k, _)| !params.iter().any(|(n, _)| n == k)).collect();
    let last_of_each = params
        .iter()
        .enumerate()
        .filter(|(i, (name, _))| params.get(i + 1..).is_none_or(|later| !later.iter().any(|(n, _)| n == name)));
    url.query_pairs_mut().clear().extend_pairs(kept).extend_pairs(last_of_each.map(|(_, (k, v))| (*k, v.as_str())));
    Ok(url.into())
}

impl<P: Ports> Gateway<P> {
    /// Redirect the browser to the provider, with a fresh login transaction in its own cookie
    /// and the cookie that binds it to this browser.
    pub(super) async fn start_login(
        &self,
        ports: &P,
        provider: usize,
        return_to: &str,
        set_cookies: Vec<String>,
    ) -> Result<http::Response<Vec<u8>>, GatewayError> {
        self.start_login_with(ports, return_to, set_cookies, AuthRequest { provider, ..AuthRequest::default() }).await
    }

    /// [`Self::start_login`] asking the provider for more: the provider's `OIDC_AUTH_PARAMS`
    /// (`auth_params`), then the sign-in's hints, then its step-up, each replacing what came
    /// before.
    pub(super) async fn start_login_with(
        &self,
        ports: &P,
        return_to: &str,
        mut set_cookies: Vec<String>,
        request: AuthRequest,
    ) -> Result<http::Response<Vec<u8>>, GatewayError> {
        let provider = self.provider_at(request.provider);
        let metadata = provider.state.metadata(ports, provider.config).await?;
        let return_to = safe_return_path(&self.config.public_url, return_to);
        let binding = new_binding(ports);
        let mut tx = LoginTransaction::begin(ports, ports.now_secs(), return_to, &binding);
        tx.provider = provider.config.name.clone();
        let mut params: Vec<(&str, String)> =
            provider.config.auth_params.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        // Remembered so that a consent retry happens once (see `consent`).
        tx.prompt = request.hints.iter().find(|(name, _)| *name == "prompt").map(|(_, value)| value.clone());
        params.extend(request.hints);
        params.extend(request.step_up.authorize_params());
        tx.step_up = request.step_up;
        let url = build_authorize_url(&metadata, &self.config, provider.config, &tx)
            .and_then(|url| with_params(&url, &params))
            .map_err(|e| {
                ProviderError::Discovery(crate::oidc::DiscoveryError::BadEndpoint {
                    name: "authorization_endpoint",
                    value: e.to_string(),
                })
            })?;
        set_cookies.push(tx.to_set_cookie(&self.config.session.keys, ports));
        set_cookies.push(tx.binding_set_cookie(&binding));
        Ok(redirect(&url, &set_cookies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_the_gateway() {
        let base = Url::parse("https://gw.example.com").unwrap();
        assert_eq!(safe_return_path(&base, "/docs?page=2"), "/docs?page=2");
        assert_eq!(safe_return_path(&base, "/a/../b"), "/b");
        for evil in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/%2F%2Fevil.example",
            "/%5cevil.example",
            "/\tevil",
            "",
            "evil",
            "///evil.example",
        ] {
            assert_eq!(safe_return_path(&base, evil), "/", "{evil}");
        }
    }
}
