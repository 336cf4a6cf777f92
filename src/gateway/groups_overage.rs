//! Entra group overage resolved through Microsoft Graph for routes that need a group
//! (`ENTRA_GROUPS_OVERAGE=graph`; the protocol is in [`crate::entra::list_member_groups`]).
//!
//! The answer is kept per isolate, and for browser sessions also in KV beside the session
//! record, so a user costs one Graph walk per session, not per request or per isolate:
//! - session: `entra-groups:v1:<session hash>` → AES-GCM(`complete ids…`), TTL = the session's
//!   remaining lifetime; memory bound = the session's end;
//! - bearer token: memory only, keyed by `tid` + `oid`, bound = the token's `exp`.
//!
//! Any failure is a 403 `groups_overage_unresolved` (never 5xx: what is missing is proof of
//! membership). Graph is not asked again for that user (or session) in this isolate for
//! [`RETRY_AFTER_FAILURE_SECS`], so a Graph that throttles or refuses the gateway is not asked on
//! every request of a busy client; after that the next request asks again.

use super::Gateway;
use crate::coalesce::Coalescer;
use crate::entra::{CallerKind, GraphError, GroupsOverage, MemberGroups, list_member_groups};
use crate::error::GatewayError;
use crate::jwt::is_tenant_guid;
use crate::policy::{Claims, Route};
use crate::ports::Ports;
use crate::session::{Purpose, random_nonce};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Users (or sessions) whose groups (or last failure) an isolate keeps at most.
const MAX_CACHED: usize = 10_000;

/// How long a failed look-up stands for one user or session before Graph is asked again.
pub const RETRY_AFTER_FAILURE_SECS: u64 = 10;

/// Values that end at a time, bounded: when full, ended entries go first, then any one.
struct Expiring<V>(RefCell<HashMap<String, (V, u64)>>);

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Self(RefCell::default())
    }
}

impl<V: Clone> Expiring<V> {
    fn get(&self, key: &str, now: u64) -> Option<V> {
        self.0.borrow().get(key).filter(|(_, until)| now < *until).map(|(value, _)| value.clone())
    }

    fn keep(&self, key: &str, value: V, until: u64, now: u64) {
        let mut map = self.0.borrow_mut();
        if map.len() >= MAX_CACHED {
            map.retain(|_, (_, bound)| now < *bound);
        }
        if map.len() >= MAX_CACHED
            && let Some(any) = map.keys().next().cloned()
        {
            map.remove(&any);
        }
        map.insert(key.to_owned(), (value, until));
    }
}

/// Resolved groups per isolate, recent failures, and the Graph walks in flight.
#[derive(Default)]
pub struct OverageGroups {
    memory: Expiring<Rc<MemberGroups>>,
    failed: Expiring<GraphError>,
    resolving: Coalescer<Result<Rc<MemberGroups>, GraphError>>,
}

/// Whose groups a request needs, and for how long an answer may serve.
pub(super) struct GroupsOwner<'a> {
    pub tid: Option<&'a str>,
    pub oid: Option<&'a str>,
    pub caller: CallerKind,
    /// The session's storage key (then the answer is also kept in KV), or none for a token.
    pub session: Option<&'a str>,
    /// When the session or token ends.
    pub until: u64,
    /// The provider that vouched for the caller: its Entra preset decides whether and how
    /// groups are resolved, with its own app registration.
    pub provider: usize,
}

/// `claims` with the groups Graph listed in place of the cut-off list.
pub(super) fn with_groups<'a>(claims: Claims<'a>, resolved: Option<&'a MemberGroups>) -> Claims<'a> {
    match resolved {
        Some(groups) => {
            Claims { groups: groups.ids.iter().map(String::as_str).collect(), groups_overage: false, ..claims }
        }
        None => claims,
    }
}

fn unresolved(err: GraphError) -> GatewayError {
    GatewayError::GroupsOverageUnresolved(err.to_string())
}

impl<P: Ports> Gateway<P> {
    /// The groups to check `route` against when `claims` had their group list cut off, the
    /// route needs a group none of the listed ones is, and Graph resolution is on; `None`
    /// when nothing needs resolving (the route's check then decides as usual).
    pub(super) async fn overage_groups(
        &self,
        ports: &P,
        route: &Route,
        claims: &Claims<'_>,
        owner: GroupsOwner<'_>,
    ) -> Result<Option<Rc<MemberGroups>>, GatewayError> {
        let required = &route.requirements.groups;
        let Some(GroupsOverage::Graph { graph }) =
            self.provider_at(owner.provider).config.entra.as_ref().map(|e| &e.groups_overage)
        else {
            return Ok(None);
        };
        let listed = required.iter().any(|g| claims.groups.contains(&g.as_str()));
        if !claims.groups_overage || required.is_empty() || listed {
            return Ok(None);
        }
        let (Some(tid), Some(oid)) = (owner.tid.filter(|t| is_tenant_guid(t)), owner.oid) else {
            return Err(unresolved(GraphError::NoObjectId));
        };
        let key = match owner.session {
            Some(session) => session.to_owned(),
            None => format!("{tid}:{oid}"),
        };
        let now = ports.now_secs();
        if let Some(failure) = self.overage_groups.failed.get(&key, now) {
            return Err(unresolved(failure));
        }
        let groups = match self.overage_groups.memory.get(&key, now) {
            Some(groups) => groups,
            None => {
                let resolve = || self.resolve_member_groups(ports, graph, tid, oid, &key, &owner);
                match self.overage_groups.resolving.run(ports, &key, resolve).await.0 {
                    Ok(groups) => groups,
                    Err(failure) => {
                        let retry_at = ports.now_secs().saturating_add(RETRY_AFTER_FAILURE_SECS);
                        self.overage_groups.failed.keep(&key, failure.clone(), retry_at, now);
                        return Err(unresolved(failure));
                    }
                }
            }
        };
        if !groups.complete && !required.iter().any(|g| groups.ids.contains(g)) {
            return Err(unresolved(GraphError::TooManyGroups));
        }
        Ok(Some(groups))
    }

    /// The session's stored answer, else a Graph walk with an app token of the user's tenant;
    /// kept in memory, and in KV for a session.
    async fn resolve_member_groups(
        &self,
        ports: &P,
        graph: &str,
        tid: &str,
        oid: &str,
        key: &str,
        owner: &GroupsOwner<'_>,
    ) -> Result<Rc<MemberGroups>, GraphError> {
        let stored_key = owner.session.map(stored_groups_key);
        if let Some(stored_key) = &stored_key
            && let Some(groups) = self.stored_groups(ports, stored_key).await
        {
            let groups = Rc::new(groups);
            self.overage_groups.memory.keep(key, Rc::clone(&groups), owner.until, ports.now_secs());
            return Ok(groups);
        }
        let Some(entra) = &self.provider_at(owner.provider).config.entra else {
            return Err(GraphError::NoObjectId);
        };
        let endpoint = entra.tenant_token_endpoint(tid);
        let target = entra.graph_token_target(graph);
        let app_token =
            self.app_token_from(ports, owner.provider, Some(&endpoint), &target).await.map_err(GraphError::AppToken)?;
        let groups = Rc::new(list_member_groups(ports, graph, owner.caller, oid, &app_token).await?);
        let now = ports.now_secs();
        self.overage_groups.memory.keep(key, Rc::clone(&groups), owner.until, now);
        if let Some(stored_key) = &stored_key {
            let keys = &self.config.session.keys;
            let sealed =
                keys.seal(Purpose::Store, stored_key.as_bytes(), groups.encode().as_bytes(), random_nonce(ports));
            // Best effort: without it another isolate asks Graph again.
            let _ = ports.put(stored_key, &sealed, owner.until.saturating_sub(now)).await;
        }
        Ok(groups)
    }

    async fn stored_groups(&self, ports: &P, stored_key: &str) -> Option<MemberGroups> {
        let sealed = ports.get(stored_key).await.ok().flatten()?;
        let plain = self.config.session.keys.open(Purpose::Store, stored_key.as_bytes(), &sealed)?;
        MemberGroups::decode(std::str::from_utf8(&plain).ok()?)
    }
}

/// `entra-groups:v1:<session hash>` for the session stored under `session:v1:<session hash>`.
fn stored_groups_key(session_storage_key: &str) -> String {
    let hash = session_storage_key.rsplit(':').next().unwrap_or_default();
    format!("entra-groups:v1:{hash}")
}
