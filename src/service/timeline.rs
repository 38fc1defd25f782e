//! Small helpers every money and arrangement module shares: a line on an invoice's timeline
//! and the "invoice not found" error. Kept apart so `invoices` and `arrangements` do not import
//! each other (arrangements only needs these; invoices calls into arrangements).

use jiff::Timestamp;

use super::ServiceError;
use crate::domain::{Attempt, AttemptOutcome, Invoice, InvoiceId};

/// A line on the invoice's timeline about the invoice itself (not a message).
pub(crate) fn event(invoice: &Invoice, now: Timestamp, detail: String) -> Attempt {
    Attempt {
        at: now,
        invoice_id: invoice.id.clone(),
        reminder_id: None,
        step: None,
        channel: None,
        recipient: None,
        outcome: AttemptOutcome::Event,
        provider_message_id: None,
        delivery: None,
        detail: Some(detail),
    }
}

/// The 404 for an invoice id that does not exist.
pub(crate) fn not_found(id: &InvoiceId) -> ServiceError {
    ServiceError::NotFound {
        what: "invoice",
        id: id.to_string(),
        hint: "; create it with PUT /v1/invoices/{id}",
    }
}
