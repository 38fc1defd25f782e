//! The one source of "now". Production uses [`SystemClock`]; tests drive a [`ManualClock`].
//!
//! This is the only module allowed to read the system clock: `clippy.toml` bans
//! `Timestamp::now`, `Zoned::now`, `SystemTime::now`, `Instant::now` and the implicit reads
//! `Instant::elapsed` / `SystemTime::elapsed` everywhere else. Code that needs "now" takes a
//! [`SharedClock`]; a monotonic timer that no test needs to drive (a connection pool's idle
//! timer, how long a request or a flush took) uses [`monotonic_now`] and [`elapsed_since`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::{SignedDuration, Timestamp};

/// A source of the current instant (UTC).
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to; for tests and simulations.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock stopped at `t`.
    pub fn new(t: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(t.as_microsecond())))
    }
    /// Moves the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_microsecond(), Ordering::SeqCst);
    }
    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: SignedDuration) {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_microsecond(self.0.load(Ordering::SeqCst)).unwrap_or(Timestamp::MAX)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's monotonic clock, for measuring elapsed time (idle timers), never for
/// deciding what is due: that is [`Clock::now`].
#[allow(clippy::disallowed_methods)] // the one place the monotonic clock is read
pub fn monotonic_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// How long ago `start` (a [`monotonic_now`] reading) was: what `Instant::elapsed` gives,
/// through the one module that reads the clock. Zero when `start` is later than now.
pub fn elapsed_since(start: std::time::Instant) -> std::time::Duration {
    monotonic_now().saturating_duration_since(start)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn elapsed_since_measures_forward_and_saturates_at_zero() {
        let start = monotonic_now();
        let later = start + Duration::from_secs(3600);
        assert_eq!(elapsed_since(later), Duration::ZERO);
        let past = start.checked_sub(Duration::from_secs(5)).unwrap_or(start);
        let e = elapsed_since(past);
        assert!(e >= start.duration_since(past), "{e:?}");
        assert!(e < Duration::from_secs(3600), "{e:?}");
    }
}
