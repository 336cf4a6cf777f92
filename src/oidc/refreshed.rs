//! The ID token of a refresh response (OIDC Core §12.2) against the session's: the signature,
//! `iss`, `aud`/`azp`, `exp`, `iat` and `at_hash` are checked as at sign-in
//! ([`super::validate_id_token`]); this checks that it is still the same user and the same
//! authentication, and builds the identity the session takes from it.

use crate::jwt::{DEFAULT_MAX_TOKEN_LEN, UnverifiedJwt};
use crate::session::Identity;
use serde_json::Value;

/// Why a refreshed ID token is not the session's user, or not the same authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContinuityError {
    /// `sub` is another user's (§12.2: it MUST be the same).
    #[error("sub differs from the session's")]
    SubChanged,
    /// `auth_time` is present and not the sign-in's (§12.2: it is the original authentication).
    #[error("auth_time differs from the session's")]
    AuthTimeChanged,
    /// `nonce` is present and not the sign-in's ID token's (§12.2).
    #[error("nonce differs from the session's ID token")]
    NonceChanged,
    /// Entra's `oid` or `tid` changed: another account or another tenant, whatever `sub` says.
    #[error("oid or tid differs from the session's")]
    DirectoryIdChanged,
}

impl ContinuityError {
    pub fn reason(&self) -> &'static str {
        match self {
            ContinuityError::SubChanged => "sub_changed",
            ContinuityError::AuthTimeChanged => "auth_time_changed",
            ContinuityError::NonceChanged => "nonce_changed",
            ContinuityError::DirectoryIdChanged => "directory_id_changed",
        }
    }
}

fn nonce_of(id_token: &str) -> Option<String> {
    let jwt = UnverifiedJwt::parse(id_token, DEFAULT_MAX_TOKEN_LEN).ok()?;
    jwt.unverified_claims().get("nonce").and_then(Value::as_str).map(str::to_owned)
}

/// The identity a session signed in as `before` (with ID token `before_id_token`) takes from
/// a refresh's verified ID token `new_id_token` and its identity `after`, or why it may not.
///
/// Claims about the user (e-mail, name, groups, roles, `acr`) follow the new token: that is how
/// a change at the provider reaches the origin without a new sign-in. What is not about the
/// token is kept: the scopes granted at sign-in, and `sid` (the back-channel logout index was
/// written with it). A claim the new token leaves out that names the original authentication
/// (`auth_time`, `acr`) keeps its sign-in value, so step-up rules see the same sign-in.
pub fn refreshed_identity(
    before: &Identity,
    before_id_token: &str,
    new_id_token: &str,
    after: Identity,
) -> Result<Identity, ContinuityError> {
    if after.sub != before.sub {
        return Err(ContinuityError::SubChanged);
    }
    if after.oid != before.oid || after.tenant != before.tenant {
        return Err(ContinuityError::DirectoryIdChanged);
    }
    if let (Some(was), Some(is)) = (before.auth_time, after.auth_time)
        && was != is
    {
        return Err(ContinuityError::AuthTimeChanged);
    }
    if let Some(nonce) = nonce_of(new_id_token)
        && nonce_of(before_id_token).as_deref() != Some(nonce.as_str())
    {
        return Err(ContinuityError::NonceChanged);
    }
    Ok(Identity {
        auth_time: after.auth_time.or(before.auth_time),
        acr: after.acr.or_else(|| before.acr.clone()),
        sid: before.sid.clone(),
        scopes: before.scopes.clone(),
        ..after
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::b64url;
    use serde_json::json;

    fn token(claims: &Value) -> String {
        format!("{}.{}.c2ln", b64url(br#"{"alg":"RS256"}"#), b64url(claims.to_string().as_bytes()))
    }

    fn alice() -> Identity {
        Identity {
            sub: "alice".into(),
            oid: Some("o-1".into()),
            tenant: Some("t-1".into()),
            auth_time: Some(100),
            acr: Some("mfa".into()),
            sid: Some("sid-1".into()),
            scopes: vec!["api.read".into()],
            groups: vec!["staff".into()],
            ..Default::default()
        }
    }

    #[test]
    fn user_claims_follow_the_new_token_and_the_sign_in_facts_stay() {
        let before = token(&json!({"sub": "alice", "nonce": "n-1"}));
        let new = token(&json!({"sub": "alice", "nonce": "n-1"}));
        let after = Identity {
            groups: vec!["admins".into()],
            email: Some("a@new.example".into()),
            auth_time: None,
            acr: None,
            sid: None,
            scopes: Vec::new(),
            ..alice()
        };
        let got = refreshed_identity(&alice(), &before, &new, after).unwrap();
        assert_eq!(got.groups, vec!["admins"]);
        assert_eq!(got.email.as_deref(), Some("a@new.example"));
        assert_eq!((got.auth_time, got.acr.as_deref(), got.sid.as_deref()), (Some(100), Some("mfa"), Some("sid-1")));
        assert_eq!(got.scopes, vec!["api.read"]);
    }

    #[test]
    fn another_user_tenant_authentication_or_nonce_is_refused() {
        let signed_in = token(&json!({"sub": "alice", "nonce": "n-1"}));
        let same = token(&json!({"sub": "alice"}));
        let cases: Vec<(Identity, String, ContinuityError)> = vec![
            (Identity { sub: "mallory".into(), ..alice() }, same.clone(), ContinuityError::SubChanged),
            (Identity { oid: Some("o-2".into()), ..alice() }, same.clone(), ContinuityError::DirectoryIdChanged),
            (Identity { tenant: None, ..alice() }, same.clone(), ContinuityError::DirectoryIdChanged),
            (Identity { auth_time: Some(101), ..alice() }, same.clone(), ContinuityError::AuthTimeChanged),
            (alice(), token(&json!({"sub": "alice", "nonce": "n-2"})), ContinuityError::NonceChanged),
        ];
        for (after, new, want) in cases {
            assert_eq!(refreshed_identity(&alice(), &signed_in, &new, after), Err(want));
        }
        // No nonce in the refreshed token is fine (§12.2 does not require one).
        assert!(refreshed_identity(&alice(), &signed_in, &same, alice()).is_ok());
    }
}
