//! What a caller must hold on a route: every listed scope, and one of the listed roles, groups
//! and tenants (each list only when given).

use serde::Deserialize;

/// Requirements of one route. Empty lists require nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// All required, from `scp` (Entra) or `scope` (RFC 9068).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Any one required, from `roles` (Entra app roles).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Any one required, from `groups`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Any one required, from `tid`.
    #[serde(default)]
    pub tenants: Vec<String>,
}

/// What the caller holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims<'a> {
    pub scopes: Vec<&'a str>,
    pub roles: Vec<&'a str>,
    pub groups: Vec<&'a str>,
    pub tenant: Option<&'a str>,
}

/// Which requirement failed (the log reason) and the scopes to name in the challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    pub reason: &'static str,
    pub required_scopes: String,
}

fn any_of(required: &[String], held: &[&str]) -> bool {
    required.is_empty() || required.iter().any(|r| held.contains(&r.as_str()))
}

impl Requirements {
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.roles.is_empty() && self.groups.is_empty() && self.tenants.is_empty()
    }

    /// Check `claims` against the requirements.
    pub fn check(&self, claims: &Claims<'_>) -> Result<(), Unmet> {
        let unmet = |reason| Err(Unmet { reason, required_scopes: self.scopes.join(" ") });
        if !self.scopes.iter().all(|s| claims.scopes.contains(&s.as_str())) {
            return unmet("scope_missing");
        }
        if !any_of(&self.roles, &claims.roles) {
            return unmet("role_missing");
        }
        if !any_of(&self.groups, &claims.groups) {
            return unmet("group_missing");
        }
        if !self.tenants.is_empty() && !claims.tenant.is_some_and(|t| self.tenants.iter().any(|a| a == t)) {
            return unmet("tenant_not_allowed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(scopes: &[&str], roles: &[&str], groups: &[&str], tenants: &[&str]) -> Requirements {
        let v = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect();
        Requirements { scopes: v(scopes), roles: v(roles), groups: v(groups), tenants: v(tenants) }
    }

    #[test]
    fn table() {
        let held =
            Claims { scopes: vec!["read", "write"], roles: vec!["Admin"], groups: vec!["g1"], tenant: Some("t1") };
        let cases = [
            (req(&[], &[], &[], &[]), Ok(())),
            (req(&["read", "write"], &[], &[], &[]), Ok(())),
            (req(&["read", "delete"], &[], &[], &[]), Err("scope_missing")),
            (req(&[], &["Reader", "Admin"], &[], &[]), Ok(())),
            (req(&[], &["Reader"], &[], &[]), Err("role_missing")),
            (req(&[], &[], &["g2", "g1"], &[]), Ok(())),
            (req(&[], &[], &["g2"], &[]), Err("group_missing")),
            (req(&[], &[], &[], &["t1"]), Ok(())),
            (req(&[], &[], &[], &["t2"]), Err("tenant_not_allowed")),
        ];
        for (requirements, expected) in cases {
            assert_eq!(requirements.check(&held).map_err(|u| u.reason), expected, "{requirements:?}");
        }
        let none = Claims::default();
        assert_eq!(req(&[], &[], &[], &["t1"]).check(&none).unwrap_err().reason, "tenant_not_allowed");
        assert_eq!(req(&["a", "b"], &[], &[], &[]).check(&none).unwrap_err().required_scopes, "a b");
    }
}
