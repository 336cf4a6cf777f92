//! Private keys and certificate thumbprints from settings: the PKCS#8 key that signs
//! `private_key_jwt` client assertions (RFC 7523 §2.2) and the `x5t` / `x5t#S256` header values
//! (RFC 7515 §4.1.7–4.1.8) that tell Entra ID which uploaded certificate it belongs to.
//!
//! The key is checked here as far as the structure goes (PEM armour, base64, the PKCS#8
//! `PrivateKeyInfo` sequence and its algorithm), so a pasted key that cannot work is reported
//! at start-up with its fix. Web Crypto (`importKey("pkcs8")`) does the real parse at first use.

use crate::encoding::b64url;
use crate::jwt::JwsAlgorithm;
use base64::Engine;
use std::fmt;

/// DER of a PKCS#8 `PrivateKeyInfo`. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs8Der(Vec<u8>);

impl Pkcs8Der {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Pkcs8Der {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pkcs8Der([redacted])")
    }
}

/// Which kind of key a PKCS#8 document holds (the algorithms Web Crypto can sign JWS with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
}

impl KeyKind {
    /// The signature algorithm used when the setting names none.
    pub fn default_alg(self) -> JwsAlgorithm {
        match self {
            KeyKind::Rsa => JwsAlgorithm::Rs256,
            KeyKind::EcP256 => JwsAlgorithm::Es256,
        }
    }

    /// Whether this key can sign with `alg` (the algorithms offered for signing).
    pub fn signs(self, alg: JwsAlgorithm) -> bool {
        matches!(
            (self, alg),
            (KeyKind::Rsa, JwsAlgorithm::Rs256 | JwsAlgorithm::Ps256) | (KeyKind::EcP256, JwsAlgorithm::Es256)
        )
    }
}

/// A signing key ready to import: DER bytes, the algorithm it signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyConfig {
    pub pkcs8: Pkcs8Der,
    pub alg: JwsAlgorithm,
}

const OID_RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

/// One DER element: its tag, its content, and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 {
            return None;
        }
        let (len_bytes, rest) = (rest.get(..count)?, rest.get(count..)?);
        (len_bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The key kind of a DER `PrivateKeyInfo` (RFC 5208 §5), or why it is not one.
fn pkcs8_kind(der: &[u8]) -> Result<KeyKind, &'static str> {
    const NOT_PKCS8: &str = "is not a PKCS#8 private key";
    let (tag, info, trailing) = der_element(der).ok_or(NOT_PKCS8)?;
    if tag != 0x30 || !trailing.is_empty() {
        return Err(NOT_PKCS8);
    }
    let (tag, _version, rest) = der_element(info).ok_or(NOT_PKCS8)?;
    if tag != 0x02 {
        return Err(NOT_PKCS8);
    }
    let (tag, algorithm, rest) = der_element(rest).ok_or(NOT_PKCS8)?;
    let (key_tag, key, _attributes) = der_element(rest).ok_or(NOT_PKCS8)?;
    if tag != 0x30 || key_tag != 0x04 || key.is_empty() {
        return Err(NOT_PKCS8);
    }
    let (tag, oid, params) = der_element(algorithm).ok_or(NOT_PKCS8)?;
    if tag != 0x06 {
        return Err(NOT_PKCS8);
    }
    if oid == OID_RSA_ENCRYPTION {
        return Ok(KeyKind::Rsa);
    }
    if oid == OID_EC_PUBLIC_KEY {
        return match der_element(params) {
            Some((0x06, curve, _)) if curve == OID_PRIME256V1 => Ok(KeyKind::EcP256),
            _ => Err("is an EC key on a curve other than P-256"),
        };
    }
    Err("holds a key type other than RSA or EC P-256")
}

/// Parse a PEM `PRIVATE KEY` (PKCS#8). Literal `\n` sequences count as line breaks, so a key
/// pasted into a one-line secret still works.
pub fn parse_pkcs8_pem(raw: &str) -> Result<(Pkcs8Der, KeyKind), String> {
    let text = raw.replace("\\n", "\n");
    let text = text.trim();
    if text.contains("BEGIN RSA PRIVATE KEY") || text.contains("BEGIN EC PRIVATE KEY") {
        return Err("is a PKCS#1/SEC1 key, not PKCS#8".into());
    }
    if text.contains("BEGIN ENCRYPTED PRIVATE KEY") {
        return Err("is encrypted with a passphrase".into());
    }
    let body = text
        .strip_prefix("-----BEGIN PRIVATE KEY-----")
        .and_then(|t| t.strip_suffix("-----END PRIVATE KEY-----"))
        .ok_or("is not a PEM block starting -----BEGIN PRIVATE KEY-----")?;
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| "has a PEM body that is not base64".to_owned())?;
    let kind = pkcs8_kind(&der)?;
    Ok((Pkcs8Der(der), kind))
}

/// The contents of the `privateKey` OCTET STRING of a `PrivateKeyInfo`.
fn pkcs8_private_key(der: &[u8]) -> Option<&[u8]> {
    let (_, info, _) = der_element(der)?;
    let (_, _version, rest) = der_element(info)?;
    let (_, _algorithm, rest) = der_element(rest)?;
    let (_, key, _) = der_element(rest)?;
    Some(key)
}

/// An unsigned big-endian DER INTEGER without its sign-padding zero.
fn unsigned(int: &[u8]) -> &[u8] {
    match int.split_first() {
        Some((0, rest)) if !rest.is_empty() => rest,
        _ => int,
    }
}

/// The public half of a PKCS#8 key as JWK members (RFC 7518 §6.2.1, §6.3.1), read from the
/// private key itself (RSA `n`/`e`; the SEC1 `publicKey` of an EC key). `None` when the key
/// does not carry them (an EC key written without its public point).
pub fn public_jwk_members(der: &Pkcs8Der, kind: KeyKind) -> Option<Vec<(&'static str, String)>> {
    let key = pkcs8_private_key(der.bytes())?;
    let (_, fields, _) = der_element(key)?;
    let (_, _version, rest) = der_element(fields)?;
    match kind {
        KeyKind::Rsa => {
            let (_, n, rest) = der_element(rest)?;
            let (_, e, _) = der_element(rest)?;
            Some(vec![("e", b64url(unsigned(e))), ("kty", "RSA".into()), ("n", b64url(unsigned(n)))])
        }
        KeyKind::EcP256 => {
            let (_, _private, mut rest) = der_element(rest)?;
            while let Some((tag, content, next)) = der_element(rest) {
                if tag == 0xA1 {
                    let (_, bits, _) = der_element(content)?;
                    // BIT STRING: unused-bits byte, then the uncompressed point 04 || x || y.
                    let point = bits.get(1..)?;
                    let (x, y) = (point.get(1..33)?, point.get(33..65)?);
                    return (point.first() == Some(&4) && point.len() == 65).then(|| {
                        vec![("crv", "P-256".into()), ("kty", "EC".into()), ("x", b64url(x)), ("y", b64url(y))]
                    });
                }
                rest = next;
            }
            None
        }
    }
}

/// A certificate thumbprint as written by openssl or the Entra portal (hex, colons allowed)
/// turned into the base64url header value; `len` is the digest size in bytes.
pub fn parse_thumbprint(raw: &str, len: usize) -> Result<String, String> {
    let hex: String = raw.trim().chars().filter(|c| *c != ':' && !c.is_ascii_whitespace()).collect();
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("is not hexadecimal".into());
    }
    if hex.len() != len * 2 {
        return Err(format!("has {} hex digits; this digest has {}", hex.len(), len * 2));
    }
    let bytes: Vec<u8> =
        (0..len).filter_map(|i| hex.get(i * 2..i * 2 + 2)).filter_map(|h| u8::from_str_radix(h, 16).ok()).collect();
    Ok(b64url(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testkit::native_crypto::{TestKey, rsa_a_pem};

    fn rsa_pem() -> String {
        rsa_a_pem()
    }

    #[test]
    fn reads_rsa_and_ec_pkcs8() {
        let (der, kind) = parse_pkcs8_pem(&rsa_pem()).unwrap();
        assert_eq!(kind, KeyKind::Rsa);
        assert!(der.bytes().len() > 1000);
        assert_eq!(format!("{der:?}"), "Pkcs8Der([redacted])");
        let one_line = rsa_pem().replace('\n', "\\n");
        assert_eq!(parse_pkcs8_pem(&one_line).unwrap().1, KeyKind::Rsa);
        let (_, ec) = TestKey::es256_with_pem();
        assert_eq!(parse_pkcs8_pem(&ec).unwrap().1, KeyKind::EcP256);
    }

    #[test]
    fn names_what_is_wrong_with_a_key() {
        for (pem, why) in [
            ("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----", "PKCS#1"),
            ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----", "passphrase"),
            ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "BEGIN PRIVATE KEY"),
            ("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----", "base64"),
            ("-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----", "PKCS#8"),
        ] {
            let err = parse_pkcs8_pem(pem).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        let truncated = rsa_pem().replacen("\n", "\nAAAA", 1);
        assert!(parse_pkcs8_pem(&truncated).is_err());
    }

    #[test]
    fn public_halves_match_the_keys() {
        let (der, kind) = parse_pkcs8_pem(&rsa_pem()).unwrap();
        let members: std::collections::HashMap<_, _> = public_jwk_members(&der, kind).unwrap().into_iter().collect();
        let expected = TestKey::rsa_a().jwk("");
        assert_eq!(members["n"], expected["n"].as_str().unwrap());
        assert_eq!(members["e"], expected["e"].as_str().unwrap());
        let (key, pem) = TestKey::es256_with_pem();
        let (der, kind) = parse_pkcs8_pem(&pem).unwrap();
        let members: std::collections::HashMap<_, _> = public_jwk_members(&der, kind).unwrap().into_iter().collect();
        assert_eq!(members["x"], key.jwk("")["x"].as_str().unwrap());
        assert_eq!(members["y"], key.jwk("")["y"].as_str().unwrap());
    }

    #[test]
    fn thumbprints_become_base64url_and_wrong_lengths_are_named() {
        let sha1 = "5B:AA:61:E4:C9:B9:3F:3F:06:82:25:0B:6C:F8:33:1B:7E:E6:8F:D8";
        assert_eq!(parse_thumbprint(sha1, 20).unwrap(), "W6ph5Mm5Pz8GgiULbPgzG37mj9g");
        assert!(parse_thumbprint(sha1, 32).unwrap_err().contains("40 hex digits"));
        assert!(parse_thumbprint("zz", 1).is_err());
    }
}
