//! A route's identity headers from claims (`headers` route field) and Easy Auth's
//! `X-MS-CLIENT-PRINCIPAL` (`client_principal`): which header carries which claim, in which
//! format, up to which size. Names are checked here, at start-up, so a typo or a header the
//! gateway owns is an error naming the route, never a surprise at the origin.

use serde_json::{Map, Value};

/// The size cap of one claim header unless the route sets `max_bytes`: what Pomerium and
/// oauth2-proxy origins can take behind common proxies (8 KiB header limits in total).
pub const DEFAULT_CLAIM_HEADER_MAX: usize = 4096;
/// The largest `max_bytes` accepted: origins behind nginx or IIS refuse larger single headers.
pub const MAX_CLAIM_HEADER_MAX: usize = 16 * 1024;
/// The cap of `X-MS-CLIENT-PRINCIPAL` (base64 of every claim): Entra ID tokens with groups run
/// to several KiB; past this the header is left out (and logged), like an over-size claim.
pub const CLIENT_PRINCIPAL_MAX: usize = 16 * 1024;

/// How a claim's value becomes header text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClaimFormat {
    /// A string as is; a number or boolean as its JSON text; a list of those joined with `,`.
    /// Printable ASCII only, and no `,` inside a list member: otherwise the header is left out
    /// (use `json` for such claims).
    #[default]
    Comma,
    /// The claim as compact JSON, non-ASCII characters escaped as `\uXXXX`, so any claim
    /// travels intact.
    Json,
}

/// One mapped header of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    /// Lower-case header name.
    pub name: String,
    /// The claim: a top-level name, or a dotted path into nested objects (`address.country`)
    /// when no top-level claim has the whole name (namespaced claims contain dots).
    pub claim: String,
    pub format: ClaimFormat,
    /// Longest value sent; a longer one leaves the header out.
    pub max_bytes: usize,
}

/// One mapping as written: `"groups"` or `{"claim": "groups", "format": "json", "max_bytes": 100}`.
/// Read from the JSON value by hand rather than by a derived untagged enum, which costs
/// kilobytes of wasm for two shapes.
fn parse_mapping(name: &str, mapping: &Value) -> Result<(String, ClaimFormat, usize), String> {
    let fields = match mapping {
        Value::String(claim) => return Ok((claim.clone(), ClaimFormat::Comma, DEFAULT_CLAIM_HEADER_MAX)),
        Value::Object(fields) => fields,
        _ => {
            return Err(format!(
                "header {name:?} must map to a claim name or {{\"claim\", \"format\", \"max_bytes\"}}"
            ));
        }
    };
    if let Some(unknown) = fields.keys().find(|k| !["claim", "format", "max_bytes"].contains(&k.as_str())) {
        return Err(format!("header {name:?}: unknown field {unknown:?} (claim, format, max_bytes)"));
    }
    let claim = fields.get("claim").and_then(Value::as_str).unwrap_or_default().to_owned();
    let format = match fields.get("format") {
        None => ClaimFormat::Comma,
        Some(Value::String(f)) if f == "comma" => ClaimFormat::Comma,
        Some(Value::String(f)) if f == "json" => ClaimFormat::Json,
        Some(_) => return Err(format!("header {name:?}: format must be \"comma\" or \"json\"")),
    };
    let max_bytes = match fields.get("max_bytes") {
        None => DEFAULT_CLAIM_HEADER_MAX,
        Some(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or(0),
    };
    Ok((claim, format, max_bytes))
}

/// Headers the gateway sets or relies on, which a mapping may never replace.
const RESERVED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "dpop",
    "forwarded",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-object-id",
    "x-forwarded-tenant-id",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-for",
];

/// Prefixes the gateway owns (`x-edgeguard-`), Easy Auth's (set by `client_principal`),
/// Cloudflare's own (`cf-`, which the platform may overwrite) and the browser's (`sec-`: fetch
/// metadata, WebSocket handshakes).
const RESERVED_PREFIXES: &[&str] = &["x-edgeguard-", "x-ms-client-principal", "cf-", "sec-"];

fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^`|~".contains(&b))
}

/// Why a header name cannot be mapped, if it cannot.
fn name_problem(name: &str) -> Option<String> {
    if name.contains('_') {
        return Some(format!("header {name:?} contains _: many servers read _ as - or drop the header; use -"));
    }
    if !is_token(name) {
        return Some(format!("header {name:?} is not a header name (letters, digits and -)"));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED.contains(&lower.as_str()) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Some(format!(
            "header {name:?} is set by the gateway or the platform; pick another name, e.g. X-Forwarded-Groups"
        ));
    }
    None
}

/// The route's mapped headers (the `headers` object), or every problem with them.
pub fn parse_claim_headers(raw: &Map<String, Value>) -> Result<Vec<ClaimHeader>, Vec<String>> {
    let mut problems = Vec::new();
    let mut headers: Vec<ClaimHeader> = Vec::new();
    for (name, mapping) in raw {
        let name = name.trim();
        if let Some(problem) = name_problem(name) {
            problems.push(problem);
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if headers.iter().any(|h| h.name == lower) {
            problems.push(format!("header {name:?} is mapped twice (letter case aside)"));
            continue;
        }
        let (claim, format, max_bytes) = match parse_mapping(name, mapping) {
            Ok(parsed) => parsed,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let claim = claim.trim().to_owned();
        if claim.is_empty() {
            problems.push(format!("header {name:?} names no claim"));
        } else if !(1..=MAX_CLAIM_HEADER_MAX).contains(&max_bytes) {
            problems
                .push(format!("header {name:?}: max_bytes must be a whole number from 1 to {MAX_CLAIM_HEADER_MAX}"));
        } else {
            headers.push(ClaimHeader { name: lower, claim, format, max_bytes });
        }
    }
    if problems.is_empty() { Ok(headers) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Vec<ClaimHeader>, Vec<String>> {
        parse_claim_headers(serde_json::from_str::<Value>(json).unwrap().as_object().unwrap())
    }

    #[test]
    fn short_and_full_forms() {
        let headers = parse(
            r#"{"X-Forwarded-Groups": "groups",
                "X-Roles": {"claim": "roles", "format": "json", "max_bytes": 100}}"#,
        )
        .unwrap();
        assert_eq!(
            headers,
            vec![
                ClaimHeader {
                    name: "x-forwarded-groups".into(),
                    claim: "groups".into(),
                    format: ClaimFormat::Comma,
                    max_bytes: DEFAULT_CLAIM_HEADER_MAX,
                },
                ClaimHeader {
                    name: "x-roles".into(),
                    claim: "roles".into(),
                    format: ClaimFormat::Json,
                    max_bytes: 100
                },
            ]
        );
    }

    #[test]
    fn names_the_gateway_owns_or_that_are_not_names_are_refused() {
        for bad in [
            "Authorization",
            "cookie",
            "Host",
            "X-Forwarded-User",
            "x-forwarded-email",
            "X-Edgeguard-Dpop-Jkt",
            "X-MS-CLIENT-PRINCIPAL-NAME",
            "Connection",
            "DPoP",
            "cf-connecting-ip",
            "Sec-WebSocket-Key",
            "Expect",
            "X_Groups",
            "X Groups",
            "X-Gr\u{f6}ups",
            "",
        ] {
            let errors = parse(&format!(r#"{{"{bad}": "groups"}}"#)).unwrap_err();
            assert_eq!(errors.len(), 1, "{bad:?}: {errors:?}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let errors = parse(
            r#"{"X-A": "", "X-B": {"claim": "b", "max_bytes": 0}, "X-C": {"claim": "c", "max_bytes": 99999},
                "Host": "sub", "X-D": "d"}"#,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        for bad in [
            r#"{"X-A": {"claim": "a", "format": "xml"}}"#,
            r#"{"X-A": {"claim": "a", "fmt": "json"}}"#,
            r#"{"X-A": ["a"]}"#,
            r#"{"X-A": {"claim": "a", "max_bytes": "10"}}"#,
        ] {
            assert_eq!(parse(bad).unwrap_err().len(), 1, "{bad}");
        }
        let twice = parse(r#"{"X-A": "a", "x-a": "b"}"#).unwrap_err();
        assert!(twice[0].contains("mapped twice"), "{twice:?}");
    }
}
