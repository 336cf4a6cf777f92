//! A client over its limit on a gateway endpoint (issue 11, item 4): what it is told.

use super::*;
use crate::gateway::rate_limited_decision;

#[test]
fn a_limited_client_gets_429_with_retry_after_and_a_log_reason() {
    for req in [navigate("/auth/login?rd=/", ""), request(Method::POST, "/auth/backchannel-logout", &[])] {
        let d = rate_limited_decision(&req);
        let r = response(&d);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "60");
        assert_eq!((d.log.reason, d.log.status), ("rate_limited", Some(429)));
        assert!(d.should_log(), "a refusal is always logged");
    }
}
