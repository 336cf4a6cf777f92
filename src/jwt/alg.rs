//! JWS algorithms the gateway accepts from identity providers (RFC 7518 §3). Asymmetric only:
//! `none` and the HMAC family are not representable, so they can never be selected (RFC 8725 §3.1).

use std::fmt;
use std::str::FromStr;

/// A public-key JWS algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JwsAlgorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

/// The hash a signature algorithm uses (also picks the `at_hash` half-hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

/// The JWK key type (`kty`) an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    /// Elliptic curve with the named `crv`.
    Ec(&'static str),
    /// Octet key pair (Ed25519).
    Okp,
}

impl JwsAlgorithm {
    pub const ALL: [JwsAlgorithm; 9] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Es256,
        Self::Es384,
        Self::EdDsa,
    ];

    /// The JOSE name, as in a token's `alg` header.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn hash(self) -> HashAlg {
        match self {
            Self::Rs256 | Self::Ps256 | Self::Es256 => HashAlg::Sha256,
            Self::Rs384 | Self::Ps384 | Self::Es384 => HashAlg::Sha384,
            Self::Rs512 | Self::Ps512 | Self::EdDsa => HashAlg::Sha512,
        }
    }

    pub fn key_family(self) -> KeyFamily {
        match self {
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512 => KeyFamily::Rsa,
            Self::Es256 => KeyFamily::Ec("P-256"),
            Self::Es384 => KeyFamily::Ec("P-384"),
            Self::EdDsa => KeyFamily::Okp,
        }
    }

    /// The exact length of a JOSE ECDSA signature (`r || s`), if this is ECDSA.
    pub fn ecdsa_signature_len(self) -> Option<usize> {
        match self {
            Self::Es256 => Some(64),
            Self::Es384 => Some(96),
            _ => None,
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `alg` is not one the gateway can ever accept (`none`, `HS256`, unknown names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported JWS algorithm {0:?}")]
pub struct UnsupportedAlgorithm(pub String);

impl FromStr for JwsAlgorithm {
    type Err = UnsupportedAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|alg| alg.name() == s).ok_or_else(|| UnsupportedAlgorithm(s.to_owned()))
    }
}
