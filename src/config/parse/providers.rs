//! The provider table: the flat `OIDC_*` / `ENTRA_*` settings (the provider named `default`)
//! and the `PROVIDERS` JSON list of named providers beside or instead of them.
//!
//! Each `PROVIDERS` entry is checked by the very code that checks the flat settings: its fields
//! are served to a collector of its own under the flat names they mirror (`issuer` as
//! `OIDC_ISSUER`, `entra_tenant` as `ENTRA_TENANT`, ...), and the problems found come back
//! prefixed with the entry's name and field. So every rule (https issuers, Entra presets,
//! client authentication, scopes, algorithms, audiences) holds alike for every provider.

use super::{Collector, provider};
use crate::config::{DEFAULT_PROVIDER, ProviderConfig, SettingError, names};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Longest provider name: it ends up in a cookie name.
const MAX_NAME_LEN: usize = 32;

const NAME_FIX: &str = "name each provider with 1 to 32 of a-z, 0-9 and -, e.g. \"partners\" (not starting with bind-)";
const ENTRY_FIX: &str = "write PROVIDERS as a JSON array of {name, issuer or entra_tenant, client_id, client_secret_name, ...} (see README, Provider table)";
const SECRET_NAME_FIX: &str = "store the client secret as a Worker secret of its own (`wrangler secret put PARTNERS_CLIENT_SECRET`) and give its name, never the secret itself";

/// An entry's field and the flat setting it stands for; `secret` fields hold the *name* of a
/// Worker secret, whose value is what the flat setting would hold.
struct Field {
    field: &'static str,
    setting: &'static str,
    secret: bool,
}

const fn field(field: &'static str, setting: &'static str) -> Field {
    Field { field, setting, secret: false }
}

const FIELDS: [Field; 20] = [
    field("issuer", names::OIDC_ISSUER),
    field("client_id", names::OIDC_CLIENT_ID),
    Field { field: "client_secret_name", setting: names::OIDC_CLIENT_SECRET, secret: true },
    field("client_auth_method", names::OIDC_CLIENT_AUTH_METHOD),
    Field { field: "client_private_key_name", setting: names::OIDC_CLIENT_PRIVATE_KEY, secret: true },
    field("client_assertion_alg", names::OIDC_CLIENT_ASSERTION_ALG),
    field("client_cert_thumbprint_sha256", names::OIDC_CLIENT_CERT_THUMBPRINT_SHA256),
    field("client_cert_thumbprint_sha1", names::OIDC_CLIENT_CERT_THUMBPRINT_SHA1),
    field("scopes", names::OIDC_SCOPES),
    field("resource", names::OIDC_RESOURCE),
    field("allowed_algs", names::OIDC_ALLOWED_ALGS),
    field("auth_params", names::OIDC_AUTH_PARAMS),
    field("api_audiences", names::API_AUDIENCES),
    field("entra_tenant", names::ENTRA_TENANT),
    field("entra_version", names::ENTRA_VERSION),
    field("entra_authority", names::ENTRA_AUTHORITY),
    field("entra_allowed_tenants", names::ENTRA_ALLOWED_TENANTS),
    field("entra_api_token_versions", names::ENTRA_API_TOKEN_VERSIONS),
    field("entra_groups_overage", names::ENTRA_GROUPS_OVERAGE),
    field("entra_graph_url", names::ENTRA_GRAPH_URL),
];

/// Settings every provider shares: an entry sees the deployment's value (`API_AUDIENCES` only
/// when the entry has no `api_audiences`).
const SHARED: [&str; 3] = [names::OIDC_CLOCK_SKEW, names::ON_BEHALF_OF_GRANT, names::API_AUDIENCES];

/// The flat settings that describe the default provider only.
const FLAT_ONLY: [&str; 13] = [
    names::OIDC_CLIENT_ID,
    names::OIDC_CLIENT_SECRET,
    names::OIDC_CLIENT_AUTH_METHOD,
    names::OIDC_CLIENT_PRIVATE_KEY,
    names::OIDC_CLIENT_ASSERTION_ALG,
    names::OIDC_CLIENT_CERT_THUMBPRINT_SHA256,
    names::OIDC_CLIENT_CERT_THUMBPRINT_SHA1,
    names::OIDC_SCOPES,
    names::OIDC_RESOURCE,
    names::OIDC_ALLOWED_ALGS,
    names::OIDC_AUTH_PARAMS,
    names::ENTRA_GROUPS_OVERAGE,
    names::ENTRA_GRAPH_URL,
];

/// Every provider, the default one first, or `None` when any is wrong (each problem recorded);
/// and every usable provider name (the default first), so that routes naming a provider can
/// be checked even then.
pub(super) fn providers(c: &mut Collector<'_>) -> (Option<Vec<ProviderConfig>>, Vec<String>) {
    let table = c.optional(names::PROVIDERS);
    let flat = table.is_none() || c.optional(names::OIDC_ISSUER).is_some() || c.optional(names::ENTRA_TENANT).is_some();
    let mut all = Vec::new();
    let mut complete = true;
    if flat {
        match provider(c, DEFAULT_PROVIDER) {
            Some(default) => all.push(default),
            None => complete = false,
        }
    } else {
        let stray: Vec<&str> = FLAT_ONLY.into_iter().filter(|s| c.optional(s).is_some()).collect();
        for setting in stray {
            c.fail(
                setting,
                "is set, but neither OIDC_ISSUER nor ENTRA_TENANT is, so there is no flat default provider for it",
                "move it into the PROVIDERS entry it belongs to, or set OIDC_ISSUER for the default provider",
            );
            complete = false;
        }
    }
    let mut names: Vec<String> = if flat { vec![DEFAULT_PROVIDER.to_owned()] } else { Vec::new() };
    if let Some(raw) = table {
        for entry in entries(c, &raw) {
            match entry.and_then(|entry| table_provider(c, &entry, &mut names)) {
                Some(provider) => all.push(provider),
                None => complete = false,
            }
        }
    }
    // The default first, the others in table order.
    if let Some(default) = all.iter().position(|p| p.name == DEFAULT_PROVIDER) {
        let default = all.remove(default);
        all.insert(0, default);
    }
    if let Some(default) = names.iter().position(|n| n == DEFAULT_PROVIDER) {
        let default = names.remove(default);
        names.insert(0, default);
    }
    distinct_issuers(c, &all);
    ((complete && !all.is_empty()).then_some(all), names)
}

/// The entries of `PROVIDERS`, each an object or `None` (problem recorded).
fn entries(c: &mut Collector<'_>, raw: &str) -> Vec<Option<Map<String, Value>>> {
    let list = match crate::json::decode::<Value>(raw.as_bytes()) {
        Ok(Value::Array(list)) if !list.is_empty() => list,
        Ok(_) => {
            c.fail(names::PROVIDERS, "is not a non-empty JSON array", ENTRY_FIX);
            return vec![None];
        }
        Err(e) => {
            c.fail(names::PROVIDERS, format!("is not JSON ({e})"), ENTRY_FIX);
            return vec![None];
        }
    };
    let mut entries = Vec::new();
    for (i, value) in list.into_iter().enumerate() {
        match value {
            Value::Object(entry) => entries.push(Some(entry)),
            _ => {
                c.fail(names::PROVIDERS, format!("entry {i} is not an object"), ENTRY_FIX);
                entries.push(None);
            }
        }
    }
    entries
}

/// Whether `name` can name a provider (and a cookie, `__Host-edgeguard-<name>`, that no other
/// gateway cookie shares).
fn is_provider_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with("bind-")
}

/// One entry, checked as the flat settings are. `names` holds the names taken so far.
fn table_provider(
    c: &mut Collector<'_>,
    entry: &Map<String, Value>,
    names: &mut Vec<String>,
) -> Option<ProviderConfig> {
    let name = match entry.get("name") {
        Some(Value::String(name)) if is_provider_name(name) => name.clone(),
        Some(other) => {
            c.fail(names::PROVIDERS, format!("provider name {other} is not usable"), NAME_FIX);
            return None;
        }
        None => {
            c.fail(names::PROVIDERS, "an entry has no name", NAME_FIX);
            return None;
        }
    };
    if names.contains(&name) {
        c.fail(
            names::PROVIDERS,
            format!("provider {name:?} is listed twice (the flat OIDC_* settings are the provider named default)"),
            "give each provider its own name",
        );
        return None;
    }
    names.push(name.clone());
    let settings = entry_settings(c, &name, entry)?;
    let deployment = c.lookup;
    let lookup = |setting: &str| {
        settings.get(setting).cloned().or_else(|| match SHARED.contains(&setting) {
            true => deployment(setting),
            false => None,
        })
    };
    let mut sub = Collector { lookup: &lookup, errors: Vec::new() };
    let provider = provider(&mut sub, &name);
    let errors = sub.errors;
    let had_errors = !errors.is_empty();
    for error in errors {
        c.errors.push(entry_error(&name, error));
    }
    provider.filter(|_| !had_errors)
}

/// The entry's fields as the flat settings they mirror, secrets read by name.
fn entry_settings(
    c: &mut Collector<'_>,
    name: &str,
    entry: &Map<String, Value>,
) -> Option<HashMap<&'static str, String>> {
    let mut settings = HashMap::new();
    let mut ok = true;
    for (key, value) in entry.iter().filter(|(key, _)| *key != "name") {
        let Some(field) = FIELDS.iter().find(|f| f.field == key) else {
            c.fail(names::PROVIDERS, format!("provider {name:?}: unknown field {key:?}"), ENTRY_FIX);
            ok = false;
            continue;
        };
        let Some(text) = field_text(value) else {
            c.fail(
                names::PROVIDERS,
                format!("provider {name:?}: {key} is not a string (or a list of strings, or for auth_params an object of strings)"),
                ENTRY_FIX,
            );
            ok = false;
            continue;
        };
        if !field.secret {
            settings.insert(field.setting, text);
            continue;
        }
        match secret(c, name, key, &text) {
            Some(value) => {
                settings.insert(field.setting, value);
            }
            None => ok = false,
        }
    }
    ok.then_some(settings)
}

/// The value of the Worker secret an entry names in `key`.
fn secret(c: &mut Collector<'_>, provider: &str, key: &str, secret_name: &str) -> Option<String> {
    let plausible = !secret_name.is_empty()
        && secret_name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !secret_name.starts_with(|ch: char| ch.is_ascii_digit());
    let reserved = [names::SESSION_SECRET, names::ASSERTION_SIGNING_KEY, names::ASSERTION_PREVIOUS_SIGNING_KEY];
    if !plausible || reserved.contains(&secret_name) {
        c.fail(
            names::PROVIDERS,
            format!(
                "provider {provider:?}: {key} {secret_name:?} is not the name of a secret of its own (A-Z, 0-9, _)"
            ),
            SECRET_NAME_FIX,
        );
        return None;
    }
    let value = c.optional(secret_name);
    if value.is_none() {
        c.fail(
            names::PROVIDERS,
            format!("provider {provider:?}: {key} names the secret {secret_name}, which is not set"),
            SECRET_NAME_FIX,
        );
    }
    value
}

/// A field's value as the flat setting's text: strings as they are, lists space-separated,
/// `auth_params` objects form-encoded.
fn field_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Array(items) => {
            items.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().map(|v| v.join(" "))
        }
        Value::Object(params) => {
            let mut form = ::url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in params {
                form.append_pair(k, v.as_str()?);
            }
            Some(form.finish())
        }
        _ => None,
    }
}

/// A problem found in an entry, said in the entry's terms.
fn entry_error(provider: &str, error: SettingError) -> SettingError {
    let field = FIELDS.iter().find(|f| f.setting == error.setting).map_or(error.setting, |f| f.field);
    let fix = match (error.setting, error.problem.as_str()) {
        (names::OIDC_CLIENT_SECRET, "is not set") => {
            "name the Worker secret holding this provider's client secret in client_secret_name (or use client_auth_method private_key_jwt with client_private_key_name)"
        }
        (names::OIDC_CLIENT_PRIVATE_KEY, "is not set") => {
            "name the Worker secret holding this provider's PKCS#8 key in client_private_key_name"
        }
        _ => error.fix,
    };
    SettingError {
        setting: names::PROVIDERS,
        problem: format!("provider {provider:?}: {field} ({}) {}", error.setting, error.problem),
        fix,
    }
}

/// Two providers with one issuer would share sessions' back-channel index and make a bearer
/// token's `iss` name two key sets.
fn distinct_issuers(c: &mut Collector<'_>, providers: &[ProviderConfig]) {
    for (i, p) in providers.iter().enumerate() {
        if let Some(twin) = providers.iter().take(i).find(|q| q.issuer == p.issuer) {
            c.fail(
                names::PROVIDERS,
                format!("providers {:?} and {:?} have the same issuer {}", twin.name, p.name, p.issuer),
                "list each provider once; one provider can serve several routes",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse::tests::{parse as parse_settings, settings};
    use crate::config::{ClientAuth, Config, ConfigErrors, Secret};

    const PARTNERS: &str = r#"[{"name":"partners","issuer":"https://partners.example.com","client_id":"gw-p",
        "client_secret_name":"PARTNERS_SECRET","scopes":["openid","email"],"api_audiences":"api://p",
        "auth_params":{"prompt":"select_account"}}]"#;

    /// The config unit tests' valid settings, with the partners secret, `pairs` over them and `without` removed.
    fn parse(pairs: &[(&str, &str)], without: &[&str]) -> Result<Config, ConfigErrors> {
        let mut map = settings(&[&[("PARTNERS_SECRET", "partners-secret")], pairs].concat());
        for name in without {
            map.remove(*name);
        }
        parse_settings(&map)
    }

    fn problems(errors: ConfigErrors) -> Vec<String> {
        errors.0.iter().map(|e| format!("{}: {}", e.setting, e.problem)).collect()
    }

    #[test]
    fn the_table_adds_named_providers_beside_the_flat_default() {
        let routes = r#"[{"prefix":"/partners/","provider":"partners"},{"prefix":"/"}]"#;
        let config = parse(&[("PROVIDERS", PARTNERS), ("ROUTES", routes)], &[]).unwrap();
        assert_eq!(config.provider.name, "default");
        let partners = config.provider_at(1);
        assert_eq!((partners.name.as_str(), partners.issuer.as_str()), ("partners", "https://partners.example.com"));
        assert_eq!(partners.client_auth, ClientAuth::ClientSecretBasic(Secret::new("partners-secret".into())));
        assert_eq!(partners.scopes, vec!["openid", "email"]);
        assert_eq!(partners.audiences, vec!["api://p"]);
        assert_eq!(partners.auth_params, vec![("prompt".to_owned(), "select_account".to_owned())]);
        assert_eq!(config.provider_index("partners"), Some(1));
        assert_eq!(config.routes.find("/partners/x").unwrap().unwrap().providers.session, 1);
        assert_eq!(config.routes.find("/x").unwrap().unwrap().providers.session, 0);
    }

    #[test]
    fn the_table_alone_names_every_provider_and_its_default() {
        let table = r#"[{"name":"staff","issuer":"https://staff.example.com","client_id":"a","client_secret_name":"A_SECRET"},
            {"name":"default","issuer":"https://idp.example.com","client_id":"b","client_secret_name":"B_SECRET"}]"#;
        let flat = ["OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"];
        let config = parse(&[("PROVIDERS", table), ("A_SECRET", "a"), ("B_SECRET", "b")], &flat).unwrap();
        assert_eq!((config.provider.name.as_str(), config.provider_at(1).name.as_str()), ("default", "staff"));
        // Without one named default, routes must say which provider they mean.
        let table = table.replace("\"default\"", "\"partners\"");
        let settings = [("PROVIDERS", table.as_str()), ("A_SECRET", "a"), ("B_SECRET", "b")];
        let errors = problems(parse(&settings, &flat).unwrap_err());
        assert!(errors.iter().any(|e| e.starts_with("ROUTES: is not set, and with several providers")), "{errors:?}");
        let routes = [("ROUTES", r#"[{"prefix":"/","provider":"partners"}]"#)];
        let config = parse(&[settings.as_slice(), &routes].concat(), &flat).unwrap();
        assert_eq!(config.provider.name, "staff", "the first entry is index 0");
        assert_eq!(config.routes.find("/").unwrap().unwrap().providers.session, 1);
    }

    #[test]
    fn every_bad_entry_is_named() {
        let table = r#"[{"name":"partners","issuer":"http://partners.example.com","client_id":"p","client_secret_name":"PARTNERS_SECRET"},
            {"name":"partners","issuer":"https://b.example.com","client_id":"b","client_secret_name":"PARTNERS_SECRET"},
            {"name":"Bad Name","issuer":"https://c.example.com"},
            {"name":"twin","issuer":"https://idp.example.com","client_id":"t","client_secret_name":"PARTNERS_SECRET"},
            {"name":"nosecret","issuer":"https://d.example.com","client_id":"d","client_secret_name":"MISSING_SECRET"},
            {"name":"typo","issuer":"https://e.example.com","client_id":"e","client_secret_name":"PARTNERS_SECRET","scope":"x"},
            {"name":"plain","issuer":"https://f.example.com","client_id":"f","client_secret_name":"hunter2"},
            {"name":"nameless","issuer":"https://g.example.com","client_id":"g"}]"#;
        let routes = r#"[{"prefix":"/","provider":"nobody"}]"#;
        let errors = problems(parse(&[("PROVIDERS", table), ("ROUTES", routes)], &[]).unwrap_err());
        for expected in [
            r#"PROVIDERS: provider "partners": issuer (OIDC_ISSUER) uses plain http"#,
            r#"PROVIDERS: provider "partners" is listed twice"#,
            r#"PROVIDERS: provider name "Bad Name" is not usable"#,
            r#"PROVIDERS: providers "default" and "twin" have the same issuer"#,
            r#"PROVIDERS: provider "nosecret": client_secret_name names the secret MISSING_SECRET, which is not set"#,
            r#"PROVIDERS: provider "typo": unknown field "scope""#,
            r#"PROVIDERS: provider "plain": client_secret_name "hunter2" is not the name of a secret"#,
            r#"PROVIDERS: provider "nameless": client_secret_name (OIDC_CLIENT_SECRET) is not set"#,
            r#"ROUTES: route 0: names provider "nobody", which is not configured"#,
        ] {
            assert!(errors.iter().any(|e| e.starts_with(expected)), "{expected}\nnot in {errors:#?}");
        }
    }

    #[test]
    fn flat_provider_settings_without_a_flat_provider_are_refused() {
        let table = r#"[{"name":"staff","issuer":"https://staff.example.com","client_id":"a","client_secret_name":"PARTNERS_SECRET"}]"#;
        let errors = parse(&[("PROVIDERS", table), ("OIDC_SCOPES", "openid")], &["OIDC_ISSUER"]).unwrap_err();
        let settings: Vec<&str> = errors.0.iter().map(|e| e.setting).collect();
        assert_eq!(settings, vec!["OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_SCOPES"]);
        assert!(errors.0[0].problem.contains("neither OIDC_ISSUER nor ENTRA_TENANT"), "{errors}");
    }

    #[test]
    fn bearer_routes_need_an_audience_for_each_provider_they_accept() {
        let table = PARTNERS.replace(r#","api_audiences":"api://p""#, "");
        let routes = r#"[{"prefix":"/api/","auth":"bearer","providers":["default","partners"]}]"#;
        let settings = [("PROVIDERS", table.as_str()), ("ROUTES", routes), ("API_AUDIENCES", "api://shared")];
        let config = parse(&settings, &[]).unwrap();
        assert_eq!(config.provider_at(1).audiences, vec!["api://shared"], "API_AUDIENCES is every provider's default");
        assert_eq!(config.routes.find("/api/x").unwrap().unwrap().providers.bearer, vec![0, 1]);
        let errors = problems(parse(&settings[..2], &[]).unwrap_err());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[1].contains("is empty for provider \"partners\""), "{errors:?}");
    }
}
