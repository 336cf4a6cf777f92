//! The way of one request as the Worker runs it, around [`Gateway::handle`]: the gateway
//! endpoints' rate limit (before anything else), the form body of a form endpoint (read only
//! when wanted and not declared too large), the decision (or the configuration error page), the
//! route's own rate limit (after authentication, before forwarding), and which log lines are
//! written. What the runtime must do next is a [`Next`]; the runtime's own calls are the
//! [`RequestRuntime`] port, so host tests run this whole order.

use super::{
    DecisionLog, ForwardPlan, Gateway, IncomingRequest, Outcome, RATE_LIMIT_BINDING, Refusal, config_error_decision,
    rate_limited_decision, rate_limited_endpoint,
};
use crate::config::ConfigErrors;
use crate::ports::Ports;

/// What the entry needs from the request's runtime beyond the [`Ports`].
#[allow(async_fn_in_trait)] // Worker futures are not Send (see ports.rs)
pub trait RequestRuntime {
    type Error;
    /// The client's address (`CF-Connecting-IP`), read only for rate limits.
    fn client_ip(&self) -> Option<String>;
    /// Whether `key` is within the limit of the rate-limiting binding `binding`; `true` when the
    /// binding is absent or fails (requests must not depend on the counter).
    async fn within_limit(&self, binding: &str, key: &str) -> bool;
    /// The body of a gateway form endpoint; `None` once it passes `MAX_FORM_BYTES`.
    async fn read_form(&self) -> Result<Option<Vec<u8>>, Self::Error>;
    /// Write one decision log line.
    fn emit(&self, log: &DecisionLog);
}

/// What the runtime does next.
#[derive(Debug)]
pub enum Next {
    /// Answer with the gateway's own response. `ended`: the storage keys of sessions this
    /// isolate just ended, whose proxied WebSockets the runtime closes.
    Respond { response: http::Response<Vec<u8>>, ended: Vec<String> },
    /// Send the request to the origin as planned (its log line is written already).
    Forward(ForwardPlan),
}

/// Decide `incoming` (its form body read here when wanted) with `gateway`, or answer with the
/// configuration's errors when it has none.
pub async fn decide<P: Ports, R: RequestRuntime>(
    gateway: Result<&Gateway<P>, &ConfigErrors>,
    ports: &P,
    runtime: &R,
    incoming: &mut IncomingRequest,
) -> Result<Next, R::Error> {
    if rate_limited_endpoint(&incoming.path) {
        let ip = runtime.client_ip().unwrap_or_else(|| "unknown".into());
        if !runtime.within_limit(RATE_LIMIT_BINDING, &ip).await {
            return Ok(refused(rate_limited_decision(incoming), runtime));
        }
    }
    if IncomingRequest::wants_form(&incoming.method, &incoming.path) && !incoming.declares_oversized_form() {
        incoming.form = runtime.read_form().await?;
    }
    let decision = match gateway {
        Ok(gateway) => gateway.handle(ports, incoming).await,
        Err(errors) => config_error_decision(errors, incoming),
    };
    let log_forward = decision.should_log();
    let plan = match decision.outcome {
        Outcome::Respond(response) => {
            runtime.emit(&decision.log);
            let ended = gateway.map(Gateway::take_ended_sessions).unwrap_or_default();
            return Ok(Next::Respond { response, ended });
        }
        Outcome::Forward(plan) => plan,
    };
    if let Some(limit) = &plan.rate_limit
        && !runtime.within_limit(&limit.binding, &limit.key(runtime.client_ip().as_deref())).await
    {
        return Ok(refused(rate_limited_decision(incoming), runtime));
    }
    if log_forward {
        runtime.emit(&decision.log);
    }
    Ok(Next::Forward(plan))
}

/// A refusal's answer, its log line written.
fn refused(refusal: Refusal, runtime: &impl RequestRuntime) -> Next {
    runtime.emit(&refusal.log);
    Next::Respond { response: refusal.response, ended: Vec::new() }
}
