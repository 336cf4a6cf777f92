//! URL settings: which schemes and hosts are acceptable for the issuer, the gateway and origins.

use std::net::IpAddr;
use url::{Host, Url};

/// True for hosts that can only be reached from this machine: `localhost`, `*.localhost`,
/// 127.0.0.0/8 and `::1`. Plain http is tolerated only there (local demos and tests).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parse an absolute http(s) URL with a host and no credentials, fragment or query.
fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must start with https:// (or http:// on a loopback host)".into());
    }
    if url.host().is_none() {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query (?...) or fragment (#...)".into());
    }
    Ok(url)
}

/// A URL that must be https unless it points at loopback.
pub fn parse_secure_url(raw: &str) -> Result<Url, String> {
    let url = parse_base_url(raw)?;
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(format!(
            "uses plain http on a non-loopback host ({}); use https",
            url.host_str().unwrap_or_default()
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in ["http://localhost:1", "http://a.localhost", "http://127.0.0.9", "http://[::1]:8"] {
            assert!(is_loopback(&Url::parse(ok).unwrap()), "{ok}");
        }
        for no in ["http://localhost.evil.com", "http://10.0.0.1", "http://example.com"] {
            assert!(!is_loopback(&Url::parse(no).unwrap()), "{no}");
        }
    }

    #[test]
    fn http_only_on_loopback() {
        assert!(parse_secure_url("http://127.0.0.1:9000").is_ok());
        assert!(parse_secure_url("https://idp.example.com/tenant/v2.0").is_ok());
        let err = parse_secure_url("http://idp.example.com").unwrap_err();
        assert!(err.contains("plain http"), "{err}");
        assert!(parse_secure_url("ftp://idp.example.com").is_err());
        assert!(parse_secure_url("https://user:pw@idp.example.com").is_err());
        assert!(parse_secure_url("not a url").is_err());
    }
}
