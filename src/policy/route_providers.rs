//! Which identity providers a route signs users in with and takes bearer tokens from (the
//! route fields `provider` and `providers`), resolved to indexes into the provider table once
//! at start-up, so a request never looks a provider up by name.

use super::routes::AuthMode;

/// The providers of one route, as indexes into the provider table (0 is the default provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteProviders {
    /// Whose sessions the route accepts and where its sign-in goes.
    pub session: usize,
    /// Whose bearer tokens the route accepts (a token's `iss` picks one); at least one.
    pub bearer: Vec<usize>,
}

impl Default for RouteProviders {
    /// The default provider only.
    fn default() -> Self {
        Self { session: 0, bearer: vec![0] }
    }
}

/// The provider a route without `provider` gets: the only one, or the one named `default`
/// (listed first).
fn implied(names: &[&str]) -> Option<usize> {
    match names {
        [_] => Some(0),
        [first, ..] if *first == crate::config::DEFAULT_PROVIDER => Some(0),
        _ => None,
    }
}

fn index_of(names: &[&str], name: &str) -> Result<usize, String> {
    names.iter().position(|n| *n == name).ok_or_else(|| format!("names provider {name:?}, which is not configured"))
}

/// Resolve a route's `provider` and `providers` against the provider `names` (default first).
pub fn resolve(
    auth: AuthMode,
    provider: Option<&str>,
    providers: Option<&[String]>,
    names: &[&str],
) -> Result<RouteProviders, String> {
    let takes_bearer = matches!(auth, AuthMode::Bearer | AuthMode::SessionOrBearer);
    if auth == AuthMode::Public && (provider.is_some() || providers.is_some()) {
        return Err("is public, so provider and providers do not apply".into());
    }
    if providers.is_some() && !takes_bearer {
        return Err("lists providers, which only bearer and session_or_bearer routes use (use provider)".into());
    }
    let session = match provider {
        Some(name) => index_of(names, name)?,
        None if auth == AuthMode::Public => 0,
        None if auth == AuthMode::Bearer && providers.is_some() => 0,
        None => {
            implied(names).ok_or("names no provider, and there are several with none named default (add provider)")?
        }
    };
    let bearer = match providers {
        None => vec![session],
        Some([]) => return Err("lists no providers".into()),
        Some(list) => {
            let mut bearer = Vec::new();
            for name in list {
                let index = index_of(names, name)?;
                if bearer.contains(&index) {
                    return Err(format!("lists provider {name:?} twice"));
                }
                bearer.push(index);
            }
            bearer
        }
    };
    Ok(RouteProviders { session, bearer })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: [&str; 2] = ["default", "partners"];
    const NO_DEFAULT: [&str; 2] = ["staff", "partners"];

    #[test]
    fn routes_default_to_the_only_or_the_default_provider() {
        let only = resolve(AuthMode::Session, None, None, &["staff"]).unwrap();
        assert_eq!(only, RouteProviders::default());
        assert_eq!(resolve(AuthMode::Bearer, None, None, &TWO).unwrap(), RouteProviders::default());
        let named = resolve(AuthMode::Session, Some("partners"), None, &TWO).unwrap();
        assert_eq!(named, RouteProviders { session: 1, bearer: vec![1] });
        let err = resolve(AuthMode::Session, None, None, &NO_DEFAULT).unwrap_err();
        assert!(err.contains("names no provider"), "{err}");
        assert_eq!(resolve(AuthMode::Public, None, None, &NO_DEFAULT).unwrap().session, 0);
    }

    #[test]
    fn bearer_routes_may_accept_several_providers() {
        let both = ["partners".to_owned(), "default".to_owned()];
        let route = resolve(AuthMode::Bearer, None, Some(&both), &NO_DEFAULT).unwrap_err();
        assert!(route.contains("\"default\", which is not configured"), "{route}");
        let route = resolve(AuthMode::Bearer, None, Some(&both), &TWO).unwrap();
        assert_eq!(route.bearer, vec![1, 0]);
        let mixed = resolve(AuthMode::SessionOrBearer, Some("partners"), Some(&both), &TWO).unwrap();
        assert_eq!((mixed.session, mixed.bearer), (1, vec![1, 0]));
    }

    #[test]
    fn names_every_misuse() {
        let list = ["default".to_owned()];
        let twice = ["default".to_owned(), "default".to_owned()];
        for (auth, provider, providers, expected) in [
            (AuthMode::Session, Some("nope"), None, "\"nope\", which is not configured"),
            (AuthMode::Session, None, Some(&list[..]), "only bearer and session_or_bearer"),
            (AuthMode::Public, Some("default"), None, "is public"),
            (AuthMode::Bearer, None, Some(&[][..]), "lists no providers"),
            (AuthMode::Bearer, None, Some(&twice[..]), "twice"),
        ] {
            let err = resolve(auth, provider, providers, &TWO).unwrap_err();
            assert!(err.contains(expected), "{err} / {expected}");
        }
    }
}
