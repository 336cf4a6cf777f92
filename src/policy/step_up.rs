//! Step-up authentication per route (OIDC Core §3.1.2.1 `acr_values` and `max_age`, RFC 9470):
//! a route can require a stronger sign-in (an `acr` the user's authentication must have) or a
//! recent one (`auth_time` within `max_age`), and the gateway asks the provider for exactly that.

use serde::Deserialize;

/// What a route asks of the user's authentication. Empty asks nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct StepUp {
    /// Any one of these `acr` values (in the provider's vocabulary, e.g. `mfa`, `phr`,
    /// `urn:...:loa:2`) must be the authentication's `acr`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    /// The authentication must be at most this many seconds old (`auth_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

/// How an authentication falls short, for the log and the RFC 9470 challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUpUnmet {
    /// Its `acr` is none of the route's `acr_values` (or it has none).
    Acr,
    /// It is older than `max_age` (or states no `auth_time`).
    TooOld,
}

impl StepUpUnmet {
    pub fn reason(self) -> &'static str {
        match self {
            StepUpUnmet::Acr => "step_up_acr_required",
            StepUpUnmet::TooOld => "step_up_reauthentication_required",
        }
    }
}

impl StepUp {
    pub fn is_empty(&self) -> bool {
        self.acr_values.is_empty() && self.max_age.is_none()
    }

    /// Check an authentication's `acr` and `auth_time` at `now`, with `leeway_secs` of clock
    /// skew on the age.
    pub fn check(
        &self,
        acr: Option<&str>,
        auth_time: Option<u64>,
        now: u64,
        leeway_secs: u64,
    ) -> Result<(), StepUpUnmet> {
        if !self.acr_values.is_empty() && !acr.is_some_and(|a| self.acr_values.iter().any(|v| v == a)) {
            return Err(StepUpUnmet::Acr);
        }
        if let Some(max_age) = self.max_age
            && auth_time.is_none_or(|t| t.saturating_add(max_age).saturating_add(leeway_secs) < now)
        {
            return Err(StepUpUnmet::TooOld);
        }
        Ok(())
    }

    /// The RFC 9470 §3 challenge parameters that tell a client what to get.
    pub fn challenge_params(&self) -> String {
        let mut params = String::new();
        if !self.acr_values.is_empty() {
            params.push_str(&format!(", acr_values=\"{}\"", self.acr_values.join(" ")));
        }
        if let Some(max_age) = self.max_age {
            params.push_str(&format!(", max_age={max_age}"));
        }
        params
    }

    /// The authorization request parameters that ask the provider for it.
    pub fn authorize_params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        if !self.acr_values.is_empty() {
            params.push(("acr_values", self.acr_values.join(" ")));
        }
        if let Some(max_age) = self.max_age {
            params.push(("max_age", max_age.to_string()));
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_and_age_rules() {
        let mfa = StepUp { acr_values: vec!["mfa".into(), "phr".into()], max_age: None };
        assert_eq!(mfa.check(Some("phr"), None, 1000, 0), Ok(()));
        assert_eq!(mfa.check(Some("pwd"), None, 1000, 0), Err(StepUpUnmet::Acr));
        assert_eq!(mfa.check(None, None, 1000, 0), Err(StepUpUnmet::Acr));
        let recent = StepUp { acr_values: vec![], max_age: Some(300) };
        assert_eq!(recent.check(None, Some(800), 1000, 0), Ok(()));
        assert_eq!(recent.check(None, Some(600), 1000, 0), Err(StepUpUnmet::TooOld));
        assert_eq!(recent.check(None, Some(650), 1000, 60), Ok(()), "skew tolerated");
        assert_eq!(recent.check(None, None, 1000, 60), Err(StepUpUnmet::TooOld), "no auth_time, no proof");
        assert_eq!(StepUp::default().check(None, None, 1000, 0), Ok(()));
    }

    #[test]
    fn says_what_to_ask_for() {
        let both = StepUp { acr_values: vec!["mfa".into()], max_age: Some(0) };
        assert_eq!(both.challenge_params(), ", acr_values=\"mfa\", max_age=0");
        assert_eq!(both.authorize_params(), vec![("acr_values", "mfa".to_owned()), ("max_age", "0".to_owned())]);
    }
}
