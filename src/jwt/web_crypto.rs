//! What Web Crypto (`crypto.subtle`, W3C Web Cryptography API §§ 20–23) needs to hear for each
//! JWS algorithm, as plain data: the algorithm parameters of `importKey` and of `verify`/`sign`,
//! and the JWK to import. The edge only copies them into JS objects.

use super::{HashAlg, Jwk, JwsAlgorithm};

/// One Web Crypto algorithm parameter object (`{ name, hash?, namedCurve?, saltLength? }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebCryptoParams {
    pub name: &'static str,
    pub hash: Option<&'static str>,
    pub named_curve: Option<&'static str>,
    /// RSA-PSS salt length in bytes.
    pub salt_length: Option<u32>,
}

impl WebCryptoParams {
    const fn named(name: &'static str) -> Self {
        Self { name, hash: None, named_curve: None, salt_length: None }
    }
}

impl HashAlg {
    /// Web Crypto's name of the hash.
    pub fn web_crypto_name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
        }
    }

    fn len(self) -> u32 {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }
}

impl JwsAlgorithm {
    /// The `importKey` parameters: RSA keys are bound to their hash, EC keys to their curve.
    pub fn web_crypto_import(self) -> WebCryptoParams {
        let hash = Some(self.hash().web_crypto_name());
        match self {
            Self::Rs256 | Self::Rs384 | Self::Rs512 => {
                WebCryptoParams { hash, ..WebCryptoParams::named("RSASSA-PKCS1-v1_5") }
            }
            Self::Ps256 | Self::Ps384 | Self::Ps512 => WebCryptoParams { hash, ..WebCryptoParams::named("RSA-PSS") },
            Self::Es256 => WebCryptoParams { named_curve: Some("P-256"), ..WebCryptoParams::named("ECDSA") },
            Self::Es384 => WebCryptoParams { named_curve: Some("P-384"), ..WebCryptoParams::named("ECDSA") },
            Self::EdDsa => WebCryptoParams::named("Ed25519"),
        }
    }

    /// The `verify` (and `sign`) parameters: PSS salt = hash length (RFC 7518 §3.5); ECDSA
    /// names its hash here, not at import.
    pub fn web_crypto_verify(self) -> WebCryptoParams {
        match self {
            Self::Rs256 | Self::Rs384 | Self::Rs512 => WebCryptoParams::named("RSASSA-PKCS1-v1_5"),
            Self::Ps256 | Self::Ps384 | Self::Ps512 => {
                WebCryptoParams { salt_length: Some(self.hash().len()), ..WebCryptoParams::named("RSA-PSS") }
            }
            Self::Es256 | Self::Es384 => {
                WebCryptoParams { hash: Some(self.hash().web_crypto_name()), ..WebCryptoParams::named("ECDSA") }
            }
            Self::EdDsa => WebCryptoParams::named("Ed25519"),
        }
    }
}

/// The JWK to hand `importKey("jwk", ...)`: key material only. A JWK's own `alg` would pin the
/// key to one algorithm (and `use`/`key_ops` to uses), and the core already decided which
/// algorithm this import is for.
pub fn import_jwk(jwk: &Jwk) -> String {
    let mut material = serde_json::Map::new();
    material.insert("kty".into(), jwk.kty.clone().into());
    for (name, value) in [("n", &jwk.n), ("e", &jwk.e), ("crv", &jwk.crv), ("x", &jwk.x), ("y", &jwk.y)] {
        if let Some(value) = value {
            material.insert(name.into(), value.clone().into());
        }
    }
    serde_json::Value::Object(material).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_keys_are_imported_for_their_hash_and_verified_by_name() {
        let import = JwsAlgorithm::Rs384.web_crypto_import();
        assert_eq!((import.name, import.hash), ("RSASSA-PKCS1-v1_5", Some("SHA-384")));
        assert_eq!(JwsAlgorithm::Rs384.web_crypto_verify(), WebCryptoParams::named("RSASSA-PKCS1-v1_5"));
    }

    #[test]
    fn pss_salt_is_the_hash_length() {
        let salts: Vec<_> = [JwsAlgorithm::Ps256, JwsAlgorithm::Ps384, JwsAlgorithm::Ps512]
            .map(|alg| (alg.web_crypto_import().hash, alg.web_crypto_verify().salt_length))
            .into();
        assert_eq!(salts, [(Some("SHA-256"), Some(32)), (Some("SHA-384"), Some(48)), (Some("SHA-512"), Some(64))]);
    }

    #[test]
    fn ecdsa_imports_name_the_curve_and_verifies_name_the_hash() {
        let (import, verify) = (JwsAlgorithm::Es384.web_crypto_import(), JwsAlgorithm::Es384.web_crypto_verify());
        assert_eq!((import.name, import.named_curve, import.hash), ("ECDSA", Some("P-384"), None));
        assert_eq!((verify.name, verify.hash), ("ECDSA", Some("SHA-384")));
        assert_eq!(JwsAlgorithm::Es256.web_crypto_import().named_curve, Some("P-256"));
        assert_eq!(JwsAlgorithm::EdDsa.web_crypto_verify(), WebCryptoParams::named("Ed25519"));
    }

    #[test]
    fn the_imported_jwk_carries_key_material_only() {
        let jwk: Jwk = crate::json::decode(
            br#"{"kty":"EC","kid":"k1","use":"sig","alg":"ES256","key_ops":["verify"],"crv":"P-256","x":"xx","y":"yy"}"#,
        )
        .unwrap();
        assert_eq!(import_jwk(&jwk), r#"{"crv":"P-256","kty":"EC","x":"xx","y":"yy"}"#);
    }
}
