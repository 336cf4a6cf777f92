//! Group overage resolved through Microsoft Graph (`ENTRA_GROUPS_OVERAGE=graph`).
//!
//! Past 200 groups Entra leaves `groups` out of the token (`_claim_names`, `hasgroups`). With
//! this opt-in the gateway asks Graph which groups the user (or service principal) belongs to,
//! with its own app token (client credentials for `<graph>/.default`, application permission
//! `GroupMember.Read.All`) from the user's own tenant, since a multi-tenant user's memberships
//! live in their home directory.
//!
//! Why `GET /v1.0/users/{oid}/transitiveMemberOf?$select=id&$top=999` and not `getMemberGroups`:
//! it is transitive like the `groups` claim, it is paged (so one answer is at most 999 ids, and
//! a page cap bounds the work), and without an OData cast it needs no `ConsistencyLevel:
//! eventual` index that may lag recent membership changes; the directory roles and
//! administrative units it also lists are dropped by their `@odata.type`.
//!
//! Sources: Microsoft Graph v1.0 "List a user's memberships (direct and transitive)";
//! "Microsoft Graph national cloud deployments" (service roots per cloud).

use super::{CallerKind, EntraConfig, EntraVersion};
use crate::jwt::is_tenant_guid;
use crate::oidc::AppTokenError;
use crate::policy::TokenTarget;
use crate::ports::{HttpClient, IncomingResponse, OutgoingRequest};
use serde_json::Value;

/// Pages followed at most (999 objects each): a user in more groups than that gets
/// `groups_overage_unresolved` unless a required group was among those read.
pub const MAX_PAGES: usize = 10;
/// Objects per page: Graph's maximum for this call.
const PAGE_SIZE: u32 = 999;

/// What a route that needs a group does with a token whose group list was cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupsOverage {
    /// Answer 403 `groups_overage`, recommending app roles (the default: no Graph permission,
    /// no extra call).
    Refuse,
    /// Ask Microsoft Graph at `graph` (scheme and host, no trailing slash).
    Graph { graph: String },
}

/// The Microsoft Graph service root of the cloud whose authority is `authority_host`, if known.
/// US Government L5 (DoD) shares its authority with L4 and so must set `ENTRA_GRAPH_URL`
/// (`https://dod-graph.microsoft.us`).
pub fn default_graph_url(authority_host: &str) -> Option<&'static str> {
    match authority_host {
        "https://login.microsoftonline.com" => Some("https://graph.microsoft.com"),
        "https://login.microsoftonline.us" => Some("https://graph.microsoft.us"),
        "https://login.chinacloudapi.cn" | "https://login.partner.microsoftonline.cn" => {
            Some("https://microsoftgraph.chinacloudapi.cn")
        }
        _ => None,
    }
}

impl EntraConfig {
    /// The token endpoint of tenant `tid` (a checked GUID), for the Graph app token.
    pub fn tenant_token_endpoint(&self, tid: &str) -> String {
        match self.version {
            EntraVersion::V2 => format!("{}/{tid}/oauth2/v2.0/token", self.authority_host),
            EntraVersion::V1 => format!("{}/{tid}/oauth2/token", self.authority_host),
        }
    }

    /// The app token Graph accepts: `scope=<graph>/.default` (v2), `resource=<graph>` (v1).
    pub fn graph_token_target(&self, graph: &str) -> TokenTarget {
        match self.version {
            EntraVersion::V2 => TokenTarget { scope: Some(format!("{graph}/.default")), ..TokenTarget::default() },
            EntraVersion::V1 => TokenTarget { resource: Some(graph.to_owned()), ..TokenTarget::default() },
        }
    }
}

/// Why the groups could not be had. The caller is refused (403 `groups_overage_unresolved`),
/// never answered 5xx: what is missing is proof of membership.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The token names no object id or tenant to ask about (or not as GUIDs).
    #[error("the token has no usable oid and tid")]
    NoObjectId,
    /// No app token for Graph (the grant was refused or the provider is down).
    #[error("no Microsoft Graph app token: {0}")]
    AppToken(AppTokenError),
    /// Graph answered with an error status (403: permission `GroupMember.Read.All` not granted).
    #[error("Microsoft Graph answered HTTP {0}")]
    Status(u16),
    /// Graph could not be reached.
    #[error("Microsoft Graph unreachable: {0}")]
    Unreachable(String),
    /// The answer is not a Graph collection page.
    #[error("Microsoft Graph answered something that is not a collection page")]
    Malformed,
    /// An `@odata.nextLink` pointing away from Graph: never sent the app token.
    #[error("Microsoft Graph nextLink leaves the Graph host")]
    ForeignNextLink,
    /// More pages than [`MAX_PAGES`], and no required group among those read.
    #[error("the user is in more groups than the gateway reads ({MAX_PAGES} pages)")]
    TooManyGroups,
}

/// The groups Graph listed, and whether that is all of them (false: the page cap was reached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberGroups {
    pub ids: Vec<String>,
    pub complete: bool,
}

impl MemberGroups {
    /// `complete ids…` on one line: the KV plaintext.
    pub fn encode(&self) -> String {
        format!("{} {}", u8::from(self.complete), self.ids.join(","))
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (complete, ids) = text.split_once(' ')?;
        let complete = match complete {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        Some(Self { ids: ids.split(',').filter(|id| !id.is_empty()).map(str::to_owned).collect(), complete })
    }
}

/// The first page's URL for `oid` (a user, or an app's service principal).
pub fn first_page_url(graph: &str, caller: CallerKind, oid: &str) -> Result<String, GraphError> {
    if !is_tenant_guid(oid) {
        return Err(GraphError::NoObjectId);
    }
    let collection = match caller {
        CallerKind::User => "users",
        CallerKind::App => "servicePrincipals",
    };
    Ok(format!("{graph}/v1.0/{collection}/{oid}/transitiveMemberOf?$select=id&$top={PAGE_SIZE}"))
}

fn page_request(url: &str, app_token: &str) -> Result<OutgoingRequest, GraphError> {
    http::Request::get(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {app_token}"))
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| GraphError::ForeignNextLink)
}

/// Whether `link` is on the Graph host (same scheme, host and port), so the app token may go there.
fn is_on_graph(link: &str, graph: &str) -> bool {
    match (url::Url::parse(link), url::Url::parse(graph)) {
        (Ok(link), Ok(graph)) => link.origin() == graph.origin(),
        _ => false,
    }
}

/// The group ids of one page (read as a `Value`: JSON that is already in the bundle, rather than
/// derived deserialisers for two structs), and the next page's URL.
fn read_page(response: IncomingResponse, graph: &str, ids: &mut Vec<String>) -> Result<Option<String>, GraphError> {
    if !response.status().is_success() {
        return Err(GraphError::Status(response.status().as_u16()));
    }
    let page: Value = crate::json::decode::<Value>(response.body()).map_err(|_| GraphError::Malformed)?;
    let objects = page.get("value").and_then(Value::as_array).ok_or(GraphError::Malformed)?;
    for object in objects {
        let is_group = object.get("@odata.type").and_then(Value::as_str).is_none_or(|t| t == "#microsoft.graph.group");
        if let (true, Some(id)) = (is_group, object.get("id").and_then(Value::as_str)) {
            ids.push(id.to_owned());
        }
    }
    match page.get("@odata.nextLink") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(next)) if is_on_graph(next, graph) => Ok(Some(next.clone())),
        Some(Value::String(_)) => Err(GraphError::ForeignNextLink),
        Some(_) => Err(GraphError::Malformed),
    }
}

/// Every group `oid` is a member of, directly or not, following `@odata.nextLink` for at most
/// [`MAX_PAGES`] pages.
pub async fn list_member_groups(
    http: &impl HttpClient,
    graph: &str,
    caller: CallerKind,
    oid: &str,
    app_token: &str,
) -> Result<MemberGroups, GraphError> {
    let mut url = first_page_url(graph, caller, oid)?;
    let mut ids = Vec::new();
    for _ in 0..MAX_PAGES {
        let response =
            http.send(page_request(&url, app_token)?).await.map_err(|e| GraphError::Unreachable(e.to_string()))?;
        match read_page(response, graph, &mut ids)? {
            Some(next) => url = next,
            None => return Ok(MemberGroups { ids, complete: true }),
        }
    }
    Ok(MemberGroups { ids, complete: false })
}

#[cfg(test)]
mod tests;
