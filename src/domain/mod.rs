//! Domain types shared by every layer: identifiers, money, clients, invoices, reminders and the
//! communication log. Plain data with validation at construction; no I/O.

mod ids;
mod money;
mod records;

pub use ids::{ClientId, IdError, InvoiceId, ReminderId};
pub use money::{Currency, Money, MoneyError};
pub use records::{
    Attempt, AttemptOutcome, Client, DeliveryState, Due, Invoice, InvoiceStatus, Pause, Payment,
    Reminder, ReminderState,
};
