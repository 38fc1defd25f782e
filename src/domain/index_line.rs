//! What the client's invoice index keeps of each invoice: its open balance, so that the
//! statement a message carries (the client's other open invoices) reads one index range
//! instead of every invoice record of the client.

use rust_decimal::Decimal;

use super::{Currency, Due, Invoice, InvoiceStatus};

/// The value of an invoice's entry in its client's invoice index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexLine {
    /// An entry written before the index kept lines (or by a migration that could not tell):
    /// the invoice itself must be read.
    Unknown,
    /// Not open, or nothing left to pay: statements leave it out.
    Settled,
    /// Open with something left to pay.
    Open(OpenLine),
}

/// An open invoice as a statement lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLine {
    /// Invoice number shown to the debtor.
    pub number: String,
    /// Its currency.
    pub currency: Currency,
    /// What is still owed on it (above zero).
    pub balance: Decimal,
    /// When it is (was) due.
    pub due_at: Due,
    /// Its own payment link, when it has one.
    pub payment_url: Option<String>,
}

impl IndexLine {
    /// The line of `invoice` as it is now: [`IndexLine::Open`] while it is open with a balance
    /// above zero, else [`IndexLine::Settled`].
    pub fn of(invoice: &Invoice) -> IndexLine {
        if invoice.status != InvoiceStatus::Open || invoice.balance <= Decimal::ZERO {
            return IndexLine::Settled;
        }
        IndexLine::Open(OpenLine {
            number: invoice.number.clone(),
            currency: invoice.currency,
            balance: invoice.balance,
            due_at: invoice.due_at,
            payment_url: invoice.payment_url.clone(),
        })
    }
}
