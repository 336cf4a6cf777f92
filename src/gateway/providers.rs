//! The identity providers of one isolate: each one's configuration with its discovery
//! document, signing keys, bearer rules and client key, by index into the provider table (0 is
//! the default provider, kept in the gateway's own fields as before there could be several;
//! routes carry indexes, so no request looks a provider up by name).

use super::Gateway;
use super::bearer::BearerRules;
use crate::config::ProviderConfig;
use crate::error::GatewayError;
use crate::jwt::{JwksCache, JwksCachePolicy, SigningKeySlot};
use crate::oidc::ProviderState;
use crate::policy::AuthMode;
use crate::ports::Ports;
use crate::session::SessionRecord;
use crate::session::cookie::session_cookie_name;

/// What the isolate keeps for a provider other than the default one.
pub(super) struct ProviderSlot<P: Ports> {
    state: ProviderState<P::Key>,
    bearer_rules: BearerRules,
    client_key: SigningKeySlot<P::SigningKey>,
}

impl<P: Ports> ProviderSlot<P> {
    pub(super) fn new(policy: JwksCachePolicy) -> Self {
        Self {
            state: ProviderState::new(JwksCache::new(policy)),
            bearer_rules: BearerRules::default(),
            client_key: SigningKeySlot::default(),
        }
    }
}

/// One provider as a request uses it.
pub(super) struct Provider<'g, P: Ports> {
    /// Its index in the provider table.
    pub index: usize,
    pub config: &'g ProviderConfig,
    pub state: &'g ProviderState<P::Key>,
    pub bearer_rules: &'g BearerRules,
    pub client_key: &'g SigningKeySlot<P::SigningKey>,
    /// Its session cookie's name.
    pub cookie: &'g str,
}

impl<P: Ports> Gateway<P> {
    /// The provider at `index` (from a route, a transaction or a session record); one out of
    /// range is the default provider.
    pub(super) fn provider_at(&self, index: usize) -> Provider<'_, P> {
        let cookie = self.session_cookies.get(index).or(self.session_cookies.first()).map_or("", String::as_str);
        match index.checked_sub(1).and_then(|i| self.more_providers.get(i)) {
            Some(slot) => Provider {
                index,
                config: self.config.provider_at(index),
                state: &slot.state,
                bearer_rules: &slot.bearer_rules,
                client_key: &slot.client_key,
                cookie,
            },
            None => Provider {
                index: 0,
                config: &self.config.provider,
                state: &self.provider,
                bearer_rules: &self.bearer_rules,
                client_key: &self.client_key,
                cookie,
            },
        }
    }

    /// The name the origin is told for the provider at `index` (`X-Forwarded-Provider`, route
    /// limit keys): only with several providers, where `sub` alone does not say who a caller is.
    pub(super) fn forwarded_provider(&self, index: usize) -> Option<&str> {
        (self.provider_count() > 1).then(|| self.config.provider_at(index).name.as_str())
    }

    /// How many providers there are.
    pub(super) fn provider_count(&self) -> usize {
        self.more_providers.len().saturating_add(1)
    }

    /// The index of the provider a transaction or session record names (empty: written before
    /// there could be several, so the default provider's); `None` when no provider has that
    /// name any more.
    pub(super) fn provider_named(&self, name: &str) -> Option<usize> {
        match name {
            "" => Some(0),
            name => self.config.provider_index(name),
        }
    }

    /// Whether `record` was signed in with the provider at `index`.
    pub(super) fn record_is_from(&self, record: &SessionRecord, index: usize) -> bool {
        self.provider_named(&record.provider) == Some(index)
    }

    /// The provider `/auth/login` signs in with: `?provider=<name>`, or `?iss=<issuer>` (a
    /// sign-in the provider initiated, OIDC Core §4: its issuer must be one configured here,
    /// exactly; with `provider` too, both must name the same one), else the one of the route the
    /// return path `rd` leads to, else the default provider.
    pub(super) fn login_provider(&self, query: &str, rd: &str) -> Result<usize, GatewayError> {
        let param = |name: &str| url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name);
        let named = match param("provider") {
            Some((_, name)) => {
                Some(self.config.provider_index(&name).ok_or(GatewayError::InvalidRequest("provider_unknown"))?)
            }
            None => None,
        };
        if let Some((_, iss)) = param("iss") {
            let issuer = self.provider_with_issuer(&iss).ok_or(GatewayError::InvalidRequest("login_issuer_unknown"))?;
            return match named {
                Some(named) if named != issuer => Err(GatewayError::InvalidRequest("login_issuer_unknown")),
                _ => Ok(issuer),
            };
        }
        if let Some(named) = named {
            return Ok(named);
        }
        let path = rd.split(['?', '#']).next().unwrap_or_default();
        let route = crate::policy::normalise_path(path).ok().and_then(|p| self.config.routes.find(&p).ok().flatten());
        Ok(route.filter(|r| r.auth != AuthMode::Public).map_or(0, |r| r.providers.session))
    }

    /// The provider whose configured issuer is `iss`, exactly.
    fn provider_with_issuer(&self, iss: &str) -> Option<usize> {
        (0..self.provider_count()).find(|index| self.provider_at(*index).config.issuer == iss)
    }

    /// The session cookie names of every provider, by index.
    pub(super) fn session_cookie_names(config: &crate::config::Config) -> Vec<String> {
        let mut names = vec![session_cookie_name(0, &config.provider.name)];
        names.extend(config.providers.iter().enumerate().map(|(i, p)| session_cookie_name(i + 1, &p.name)));
        names
    }
}
