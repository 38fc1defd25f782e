//! The reads and writes of one command ([`TxOps`]), the half of the storage seam that
//! [`Tx`](super::Tx) forwards to. A leaf: it needs only the domain types and [`TxFail`], so
//! `tx`, `backend` and every backend's transaction type import it without importing each other.

use jiff::Timestamp;

use super::fail::TxFail;
use crate::domain::{
    Attempt, Client, ClientId, Contact, ContactEvent, EventId, InboxEntry, Invoice, InvoiceId,
    OutboundEvent, Reminder, ReminderId, SentMessage, Task, TaskId,
};

/// The reads and writes of one command. Reads see the command's own writes and those of the
/// commands applied before it.
pub trait TxOps {
    /// The client `id`, if stored.
    fn client(&self, id: &ClientId) -> Result<Option<Client>, TxFail>;
    /// Writes a client (insert or replace).
    fn put_client(&self, c: &Client) -> Result<(), TxFail>;
    /// The invoice `id`, if stored.
    fn invoice(&self, id: &InvoiceId) -> Result<Option<Invoice>, TxFail>;
    /// Writes an invoice (insert or replace); the reminders kept with it are left as they are.
    fn put_invoice(&self, i: &Invoice) -> Result<(), TxFail>;
    /// Writes a new invoice with `opening`, the line heading its timeline.
    fn create_invoice(&self, i: &Invoice, opening: &Attempt) -> Result<(), TxFail>;
    /// The reminder `id` of `invoice`: the claimed copy while in flight, else the kept one.
    fn reminder(&self, invoice: &InvoiceId, id: &ReminderId) -> Result<Option<Reminder>, TxFail>;
    /// Writes a reminder; the due index is not touched.
    fn put_reminder(&self, r: &Reminder) -> Result<(), TxFail>;
    /// Writes a reminder and makes it due at `r.fire_at`.
    fn schedule(&self, r: &Reminder) -> Result<(), TxFail>;
    /// Removes the due entry of `r` at `r.fire_at`.
    fn unschedule(&self, r: &Reminder) -> Result<(), TxFail>;
    /// Writes a reminder that is done with and takes it out of the in-flight set.
    fn finish(&self, r: &Reminder) -> Result<(), TxFail>;
    /// Appends `a` to its invoice's timeline and counts it in its hour's tally.
    fn log(&self, a: &Attempt) -> Result<(), TxFail>;
    /// Whether webhook delivery `id` was already processed (and not yet pruned).
    fn webhook_seen(&self, id: &str) -> Result<bool, TxFail>;
    /// Records that webhook delivery `id` was processed at `at`.
    fn mark_webhook(&self, id: &str, at: Timestamp) -> Result<(), TxFail>;
    /// What is known about `address` (normalised with [`Contact::normalize`]).
    fn contact(&self, address: &str) -> Result<Option<Contact>, TxFail>;
    /// Writes a contact record under its normalised address.
    fn put_contact(&self, c: &Contact) -> Result<(), TxFail>;
    /// The message `provider_message_id` sent through `provider`, if recorded.
    fn sent_message(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SentMessage>, TxFail>;
    /// Writes a sent-message record.
    fn put_sent_message(&self, m: &SentMessage) -> Result<(), TxFail>;
    /// Appends `e` to its client's own timeline.
    fn log_client(&self, e: &ContactEvent) -> Result<(), TxFail>;
    /// The received payment event `key`, if any.
    fn inbox_entry(&self, key: &str) -> Result<Option<InboxEntry>, TxFail>;
    /// Writes a received payment event; it stays queued (due at `next_attempt_at`) until its
    /// state is final.
    fn put_inbox_entry(&self, e: &InboxEntry) -> Result<(), TxFail>;
    /// The invoice whose number is `number`, if one is indexed.
    fn invoice_by_number(&self, number: &str) -> Result<Option<InvoiceId>, TxFail>;
    /// Indexes `number` → `id`.
    fn index_number(&self, number: &str, id: &InvoiceId) -> Result<(), TxFail>;
    /// Removes the entry for `number` if it points at `id`.
    fn unindex_number(&self, number: &str, id: &InvoiceId) -> Result<(), TxFail>;
    /// Ids of the invoices of `client`, open or not, in invoice id (byte) order: the store's
    /// own index, kept by [`TxOps::put_invoice`] and [`TxOps::create_invoice`]. Sees the
    /// command's own writes and those of the commands applied before it.
    fn invoice_ids_of_client(&self, client: &ClientId) -> Result<Vec<InvoiceId>, TxFail>;
    /// A new store-wide number, greater than every one handed out before by this store (gaps
    /// allowed, also across restarts): the sequence part of event ids.
    fn sequence(&self) -> Result<u64, TxFail>;
    /// The outbound event `id`, if stored.
    fn event(&self, id: &EventId) -> Result<Option<OutboundEvent>, TxFail>;
    /// Writes an outbound event (insert or replace). The store keeps its index in step with its
    /// state: a pending event is due at `next_at`, a failed one is listed as failed.
    fn put_event(&self, e: &OutboundEvent) -> Result<(), TxFail>;
    /// The task `id`, if stored.
    fn task(&self, id: &TaskId) -> Result<Option<Task>, TxFail>;
    /// Writes a task (insert or replace). The store keeps its index in step with its state: a
    /// live (open or claimed) task is listed in the queue, under its invoice and its client;
    /// a done or cancelled one is not.
    fn put_task(&self, t: &Task) -> Result<(), TxFail>;
    /// The live tasks of `invoice`, in id (creation) order. Sees the command's own writes.
    fn live_tasks_of_invoice(&self, invoice: &InvoiceId) -> Result<Vec<Task>, TxFail>;
    /// The live tasks of `client` (about its invoices or the client itself), in id order.
    fn live_tasks_of_client(&self, client: &ClientId) -> Result<Vec<Task>, TxFail>;
}
