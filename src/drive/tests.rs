//! The driver with a plain host: awaitables are numbers, values strings, and the fallback
//! executor answers at once.

use super::*;
use std::future::{Ready, ready};

/// A host whose awaitable `n` the test settles by hand (or, under an executor, with `"executor n"`).
struct Plain;

thread_local! {
    static DRIVER: Driver<Plain> = const { Driver::new() };
}

impl Host for Plain {
    type Awaitable = u32;
    type Value = String;
    type Output = Result<String, String>;
    type Fallback = Ready<Settled<Plain>>;

    fn fallback(awaitable: u32) -> Self::Fallback {
        ready(Ok(format!("executor {awaitable}")))
    }

    fn driver() -> &'static LocalKey<Driver<Self>> {
        &DRIVER
    }
}

fn drive(task: impl Future<Output = Result<String, String>> + 'static) -> Polled<Plain> {
    DRIVER.with(|d| d.drive(Box::pin(task)))
}

fn resume(id: u32, settled: Settled<Plain>) -> Option<Polled<Plain>> {
    DRIVER.with(|d| d.resume(id, settled))
}

/// The id and awaitable of a parked poll.
fn parked(polled: Polled<Plain>) -> (u32, u32) {
    match polled {
        Polled::Parked { id, on } => (id, on),
        Polled::Ready(output) => panic!("expected to park, got {output:?}"),
        Polled::Elsewhere(_) => panic!("expected to park, went to the executor"),
    }
}

fn ready_output(polled: Option<Polled<Plain>>) -> Result<String, String> {
    match polled {
        Some(Polled::Ready(output)) => output,
        _ => panic!("expected the task to finish"),
    }
}

#[test]
fn a_task_that_waits_on_nothing_answers_at_once() {
    assert_eq!(ready_output(Some(drive(async { Ok("done".to_string()) }))), Ok("done".into()));
}

#[test]
fn a_task_parks_on_each_host_await_and_resumes_with_the_settled_value() {
    let (first, on) = parked(drive(async {
        let a = HostAwait::<Plain>::new(7).await?;
        let b = HostAwait::<Plain>::new(8).await.unwrap_or_else(|e| format!("rejected {e}"));
        Ok(format!("{a}+{b}"))
    }));
    assert_eq!(on, 7);
    let (second, on) = parked(resume(first, Ok("seven".into())).expect("parked"));
    assert_eq!(on, 8);
    assert_ne!(first, second, "every park gets a fresh id");
    assert_eq!(ready_output(resume(second, Err("eight".into()))), Ok("seven+rejected eight".into()));
    assert!(resume(second, Ok("again".into())).is_none(), "a finished task cannot be resumed twice");
}

#[test]
fn a_rejected_await_reaches_the_task_as_an_error() {
    let (id, _) = parked(drive(async { HostAwait::<Plain>::new(1).await }));
    assert_eq!(ready_output(resume(id, Err("refused".into()))), Err("refused".into()));
}

#[test]
fn a_resume_of_an_unknown_id_is_answered_with_none() {
    assert!(resume(u32::MAX - 3, Ok("late".into())).is_none());
}

/// Counts drops of the futures it is moved into.
struct DropCount(Rc<Cell<usize>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn when_the_table_is_full_the_oldest_parked_task_is_dropped() {
    let dropped = Rc::new(Cell::new(0));
    let ids: Vec<u32> = (0..=MAX_PARKED as u32)
        .map(|n| {
            let guard = DropCount(Rc::clone(&dropped));
            parked(drive(async move {
                let _guard = guard;
                HostAwait::<Plain>::new(n).await
            }))
            .0
        })
        .collect();
    assert_eq!(dropped.get(), 1, "only the oldest task was dropped, and it was dropped, not leaked");
    assert!(resume(ids[0], Ok("late".into())).is_none(), "the dropped task's id is unknown");
    assert_eq!(ready_output(resume(ids[MAX_PARKED], Ok("newest".into()))), Ok("newest".into()));
    assert_eq!(ready_output(resume(ids[1], Ok("second".into()))), Ok("second".into()));
}

/// Pending until its waker, kept from the first poll (as workers-rs' `Delay` keeps it), fires.
struct KeepsFirstWaker(Rc<RefCell<Option<Waker>>>, Rc<Cell<bool>>);

impl Future for KeepsFirstWaker {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.1.get() {
            return Poll::Ready(());
        }
        self.0.borrow_mut().get_or_insert_with(|| cx.waker().clone());
        Poll::Pending
    }
}

/// Records that it was woken.
struct Flag(std::sync::atomic::AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn other_waits_go_to_the_executor_and_their_wake_ups_reach_it() {
    let (kept, fired) = (Rc::new(RefCell::new(None)), Rc::new(Cell::new(false)));
    let timer = KeepsFirstWaker(Rc::clone(&kept), Rc::clone(&fired));
    let Polled::Elsewhere(mut rest) = drive(async move {
        timer.await;
        // Outside the driver, a host await runs under the executor instead of parking.
        HostAwait::<Plain>::new(5).await
    }) else {
        panic!("a wait on a timer is the executor's");
    };
    let flag = Arc::new(Flag(false.into()));
    let waker = Waker::from(Arc::clone(&flag));
    assert!(Pin::new(&mut rest).poll(&mut Context::from_waker(&waker)).is_pending());
    fired.set(true);
    kept.borrow_mut().take().expect("the timer kept the driver's waker").wake();
    assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst), "the executor heard the timer's wake-up");
    assert_eq!(Pin::new(&mut rest).poll(&mut Context::from_waker(&waker)), Poll::Ready(Ok("executor 5".into())));
}

#[test]
fn only_a_poll_from_the_driver_counts_as_driving() {
    assert!(!DRIVER.with(|d| d.driving()));
    let polled = drive(async { Ok(DRIVER.with(|d| d.driving()).to_string()) });
    assert_eq!(ready_output(Some(polled)), Ok("true".into()));
    assert!(!DRIVER.with(|d| d.driving()));
}
