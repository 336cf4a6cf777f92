//! Identity headers from claims (a route's `headers`): the claim's value as header text, or
//! the header left out with a log note when the value cannot travel safely.
//!
//! Values must arrive exactly as the token said, or not at all: a header with CR/LF or NUL
//! would split or end the origin request, non-ASCII bytes reach origins mangled differently
//! per server, and a list member with a comma would read as two groups. So a `comma` value
//! that is not plain printable ASCII leaves the header out (`claim_header_unsafe`); `json`
//! escapes everything outside printable ASCII (`\uXXXX`), so it always fits. An over-size
//! value is left out too (`claim_header_too_large`), as Pomerium and oauth2-proxy do: a
//! truncated list would be a different list.

use super::HeaderChanges;
use super::is_header_safe;
use crate::policy::{ClaimFormat, ClaimHeader};
use serde_json::{Map, Value};

/// Why a mapped header was left out; the decision log's note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Longer than the header's `max_bytes`.
    TooLarge,
    /// Not representable in the `comma` format (control or non-ASCII bytes, a comma in a list
    /// member, an object, spaces at either end).
    Unsafe,
}

impl Skipped {
    pub fn note(self) -> &'static str {
        match self {
            Skipped::TooLarge => "claim_header_too_large",
            Skipped::Unsafe => "claim_header_unsafe",
        }
    }
}

/// A claim by name, or by dotted path into nested objects when no top-level claim has the
/// whole name (`https://example.com/roles` stays one name).
pub fn lookup<'a>(claims: &'a Map<String, Value>, claim: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(claim) {
        return Some(value);
    }
    let mut parts = claim.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// A scalar as comma-format text; `None` for objects and arrays.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn comma(value: &Value) -> Result<String, Skipped> {
    let text = match value {
        Value::Array(members) => {
            let mut texts = Vec::with_capacity(members.len());
            for member in members {
                let text = scalar_text(member).ok_or(Skipped::Unsafe)?;
                if text.contains(',') || !is_header_safe(&text) {
                    return Err(Skipped::Unsafe);
                }
                texts.push(text);
            }
            texts.join(",")
        }
        other => scalar_text(other).ok_or(Skipped::Unsafe)?,
    };
    if is_header_safe(&text) { Ok(text) } else { Err(Skipped::Unsafe) }
}

/// Compact JSON with every character outside printable ASCII as a `\uXXXX` escape (UTF-16,
/// surrogate pairs past the BMP), which any JSON parser reads back as the original text.
pub fn ascii_json(value: &Value) -> String {
    let json = value.to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(char::from_digit(u32::from((*unit >> shift) & 0xf), 16).unwrap_or('0'));
                }
            }
        }
    }
    out
}

/// The header text for one mapped claim, `Ok(None)` when the claim is absent (or null, or an
/// empty list in the comma format).
pub fn render(header: &ClaimHeader, claims: &Map<String, Value>) -> Result<Option<String>, Skipped> {
    let Some(value) = lookup(claims, &header.claim).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = match header.format {
        ClaimFormat::Comma if value.as_array().is_some_and(Vec::is_empty) => return Ok(None),
        ClaimFormat::Comma => comma(value)?,
        ClaimFormat::Json => ascii_json(value),
    };
    if text.len() > header.max_bytes {
        return Err(Skipped::TooLarge);
    }
    Ok(Some(text))
}

/// Set the route's claim headers on the origin request; the notes say which were left out.
pub fn add_claim_headers(
    changes: &mut HeaderChanges,
    headers: &[ClaimHeader],
    claims: &Map<String, Value>,
) -> Vec<&'static str> {
    let mut notes = Vec::new();
    for header in headers {
        match render(header, claims) {
            // The name is a lower-case token, checked when ROUTES was read.
            Ok(Some(text)) => changes.set.push((header.name.clone().into(), text)),
            Ok(None) => {}
            Err(skipped) if !notes.contains(&skipped.note()) => notes.push(skipped.note()),
            Err(_) => {}
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(claim: &str, format: ClaimFormat, max_bytes: usize) -> ClaimHeader {
        ClaimHeader { name: "x-h".into(), claim: claim.into(), format, max_bytes }
    }

    fn claims() -> Map<String, Value> {
        let value = json!({
            "groups": ["admins", "staff"],
            "name": "Zo\u{eb} O'Neil",
            "upn": "zoe@example.com",
            "age": 42,
            "admin": true,
            "address": {"country": "NZ"},
            "https://example.com/roles": ["a"],
            "evil": "x\r\nX-Forwarded-User: admin",
            "commas": ["a,b", "c"],
            "empty": [],
            "none": null,
        });
        value.as_object().unwrap().clone()
    }

    #[test]
    fn comma_lists_scalars_and_paths() {
        let c = claims();
        let text = |claim: &str| render(&header(claim, ClaimFormat::Comma, 4096), &c);
        assert_eq!(text("groups"), Ok(Some("admins,staff".into())));
        assert_eq!(text("upn"), Ok(Some("zoe@example.com".into())));
        assert_eq!(text("age"), Ok(Some("42".into())));
        assert_eq!(text("admin"), Ok(Some("true".into())));
        assert_eq!(text("address.country"), Ok(Some("NZ".into())));
        assert_eq!(text("https://example.com/roles"), Ok(Some("a".into())));
        assert_eq!(text("missing"), Ok(None));
        assert_eq!(text("address.missing"), Ok(None));
        assert_eq!(text("none"), Ok(None));
        assert_eq!(text("empty"), Ok(None));
    }

    #[test]
    fn unsafe_values_leave_the_header_out_in_comma_format() {
        let c = claims();
        let text = |claim: &str| render(&header(claim, ClaimFormat::Comma, 4096), &c);
        assert_eq!(text("evil"), Err(Skipped::Unsafe), "CR/LF");
        assert_eq!(text("name"), Err(Skipped::Unsafe), "non-ASCII");
        assert_eq!(text("commas"), Err(Skipped::Unsafe), "a comma inside a member");
        assert_eq!(text("address"), Err(Skipped::Unsafe), "an object");
    }

    #[test]
    fn json_escapes_what_headers_cannot_carry() {
        let c = claims();
        let text = |claim: &str| render(&header(claim, ClaimFormat::Json, 4096), &c).unwrap().unwrap();
        assert_eq!(text("groups"), r#"["admins","staff"]"#);
        assert_eq!(text("name"), r#""Zo\u00eb O'Neil""#);
        assert_eq!(text("evil"), r#""x\r\nX-Forwarded-User: admin""#);
        assert_eq!(text("address"), r#"{"country":"NZ"}"#);
        assert_eq!(text("empty"), "[]");
        for claim in ["groups", "name", "evil", "commas"] {
            let out = text(claim);
            assert!(is_header_safe(&out), "{out}");
            assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), c[claim], "{claim} round-trips");
        }
        let emoji = ascii_json(&json!("\u{1f600}\u{7f}"));
        assert_eq!(emoji, r#""\ud83d\ude00\u007f""#);
        assert_eq!(serde_json::from_str::<Value>(&emoji).unwrap(), json!("\u{1f600}\u{7f}"));
    }

    #[test]
    fn an_over_size_value_is_left_out_not_cut() {
        let c = claims();
        assert_eq!(render(&header("groups", ClaimFormat::Comma, 12), &c), Ok(Some("admins,staff".into())));
        assert_eq!(render(&header("groups", ClaimFormat::Comma, 11), &c), Err(Skipped::TooLarge));
    }

    #[test]
    fn headers_are_set_and_skips_noted() {
        let mut changes = HeaderChanges::default();
        let headers = [
            ClaimHeader { name: "x-groups".into(), claim: "groups".into(), format: ClaimFormat::Comma, max_bytes: 100 },
            ClaimHeader { name: "x-evil".into(), claim: "evil".into(), format: ClaimFormat::Comma, max_bytes: 100 },
            ClaimHeader { name: "x-big".into(), claim: "groups".into(), format: ClaimFormat::Json, max_bytes: 5 },
        ];
        let notes = add_claim_headers(&mut changes, &headers, &claims());
        assert_eq!(changes.set, vec![("x-groups".into(), "admins,staff".to_owned())]);
        assert_eq!(notes, vec!["claim_header_unsafe", "claim_header_too_large"]);
    }
}
