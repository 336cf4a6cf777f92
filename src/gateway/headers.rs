//! The client's request headers as the core sees them: every name, and the values of only the
//! headers a decision reads.
//!
//! The edge reads values by name from the runtime instead of copying every header into an
//! `http::HeaderMap`: the copy cost CPU on every request, and it silently skipped headers whose
//! values `http` refuses (control bytes, obs-text), so the strip list never saw them while the
//! origin still did. Names come from the runtime's own list, so the strip list sees every header.
//! Values are kept as the runtime gives them, without a validity filter: a `Cookie` with one
//! non-ASCII cookie is still read (RFC 6265 §5.4 cookies are opaque bytes to the gateway).

/// The headers whose values the core reads. The edge reads exactly these from the runtime (one
/// lookup each); a core function that needs another header's value adds its name here.
pub const DECISION_HEADERS: &[&str] = &[
    "authorization",
    "dpop",
    "cookie",
    "accept",
    "sec-fetch-mode",
    "sec-fetch-site",
    "origin",
    "access-control-request-method",
    "content-length",
    "upgrade",
];

/// The request's headers: all names, the decision headers' values, the total size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeaders {
    /// Every header name the client sent, lower-case, once each (the runtime combines repeats).
    names: Vec<String>,
    /// `(name, value)` for the headers read by value; repeated headers arrive combined.
    values: Vec<(String, String)>,
    /// Bytes of all names and values, for the header-size limit.
    pub size: usize,
}

impl RequestHeaders {
    /// Headers from the runtime: its list of names, the total size, and a lookup by name that
    /// is asked only for [`DECISION_HEADERS`] the client actually sent.
    pub fn from_runtime(names: Vec<String>, size: usize, read: impl Fn(&str) -> Option<String>) -> Self {
        let values = DECISION_HEADERS
            .iter()
            .filter(|wanted| names.iter().any(|n| n == *wanted))
            .filter_map(|name| read(name).map(|value| ((*name).to_owned(), value)))
            .collect();
        Self { names, values, size }
    }

    /// Headers from `(name, value)` pairs, combined as the runtime's `Headers` does: names
    /// lower-cased, repeats joined with `, ` (`Cookie` with `; `, as HTTP/2 requires). Every
    /// value is kept, so tests can look at the whole origin request.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let mut headers = Self::default();
        for (name, value) in pairs {
            let name = name.to_ascii_lowercase();
            headers.size += name.len() + value.len() + 4;
            let joiner = if name == "cookie" { "; " } else { ", " };
            match headers.values.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => {
                    existing.push_str(joiner);
                    existing.push_str(value);
                }
                None => {
                    headers.names.push(name.clone());
                    headers.values.push((name, (*value).to_owned()));
                }
            }
        }
        headers
    }

    /// The value of a decision header, as sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(DECISION_HEADERS.contains(&name), "the edge never reads `{name}`: add it to DECISION_HEADERS");
        self.value(name)
    }

    /// A value if it was read (every value for [`RequestHeaders::from_pairs`]).
    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Whether the client sent a header of this (lower-case) name.
    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// Every header name the client sent.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_headers_read_only_decision_values_but_know_every_name() {
        let asked = std::cell::RefCell::new(Vec::new());
        let names = vec!["x-auth-request-groups".to_owned(), "cookie".to_owned(), "accept".to_owned()];
        let headers = RequestHeaders::from_runtime(names, 99, |name| {
            asked.borrow_mut().push(name.to_owned());
            Some(format!("value of {name}"))
        });
        assert_eq!(*asked.borrow(), ["cookie", "accept"]);
        assert_eq!(headers.names().collect::<Vec<_>>(), ["x-auth-request-groups", "cookie", "accept"]);
        assert_eq!(headers.get("cookie"), Some("value of cookie"));
        assert_eq!(headers.get("authorization"), None);
        assert!(headers.contains("x-auth-request-groups"));
        assert_eq!(headers.size, 99);
    }

    #[test]
    fn pairs_combine_like_the_runtime() {
        let h = RequestHeaders::from_pairs(&[("Cookie", "a=1"), ("cookie", "b=2"), ("Accept", "x"), ("accept", "y")]);
        assert_eq!(h.get("cookie"), Some("a=1; b=2"));
        assert_eq!(h.get("accept"), Some("x, y"));
        assert_eq!(h.names().collect::<Vec<_>>(), ["cookie", "accept"]);
    }
}
