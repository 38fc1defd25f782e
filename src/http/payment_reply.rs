//! What every payment endpoint (`/v1/invoices/{id}/payments`, `/webhooks/payments`) does after
//! recording a payment: the JSON answer and waking the dispatcher. Shared here so the handlers
//! do not import each other.

use serde_json::{Value, json};

use crate::service::PaymentOutcome;

/// The JSON answer to a recorded payment.
pub(crate) fn payment_json(outcome: &PaymentOutcome) -> Value {
    match outcome {
        PaymentOutcome::Applied { balance, closed } => json!({
            "result": "applied",
            "balance": balance.to_string(),
            "status": if *closed { "paid" } else { "open" },
        }),
        PaymentOutcome::Duplicate => json!({ "result": "duplicate" }),
    }
}

/// Wakes the dispatcher after a payment was applied: one that left the invoice open may have
/// planned an earlier reminder (a promise or plan instalment paid, a re-anchored cadence); one
/// that closed it may have queued the policy's thank-you, due at once.
pub(crate) fn wake_if_open(wake: &crate::dispatch::Wake, outcome: &PaymentOutcome) {
    if matches!(outcome, PaymentOutcome::Applied { .. }) {
        wake.notify_one();
    }
}
