//! What a caller must hold on a route: every listed scope, and one of the listed roles, groups,
//! tenants and directory roles (each list only when given), and optionally the kind of caller
//! (a user, or an application on its own).

use crate::entra::CallerKind;
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
    /// Any one required, from `wids` (Entra directory role template ids).
    #[serde(default)]
    pub wids: Vec<String>,
    /// `user` (delegated tokens, sessions) or `app` (app-only tokens); either when absent.
    #[serde(default)]
    pub caller: Option<CallerKind>,
}

/// What the caller holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims<'a> {
    pub scopes: Vec<&'a str>,
    pub roles: Vec<&'a str>,
    pub groups: Vec<&'a str>,
    pub tenant: Option<&'a str>,
    pub wids: Vec<&'a str>,
    pub caller: Option<CallerKind>,
    /// The token said the user is in more groups than it lists (Entra group overage).
    pub groups_overage: bool,
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
        self.scopes.is_empty()
            && self.roles.is_empty()
            && self.groups.is_empty()
            && self.tenants.is_empty()
            && self.wids.is_empty()
            && self.caller.is_none()
    }

    /// Check `claims` against the requirements.
    pub fn check(&self, claims: &Claims<'_>) -> Result<(), Unmet> {
        let unmet = |reason| Err(Unmet { reason, required_scopes: self.scopes.join(" ") });
        match (self.caller, claims.caller) {
            (Some(CallerKind::App), held) if held != Some(CallerKind::App) => return unmet("app_token_required"),
            (Some(CallerKind::User), held) if held != Some(CallerKind::User) => return unmet("user_token_required"),
            _ => {}
        }
        if !self.scopes.iter().all(|s| claims.scopes.contains(&s.as_str())) {
            return unmet("scope_missing");
        }
        if !any_of(&self.roles, &claims.roles) {
            return unmet("role_missing");
        }
        if !any_of(&self.groups, &claims.groups) {
            // A cut-off group list proves nothing either way; say why rather than "missing".
            return unmet(if claims.groups_overage { "groups_overage" } else { "group_missing" });
        }
        if !self.tenants.is_empty() && !claims.tenant.is_some_and(|t| self.tenants.iter().any(|a| a == t)) {
            return unmet("tenant_not_allowed");
        }
        if !any_of(&self.wids, &claims.wids) {
            return unmet("directory_role_missing");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(scopes: &[&str], roles: &[&str], groups: &[&str], tenants: &[&str]) -> Requirements {
        let v = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect();
        Requirements {
            scopes: v(scopes),
            roles: v(roles),
            groups: v(groups),
            tenants: v(tenants),
            ..Default::default()
        }
    }

    #[test]
    fn table() {
        let held = Claims {
            scopes: vec!["read", "write"],
            roles: vec!["Admin"],
            groups: vec!["g1"],
            tenant: Some("t1"),
            ..Default::default()
        };
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

    #[test]
    fn entra_caller_kind_directory_roles_and_overage() {
        let user = Claims { caller: Some(CallerKind::User), wids: vec!["62e90394"], ..Default::default() };
        let app = Claims { caller: Some(CallerKind::App), roles: vec!["Orders.Write"], ..Default::default() };
        let wants = |caller| Requirements { caller: Some(caller), ..Default::default() };
        assert_eq!(wants(CallerKind::App).check(&app), Ok(()));
        assert_eq!(wants(CallerKind::App).check(&user).unwrap_err().reason, "app_token_required");
        assert_eq!(wants(CallerKind::User).check(&user), Ok(()));
        assert_eq!(wants(CallerKind::User).check(&app).unwrap_err().reason, "user_token_required");
        assert_eq!(wants(CallerKind::User).check(&Claims::default()).unwrap_err().reason, "user_token_required");
        let admins = Requirements { wids: vec!["62e90394".into(), "other".into()], ..Default::default() };
        assert_eq!(admins.check(&user), Ok(()));
        assert_eq!(admins.check(&app).unwrap_err().reason, "directory_role_missing");
        let group = Requirements { groups: vec!["g1".into()], ..Default::default() };
        let cut_off = Claims { groups_overage: true, ..Default::default() };
        assert_eq!(group.check(&cut_off).unwrap_err().reason, "groups_overage");
        assert_eq!(group.check(&Claims::default()).unwrap_err().reason, "group_missing");
        // A listed group still counts when present, overage or not.
        let listed = Claims { groups: vec!["g1"], groups_overage: true, ..Default::default() };
        assert_eq!(group.check(&listed), Ok(()));
    }
}
