//! Configuration parsing: `Config::from_settings` with fuzzed settings (`src/config/`).
//!
//! The input overrides a valid baseline, one setting a line: `NAME=value`, or else a first
//! character that picks the setting among every name the parser asks for (so settings added
//! later are fuzzed too) followed by its value.
//!
//! Invariants: no panic; the same settings always give the same answer; a blank value is the
//! same as an unset one; a refusal names at least one setting, each error with a setting the
//! parser asked for, a problem and a fix; an accepted config holds what README promises
//! (`openid` scope first, clock skew at most 300 s, session lifetimes within 60 s to 30 days,
//! at least one algorithm and one route, an http(s) public URL).
#![no_main]

use edgeguard::config::{Config, ConfigErrors};
use edgeguard_fuzz::Input;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A valid deployment (as in the config unit tests); the fuzzer changes it from here.
const BASELINE: [(&str, &str); 6] = [
    ("OIDC_ISSUER", "https://idp.example.com"),
    ("OIDC_CLIENT_ID", "edgeguard"),
    ("OIDC_CLIENT_SECRET", "client-secret"),
    ("PUBLIC_URL", "https://gw.example.com"),
    ("ORIGIN_URL", "https://origin.internal"),
    ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
];
const THIRTY_DAYS: u64 = 30 * 24 * 3600;

type Settings = BTreeMap<String, String>;

fuzz_target!(|data: &[u8]| {
    let mut settings: Settings = BASELINE.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let (baseline, names) = parse(&settings);
    assert!(baseline.is_ok(), "the baseline must be valid: {:?}", baseline.err());
    let mut input = Input::new(data);
    while !input.is_empty() {
        let line = input.text_line();
        if let Some((name, value)) = setting(&line, &names) {
            settings.insert(name, value);
        }
    }
    let (result, asked) = parse(&settings);
    let (again, _) = parse(&settings);
    assert_eq!(summary(&result), summary(&again), "same settings, different answers");
    let without_blanks: Settings =
        settings.iter().filter(|(_, v)| !v.trim().is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(summary(&result), summary(&parse(&without_blanks).0), "a blank value differs from an unset one");
    match &result {
        Err(ConfigErrors(errors)) => {
            assert!(!errors.is_empty(), "refused without saying why");
            for e in errors {
                assert!(asked.iter().any(|n| n == e.setting), "error for a setting never read: {e}");
                assert!(!e.problem.is_empty() && !e.fix.is_empty(), "{e}");
            }
        }
        Ok(config) => check_config(config),
    }
});

/// One input line as a setting: `NAME=value` when NAME is a setting the parser reads (so seeds
/// stay readable), otherwise the first character picks the setting and the rest is its value.
fn setting(line: &str, names: &[String]) -> Option<(String, String)> {
    if let Some((name, value)) = line.split_once('=').filter(|(name, _)| names.iter().any(|n| n == name)) {
        return Some((name.to_owned(), value.to_owned()));
    }
    let mut chars = line.chars();
    let which = chars.next().map_or(0, |c| c as usize);
    let name = names.get(which % names.len().max(1))?;
    Some((name.clone(), chars.collect()))
}

/// Parse, recording every setting name the parser asks for, in order.
fn parse(settings: &Settings) -> (Result<Config, ConfigErrors>, Vec<String>) {
    let asked = RefCell::new(Vec::<String>::new());
    let result = Config::from_settings(|name| {
        if !asked.borrow().iter().any(|n| n == name) {
            asked.borrow_mut().push(name.to_owned());
        }
        settings.get(name).cloned()
    });
    (result, asked.into_inner())
}

/// A comparable digest: the errors, or the accepted config's `Debug` (secrets are redacted).
fn summary(result: &Result<Config, ConfigErrors>) -> Result<String, ConfigErrors> {
    result.as_ref().map(|c| format!("{c:?}")).map_err(Clone::clone)
}

fn check_config(config: &Config) {
    let p = &config.provider;
    assert_eq!(p.scopes.first().map(String::as_str), Some("openid"), "{:?}", p.scopes);
    assert!(p.clock_skew_secs <= 300);
    assert!(!p.allowed_algs.is_empty());
    assert!(matches!(config.public_url.scheme(), "http" | "https"));
    assert!((60..=THIRTY_DAYS).contains(&config.session.ttl_secs), "{}", config.session.ttl_secs);
    assert!((60..=THIRTY_DAYS).contains(&config.session.idle_secs), "{}", config.session.idle_secs);
    assert!((1..=300).contains(&config.session.revalidate_secs), "{}", config.session.revalidate_secs);
    assert!(!config.routes.routes().is_empty());
    assert!(config.routes.routes().iter().all(|r| r.prefix.starts_with('/')));
    assert!(config.redirect_uri().ends_with("/auth/callback"));
}
