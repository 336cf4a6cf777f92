//! Path normalisation and route matching (`src/policy/`), on their own and through the whole
//! gateway with a table of public routes.
//!
//! The input is a request path (and query) on the first line and up to eight route prefixes on
//! the next. Each route goes to its own origin, so the forwarded URL tells which route won.
//!
//! Invariants: no panic; a route table with a prefix that has no canonical form, or the same
//! prefix twice, is refused; a normalised path re-normalises to itself and is canonical
//! (printable ASCII, no `;`, no `.`/`..` or empty segments, no escape that normalisation
//! decodes or refuses); the matched route covers the path on a segment boundary, no longer
//! route covers it, and no other route would cover it with letter case ignored; through the
//! gateway, a path is either refused with a 4xx or forwarded to the one route that covers it,
//! with exactly the canonical path it was matched on, which the origin's URL parser reads back
//! unchanged.
#![no_main]

use edgeguard::config::Config;
use edgeguard::gateway::{Gateway, IncomingRequest, Outcome, RequestHeaders};
use edgeguard::policy::{Origin, Route, RouteTable, normalise_path, parse_routes};
use edgeguard_fuzz::{FuzzRng, Input, OfflinePorts};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use url::Url;

const MAX_ROUTES: usize = 8;
const PUBLIC_URL: &str = "https://gw.example.com";

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let path = input.text_line();
    let mut prefixes = Vec::new();
    while !input.is_empty() && prefixes.len() < MAX_ROUTES {
        prefixes.push(input.text_line());
    }
    let normalised = normalise_path(&path);
    if let Ok(n) = &normalised {
        check_canonical(n);
    }
    let Some(table) = route_table(&prefixes) else { return };
    if let Ok(n) = &normalised {
        check_match(&table, n);
    }
    check_forwarding(&prefixes, &table, &path);
});

fn origin(i: usize) -> String {
    format!("https://r{i}.origin.internal")
}

fn routes_json(prefixes: &[String]) -> String {
    let routes: Vec<_> = prefixes
        .iter()
        .enumerate()
        .map(|(i, p)| json!({ "prefix": p, "auth": "public", "origin": origin(i) }))
        .collect();
    serde_json::to_string(&routes).unwrap()
}

/// The table for these prefixes, checking that it is refused exactly when it must be.
fn route_table(prefixes: &[String]) -> Option<RouteTable> {
    let table = parse_routes(&routes_json(prefixes), None);
    let canonical: Vec<Option<String>> = prefixes.iter().map(|p| normalise_path(p).ok()).collect();
    let duplicate = canonical.iter().enumerate().any(|(i, p)| canonical.get(..i).unwrap_or_default().contains(p));
    if duplicate || canonical.contains(&None) {
        assert!(table.is_err(), "accepted a bad route table {prefixes:?}");
    }
    let table = table.ok()?;
    let mut listed: Vec<&str> = table.routes().iter().map(|r| r.prefix.as_str()).collect();
    assert!(listed.windows(2).all(|w| w[0].len() >= w[1].len()), "not longest first: {listed:?}");
    listed.sort_unstable();
    let mut given: Vec<&str> = canonical.iter().flatten().map(String::as_str).collect();
    given.sort_unstable();
    assert_eq!(listed, given, "routes lost or invented, or prefixes not stored canonical");
    Some(table)
}

fn check_canonical(n: &str) {
    assert_eq!(normalise_path(n).as_deref(), Ok(n), "normalising twice changed the path");
    assert!(n.starts_with('/'), "{n:?}");
    assert!(n.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\' && b != b';'), "{n:?}");
    let segments: Vec<&str> = n.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        assert!(*segment != "." && *segment != "..", "dot segment in {n:?}");
        assert!(!segment.is_empty() || i + 1 == segments.len(), "empty segment in {n:?}");
    }
    for (i, _) in n.match_indices('%') {
        let hex = n.get(i + 1..i + 3).unwrap_or_else(|| panic!("dangling % in {n:?}"));
        let byte = u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad escape in {n:?}"));
        assert_eq!(hex, hex.to_ascii_uppercase(), "escapes are upper case");
        assert!(!byte.is_ascii_alphanumeric() && !b"-._~/\\\0;".contains(&byte), "kept %{hex} in {n:?}");
    }
}

/// Whether `prefix` covers `path` on a segment boundary.
fn covers(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'))
}

fn covers_ignoring_case(prefix: &str, path: &str) -> bool {
    covers(&prefix.to_ascii_lowercase(), &path.to_ascii_lowercase())
}

fn check_match(table: &RouteTable, path: &str) {
    let longest_exact = table.routes().iter().filter(|r| covers(&r.prefix, path)).map(|r| r.prefix.len()).max();
    let folded: Vec<&Route> = table.routes().iter().filter(|r| covers_ignoring_case(&r.prefix, path)).collect();
    match table.find(path) {
        Ok(Some(route)) => {
            assert!(covers(&route.prefix, path), "route {:?} does not cover {path:?}", route.prefix);
            assert_eq!(Some(route.prefix.len()), longest_exact, "a longer prefix covers {path:?}");
            // ROUTES refuses prefixes equal but for case, so no other route is a case twin.
            for other in folded.iter().filter(|r| r.prefix != route.prefix) {
                assert!(
                    other.prefix.len() < route.prefix.len(),
                    "{path:?} matched {:?} but {:?} covers it with case ignored",
                    route.prefix,
                    other.prefix
                );
            }
        }
        Ok(None) => assert!(folded.is_empty(), "no route chosen for {path:?} although {:?} covers it", folded),
        Err(_) => assert!(!folded.is_empty(), "{path:?} refused as case-ambiguous with no route near it"),
    }
}

/// The whole gateway: the path as the runtime hands it over (a parsed and re-serialised URL,
/// split as the edge splits it), decided with no outside world.
fn check_forwarding(prefixes: &[String], table: &RouteTable, raw: &str) {
    if !raw.starts_with('/') {
        return;
    }
    let Ok(url) = Url::parse(&format!("{PUBLIC_URL}{raw}")) else { return };
    let (path, query) = IncomingRequest::split_url(url.as_str());
    let settings = [
        ("OIDC_ISSUER", "https://idp.example.com"),
        ("OIDC_CLIENT_ID", "edgeguard"),
        ("OIDC_CLIENT_SECRET", "client-secret"),
        ("PUBLIC_URL", PUBLIC_URL),
        ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
    ];
    let routes = routes_json(prefixes);
    let config = Config::from_settings(|name| match name {
        "ROUTES" => Some(routes.clone()),
        _ => settings.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()),
    })
    .unwrap_or_else(|e| panic!("a valid route table made the config fail: {e}"));
    let gateway = Gateway::<OfflinePorts>::new(config);
    let ports = OfflinePorts { rng: FuzzRng::new(7), now_millis: 1_764_600_000_000 };
    let req = IncomingRequest {
        method: http::Method::GET,
        path: path.clone(),
        query: query.clone(),
        headers: RequestHeaders::from_pairs(&[]),
        form: None,
    };
    let decision = futures::executor::block_on(gateway.handle(&ports, &req));
    assert!(!decision.log.reason.is_empty());
    let canonical = normalise_path(&path);
    match decision.outcome {
        Outcome::Respond(response) => {
            let status = response.status().as_u16();
            let gateway_endpoint = canonical.as_deref().is_ok_and(|p| p.starts_with("/auth/"));
            assert!((400..500).contains(&status) || gateway_endpoint, "{path:?} answered {status}");
        }
        Outcome::Forward(plan) => {
            let canonical =
                canonical.unwrap_or_else(|e| panic!("forwarded {path:?}, which has no canonical form: {e:?}"));
            let (i, rest) = (0..prefixes.len())
                .find_map(|i| Some((i, plan.url.strip_prefix(&origin(i))?)))
                .unwrap_or_else(|| panic!("forwarded to an unknown origin: {}", plan.url));
            let sent = query.as_ref().map_or(canonical.clone(), |q| format!("{canonical}?{q}"));
            assert_eq!(rest, sent, "the origin gets another path than the one matched");
            let route =
                table.find(&canonical).ok().flatten().unwrap_or_else(|| panic!("forwarded {canonical:?} unmatched"));
            let Origin::Http(route_origin) = &route.origin else { panic!("the fuzzed routes name no binding") };
            assert_eq!(route_origin.as_str().trim_end_matches('/'), origin(i), "forwarded to another route's origin");
            assert_eq!(plan.binding, None, "an HTTP route forwarded to a binding");
            assert!(covers(&route.prefix, &canonical));
            let origin_reads =
                Url::parse(&plan.url).unwrap_or_else(|e| panic!("forwarded an invalid URL {}: {e}", plan.url));
            assert_eq!(origin_reads.path(), canonical, "the origin's URL parser reads another path");
        }
    }
}
