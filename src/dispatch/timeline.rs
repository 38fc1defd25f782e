//! Timeline lines written while dispatching (shared by the walk in `process.rs`, the channel
//! attempts in `attempt.rs` and crash recovery), and the count of send tasks that panicked.

use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;

use crate::domain::{Attempt, AttemptOutcome, Reminder};

/// A timeline line about reminder `r` at `now`.
pub(super) fn line(
    r: &Reminder,
    now: Timestamp,
    outcome: AttemptOutcome,
    detail: impl Into<String>,
) -> Attempt {
    Attempt {
        at: now,
        invoice_id: r.invoice_id.clone(),
        reminder_id: Some(r.id),
        step: Some(r.step_name.clone()),
        channel: None,
        recipient: None,
        outcome,
        provider_message_id: None,
        delivery: None,
        detail: Some(detail.into()),
    }
}

/// Panics caught in send tasks since the process started.
static SEND_TASK_PANICS: AtomicU64 = AtomicU64::new(0);

/// How many send tasks (a channel's send, or the processing of a reminder around it) panicked
/// since the process started. Each was caught and recorded as a failure on its invoice's
/// timeline; exposed as `plazo_send_task_panics_total` on `GET /metrics`.
pub fn send_task_panics() -> u64 {
    SEND_TASK_PANICS.load(Ordering::Relaxed)
}

/// Counts one caught panic.
pub(super) fn count_panic() {
    SEND_TASK_PANICS.fetch_add(1, Ordering::Relaxed);
}

/// The text of a caught panic payload.
pub(super) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    crate::channels::email::panic_text(payload)
}
