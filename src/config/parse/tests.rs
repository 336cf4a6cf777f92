use super::*;
use crate::config::{ClientAuth, Secret};
use std::collections::HashMap;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A valid deployment's settings, with `overrides` set over them (the last of a name wins).
pub(super) fn settings(overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = [
        ("OIDC_ISSUER", "https://idp.example.com"),
        ("OIDC_CLIENT_ID", "edgeguard"),
        ("OIDC_CLIENT_SECRET", "client-secret"),
        ("PUBLIC_URL", "https://gw.example.com"),
        ("ORIGIN_URL", "https://origin.internal"),
        ("SESSION_SECRET", SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in overrides {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    map
}

pub(super) fn parse(map: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
    Config::from_settings(|name| map.get(name).cloned())
}

fn settings_named(errors: &ConfigErrors) -> Vec<&'static str> {
    errors.0.iter().map(|e| e.setting).collect()
}

#[test]
fn minimal_settings_get_documented_defaults() {
    let config = parse(&settings(&[])).unwrap();
    assert_eq!(config.provider.issuer, "https://idp.example.com");
    assert_eq!(config.provider.scopes, vec!["openid", "profile", "email"]);
    assert_eq!(config.provider.client_auth, ClientAuth::ClientSecretBasic(Secret::new("client-secret".into())));
    assert_eq!(config.provider.clock_skew_secs, 60);
    assert_eq!(config.provider.allowed_algs, JwsAlgorithm::ALL.to_vec());
    assert_eq!(config.provider.resource, None);
    assert_eq!(config.session.ttl_secs, 8 * 3600);
    assert!(config.api_path_prefixes.is_empty());
    assert!(config.log_forwarded);
    assert_eq!(config.redirect_uri(), "https://gw.example.com/auth/callback");
}

#[test]
fn every_problem_is_reported_at_once_with_a_fix() {
    let mut map = settings(&[
        ("OIDC_ISSUER", "http://idp.example.com"),
        ("OIDC_CLIENT_AUTH_METHOD", "private_key_jwt_maybe"),
        ("OIDC_ALLOWED_ALGS", "RS256,HS256,none"),
        ("SESSION_SECRET", "short"),
        ("SESSION_TTL", "forever"),
        ("PUBLIC_URL", "https://gw.example.com/app"),
        ("API_PATH_PREFIXES", "api/"),
    ]);
    map.remove("OIDC_CLIENT_ID");
    map.insert("ORIGIN_URL".into(), "   ".into());
    let errors = parse(&map).unwrap_err();
    assert_eq!(
        settings_named(&errors),
        vec![
            "OIDC_ISSUER",
            "OIDC_CLIENT_ID",
            "OIDC_CLIENT_AUTH_METHOD",
            "OIDC_ALLOWED_ALGS",
            "OIDC_ALLOWED_ALGS",
            "PUBLIC_URL",
            "ORIGIN_URL",
            "SESSION_SECRET",
            "SESSION_TTL",
            "API_PATH_PREFIXES",
        ]
    );
    let text = errors.to_string();
    assert!(text.contains("OIDC_ISSUER: uses plain http on a non-loopback host"), "{text}");
    assert!(text.contains("OIDC_CLIENT_ID: is not set. Fix:"), "{text}");
    assert!(errors.0.iter().all(|e| !e.fix.is_empty()));
    assert!(!text.contains("short"), "secrets never appear in errors: {text}");
}

#[test]
fn loopback_http_is_allowed_for_local_demos() {
    let config = parse(&settings(&[
        ("OIDC_ISSUER", "http://127.0.0.1:9400"),
        ("PUBLIC_URL", "http://localhost:8787"),
        ("ORIGIN_URL", "http://127.0.0.1:9401"),
    ]))
    .unwrap();
    assert_eq!(config.redirect_uri(), "http://localhost:8787/auth/callback");
}

#[test]
fn scopes_always_start_with_openid_without_duplicates() {
    let config = parse(&settings(&[("OIDC_SCOPES", "email, openid email api://x/read")])).unwrap();
    assert_eq!(config.provider.scopes, vec!["openid", "email", "api://x/read"]);
}

#[test]
fn optional_settings_parse() {
    let config = parse(&settings(&[
        ("OIDC_CLIENT_AUTH_METHOD", "client_secret_post"),
        ("OIDC_RESOURCE", "https://api.example.test"),
        ("OIDC_ALLOWED_ALGS", "ES256 RS256"),
        ("OIDC_CLOCK_SKEW", "30s"),
        ("SESSION_TTL", "1h"),
        ("SESSION_SECRET", &format!("{SECRET}new,{SECRET}old")),
        ("API_PATH_PREFIXES", "/api/, /graphql"),
        ("LOG_FORWARDED", "False"),
    ]))
    .unwrap();
    assert!(!config.log_forwarded);
    assert_eq!(config.provider.client_auth, ClientAuth::ClientSecretPost(Secret::new("client-secret".into())));
    assert_eq!(config.provider.resource.as_deref(), Some("https://api.example.test"));
    assert_eq!(config.provider.allowed_algs, vec![JwsAlgorithm::Es256, JwsAlgorithm::Rs256]);
    assert_eq!(config.provider.clock_skew_secs, 30);
    assert_eq!(config.session.ttl_secs, 3600);
    assert_eq!(config.api_path_prefixes, vec!["/api/", "/graphql"]);
}

#[test]
fn clock_skew_is_bounded() {
    let errors = parse(&settings(&[("OIDC_CLOCK_SKEW", "1h")])).unwrap_err();
    assert_eq!(settings_named(&errors), vec!["OIDC_CLOCK_SKEW"]);
}

#[test]
fn the_client_id_is_never_an_api_audience() {
    let errors = parse(&settings(&[("API_AUDIENCES", "api://orders,edgeguard")])).unwrap_err();
    assert_eq!(settings_named(&errors), vec!["API_AUDIENCES"]);
    assert!(errors.0[0].problem.contains("ID tokens"), "{}", errors.0[0].problem);
    // Defaulted from OIDC_RESOURCE, the same rule holds.
    let errors = parse(&settings(&[("OIDC_RESOURCE", "edgeguard")])).unwrap_err();
    assert_eq!(settings_named(&errors), vec!["API_AUDIENCES"]);
}

#[test]
fn origins_off_this_machine_need_https() {
    let errors = parse(&settings(&[("ORIGIN_URL", "http://origin.internal")])).unwrap_err();
    assert_eq!(settings_named(&errors), vec!["ORIGIN_URL"]);
    let routes = r#"[{"prefix": "/", "origin": "http://10.0.0.5:8080"}]"#;
    let errors = parse(&settings(&[("ROUTES", routes)])).unwrap_err();
    assert_eq!(settings_named(&errors), vec!["ROUTES"]);
    assert!(errors.0[0].problem.contains("plain http"), "{}", errors.0[0].problem);
    let local = r#"[{"prefix": "/", "origin": "http://127.0.0.1:9401"}]"#;
    assert!(parse(&settings(&[("ORIGIN_URL", "http://localhost:9401"), ("ROUTES", local)])).is_ok());
}

#[test]
fn private_key_jwt_needs_a_key_not_a_secret() {
    let pem = crate::testkit::native_crypto::rsa_a_pem();
    let mut map = settings(&[
        ("OIDC_CLIENT_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_CLIENT_PRIVATE_KEY", &pem),
        ("OIDC_CLIENT_ASSERTION_ALG", "PS256"),
        ("OIDC_CLIENT_CERT_THUMBPRINT_SHA1", "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8"),
    ]);
    map.remove("OIDC_CLIENT_SECRET");
    let config = parse(&map).unwrap();
    let ClientAuth::PrivateKeyJwt(assertion) = &config.provider.client_auth else { panic!("not private_key_jwt") };
    assert_eq!(assertion.key.alg, JwsAlgorithm::Ps256);
    assert_eq!(assertion.x5t.as_deref(), Some("W6ph5Mm5Pz8GgiULbPgzG37mj9g"));
    assert_eq!(assertion.x5t_s256, None);
    assert!(!format!("{config:?}").contains(&pem[40..80]), "the key never prints");
}

#[test]
fn private_key_jwt_problems_are_each_named() {
    let (_, ec_pem) = crate::testkit::native_crypto::TestKey::es256_with_pem();
    let errors = parse(&settings(&[
        ("OIDC_CLIENT_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_CLIENT_PRIVATE_KEY", &ec_pem),
        ("OIDC_CLIENT_ASSERTION_ALG", "RS256"),
        ("OIDC_CLIENT_CERT_THUMBPRINT_SHA256", "AB:CD"),
        ("OIDC_CLIENT_CERT_THUMBPRINT_SHA1", "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8AA"),
    ]))
    .unwrap_err();
    assert_eq!(
        settings_named(&errors),
        vec!["OIDC_CLIENT_ASSERTION_ALG", "OIDC_CLIENT_CERT_THUMBPRINT_SHA256", "OIDC_CLIENT_CERT_THUMBPRINT_SHA1"]
    );
    let text = errors.to_string();
    assert!(text.contains("use ES256 for a P-256 key"), "{text}");
    assert!(text.contains("has 4 hex digits; this digest has 64"), "{text}");

    let errors = parse(&settings(&[
        ("OIDC_CLIENT_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_CLIENT_PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"),
    ]))
    .unwrap_err();
    assert_eq!(settings_named(&errors), vec!["OIDC_CLIENT_PRIVATE_KEY"]);
    assert!(errors.to_string().contains("openssl pkcs8 -topk8"), "{errors}");
    let missing = parse(&settings(&[("OIDC_CLIENT_AUTH_METHOD", "private_key_jwt")])).unwrap_err();
    assert_eq!(settings_named(&missing), vec!["OIDC_CLIENT_PRIVATE_KEY"]);
}

/// The external suite configures the Worker from README's settings table alone, so a setting
/// the parser reads without a row there is one nobody outside can use.
#[test]
fn every_setting_the_parser_reads_has_a_row_in_readmes_settings_table() {
    let readme = include_str!("../../../README.md");
    let table = readme.split("\n## Settings").nth(1).and_then(|rest| rest.split("\n### ").next()).unwrap();
    let documented: Vec<&str> = table.lines().filter_map(|line| line.strip_prefix("| `")?.split('`').next()).collect();
    let entra = settings(&[("OIDC_ISSUER", ""), ("ENTRA_TENANT", "organizations"), ("ENTRA_ALLOWED_TENANTS", "*")]);
    for map in [settings(&[]), entra] {
        let asked = std::cell::RefCell::new(Vec::new());
        let _ = Config::from_settings(|name| {
            asked.borrow_mut().push(name.to_owned());
            map.get(name).cloned()
        });
        let undocumented: Vec<String> =
            asked.into_inner().into_iter().filter(|n| !documented.contains(&n.as_str())).collect();
        assert!(undocumented.is_empty(), "read but not in README's settings table: {undocumented:?}");
    }
}
