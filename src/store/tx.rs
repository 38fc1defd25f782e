//! Transactions across trees: [`Tx`], its error types and [`abort`].

pub use super::fail::TxFail;
use super::keys::{ClientLogKey, DueKey, HourKey, LogKey, QueueKey, TextKey, WebhookKey};
use super::tally::{Tally, hour_of};
use super::typed::TxTree;
use super::writer::Ctx;
use crate::domain::{
    Attempt, Client, ClientId, Contact, ContactEvent, InboxEntry, Invoice, InvoiceId, Reminder,
    ReminderId, SentMessage,
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

/// A transaction over all of the store's record trees; see
/// [`Store::transaction`](super::Store::transaction).
///
/// Reads see the transaction's own writes and those of the commands before it in the writer's
/// batch. Nothing is written unless the closure returns `Ok`. The closure runs exactly once.
pub struct Tx<'a> {
    pub(crate) clients: TxTree<'a, ClientId, Client>,
    pub(crate) invoices: TxTree<'a, InvoiceId, Invoice>,
    pub(crate) reminders: TxTree<'a, ReminderId, Reminder>,
    pub(crate) due: TxTree<'a, DueKey, ()>,
    pub(crate) inflight: TxTree<'a, ReminderId, ()>,
    pub(crate) log: TxTree<'a, LogKey, Attempt>,
    pub(crate) tallies: TxTree<'a, HourKey, u64>,
    pub(crate) webhooks: TxTree<'a, WebhookKey, Timestamp>,
    pub(crate) contacts: TxTree<'a, TextKey, Contact>,
    pub(crate) messages: TxTree<'a, TextKey, SentMessage>,
    pub(crate) client_log: TxTree<'a, ClientLogKey, ContactEvent>,
    pub(crate) inbox: TxTree<'a, TextKey, InboxEntry>,
    pub(crate) inbox_queue: TxTree<'a, QueueKey, ()>,
    pub(crate) numbers: TxTree<'a, TextKey, InvoiceId>,
}

/// The slot (tree number) of each record tree in the writer, in the order of
/// `Trees`; in the keyspace, each record's key starts with its slot byte.
pub(crate) mod slot {
    pub(crate) const CLIENTS: u8 = 0;
    pub(crate) const INVOICES: u8 = 1;
    pub(crate) const REMINDERS: u8 = 2;
    pub(crate) const DUE: u8 = 3;
    pub(crate) const INFLIGHT: u8 = 4;
    pub(crate) const LOG: u8 = 5;
    /// Schema 1's `log_by_time` index; since schema 2, the hourly tallies.
    pub(crate) const TALLIES: u8 = 6;
    pub(crate) const WEBHOOKS: u8 = 7;
    pub(crate) const CONTACTS: u8 = 8;
    pub(crate) const MESSAGES: u8 = 9;
    pub(crate) const CLIENT_LOG: u8 = 10;
    pub(crate) const INBOX: u8 = 11;
    pub(crate) const INBOX_QUEUE: u8 = 12;
    pub(crate) const NUMBERS: u8 = 13;
}

impl<'a> Tx<'a> {
    /// A transaction reading and writing through `ctx`.
    pub(crate) fn new(ctx: &'a Ctx<'a>) -> Self {
        Tx {
            clients: TxTree::new(ctx, slot::CLIENTS, "clients"),
            invoices: TxTree::new(ctx, slot::INVOICES, "invoices"),
            reminders: TxTree::new(ctx, slot::REMINDERS, "reminders"),
            due: TxTree::new(ctx, slot::DUE, "due"),
            inflight: TxTree::new(ctx, slot::INFLIGHT, "inflight"),
            log: TxTree::new(ctx, slot::LOG, "log"),
            tallies: TxTree::new(ctx, slot::TALLIES, "tallies"),
            webhooks: TxTree::new(ctx, slot::WEBHOOKS, "webhooks"),
            contacts: TxTree::new(ctx, slot::CONTACTS, "contacts"),
            messages: TxTree::new(ctx, slot::MESSAGES, "messages"),
            client_log: TxTree::new(ctx, slot::CLIENT_LOG, "client_log"),
            inbox: TxTree::new(ctx, slot::INBOX, "inbox"),
            inbox_queue: TxTree::new(ctx, slot::INBOX_QUEUE, "inbox_queue"),
            numbers: TxTree::new(ctx, slot::NUMBERS, "numbers"),
        }
    }
}

impl Tx<'_> {
    /// The client `id`, if stored.
    pub fn client(&self, id: &ClientId) -> Result<Option<Client>, TxFail> {
        self.clients.get(id)
    }

    /// Writes a client (insert or replace).
    pub fn put_client(&self, c: &Client) -> Result<(), TxFail> {
        self.clients.insert(&c.id, c)
    }

    /// The invoice `id`, if stored.
    pub fn invoice(&self, id: &InvoiceId) -> Result<Option<Invoice>, TxFail> {
        self.invoices.get(id)
    }

    /// Writes an invoice (insert or replace).
    pub fn put_invoice(&self, i: &Invoice) -> Result<(), TxFail> {
        self.invoices.insert(&i.id, i)
    }

    /// The reminder `id`, if stored.
    pub fn reminder(&self, id: &ReminderId) -> Result<Option<Reminder>, TxFail> {
        self.reminders.get(id)
    }

    /// Writes a reminder record only; the due index is not touched.
    pub fn put_reminder(&self, r: &Reminder) -> Result<(), TxFail> {
        self.reminders.insert(&r.id, r)
    }

    /// Writes a reminder and adds its due-index entry at `r.fire_at` (microsecond precision).
    ///
    /// When moving a scheduled reminder to a new time, call [`Tx::unschedule`] with the old
    /// record first; an entry left at the old time is treated as stale by
    /// [`Store::claim_due`](super::Store::claim_due) and dropped.
    pub fn schedule(&self, r: &Reminder) -> Result<(), TxFail> {
        self.reminders.insert(&r.id, r)?;
        self.due.insert(
            &DueKey {
                at: r.fire_at,
                id: r.id,
            },
            &(),
        )
    }

    /// Removes the due-index entry at `r.fire_at`; the reminder record is left as it is.
    pub fn unschedule(&self, r: &Reminder) -> Result<(), TxFail> {
        self.due
            .remove(&DueKey {
                at: r.fire_at,
                id: r.id,
            })
            .map(|_| ())
    }

    /// Writes a reminder that is done with (sent, failed, rescheduled...) and removes it from the
    /// in-flight set.
    pub fn finish(&self, r: &Reminder) -> Result<(), TxFail> {
        self.reminders.insert(&r.id, r)?;
        self.inflight.remove(&r.id).map(|_| ())
    }

    /// Appends `a` to its invoice's timeline and counts it in its hour's tally (see
    /// [`Store::tallies`](super::Store::tallies)).
    pub fn log(&self, a: &Attempt) -> Result<(), TxFail> {
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
            let n = self.tallies.get(&key)?.unwrap_or(0);
            self.tallies.insert(&key, &n.saturating_add(1))?;
        }
        Ok(())
    }

    /// Whether webhook delivery `id` was already processed (and not yet pruned).
    pub fn webhook_seen(&self, id: &str) -> Result<bool, TxFail> {
        self.webhooks.contains(&WebhookKey(id.to_owned()))
    }

    /// Records that webhook delivery `id` was processed at `at`.
    pub fn mark_webhook(&self, id: &str, at: Timestamp) -> Result<(), TxFail> {
        self.webhooks.insert(&WebhookKey(id.to_owned()), &at)
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

    /// What is known about `address` (normalised with [`Contact::normalize`]), if anything.
    pub fn contact(&self, address: &str) -> Result<Option<Contact>, TxFail> {
        self.contacts.get(&TextKey(Contact::normalize(address)))
    }

    /// Writes a contact record (insert or replace), under its normalised address.
    pub fn put_contact(&self, c: &Contact) -> Result<(), TxFail> {
        self.contacts
            .insert(&TextKey(Contact::normalize(&c.address)), c)
    }

    /// The message `provider_message_id` sent through `provider`, if recorded.
    pub fn sent_message(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SentMessage>, TxFail> {
        self.messages
            .get(&TextKey(format!("{provider}:{provider_message_id}")))
    }

    /// Writes a sent-message record (insert or replace).
    pub fn put_sent_message(&self, m: &SentMessage) -> Result<(), TxFail> {
        self.messages.insert(
            &TextKey(format!("{}:{}", m.provider, m.provider_message_id)),
            m,
        )
    }

    /// Appends `e` to its client's own timeline.
    pub fn log_client(&self, e: &ContactEvent) -> Result<(), TxFail> {
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
    pub fn inbox_entry(&self, key: &str) -> Result<Option<InboxEntry>, TxFail> {
        self.inbox.get(&TextKey(key.to_owned()))
    }

    /// Writes a received payment event; it stays in the processing queue (due at
    /// `next_attempt_at`) until its state is final.
    pub fn put_inbox_entry(&self, e: &InboxEntry) -> Result<(), TxFail> {
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
    pub fn invoice_by_number(&self, number: &str) -> Result<Option<InvoiceId>, TxFail> {
        self.numbers.get(&TextKey(number.trim().to_owned()))
    }

    /// Indexes `number` → `id` (a later invoice with the same number takes it over).
    pub fn index_number(&self, number: &str, id: &InvoiceId) -> Result<(), TxFail> {
        self.numbers.insert(&TextKey(number.trim().to_owned()), id)
    }

    /// Removes the entry for `number` if it points at `id`.
    pub fn unindex_number(&self, number: &str, id: &InvoiceId) -> Result<(), TxFail> {
        let key = TextKey(number.trim().to_owned());
        if self.numbers.get(&key)?.as_ref() == Some(id) {
            self.numbers.remove(&key)?;
        }
        Ok(())
    }

    /// Removes the due entry `key`; false if it was already gone.
    pub(crate) fn take_due(&self, key: &DueKey) -> Result<bool, TxFail> {
        self.due.remove(key)
    }

    /// Adds `id` to the in-flight set.
    pub(crate) fn add_inflight(&self, id: &ReminderId) -> Result<(), TxFail> {
        self.inflight.insert(id, &())
    }
}
