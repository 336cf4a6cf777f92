//! Whether an email address from a token may be told to the origin.
//!
//! Where users can set an address they do not own (self-service sign-up, social logins), the
//! provider says so with `email_verified: false` (OIDC Core §5.1); forwarding that address lets
//! an attacker present the victim's. Entra ID sends no `email_verified` at all; its answer is
//! the optional claim `xms_edov` (the email domain's owner is verified), read the same way.

use serde_json::{Map, Value};

fn truth(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        // Some providers send the boolean as a string, Entra's optional claims as "1"/"0".
        Value::String(s) if s.eq_ignore_ascii_case("true") || s == "1" => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") || s == "0" => Some(false),
        _ => None,
    }
}

/// What the token states about its `email`: `email_verified`, else Entra's `xms_edov`; `None`
/// when it states nothing.
pub fn email_verified(claims: &Map<String, Value>) -> Option<bool> {
    claims.get("email_verified").and_then(truth).or_else(|| claims.get("xms_edov").and_then(truth))
}

/// The address to forward: never one stated unverified; one with no statement only when the
/// deployment does not require verification (`EMAIL_VERIFIED_REQUIRED=false`).
pub fn forwardable_email(email: Option<&str>, verified: Option<bool>, require_verified: bool) -> Option<&str> {
    match verified {
        Some(true) => email,
        Some(false) => None,
        None if require_verified => None,
        None => email,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stated(claims: Value) -> Option<bool> {
        email_verified(claims.as_object().unwrap())
    }

    #[test]
    fn reads_email_verified_then_xms_edov() {
        assert_eq!(stated(json!({"email_verified": true})), Some(true));
        assert_eq!(stated(json!({"email_verified": "true"})), Some(true));
        assert_eq!(stated(json!({"email_verified": false, "xms_edov": true})), Some(false));
        assert_eq!(stated(json!({"xms_edov": "1"})), Some(true));
        assert_eq!(stated(json!({"xms_edov": false})), Some(false));
        assert_eq!(stated(json!({"email_verified": "yes"})), None);
        assert_eq!(stated(json!({})), None);
    }

    #[test]
    fn an_unverified_address_is_never_forwarded() {
        let email = Some("victim@example.com");
        assert_eq!(forwardable_email(email, Some(false), false), None);
        assert_eq!(forwardable_email(email, Some(false), true), None);
        assert_eq!(forwardable_email(email, None, true), None);
        assert_eq!(forwardable_email(email, None, false), email);
        assert_eq!(forwardable_email(email, Some(true), true), email);
    }
}
