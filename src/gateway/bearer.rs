//! Bearer routes (RFC 6750): the access token is verified at the edge with the provider's keys
//! (RFC 9068 profile, RFC 8725 rules) and the route's requirements, then forwarded as is.

use std::cell::RefCell;
use std::rc::Rc;

use super::request::IncomingRequest;
use super::{Decision, Gateway};
use crate::config::{Config, ProviderConfig};
use crate::dpop::DpopError;
use crate::entra::EntraClaims;
use crate::error::GatewayError;
use crate::jwt::{
    CachedVerdict, ClaimRules, DEFAULT_MAX_TOKEN_LEN, JwtError, TokenDigest, UnverifiedJwt, VerifiedJwt,
    verify_with_cache,
};
use crate::oidc::ProviderMetadata;
use crate::policy::{Claims, DpopMode, Route};
use crate::ports::Ports;
use crate::proxy::{Credential, ForwardIdentity, is_header_safe};

/// Whether the request's `Authorization` uses `scheme`.
fn uses_scheme(req: &IncomingRequest, scheme: &str) -> bool {
    req.header("authorization")
        .is_some_and(|v| v.split_ascii_whitespace().next().is_some_and(|s| s.eq_ignore_ascii_case(scheme)))
}

/// Whether the request presents an access token, as `Bearer` or `DPoP` (decides
/// `session_or_bearer` routes). A bare scheme with no token counts: the client tried, and
/// gets `invalid_token`.
pub fn presents_bearer(req: &IncomingRequest) -> bool {
    uses_scheme(req, "bearer") || presents_dpop(req)
}

/// Whether the request uses the `DPoP` scheme (RFC 9449 §7.1).
pub fn presents_dpop(req: &IncomingRequest) -> bool {
    uses_scheme(req, "dpop")
}

/// The claim rules for bearer access tokens (RFC 9068 §4) of `provider`, given its discovered
/// issuer: its issuer, audiences and clock skew, and the deployment's token types.
pub fn bearer_rules(config: &Config, provider: &ProviderConfig, discovered_issuer: &str) -> ClaimRules {
    let issuer = crate::entra::access_token_issuer_rule(provider, discovered_issuer);
    let mut rules = ClaimRules::new(issuer, provider.audiences.clone());
    rules.leeway_secs = provider.clock_skew_secs;
    rules.accepted_types = config.api.token_types.clone();
    rules.require_entra_access_claims = provider.entra.is_some();
    rules
}

/// The bearer claim rules of one provider, built once per isolate and again only when
/// discovery is re-read (Entra's issuers depend on the tenant discovery names).
#[derive(Default)]
pub struct BearerRules(RefCell<Option<(Rc<ProviderMetadata>, Rc<ClaimRules>)>>);

impl BearerRules {
    fn for_metadata(
        &self,
        config: &Config,
        provider: &ProviderConfig,
        metadata: &Rc<ProviderMetadata>,
    ) -> Rc<ClaimRules> {
        if let Some((seen, rules)) = self.0.borrow().as_ref()
            && Rc::ptr_eq(seen, metadata)
        {
            return Rc::clone(rules);
        }
        let rules = Rc::new(bearer_rules(config, provider, &metadata.issuer));
        *self.0.borrow_mut() = Some((Rc::clone(metadata), Rc::clone(&rules)));
        rules
    }

    /// The rules in force, once a token has been verified in full (before that the
    /// verified-token cache is empty anyway).
    fn current(&self) -> Option<Rc<ClaimRules>> {
        self.0.borrow().as_ref().map(|(_, rules)| Rc::clone(rules))
    }
}

/// The token from `Authorization: Bearer <token>` (RFC 6750 §2.1) or `DPoP <token>`
/// (RFC 9449 §7.1).
fn bearer_token(req: &IncomingRequest) -> Result<&str, GatewayError> {
    let Some(value) = req.header("authorization") else {
        return Err(GatewayError::Unauthenticated("token_missing"));
    };
    // The runtime joins repeated headers with `, `; no credential (b64token, RFC 6750 §2.1)
    // contains a comma, so one means the header was sent twice: no single token to verify.
    if value.contains(',') {
        return Err(GatewayError::InvalidToken(JwtError::Malformed("authorization header repeated")));
    }
    if !presents_bearer(req) {
        // Another scheme (Basic, ...) is no bearer credential at all.
        return Err(GatewayError::Unauthenticated("token_missing"));
    }
    // After "Bearer" or "DPoP" and the space (both schemes are followed by the bare token).
    let scheme_len = if presents_dpop(req) { 4 } else { 6 };
    let token = value.get(scheme_len..).map(str::trim).unwrap_or_default();
    if token.is_empty() {
        return Err(GatewayError::InvalidToken(JwtError::Malformed("empty bearer token")));
    }
    Ok(token)
}

/// The subject the origin will be told about: present, and able to travel in a header (a
/// token without one is refused rather than forwarded without an identity).
fn forwardable_subject(verified: &VerifiedJwt) -> Result<(), GatewayError> {
    match verified.sub() {
        None | Some("") => Err(GatewayError::InvalidToken(JwtError::MissingClaim("sub"))),
        Some(subject) if !is_header_safe(subject) => Err(GatewayError::InvalidToken(JwtError::InvalidClaim("sub"))),
        Some(_) => Ok(()),
    }
}

/// A verified bearer token and the key-cache events worth logging.
/// A verified bearer token, the key-cache events worth logging, and the index of the provider
/// whose keys verified it.
type Verified = (Rc<VerifiedJwt>, Vec<&'static str>, usize);

impl<P: Ports> Gateway<P> {
    /// Verify the bearer token against the keys and rules of one of `providers` (the route's):
    /// the only one, or the one the token's `iss` names. From the verified-token cache when it
    /// holds the token as verified by one of them (nothing parsed), else in full (then cache it).
    pub(super) async fn verify_bearer(
        &self,
        ports: &P,
        token: &str,
        providers: &[usize],
    ) -> Result<Verified, GatewayError> {
        let digest = TokenDigest::of(token);
        if let Some((verified, provider)) = self.cached_bearer(ports, providers, &digest)? {
            return Ok((verified, Vec::new(), provider));
        }
        let jwt = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_LEN).map_err(GatewayError::InvalidToken)?;
        if jwt.header().has_nonce {
            // Entra's Microsoft Graph tokens: a header nonce makes them unverifiable by anyone
            // but Graph. Say so rather than report a puzzling signature failure.
            return Err(GatewayError::InvalidToken(JwtError::GraphToken));
        }
        let provider = match providers {
            // One provider in the whole deployment: its rules alone decide, as they always did.
            [only] if self.provider_count() == 1 => self.provider_at(*only),
            _ => self.provider_for_issuer(ports, &jwt, providers).await?,
        };
        let metadata = provider.state.metadata(ports, provider.config).await?;
        let rules = provider.bearer_rules.for_metadata(&self.config, provider.config, &metadata);
        let now = ports.now_secs();
        let verification = verify_with_cache(
            ports,
            &provider.state.keys,
            &metadata.jwks_uri,
            &jwt,
            &provider.config.allowed_algs,
            &rules,
            now,
        )
        .await;
        let notes = verification.events.iter().map(|e| e.reason()).collect();
        let verified = match verification.result {
            Ok(verified) => Rc::new(verified),
            Err(refusal) => {
                self.verified_tokens.forget(&digest, provider.index);
                return Err(GatewayError::InvalidToken(refusal));
            }
        };
        forwardable_subject(&verified)?;
        if let Some(key) = verification.verified_by {
            let verifier = (provider.index, key);
            self.verified_tokens.insert((digest, token.len()), verified.clone(), verifier, &rules, now);
        }
        Ok((verified, notes, provider.index))
    }

    /// The provider among `candidates` whose issuer the token's unverified `iss` names. Only
    /// that provider's keys, issuer and audiences then apply: a key of one provider never
    /// verifies a token claiming another's issuer (RFC 8725 §3.8). A token naming none of
    /// them is refused before anything is fetched. Entra presets are matched by their issuer
    /// rule (the tenant templates); an issuer of that shape fetches the discovery document that
    /// says which tenants count.
    async fn provider_for_issuer(
        &self,
        ports: &P,
        jwt: &UnverifiedJwt,
        candidates: &[usize],
    ) -> Result<super::providers::Provider<'_, P>, GatewayError> {
        let claims = jwt.unverified_claims();
        let iss = claims
            .get("iss")
            .and_then(|v| v.as_str())
            .ok_or(GatewayError::InvalidToken(JwtError::MissingClaim("iss")))?;
        let tid = claims.get("tid").and_then(|v| v.as_str());
        let providers = candidates.iter().map(|i| self.provider_at(*i));
        let (plain, entra): (Vec<_>, Vec<_>) = providers.partition(|p| p.config.entra.is_none());
        if let Some(provider) = plain.into_iter().find(|p| p.config.issuer == iss) {
            return Ok(provider);
        }
        for provider in entra {
            // Only an issuer of the preset's shape (its cloud, version and a tenant) is worth the
            // discovery document that decides the tenants.
            let Some(preset) = &provider.config.entra else { continue };
            let shape = preset.access_token_issuer(&preset.expected_issuer_text());
            if !matches!(shape.check(iss, tid), Ok(()) | Err(JwtError::TenantNotAllowed)) {
                continue;
            }
            let metadata = provider.state.metadata(ports, provider.config).await?;
            let rules = provider.bearer_rules.for_metadata(&self.config, provider.config, &metadata);
            if matches!(rules.issuer.check(iss, tid), Ok(()) | Err(JwtError::TenantNotAllowed)) {
                return Ok(provider);
            }
        }
        Err(GatewayError::InvalidToken(JwtError::IssuerUnknown))
    }

    /// The cache's verdict on a token, with the index of the provider that verified it, if that
    /// provider is one of `candidates` (the route's), checked against its keys and rules as
    /// cached now. `None`: verify in full — not cached, cached for another provider, its key
    /// left the JWKS, or the keys are due for a refresh (the full path refreshes them; a hit
    /// never waits on the network).
    fn cached_bearer(
        &self,
        ports: &P,
        candidates: &[usize],
        digest: &TokenDigest,
    ) -> Result<Option<(Rc<VerifiedJwt>, usize)>, GatewayError> {
        let now_ms = ports.now_millis();
        let verdict = self.verified_tokens.lookup(digest, ports.now_secs(), |index| {
            if !candidates.contains(&index) {
                return None;
            }
            let provider = self.provider_at(index);
            Some((provider.state.keys.fresh_keys(now_ms)?, provider.bearer_rules.current()?))
        });
        match verdict {
            CachedVerdict::Valid(verified, provider) => Ok(Some((verified, provider))),
            CachedVerdict::Refused(refusal) => Err(GatewayError::InvalidToken(refusal)),
            CachedVerdict::Miss => Ok(None),
        }
    }

    pub(super) async fn bearer_route(&self, ports: &P, req: &IncomingRequest, route: &Route) -> Decision {
        let token = match bearer_token(req) {
            Ok(token) => token,
            Err(GatewayError::Unauthenticated(_)) if route.dpop == DpopMode::Required => {
                return self.refuse(req, GatewayError::Dpop(DpopError::TokenMissing), &[]);
            }
            Err(err) => return self.refuse(req, err, &[]),
        };
        let (verified, notes, provider) = match self.verify_bearer(ports, token, &route.providers.bearer).await {
            Ok(ok) => ok,
            Err(err) => return self.refuse(req, err, &[]),
        };
        let binding = match self.check_dpop_binding(ports, req, route, token, &verified).await {
            Ok(binding) => binding,
            Err(err) => return self.refuse(req, GatewayError::Dpop(err), &[]),
        };
        let claims = Claims {
            scopes: verified.scopes(),
            roles: verified.roles(),
            groups: verified.groups(),
            tenant: verified.tid(),
            wids: verified.list_claim("wids"),
            caller: Some(verified.claims().caller_kind()),
            groups_overage: verified.claims().has_group_overage(),
        };
        let owner = super::groups_overage::GroupsOwner {
            tid: verified.tid(),
            oid: verified.string("oid"),
            caller: verified.claims().caller_kind(),
            session: None,
            until: verified.exp().unwrap_or_default(),
            provider,
        };
        let resolved = match self.overage_groups(ports, route, &claims, owner).await {
            Ok(resolved) => resolved,
            Err(err) => return self.refuse(req, err, &[]),
        };
        let claims = super::groups_overage::with_groups(claims, resolved.as_deref());
        if let Err(unmet) = route.requirements.check(&claims) {
            return self.refuse(req, GatewayError::InsufficientScope(unmet), &[]);
        }
        let (now, skew) = (ports.now_secs(), self.provider_at(provider).config.clock_skew_secs);
        if let Err(unmet) = route.step_up.check(verified.string("acr"), verified.auth_time(), now, skew) {
            return self.refuse(req, GatewayError::StepUpRequired(route.step_up.clone(), unmet), &[]);
        }
        // Checked by `forwardable_subject` before the token was verified or cached.
        let subject = verified.sub().unwrap_or_default();
        let email = crate::policy::forwardable_email(
            verified.string("email"),
            crate::policy::email_verified(verified.claims()),
            self.config.email_verified_required,
        );
        let identity = ForwardIdentity {
            subject,
            email,
            object_id: verified.string("oid"),
            tenant: verified.tid(),
            provider: self.forwarded_provider(provider),
            claims: route.needs_claims().then(|| verified.claims()),
        };
        let credential = Credential::Presented { identity };
        let who = Some(super::assertion::AssertionSubject {
            idp: self.forwarded_provider(provider),
            ..super::assertion::AssertionSubject::from_verified(&verified, subject)
        });
        let scope = super::origin_token::CallerScope {
            sub: Some(subject),
            provider: self.forwarded_provider(provider),
            client_id: verified.client_id().or(verified.azp()).or(verified.string("appid")),
            session_key: None,
            ends_at: verified.exp(),
        };
        let caller = super::origin_token::Caller { credential, token: Some(token), who, scope, provider };
        let mut decision = self.forward_as(ports, req, route, caller, "bearer_forwarded").await;
        super::dpop::tell_origin(&mut decision, &binding);
        decision.log.sub = Some(subject.to_owned());
        decision.log.notes.extend(notes);
        if !binding.notes.is_empty() {
            // The KV replay check was skipped: worth a line even when forwards are not logged.
            decision.quiet = false;
            decision.log.notes.extend(binding.notes);
        }
        decision
    }
}
