//! The invoice record, with the payments, pause and arrangements it embeds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::prim::{
    BadField, StoredCurrency, StoredDate, StoredDecimal, StoredDue, StoredTime, client_id,
    invoice_id, opt_time,
};
use crate::domain::{
    Arrangement, ArrangementKind, ArrangementState, Escalation, EscalationKind, Followed,
    Instalment, InstalmentState, Invoice, InvoiceStatus, Pause, Payment, ReminderId,
};

/// [`Invoice`] on disk, layout version 1: one byte of version, then these fields in this
/// order (postcard, no field names). Separate from the API's JSON shape so either can change
/// without the other; a new field means a new version byte and a conversion from this one (see
/// the module docs). Never reorder or remove fields, nor variants of the enums it uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredInvoice {
    id: String,
    client_id: String,
    number: String,
    currency: StoredCurrency,
    amount: StoredDecimal,
    balance: StoredDecimal,
    issued_at: Option<StoredDate>,
    due_at: StoredDue,
    payment_url: Option<String>,
    metadata: BTreeMap<String, String>,
    status: StoredInvoiceStatus,
    payments: Vec<StoredPayment>,
    pause: Option<StoredPause>,
    generation: u32,
    cursor: Option<u32>,
    /// The pending reminder's uuid.
    pending: Option<[u8; 16]>,
    arrangements: Vec<StoredArrangement>,
    created_at: StoredTime,
    updated_at: StoredTime,
    closed_at: Option<StoredTime>,
}

/// [`InvoiceStatus`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredInvoiceStatus {
    Open,
    Paid,
    HandedOff,
    WrittenOff,
    Void,
}

/// [`Payment`] on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredPayment {
    amount: StoredDecimal,
    paid_at: StoredTime,
    reference: String,
    source: String,
    same_as: Vec<String>,
}

/// [`Pause`] on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredPause {
    reason: String,
    until: Option<StoredTime>,
    since: StoredTime,
}

/// [`Arrangement`] on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredArrangement {
    id: u32,
    kind: StoredArrangementKind,
    state: StoredArrangementState,
    instalments: Vec<StoredInstalment>,
    channel: Option<String>,
    note: Option<String>,
    received: StoredDecimal,
    current: u32,
    cursor: Option<u32>,
    created_at: StoredTime,
    closed_at: Option<StoredTime>,
    outcome: Option<String>,
    broken_cursor: Option<u32>,
    broken_done: bool,
}

/// [`ArrangementKind`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredArrangementKind {
    Promise,
    Plan,
}

/// [`ArrangementState`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredArrangementState {
    Active,
    Kept,
    Broken,
    Cancelled,
}

/// [`Instalment`] on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredInstalment {
    due: StoredDue,
    amount: StoredDecimal,
    paid: StoredDecimal,
    state: StoredInstalmentState,
}

/// [`InstalmentState`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredInstalmentState {
    Pending,
    Paid,
    Missed,
}

impl From<InvoiceStatus> for StoredInvoiceStatus {
    fn from(s: InvoiceStatus) -> Self {
        match s {
            InvoiceStatus::Open => StoredInvoiceStatus::Open,
            InvoiceStatus::Paid => StoredInvoiceStatus::Paid,
            InvoiceStatus::HandedOff => StoredInvoiceStatus::HandedOff,
            InvoiceStatus::WrittenOff => StoredInvoiceStatus::WrittenOff,
            InvoiceStatus::Void => StoredInvoiceStatus::Void,
        }
    }
}

impl From<StoredInvoiceStatus> for InvoiceStatus {
    fn from(s: StoredInvoiceStatus) -> Self {
        match s {
            StoredInvoiceStatus::Open => InvoiceStatus::Open,
            StoredInvoiceStatus::Paid => InvoiceStatus::Paid,
            StoredInvoiceStatus::HandedOff => InvoiceStatus::HandedOff,
            StoredInvoiceStatus::WrittenOff => InvoiceStatus::WrittenOff,
            StoredInvoiceStatus::Void => InvoiceStatus::Void,
        }
    }
}

impl From<ArrangementKind> for StoredArrangementKind {
    fn from(k: ArrangementKind) -> Self {
        match k {
            ArrangementKind::Promise => StoredArrangementKind::Promise,
            ArrangementKind::Plan => StoredArrangementKind::Plan,
        }
    }
}

impl From<StoredArrangementKind> for ArrangementKind {
    fn from(k: StoredArrangementKind) -> Self {
        match k {
            StoredArrangementKind::Promise => ArrangementKind::Promise,
            StoredArrangementKind::Plan => ArrangementKind::Plan,
        }
    }
}

impl From<ArrangementState> for StoredArrangementState {
    fn from(s: ArrangementState) -> Self {
        match s {
            ArrangementState::Active => StoredArrangementState::Active,
            ArrangementState::Kept => StoredArrangementState::Kept,
            ArrangementState::Broken => StoredArrangementState::Broken,
            ArrangementState::Cancelled => StoredArrangementState::Cancelled,
        }
    }
}

impl From<StoredArrangementState> for ArrangementState {
    fn from(s: StoredArrangementState) -> Self {
        match s {
            StoredArrangementState::Active => ArrangementState::Active,
            StoredArrangementState::Kept => ArrangementState::Kept,
            StoredArrangementState::Broken => ArrangementState::Broken,
            StoredArrangementState::Cancelled => ArrangementState::Cancelled,
        }
    }
}

impl From<InstalmentState> for StoredInstalmentState {
    fn from(s: InstalmentState) -> Self {
        match s {
            InstalmentState::Pending => StoredInstalmentState::Pending,
            InstalmentState::Paid => StoredInstalmentState::Paid,
            InstalmentState::Missed => StoredInstalmentState::Missed,
        }
    }
}

impl From<StoredInstalmentState> for InstalmentState {
    fn from(s: StoredInstalmentState) -> Self {
        match s {
            StoredInstalmentState::Pending => InstalmentState::Pending,
            StoredInstalmentState::Paid => InstalmentState::Paid,
            StoredInstalmentState::Missed => InstalmentState::Missed,
        }
    }
}

impl From<&Payment> for StoredPayment {
    fn from(p: &Payment) -> Self {
        StoredPayment {
            amount: p.amount.into(),
            paid_at: p.paid_at.into(),
            reference: p.reference.clone(),
            source: p.source.clone(),
            same_as: p.same_as.clone(),
        }
    }
}

impl TryFrom<StoredPayment> for Payment {
    type Error = BadField;
    fn try_from(s: StoredPayment) -> Result<Self, BadField> {
        Ok(Payment {
            amount: s.amount.get("payments.amount")?,
            paid_at: s.paid_at.get("payments.paid_at")?,
            reference: s.reference,
            source: s.source,
            same_as: s.same_as,
        })
    }
}

impl From<&Pause> for StoredPause {
    fn from(p: &Pause) -> Self {
        StoredPause {
            reason: p.reason.clone(),
            until: p.until.map(StoredTime::from),
            since: p.since.into(),
        }
    }
}

impl TryFrom<StoredPause> for Pause {
    type Error = BadField;
    fn try_from(s: StoredPause) -> Result<Self, BadField> {
        Ok(Pause {
            reason: s.reason,
            until: opt_time(s.until, "pause.until")?,
            since: s.since.get("pause.since")?,
        })
    }
}

impl From<&Instalment> for StoredInstalment {
    fn from(i: &Instalment) -> Self {
        StoredInstalment {
            due: i.due.into(),
            amount: i.amount.into(),
            paid: i.paid.into(),
            state: i.state.into(),
        }
    }
}

impl TryFrom<StoredInstalment> for Instalment {
    type Error = BadField;
    fn try_from(s: StoredInstalment) -> Result<Self, BadField> {
        Ok(Instalment {
            due: s.due.get("arrangements.instalments.due")?,
            amount: s.amount.get("arrangements.instalments.amount")?,
            paid: s.paid.get("arrangements.instalments.paid")?,
            state: s.state.into(),
        })
    }
}

impl From<&Arrangement> for StoredArrangement {
    fn from(a: &Arrangement) -> Self {
        StoredArrangement {
            id: a.id,
            kind: a.kind.into(),
            state: a.state.into(),
            instalments: a.instalments.iter().map(StoredInstalment::from).collect(),
            channel: a.channel.clone(),
            note: a.note.clone(),
            received: a.received.into(),
            current: a.current,
            cursor: a.cursor,
            created_at: a.created_at.into(),
            closed_at: a.closed_at.map(StoredTime::from),
            outcome: a.outcome.clone(),
            broken_cursor: a.broken_cursor,
            broken_done: a.broken_done,
        }
    }
}

impl TryFrom<StoredArrangement> for Arrangement {
    type Error = BadField;
    fn try_from(s: StoredArrangement) -> Result<Self, BadField> {
        Ok(Arrangement {
            id: s.id,
            kind: s.kind.into(),
            state: s.state.into(),
            instalments: s
                .instalments
                .into_iter()
                .map(Instalment::try_from)
                .collect::<Result<_, _>>()?,
            channel: s.channel,
            note: s.note,
            received: s.received.get("arrangements.received")?,
            current: s.current,
            cursor: s.cursor,
            created_at: s.created_at.get("arrangements.created_at")?,
            closed_at: opt_time(s.closed_at, "arrangements.closed_at")?,
            outcome: s.outcome,
            broken_cursor: s.broken_cursor,
            broken_done: s.broken_done,
        })
    }
}

impl From<&Invoice> for StoredInvoice {
    fn from(i: &Invoice) -> Self {
        StoredInvoice {
            id: i.id.as_str().to_owned(),
            client_id: i.client_id.as_str().to_owned(),
            number: i.number.clone(),
            currency: i.currency.into(),
            amount: i.amount.into(),
            balance: i.balance.into(),
            issued_at: i.issued_at.map(StoredDate::from),
            due_at: i.due_at.into(),
            payment_url: i.payment_url.clone(),
            metadata: i.metadata.clone(),
            status: i.status.into(),
            payments: i.payments.iter().map(StoredPayment::from).collect(),
            pause: i.pause.as_ref().map(StoredPause::from),
            generation: i.generation,
            cursor: i.cursor,
            pending: i.pending.map(ReminderId::to_bytes),
            arrangements: i.arrangements.iter().map(StoredArrangement::from).collect(),
            created_at: i.created_at.into(),
            updated_at: i.updated_at.into(),
            closed_at: i.closed_at.map(StoredTime::from),
        }
    }
}

impl TryFrom<StoredInvoice> for Invoice {
    type Error = BadField;
    fn try_from(s: StoredInvoice) -> Result<Self, BadField> {
        Ok(Invoice {
            id: invoice_id(s.id, "id")?,
            client_id: client_id(s.client_id, "client_id")?,
            number: s.number,
            currency: s.currency.get("currency")?,
            amount: s.amount.get("amount")?,
            balance: s.balance.get("balance")?,
            issued_at: s.issued_at.map(|d| d.get("issued_at")).transpose()?,
            due_at: s.due_at.get("due_at")?,
            payment_url: s.payment_url,
            metadata: s.metadata,
            status: s.status.into(),
            payments: s
                .payments
                .into_iter()
                .map(Payment::try_from)
                .collect::<Result<_, _>>()?,
            pause: s.pause.map(Pause::try_from).transpose()?,
            generation: s.generation,
            cursor: s.cursor,
            pending: s.pending.map(ReminderId::from_bytes),
            arrangements: s
                .arrangements
                .into_iter()
                .map(Arrangement::try_from)
                .collect::<Result<_, _>>()?,
            created_at: s.created_at.get("created_at")?,
            updated_at: s.updated_at.get("updated_at")?,
            closed_at: opt_time(s.closed_at, "closed_at")?,
            followed: None,
            escalation: None,
            exhausted: None,
        })
    }
}

/// [`Invoice`] on disk, layout version 2: the version-1 fields ([`StoredInvoice`]), then the
/// segment and cadence the chase follows. Postcard lays a nested struct out field by field,
/// so a version-2 body is a version-1 body with the new field after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredInvoiceV2 {
    base: StoredInvoice,
    followed: Option<StoredFollowed>,
    escalation: Option<StoredEscalation>,
    exhausted: Option<u32>,
}

/// [`Escalation`] on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredEscalation {
    kind: StoredEscalationKind,
    partner: Option<String>,
    reason: Option<String>,
    at: StoredTime,
    balance: StoredDecimal,
    recovered: StoredDecimal,
}

/// [`EscalationKind`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredEscalationKind {
    HandedOff,
    WrittenOff,
    Voided,
}

impl From<&Escalation> for StoredEscalation {
    fn from(e: &Escalation) -> Self {
        StoredEscalation {
            kind: match e.kind {
                EscalationKind::HandedOff => StoredEscalationKind::HandedOff,
                EscalationKind::WrittenOff => StoredEscalationKind::WrittenOff,
                EscalationKind::Voided => StoredEscalationKind::Voided,
            },
            partner: e.partner.clone(),
            reason: e.reason.clone(),
            at: e.at.into(),
            balance: e.balance.into(),
            recovered: e.recovered.into(),
        }
    }
}

impl TryFrom<StoredEscalation> for Escalation {
    type Error = BadField;
    fn try_from(s: StoredEscalation) -> Result<Self, BadField> {
        Ok(Escalation {
            kind: match s.kind {
                StoredEscalationKind::HandedOff => EscalationKind::HandedOff,
                StoredEscalationKind::WrittenOff => EscalationKind::WrittenOff,
                StoredEscalationKind::Voided => EscalationKind::Voided,
            },
            partner: s.partner,
            reason: s.reason,
            at: s.at.get("escalation.at")?,
            balance: s.balance.get("escalation.balance")?,
            recovered: s.recovered.get("escalation.recovered")?,
        })
    }
}

/// [`Followed`] on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredFollowed {
    segment: String,
    cadence: String,
}

impl From<&Invoice> for StoredInvoiceV2 {
    fn from(i: &Invoice) -> Self {
        StoredInvoiceV2 {
            base: StoredInvoice::from(i),
            followed: i.followed.as_ref().map(|f| StoredFollowed {
                segment: f.segment.clone(),
                cadence: f.cadence.clone(),
            }),
            escalation: i.escalation.as_ref().map(StoredEscalation::from),
            exhausted: i.exhausted,
        }
    }
}

impl From<StoredInvoice> for StoredInvoiceV2 {
    /// A version-1 invoice: it followed no recorded segment.
    fn from(base: StoredInvoice) -> Self {
        StoredInvoiceV2 {
            base,
            followed: None,
            escalation: None,
            exhausted: None,
        }
    }
}

impl TryFrom<StoredInvoiceV2> for Invoice {
    type Error = BadField;
    fn try_from(s: StoredInvoiceV2) -> Result<Self, BadField> {
        let mut inv = Invoice::try_from(s.base)?;
        inv.followed = s.followed.map(|f| Followed {
            segment: f.segment,
            cadence: f.cadence,
        });
        inv.escalation = s.escalation.map(Escalation::try_from).transpose()?;
        inv.exhausted = s.exhausted;
        Ok(inv)
    }
}
