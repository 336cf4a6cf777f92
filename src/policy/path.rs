//! The one canonical form of a request path: what routes are matched on and exactly what the
//! origin receives.
//!
//! Route checks are bypassed wherever the gateway and the origin read a path differently
//! ("path confusion"): `/assets/..;/admin` is `/assets/` to a prefix match and `/admin` to
//! Tomcat, Jetty and Spring, which drop `;` path parameters before resolving `..`; `/a//b` is
//! one path to some servers and two to others. Rather than guess each origin's reading, paths
//! that origins disagree on are refused, and the path that was matched is the path forwarded.

/// Why a path has no canonical form. Each maps to a `400` with its own reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not starting with `/`, an invalid or dangerous escape (`%2F`, `%5C`, `%00`), a raw `\`,
    /// or a byte that cannot appear in a request target.
    NotCanonical,
    /// A `.` or `..` segment (also when written `%2e`): the runtime resolves the plain ones
    /// before we see them, so what is left is an attempt to resolve them past the route.
    DotSegment,
    /// `//` inside the path: servers disagree on whether it is one segment or two.
    EmptySegment,
    /// `;` (or `%3B`) in a segment: a path parameter, dropped by some origins before routing.
    Parameter,
    /// The path matches another route when letter case is ignored (`/API/admin` against
    /// `/api/admin/`): case-insensitive origins (IIS, ASP.NET, many static hosts) would serve
    /// the other route's resource under this route's rules.
    CaseAmbiguous,
}

impl PathError {
    /// The log reason code of the refusal.
    pub fn reason(self) -> &'static str {
        match self {
            PathError::NotCanonical => "path_not_canonical",
            PathError::DotSegment => "path_dot_segment",
            PathError::EmptySegment => "path_empty_segment",
            PathError::Parameter => "path_parameter",
            PathError::CaseAmbiguous => "path_case_ambiguous",
        }
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// Decode percent-escapes of unreserved characters (RFC 3986 §2.3: `/%61pi/` is `/api/`),
/// upper-case the hex of the others, and refuse what origins read differently.
///
/// The result is a fixed point: `normalise_path(p)` of a normalised `p` is `p` itself.
pub fn normalise_path(path: &str) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotCanonical);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let decoded = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or(PathError::NotCanonical)?;
                match decoded {
                    b'/' | b'\\' | 0 => return Err(PathError::NotCanonical),
                    b';' => return Err(PathError::Parameter),
                    c if is_unreserved(c) => out.push(c as char),
                    c => {
                        out.push('%');
                        out.push_str(&format!("{c:02X}"));
                    }
                }
                i += 3;
            }
            b';' => return Err(PathError::Parameter),
            // The query and fragment are split off before; one here is not a path character.
            b'?' | b'#' => return Err(PathError::NotCanonical),
            // A request target is printable ASCII; the runtime percent-encodes the rest.
            b'\\' | ..=0x20 | 0x7f.. => return Err(PathError::NotCanonical),
            _ => {
                out.push(b as char);
                i += 1;
            }
        }
    }
    check_segments(&out)?;
    Ok(out)
}

fn check_segments(path: &str) -> Result<(), PathError> {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => return Err(PathError::DotSegment),
            // The last segment may be empty: that is a trailing slash, not `//`.
            "" if i != last => return Err(PathError::EmptySegment),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_unreserved_escapes_only() {
        assert_eq!(normalise_path("/%61pi/x").as_deref(), Ok("/api/x"));
        assert_eq!(normalise_path("/a%20b").as_deref(), Ok("/a%20b"));
        assert_eq!(normalise_path("/a%c3%bc").as_deref(), Ok("/a%C3%BC"));
        assert_eq!(normalise_path("/").as_deref(), Ok("/"));
        assert_eq!(normalise_path("/a/").as_deref(), Ok("/a/"));
        assert_eq!(normalise_path("/a/.well-known/x..y").as_deref(), Ok("/a/.well-known/x..y"));
    }

    #[test]
    fn refuses_what_origins_read_differently() {
        for (path, why) in [
            ("/a%2fb", PathError::NotCanonical),
            ("/a%5Cb", PathError::NotCanonical),
            ("/a\\b", PathError::NotCanonical),
            ("/a%zz", PathError::NotCanonical),
            ("/a%2", PathError::NotCanonical),
            ("/a%00", PathError::NotCanonical),
            ("/a?b", PathError::NotCanonical),
            ("/a#b", PathError::NotCanonical),
            ("/a b", PathError::NotCanonical),
            ("/a\u{7f}", PathError::NotCanonical),
            ("a", PathError::NotCanonical),
            ("", PathError::NotCanonical),
            ("/assets/..;/admin/users", PathError::Parameter),
            ("/api/admin;x/users", PathError::Parameter),
            ("/api/admin%3bx/users", PathError::Parameter),
            ("/public/..", PathError::DotSegment),
            ("/public/%2e%2e/secret", PathError::DotSegment),
            ("/public/%2E/secret", PathError::DotSegment),
            ("/./x", PathError::DotSegment),
            ("//evil", PathError::EmptySegment),
            ("/a//b", PathError::EmptySegment),
        ] {
            assert_eq!(normalise_path(path), Err(why), "{path}");
        }
    }

    #[test]
    fn a_normalised_path_is_a_fixed_point() {
        for path in ["/%61pi/x", "/a%20b", "/a%c3%bc/", "/x/y-z_~.q", "/%7e"] {
            let once = normalise_path(path).unwrap();
            assert_eq!(normalise_path(&once).as_deref(), Ok(once.as_str()), "{path}");
        }
    }
}
