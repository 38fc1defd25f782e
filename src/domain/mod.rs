//! Domain types shared by every layer: identifiers, money, clients, invoices, reminders, the
//! communication log, promises and payment plans, the state of addresses (opt-outs,
//! receipts), outbound events, and tasks for people (calls, reviews). Plain data with
//! validation at construction; no I/O.

mod arrangement;
mod contact;
mod event;
mod facts;
mod ids;
mod inbox;
mod index_line;
mod money;
mod records;
mod task;
pub mod validate;
pub mod when;

pub use arrangement::{
    Allocation, Arrangement, ArrangementKind, ArrangementState, Instalment, InstalmentState,
};
pub use contact::{
    Contact, ContactEvent, ContactEventKind, OptOut, SentMessage, Unreachable, WHATSAPP_WINDOW,
};
pub use event::{Destination, EventId, EventIdError, EventState, OutboundEvent};
pub use facts::{
    BehaviourFacts, ClientFacts, DEFAULT_LAST_PAID, FactsLedger, FactsMark, PAID_HISTORY_CAP,
    PaidInvoice, PortfolioFacts, behaviour_of, days_late, paid_entry,
};
pub use ids::{ClientId, IdError, InvoiceId, ReminderId};
pub use inbox::{InboxEntry, InboxPayload, InboxState};
pub use index_line::{IndexLine, OpenLine};
pub use money::{Currency, MAX_INTEGER_DIGITS, Money, MoneyError};
pub use records::{
    Attempt, AttemptOutcome, AwaitingReceipt, BlockedTime, Client, Credit, DeliveryState, Due,
    Escalation, EscalationKind, Followed, Invoice, InvoiceStatus, Pause, Payment, Reminder,
    ReminderState, Track,
};
pub use task::{Task, TaskId, TaskIdError, TaskKind, TaskResult, TaskState};
