//! The Entra preset: settings → authority, discovery, issuer rules; discovery documents shaped
//! like Entra's (tests/fixtures/entra) accepted or refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::config::{Config, ConfigErrors};
use crate::jwt::JwtError;
use crate::oidc::{DiscoveryError, ProviderMetadata};
use std::collections::HashMap;

pub const HOME: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const PARTNER: &str = "5f1c7a2e-3b4d-4c5e-8f60-718293a4b5c6";
const H: &str = "https://login.microsoftonline.com";

fn settings(pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let mut map: HashMap<&str, &str> = HashMap::from([
        ("OIDC_CLIENT_ID", "6731de76-14a6-49ae-97bc-6eba6914391e"),
        ("OIDC_CLIENT_SECRET", "client-secret"),
        ("PUBLIC_URL", "https://gw.example.com"),
        ("ORIGIN_URL", "https://origin.internal"),
        ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
    ]);
    map.extend(pairs.iter().copied());
    Config::from_settings(|name| map.get(name).map(|v| (*v).to_owned()))
}

fn entra(pairs: &[(&str, &str)]) -> Config {
    settings(pairs).unwrap()
}

fn problems(pairs: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    settings(pairs).unwrap_err().0.into_iter().map(|e| (e.setting, format!("{}: {}", e.problem, e.fix))).collect()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/entra/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn tenant_and_version_derive_the_authority_and_discovery() {
    let cases = [
        (HOME, "v2", format!("{H}/{HOME}/v2.0")),
        ("Contoso.onmicrosoft.com", "v2", format!("{H}/contoso.onmicrosoft.com/v2.0")),
        ("common", "v2", format!("{H}/common/v2.0")),
        ("organizations", "2.0", format!("{H}/organizations/v2.0")),
        ("consumers", "v2", format!("{H}/consumers/v2.0")),
        (HOME, "v1", format!("{H}/{HOME}")),
    ];
    for (tenant, version, authority) in cases {
        let mut pairs = vec![("ENTRA_TENANT", tenant), ("ENTRA_VERSION", version)];
        if matches!(tenant, "common" | "organizations") {
            pairs.push(("ENTRA_ALLOWED_TENANTS", HOME));
        }
        let config = entra(&pairs);
        assert_eq!(config.provider.issuer, authority, "{tenant} {version}");
        assert_eq!(config.provider.discovery_url, format!("{authority}/.well-known/openid-configuration"));
    }
    let national = entra(&[("ENTRA_TENANT", HOME), ("ENTRA_AUTHORITY", "https://login.microsoftonline.us/")]);
    assert_eq!(national.provider.issuer, format!("https://login.microsoftonline.us/{HOME}/v2.0"));
}

#[test]
fn v2_asks_for_offline_access_and_v1_sends_resource() {
    let v2 = entra(&[("ENTRA_TENANT", HOME), ("OIDC_SCOPES", "openid api://orders/Orders.Read")]);
    assert_eq!(v2.provider.scopes, ["openid", "api://orders/Orders.Read", "offline_access"]);
    assert_eq!(v2.provider.resource, None);
    let v1 = entra(&[("ENTRA_TENANT", HOME), ("ENTRA_VERSION", "v1"), ("OIDC_RESOURCE", "api://orders")]);
    assert_eq!(v1.provider.resource.as_deref(), Some("api://orders"));
    assert!(!v1.provider.scopes.contains(&"offline_access".to_owned()), "v1 has no offline_access scope");
}

#[test]
fn settings_are_checked_and_every_problem_named() {
    let p = problems(&[("ENTRA_TENANT", "common"), ("OIDC_ISSUER", "https://idp.example.com")]);
    let names: Vec<_> = p.iter().map(|(s, _)| *s).collect();
    assert_eq!(names, ["OIDC_ISSUER", "ENTRA_ALLOWED_TENANTS"], "{p:?}");
    assert!(p[0].1.contains("exclusive"), "{p:?}");
    assert!(p[1].1.contains('*'), "the fix says how to allow every tenant: {p:?}");

    let p = problems(&[("ENTRA_TENANT", "not a tenant/../x"), ("ENTRA_VERSION", "v3")]);
    assert_eq!(p.iter().map(|(s, _)| *s).collect::<Vec<_>>(), ["ENTRA_TENANT", "ENTRA_VERSION"]);

    let p = problems(&[("ENTRA_TENANT", HOME), ("ENTRA_ALLOWED_TENANTS", PARTNER)]);
    assert_eq!(p[0].0, "ENTRA_ALLOWED_TENANTS", "single tenant apps take no allow-list: {p:?}");

    let p = problems(&[("ENTRA_TENANT", "organizations"), ("ENTRA_ALLOWED_TENANTS", "contoso.com")]);
    assert_eq!(p[0].0, "ENTRA_ALLOWED_TENANTS", "{p:?}");

    let p = problems(&[("ENTRA_TENANT", HOME), ("OIDC_RESOURCE", "api://orders")]);
    assert_eq!(p[0].0, "OIDC_RESOURCE", "v2 refuses resource: {p:?}");

    let p = problems(&[("ENTRA_TENANT", HOME), ("ENTRA_API_TOKEN_VERSIONS", "v1,v9")]);
    assert_eq!(p[0].0, "ENTRA_API_TOKEN_VERSIONS");

    let p = problems(&[("OIDC_ISSUER", "https://idp.example.com"), ("ENTRA_ALLOWED_TENANTS", "*")]);
    assert_eq!(p[0].0, "ENTRA_ALLOWED_TENANTS", "ENTRA_* without ENTRA_TENANT: {p:?}");

    let p = problems(&[]);
    assert_eq!(p[0].0, "OIDC_ISSUER");
    assert!(p[0].1.contains("ENTRA_TENANT"), "the fix mentions the preset: {p:?}");

    let any = entra(&[("ENTRA_TENANT", "common"), ("ENTRA_ALLOWED_TENANTS", "*")]);
    assert_eq!(any.provider.entra.unwrap().allowed_tenants, TenantAllowList::Any);
}

fn discovered(pairs: &[(&str, &str)], doc: &str) -> Result<ProviderMetadata, DiscoveryError> {
    ProviderMetadata::parse_for(&fixture(doc), &entra(pairs).provider)
}

#[test]
fn entra_discovery_documents_are_matched_to_the_tenant() {
    let multi = |t| [("ENTRA_TENANT", t), ("ENTRA_ALLOWED_TENANTS", HOME)];
    let ok: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("ENTRA_TENANT", HOME)], "discovery-v2-tenant.json"),
        (vec![("ENTRA_TENANT", "contoso.onmicrosoft.com")], "discovery-v2-domain.json"),
        (multi("common").to_vec(), "discovery-v2-common.json"),
        (multi("organizations").to_vec(), "discovery-v2-organizations.json"),
        (vec![("ENTRA_TENANT", "consumers")], "discovery-v2-consumers.json"),
        (vec![("ENTRA_TENANT", HOME), ("ENTRA_VERSION", "v1")], "discovery-v1-tenant.json"),
        (
            vec![("ENTRA_TENANT", "common"), ("ENTRA_VERSION", "v1"), ("ENTRA_ALLOWED_TENANTS", "*")],
            "discovery-v1-common.json",
        ),
    ];
    for (pairs, doc) in &ok {
        let m = discovered(pairs, doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
        assert!(m.jwks_uri.starts_with(H), "{doc}");
    }
    let refused: Vec<(Vec<(&str, &str)>, &str)> = vec![
        // Another tenant's document, or a multi-tenant one, for a single-tenant app.
        (vec![("ENTRA_TENANT", PARTNER)], "discovery-v2-tenant.json"),
        (vec![("ENTRA_TENANT", HOME)], "discovery-v2-common.json"),
        // A multi-tenant app must see the template, not one tenant.
        (multi("common").to_vec(), "discovery-v2-tenant.json"),
        // v1 issuers for a v2 configuration and the reverse.
        (vec![("ENTRA_TENANT", HOME)], "discovery-v1-tenant.json"),
        (vec![("ENTRA_TENANT", HOME), ("ENTRA_VERSION", "v1")], "discovery-v2-tenant.json"),
        (vec![("ENTRA_TENANT", "consumers")], "discovery-v2-tenant.json"),
    ];
    for (pairs, doc) in &refused {
        assert!(
            matches!(discovered(pairs, doc), Err(DiscoveryError::IssuerMismatch { .. })),
            "{pairs:?} must refuse {doc}"
        );
    }
}

fn preset(pairs: &[(&str, &str)]) -> EntraConfig {
    entra(pairs).provider.entra.unwrap()
}

fn check(rule: &IssuerRule, iss: &str, tid: Option<&str>) -> &'static str {
    rule.check(iss, tid).map_or_else(|e| e.reason(), |()| "ok")
}

#[test]
fn multi_tenant_issuer_substitutes_tid_then_applies_the_allow_list() {
    let common = preset(&[("ENTRA_TENANT", "common"), ("ENTRA_ALLOWED_TENANTS", HOME)]);
    let rule = common.id_token_issuer(&format!("{H}/{{tenantid}}/v2.0"));
    let home_iss = format!("{H}/{HOME}/v2.0");
    let partner_iss = format!("{H}/{PARTNER}/v2.0");
    assert_eq!(check(&rule, &home_iss, Some(HOME)), "ok");
    assert_eq!(check(&rule, &partner_iss, Some(PARTNER)), "issuer_tenant_not_allowed");
    // tid and iss must agree: a token of one tenant cannot pose as another's.
    assert_eq!(check(&rule, &partner_iss, Some(HOME)), "issuer_mismatch");
    assert_eq!(check(&rule, &home_iss, None), "tid_missing");
    assert_eq!(check(&rule, &format!("{H}/x/v2.0/v2.0"), Some("x/v2.0")), "claim_invalid");
    assert_eq!(check(&rule, &format!("{H}/{{tenantid}}/v2.0"), Some(HOME)), "issuer_mismatch");
    let any = preset(&[("ENTRA_TENANT", "organizations"), ("ENTRA_ALLOWED_TENANTS", "*")]);
    assert_eq!(check(&any.id_token_issuer(&format!("{H}/{{tenantid}}/v2.0")), &partner_iss, Some(PARTNER)), "ok");
}

#[test]
fn single_tenant_issuer_is_exact() {
    let single = preset(&[("ENTRA_TENANT", "contoso.onmicrosoft.com")]);
    let home_iss = format!("{H}/{HOME}/v2.0");
    let rule = single.id_token_issuer(&home_iss);
    assert_eq!(rule, IssuerRule::Exact(home_iss.clone()));
    assert_eq!(check(&rule, &format!("{H}/{PARTNER}/v2.0"), Some(PARTNER)), "issuer_mismatch");
}

#[test]
fn api_tokens_accept_the_configured_versions_of_the_tenant() {
    let v1_iss = format!("https://sts.windows.net/{HOME}/");
    let v2_iss = format!("{H}/{HOME}/v2.0");
    let both = preset(&[("ENTRA_TENANT", HOME)]).access_token_issuer(&v2_iss);
    assert_eq!(check(&both, &v1_iss, Some(HOME)), "ok");
    assert_eq!(check(&both, &v2_iss, Some(HOME)), "ok");
    assert_eq!(
        check(&both, &format!("https://sts.windows.net/{PARTNER}/"), Some(PARTNER)),
        "issuer_tenant_not_allowed"
    );
    let v2_only = preset(&[("ENTRA_TENANT", HOME), ("ENTRA_API_TOKEN_VERSIONS", "v2")]).access_token_issuer(&v2_iss);
    assert_eq!(check(&v2_only, &v1_iss, Some(HOME)), "issuer_mismatch");
    // A domain-configured tenant learns its GUID from discovery.
    let domain = preset(&[("ENTRA_TENANT", "contoso.com"), ("ENTRA_API_TOKEN_VERSIONS", "v1")]);
    assert_eq!(check(&domain.access_token_issuer(&v2_iss), &v1_iss, Some(HOME)), "ok");
    let multi = preset(&[("ENTRA_TENANT", "common"), ("ENTRA_ALLOWED_TENANTS", &format!("{HOME},{PARTNER}"))]);
    let rule = multi.access_token_issuer(&format!("{H}/{{tenantid}}/v2.0"));
    assert_eq!(check(&rule, &format!("https://sts.windows.net/{PARTNER}/"), Some(PARTNER)), "ok");
    assert_eq!(
        check(
            &rule,
            "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
            Some("00000000-0000-0000-0000-000000000001")
        ),
        "issuer_tenant_not_allowed"
    );
}

#[test]
fn tenant_ids_are_lowercase_guids() {
    assert!(is_tenant_guid(HOME));
    for bad in ["72F988BF-86F1-41AF-91AB-2D7CD011DB47", "72f988bf86f141af91ab2d7cd011db47", "common", "", "../x"] {
        assert!(!is_tenant_guid(bad), "{bad}");
    }
    assert_eq!(JwtError::TenantNotAllowed.reason(), "issuer_tenant_not_allowed");
}

#[test]
fn granted_scopes_keep_entra_short_names() {
    let entra = entra(&[("ENTRA_TENANT", HOME)]).provider;
    assert_eq!(
        granted_scopes(Some("api://orders/Orders.Read openid  offline_access"), &entra),
        ["api://orders/Orders.Read", "Orders.Read", "openid", "offline_access"]
    );
    let generic = settings(&[("OIDC_ISSUER", "https://idp.example.com")]).unwrap().provider;
    assert_eq!(granted_scopes(Some("https://api.example.com/read"), &generic), ["https://api.example.com/read"]);
    assert!(granted_scopes(None, &generic).is_empty());
}

#[test]
fn groups_overage_graph_is_opt_in_and_each_cloud_finds_its_graph() {
    let overage = |pairs: &[(&str, &str)]| entra(pairs).provider.entra.unwrap().groups_overage;
    assert_eq!(overage(&[("ENTRA_TENANT", HOME)]), GroupsOverage::Refuse);
    assert_eq!(overage(&[("ENTRA_TENANT", HOME), ("ENTRA_GROUPS_OVERAGE", "refuse")]), GroupsOverage::Refuse);
    let graph = |g: &str| GroupsOverage::Graph { graph: g.to_owned() };
    assert_eq!(
        overage(&[("ENTRA_TENANT", HOME), ("ENTRA_GROUPS_OVERAGE", "Graph")]),
        graph("https://graph.microsoft.com")
    );
    let us = [
        ("ENTRA_TENANT", HOME),
        ("ENTRA_GROUPS_OVERAGE", "graph"),
        ("ENTRA_AUTHORITY", "https://login.microsoftonline.us"),
    ];
    assert_eq!(overage(&us), graph("https://graph.microsoft.us"));
    let dod = [us.as_slice(), &[("ENTRA_GRAPH_URL", "https://dod-graph.microsoft.us/")]].concat();
    assert_eq!(overage(&dod), graph("https://dod-graph.microsoft.us"));
    let china = [
        ("ENTRA_TENANT", HOME),
        ("ENTRA_GROUPS_OVERAGE", "graph"),
        ("ENTRA_AUTHORITY", "https://login.chinacloudapi.cn"),
    ];
    assert_eq!(overage(&china), graph("https://microsoftgraph.chinacloudapi.cn"));
    // A lookalike on loopback names its Graph (plain http only there).
    let local =
        [("ENTRA_TENANT", HOME), ("ENTRA_GROUPS_OVERAGE", "graph"), ("ENTRA_AUTHORITY", "http://127.0.0.1:9000")];
    assert_eq!(problems(&local)[0].0, "ENTRA_GRAPH_URL", "an unknown cloud must name its Graph");
    assert_eq!(
        overage(&[local.as_slice(), &[("ENTRA_GRAPH_URL", "http://127.0.0.1:9001")]].concat()),
        graph("http://127.0.0.1:9001")
    );
    for (pairs, setting) in [
        (vec![("ENTRA_GROUPS_OVERAGE", "lookup")], "ENTRA_GROUPS_OVERAGE"),
        (vec![("ENTRA_GRAPH_URL", "https://graph.microsoft.com")], "ENTRA_GRAPH_URL"),
        (vec![("ENTRA_GROUPS_OVERAGE", "graph"), ("ENTRA_GRAPH_URL", "http://graph.example.com")], "ENTRA_GRAPH_URL"),
        (
            vec![("ENTRA_GROUPS_OVERAGE", "graph"), ("ENTRA_GRAPH_URL", "https://graph.microsoft.com/v1.0")],
            "ENTRA_GRAPH_URL",
        ),
    ] {
        let p = problems(&[[("ENTRA_TENANT", HOME)].as_slice(), &pairs].concat());
        assert_eq!(p[0].0, setting, "{pairs:?}: {p:?}");
    }
    let p = problems(&[("OIDC_ISSUER", "https://idp.example.com"), ("ENTRA_GROUPS_OVERAGE", "graph")]);
    assert_eq!(p[0].0, "ENTRA_GROUPS_OVERAGE", "needs the preset: {p:?}");
}

#[test]
fn national_clouds_accept_their_own_v1_and_v2_issuers_only() {
    let v1_public = format!("https://sts.windows.net/{HOME}/");
    let v1_china = format!("https://sts.chinacloudapi.cn/{HOME}/");
    let clouds = [
        // (authority, its v2 issuer, the v1 issuer it accepts, a v1 issuer it refuses)
        (H, format!("{H}/{HOME}/v2.0"), &v1_public, &v1_china),
        (
            "https://login.microsoftonline.us",
            format!("https://login.microsoftonline.us/{HOME}/v2.0"),
            &v1_public,
            &v1_china,
        ),
        (
            "https://login.chinacloudapi.cn",
            format!("https://login.chinacloudapi.cn/{HOME}/v2.0"),
            &v1_china,
            &v1_public,
        ),
        (
            "https://login.partner.microsoftonline.cn",
            format!("https://login.partner.microsoftonline.cn/{HOME}/v2.0"),
            &v1_china,
            &v1_public,
        ),
    ];
    for (authority, v2_iss, v1_ok, v1_other_cloud) in clouds {
        let cloud = preset(&[("ENTRA_TENANT", HOME), ("ENTRA_AUTHORITY", authority)]);
        let rule = cloud.access_token_issuer(&v2_iss);
        assert_eq!(check(&rule, &v2_iss, Some(HOME)), "ok", "{authority} v2");
        assert_eq!(check(&rule, v1_ok, Some(HOME)), "ok", "{authority} v1");
        assert_eq!(check(&rule, v1_other_cloud, Some(HOME)), "issuer_mismatch", "{authority}: another cloud's v1");
        let public_v2 = format!("{H}/{HOME}/v2.0");
        if authority != H {
            assert_eq!(check(&rule, &public_v2, Some(HOME)), "issuer_mismatch", "{authority}: the public cloud's v2");
        }
        // The v1 endpoint's discovery names the cloud's v1 issuer.
        let v1 = preset(&[("ENTRA_TENANT", HOME), ("ENTRA_AUTHORITY", authority), ("ENTRA_VERSION", "v1")]);
        assert!(v1.accepts_discovered_issuer(v1_ok), "{authority}");
        assert!(!v1.accepts_discovered_issuer(v1_other_cloud), "{authority}");
    }
}

#[test]
fn overage_settings_belong_to_the_flat_default_provider() {
    let table = r#"[{"name":"partners","issuer":"https://partners.example.com","client_id":"p","client_secret_name":"P_SECRET"}]"#;
    let p = problems(&[("PROVIDERS", table), ("P_SECRET", "s"), ("ENTRA_GROUPS_OVERAGE", "graph")]);
    assert!(p.iter().any(|(s, _)| *s == "ENTRA_GROUPS_OVERAGE"), "no flat provider to apply it to: {p:?}");
}
