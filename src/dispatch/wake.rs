//! The dispatcher's wake-up: a [`Notify`] that also knows when the dispatcher means to wake by
//! itself, so a new reminder due later than that does not wake it for nothing (an ingest of
//! thousands of invoices a second would otherwise make it look for due work on each one).

use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;
use tokio::sync::Notify;

/// "Awake": the dispatcher is not waiting, so any wake-up is passed on.
const AWAKE: i64 = i64::MIN;

/// Wakes the dispatcher when there may be work due sooner than it expects.
#[derive(Debug)]
pub struct Wake {
    notify: Notify,
    /// While the dispatcher waits: when it wakes by itself (µs since the epoch); else
    /// [`AWAKE`].
    asleep_until: AtomicI64,
}

impl Default for Wake {
    fn default() -> Self {
        Wake {
            notify: Notify::new(),
            asleep_until: AtomicI64::new(AWAKE),
        }
    }
}

impl Wake {
    /// Wakes the dispatcher (or makes its next wait return at once).
    pub fn notify_one(&self) {
        self.notify.notify_one();
    }

    /// Wakes the dispatcher if a reminder due at `at` is due before it wakes by itself, or if
    /// that time has already passed at `now` (the clock jumped forward while it waited).
    pub fn notify_if_due_before(&self, at: Timestamp, now: Timestamp) {
        let until = self.asleep_until.load(Ordering::SeqCst);
        if until == AWAKE || at.as_microsecond() < until || now.as_microsecond() >= until {
            self.notify.notify_one();
        }
    }

    /// Waits for a wake-up, the dispatcher planning to wake by itself at `until`.
    pub async fn wait(&self, until: Timestamp) {
        let notified = self.notify.notified();
        self.asleep_until
            .store(until.as_microsecond(), Ordering::SeqCst);
        notified.await;
        self.asleep_until.store(AWAKE, Ordering::SeqCst);
    }

    /// Marks the dispatcher awake (its wait ended by a timer or shutdown).
    pub fn awake(&self) {
        self.asleep_until.store(AWAKE, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    /// A dispatcher stand-in waiting on a new [`Wake`], planning to wake at `until`; returns
    /// once it waits.
    async fn asleep_until(until: Timestamp) -> (std::sync::Arc<Wake>, tokio::task::JoinHandle<()>) {
        let wake = std::sync::Arc::new(Wake::default());
        let waiter = {
            let wake = wake.clone();
            tokio::spawn(async move { wake.wait(until).await })
        };
        while wake.asleep_until.load(Ordering::SeqCst) == AWAKE {
            tokio::task::yield_now().await;
        }
        (wake, waiter)
    }

    #[tokio::test]
    async fn a_reminder_due_before_the_planned_wake_up_wakes_the_dispatcher() {
        let (wake, waiter) = asleep_until(at(1_000)).await;
        wake.notify_if_due_before(at(2_000), at(10)); // later than planned: no wake-up
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        wake.notify_if_due_before(at(999), at(10));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(wake.asleep_until.load(Ordering::SeqCst), AWAKE);
    }

    #[tokio::test]
    async fn a_clock_that_jumped_past_the_planned_wake_up_wakes_the_dispatcher() {
        let (wake, waiter) = asleep_until(at(1_000)).await;
        // Due later than planned, but the clock already reads past the planned wake-up.
        wake.notify_if_due_before(at(5_000), at(4_000));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
    }

    #[tokio::test]
    async fn while_awake_every_wake_up_is_kept_for_the_next_wait() {
        let wake = Wake::default();
        wake.notify_if_due_before(at(5_000), at(10));
        // The stored permit ends the next wait at once, whatever it plans.
        tokio::time::timeout(Duration::from_secs(5), wake.wait(at(1)))
            .await
            .expect("the permit was kept");
    }
}
