//! Reading Entra's authorization claims: who the caller is (a user through an app, or an app
//! on its own) and whether the token's group list was cut off (group overage).
//!
//! Microsoft identity platform access-token claims: delegated (user) tokens carry `scp`;
//! app-only tokens carry `roles` and no `scp`, and `idtyp: app` when the optional claim is on.
//! Past 200 groups (6 in implicit-flow ID tokens) `groups` is replaced by `_claim_names` /
//! `_claim_sources` pointing at Graph, or by `hasgroups: true`.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    /// A signed-in user, through an application (delegated: `scp`).
    User,
    /// An application in its own name (client credentials: `roles`, no `scp`).
    App,
}

/// The Entra-specific views of a claims set.
pub trait EntraClaims {
    /// User or app. `idtyp` decides when present; otherwise a token without `scp` is an
    /// app-only token (every delegated token has `scp`).
    fn caller_kind(&self) -> CallerKind;
    /// The token says the user has more groups than it lists.
    fn has_group_overage(&self) -> bool;
}

impl EntraClaims for Map<String, Value> {
    fn caller_kind(&self) -> CallerKind {
        match self.get("idtyp").and_then(Value::as_str) {
            Some("app") => CallerKind::App,
            Some(_) => CallerKind::User,
            None if self.contains_key("scp") => CallerKind::User,
            None => CallerKind::App,
        }
    }

    fn has_group_overage(&self) -> bool {
        let named =
            self.get("_claim_names").and_then(Value::as_object).is_some_and(|names| names.contains_key("groups"));
        named || self.get("hasgroups").and_then(Value::as_bool) == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn caller_kind_follows_idtyp_then_scp() {
        let cases = [
            (json!({"scp": "read", "oid": "u"}), CallerKind::User),
            (json!({"roles": ["Orders.Read"], "idtyp": "app"}), CallerKind::App),
            (json!({"roles": ["Orders.Read"]}), CallerKind::App),
            (json!({"idtyp": "user", "roles": ["x"]}), CallerKind::User),
            // An app token that also claims scp is still an app when idtyp says so.
            (json!({"idtyp": "app", "scp": "read"}), CallerKind::App),
        ];
        for (c, want) in cases {
            assert_eq!(claims(c.clone()).caller_kind(), want, "{c}");
        }
    }

    #[test]
    fn overage_in_both_forms() {
        let graph = json!({"_claim_names": {"groups": "src1"},
                           "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}});
        assert!(claims(graph).has_group_overage());
        assert!(claims(json!({"hasgroups": true})).has_group_overage());
        assert!(!claims(json!({"hasgroups": false})).has_group_overage());
        assert!(!claims(json!({"groups": ["g1"]})).has_group_overage());
        assert!(!claims(json!({"_claim_names": {"other": "src1"}})).has_group_overage());
    }
}
