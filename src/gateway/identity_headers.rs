//! The caller's claims as origin headers: the route's `headers` mapping and Easy Auth's
//! `X-MS-CLIENT-PRINCIPAL`. Client copies of every mapped header are removed on every route
//! (the Easy Auth names always are, by the built-in strip list), so an origin that reads them
//! can trust them.

use super::Gateway;
use super::request::IncomingRequest;
use crate::policy::{CLIENT_PRINCIPAL_MAX, Route};
use crate::ports::Ports;
use crate::proxy::{Credential, HeaderChanges, add_claim_headers, add_client_principal, strip_names};

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
            notes.extend(add_client_principal(changes, claims, self.identity_provider_name(), CLIENT_PRINCIPAL_MAX));
        }
        notes
    }

    /// Easy Auth's name for the identity provider (`auth_typ`, `X-MS-CLIENT-PRINCIPAL-IDP`):
    /// `aad` for Microsoft Entra ID, `oidc` for any other OpenID provider.
    fn identity_provider_name(&self) -> &'static str {
        if self.config.provider.entra.is_some() { "aad" } else { "oidc" }
    }
}
