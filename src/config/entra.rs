//! The Entra ID preset settings (`ENTRA_*`): a tenant and a version instead of `OIDC_ISSUER`.

use super::names;
use super::parse::Collector;
use super::url::parse_secure_url;
use crate::entra::{DEFAULT_AUTHORITY, EntraConfig, EntraTenant, EntraVersion, GroupsOverage, default_graph_url};
use crate::jwt::{TenantAllowList, is_tenant_guid};

const TENANT_FIX: &str =
    "use your tenant ID (a GUID), a verified domain (contoso.onmicrosoft.com), common, organizations or consumers";

/// The preset, `Ok(None)` when `ENTRA_TENANT` is not set (then the other `ENTRA_*` settings
/// must not be set either), `Err(())` when a problem was recorded.
pub(super) fn entra(c: &mut Collector<'_>) -> Result<Option<EntraConfig>, ()> {
    let Some(raw_tenant) = c.optional(names::ENTRA_TENANT) else {
        for setting in [
            names::ENTRA_VERSION,
            names::ENTRA_AUTHORITY,
            names::ENTRA_ALLOWED_TENANTS,
            names::ENTRA_API_TOKEN_VERSIONS,
            names::ENTRA_GROUPS_OVERAGE,
            names::ENTRA_GRAPH_URL,
        ] {
            if c.optional(setting).is_some() {
                c.fail(setting, "is set but ENTRA_TENANT is not", "set ENTRA_TENANT too, or remove this setting");
            }
        }
        return Ok(None);
    };
    if c.optional(names::OIDC_ISSUER).is_some() {
        c.fail(
            names::OIDC_ISSUER,
            "is set together with ENTRA_TENANT; they are exclusive",
            "keep ENTRA_TENANT (the issuer is derived from it) and remove OIDC_ISSUER, or the reverse",
        );
    }
    let tenant = EntraTenant::parse(&raw_tenant);
    if tenant.is_none() {
        c.fail(names::ENTRA_TENANT, format!("{:?} is not a tenant", raw_tenant.trim()), TENANT_FIX);
    }
    let version = match c.optional(names::ENTRA_VERSION) {
        None => Some(EntraVersion::V2),
        Some(raw) => EntraVersion::parse(&raw).or_else(|| {
            c.fail(names::ENTRA_VERSION, format!("{raw:?} is not v1 or v2"), "write v2 (recommended) or v1");
            None
        }),
    };
    let authority_host = authority_host(c);
    let allowed_tenants = tenant.as_ref().and_then(|t| allowed_tenants(c, t));
    let api_token_versions = api_token_versions(c);
    let groups_overage = authority_host.as_deref().and_then(|host| groups_overage(c, host));
    if version == Some(EntraVersion::V2) && c.optional(names::OIDC_RESOURCE).is_some() {
        c.fail(
            names::OIDC_RESOURCE,
            "is a v1 parameter; the v2 endpoint refuses `resource`",
            "remove it and add your API's scopes to OIDC_SCOPES (api://<app id uri>/<scope>), or set ENTRA_VERSION=v1",
        );
    }
    match (tenant, version, authority_host, allowed_tenants, api_token_versions, groups_overage) {
        (
            Some(tenant),
            Some(version),
            Some(authority_host),
            Some(allowed_tenants),
            Some(api_token_versions),
            Some(groups_overage),
        ) => Ok(Some(EntraConfig {
            tenant,
            version,
            authority_host,
            allowed_tenants,
            api_token_versions,
            groups_overage,
        })),
        _ => Err(()),
    }
}

fn authority_host(c: &mut Collector<'_>) -> Option<String> {
    let Some(raw) = c.optional(names::ENTRA_AUTHORITY) else {
        return Some(DEFAULT_AUTHORITY.to_owned());
    };
    match parse_secure_url(&raw) {
        Ok(url) if url.path() == "/" => Some(url.origin().ascii_serialization()),
        Ok(_) => {
            c.fail(names::ENTRA_AUTHORITY, "has a path", "give the host only, e.g. https://login.microsoftonline.us");
            None
        }
        Err(problem) => {
            c.fail(names::ENTRA_AUTHORITY, problem, "use https://login.microsoftonline.com or your cloud's authority");
            None
        }
    }
}

/// Required for multi-tenant authorities (`*` for any tenant, said out loud); meaningless
/// for a single tenant.
fn allowed_tenants(c: &mut Collector<'_>, tenant: &EntraTenant) -> Option<TenantAllowList> {
    let raw = c.optional(names::ENTRA_ALLOWED_TENANTS);
    let fix = "list the tenant IDs (GUIDs) allowed to sign in, comma-separated, or * to allow every tenant";
    match (tenant.is_multi_tenant(), raw) {
        (false, None) => Some(TenantAllowList::Only(Vec::new())),
        (false, Some(_)) => {
            c.fail(
                names::ENTRA_ALLOWED_TENANTS,
                format!("applies to common and organizations only (ENTRA_TENANT is {})", tenant.segment()),
                "remove it; a single-tenant app accepts its own tenant only",
            );
            None
        }
        (true, None) => {
            c.fail(names::ENTRA_ALLOWED_TENANTS, format!("is required with ENTRA_TENANT={}", tenant.segment()), fix);
            None
        }
        (true, Some(raw)) if raw.trim() == "*" => Some(TenantAllowList::Any),
        (true, Some(raw)) => {
            let list: Vec<String> =
                raw.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_ascii_lowercase).collect();
            let bad: Vec<&String> = list.iter().filter(|t| !is_tenant_guid(t)).collect();
            if !bad.is_empty() || list.is_empty() {
                c.fail(names::ENTRA_ALLOWED_TENANTS, format!("{bad:?} are not tenant IDs"), fix);
                return None;
            }
            Some(TenantAllowList::Only(list))
        }
    }
}

fn api_token_versions(c: &mut Collector<'_>) -> Option<Vec<EntraVersion>> {
    let Some(raw) = c.optional(names::ENTRA_API_TOKEN_VERSIONS) else {
        return Some(vec![EntraVersion::V1, EntraVersion::V2]);
    };
    let parsed: Option<Vec<EntraVersion>> =
        raw.split([',', ' ']).filter(|s| !s.is_empty()).map(EntraVersion::parse).collect();
    match parsed {
        Some(versions) if !versions.is_empty() => Some(versions),
        _ => {
            c.fail(
                names::ENTRA_API_TOKEN_VERSIONS,
                format!("{raw:?} is not a list of v1/v2"),
                "write v2, v1, or v1,v2 (match your API's accessTokenAcceptedVersion)",
            );
            None
        }
    }
}

/// `ENTRA_GROUPS_OVERAGE` and, with `graph`, the Microsoft Graph root: `ENTRA_GRAPH_URL`, else
/// the Graph of the authority's cloud. An unknown authority (a lookalike in tests, or a cloud
/// added after this was written) must name its Graph.
fn groups_overage(c: &mut Collector<'_>, authority_host: &str) -> Option<GroupsOverage> {
    let graph_url = c.optional(names::ENTRA_GRAPH_URL);
    let mode = c.optional(names::ENTRA_GROUPS_OVERAGE).map(|raw| raw.trim().to_ascii_lowercase());
    match mode.as_deref() {
        None | Some("refuse") => {
            if graph_url.is_some() {
                c.fail(
                    names::ENTRA_GRAPH_URL,
                    "is set but ENTRA_GROUPS_OVERAGE is not graph",
                    "remove it, or set ENTRA_GROUPS_OVERAGE=graph",
                );
                return None;
            }
            Some(GroupsOverage::Refuse)
        }
        Some("graph") => graph_root(c, graph_url, authority_host).map(|graph| GroupsOverage::Graph { graph }),
        Some(other) => {
            c.fail(
                names::ENTRA_GROUPS_OVERAGE,
                format!("{other:?} is not refuse or graph"),
                "write refuse (403 groups_overage, the default) or graph (look the groups up in Microsoft Graph)",
            );
            None
        }
    }
}

fn graph_root(c: &mut Collector<'_>, raw: Option<String>, authority_host: &str) -> Option<String> {
    let fix = "give the Microsoft Graph root of your cloud, e.g. https://graph.microsoft.us (host only)";
    let Some(raw) = raw else {
        let derived = default_graph_url(authority_host);
        if derived.is_none() {
            c.fail(
                names::ENTRA_GRAPH_URL,
                format!("is required: ENTRA_AUTHORITY {authority_host} is not a cloud edgeguard knows the Graph of"),
                fix,
            );
        }
        return derived.map(str::to_owned);
    };
    match parse_secure_url(&raw) {
        Ok(url) if url.path() == "/" => Some(url.origin().ascii_serialization()),
        Ok(_) => {
            c.fail(names::ENTRA_GRAPH_URL, "has a path", fix);
            None
        }
        Err(problem) => {
            c.fail(names::ENTRA_GRAPH_URL, problem, fix);
            None
        }
    }
}
