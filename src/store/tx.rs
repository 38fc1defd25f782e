//! Commands: [`Tx`], the handle a command's closure reads and writes through, its error types
//! and [`abort`]. `Tx` forwards every operation to the backend's [`TxOps`], so service code is
//! written once for every backend.

use std::cell::Cell;
use std::sync::Arc;

use super::event_routing::EventRouting;
pub use super::fail::TxFail;
use super::ops::TxOps;
use crate::domain::{
    Attempt, Client, ClientId, Contact, ContactEvent, EventId, EventState, InboxEntry, Invoice,
    InvoiceId, OutboundEvent, Reminder, ReminderId, SentMessage, Task, TaskId,
};
use jiff::Timestamp;

/// What a transaction closure returns on failure.
///
/// Return `TxError::Abort(e)` (or [`abort`]`(e)`) to roll back and hand your domain error `e` to
/// the caller of [`Store::transaction`](super::Store::transaction). `Conflict` wraps the store's
/// own failures ([`TxFail`]); it is produced by `?` on a [`Tx`] method, never built by hand.
#[derive(Debug)]
pub enum TxError<E> {
    /// Roll back and return `Ok(Err(e))` from `Store::transaction`.
    Abort(E),
    /// A store-side failure (storage error, corrupt record), returned as a
    /// [`StoreError`](super::StoreError) from `Store::transaction`.
    Conflict(TxFail),
}

impl<E> From<TxFail> for TxError<E> {
    fn from(f: TxFail) -> Self {
        TxError::Conflict(f)
    }
}

/// Rolls back the transaction and returns `e` to the caller: `return abort(MyError::Paid);`.
pub fn abort<T, E>(e: E) -> Result<T, TxError<E>> {
    Err(TxError::Abort(e))
}

/// One command over all of the store's records; see
/// [`Store::transaction`](super::Store::transaction) and [`Store::write`](super::Store::write).
///
/// Reads see the command's own writes and those of the commands applied before it. Nothing is
/// written unless the closure returns `Ok`. The closure runs exactly once.
pub struct Tx<'a> {
    ops: &'a (dyn TxOps + 'a),
    /// The store's events routing, when its outbox is on.
    events: Option<Arc<EventRouting>>,
    /// Whether the command wrote an event due at once (the store then wakes the worker).
    wrote_events: Cell<bool>,
}

impl<'a> Tx<'a> {
    /// A command reading and writing through a backend's `ops`.
    pub(crate) fn new(ops: &'a (dyn TxOps + 'a)) -> Self {
        Tx {
            ops,
            events: None,
            wrote_events: Cell::new(false),
        }
    }

    /// Sets what the command's [`Tx::events`] answers (the store does, before running it).
    pub(crate) fn set_events(&mut self, routing: Option<Arc<EventRouting>>) {
        self.events = routing;
    }

    /// Whether the command wrote an event due at once.
    pub(crate) fn wrote_events(&self) -> bool {
        self.wrote_events.get()
    }
}

impl Tx<'_> {
    /// The client `id`, if stored.
    pub fn client(&self, id: &ClientId) -> Result<Option<Client>, TxFail> {
        self.ops.client(id)
    }

    /// Writes a client (insert or replace).
    pub fn put_client(&self, c: &Client) -> Result<(), TxFail> {
        self.ops.put_client(c)
    }

    /// The invoice `id`, if stored.
    pub fn invoice(&self, id: &InvoiceId) -> Result<Option<Invoice>, TxFail> {
        self.ops.invoice(id)
    }

    /// Writes an invoice (insert or replace); the reminders kept with it are left as they are.
    /// The store keeps the client's invoice index ([`Tx::invoice_ids_of_client`]) itself: a new
    /// invoice joins it, one written under another client moves.
    pub fn put_invoice(&self, i: &Invoice) -> Result<(), TxFail> {
        self.ops.put_invoice(i)
    }

    /// Writes a new invoice with `opening`, the line its creation adds to its timeline; the line
    /// heads [`Store::timeline`](super::Store::timeline). The invoice joins its client's invoice
    /// index ([`Tx::invoice_ids_of_client`]).
    pub fn create_invoice(&self, i: &Invoice, opening: &Attempt) -> Result<(), TxFail> {
        self.ops.create_invoice(i, opening)
    }

    /// The reminder `id` of `invoice`, if stored: the claimed copy while it is in flight, else
    /// the copy kept with the invoice. A reminder cancelled before any send attempt is not kept.
    pub fn reminder(
        &self,
        invoice: &InvoiceId,
        id: &ReminderId,
    ) -> Result<Option<Reminder>, TxFail> {
        self.ops.reminder(invoice, id)
    }

    /// Writes a reminder only; the due index is not touched. While the reminder is in flight,
    /// its claimed copy is updated; else the copy kept with its invoice.
    pub fn put_reminder(&self, r: &Reminder) -> Result<(), TxFail> {
        self.ops.put_reminder(r)
    }

    /// Writes a reminder and makes it due at `r.fire_at` (microsecond precision).
    ///
    /// When moving a scheduled reminder to a new time, call [`Tx::unschedule`] with the old
    /// record first; an entry left at the old time is treated as stale by
    /// [`Store::claim_due`](super::Store::claim_due) and dropped.
    pub fn schedule(&self, r: &Reminder) -> Result<(), TxFail> {
        self.ops.schedule(r)
    }

    /// Removes the due entry of `r` at `r.fire_at`; the reminder record is left as it is.
    pub fn unschedule(&self, r: &Reminder) -> Result<(), TxFail> {
        self.ops.unschedule(r)
    }

    /// Writes a reminder that is done with (sent, failed, rescheduled...) and removes it from the
    /// in-flight set.
    pub fn finish(&self, r: &Reminder) -> Result<(), TxFail> {
        self.ops.finish(r)
    }

    /// Appends `a` to its invoice's timeline and counts it in its hour's tally (see
    /// [`Store::tallies`](super::Store::tallies)).
    pub fn log(&self, a: &Attempt) -> Result<(), TxFail> {
        self.ops.log(a)
    }

    /// Whether webhook delivery `id` was already processed (and not yet pruned).
    pub fn webhook_seen(&self, id: &str) -> Result<bool, TxFail> {
        self.ops.webhook_seen(id)
    }

    /// Records that webhook delivery `id` was processed at `at`.
    pub fn mark_webhook(&self, id: &str, at: Timestamp) -> Result<(), TxFail> {
        self.ops.mark_webhook(id, at)
    }

    /// What is known about `address` (normalised with [`Contact::normalize`]), if anything.
    pub fn contact(&self, address: &str) -> Result<Option<Contact>, TxFail> {
        self.ops.contact(address)
    }

    /// Writes a contact record (insert or replace), under its normalised address.
    pub fn put_contact(&self, c: &Contact) -> Result<(), TxFail> {
        self.ops.put_contact(c)
    }

    /// The message `provider_message_id` sent through `provider`, if recorded.
    pub fn sent_message(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SentMessage>, TxFail> {
        self.ops.sent_message(provider, provider_message_id)
    }

    /// Writes a sent-message record (insert or replace).
    pub fn put_sent_message(&self, m: &SentMessage) -> Result<(), TxFail> {
        self.ops.put_sent_message(m)
    }

    /// Appends `e` to its client's own timeline.
    pub fn log_client(&self, e: &ContactEvent) -> Result<(), TxFail> {
        self.ops.log_client(e)
    }

    /// The received payment event `key`, if any.
    pub fn inbox_entry(&self, key: &str) -> Result<Option<InboxEntry>, TxFail> {
        self.ops.inbox_entry(key)
    }

    /// Writes a received payment event; it stays in the processing queue (due at
    /// `next_attempt_at`) until its state is final.
    pub fn put_inbox_entry(&self, e: &InboxEntry) -> Result<(), TxFail> {
        self.ops.put_inbox_entry(e)
    }

    /// The invoice whose number is `number`, if one is indexed.
    pub fn invoice_by_number(&self, number: &str) -> Result<Option<InvoiceId>, TxFail> {
        self.ops.invoice_by_number(number)
    }

    /// Indexes `number` → `id` (a later invoice with the same number takes it over).
    pub fn index_number(&self, number: &str, id: &InvoiceId) -> Result<(), TxFail> {
        self.ops.index_number(number, id)
    }

    /// Removes the entry for `number` if it points at `id`.
    pub fn unindex_number(&self, number: &str, id: &InvoiceId) -> Result<(), TxFail> {
        self.ops.unindex_number(number, id)
    }

    /// Ids of the invoices of `client`, open or not, in invoice id (byte) order, including
    /// those written earlier in this command and by the commands applied before it.
    ///
    /// The store keeps this index itself ([`Tx::put_invoice`] and [`Tx::create_invoice`]):
    /// reading it costs one entry per invoice of the client, not a scan of every invoice.
    pub fn invoice_ids_of_client(&self, client: &ClientId) -> Result<Vec<InvoiceId>, TxFail> {
        self.ops.invoice_ids_of_client(client)
    }

    /// The store's events routing when its outbox is on ([`Store::enable_events`]); `None`:
    /// no event is recorded.
    ///
    /// [`Store::enable_events`]: super::Store::enable_events
    pub fn events(&self) -> Option<&EventRouting> {
        self.events.as_deref()
    }

    /// A new event id for an event created at `at`: unique in the store, and ordered after
    /// every id created before at the same instant.
    pub fn new_event_id(&self, at: Timestamp) -> Result<EventId, TxFail> {
        Ok(EventId::new(at, self.ops.sequence()?))
    }

    /// The outbound event `id`, if stored.
    pub fn event(&self, id: &EventId) -> Result<Option<OutboundEvent>, TxFail> {
        self.ops.event(id)
    }

    /// Writes an outbound event (insert or replace), in this command: the event is on disk
    /// exactly when the change it reports is. The store keeps the events index in step with its
    /// state (a pending event is due at `next_at`).
    pub fn put_event(&self, e: &OutboundEvent) -> Result<(), TxFail> {
        self.ops.put_event(e)?;
        if e.state == EventState::Pending && e.next_at <= e.updated_at {
            self.wrote_events.set(true);
        }
        Ok(())
    }
    /// A new task id for a task created at `at`: unique in the store, and ordered after every
    /// id created before at the same instant.
    pub fn new_task_id(&self, at: Timestamp) -> Result<TaskId, TxFail> {
        Ok(TaskId::new(at, self.ops.sequence()?))
    }

    /// The task `id`, if stored.
    pub fn task(&self, id: &TaskId) -> Result<Option<Task>, TxFail> {
        self.ops.task(id)
    }

    /// Writes a task (insert or replace); the store keeps the tasks index in step with its
    /// state.
    pub fn put_task(&self, t: &Task) -> Result<(), TxFail> {
        self.ops.put_task(t)
    }

    /// The live (open or claimed) tasks of `invoice`, oldest first.
    pub fn live_tasks_of_invoice(&self, invoice: &InvoiceId) -> Result<Vec<Task>, TxFail> {
        self.ops.live_tasks_of_invoice(invoice)
    }

    /// The live (open or claimed) tasks of `client`, oldest first.
    pub fn live_tasks_of_client(&self, client: &ClientId) -> Result<Vec<Task>, TxFail> {
        self.ops.live_tasks_of_client(client)
    }
}
