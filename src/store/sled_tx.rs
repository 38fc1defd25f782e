//! [`SledTx`]: one command of the sled backend's writer, reading and writing the keyspace
//! through the writer's layered view. It implements [`TxOps`], which [`Tx`](super::Tx)
//! forwards to.

use super::fail::TxFail;
use super::keys::{
    ClientInvoiceKey, ClientLogKey, DueKey, EventIndexKey, HourKey, InflightKey, KeyCodec, LogKey,
    QueueKey, TaskIndexKey, TextKey, WebhookKey,
};
use super::ops::TxOps;
use super::overlay::Ctx;
use super::records::InvoiceRecord;
use super::slot;
use super::tally::{Tally, hour_of};
use super::typed::TxTree;
use crate::domain::{
    Attempt, Client, ClientId, Contact, ContactEvent, EventId, EventState, InboxEntry, IndexLine,
    Invoice, InvoiceId, OutboundEvent, Reminder, ReminderId, SentMessage, Task, TaskId,
};
use jiff::Timestamp;
use std::cell::RefCell;
use std::collections::HashMap;

/// One command of the sled writer over all of the store's record trees.
///
/// Reads see the command's own writes and those of the commands before it in the writer's
/// batch. Nothing is written unless the command returns `Ok`.
///
/// Invoice records (an invoice with its reminders) are read and changed several times by one
/// command (created, a reminder kept, the invoice written back): they are decoded once, kept
/// decoded while the command runs, and encoded once by [`SledTx::finish`].
///
/// The client's invoice index (`client_invoices`) is kept by the store itself: writing an
/// invoice that was not stored adds its entry, moving one to another client moves it, and
/// rewriting one under the same client writes the entry again only when its [`IndexLine`]
/// (the open balance a statement shows) changed.
pub(crate) struct SledTx<'a> {
    pub(crate) clients: TxTree<'a, ClientId, Client>,
    invoices: TxTree<'a, InvoiceId, InvoiceRecord>,
    /// Invoice records this command has read or written, decoded.
    records: RefCell<HashMap<InvoiceId, CachedRecord>>,
    pub(crate) due: TxTree<'a, DueKey, ()>,
    pub(crate) inflight: TxTree<'a, InflightKey, Reminder>,
    pub(crate) log: TxTree<'a, LogKey, Attempt>,
    ctx: &'a Ctx<'a>,
    pub(crate) webhooks: TxTree<'a, WebhookKey, Timestamp>,
    pub(crate) contacts: TxTree<'a, TextKey, Contact>,
    pub(crate) messages: TxTree<'a, TextKey, SentMessage>,
    pub(crate) client_log: TxTree<'a, ClientLogKey, ContactEvent>,
    pub(crate) inbox: TxTree<'a, TextKey, InboxEntry>,
    pub(crate) inbox_queue: TxTree<'a, QueueKey, ()>,
    pub(crate) numbers: TxTree<'a, TextKey, InvoiceId>,
    /// Each client's invoices (kept by [`SledTx::index_client`], never by callers).
    client_invoices: TxTree<'a, ClientInvoiceKey, IndexLine>,
    /// The events outbox, and its index (kept by [`TxOps::put_event`]).
    events: TxTree<'a, EventId, OutboundEvent>,
    events_index: TxTree<'a, EventIndexKey, ()>,
    /// Tasks for people, and their index (kept by [`TxOps::put_task`]).
    tasks: TxTree<'a, TaskId, Task>,
    tasks_index: TxTree<'a, TaskIndexKey, ()>,
}

/// An invoice record as one command sees it.
struct CachedRecord {
    /// The record (`None`: not stored).
    record: Option<InvoiceRecord>,
    /// Changed by the command: written by [`SledTx::finish`].
    changed: bool,
    /// The invoice was not stored when the command first read it, and nothing claimed one of
    /// its reminders since: none of its reminders can be in flight.
    new: bool,
}

impl<'a> SledTx<'a> {
    /// A transaction reading and writing through `ctx`.
    pub(crate) fn new(ctx: &'a Ctx<'a>) -> Self {
        SledTx {
            clients: TxTree::new(ctx, slot::CLIENTS, "clients"),
            invoices: TxTree::new(ctx, slot::INVOICES, "invoices"),
            records: RefCell::default(),
            due: TxTree::new(ctx, slot::DUE, "due"),
            inflight: TxTree::new(ctx, slot::INFLIGHT, "inflight"),
            log: TxTree::new(ctx, slot::LOG, "log"),
            ctx,
            webhooks: TxTree::new(ctx, slot::WEBHOOKS, "webhooks"),
            contacts: TxTree::new(ctx, slot::CONTACTS, "contacts"),
            messages: TxTree::new(ctx, slot::MESSAGES, "messages"),
            client_log: TxTree::new(ctx, slot::CLIENT_LOG, "client_log"),
            inbox: TxTree::new(ctx, slot::INBOX, "inbox"),
            inbox_queue: TxTree::new(ctx, slot::INBOX_QUEUE, "inbox_queue"),
            numbers: TxTree::new(ctx, slot::NUMBERS, "numbers"),
            client_invoices: TxTree::new(ctx, slot::CLIENT_INVOICES, "client_invoices"),
            events: TxTree::new(ctx, slot::EVENTS, "events"),
            events_index: TxTree::new(ctx, slot::EVENTS_INDEX, "events_index"),
            tasks: TxTree::new(ctx, slot::TASKS, "tasks"),
            tasks_index: TxTree::new(ctx, slot::TASKS_INDEX, "tasks_index"),
        }
    }
}

impl TxOps for SledTx<'_> {
    /// The client `id`, if stored.
    fn client(&self, id: &ClientId) -> Result<Option<Client>, TxFail> {
        self.clients.get(id)
    }

    /// Writes a client (insert or replace).
    fn put_client(&self, c: &Client) -> Result<(), TxFail> {
        self.clients.insert(&c.id, c)
    }

    /// The invoice `id`, if stored.
    fn invoice(&self, id: &InvoiceId) -> Result<Option<Invoice>, TxFail> {
        Ok(self.record(id)?.map(|r| r.invoice))
    }

    /// Writes an invoice (insert or replace); the reminders kept with it are left as they are.
    /// A new invoice joins its client's invoice index; one whose client changed moves to the
    /// new client's.
    fn put_invoice(&self, i: &Invoice) -> Result<(), TxFail> {
        let old = self.record(&i.id)?;
        self.index_client(old.as_ref().map(|r| &r.invoice), i)?;
        let record = match old {
            Some(mut r) => {
                r.invoice = i.clone();
                r
            }
            None => InvoiceRecord::new(i.clone()),
        };
        self.put_record(&i.id, record);
        Ok(())
    }

    /// Writes a new invoice with `opening`, the line its creation adds to its timeline. The
    /// line is kept with the invoice (no log key is written) and heads
    /// [`Store::timeline`](super::Store::timeline). The invoice joins its client's invoice
    /// index (an invoice stored before under another client leaves that client's).
    fn create_invoice(&self, i: &Invoice, opening: &Attempt) -> Result<(), TxFail> {
        let old = self.record(&i.id)?;
        self.index_client(old.as_ref().map(|r| &r.invoice), i)?;
        let mut record = InvoiceRecord::new(i.clone());
        record.opening = Some(opening.clone());
        self.put_record(&i.id, record);
        Ok(())
    }

    /// Ids of the invoices of `client`, open or not, in invoice id (byte) order, as this
    /// command sees them: its own writes and those of the commands before it included.
    fn invoice_ids_of_client(&self, client: &ClientId) -> Result<Vec<InvoiceId>, TxFail> {
        Ok(self
            .client_invoices
            .scan_prefix(&ClientInvoiceKey::prefix(client))?
            .into_iter()
            .map(|(k, _)| k.invoice)
            .collect())
    }

    /// The reminder `id` of `invoice`, if stored: the claimed copy while it is in flight, else
    /// the copy kept with the invoice. A reminder cancelled before any send attempt is not kept.
    fn reminder(&self, invoice: &InvoiceId, id: &ReminderId) -> Result<Option<Reminder>, TxFail> {
        let key = InflightKey {
            invoice: invoice.clone(),
            id: *id,
        };
        if let Some(r) = self.inflight.get(&key)? {
            return Ok(Some(r));
        }
        Ok(self
            .record(invoice)?
            .and_then(|rec| rec.reminder(id).cloned()))
    }

    /// Writes a reminder only; the due index is not touched. While the reminder is in flight,
    /// its claimed copy is updated; else the copy kept with its invoice (a cancelled one is
    /// dropped).
    fn put_reminder(&self, r: &Reminder) -> Result<(), TxFail> {
        let key = InflightKey {
            invoice: r.invoice_id.clone(),
            id: r.id,
        };
        // An invoice this command created has nothing in flight: skip the lookup.
        if !self.is_new(&r.invoice_id) && self.inflight.contains(&key)? {
            return self.inflight.insert(&key, r);
        }
        self.keep_with_invoice(r)
    }

    /// Writes a reminder and adds its due-index entry at `r.fire_at` (microsecond precision).
    ///
    /// When moving a scheduled reminder to a new time, call [`Tx::unschedule`] with the old
    /// record first; an entry left at the old time is treated as stale by
    /// [`Store::claim_due`](super::Store::claim_due) and dropped.
    fn schedule(&self, r: &Reminder) -> Result<(), TxFail> {
        self.put_reminder(r)?;
        self.due.insert(&due_key(r), &())
    }

    /// Removes the due-index entry at `r.fire_at`; the reminder record is left as it is.
    fn unschedule(&self, r: &Reminder) -> Result<(), TxFail> {
        self.due.remove(&due_key(r)).map(|_| ())
    }

    /// Writes a reminder that is done with (sent, failed, rescheduled...) and removes it from the
    /// in-flight set.
    fn finish(&self, r: &Reminder) -> Result<(), TxFail> {
        self.inflight.remove(&InflightKey {
            invoice: r.invoice_id.clone(),
            id: r.id,
        })?;
        self.keep_with_invoice(r)
    }

    /// Appends `a` to its invoice's timeline and counts it in its hour's tally (see
    /// [`Store::tallies`](super::Store::tallies)).
    fn log(&self, a: &Attempt) -> Result<(), TxFail> {
        let seq = self.log.generate_id()?;
        let key = LogKey {
            invoice: a.invoice_id.clone(),
            seq,
        };
        self.log.insert(&key, a)?;
        if let Some(t) = Tally::of(a) {
            let key = HourKey {
                hour: hour_of(a.at),
                tally: t as u8,
            };
            self.ctx.count(slot::TALLIES, &key.encode());
        }
        Ok(())
    }

    /// Whether webhook delivery `id` was already processed (and not yet pruned).
    fn webhook_seen(&self, id: &str) -> Result<bool, TxFail> {
        self.webhooks.contains(&WebhookKey(id.to_owned()))
    }

    /// Records that webhook delivery `id` was processed at `at`.
    fn mark_webhook(&self, id: &str, at: Timestamp) -> Result<(), TxFail> {
        self.webhooks.insert(&WebhookKey(id.to_owned()), &at)
    }

    /// What is known about `address` (normalised with [`Contact::normalize`]), if anything.
    fn contact(&self, address: &str) -> Result<Option<Contact>, TxFail> {
        self.contacts.get(&TextKey(Contact::normalize(address)))
    }

    /// Writes a contact record (insert or replace), under its normalised address.
    fn put_contact(&self, c: &Contact) -> Result<(), TxFail> {
        self.contacts
            .insert(&TextKey(Contact::normalize(&c.address)), c)
    }

    /// The message `provider_message_id` sent through `provider`, if recorded.
    fn sent_message(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SentMessage>, TxFail> {
        self.messages
            .get(&TextKey(format!("{provider}:{provider_message_id}")))
    }

    /// Writes a sent-message record (insert or replace).
    fn put_sent_message(&self, m: &SentMessage) -> Result<(), TxFail> {
        self.messages.insert(
            &TextKey(format!("{}:{}", m.provider, m.provider_message_id)),
            m,
        )
    }

    /// Appends `e` to its client's own timeline.
    fn log_client(&self, e: &ContactEvent) -> Result<(), TxFail> {
        let seq = self.client_log.generate_id()?;
        self.client_log.insert(
            &ClientLogKey {
                client: e.client_id.clone(),
                seq,
            },
            e,
        )
    }

    /// The received payment event `key`, if any.
    fn inbox_entry(&self, key: &str) -> Result<Option<InboxEntry>, TxFail> {
        self.inbox.get(&TextKey(key.to_owned()))
    }

    /// Writes a received payment event; it stays in the processing queue (due at
    /// `next_attempt_at`) until its state is final.
    fn put_inbox_entry(&self, e: &InboxEntry) -> Result<(), TxFail> {
        let key = TextKey(e.key.clone());
        let queued_at = |e: &InboxEntry| {
            (!e.state.is_final()).then(|| QueueKey {
                at: e.next_attempt_at,
                key: e.key.clone(),
            })
        };
        let old = self.inbox.get(&key)?.as_ref().and_then(queued_at);
        let new = queued_at(e);
        self.inbox.insert(&key, e)?;
        if old != new {
            if let Some(old) = old {
                self.inbox_queue.remove(&old)?;
            }
            if let Some(new) = new {
                self.inbox_queue.insert(&new, &())?;
            }
        }
        Ok(())
    }

    /// The invoice whose number is `number`, if one is indexed.
    fn invoice_by_number(&self, number: &str) -> Result<Option<InvoiceId>, TxFail> {
        self.numbers.get(&TextKey(number.trim().to_owned()))
    }

    /// Indexes `number` → `id` (a later invoice with the same number takes it over).
    fn index_number(&self, number: &str, id: &InvoiceId) -> Result<(), TxFail> {
        self.numbers.insert(&TextKey(number.trim().to_owned()), id)
    }

    /// Removes the entry for `number` if it points at `id`.
    fn unindex_number(&self, number: &str, id: &InvoiceId) -> Result<(), TxFail> {
        let key = TextKey(number.trim().to_owned());
        if self.numbers.get(&key)?.as_ref() == Some(id) {
            self.numbers.remove(&key)?;
        }
        Ok(())
    }

    /// A new store-wide number (sled's monotonic id generator): event ids.
    fn sequence(&self) -> Result<u64, TxFail> {
        self.events.generate_id()
    }

    /// The outbound event `id`, if stored.
    fn event(&self, id: &EventId) -> Result<Option<OutboundEvent>, TxFail> {
        self.events.get(id)
    }

    /// Writes an outbound event and moves its index entry with its state: a pending event is
    /// due at `next_at`, a failed one is listed as failed, a delivered one has no entry. A new
    /// event costs two keys (the record and its due entry).
    fn put_event(&self, e: &OutboundEvent) -> Result<(), TxFail> {
        let old = self.events.get(&e.id)?.as_ref().and_then(index_entry);
        let new = index_entry(e);
        self.events.insert(&e.id, e)?;
        if old != new {
            if let Some(old) = old {
                self.events_index.remove(&old)?;
            }
            if let Some(new) = new {
                self.events_index.insert(&new, &())?;
            }
        }
        Ok(())
    }

    /// The task `id`, if stored.
    fn task(&self, id: &TaskId) -> Result<Option<Task>, TxFail> {
        self.tasks.get(id)
    }

    /// Writes a task and moves its index entries with its state: a live task is in the queue
    /// and listed under its invoice and its client; a closed one has no entry. A new live
    /// task costs three or four keys.
    fn put_task(&self, t: &Task) -> Result<(), TxFail> {
        let old = self
            .tasks
            .get(&t.id)?
            .map(|o| task_index_entries(&o))
            .unwrap_or_default();
        let new = task_index_entries(t);
        self.tasks.insert(&t.id, t)?;
        for gone in old.iter().filter(|k| !new.contains(k)) {
            self.tasks_index.remove(gone)?;
        }
        for added in new.iter().filter(|k| !old.contains(k)) {
            self.tasks_index.insert(added, &())?;
        }
        Ok(())
    }

    /// The live tasks of `invoice`, oldest first.
    fn live_tasks_of_invoice(&self, invoice: &InvoiceId) -> Result<Vec<Task>, TxFail> {
        self.live_tasks_under(&TaskIndexKey::invoice_prefix(invoice))
    }

    /// The live tasks of `client`, oldest first.
    fn live_tasks_of_client(&self, client: &ClientId) -> Result<Vec<Task>, TxFail> {
        self.live_tasks_under(&TaskIndexKey::client_prefix(client))
    }
}

impl SledTx<'_> {
    /// Keeps the client's invoice index up to date for invoice `new`, stored before as `old`
    /// (`None`: not stored): its entry moves with its client, and is written again when its
    /// [`IndexLine`] (the open balance a statement shows) changed. Nothing is written when
    /// neither changed: a reminder's outcome writes no index key.
    fn index_client(&self, old: Option<&Invoice>, new: &Invoice) -> Result<(), TxFail> {
        let line = IndexLine::of(new);
        let entry = |client: &ClientId| ClientInvoiceKey {
            client: client.clone(),
            invoice: new.id.clone(),
        };
        if let Some(old) = old {
            if old.client_id != new.client_id {
                self.client_invoices.remove(&entry(&old.client_id))?;
            } else if IndexLine::of(old) == line {
                return Ok(());
            }
        }
        self.client_invoices.insert(&entry(&new.client_id), &line)
    }

    /// Keeps `r` in its invoice's record.
    fn keep_with_invoice(&self, r: &Reminder) -> Result<(), TxFail> {
        let Some(mut record) = self.record(&r.invoice_id)? else {
            return Err(TxFail::corrupt(
                "invoices",
                r.invoice_id.describe(),
                format!("reminder {} names an invoice that is not stored", r.id),
            ));
        };
        record.keep(r);
        self.put_record(&r.invoice_id, record);
        Ok(())
    }

    /// The record of invoice `id` as this command sees it (decoded once per command).
    fn record(&self, id: &InvoiceId) -> Result<Option<InvoiceRecord>, TxFail> {
        if let Some(c) = self.records.borrow().get(id) {
            return Ok(c.record.clone());
        }
        let record = self.invoices.get(id)?;
        let cached = CachedRecord {
            record: record.clone(),
            changed: false,
            new: record.is_none(),
        };
        self.records.borrow_mut().insert(id.clone(), cached);
        Ok(record)
    }

    /// Replaces the record of invoice `id`; written by [`SledTx::finish`].
    fn put_record(&self, id: &InvoiceId, record: InvoiceRecord) {
        let mut records = self.records.borrow_mut();
        match records.get_mut(id) {
            Some(c) => {
                c.record = Some(record);
                c.changed = true;
            }
            None => {
                records.insert(
                    id.clone(),
                    CachedRecord {
                        record: Some(record),
                        changed: true,
                        new: false,
                    },
                );
            }
        }
    }

    /// Whether invoice `id` was created by this command with nothing claimed since.
    fn is_new(&self, id: &InvoiceId) -> bool {
        self.records.borrow().get(id).is_some_and(|c| c.new)
    }

    /// Writes the invoice records this command changed (once each). The writer calls it when
    /// the command succeeds, before its writes join the batch.
    pub(crate) fn finish(&self) -> Result<(), TxFail> {
        for (id, c) in self.records.borrow_mut().drain() {
            if let (Some(record), true) = (c.record, c.changed) {
                self.invoices.insert(&id, &record)?;
            }
        }
        Ok(())
    }

    /// Forgets webhook delivery `id` if it was processed before `older_than`; true if it was.
    pub(crate) fn forget_webhook_if_older(
        &self,
        id: &WebhookKey,
        older_than: Timestamp,
    ) -> Result<bool, TxFail> {
        match self.webhooks.get(id)? {
            Some(at) if at < older_than => self.webhooks.remove(id),
            _ => Ok(false),
        }
    }

    /// Forgets event `id` if it was delivered (delivered events have no index entry); true if
    /// it was.
    pub(crate) fn forget_event_if_delivered(&self, id: &EventId) -> Result<bool, TxFail> {
        match self.events.get(id)? {
            Some(e) if e.state == EventState::Delivered => self.events.remove(id),
            _ => Ok(false),
        }
    }

    /// Rewrites the probe value under `key` (readiness probes: proves a command can be written).
    pub(crate) fn put_probe(&self, key: &str) {
        self.ctx.put(slot::PROBE, key.as_bytes(), Some(vec![1]));
    }

    /// Reads at once what claiming `candidates` reads key by key (their due entries, in-flight
    /// copies and invoice records): one round trip on PostgreSQL instead of three per reminder.
    pub(crate) fn prefetch_claim(&self, candidates: &[DueKey]) -> Result<(), TxFail> {
        if !self.ctx.prefetches() {
            return Ok(()); // sled: nothing to gain, so no keys to build on the claim's path
        }
        let mut keys = Vec::with_capacity(candidates.len() * 3);
        for key in candidates {
            keys.push(self.due.prefetch_key(key));
            keys.push(self.inflight.prefetch_key(&InflightKey {
                invoice: key.invoice.clone(),
                id: key.id,
            }));
            if !self.records.borrow().contains_key(&key.invoice) {
                keys.push(self.invoices.prefetch_key(&key.invoice));
            }
        }
        self.ctx.prefetch(keys)
    }

    /// Removes the due entry `key`; false if it was already gone.
    pub(crate) fn take_due(&self, key: &DueKey) -> Result<bool, TxFail> {
        self.due.remove(key)
    }

    /// Adds `r`, claimed, to the in-flight set (its copy with the invoice is left as it is).
    pub(crate) fn add_inflight(&self, r: &Reminder) -> Result<(), TxFail> {
        if let Some(c) = self.records.borrow_mut().get_mut(&r.invoice_id) {
            c.new = false;
        }
        self.inflight.insert(
            &InflightKey {
                invoice: r.invoice_id.clone(),
                id: r.id,
            },
            r,
        )
    }
}

impl SledTx<'_> {
    /// The live tasks whose index entries start with `prefix`.
    fn live_tasks_under(&self, prefix: &[u8]) -> Result<Vec<Task>, TxFail> {
        let mut out = Vec::new();
        for (key, ()) in self.tasks_index.scan_prefix(prefix)? {
            if let Some(t) = self.tasks.get(&key.id())? {
                out.push(t);
            }
        }
        Ok(out)
    }
}

/// The tasks-index entries of `t` in its state (none once closed).
fn task_index_entries(t: &Task) -> Vec<TaskIndexKey> {
    if !t.state.is_live() {
        return Vec::new();
    }
    let mut out = vec![
        TaskIndexKey::Live(t.id),
        TaskIndexKey::Client {
            client: t.client_id.clone(),
            id: t.id,
        },
    ];
    if let Some(invoice) = &t.invoice_id {
        out.push(TaskIndexKey::Invoice {
            invoice: invoice.clone(),
            id: t.id,
        });
    }
    out
}

/// The events-index entry of `e` in its state (none once delivered).
fn index_entry(e: &OutboundEvent) -> Option<EventIndexKey> {
    match e.state {
        EventState::Pending => Some(EventIndexKey::Due {
            at: e.next_at,
            id: e.id,
        }),
        EventState::Failed => Some(EventIndexKey::Failed(e.id)),
        EventState::Delivered => None,
    }
}

/// The due-index entry of `r` at its fire time.
fn due_key(r: &Reminder) -> DueKey {
    DueKey {
        at: r.fire_at,
        id: r.id,
        invoice: r.invoice_id.clone(),
    }
}
