//! A scripted identity provider for host tests: discovery, a JWKS with one ES256 key, and a
//! token endpoint whose answer each test controls. ID tokens are signed for real with `ring`.
//!
//! Test-only: the module is compiled under `#[cfg(test)]` (see lib.rs), so it may panic freely.

use super::{FakeHttp, json_response};
use crate::encoding::b64url;
use crate::ports::{HttpError, IncomingResponse, OutgoingRequest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;

pub const ISSUER: &str = "https://idp.example.com";
pub const KID: &str = "test-key-1";

/// Signs tokens with a fresh P-256 key.
pub struct Signer {
    key: EcdsaKeyPair,
    pub kid: String,
}

impl Signer {
    pub fn new(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        Self { key, kid: kid.to_owned() }
    }

    pub fn jwk(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
            "x": b64url(&point[1..33]), "y": b64url(&point[33..65]),
        })
    }

    /// A compact JWS over `header` and `claims`.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(&serde_json::to_vec(header).unwrap()),
            b64url(&serde_json::to_vec(claims).unwrap())
        );
        let sig = self.key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(sig.as_ref()))
    }

    pub fn sign_claims(&self, claims: &Value) -> String {
        self.sign(&json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"}), claims)
    }
}

/// A form field of a request body.
fn form(req: &OutgoingRequest, name: &str) -> String {
    url::form_urlencoded::parse(req.body()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// What the fake token endpoint answers with, given the nonce from the authorize request.
pub type TokenAnswer = Box<dyn Fn(&str) -> Result<IncomingResponse, HttpError>>;

pub struct FakeIdp {
    /// Its issuer (and base URL); [`ISSUER`] unless made with [`FakeIdp::at`].
    pub issuer: String,
    pub signer: Signer,
    /// The nonce of the latest authorization request the test saw (set by the test).
    pub nonce: RefCell<String>,
    pub token_answer: RefCell<Option<TokenAnswer>>,
    /// Answers refresh grants instead of the rotating default, when set.
    pub refresh_answer: RefCell<Option<TokenAnswer>>,
    /// Refresh tokens presented so far, in order.
    pub refreshes: RefCell<Vec<String>>,
    /// Tokens revoked so far.
    pub revoked: RefCell<Vec<String>>,
    /// Client-credentials grants so far (their `scope`/`resource`/`audience`).
    pub app_grants: RefCell<Vec<String>>,
    /// Answers client-credentials grants instead of the default, when set.
    pub app_answer: RefCell<Option<TokenAnswer>>,
    /// On-behalf-of exchanges so far: (grant_type, the caller's token, target).
    pub exchanges: RefCell<Vec<(String, String, String)>>,
}

impl FakeIdp {
    pub fn new() -> Rc<Self> {
        Self::at(ISSUER)
    }

    /// A provider with issuer `issuer`, whose host no other fake provider shares.
    pub fn at(issuer: &str) -> Rc<Self> {
        Rc::new(Self {
            issuer: issuer.to_owned(),
            signer: Signer::new(KID),
            nonce: RefCell::new(String::new()),
            token_answer: RefCell::new(None),
            refresh_answer: RefCell::new(None),
            refreshes: RefCell::new(Vec::new()),
            revoked: RefCell::new(Vec::new()),
            app_grants: RefCell::new(Vec::new()),
            app_answer: RefCell::new(None),
            exchanges: RefCell::new(Vec::new()),
        })
    }

    /// Valid ID token claims for `nonce` at time `now`.
    pub fn id_claims(&self, nonce: &str, now: u64) -> Value {
        json!({
            "iss": self.issuer, "sub": "alice", "aud": "edgeguard", "exp": now + 300, "iat": now,
            "nonce": nonce, "email": "alice@example.com", "email_verified": true, "name": "Alice",
        })
    }

    pub fn token_body(&self, id_token: &str) -> Value {
        json!({
            "access_token": "access-token-1", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "refresh-token-1", "id_token": id_token,
        })
    }

    pub fn http(self: &Rc<Self>, now: u64) -> FakeHttp {
        let idp = Rc::clone(self);
        FakeHttp::new(move |req: &OutgoingRequest| idp.answer(req, now))
    }

    /// Several providers behind one HTTP port, each answering at its issuer's host.
    pub fn http_for(idps: &[Rc<Self>], now: u64) -> FakeHttp {
        let idps: Vec<Rc<Self>> = idps.to_vec();
        FakeHttp::new(move |req: &OutgoingRequest| {
            let host = req.uri().host().unwrap_or_default();
            let idp = idps.iter().find(|i| url::Url::parse(&i.issuer).unwrap().host_str() == Some(host)).unwrap();
            idp.answer(req, now)
        })
    }

    /// This provider's answer to one request.
    pub fn answer(self: &Rc<Self>, req: &OutgoingRequest, now: u64) -> Result<IncomingResponse, HttpError> {
        let idp = self;
        let issuer = self.issuer.as_str();
        {
            let path = req.uri().path().to_owned();
            match path.as_str() {
                "/.well-known/openid-configuration" => Ok(json_response(
                    200,
                    &json!({
                        "issuer": issuer,
                        "authorization_endpoint": format!("{issuer}/authorize"),
                        "token_endpoint": format!("{issuer}/token"),
                        "jwks_uri": format!("{issuer}/jwks"),
                        "revocation_endpoint": format!("{issuer}/revoke"),
                        "end_session_endpoint": format!("{issuer}/session/end"),
                        "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    }),
                )),
                "/jwks" => Ok(json_response(200, &json!({"keys": [idp.signer.jwk()]}))),
                "/revoke" => {
                    idp.revoked.borrow_mut().push(form(req, "token"));
                    Ok(json_response(200, &json!({})))
                }
                "/token" if form(req, "grant_type") == "client_credentials" => {
                    let target = format!("{}{}{}", form(req, "resource"), form(req, "scope"), form(req, "audience"));
                    idp.app_grants.borrow_mut().push(target.clone());
                    if let Some(answer) = idp.app_answer.borrow().as_ref() {
                        return answer(&target);
                    }
                    let n = idp.app_grants.borrow().len();
                    Ok(json_response(
                        200,
                        &json!({"access_token": format!("app-token-{n}"), "token_type": "Bearer", "expires_in": 3600}),
                    ))
                }
                "/token" if form(req, "grant_type").starts_with("urn:ietf:params:oauth:grant-type:") => {
                    let grant = form(req, "grant_type");
                    let subject = format!("{}{}", form(req, "subject_token"), form(req, "assertion"));
                    let target = format!("{}{}{}", form(req, "resource"), form(req, "scope"), form(req, "audience"));
                    idp.exchanges.borrow_mut().push((grant, subject.clone(), target));
                    if subject == "refused" {
                        return Ok(json_response(400, &json!({"error": "invalid_grant"})));
                    }
                    let n = idp.exchanges.borrow().len();
                    Ok(json_response(
                        200,
                        &json!({"access_token": format!("obo-token-{n}"), "token_type": "Bearer", "expires_in": 3600}),
                    ))
                }
                "/token" if form(req, "grant_type") == "refresh_token" => {
                    let presented = form(req, "refresh_token");
                    idp.refreshes.borrow_mut().push(presented.clone());
                    if let Some(answer) = idp.refresh_answer.borrow().as_ref() {
                        return answer(&presented);
                    }
                    let n = idp.refreshes.borrow().len();
                    Ok(json_response(
                        200,
                        &json!({
                            "access_token": format!("access-token-{}", n + 1), "token_type": "Bearer",
                            "expires_in": 3600, "refresh_token": format!("refresh-token-{}", n + 1),
                        }),
                    ))
                }
                "/token" => {
                    let nonce = idp.nonce.borrow().clone();
                    if let Some(answer) = idp.token_answer.borrow().as_ref() {
                        return answer(&nonce);
                    }
                    let id_token = idp.signer.sign_claims(&idp.id_claims(&nonce, now));
                    Ok(json_response(200, &idp.token_body(&id_token)))
                }
                _ => Ok(json_response(404, &json!({}))),
            }
        }
    }
}
