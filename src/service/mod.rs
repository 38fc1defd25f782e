//! What the API and the webhooks do to the store: validate input, then change clients,
//! invoices, payments and the plan in one transaction each. Transport-agnostic: the HTTP layer
//! only maps [`ServiceError`] to status codes.
//!
//! - `clients`, `invoices`, `payments`, `provider_payments`: the records and the money.
//! - `arrangements`: promises to pay and payment plans (make, cancel, allocate money, deadline
//!   checks that break them).
//! - `planning`: the one pending reminder of each invoice, from its agenda.
//! - `thank_you`: the thank-you queued when an invoice is paid in full (its own reminder, sent
//!   by the dispatcher), cancelled when a refund reopens the invoice first.
//! - `contacts`, `inbound`, `receipts`: addresses, inbound messages, delivery receipts.
//! - `facts`, `segments`, `resegment`, `aging`: client facts kept with every change, moves
//!   between segments, and the passes over every client (the daily re-evaluation of segment
//!   rules and write-off by age, the one-time facts backfill).
//! - [`tasks`]: tasks for people (calls to make, replies to review): opened by steps,
//!   `on_exhausted` and inbound replies, claimed and closed with an outcome that acts on the
//!   invoice in the same command.
//! - [`portfolio`]: invoices, clients and planned reminders listed with filters, in pages.
//! - [`reports`]: the portfolio KPIs (aging, DSO, CEI, days to pay, promises kept,
//!   recoveries, contacts by channel) and which reminder works, from one walk over the store.
//! - [`events`]: the events out (`invoice.paid`, `promise.broken`...) each change records in
//!   the store's outbox, in the same command as the change.

mod aging;
mod arrangements;
mod clients;
mod contacts;
mod escalate_tx;
mod escalation;
pub mod events;
mod facts;
mod inbound;
mod invoices;
mod notes;
mod patch;
mod payments;
mod pending;
mod planning;
pub mod portfolio;
mod provider_payments;
mod receipts;
pub mod reports;
mod resegment;
mod segment_sync;
mod segments;
mod task_ops;
pub mod tasks;
mod thank_you;
mod timeline;

use std::sync::{Arc, RwLock};

pub use arrangements::{
    Arranged, DeadlineOutcome, InstalmentInput, PlanInput, PromiseInput, cancel_arrangement,
    deadline_reached, make_plan, make_promise,
};
pub use clients::{ClientInput, draft_client, normalize_phone, upsert_client, upsert_client_in};
pub use contacts::{
    ContactChange, MAX_EMAIL_LEN, apply_contact_change, change_contact, contact_address,
    sync_client_addresses,
};
pub use escalation::{
    Escalated, EscalationInput, EscalationRequest, MAX_ESCALATION_REASON_CHARS, escalate_invoice,
    run_step_action,
};
pub use facts::{
    FACTS_BACKFILL_MARKER, RebuildReport, backfill_facts_once, client_facts, rebuild_facts,
    rebuild_facts_until,
};
pub use inbound::{InboundInput, InboundOutcome, record_inbound};
pub use invoices::{
    CheckedInvoice, InvoiceInput, Upserted, check_invoice, draft_invoice, pause_invoice,
    resume_invoice, upsert_checked_invoice, upsert_invoice, upsert_invoice_async,
};
pub use notes::{
    MAX_NOTE_AUTHOR_CHARS, MAX_NOTE_TEXT_CHARS, NoteInput, add_client_note, add_invoice_note,
};
pub use patch::{client_body, invoice_body, merge_patch, patch_client, patch_invoice};
pub use payments::{PaymentInput, PaymentOutcome, record_payment};
pub use planning::{DEADLINE_STEP, advance_past, cancel_pending, replan};
pub use provider_payments::{
    ApplyOutcome, Enqueued, QueuedOutcome, apply_event, apply_queued, enqueue, enqueue_async,
    processing_failed, retry_delay as event_retry_delay, retry_entry,
};
pub use receipts::{DeliveryReport, ReceiptOutcome, apply_receipt, failure_change};
pub use resegment::{CLIENT_PAGE, ResegmentReport, resegment_all, resegment_all_until};
pub use tasks::{
    ClaimInput, Outcome, OutcomeInput, TaskPage, TaskQuery, claim_task, get_task, list_tasks,
    parse_task_id, task_outcome,
};

use crate::policy::LoadedPolicy;
use crate::store::StoreError;

/// The policy in force; swapped atomically on reload.
#[derive(Clone)]
pub struct PolicyHandle(Arc<RwLock<Arc<LoadedPolicy>>>);

impl PolicyHandle {
    /// Wraps a loaded policy.
    pub fn new(p: LoadedPolicy) -> Self {
        PolicyHandle(Arc::new(RwLock::new(Arc::new(p))))
    }
    /// Wraps a loaded policy already shared.
    pub fn from_arc(p: Arc<LoadedPolicy>) -> Self {
        PolicyHandle(Arc::new(RwLock::new(p)))
    }
    /// The policy in force now.
    pub fn current(&self) -> Arc<LoadedPolicy> {
        match self.0.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
    /// Replaces the policy in force.
    pub fn replace(&self, p: LoadedPolicy) {
        let new = Arc::new(p);
        match self.0.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// Why a request was refused. Each variant maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The thing named does not exist (404).
    #[error("{what} {id:?} not found{hint}")]
    NotFound {
        /// Kind of thing.
        what: &'static str,
        /// Its id.
        id: String,
        /// How to fix, starting with "; ".
        hint: &'static str,
    },
    /// The input is well-formed but not acceptable (422).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The store failed (500).
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
}

impl ServiceError {
    /// An [`ServiceError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Flattens a transaction result whose abort type is [`ServiceError`].
fn flatten<T>(r: Result<Result<T, ServiceError>, StoreError>) -> Result<T, ServiceError> {
    r?
}
