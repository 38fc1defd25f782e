//! Hourly tallies of the communication log: what the daily digest reports, counted as lines
//! are logged, so no time index of every line is kept.
//!
//! Each logged line that counts adds one to the counter of its kind for the UTC hour it
//! happened in. Counters are read-modify-written through the writer, so however many lines a
//! batch logs, each counter is written once per batch.

use jiff::Timestamp;

use crate::domain::{Attempt, AttemptOutcome};

/// What a log line counts as in the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Tally {
    /// A message accepted by a channel.
    Sent = 0,
    /// A channel attempt that failed for good.
    Failed = 1,
    /// An attempt scheduled for retry.
    Retried = 2,
    /// A reminder moved by the contact window or a pause.
    Deferred = 3,
    /// A step skipped (catch-up, no address).
    Skipped = 4,
    /// A reminder in doubt after a crash.
    Unknown = 5,
    /// A receipt saying a message was delivered (or read).
    Delivered = 6,
    /// A receipt saying a message could not be delivered.
    Undelivered = 7,
}

impl Tally {
    /// Every kind, in counter order.
    pub const ALL: [Tally; 8] = [
        Tally::Sent,
        Tally::Failed,
        Tally::Retried,
        Tally::Deferred,
        Tally::Skipped,
        Tally::Unknown,
        Tally::Delivered,
        Tally::Undelivered,
    ];

    /// What `a` counts as, if anything (events, cancellations and interim receipts do not).
    pub fn of(a: &Attempt) -> Option<Tally> {
        Some(match a.outcome {
            AttemptOutcome::Sent => Tally::Sent,
            AttemptOutcome::Failed => Tally::Failed,
            AttemptOutcome::RetryScheduled => Tally::Retried,
            AttemptOutcome::Deferred => Tally::Deferred,
            AttemptOutcome::Skipped => Tally::Skipped,
            AttemptOutcome::Unknown => Tally::Unknown,
            AttemptOutcome::Receipt => match a.delivery {
                Some(s) if s.is_delivered() => Tally::Delivered,
                Some(s) if s.is_failure() => Tally::Undelivered,
                _ => return None,
            },
            AttemptOutcome::Cancelled | AttemptOutcome::Event | AttemptOutcome::Note => {
                return None;
            }
        })
    }

    /// The kind stored as `byte`.
    pub(crate) fn from_byte(byte: u8) -> Option<Tally> {
        Tally::ALL.get(usize::from(byte)).copied()
    }
}

/// Counts per kind over a period.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tallies([u64; 8]);

impl Tallies {
    /// How many lines of kind `t`.
    pub fn get(&self, t: Tally) -> u64 {
        self.0.get(t as usize).copied().unwrap_or(0)
    }

    /// Adds `n` lines of kind `t`.
    pub(crate) fn add(&mut self, t: Tally, n: u64) {
        if let Some(c) = self.0.get_mut(t as usize) {
            *c = c.saturating_add(n);
        }
    }
}

/// Microseconds in an hour.
const HOUR_MICROS: i64 = 3_600_000_000;

/// The start of the UTC hour holding `m` (microseconds since the epoch), rounded down.
pub(crate) fn hour_of_micros(m: i64) -> i64 {
    m.div_euclid(HOUR_MICROS) * HOUR_MICROS
}

/// The start of the UTC hour holding `t`, in microseconds since the epoch.
pub(crate) fn hour_of(t: Timestamp) -> i64 {
    hour_of_micros(super::keys::micros(t))
}
