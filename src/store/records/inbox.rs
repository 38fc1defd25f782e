//! The payments inbox record, with the provider event it carries.

use serde::{Deserialize, Serialize};

use super::prim::{BadField, StoredDecimal, StoredTime, invoice_id, opt_decimal, opt_time};
use crate::domain::{InboxEntry, InboxPayload, InboxState};
use crate::payments::{InvoiceRefs, ProviderEvent, ProviderEventKind};

/// [`InboxEntry`] on disk, layout version 1: one byte of version, then these fields in this
/// order (postcard, no field names). Separate from the API's JSON shape (whose payload is an
/// internally tagged enum, which postcard cannot read back) so either can change without the
/// other; a new field means a new version byte and a conversion from this one (see the module
/// docs). Never reorder or remove fields, nor variants of the enums it uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredInboxEntry {
    key: String,
    payload: StoredInboxPayload,
    received_at: StoredTime,
    state: StoredInboxState,
    attempts: u32,
    next_attempt_at: StoredTime,
    event: Option<StoredProviderEvent>,
    invoice_id: Option<String>,
    detail: Option<String>,
    updated_at: StoredTime,
}

/// [`InboxPayload`] on disk: an externally tagged enum (variant index, then the fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum StoredInboxPayload {
    Event {
        /// Boxed like the domain's; the layout is the same as unboxed.
        event: Box<StoredProviderEvent>,
    },
    Fetch {
        provider: String,
        data_id: String,
        action: Option<String>,
    },
    Unreadable {
        provider: String,
        error: String,
    },
}

/// [`InboxState`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredInboxState {
    Received,
    Applied,
    Unmatched,
    Flagged,
    Failed,
}

/// [`ProviderEvent`] on disk (inside [`StoredInboxEntry`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredProviderEvent {
    provider: String,
    event_id: String,
    event_type: String,
    kind: StoredProviderEventKind,
    object_id: String,
    amount: Option<StoredDecimal>,
    currency: Option<String>,
    refs: StoredInvoiceRefs,
    occurred_at: Option<StoredTime>,
    same_payment: Vec<String>,
    note: Option<String>,
}

/// [`ProviderEventKind`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredProviderEventKind {
    Paid,
    Refunded,
    Pending,
    Ignored,
}

/// [`InvoiceRefs`] on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredInvoiceRefs {
    metadata: Option<String>,
    client_reference_id: Option<String>,
    external_reference: Option<String>,
    number: Option<String>,
}

impl From<InboxState> for StoredInboxState {
    fn from(s: InboxState) -> Self {
        match s {
            InboxState::Received => StoredInboxState::Received,
            InboxState::Applied => StoredInboxState::Applied,
            InboxState::Unmatched => StoredInboxState::Unmatched,
            InboxState::Flagged => StoredInboxState::Flagged,
            InboxState::Failed => StoredInboxState::Failed,
        }
    }
}

impl From<StoredInboxState> for InboxState {
    fn from(s: StoredInboxState) -> Self {
        match s {
            StoredInboxState::Received => InboxState::Received,
            StoredInboxState::Applied => InboxState::Applied,
            StoredInboxState::Unmatched => InboxState::Unmatched,
            StoredInboxState::Flagged => InboxState::Flagged,
            StoredInboxState::Failed => InboxState::Failed,
        }
    }
}

impl From<ProviderEventKind> for StoredProviderEventKind {
    fn from(k: ProviderEventKind) -> Self {
        match k {
            ProviderEventKind::Paid => StoredProviderEventKind::Paid,
            ProviderEventKind::Refunded => StoredProviderEventKind::Refunded,
            ProviderEventKind::Pending => StoredProviderEventKind::Pending,
            ProviderEventKind::Ignored => StoredProviderEventKind::Ignored,
        }
    }
}

impl From<StoredProviderEventKind> for ProviderEventKind {
    fn from(k: StoredProviderEventKind) -> Self {
        match k {
            StoredProviderEventKind::Paid => ProviderEventKind::Paid,
            StoredProviderEventKind::Refunded => ProviderEventKind::Refunded,
            StoredProviderEventKind::Pending => ProviderEventKind::Pending,
            StoredProviderEventKind::Ignored => ProviderEventKind::Ignored,
        }
    }
}

impl From<&InvoiceRefs> for StoredInvoiceRefs {
    fn from(r: &InvoiceRefs) -> Self {
        StoredInvoiceRefs {
            metadata: r.metadata.clone(),
            client_reference_id: r.client_reference_id.clone(),
            external_reference: r.external_reference.clone(),
            number: r.number.clone(),
        }
    }
}

impl From<StoredInvoiceRefs> for InvoiceRefs {
    fn from(r: StoredInvoiceRefs) -> Self {
        InvoiceRefs {
            metadata: r.metadata,
            client_reference_id: r.client_reference_id,
            external_reference: r.external_reference,
            number: r.number,
        }
    }
}

impl From<&ProviderEvent> for StoredProviderEvent {
    fn from(e: &ProviderEvent) -> Self {
        StoredProviderEvent {
            provider: e.provider.clone(),
            event_id: e.event_id.clone(),
            event_type: e.event_type.clone(),
            kind: e.kind.into(),
            object_id: e.object_id.clone(),
            amount: e.amount.map(StoredDecimal::from),
            currency: e.currency.clone(),
            refs: (&e.refs).into(),
            occurred_at: e.occurred_at.map(StoredTime::from),
            same_payment: e.same_payment.clone(),
            note: e.note.clone(),
        }
    }
}

impl TryFrom<StoredProviderEvent> for ProviderEvent {
    type Error = BadField;
    fn try_from(s: StoredProviderEvent) -> Result<Self, BadField> {
        Ok(ProviderEvent {
            provider: s.provider,
            event_id: s.event_id,
            event_type: s.event_type,
            kind: s.kind.into(),
            object_id: s.object_id,
            amount: opt_decimal(s.amount, "event.amount")?,
            currency: s.currency,
            refs: s.refs.into(),
            occurred_at: opt_time(s.occurred_at, "event.occurred_at")?,
            same_payment: s.same_payment,
            note: s.note,
        })
    }
}

impl From<&InboxPayload> for StoredInboxPayload {
    fn from(p: &InboxPayload) -> Self {
        match p {
            InboxPayload::Event { event } => StoredInboxPayload::Event {
                event: Box::new(event.as_ref().into()),
            },
            InboxPayload::Fetch {
                provider,
                data_id,
                action,
            } => StoredInboxPayload::Fetch {
                provider: provider.clone(),
                data_id: data_id.clone(),
                action: action.clone(),
            },
            InboxPayload::Unreadable { provider, error } => StoredInboxPayload::Unreadable {
                provider: provider.clone(),
                error: error.clone(),
            },
        }
    }
}

impl TryFrom<StoredInboxPayload> for InboxPayload {
    type Error = BadField;
    fn try_from(s: StoredInboxPayload) -> Result<Self, BadField> {
        Ok(match s {
            StoredInboxPayload::Event { event } => InboxPayload::Event {
                event: Box::new((*event).try_into()?),
            },
            StoredInboxPayload::Fetch {
                provider,
                data_id,
                action,
            } => InboxPayload::Fetch {
                provider,
                data_id,
                action,
            },
            StoredInboxPayload::Unreadable { provider, error } => {
                InboxPayload::Unreadable { provider, error }
            }
        })
    }
}

impl From<&InboxEntry> for StoredInboxEntry {
    fn from(e: &InboxEntry) -> Self {
        StoredInboxEntry {
            key: e.key.clone(),
            payload: (&e.payload).into(),
            received_at: e.received_at.into(),
            state: e.state.into(),
            attempts: e.attempts,
            next_attempt_at: e.next_attempt_at.into(),
            event: e.event.as_ref().map(StoredProviderEvent::from),
            invoice_id: e.invoice_id.as_ref().map(|id| id.as_str().to_owned()),
            detail: e.detail.clone(),
            updated_at: e.updated_at.into(),
        }
    }
}

impl TryFrom<StoredInboxEntry> for InboxEntry {
    type Error = BadField;
    fn try_from(s: StoredInboxEntry) -> Result<Self, BadField> {
        Ok(InboxEntry {
            key: s.key,
            payload: s.payload.try_into()?,
            received_at: s.received_at.get("received_at")?,
            state: s.state.into(),
            attempts: s.attempts,
            next_attempt_at: s.next_attempt_at.get("next_attempt_at")?,
            event: s.event.map(ProviderEvent::try_from).transpose()?,
            invoice_id: s
                .invoice_id
                .map(|id| invoice_id(id, "invoice_id"))
                .transpose()?,
            detail: s.detail,
            updated_at: s.updated_at.get("updated_at")?,
        })
    }
}
