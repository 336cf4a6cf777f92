//! JWT validation for tokens issued by an OpenID Connect provider: ID tokens (OIDC Core
//! §3.1.3.7) and JWT access tokens (RFC 9068), following the JWT BCP (RFC 8725).
//!
//! The pipeline, one module per step:
//! 1. [`parse`]: [`UnverifiedJwt::parse`] — structure, strict base64url, strict JSON, and the
//!    header rules (asymmetric `alg` only, no `crit`, no embedded keys) — RFC 7515 §5.2, §7.1.
//! 2. [`cache`]: [`JwksCache`] — the provider's keys, fetched on first use, refreshed by
//!    `Cache-Control`, refetched (rate-limited, coalesced) for an unknown `kid`, last-known-good
//!    on provider failure — RFC 7517 §5.
//! 3. [`keys`]: [`Jwks`] and [`KeySet`] — which keys may verify, which one a token names, and
//!    imported keys cached per algorithm — RFC 7517 §4, RFC 7518 §6.
//! 4. [`verify()`](verify::verify): algorithm allow-list, signature shape, signature — RFC 7515
//!    §5.2, RFC 7518 §3.
//! 5. [`claims`]: [`ClaimRules`] — `iss`, `aud`, `exp`, `nbf`, `iat`, `typ` — RFC 7519 §4.1,
//!    RFC 9068 §4, giving a [`VerifiedJwt`].
//!
//! 6. [`verified_cache`]: [`VerifiedTokenCache`] — bearer tokens already verified in full, by
//!    the hash of the whole token, so a repeated token costs a hash and a claims re-check.
//!
//! [`verify_with_cache`] runs steps 2–5 for the gateway. Time is always an input; nothing here
//! reads a clock or panics (a panic would kill the Worker isolate).

pub mod alg;
pub mod cache;
pub mod claims;
pub mod error;
mod http_cache;

pub mod jwk;
pub mod keys;
pub mod parse;
pub mod sign;
pub mod verified;
pub mod verified_cache;
pub mod verify;
pub mod web_crypto;

pub use alg::{HashAlg, JwsAlgorithm, KeyFamily, UnsupportedAlgorithm};
pub use cache::{CacheEvent, JwksCache, JwksCachePolicy, KeyLookup};
pub use claims::{ClaimRules, DEFAULT_LEEWAY_SECS, IssuerRule, TENANT_PLACEHOLDER, TenantAllowList, is_tenant_guid};
pub use error::{ErrorClass, JwksError, JwtError};
pub use jwk::Jwk;
pub use keys::{Jwks, KeySet, UsableKey};
pub use parse::{DEFAULT_MAX_TOKEN_LEN, JwtHeader, UnverifiedJwt};
pub use sign::{SigningKeySlot, signing_input};
pub use verified::VerifiedJwt;
pub use verified_cache::{CachedVerdict, TokenDigest, VerifiedTokenCache};
pub use verify::{Verification, verify, verify_signature, verify_with_cache};
