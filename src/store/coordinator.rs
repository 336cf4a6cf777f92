//! A session's coordinator: one place, for every isolate in every location, that decides who
//! refreshes a session and whether it has ended.
//!
//! Workers KV is eventually consistent (about 60 s between locations), so with KV alone two
//! locations can refresh one session at once, and a logout reaches other locations only as
//! fast as KV propagates. When a `SESSION_OBJECTS` Durable Object namespace is bound, each
//! session (by its session hash) has an object, and a Durable Object is one single-threaded
//! instance worldwide: it hands out one refresh *lease* at a time, keeps the newest tokens
//! (sealed by the isolates; the object never holds a key) and remembers that a session ended.
//!
//! The object's behaviour is the pure state machine [`ObjectState`] and the waiting loop
//! [`serve`], both here so host tests run them; [`super::session_object`] loads and stores that
//! state and answers calls, and `src/edge/session_object.rs` binds the runtime's storage and
//! carries [`ObjectCall`]s and [`ObjectAnswer`]s as JSON. Isolates reach it through
//! the [`SessionCoordinator`] port, whose default answer ("no object bound") is the KV-only
//! design.

use super::RefreshGrace;
use crate::encoding::{b64url, b64url_decode, hex};
use crate::ports::{Clock, KvError, Rng};
use crate::session::{Purpose, SessionKeys, random_nonce};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// How long a refresh lease lasts: the provider gets 10 s per request (`edge/ports.rs`), plus
/// the store writes. A leader that vanishes (its isolate evicted) blocks others this long.
pub const LEASE_MILLIS: u64 = 15_000;
/// How often a caller waiting inside the object looks at the lease again.
const WAIT_POLL_MILLIS: u64 = 10;
/// Most looks per wait: the lease's length in polls, so a fake clock that does not move ends it.
const WAIT_MAX_POLLS: u64 = LEASE_MILLIS / WAIT_POLL_MILLIS;

/// What an isolate asks a session's object. Externally tagged JSON (`"check"`,
/// `{"refresh":{...}}`): serde's internally tagged form buffers every value and measured 4 KiB
/// gzip more in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectCall {
    /// Revalidation of a warm or cold copy: has the session ended?
    Check,
    /// The caller's access token (`access`: hex SHA-256 of it) is due: who refreshes?
    Refresh { access: String },
    /// The leader's new tokens (`sealed`, base64url) whose access token hashes to `access`;
    /// ends its lease. The object keeps them for `keep_secs`, the session's remaining lifetime.
    Refreshed { lease: String, access: String, sealed: String, keep_secs: u64 },
    /// The leader got no tokens (provider unavailable): the next caller may try.
    Abandon { lease: String },
    /// The session ended (logout, back-channel logout, refresh token rejected). The object
    /// remembers it for `keep_secs`, the longest the session could otherwise have lived.
    End { keep_secs: u64 },
}

/// The object's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectAnswer {
    /// The session has not ended (and the call was applied).
    Live,
    /// The session has ended: refuse it.
    Ended,
    /// Newer tokens than the caller's (sealed, base64url): use these instead of refreshing.
    Current { sealed: String },
    /// The caller refreshes, under this lease, and reports back with `Refreshed` or `Abandon`.
    Lead { lease: String },
    /// Another caller holds the lease and did not report back in time.
    Busy,
}

/// The newest tokens of the session, as the leader sealed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Tokens {
    /// Hex SHA-256 of their access token: a caller holding another one is behind.
    access: String,
    sealed: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    id: String,
    until_ms: u64,
}

/// One session's object state; the object persists it (JSON) after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectState {
    ended: bool,
    tokens: Option<Tokens>,
    lease: Option<Lease>,
    /// When (Unix milliseconds) the object may delete its state: the end of the session's
    /// possible lifetime, or of a lease nobody reported on (0: nothing stored).
    #[serde(default)]
    pub keep_until_ms: u64,
}

/// An answer from [`ObjectState::apply`]: final, or "wait for the lease holder".
enum Step {
    Answer(ObjectAnswer),
    Wait,
}

impl ObjectState {
    /// Apply one call at `now_ms`; `true` with the answer when the state changed (and must be
    /// stored before answering).
    fn apply(&mut self, call: &ObjectCall, now_ms: u64, rng: &impl Rng) -> (Step, bool) {
        let answer = |a| (Step::Answer(a), false);
        let changed = |a| (Step::Answer(a), true);
        if self.ended {
            return answer(ObjectAnswer::Ended);
        }
        match call {
            ObjectCall::Check => answer(ObjectAnswer::Live),
            ObjectCall::Refresh { access } => match (&self.tokens, &self.lease) {
                (Some(tokens), _) if tokens.access != *access => {
                    answer(ObjectAnswer::Current { sealed: tokens.sealed.clone() })
                }
                (_, Some(lease)) if now_ms < lease.until_ms => (Step::Wait, false),
                _ => {
                    let id = lease_id(rng);
                    let until_ms = now_ms.saturating_add(LEASE_MILLIS);
                    self.lease = Some(Lease { id: id.clone(), until_ms });
                    self.keep(until_ms);
                    changed(ObjectAnswer::Lead { lease: id })
                }
            },
            ObjectCall::Refreshed { lease, access, sealed, keep_secs } => {
                let holds = self.lease.as_ref().is_some_and(|l| l.id == *lease);
                match &self.tokens {
                    // Its lease ran out and another leader stored newer tokens: those win.
                    Some(tokens) if !holds && tokens.access != *access => {
                        answer(ObjectAnswer::Current { sealed: tokens.sealed.clone() })
                    }
                    _ => {
                        if holds {
                            self.lease = None;
                        }
                        self.tokens = Some(Tokens { access: access.clone(), sealed: sealed.clone() });
                        self.keep(now_ms.saturating_add(keep_secs.saturating_mul(1000)));
                        changed(ObjectAnswer::Live)
                    }
                }
            }
            ObjectCall::Abandon { lease } if self.lease.as_ref().is_some_and(|l| l.id == *lease) => {
                self.lease = None;
                changed(ObjectAnswer::Live)
            }
            ObjectCall::Abandon { .. } => answer(ObjectAnswer::Live),
            ObjectCall::End { keep_secs } => {
                let keep_until_ms = now_ms.saturating_add(keep_secs.saturating_mul(1000)).max(self.keep_until_ms);
                *self = ObjectState { ended: true, tokens: None, lease: None, keep_until_ms };
                changed(ObjectAnswer::Ended)
            }
        }
    }
}

impl ObjectState {
    /// Keep the state until at least `until_ms` (it only ever moves later).
    fn keep(&mut self, until_ms: u64) {
        self.keep_until_ms = self.keep_until_ms.max(until_ms);
    }
}

fn lease_id(rng: &impl Rng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    b64url(&bytes)
}

/// Answer `call` against the object's `state`, waiting (inside the object, on its own timer)
/// while another caller holds the refresh lease, so each isolate makes one object request per
/// refresh instead of polling from afar. Returns the answer and whether the state changed.
pub async fn serve(
    state: &RefCell<ObjectState>,
    call: &ObjectCall,
    clock: &impl Clock,
    rng: &impl Rng,
) -> (ObjectAnswer, bool) {
    for _ in 0..=WAIT_MAX_POLLS {
        let (step, changed) = state.borrow_mut().apply(call, clock.now_millis(), rng);
        match step {
            Step::Answer(answer) => return (answer, changed),
            Step::Wait => clock.sleep(WAIT_POLL_MILLIS).await,
        }
    }
    (ObjectAnswer::Busy, false)
}

/// Hex SHA-256 of an access token, as the object compares them.
pub fn access_hash(access_token: &str) -> String {
    hex(&crate::encoding::sha256(access_token.as_bytes()))
}

/// The tokens a leader hands its session's object, sealed under the store key with the
/// object's name as associated data: the object (and its storage) never sees a token, and
/// sealed tokens cannot be replayed into another session's object.
pub fn seal_tokens(keys: &SessionKeys, rng: &impl Rng, session_hash: &str, tokens: &RefreshGrace) -> String {
    let json = serde_json::to_vec(tokens).unwrap_or_default();
    b64url(&keys.seal(Purpose::Store, object_aad(session_hash).as_bytes(), &json, random_nonce(rng)))
}

/// Tokens from [`seal_tokens`]; `None` if they do not open under the configured secrets.
pub fn open_tokens(keys: &SessionKeys, session_hash: &str, sealed: &str) -> Option<RefreshGrace> {
    let sealed = b64url_decode(sealed)?;
    let plain = keys.open(Purpose::Store, object_aad(session_hash).as_bytes(), &sealed)?;
    crate::json::decode(&plain).ok()
}

fn object_aad(session_hash: &str) -> String {
    format!("session-object:v1:{session_hash}")
}

/// The port to sessions' objects. The default is KV only (no object bound): today's design,
/// with no coordinator to ask.
#[allow(async_fn_in_trait)] // Worker futures are not Send (see ports.rs)
pub trait SessionCoordinator {
    /// Send `call` to the object of the session `session_hash`; `Ok(None)` when no
    /// `SESSION_OBJECTS` namespace is bound. An object that cannot be reached is a store failure.
    async fn ask_session_object(&self, session_hash: &str, call: &ObjectCall) -> Result<Option<ObjectAnswer>, KvError> {
        let _ = (session_hash, call);
        Ok(None)
    }
}

#[cfg(test)]
pub mod fake {
    //! Sessions' objects in memory, for host tests: the real state machine and waiting loop,
    //! one state per session, shared by every "isolate" (gateway) using the same ports.
    use super::*;
    use crate::testkit::{FakeClock, FakeRng};
    use std::collections::HashMap;
    use std::rc::Rc;

    #[derive(Default)]
    pub struct FakeObjects {
        /// Whether the namespace is bound (default: no, the KV-only design).
        pub bound: std::cell::Cell<bool>,
        pub states: RefCell<HashMap<String, Rc<RefCell<ObjectState>>>>,
        pub calls: RefCell<Vec<ObjectCall>>,
        pub fail: std::cell::Cell<bool>,
    }

    impl FakeObjects {
        pub async fn ask(
            &self,
            clock: &FakeClock,
            session: &str,
            call: &ObjectCall,
        ) -> Result<Option<ObjectAnswer>, KvError> {
            if !self.bound.get() {
                return Ok(None);
            }
            self.calls.borrow_mut().push(call.clone());
            if self.fail.get() {
                return Err(KvError("session object unreachable (injected)".into()));
            }
            let state = Rc::clone(self.states.borrow_mut().entry(session.to_owned()).or_default());
            crate::testkit::yield_once().await; // a real object is a subrequest away
            let rng = FakeRng::new(self.calls.borrow().len() as u64);
            Ok(Some(serve(&state, call, clock, &rng).await.0))
        }

        pub fn count(&self, pred: impl Fn(&ObjectCall) -> bool) -> usize {
            self.calls.borrow().iter().filter(|c| pred(c)).count()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{FakeClock, FakeRng, block_on};

    thread_local! {
        static RNG: FakeRng = FakeRng::new(1);
    }

    fn ask(state: &RefCell<ObjectState>, clock: &FakeClock, call: ObjectCall) -> ObjectAnswer {
        RNG.with(|rng| block_on(serve(state, &call, clock, rng))).0
    }

    fn refresh(access: &str) -> ObjectCall {
        ObjectCall::Refresh { access: access.into() }
    }

    #[test]
    fn one_lease_at_a_time_and_later_callers_get_the_leaders_tokens() {
        let (state, clock) = (RefCell::new(ObjectState::default()), FakeClock::at_secs(1000));
        let ObjectAnswer::Lead { lease } = ask(&state, &clock, refresh("a1")) else { panic!("first caller leads") };
        // A second caller with the same (old) token waits for the leader, then gets its tokens.
        let waiting = async { serve(&state, &refresh("a1"), &clock, &FakeRng::new(2)).await.0 };
        let finishing = async {
            crate::testkit::yield_once().await;
            let call =
                ObjectCall::Refreshed { lease: lease.clone(), access: "a2".into(), sealed: "S2".into(), keep_secs: 60 };
            serve(&state, &call, &clock, &FakeRng::new(3)).await
        };
        let (waited, finished) = block_on(futures::future::join(waiting, finishing));
        assert_eq!(finished, (ObjectAnswer::Live, true));
        assert_eq!(state.borrow().keep_until_ms, 1_060_000, "kept for the session's remaining lifetime");
        assert_eq!(waited, ObjectAnswer::Current { sealed: "S2".into() });
        // A caller that holds the new token and finds it due leads the next refresh.
        assert!(matches!(ask(&state, &clock, refresh("a2")), ObjectAnswer::Lead { .. }));
    }

    #[test]
    fn a_lease_that_runs_out_passes_on_and_its_late_report_loses() {
        let (state, clock) = (RefCell::new(ObjectState::default()), FakeClock::at_secs(1000));
        let ObjectAnswer::Lead { lease: first } = ask(&state, &clock, refresh("a1")) else { panic!() };
        clock.advance_secs(LEASE_MILLIS / 1000);
        let ObjectAnswer::Lead { lease: second } = ask(&state, &clock, refresh("a1")) else { panic!("lease expired") };
        assert_ne!(first, second);
        let report = |lease: &str, access: &str| ObjectCall::Refreshed {
            lease: lease.into(),
            access: access.into(),
            sealed: format!("S-{access}"),
            keep_secs: 60,
        };
        assert_eq!(ask(&state, &clock, report(&second, "a2")), ObjectAnswer::Live);
        assert_eq!(ask(&state, &clock, report(&first, "a3")), ObjectAnswer::Current { sealed: "S-a2".into() });
    }

    #[test]
    fn an_abandoned_lease_lets_the_next_caller_lead_at_once() {
        let (state, clock) = (RefCell::new(ObjectState::default()), FakeClock::at_secs(1000));
        let ObjectAnswer::Lead { lease } = ask(&state, &clock, refresh("a1")) else { panic!() };
        assert_eq!(ask(&state, &clock, ObjectCall::Abandon { lease }), ObjectAnswer::Live);
        assert!(matches!(ask(&state, &clock, refresh("a1")), ObjectAnswer::Lead { .. }));
    }

    #[test]
    fn a_leader_that_never_reports_leaves_waiters_busy_not_hanging() {
        let (state, clock) = (RefCell::new(ObjectState::default()), FakeClock::at_secs(1000));
        assert!(matches!(ask(&state, &clock, refresh("a1")), ObjectAnswer::Lead { .. }));
        // The fake clock never moves, so only the poll bound ends the wait.
        assert_eq!(ask(&state, &clock, refresh("a1")), ObjectAnswer::Busy);
    }

    #[test]
    fn an_ended_session_stays_ended_for_every_call_and_drops_its_tokens() {
        let (state, clock) = (RefCell::new(ObjectState::default()), FakeClock::at_secs(1000));
        let ObjectAnswer::Lead { lease } = ask(&state, &clock, refresh("a1")) else { panic!() };
        assert_eq!(ask(&state, &clock, ObjectCall::End { keep_secs: 8000 }), ObjectAnswer::Ended);
        assert_eq!(state.borrow().keep_until_ms, 9_000_000, "kept for the session's possible lifetime");
        let late = ObjectCall::Refreshed { lease, access: "a2".into(), sealed: "S2".into(), keep_secs: 60 };
        assert_eq!(ask(&state, &clock, late), ObjectAnswer::Ended, "a refresh in flight cannot revive it");
        assert_eq!(ask(&state, &clock, ObjectCall::Check), ObjectAnswer::Ended);
        assert_eq!(ask(&state, &clock, refresh("a2")), ObjectAnswer::Ended);
        assert!(state.borrow().tokens.is_none(), "no tokens kept for an ended session");
    }

    #[test]
    fn sealed_tokens_open_only_for_their_own_session() {
        let keys = SessionKeys::derive(&["a-test-secret-that-is-long-enough-0001"]);
        let tokens = RefreshGrace {
            access_token: "at-2".into(),
            access_expires_at: Some(9),
            access_issued_at: Some(1),
            refresh_token: Some("rt-2".into()),
            id_token: Some(super::super::RefreshedIdToken {
                id_token: "idt-2".into(),
                identity: crate::session::Identity { sub: "alice".into(), ..Default::default() },
            }),
        };
        let sealed = seal_tokens(&keys, &FakeRng::new(4), "hash-a", &tokens);
        assert!(
            !sealed.contains("rt-2") && !String::from_utf8_lossy(&b64url_decode(&sealed).unwrap()).contains("rt-2")
        );
        assert!(open_tokens(&keys, "hash-a", &sealed) == Some(tokens));
        assert!(open_tokens(&keys, "hash-b", &sealed).is_none(), "bound to its object's name");
        let other = SessionKeys::derive(&["another-secret-that-is-long-enough-02"]);
        assert!(open_tokens(&other, "hash-a", &sealed).is_none());
    }

    #[test]
    fn tokens_sealed_before_id_tokens_were_kept_still_open_and_change_no_id_token() {
        let keys = SessionKeys::derive(&["a-test-secret-that-is-long-enough-0001"]);
        let legacy = br#"{"access_token":"at-2","access_expires_at":9,"refresh_token":"rt-2"}"#;
        let sealed = b64url(&keys.seal(Purpose::Store, object_aad("hash-a").as_bytes(), legacy, [7; 12]));
        let opened = open_tokens(&keys, "hash-a", &sealed).unwrap();
        assert_eq!(opened.access_token, "at-2");
        assert!(opened.id_token.is_none());
    }

    #[test]
    fn calls_and_answers_travel_as_json() {
        let call = ObjectCall::Refresh { access: "ab".into() };
        assert_eq!(serde_json::to_string(&call).unwrap(), r#"{"refresh":{"access":"ab"}}"#);
        assert_eq!(serde_json::to_string(&ObjectCall::Check).unwrap(), r#""check""#);
        let answer: ObjectAnswer = serde_json::from_str(r#"{"current":{"sealed":"x"}}"#).unwrap();
        assert_eq!(answer, ObjectAnswer::Current { sealed: "x".into() });
        let state = ObjectState { ended: true, keep_until_ms: 5, ..Default::default() };
        let back: ObjectState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(back, state);
    }
}
