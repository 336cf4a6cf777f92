//! Starting a sign-in: the redirect to the provider, and where to come back to.

use super::Gateway;
use super::request::IncomingRequest;
use super::respond::redirect;
use crate::error::GatewayError;
use crate::oidc::{ProviderError, build_authorize_url};
use crate::ports::Ports;
use crate::session::{LoginTransaction, browser_binding};
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
        Ok(url) if url.origin() == public_url.origin() => match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        },
        _ => "/".into(),
    }
}

impl<P: Ports> Gateway<P> {
    /// Redirect the browser to the provider, with a fresh login transaction in its own cookie,
    /// bound to the browser that sent `req`.
    pub(super) async fn start_login(
        &self,
        ports: &P,
        req: &IncomingRequest,
        return_to: &str,
        mut set_cookies: Vec<String>,
    ) -> Result<http::Response<Vec<u8>>, GatewayError> {
        let metadata = self.provider.metadata(ports, &self.config.provider.issuer).await?;
        let return_to = safe_return_path(&self.config.public_url, return_to);
        let (binding, binding_cookie) = browser_binding(&req.cookie_header(), ports);
        set_cookies.push(binding_cookie);
        let tx = LoginTransaction::begin(ports, ports.now_secs(), return_to, &binding);
        let url = build_authorize_url(&metadata, &self.config, &tx).map_err(|e| {
            ProviderError::Discovery(crate::oidc::DiscoveryError::BadEndpoint {
                name: "authorization_endpoint",
                value: e.to_string(),
            })
        })?;
        set_cookies.push(tx.to_set_cookie(&self.config.session.keys, ports));
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
