//! Finishing a sign-in at the redirect URI (OIDC Core §3.1.2.5–3.1.3.7).

use super::Gateway;
use super::request::IncomingRequest;
use super::respond::redirect;
use crate::error::GatewayError;
use crate::oidc::{AuthorizationResponse, Grant, ProviderError, TokenError, build_token_request, parse_token_response};
use crate::ports::{HttpError, Ports};
use crate::session::cookie::TX_COOKIE_PREFIX;
use crate::session::{LoginTransaction, SessionCookie, SessionId, SessionRecord, cleanup_cookies};

/// The result of a successful callback, for the decision log.
pub(super) struct SignedIn {
    pub response: http::Response<Vec<u8>>,
    pub sub: String,
    /// Key-cache events for the log.
    pub notes: Vec<&'static str>,
}

impl<P: Ports> Gateway<P> {
    /// RFC 9207 §2.4 for an error response: when it names an issuer and belongs to this
    /// browser's own sign-in, the issuer must be that sign-in's provider. Otherwise an error of
    /// one provider, replayed into another's flow, would be shown (or retried with consent) as
    /// if the provider of the flow had said it. An error for no transaction of this browser
    /// changes nothing (it is refused anyway); a provider that omits `iss` is not asked to
    /// prove anything here, as no code is exchanged.
    pub(super) fn check_error_issuer(
        &self,
        cookies: &str,
        state: Option<&str>,
        iss: Option<&str>,
        now: u64,
    ) -> Result<(), GatewayError> {
        let (Some(state), Some(iss)) = (state, iss) else { return Ok(()) };
        let tx = LoginTransaction::find(cookies, state, &self.config.session.keys, now);
        let provider = tx.filter(|tx| tx.is_bound_to(cookies)).and_then(|tx| self.provider_named(&tx.provider));
        match provider.map(|index| self.provider_at(index)) {
            Some(provider) if provider.config.issuer != iss => {
                Err(GatewayError::CallbackIssuerMismatch(iss.to_owned()))
            }
            _ => Ok(()),
        }
    }

    /// Check the authorization response against the login transaction, exchange the code,
    /// validate the ID token, start the session and send the browser back where it was going.
    /// On failure the caller answers 4xx/5xx and clears the transaction cookie (`cleanup`).
    pub(super) async fn handle_callback(&self, ports: &P, req: &IncomingRequest) -> Result<SignedIn, GatewayError> {
        let now = ports.now_secs();
        let keys = &self.config.session.keys;
        let cookies = req.cookie_header();
        let (code, state, iss) = match AuthorizationResponse::from_query(req.query.as_deref().unwrap_or("")) {
            AuthorizationResponse::Code { code, state, iss } => (code, state, iss),
            AuthorizationResponse::Error { error, description, state, iss } => {
                self.check_error_issuer(&cookies, state.as_deref(), iss.as_deref(), now)?;
                return Err(GatewayError::ProviderDenied { error, description });
            }
            AuthorizationResponse::Malformed => return Err(GatewayError::MalformedCallback),
        };
        let Some(tx) = LoginTransaction::find(&cookies, &state, keys, now) else {
            let any_tx = cookies.contains(TX_COOKIE_PREFIX);
            return Err(GatewayError::StateMismatch(if any_tx {
                "state_mismatch"
            } else {
                "login_transaction_missing"
            }));
        };
        if !tx.is_bound_to(&cookies) {
            return Err(GatewayError::StateMismatch("login_binding_mismatch"));
        }
        // The provider is the one the sealed transaction names, never one the response names:
        // RFC 9207's `iss`, when sent, must be that provider's (a flow of one provider finished
        // with another's answer is a mix-up attack, RFC 9700 §4.4).
        let Some(provider) = self.provider_named(&tx.provider).map(|index| self.provider_at(index)) else {
            return Err(GatewayError::StateMismatch("login_provider_unknown"));
        };
        if let Some(iss) = iss.as_ref().filter(|iss| **iss != provider.config.issuer) {
            return Err(GatewayError::CallbackIssuerMismatch(iss.clone()));
        }

        let metadata = provider.state.metadata(ports, provider.config).await?;
        // A provider that always sends `iss` sent none: not its answer as it left it (RFC 9207
        // §2.4), refused before the code goes anywhere.
        if iss.is_none() && metadata.authorization_response_iss_parameter_supported {
            return Err(GatewayError::CallbackIssuerMissing);
        }
        let redirect_uri = self.config.redirect_uri();
        let grant =
            Grant::AuthorizationCode { code: &code, redirect_uri: &redirect_uri, pkce_verifier: &tx.pkce_verifier };
        let auth = self.client_authentication(ports, &provider, &metadata.token_endpoint).await?;
        let request = build_token_request(&metadata.token_endpoint, provider.config, &grant, &auth)
            .map_err(|e| ProviderError::Token(TokenError::Unreachable(HttpError::Network(e.to_string()))))?;
        let tokens = parse_token_response(ports.send(request).await)?;
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or_else(|| ProviderError::Token(TokenError::Malformed("no id_token in the token response".into())))?;
        let mut notes = Vec::new();
        let identity = crate::oidc::validate_id_token(
            ports,
            &provider.state.keys,
            &metadata,
            id_token,
            provider.config,
            Some(&tx.nonce),
            &tokens.access_token,
            &mut notes,
        )
        .await?;

        let skew = provider.config.clock_skew_secs;
        // A sign-in that was asked to step up must have (OIDC Core §3.1.2.1: auth_time is
        // required when max_age was sent); otherwise the route would send it back again.
        if let Err(unmet) = tx.step_up.check(identity.acr.as_deref(), identity.auth_time, now, skew) {
            return Err(GatewayError::StepUpNotSatisfied(unmet));
        }
        let mut identity = identity;
        identity.scopes = crate::entra::granted_scopes(tokens.scope.as_deref(), provider.config);
        let id = SessionId::generate(ports);
        let expires_at = now.saturating_add(self.config.session.ttl_secs);
        let record = SessionRecord {
            identity: identity.clone(),
            access_token: tokens.access_token.clone(),
            access_expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
            access_issued_at: Some(now),
            refresh_token: tokens.refresh_token.clone(),
            id_token: id_token.to_owned(),
            created_at: now,
            expires_at,
            provider: provider.config.name.clone(),
        };
        self.sessions.save(ports, keys, ports, &id, &record, now).await?;
        self.sessions.index(ports, &provider.config.issuer, &record, &id, now).await?;

        let mut set_cookies = cleanup_cookies(&cookies, Some(&tx.state), keys, now);
        let idle_until = now.saturating_add(self.config.session.idle_secs).min(expires_at);
        let cookie = SessionCookie { id, expires_at, idle_until };
        set_cookies.push(cookie.to_set_cookie_named(provider.cookie, keys, ports, now));
        let location = format!("{}{}", self.config.public_origin(), tx.return_to);
        Ok(SignedIn { response: redirect(&location, &set_cookies), sub: identity.sub, notes })
    }
}
