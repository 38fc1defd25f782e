//! Payment-provider events as received: persisted before they are acknowledged, then applied
//! (or kept and reported when they cannot be).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::InvoiceId;
use crate::payments::ProviderEvent;

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    /// Acknowledged to the provider, waiting to be applied (or retried).
    Received,
    /// Applied to an invoice (or recorded as pending/ignored): done.
    Applied,
    /// No invoice matches its references: kept and reported (`GET /v1/payment-events`).
    Unmatched,
    /// Matched, but not applied: currency mismatch or another inconsistency for a person to
    /// look at.
    Flagged,
    /// Could not be processed (the provider's API refused the fetch for good): reported.
    Failed,
}

impl InboxState {
    /// True once nothing more will happen by itself.
    pub fn is_final(self) -> bool {
        !matches!(self, InboxState::Received)
    }
}

/// What was received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboxPayload {
    /// A self-contained event (Stripe), already verified and parsed.
    Event {
        /// The event.
        event: Box<ProviderEvent>,
    },
    /// A notification that only says "look at payment `data_id`" (Mercado Pago): the payment
    /// is fetched from the provider's API before anything is applied.
    Fetch {
        /// The provider (`mercadopago`).
        provider: String,
        /// The payment id to fetch.
        data_id: String,
        /// The notification's action (`payment.updated`), for the record.
        action: Option<String>,
    },
    /// Correctly signed but unreadable: kept and reported as failed (acknowledged, so the
    /// provider does not retry for days something that will never parse).
    Unreadable {
        /// The provider.
        provider: String,
        /// Why it could not be read.
        error: String,
    },
}

/// One received event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// `{provider}:{event id}`: an event is applied once per key.
    pub key: String,
    /// What was received.
    pub payload: InboxPayload,
    /// When it was received.
    pub received_at: Timestamp,
    /// Where it is.
    pub state: InboxState,
    /// Processing attempts so far.
    pub attempts: u32,
    /// When to try again (state `received`).
    pub next_attempt_at: Timestamp,
    /// The event once known (after a fetch), for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<ProviderEvent>,
    /// The invoice it was matched to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<InvoiceId>,
    /// What happened, in words (last error, why unmatched or flagged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it reached its state.
    pub updated_at: Timestamp,
}
