//! The session: a random id in the browser, the tokens and identity on the server.

use super::cookie::{self, SESSION_COOKIE};
use super::keys::{Purpose, SessionKeys};
use super::transaction::random_nonce;
use crate::encoding::{b64url, b64url_decode, hex, sha256};
use crate::ports::Rng;
use serde::{Deserialize, Serialize};

/// A 256-bit random session id. Only its hash is used as a storage key.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId([u8; 32]);

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

impl SessionId {
    pub fn generate(rng: &impl Rng) -> Self {
        let mut id = [0u8; 32];
        rng.fill(&mut id);
        Self(id)
    }

    /// The KV key for this session's record: a hash, so neither KV listings nor logs reveal a
    /// usable session id (see README, "KV key schema").
    pub fn storage_key(&self) -> String {
        format!("session:v1:{}", hex(&sha256(&self.0)))
    }
}

/// What the `__Host-edgeguard` cookie holds: the id, when the session ends for sure, and when it
/// ends if unused. Keeping the idle deadline in the cookie enforces idle timeouts with no KV
/// write per request; the cookie is re-sealed only when the deadline moves far enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookie {
    pub id: SessionId,
    pub expires_at: u64,
    pub idle_until: u64,
}

impl SessionCookie {
    pub fn to_set_cookie(&self, keys: &SessionKeys, rng: &impl Rng, now: u64) -> String {
        self.to_set_cookie_named(SESSION_COOKIE, keys, rng, now)
    }

    /// [`Self::to_set_cookie`] for the cookie `name` (one per provider, see
    /// [`cookie::session_cookie_name`]). The name is sealed in, so a cookie cannot be renamed
    /// into another provider's.
    pub fn to_set_cookie_named(&self, name: &str, keys: &SessionKeys, rng: &impl Rng, now: u64) -> String {
        let mut plain = Vec::with_capacity(48);
        plain.extend_from_slice(&self.id.0);
        plain.extend_from_slice(&self.expires_at.to_be_bytes());
        plain.extend_from_slice(&self.idle_until.to_be_bytes());
        let sealed = keys.seal(Purpose::Cookie, name.as_bytes(), &plain, random_nonce(rng));
        cookie::set_cookie(name, &b64url(&sealed), "/", self.expires_at.saturating_sub(now))
    }

    pub(super) fn open(name: &str, value: &str, keys: &SessionKeys) -> Option<Self> {
        if value.len() > cookie::MAX_COOKIE_VALUE_LEN {
            return None;
        }
        let plain = keys.open(Purpose::Cookie, name.as_bytes(), &b64url_decode(value)?)?;
        let (id, rest) = plain.split_at_checked(32)?;
        let (expiry, idle) = rest.split_at_checked(8)?;
        Some(SessionCookie {
            id: SessionId(id.try_into().ok()?),
            expires_at: u64::from_be_bytes(expiry.try_into().ok()?),
            idle_until: u64::from_be_bytes(idle.try_into().ok()?),
        })
    }

    /// The first `__Host-edgeguard` cookie that opens (whether or not it has expired: the
    /// caller says why a session ended).
    pub fn from_cookie_header(header: &str, keys: &SessionKeys) -> Option<Self> {
        Self::from_cookie_header_named(header, SESSION_COOKIE, keys)
    }

    /// [`Self::from_cookie_header`] for the cookie `name`.
    pub fn from_cookie_header_named(header: &str, name: &str, keys: &SessionKeys) -> Option<Self> {
        cookie::parse_cookie_header(header)
            .filter(|(n, _)| *n == name)
            .find_map(|(_, value)| Self::open(name, value, keys))
    }

    /// Why this session is over at `now`, if it is.
    pub fn ended(&self, now: u64) -> Option<&'static str> {
        if now >= self.expires_at {
            Some("session_expired")
        } else if now >= self.idle_until {
            Some("session_idle_timeout")
        } else {
            None
        }
    }

    /// The cookie with its idle deadline moved to `now + idle_secs`, when at least half of the
    /// idle period has passed since it was last moved (so it is re-set rarely, not per request).
    pub fn touched(&self, now: u64, idle_secs: u64) -> Option<Self> {
        let remaining = self.idle_until.saturating_sub(now);
        (remaining < idle_secs / 2).then(|| SessionCookie {
            id: self.id.clone(),
            expires_at: self.expires_at,
            idle_until: now.saturating_add(idle_secs).min(self.expires_at),
        })
    }
}

/// Who signed in, as the origin will be told, and what route policies may ask of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identity {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// What the ID token stated about `email` (see [`crate::policy::email_verified`]); records
    /// written before this field count as stating nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// App roles from the ID token (`roles`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Groups from the ID token (`groups`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Tenant from the ID token (`tid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Entra's stable user id in the tenant (`oid`); `sub` is pairwise per application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// Entra directory roles (`wids`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wids: Vec<String>,
    /// The ID token's group list was cut off (Entra group overage).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub groups_overage: bool,
    /// The provider's session id (`sid`), for back-channel logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// How the user authenticated (`acr`), for routes that require a level (step-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// When the user authenticated (`auth_time`), for routes that require a recent sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// Scopes granted with the access token (the token response's `scope`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

impl Identity {
    /// The view route requirements are checked against.
    pub fn claims(&self) -> crate::policy::Claims<'_> {
        crate::policy::Claims {
            scopes: self.scopes.iter().map(String::as_str).collect(),
            roles: self.roles.iter().map(String::as_str).collect(),
            groups: self.groups.iter().map(String::as_str).collect(),
            tenant: self.tenant.as_deref(),
            wids: self.wids.iter().map(String::as_str).collect(),
            caller: Some(crate::entra::CallerKind::User),
            groups_overage: self.groups_overage,
        }
    }
}

/// The server-side session, encrypted at rest in KV.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub identity: Identity,
    pub access_token: String,
    /// Unix seconds; `None` when the provider gave no `expires_in`.
    pub access_expires_at: Option<u64>,
    /// When the access token was issued (Unix seconds), so the refresh margin can follow its
    /// lifetime; `None` in records written before it was kept.
    #[serde(default)]
    pub access_issued_at: Option<u64>,
    pub refresh_token: Option<String>,
    /// Kept for RP-initiated logout (`id_token_hint`).
    pub id_token: String,

    pub created_at: u64,
    pub expires_at: u64,
    /// The provider the user signed in with (its name in the provider table); empty in
    /// records written before there could be several, which belong to the default provider.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("identity", &self.identity)
            .field("access_expires_at", &self.access_expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl SessionRecord {
    /// The claims of the ID token the session was signed in with (verified at the callback),
    /// for routes that forward claims as headers. `None` if it no longer parses.
    pub fn id_token_claims(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let jwt = crate::jwt::UnverifiedJwt::parse(&self.id_token, crate::jwt::DEFAULT_MAX_TOKEN_LEN).ok()?;
        Some(jwt.unverified_claims().clone())
    }

    /// Encrypt for KV under `storage_key` (also the AAD, so records cannot be swapped).
    pub fn seal(&self, storage_key: &str, keys: &SessionKeys, rng: &impl Rng) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        keys.seal(Purpose::Store, storage_key.as_bytes(), &json, random_nonce(rng))
    }

    pub fn open(sealed: &[u8], storage_key: &str, keys: &SessionKeys) -> Option<Self> {
        let json = keys.open(Purpose::Store, storage_key.as_bytes(), sealed)?;
        crate::json::decode(&json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::FakeRng;

    fn keys() -> SessionKeys {
        SessionKeys::derive(&["a-test-secret-that-is-long-enough-0001"])
    }

    #[test]
    fn cookie_round_trip_expiry_and_idle() {
        let rng = FakeRng::new(9);
        let c = SessionCookie { id: SessionId::generate(&rng), expires_at: 2000, idle_until: 1600 };
        let set = c.to_set_cookie(&keys(), &rng, 1000);
        assert!(set.starts_with("__Host-edgeguard="));
        assert!(set.contains("Path=/; Max-Age=1000; HttpOnly; Secure; SameSite=Lax"));
        // small: an id and two deadlines, never tokens
        assert!(set.len() < 220, "{}", set.len());
        let header = set.split(';').next().unwrap();
        let opened = SessionCookie::from_cookie_header(header, &keys()).unwrap();
        assert_eq!(opened, c);
        assert_eq!(opened.ended(1599), None);
        assert_eq!(opened.ended(1600), Some("session_idle_timeout"));
        assert_eq!(opened.ended(2000), Some("session_expired"));
    }

    #[test]
    fn idle_deadline_moves_rarely_and_never_past_expiry() {
        let rng = FakeRng::new(9);
        let c = SessionCookie { id: SessionId::generate(&rng), expires_at: 10_000, idle_until: 1600 };
        assert_eq!(c.touched(1000, 600), None, "600 s left of 600: nothing to do");
        assert_eq!(c.touched(1200, 600), None, "400 s left: still more than half");
        assert_eq!(c.touched(1400, 600).unwrap().idle_until, 2000);
        assert_eq!(c.touched(1400, 600).unwrap().id, c.id);
        let near_end = SessionCookie { idle_until: 9_900, ..c };
        assert_eq!(near_end.touched(9_800, 600).unwrap().idle_until, 10_000);
    }

    #[test]
    fn tampered_cookie_is_refused() {
        let rng = FakeRng::new(9);
        let c = SessionCookie { id: SessionId::generate(&rng), expires_at: 2000, idle_until: 2000 };
        let set = c.to_set_cookie(&keys(), &rng, 1000);
        let value = set.split(';').next().unwrap().trim_start_matches("__Host-edgeguard=");
        let mut chars: Vec<char> = value.chars().collect();
        chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert_eq!(SessionCookie::from_cookie_header(&format!("__Host-edgeguard={tampered}"), &keys()), None);
        assert_eq!(SessionCookie::from_cookie_header("__Host-edgeguard=%%%", &keys()), None);
    }

    #[test]
    fn record_round_trip_is_bound_to_its_key() {
        let rng = FakeRng::new(5);
        let record = SessionRecord {
            identity: Identity { sub: "alice".into(), ..Default::default() },
            access_token: "at".into(),
            access_expires_at: Some(10),
            access_issued_at: Some(1),
            refresh_token: Some("rt".into()),
            id_token: "idt".into(),
            created_at: 1,
            expires_at: 2,
            provider: "partners".into(),
        };
        let sealed = record.seal("session:v1:a", &keys(), &rng);
        assert!(!String::from_utf8_lossy(&sealed).contains("rt"));
        assert_eq!(SessionRecord::open(&sealed, "session:v1:a", &keys()), Some(record.clone()));
        assert_eq!(SessionRecord::open(&sealed, "session:v1:b", &keys()), None);
        assert!(!format!("{record:?}").contains("\"rt\""));
    }
}
