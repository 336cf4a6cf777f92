//! Microsoft Entra ID (Azure AD) as a first-class provider: a tenant and an endpoint version
//! are enough to find the authority, the discovery document and the issuers to accept.
//!
//! Entra differs from a plain OpenID provider in ways every gateway trips on:
//! - Multi-tenant authorities (`common`, `organizations`) publish the issuer
//!   `https://login.microsoftonline.com/{tenantid}/v2.0`: the token's `tid` fills the template,
//!   the result must equal `iss`, and the tenant must be on an allow-list.
//! - A verified domain (`contoso.com`) is an alias: discovery's issuer names the tenant GUID.
//! - Access tokens come in two versions whatever endpoint issued them (the API's
//!   `accessTokenAcceptedVersion` decides): v1 `https://sts.windows.net/{tid}/`, v2
//!   `https://login.microsoftonline.com/{tid}/v2.0`.
//!
//! Sources: Microsoft identity platform "Access tokens" and "ID tokens" claims references,
//! "OpenID Connect on the Microsoft identity platform" (discovery), "Multitenant apps".

mod claims;
mod graph;

pub use claims::{CallerKind, EntraClaims};
pub use graph::{GraphError, GroupsOverage, MAX_PAGES, MemberGroups, default_graph_url, list_member_groups};

use crate::config::ProviderConfig;
use crate::jwt::{IssuerRule, TENANT_PLACEHOLDER, TenantAllowList, is_tenant_guid};

/// The public cloud's authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The issuer host of v1 tokens (`https://sts.windows.net/{tid}/`) in the public and US
/// Government clouds.
pub const V1_ISSUER_PREFIX: &str = "https://sts.windows.net/";
/// The issuer host of v1 tokens in Azure China operated by 21Vianet.
pub const V1_CHINA_ISSUER_PREFIX: &str = "https://sts.chinacloudapi.cn/";
/// Every cloud's v1 issuer host.
pub const V1_ISSUER_PREFIXES: [&str; 2] = [V1_ISSUER_PREFIX, V1_CHINA_ISSUER_PREFIX];
/// The tenant of personal Microsoft accounts (`consumers`).
pub const CONSUMERS_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Which tenant the app signs users in from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntraTenant {
    /// One tenant by its GUID (lowercase).
    Id(String),
    /// One tenant by a verified domain (`contoso.onmicrosoft.com`); its GUID comes from discovery.
    Domain(String),
    /// Work, school and personal accounts of any tenant.
    Common,
    /// Work and school accounts of any tenant.
    Organizations,
    /// Personal Microsoft accounts only (one fixed tenant).
    Consumers,
}

impl EntraTenant {
    /// Read `ENTRA_TENANT`; `None` when it is none of the accepted forms.
    pub fn parse(raw: &str) -> Option<Self> {
        let lower = raw.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "common" => Self::Common,
            "organizations" => Self::Organizations,
            "consumers" => Self::Consumers,
            guid if is_tenant_guid(guid) => Self::Id(lower),
            domain if is_domain(domain) => Self::Domain(lower),
            _ => return None,
        })
    }

    /// The path segment in endpoint URLs.
    pub fn segment(&self) -> &str {
        match self {
            Self::Id(s) | Self::Domain(s) => s,
            Self::Common => "common",
            Self::Organizations => "organizations",
            Self::Consumers => "consumers",
        }
    }

    /// Whether tokens from many tenants arrive (then `ENTRA_ALLOWED_TENANTS` is required).
    pub fn is_multi_tenant(&self) -> bool {
        matches!(self, Self::Common | Self::Organizations)
    }
}

/// A DNS name with at least one dot, nothing that could break out of a URL path segment.
fn is_domain(s: &str) -> bool {
    s.contains('.')
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The Microsoft identity platform endpoint version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntraVersion {
    /// Azure AD v1 (`/oauth2/authorize`, `resource=`).
    V1,
    /// Microsoft identity platform v2 (`/oauth2/v2.0/authorize`, `scope=`).
    V2,
}

impl EntraVersion {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "v1" | "1" | "1.0" => Some(Self::V1),
            "v2" | "2" | "2.0" => Some(Self::V2),
            _ => None,
        }
    }
}

/// The Entra preset, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraConfig {
    pub tenant: EntraTenant,
    pub version: EntraVersion,
    /// `https://login.microsoftonline.com` (or a national cloud's), no trailing slash.
    pub authority_host: String,
    /// Tenants accepted from a multi-tenant authority.
    pub allowed_tenants: TenantAllowList,
    /// Access-token versions accepted on API routes.
    pub api_token_versions: Vec<EntraVersion>,
    /// Group overage: refused, or resolved through Microsoft Graph.
    pub groups_overage: GroupsOverage,
}

impl EntraConfig {
    /// The authority: `{host}/{tenant}/v2.0` (v2) or `{host}/{tenant}` (v1).
    pub fn authority(&self) -> String {
        match self.version {
            EntraVersion::V2 => format!("{}/{}/v2.0", self.authority_host, self.tenant.segment()),
            EntraVersion::V1 => format!("{}/{}", self.authority_host, self.tenant.segment()),
        }
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.authority())
    }

    /// The issuer template of `version` tokens.
    fn issuer_template(&self, version: EntraVersion) -> String {
        match version {
            EntraVersion::V2 => format!("{}/{TENANT_PLACEHOLDER}/v2.0", self.authority_host),
            EntraVersion::V1 => format!("{}{TENANT_PLACEHOLDER}/", self.v1_issuer_prefix()),
        }
    }

    /// Where v1 tokens of this cloud say they come from. v1 issuers do not follow the authority
    /// host: `https://sts.windows.net/` for the public cloud and for US Government
    /// (`login.microsoftonline.us`) alike, `https://sts.chinacloudapi.cn/` for Azure China
    /// (`login.chinacloudapi.cn`, `login.partner.microsoftonline.cn`). Source: Microsoft Q&A
    /// "What are the token issuers for the sovereign clouds?" (learn.microsoft.com/answers/
    /// questions/1190472), with "National clouds" (Microsoft identity platform) for the hosts.
    pub fn v1_issuer_prefix(&self) -> &'static str {
        let host = self.authority_host.as_str();
        if host.ends_with(".chinacloudapi.cn") || host.ends_with(".microsoftonline.cn") {
            V1_CHINA_ISSUER_PREFIX
        } else {
            V1_ISSUER_PREFIX
        }
    }

    /// Whether a discovery document's `issuer` is the one this tenant publishes: the template
    /// itself for multi-tenant authorities, the tenant's GUID otherwise (any GUID for a domain,
    /// which is how the domain's tenant is learnt).
    pub fn accepts_discovered_issuer(&self, issuer: &str) -> bool {
        let template = self.issuer_template(self.version);
        match &self.tenant {
            EntraTenant::Common | EntraTenant::Organizations => issuer == template,
            EntraTenant::Consumers => issuer == template.replace(TENANT_PLACEHOLDER, CONSUMERS_TENANT_ID),
            EntraTenant::Id(guid) => issuer == template.replace(TENANT_PLACEHOLDER, guid),
            EntraTenant::Domain(_) => tenant_in(&template, issuer).is_some(),
        }
    }

    /// The issuer template discovery is expected to publish, for error messages.
    pub fn expected_issuer_text(&self) -> String {
        self.issuer_template(self.version)
    }

    /// The tenants tokens may come from, given the (checked) discovered issuer: the allow-list
    /// for multi-tenant authorities, else the one tenant discovery names.
    fn tenants(&self, discovered_issuer: &str) -> TenantAllowList {
        if self.tenant.is_multi_tenant() {
            return self.allowed_tenants.clone();
        }
        let template = self.issuer_template(self.version);
        TenantAllowList::Only(tenant_in(&template, discovered_issuer).into_iter().map(str::to_owned).collect())
    }

    /// The rule for ID tokens: the discovered issuer, with `tid` substituted (multi-tenant),
    /// exactly (single tenant).
    pub fn id_token_issuer(&self, discovered_issuer: &str) -> IssuerRule {
        if discovered_issuer.contains(TENANT_PLACEHOLDER) {
            IssuerRule::TenantTemplate {
                templates: vec![discovered_issuer.to_owned()],
                tenants: self.tenants(discovered_issuer),
            }
        } else {
            IssuerRule::Exact(discovered_issuer.to_owned())
        }
    }

    /// The rule for access tokens on API routes: the configured versions' issuers, each with
    /// the token's `tid`, which must be an accepted tenant.
    pub fn access_token_issuer(&self, discovered_issuer: &str) -> IssuerRule {
        IssuerRule::TenantTemplate {
            templates: self.api_token_versions.iter().map(|v| self.issuer_template(*v)).collect(),
            tenants: self.tenants(discovered_issuer),
        }
    }
}

/// The issuer rule for ID tokens of `provider`, whose discovery document named
/// `discovered_issuer` (already checked against the configuration).
pub fn id_token_issuer_rule(provider: &ProviderConfig, discovered_issuer: &str) -> IssuerRule {
    match &provider.entra {
        Some(entra) => entra.id_token_issuer(discovered_issuer),
        None => IssuerRule::Exact(provider.issuer.clone()),
    }
}

/// The issuer rule for bearer access tokens (see [`id_token_issuer_rule`]).
pub fn access_token_issuer_rule(provider: &ProviderConfig, discovered_issuer: &str) -> IssuerRule {
    match &provider.entra {
        Some(entra) => entra.access_token_issuer(discovered_issuer),
        None => IssuerRule::Exact(provider.issuer.clone()),
    }
}

/// Whether `iss` (a front-channel logout request's) names this provider: its issuer, or with the
/// Entra preset an issuer its ID tokens may carry (the tenant's; for a multi-tenant app an
/// allowed tenant's, through the `{tenantid}` template).
pub fn names_this_provider(provider: &ProviderConfig, discovered_issuer: &str, iss: &str) -> bool {
    let rule = id_token_issuer_rule(provider, discovered_issuer);
    let tid = match &rule {
        IssuerRule::TenantTemplate { templates, .. } => templates.iter().find_map(|t| tenant_in(t, iss)),
        IssuerRule::Exact(_) => None,
    };
    rule.check(iss, tid).is_ok()
}

/// The scopes a token response granted (RFC 6749 §5.1), as route `scopes` name them. Entra
/// lists resource scopes with their resource (`api://orders/Orders.Read`) while the access
/// token's `scp` and route settings use the short name (`Orders.Read`): with the preset both
/// forms are kept. The session's access token is for one resource only, so the short name is
/// that resource's.
pub fn granted_scopes(scope: Option<&str>, provider: &ProviderConfig) -> Vec<String> {
    let mut scopes = Vec::new();
    for granted in scope.unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        scopes.push(granted.to_owned());
        if let (Some(_), Some((_, short))) = (&provider.entra, granted.rsplit_once('/'))
            && !short.is_empty()
            && !scopes.iter().any(|s| s == short)
        {
            scopes.push(short.to_owned());
        }
    }
    scopes
}

/// The GUID that fills `template`'s `{tenantid}` to give `issuer`, if any.
fn tenant_in<'a>(template: &str, issuer: &'a str) -> Option<&'a str> {
    let (prefix, suffix) = template.split_once(TENANT_PLACEHOLDER)?;
    let tid = issuer.strip_prefix(prefix)?.strip_suffix(suffix)?;
    is_tenant_guid(tid).then_some(tid)
}

#[cfg(test)]
pub(crate) mod tests;
