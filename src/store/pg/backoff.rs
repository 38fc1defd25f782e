//! When a connection thread of the pool may try to connect again after failing: at once the
//! first time, then after 100 ms, 200 ms, 400 ms … and at most every 5 s. A database that is
//! down is then not hammered with a connection attempt per write: writes meanwhile fail at once
//! with the last error (the store reports itself unready, as before), and the first try after
//! the pause that succeeds puts the thread back to work.

use std::time::{Duration, Instant};

/// The first pause after a failed connect.
const FIRST: Duration = Duration::from_millis(100);
/// The longest pause.
const MAX: Duration = Duration::from_secs(5);

/// One connection thread's reconnect schedule.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// Connects failed in a row.
    failures: u32,
    /// No try before this.
    next_try: Option<Instant>,
}

impl Backoff {
    /// Whether a connect may be tried at `now`.
    pub(crate) fn may_try(&self, now: Instant) -> bool {
        self.next_try.is_none_or(|t| now >= t)
    }

    /// A connect failed at `now`: the next one waits longer.
    pub(crate) fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.next_try = Some(now + pause(self.failures));
    }

    /// A connect worked: the next failure starts the schedule over.
    pub(crate) fn succeeded(&mut self) {
        *self = Backoff::default();
    }
}

/// The pause after `failures` failed connects in a row.
fn pause(failures: u32) -> Duration {
    FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pauses_double_up_to_five_seconds() {
        let ms: Vec<u128> = (1..=8).map(|n| pause(n).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(pause(u32::MAX), MAX);
    }

    #[test]
    fn a_failure_holds_the_next_try_back_and_a_success_starts_over() {
        let t0 = crate::clock::monotonic_now();
        let mut b = Backoff::default();
        assert!(b.may_try(t0), "the first connect is tried at once");
        b.failed(t0);
        assert!(!b.may_try(t0 + Duration::from_millis(99)));
        assert!(b.may_try(t0 + Duration::from_millis(100)));
        b.failed(t0 + Duration::from_millis(100));
        assert!(!b.may_try(t0 + Duration::from_millis(299)));
        assert!(b.may_try(t0 + Duration::from_millis(300)));
        b.succeeded();
        assert!(b.may_try(t0 + Duration::from_millis(300)));
        b.failed(t0 + Duration::from_millis(300));
        assert!(
            b.may_try(t0 + Duration::from_millis(400)),
            "after a success the pause is the first one again"
        );
    }
}
