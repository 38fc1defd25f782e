//! The timeline record: one attempt, skip or event on an invoice.

use serde::{Deserialize, Serialize};

use super::prim::{BadField, StoredTime, invoice_id};
use crate::domain::{Attempt, AttemptOutcome, DeliveryState, ReminderId};

/// [`Attempt`] on disk, layout version 1: one byte of version, then these fields in this
/// order (postcard, no field names). Separate from the API's JSON shape so either can change
/// without the other; a new field means a new version byte and a conversion from this one (see
/// the module docs). Never reorder or remove fields, nor variants of the enums it uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredAttempt {
    at: StoredTime,
    invoice_id: String,
    /// The reminder's uuid.
    reminder_id: Option<[u8; 16]>,
    step: Option<String>,
    channel: Option<String>,
    recipient: Option<String>,
    outcome: StoredAttemptOutcome,
    provider_message_id: Option<String>,
    delivery: Option<StoredDeliveryState>,
    detail: Option<String>,
}

/// [`AttemptOutcome`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredAttemptOutcome {
    Sent,
    RetryScheduled,
    Failed,
    Skipped,
    Cancelled,
    Deferred,
    Unknown,
    Event,
    Receipt,
    Note,
}

/// [`DeliveryState`] on disk (variant index); also used by the sent-message record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredDeliveryState {
    Accepted,
    Sent,
    Delivered,
    Read,
    Undelivered,
    Failed,
}

impl From<AttemptOutcome> for StoredAttemptOutcome {
    fn from(o: AttemptOutcome) -> Self {
        match o {
            AttemptOutcome::Sent => StoredAttemptOutcome::Sent,
            AttemptOutcome::RetryScheduled => StoredAttemptOutcome::RetryScheduled,
            AttemptOutcome::Failed => StoredAttemptOutcome::Failed,
            AttemptOutcome::Skipped => StoredAttemptOutcome::Skipped,
            AttemptOutcome::Cancelled => StoredAttemptOutcome::Cancelled,
            AttemptOutcome::Deferred => StoredAttemptOutcome::Deferred,
            AttemptOutcome::Unknown => StoredAttemptOutcome::Unknown,
            AttemptOutcome::Event => StoredAttemptOutcome::Event,
            AttemptOutcome::Receipt => StoredAttemptOutcome::Receipt,
            AttemptOutcome::Note => StoredAttemptOutcome::Note,
        }
    }
}

impl From<StoredAttemptOutcome> for AttemptOutcome {
    fn from(o: StoredAttemptOutcome) -> Self {
        match o {
            StoredAttemptOutcome::Sent => AttemptOutcome::Sent,
            StoredAttemptOutcome::RetryScheduled => AttemptOutcome::RetryScheduled,
            StoredAttemptOutcome::Failed => AttemptOutcome::Failed,
            StoredAttemptOutcome::Skipped => AttemptOutcome::Skipped,
            StoredAttemptOutcome::Cancelled => AttemptOutcome::Cancelled,
            StoredAttemptOutcome::Deferred => AttemptOutcome::Deferred,
            StoredAttemptOutcome::Unknown => AttemptOutcome::Unknown,
            StoredAttemptOutcome::Event => AttemptOutcome::Event,
            StoredAttemptOutcome::Receipt => AttemptOutcome::Receipt,
            StoredAttemptOutcome::Note => AttemptOutcome::Note,
        }
    }
}

impl From<DeliveryState> for StoredDeliveryState {
    fn from(s: DeliveryState) -> Self {
        match s {
            DeliveryState::Accepted => StoredDeliveryState::Accepted,
            DeliveryState::Sent => StoredDeliveryState::Sent,
            DeliveryState::Delivered => StoredDeliveryState::Delivered,
            DeliveryState::Read => StoredDeliveryState::Read,
            DeliveryState::Undelivered => StoredDeliveryState::Undelivered,
            DeliveryState::Failed => StoredDeliveryState::Failed,
        }
    }
}

impl From<StoredDeliveryState> for DeliveryState {
    fn from(s: StoredDeliveryState) -> Self {
        match s {
            StoredDeliveryState::Accepted => DeliveryState::Accepted,
            StoredDeliveryState::Sent => DeliveryState::Sent,
            StoredDeliveryState::Delivered => DeliveryState::Delivered,
            StoredDeliveryState::Read => DeliveryState::Read,
            StoredDeliveryState::Undelivered => DeliveryState::Undelivered,
            StoredDeliveryState::Failed => DeliveryState::Failed,
        }
    }
}

impl From<&Attempt> for StoredAttempt {
    fn from(a: &Attempt) -> Self {
        StoredAttempt {
            at: a.at.into(),
            invoice_id: a.invoice_id.as_str().to_owned(),
            reminder_id: a.reminder_id.map(ReminderId::to_bytes),
            step: a.step.clone(),
            channel: a.channel.clone(),
            recipient: a.recipient.clone(),
            outcome: a.outcome.into(),
            provider_message_id: a.provider_message_id.clone(),
            delivery: a.delivery.map(StoredDeliveryState::from),
            detail: a.detail.clone(),
        }
    }
}

impl TryFrom<StoredAttempt> for Attempt {
    type Error = BadField;
    fn try_from(s: StoredAttempt) -> Result<Self, BadField> {
        Ok(Attempt {
            at: s.at.get("at")?,
            invoice_id: invoice_id(s.invoice_id, "invoice_id")?,
            reminder_id: s.reminder_id.map(ReminderId::from_bytes),
            step: s.step,
            channel: s.channel,
            recipient: s.recipient,
            outcome: s.outcome.into(),
            provider_message_id: s.provider_message_id,
            delivery: s.delivery.map(DeliveryState::from),
            detail: s.detail,
        })
    }
}
