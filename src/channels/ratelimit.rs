//! Token buckets per provider account and sender (GCRA, "virtual scheduling").
//!
//! A bucket allows `per_second` messages per second on average with bursts of up to `burst`.
//! [`RateLimiter::reserve`] never refuses: it hands out the earliest free slot, and the caller
//! either waits for it (short waits) or puts the message back in the due index until then (long
//! waits), so messages queue, they are never dropped. Reservations advance the bucket's
//! "theoretical arrival time" (TAT) by one emission interval each.
//!
//! Buckets are shared through a [`Registry`] by key, e.g. `twilio:AC…:+15005550006`, so two
//! channel instances sending from the same number draw from the same bucket.
//! [`RateLimiter::penalize`] pushes the bucket back after a provider's `429 Retry-After`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

/// A rate-limit setting, as written in a channel's config:
/// `rate_limit = { per_second = 1.0, burst = 1 }`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained messages per second, e.g. `1.0` for a US long code, `80.0` for a WhatsApp
    /// number. Must be > 0; at most 100,000.
    pub per_second: f64,
    /// Messages that may go at once after a quiet period. Default 1.
    #[serde(default = "one")]
    pub burst: u32,
}

fn one() -> u32 {
    1
}

impl RateLimitConfig {
    /// Checks the values; the error says what to write instead.
    pub fn validate(&self) -> Result<(), String> {
        if !self.per_second.is_finite() || self.per_second <= 0.0 || self.per_second > 100_000.0 {
            return Err(format!(
                "per_second = {} must be a number above 0 and at most 100000, e.g. 1.0",
                self.per_second
            ));
        }
        if self.burst == 0 || self.burst > 100_000 {
            return Err(format!(
                "burst = {} must be between 1 and 100000",
                self.burst
            ));
        }
        Ok(())
    }
}

/// A shared bucket.
pub type SharedLimiter = Arc<RateLimiter>;

/// One token bucket.
#[derive(Debug)]
pub struct RateLimiter {
    key: String,
    interval_nanos: i128,
    tolerance_nanos: i128,
    state: Mutex<State>,
    waited_nanos: AtomicU64,
    delayed: AtomicU64,
    reserved: AtomicU64,
}

#[derive(Debug)]
struct State {
    /// Theoretical arrival time of the next message, in nanoseconds since the epoch.
    tat: i128,
}

/// Counters of one bucket, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterStats {
    /// The bucket's key.
    pub key: String,
    /// Slots handed out.
    pub reserved: u64,
    /// Slots that were not free at once (the message waited).
    pub delayed: u64,
    /// Total time messages waited for their slot, in nanoseconds.
    pub waited_nanos: u64,
    /// How far ahead the bucket is booked: the wait a message reserving now would get.
    pub backlog: SignedDuration,
}

impl RateLimiter {
    /// A bucket named `key` with `cfg`'s rate; `cfg` must have passed
    /// [`RateLimitConfig::validate`] (out-of-range values are clamped).
    pub fn new(key: impl Into<String>, cfg: RateLimitConfig) -> Self {
        let per_second = if cfg.per_second.is_finite() {
            cfg.per_second.clamp(1e-6, 100_000.0)
        } else {
            1.0
        };
        let interval_nanos = (1e9 / per_second).round() as i128;
        let burst = i128::from(cfg.burst.max(1));
        RateLimiter {
            key: key.into(),
            interval_nanos: interval_nanos.max(1),
            tolerance_nanos: (burst - 1) * interval_nanos.max(1),
            state: Mutex::new(State { tat: i128::MIN }),
            waited_nanos: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
        }
    }

    /// The bucket's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Time between two slots at the sustained rate.
    pub fn interval(&self) -> SignedDuration {
        SignedDuration::from_nanos(i64::try_from(self.interval_nanos).unwrap_or(i64::MAX))
    }

    /// Books the earliest free slot at or after `now` and returns it.
    pub fn reserve(&self, now: Timestamp) -> Timestamp {
        let now_n = now.as_nanosecond();
        let slot = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let tat = st.tat.max(now_n);
            let slot = (tat - self.tolerance_nanos).max(now_n);
            st.tat = tat + self.interval_nanos;
            slot
        };
        self.reserved.fetch_add(1, Ordering::Relaxed);
        if slot > now_n {
            self.delayed.fetch_add(1, Ordering::Relaxed);
            let waited = u64::try_from(slot - now_n).unwrap_or(u64::MAX);
            self.waited_nanos.fetch_add(waited, Ordering::Relaxed);
        }
        Timestamp::from_nanosecond(slot).unwrap_or(now)
    }

    /// Nothing may be sent before `until` (a provider answered 429 with `Retry-After`): later
    /// reservations start from there.
    pub fn penalize(&self, until: Timestamp) {
        let until_n = until.as_nanosecond();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // The slot handed out next must be >= until: slot = tat - tolerance.
        st.tat = st.tat.max(until_n + self.tolerance_nanos);
    }

    /// The bucket's counters.
    pub fn stats(&self, now: Timestamp) -> LimiterStats {
        let tat = self.state.lock().unwrap_or_else(|p| p.into_inner()).tat;
        // A bucket never used has `tat == i128::MIN`: saturate so it shows no backlog
        // (plain subtraction wrapped around to i64::MAX ns, 9.2e9 s, in release builds).
        let backlog_n = tat
            .saturating_sub(self.tolerance_nanos)
            .saturating_sub(now.as_nanosecond())
            .max(0);
        LimiterStats {
            key: self.key.clone(),
            reserved: self.reserved.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
            waited_nanos: self.waited_nanos.load(Ordering::Relaxed),
            backlog: SignedDuration::from_nanos(i64::try_from(backlog_n).unwrap_or(i64::MAX)),
        }
    }
}

/// Buckets by key, shared by every channel built from one config.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    buckets: Arc<Mutex<BTreeMap<String, SharedLimiter>>>,
}

impl Registry {
    /// The bucket `key`, created with `cfg` if new; a later request for the same key shares
    /// the first bucket (and its rate).
    pub fn get_or_create(&self, key: &str, cfg: RateLimitConfig) -> SharedLimiter {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(key.to_owned())
                .or_insert_with(|| Arc::new(RateLimiter::new(key, cfg))),
        )
    }

    /// Every bucket, by key.
    pub fn all(&self) -> Vec<SharedLimiter> {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(per_second: f64, burst: u32) -> RateLimitConfig {
        RateLimitConfig { per_second, burst }
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap()
    }

    #[test]
    fn one_per_second_spaces_slots_one_second_apart() {
        let l = RateLimiter::new("k", cfg(1.0, 1));
        let slots: Vec<_> = (0..4).map(|_| l.reserve(t(0))).collect();
        assert_eq!(slots, vec![t(0), t(1000), t(2000), t(3000)]);
        let s = l.stats(t(0));
        assert_eq!((s.reserved, s.delayed), (4, 3));
        assert_eq!(s.waited_nanos, 6_000_000_000);
        assert_eq!(s.backlog, SignedDuration::from_secs(4));
    }

    #[test]
    fn an_idle_bucket_shows_no_backlog() {
        for burst in [1, 5] {
            let l = RateLimiter::new("idle", cfg(2.0, burst));
            let s = l.stats(t(1_000));
            assert_eq!(s.backlog, SignedDuration::ZERO, "burst {burst}");
            assert_eq!((s.reserved, s.delayed, s.waited_nanos), (0, 0, 0));
        }
    }

    #[test]
    fn interval_is_the_inverse_of_the_rate() {
        assert_eq!(
            RateLimiter::new("k", cfg(80.0, 1)).interval(),
            SignedDuration::from_micros(12_500)
        );
        assert_eq!(
            RateLimiter::new("k", cfg(1.0, 5)).interval(),
            SignedDuration::from_secs(1)
        );
    }

    #[test]
    fn burst_goes_at_once_then_the_rate_applies() {
        let l = RateLimiter::new("k", cfg(10.0, 3));
        let slots: Vec<_> = (0..5).map(|_| l.reserve(t(0))).collect();
        assert_eq!(slots, vec![t(0), t(0), t(0), t(100), t(200)]);
    }

    #[test]
    fn idle_time_refills_but_never_beyond_burst() {
        let l = RateLimiter::new("k", cfg(1.0, 2));
        assert_eq!(l.reserve(t(0)), t(0));
        assert_eq!(l.reserve(t(0)), t(0));
        // An hour later: only `burst` slots are free at once.
        let later = 3_600_000;
        assert_eq!(l.reserve(t(later)), t(later));
        assert_eq!(l.reserve(t(later)), t(later));
        assert_eq!(l.reserve(t(later)), t(later + 1000));
    }

    #[test]
    fn penalize_pushes_the_next_slot_to_retry_after() {
        let l = RateLimiter::new("k", cfg(5.0, 2));
        assert_eq!(l.reserve(t(0)), t(0));
        l.penalize(t(30_000));
        assert_eq!(l.reserve(t(10)), t(30_000));
        // The burst is not refilled by the penalty.
        assert_eq!(l.reserve(t(10)), t(30_200));
    }

    #[test]
    fn long_run_rate_matches_config() {
        let l = RateLimiter::new("k", cfg(80.0, 10));
        let mut last = t(0);
        for _ in 0..8010 {
            last = l.reserve(t(0));
        }
        // 10 go at once, the other 8000 at 80/s: the last one at 100 s.
        assert_eq!(last, t(100_000));
    }

    #[test]
    fn registry_shares_buckets_by_key() {
        let r = Registry::default();
        let a = r.get_or_create("twilio:AC1:+1555", cfg(1.0, 1));
        let b = r.get_or_create("twilio:AC1:+1555", cfg(1.0, 1));
        let c = r.get_or_create("twilio:AC1:+1666", cfg(1.0, 1));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(a.reserve(t(0)), t(0));
        assert_eq!(b.reserve(t(0)), t(1000));
        assert_eq!(c.reserve(t(0)), t(0));
        assert_eq!(r.all().len(), 2);
    }

    #[test]
    fn validation_explains_bad_values() {
        assert!(cfg(0.0, 1).validate().unwrap_err().contains("above 0"));
        assert!(cfg(f64::NAN, 1).validate().is_err());
        assert!(cfg(1.0, 0).validate().unwrap_err().contains("burst"));
        assert!(cfg(80.0, 80).validate().is_ok());
    }
}
