//! Where a route's requests go: an HTTP origin, or a binding of this Worker (its static assets,
//! or another Worker through a service binding).
//!
//! A binding is named in `ROUTES` as `"binding:<NAME>"` (e.g. `"binding:ASSETS"`). The core only
//! knows the name; the edge checks at start-up that the Worker's env has a binding of that name
//! with a `fetch` method, and calls `env[NAME].fetch(request)` instead of the global `fetch`.

use url::Url;

/// The prefix that makes a route's `origin` a binding name rather than a URL.
pub const BINDING_PREFIX: &str = "binding:";

/// A route's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An HTTP(S) origin, reached with `fetch`.
    Http(Url),
    /// A Worker binding with a `fetch` method (`[assets] binding`, `[[services]] binding`).
    Binding(String),
}

impl Origin {
    /// A route's `origin` as written: `binding:<NAME>` or an absolute URL (https, or plain http
    /// on loopback only: credentials travel to it).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let Some(name) = raw.strip_prefix(BINDING_PREFIX) else {
            return crate::config::parse_secure_url(raw).map(Origin::Http);
        };
        if is_binding_name(name) {
            Ok(Origin::Binding(name.to_owned()))
        } else {
            Err(format!(
                "names binding {name:?}, which is not a binding name (letters, digits and _, not starting with a digit)"
            ))
        }
    }

    /// The binding's name, when this is one.
    pub fn binding(&self) -> Option<&str> {
        match self {
            Origin::Binding(name) => Some(name),
            Origin::Http(_) => None,
        }
    }
}

/// What wrangler accepts as a binding name: a JavaScript identifier in ASCII.
fn is_binding_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_origin_is_a_name_and_a_url_stays_a_url() {
        assert_eq!(Origin::parse("binding:ASSETS"), Ok(Origin::Binding("ASSETS".into())));
        assert_eq!(Origin::parse("binding:api_v2").unwrap().binding(), Some("api_v2"));
        let http = Origin::parse("https://origin.internal").unwrap();
        assert_eq!(http, Origin::Http(Url::parse("https://origin.internal").unwrap()));
        assert_eq!(http.binding(), None);
    }

    #[test]
    fn bad_binding_names_and_insecure_urls_are_refused() {
        for bad in ["binding:", "binding:1ST", "binding:a-b", "binding:A B", "binding:ASSETS/x", "binding:É"] {
            assert!(Origin::parse(bad).unwrap_err().contains("not a binding name"), "{bad}");
        }
        assert!(Origin::parse("http://origin.example.com").is_err());
        assert!(Origin::parse("Binding:ASSETS").is_err(), "the prefix is exact, never a URL scheme guess");
    }
}
