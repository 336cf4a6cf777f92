//! Easy Auth's identity headers (a route's `client_principal`), so an app written for Azure
//! App Service authentication runs behind the gateway unchanged: `X-MS-CLIENT-PRINCIPAL` is
//! base64 of `{"auth_typ", "claims": [{"typ", "val"}], "name_typ", "role_typ"}` with every
//! claim of the verified token (a list claim gives one entry per member, as Easy Auth does),
//! plus `X-MS-CLIENT-PRINCIPAL-ID`, `-NAME` and `-IDP`. Claim types are the token's own names
//! (Easy Auth's default mapping to long URIs is not applied), so `name_typ` and `role_typ` name
//! them. Client copies never arrive: the `x-ms-client-principal` prefix is always stripped.

use super::HeaderChanges;
use super::is_header_safe;
use base64::Engine;
use serde_json::{Map, Value, json};

pub const PRINCIPAL_HEADER: &str = "x-ms-client-principal";
pub const PRINCIPAL_ID_HEADER: &str = "x-ms-client-principal-id";
pub const PRINCIPAL_NAME_HEADER: &str = "x-ms-client-principal-name";
pub const PRINCIPAL_IDP_HEADER: &str = "x-ms-client-principal-idp";

/// Claims that name the user for `-NAME` and `name_typ`, first present wins (Entra puts the
/// sign-in name in `preferred_username`; `upn` in v1 tokens). Never `email`, which may be
/// unverified.
const NAME_CLAIMS: [&str; 3] = ["preferred_username", "upn", "sub"];

/// One claim's entries: a list gives one per member; objects and nested lists travel as JSON.
fn entries(typ: &str, value: &Value, out: &mut Vec<Value>) {
    let val = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_) => Some(v.to_string()),
    };
    match value {
        Value::Array(members) => {
            out.extend(members.iter().filter_map(val).map(|v| json!({ "typ": typ, "val": v })));
        }
        other => out.extend(val(other).map(|v| json!({ "typ": typ, "val": v }))),
    }
}

/// The decoded `X-MS-CLIENT-PRINCIPAL` document.
pub fn principal_document(claims: &Map<String, Value>, idp: &str) -> Value {
    let mut list = Vec::new();
    for (typ, value) in claims {
        entries(typ, value, &mut list);
    }
    let name_typ = NAME_CLAIMS.iter().find(|c| claims.get(**c).is_some_and(Value::is_string)).unwrap_or(&"sub");
    json!({ "auth_typ": idp, "claims": list, "name_typ": name_typ, "role_typ": "roles" })
}

/// Set the Easy Auth headers; the notes say which were left out (too large, or a value that
/// is not header-safe).
pub fn add_client_principal(
    changes: &mut HeaderChanges,
    claims: &Map<String, Value>,
    idp: &str,
    max_bytes: usize,
) -> Vec<&'static str> {
    let mut notes = Vec::new();
    let encoded = base64::engine::general_purpose::STANDARD.encode(principal_document(claims, idp).to_string());
    if encoded.len() <= max_bytes {
        changes.set.push((PRINCIPAL_HEADER.into(), encoded));
    } else {
        notes.push("client_principal_too_large");
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let id = text("oid").or_else(|| text("sub"));
    let name = NAME_CLAIMS.iter().find_map(|c| text(c));
    for (header, value) in [(PRINCIPAL_ID_HEADER, id), (PRINCIPAL_NAME_HEADER, name), (PRINCIPAL_IDP_HEADER, Some(idp))]
    {
        match value {
            Some(v) if is_header_safe(v) && v.len() <= max_bytes => {
                changes.set.push((header.into(), v.to_owned()));
            }
            Some(_) => notes.push("claim_header_unsafe"),
            None => {}
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Map<String, Value> {
        json!({
            "sub": "s-1", "oid": "0b1c", "preferred_username": "zoe@contoso.com", "name": "Zo\u{eb}",
            "roles": ["Orders.Admin", "Orders.Read"], "groups": [], "exp": 1700000000, "cnf": {"jkt": "abc"},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn decoded(changes: &HeaderChanges) -> Value {
        let (_, b64) = changes.set.iter().find(|(n, _)| n == PRINCIPAL_HEADER).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn the_principal_has_easy_auths_shape() {
        let mut changes = HeaderChanges::default();
        let notes = add_client_principal(&mut changes, &claims(), "aad", 16 * 1024);
        assert!(notes.is_empty(), "{notes:?}");
        let doc = decoded(&changes);
        assert_eq!(doc["auth_typ"], "aad");
        assert_eq!(doc["name_typ"], "preferred_username");
        assert_eq!(doc["role_typ"], "roles");
        let entries = doc["claims"].as_array().unwrap();
        let vals = |typ: &str| -> Vec<&str> {
            entries.iter().filter(|e| e["typ"] == typ).map(|e| e["val"].as_str().unwrap()).collect()
        };
        assert_eq!(vals("roles"), vec!["Orders.Admin", "Orders.Read"]);
        assert_eq!(vals("name"), vec!["Zo\u{eb}"]);
        assert_eq!(vals("exp"), vec!["1700000000"]);
        assert_eq!(vals("cnf"), vec![r#"{"jkt":"abc"}"#]);
        assert!(vals("groups").is_empty());
        let header = |n: &str| changes.set.iter().find(|(h, _)| h == n).map(|(_, v)| v.as_str());
        assert_eq!(header(PRINCIPAL_ID_HEADER), Some("0b1c"));
        assert_eq!(header(PRINCIPAL_NAME_HEADER), Some("zoe@contoso.com"));
        assert_eq!(header(PRINCIPAL_IDP_HEADER), Some("aad"));
    }

    #[test]
    fn too_large_or_unsafe_parts_are_left_out() {
        let mut changes = HeaderChanges::default();
        let mut c = claims();
        c.insert("preferred_username".into(), json!("zo\u{eb}\r\n@contoso.com"));
        let notes = add_client_principal(&mut changes, &c, "oidc", 64);
        assert_eq!(notes, vec!["client_principal_too_large", "claim_header_unsafe"]);
        assert!(changes.set.iter().all(|(n, _)| n != PRINCIPAL_HEADER && n != PRINCIPAL_NAME_HEADER));
        assert!(changes.set.iter().any(|(n, v)| n == PRINCIPAL_ID_HEADER && v == "0b1c"));
    }
}
