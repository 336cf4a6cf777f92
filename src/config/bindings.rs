//! The Worker bindings the configuration needs, checked at start-up against what the runtime
//! has, so a missing `[[kv_namespaces]]`, origin binding or `[[ratelimits]]` is a configuration
//! error naming the fix, never a failure on some later request.

use super::{Config, ConfigErrors, SettingError};

/// The KV namespace binding that holds session records.
pub const SESSIONS_BINDING: &str = "SESSIONS";

/// What the Worker's environment has, as the edge finds it there.
pub trait WorkerBindings {
    /// A KV namespace bound as `name`.
    fn has_kv(&self, name: &str) -> bool;
    /// A binding `name` with a `fetch` method (`[assets]`, a service binding).
    fn has_fetch(&self, name: &str) -> bool;
    /// A rate-limiting binding `name`.
    fn has_rate_limit(&self, name: &str) -> bool;
}

/// `config` when the environment has every binding it names; otherwise every setting error
/// and every missing binding, together.
pub fn check_bindings(config: Result<Config, ConfigErrors>, env: &impl WorkerBindings) -> Result<Config, ConfigErrors> {
    let mut missing = Vec::new();
    if !env.has_kv(SESSIONS_BINDING) {
        missing.push(SettingError {
            setting: "SESSIONS",
            problem: "the KV namespace binding is missing".into(),
            fix: "add [[kv_namespaces]] binding = \"SESSIONS\" to wrangler.toml (see README)",
        });
    }
    if let Ok(config) = &config {
        missing.extend(config.routes.bindings().into_iter().filter(|n| !env.has_fetch(n)).map(|name| SettingError {
            setting: "ROUTES",
            problem: format!("a route's origin is binding:{name}, but the Worker has no binding {name} with fetch"),
            fix: "bind it in wrangler.toml: [assets] binding = \"ASSETS\" or [[services]] binding = \"NAME\" (see README)",
        }));
        missing.extend(config.routes.rate_limit_bindings().into_iter().filter(|n| !env.has_rate_limit(n)).map(
            |name| SettingError {
                setting: "ROUTES",
                problem: format!("a route's rate_limit names binding {name}, but the Worker has no rate-limiting binding {name}"),
                fix: "bind it in wrangler.toml: [[ratelimits]] name = \"NAME\" with namespace_id and simple = { limit, period } (see README)",
            },
        ));
    }
    match config {
        Ok(config) if missing.is_empty() => Ok(config),
        Ok(_) => Err(ConfigErrors(missing)),
        Err(ConfigErrors(mut errors)) => {
            errors.extend(missing);
            Err(ConfigErrors(errors))
        }
    }
}
