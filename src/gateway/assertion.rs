//! The signed user assertion: a short-lived JWT the gateway signs for a route's origin, so the
//! origin can verify who the user is (against `/.well-known/jwks.json`) even when it is called
//! with the gateway's own token. Like Pomerium's `X-Pomerium-Jwt-Assertion` and Access's
//! `Cf-Access-Jwt-Assertion`, with the claims Entra users need (`tid`, `roles`, `groups`, `scp`).

use super::RequestHeaders;
use super::request::{IncomingRequest, Outcome};
use super::respond::json;
use super::{Decision, Gateway, log, respond_with};
use crate::encoding::b64url;
use crate::error::GatewayError;
use crate::policy::{AssertionRoute, Route};
use crate::ports::Ports;
use crate::proxy::HeaderChanges;
use http::HeaderValue;
use http::header::CACHE_CONTROL;
use serde_json::{Map, Value, json};

/// How long an assertion is valid: it is made for one request.
pub const ASSERTION_LIFETIME_SECS: u64 = 120;

/// What the assertion says about the caller.
#[derive(Debug, Default, Clone)]
pub struct AssertionSubject<'a> {
    pub sub: &'a str,
    /// Only an address the token states verified (`email_verified`, or Entra's `xms_edov`),
    /// whatever `EMAIL_VERIFIED_REQUIRED` says: an assertion vouches for it.
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub tid: Option<&'a str>,
    pub roles: Vec<&'a str>,
    pub groups: Vec<&'a str>,
    pub scopes: Vec<&'a str>,
    pub sid: Option<&'a str>,
    /// The provider that vouched for the user, with several providers (`idp`): `sub` is unique
    /// per provider only.
    pub idp: Option<&'a str>,
}

impl<'a> AssertionSubject<'a> {
    /// A signed-in user, from the session.
    pub fn from_identity(identity: &'a crate::session::Identity) -> Self {
        let strs = |v: &'a [String]| v.iter().map(String::as_str).collect();
        Self {
            sub: &identity.sub,
            email: identity.email.as_deref().filter(|_| identity.email_verified == Some(true)),
            name: identity.name.as_deref(),
            tid: identity.tenant.as_deref(),
            roles: strs(&identity.roles),
            groups: strs(&identity.groups),
            scopes: strs(&identity.scopes),
            sid: identity.sid.as_deref(),
            idp: None,
        }
    }

    /// A bearer caller, from its verified access token.
    pub fn from_verified(token: &'a crate::jwt::VerifiedJwt, sub: &'a str) -> Self {
        let verified_email = crate::policy::email_verified(token.claims()) == Some(true);
        Self {
            sub,
            email: token.string("email").filter(|_| verified_email),
            name: token.string("name"),
            tid: token.tid(),
            roles: token.roles(),
            groups: token.groups(),
            scopes: token.scopes(),
            sid: token.string("sid"),
            idp: None,
        }
    }
}

/// The assertion's claims; empty lists and absent values are left out.
pub fn assertion_claims(iss: &str, aud: &str, who: &AssertionSubject<'_>, now: u64, jti: &str) -> Value {
    let mut claims = Map::new();
    let mut put = |name: &str, value: Value| {
        claims.insert(name.to_owned(), value);
    };
    put("iss", json!(iss));
    put("aud", json!(aud));
    put("sub", json!(who.sub));
    for (name, value) in
        [("email", who.email), ("name", who.name), ("tid", who.tid), ("sid", who.sid), ("idp", who.idp)]
    {
        if let Some(value) = value {
            put(name, json!(value));
        }
    }
    for (name, values) in [("roles", &who.roles), ("groups", &who.groups)] {
        if !values.is_empty() {
            put(name, json!(values));
        }
    }
    if !who.scopes.is_empty() {
        put("scp", json!(who.scopes.join(" ")));
    }
    put("iat", json!(now));
    put("exp", json!(now.saturating_add(ASSERTION_LIFETIME_SECS)));
    put("jti", json!(jti));
    Value::Object(claims)
}

/// Drop every client header that an origin would read as `header` (any case, `_` for `-`).
pub fn strip_client_header(changes: &mut HeaderChanges, client: &RequestHeaders, header: &str) {
    for name in client.names() {
        if name.to_ascii_lowercase().replace('_', "-") == header && !changes.remove.iter().any(|n| n == name) {
            changes.remove.push(name.to_owned());
        }
    }
}

impl<P: Ports> Gateway<P> {
    /// Add the route's signed assertion for `who` to a forward decision.
    pub(super) async fn add_assertion(
        &self,
        ports: &P,
        req: &IncomingRequest,
        route: &Route,
        who: Option<&AssertionSubject<'_>>,
        mut decision: Decision,
    ) -> Decision {
        let (Some(target), Some(who), Some(config)) = (&route.assertion, who, &self.config.assertion) else {
            return decision;
        };
        let jwt = match self.sign_assertion(ports, target, who, config).await {
            Ok(jwt) => jwt,
            Err(err) => return self.refuse(req, err, &[]),
        };
        // The name is a lower-case token, checked when ROUTES was read.
        if let Outcome::Forward(plan) = &mut decision.outcome {
            plan.headers.set.push((target.header.clone().into(), jwt));
        }
        decision
    }

    async fn sign_assertion(
        &self,
        ports: &P,
        target: &AssertionRoute,
        who: &AssertionSubject<'_>,
        config: &crate::config::AssertionConfig,
    ) -> Result<String, GatewayError> {
        let mut jti = [0u8; 16];
        ports.fill(&mut jti);
        let claims =
            assertion_claims(&self.config.public_origin(), &target.audience, who, ports.now_secs(), &b64url(&jti));
        let header = json!({ "alg": config.key.alg.name(), "typ": "JWT", "kid": config.kid });
        self.assertion_key.sign(ports, &config.key, &header, &claims).await.map_err(GatewayError::SigningKeyUnusable)
    }

    /// `GET /.well-known/jwks.json`: the public keys origins verify assertions with. Cacheable
    /// for five minutes, so a rotation is picked up soon after both keys are published.
    pub(super) fn assertion_jwks(&self, req: &IncomingRequest) -> Decision {
        let jwks = self.config.assertion.as_ref().map(|a| a.jwks.as_bytes().to_vec()).unwrap_or_default();
        let mut response = json(200, &Value::Null);
        *response.body_mut() = jwks;
        response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
        respond_with(response, log(req, "assertion_jwks", Some(200)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_is_asserted_only_when_there_are_several() {
        let one = AssertionSubject { sub: "alice", ..AssertionSubject::default() };
        let several = AssertionSubject { idp: Some("partners"), ..one.clone() };
        let claims = |who: &AssertionSubject<'_>| assertion_claims("https://gw", "https://api", who, 1, "j");
        assert!(claims(&one).get("idp").is_none());
        assert_eq!(claims(&several)["idp"], "partners");
    }
}
