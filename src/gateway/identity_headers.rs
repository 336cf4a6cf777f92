//! The caller's claims as origin headers: the route's `headers` mapping and Easy Auth's
//! `X-MS-CLIENT-PRINCIPAL`. Client copies of every mapped header are removed on every route
//! (the Easy Auth names always are, by the built-in strip list), so an origin that reads them
//! can trust them.

use super::Gateway;
use super::request::IncomingRequest;
use crate::config::ProviderConfig;
use crate::policy::{CLIENT_PRINCIPAL_MAX, Route};
use crate::ports::Ports;
use crate::proxy::{Credential, HeaderChanges, add_claim_headers, add_client_principal, strip_names};
use serde_json::{Map, Value};

impl<P: Ports> Gateway<P> {
    /// Strip client copies of mapped headers, then add the route's claim headers for the
    /// caller. Returns the log notes of headers left out (too large, or unsafe values).
    pub(super) fn add_identity_headers(
        &self,
        changes: &mut HeaderChanges,
        req: &IncomingRequest,
        route: &Route,
        credential: &Credential<'_>,
    ) -> Vec<&'static str> {
        strip_names(changes, &req.headers, self.config.routes.claim_header_names());
        let Some(claims) = credential.identity().and_then(|identity| identity.claims) else {
            return Vec::new();
        };
        let mut notes = add_claim_headers(changes, &route.claim_headers, claims);
        if route.client_principal {
            let idp = self.identity_provider_name(route, credential, claims);
            notes.extend(add_client_principal(changes, claims, idp, CLIENT_PRINCIPAL_MAX));
        }
        notes
    }

    /// Easy Auth's name for the caller's identity provider (`auth_typ`,
    /// `X-MS-CLIENT-PRINCIPAL-IDP`): `aad` for Microsoft Entra ID, `oidc` for any other. The
    /// provider is the route's session provider for a session, else the one of the route's
    /// providers whose issuer the (verified) token names; an Entra preset's tenant-templated
    /// issuer is recognised by the token's `tid`.
    fn identity_provider_name(
        &self,
        route: &Route,
        credential: &Credential<'_>,
        claims: &Map<String, Value>,
    ) -> &'static str {
        let session = std::iter::once(route.providers.session);
        let candidates: Vec<&ProviderConfig> = match credential {
            Credential::Authenticated { .. } => session.map(|i| self.config.provider_at(i)).collect(),
            _ => session.chain(route.providers.bearer.iter().copied()).map(|i| self.config.provider_at(i)).collect(),
        };
        let iss = claims.get("iss").and_then(Value::as_str);
        let entra = match candidates.iter().find(|p| Some(p.issuer.as_str()) == iss) {
            Some(provider) => provider.entra.is_some(),
            None => claims.contains_key("tid") && candidates.iter().any(|p| p.entra.is_some()),
        };
        if entra { "aad" } else { "oidc" }
    }
}
