//! DPoP on bearer routes (RFC 9449 §7): which tokens need a proof, checking it against the
//! request and the token's `cnf.jkt`, the server nonce (§8, with `DPOP_NONCE`), replays (per
//! isolate, plus KV with `DPOP_REPLAY_KV`), and telling the origin the confirmed key.

use super::request::IncomingRequest;
use super::{Decision, Gateway, Outcome};
use crate::dpop::{
    CheckedProof, DpopError, ProofContext, bound_thumbprint, check_proof, current_nonce, nonce_accepted,
};
use crate::encoding::{ct_eq, hex};
use crate::jwt::VerifiedJwt;
use crate::policy::{DpopMode, Route};
use crate::ports::Ports;

/// KV's shortest TTL: a replay record lives at least this long.
const KV_MIN_TTL_SECS: u64 = 60;

/// A request's DPoP outcome: the confirmed key (none for a plain Bearer token where the route
/// allows it), and log notes (the KV replay check could not be made).
#[derive(Debug, Default)]
pub(super) struct Binding {
    pub jkt: Option<String>,
    pub notes: Vec<&'static str>,
    /// With `DPOP_NONCE`: the current nonce, for the answer (RFC 9449 §8.2), so an active
    /// client never needs a `use_dpop_nonce` round trip.
    pub next_nonce: Option<String>,
}

/// The KV key of a used proof: its replay id (already a SHA-256 of thumbprint and `jti`), so
/// neither appears in KV.
fn replay_key(checked: &CheckedProof) -> String {
    format!("dpop-jti:v1:{}", hex(&checked.replay_id))
}

/// The header that tells the origin the thumbprint of the key the caller proved it holds.
/// Client copies never arrive: the `x-edgeguard-` prefix is stripped from client headers.
pub const CONFIRMATION_HEADER: &str = "x-edgeguard-dpop-jkt";

impl<P: Ports> Gateway<P> {
    /// Enforce the token's binding: the proof, its key against `cnf.jkt`, the nonce, replays.
    pub(super) async fn check_dpop_binding(
        &self,
        ports: &P,
        req: &IncomingRequest,
        route: &Route,
        token: &str,
        verified: &VerifiedJwt,
    ) -> Result<Binding, DpopError> {
        let bound_to = bound_thumbprint(verified.claims());
        if !super::bearer::presents_dpop(req) {
            return match (bound_to, route.dpop) {
                (Some(_), _) => Err(DpopError::BoundTokenAsBearer),
                (None, DpopMode::Required) => Err(DpopError::Required),
                (None, DpopMode::Allowed) => Ok(Binding::default()),
            };
        }
        let proof = req.header("dpop").filter(|p| !p.is_empty()).ok_or(DpopError::ProofMissing)?;
        let now = ports.now_secs();
        let uri = self.config.public_url.join(&req.path).map_err(|_| DpopError::UriMismatch)?;
        let ctx = ProofContext {
            method: req.method.as_str(),
            uri: &uri,
            access_token: token,
            now,
            leeway_secs: self.config.provider.clock_skew_secs,
        };
        let checked = check_proof(ports, &self.dpop_keys, proof, &ctx).await?;
        if !bound_to.is_some_and(|jkt| ct_eq(jkt, &checked.jkt)) {
            return Err(DpopError::KeyMismatch);
        }
        self.check_nonce(&checked, now)?;
        // Only a proof that passed everything is remembered, so refused ones cost no memory.
        if !self.dpop_replay.borrow_mut().first_use(checked.replay_id, checked.replay_until, now) {
            return Err(DpopError::Replayed);
        }
        let notes = self.check_replay_in_kv(ports, &checked, now).await?;
        let next_nonce =
            self.config.api.dpop.nonce.then(|| current_nonce(self.config.session.keys.dpop_nonce_keys(), now));
        Ok(Binding { jkt: Some(checked.jkt), notes, next_nonce })
    }

    /// With `DPOP_NONCE`, the proof must carry a current server nonce; otherwise the answer
    /// hands out one (RFC 9449 §8).
    fn check_nonce(&self, checked: &CheckedProof, now: u64) -> Result<(), DpopError> {
        if !self.config.api.dpop.nonce {
            return Ok(());
        }
        let keys = || self.config.session.keys.dpop_nonce_keys();
        match checked.nonce.as_deref() {
            Some(nonce) if nonce_accepted(keys(), nonce, now) => Ok(()),
            Some(_) => Err(DpopError::NonceInvalid(current_nonce(keys(), now))),
            None => Err(DpopError::NonceMissing(current_nonce(keys(), now))),
        }
    }

    /// With `DPOP_REPLAY_KV`, a proof seen by another isolate (once KV has carried its record
    /// there) is a replay too. KV failing does not refuse the request: the per-isolate guard
    /// has passed, and the log line says the KV check was skipped.
    async fn check_replay_in_kv(
        &self,
        ports: &P,
        checked: &CheckedProof,
        now: u64,
    ) -> Result<Vec<&'static str>, DpopError> {
        if !self.config.api.dpop.replay_kv {
            return Ok(Vec::new());
        }
        let key = replay_key(checked);
        match ports.get(&key).await {
            Ok(Some(_)) => return Err(DpopError::Replayed),
            Ok(None) => {}
            Err(_) => return Ok(vec!["dpop_replay_kv_unavailable"]),
        }
        let ttl = checked.replay_until.saturating_sub(now).max(KV_MIN_TTL_SECS);
        match ports.put(&key, b"1", ttl).await {
            Ok(()) => Ok(Vec::new()),
            Err(_) => Ok(vec!["dpop_replay_kv_unavailable"]),
        }
    }
}

/// Add the confirmed key's thumbprint to the origin request, and the next nonce to the answer.
pub(super) fn tell_origin(decision: &mut Decision, binding: &Binding) {
    let Outcome::Forward(plan) = &mut decision.outcome else { return };
    if let Some(jkt) = binding.jkt.as_deref().filter(|jkt| crate::proxy::is_header_safe(jkt)) {
        plan.headers.set.push((CONFIRMATION_HEADER.into(), jkt.to_owned()));
    }
    if let Some(nonce) = &binding.next_nonce {
        plan.answer_headers.push(("dpop-nonce", nonce.clone()));
    }
}
