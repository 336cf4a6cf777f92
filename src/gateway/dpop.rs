//! DPoP on bearer routes (RFC 9449 §7): which tokens need a proof, checking it against the
//! request and the token's `cnf.jkt`, and telling the origin the confirmed key.

use super::request::IncomingRequest;
use super::{Decision, Gateway, Outcome};
use crate::dpop::{DpopError, ProofContext, bound_thumbprint, check_proof};
use crate::encoding::ct_eq;
use crate::jwt::VerifiedJwt;
use crate::policy::{DpopMode, Route};
use crate::ports::Ports;

/// The header that tells the origin the thumbprint of the key the caller proved it holds.
/// Client copies never arrive: the `x-edgeguard-` prefix is stripped from client headers.
pub const CONFIRMATION_HEADER: &str = "x-edgeguard-dpop-jkt";

impl<P: Ports> Gateway<P> {
    /// Enforce the token's binding. `Ok(Some(jkt))` for a DPoP request whose proof and binding
    /// hold; `Ok(None)` for a Bearer request with an unbound token where the route allows it.
    pub(super) async fn check_dpop_binding(
        &self,
        ports: &P,
        req: &IncomingRequest,
        route: &Route,
        token: &str,
        verified: &VerifiedJwt,
    ) -> Result<Option<String>, DpopError> {
        let bound_to = bound_thumbprint(verified.claims());
        if !super::bearer::presents_dpop(req) {
            return match (bound_to, route.dpop) {
                (Some(_), _) => Err(DpopError::BoundTokenAsBearer),
                (None, DpopMode::Required) => Err(DpopError::Required),
                (None, DpopMode::Allowed) => Ok(None),
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
        // Only a proof that passed everything is remembered, so refused ones cost no memory.
        if !self.dpop_replay.borrow_mut().first_use(checked.replay_id, checked.replay_until, now) {
            return Err(DpopError::Replayed);
        }
        Ok(Some(checked.jkt))
    }
}

/// Add the confirmed key's thumbprint to the origin request.
pub(super) fn tell_origin(decision: &mut Decision, jkt: Option<&str>) {
    let (Outcome::Forward(plan), Some(jkt)) = (&mut decision.outcome, jkt) else { return };
    if crate::proxy::is_header_safe(jkt) {
        plan.headers.set.push((http::HeaderName::from_static(CONFIRMATION_HEADER), jkt.to_owned()));
    }
}
