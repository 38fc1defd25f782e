//! What the store keeps under an invoice's key: the invoice, the reminders of its chase and
//! the line its creation logged, in one record, so planning or sending a step rewrites one
//! key instead of three.

use serde::{Deserialize, Serialize};

use super::invoice::StoredInvoiceV2;
use super::prim::BadField;
use super::{StoredAttempt, StoredInvoice, StoredReminder};
use crate::domain::{Attempt, Invoice, Reminder, ReminderId, ReminderState};

/// An invoice with the reminders of its chase.
///
/// `reminders` holds every reminder of the invoice that was ever planned (at most one per id):
/// the one waiting in the due index, and those already handled (sent, failed, checked, in
/// doubt), which planning consults so that no step is planned twice. A reminder cancelled
/// before any send attempt is dropped (planning treats a cancelled reminder as never planned,
/// and re-planning on every due-date change must not grow the record without bound); one
/// cancelled after an attempt is kept. While a reminder is claimed for sending, the claimed
/// copy lives in the in-flight set, not here.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InvoiceRecord {
    /// The invoice.
    pub(crate) invoice: Invoice,
    /// Its reminders, in the order first planned.
    pub(crate) reminders: Vec<Reminder>,
    /// The "invoice created" line of its timeline (kept here, so creating an invoice writes
    /// no log key).
    pub(crate) opening: Option<Attempt>,
}

impl InvoiceRecord {
    /// A record holding `invoice` alone.
    pub(crate) fn new(invoice: Invoice) -> Self {
        InvoiceRecord {
            invoice,
            reminders: Vec::new(),
            opening: None,
        }
    }

    /// The reminder `id`, if kept.
    pub(crate) fn reminder(&self, id: &ReminderId) -> Option<&Reminder> {
        self.reminders.iter().find(|r| r.id == *id)
    }

    /// Keeps `r` (replacing the copy with its id), or drops it when it was cancelled before
    /// any send attempt.
    pub(crate) fn keep(&mut self, r: &Reminder) {
        let at = self.reminders.iter().position(|k| k.id == r.id);
        let drop = r.state == ReminderState::Cancelled && r.attempts == 0 && r.awaiting.is_none();
        match (at, drop) {
            (Some(i), true) => {
                self.reminders.remove(i);
            }
            (Some(i), false) => {
                if let Some(slot) = self.reminders.get_mut(i) {
                    *slot = r.clone();
                }
            }
            (None, true) => {}
            (None, false) => self.reminders.push(r.clone()),
        }
    }
}

/// [`InvoiceRecord`] on disk, layout version 1: the invoice, its reminders and its opening
/// line, in that order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredInvoiceRecord {
    invoice: StoredInvoice,
    reminders: Vec<StoredReminder>,
    opening: Option<StoredAttempt>,
}

impl From<&InvoiceRecord> for StoredInvoiceRecord {
    fn from(r: &InvoiceRecord) -> Self {
        StoredInvoiceRecord {
            invoice: StoredInvoice::from(&r.invoice),
            reminders: r.reminders.iter().map(StoredReminder::from).collect(),
            opening: r.opening.as_ref().map(StoredAttempt::from),
        }
    }
}

impl TryFrom<StoredInvoiceRecord> for InvoiceRecord {
    type Error = BadField;
    fn try_from(s: StoredInvoiceRecord) -> Result<Self, BadField> {
        Ok(InvoiceRecord {
            invoice: Invoice::try_from(s.invoice)?,
            reminders: s
                .reminders
                .into_iter()
                .map(Reminder::try_from)
                .collect::<Result<_, _>>()?,
            opening: s.opening.map(Attempt::try_from).transpose()?,
        })
    }
}

/// [`InvoiceRecord`] on disk, layout version 2: as version 1, with the invoice in its version-2
/// layout ([`StoredInvoiceV2`]: the segment and cadence it follows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredInvoiceRecordV2 {
    invoice: StoredInvoiceV2,
    reminders: Vec<StoredReminder>,
    opening: Option<StoredAttempt>,
}

impl From<&InvoiceRecord> for StoredInvoiceRecordV2 {
    fn from(r: &InvoiceRecord) -> Self {
        StoredInvoiceRecordV2 {
            invoice: StoredInvoiceV2::from(&r.invoice),
            reminders: r.reminders.iter().map(StoredReminder::from).collect(),
            opening: r.opening.as_ref().map(StoredAttempt::from),
        }
    }
}

impl From<StoredInvoiceRecord> for StoredInvoiceRecordV2 {
    fn from(s: StoredInvoiceRecord) -> Self {
        StoredInvoiceRecordV2 {
            invoice: s.invoice.into(),
            reminders: s.reminders,
            opening: s.opening,
        }
    }
}

impl TryFrom<StoredInvoiceRecordV2> for InvoiceRecord {
    type Error = BadField;
    fn try_from(s: StoredInvoiceRecordV2) -> Result<Self, BadField> {
        Ok(InvoiceRecord {
            invoice: Invoice::try_from(s.invoice)?,
            reminders: s
                .reminders
                .into_iter()
                .map(Reminder::try_from)
                .collect::<Result<_, _>>()?,
            opening: s.opening.map(Attempt::try_from).transpose()?,
        })
    }
}
