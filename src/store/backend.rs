//! The storage seam: what a backend must do for [`Store`](super::Store), at the level of the
//! domain operations the service, the dispatcher and the payments inbox use, never raw keys.
//!
//! Two traits:
//! - [`TxOps`]: the reads and writes of one command (a transaction). [`Tx`] forwards to it,
//!   so service code is written once against `Tx` and runs on every backend.
//! - [`Backend`]: reads outside commands, running commands (blocking and async), claiming due
//!   reminders, durability, health. [`Store`](super::Store) is a cheap handle on one.
//!
//! The contract every backend keeps (checked for each one by
//! [`conformance`](super::conformance)):
//! - a command runs exactly once; its writes are applied atomically with the rest of its batch,
//!   or not at all when it aborts or the batch fails;
//! - a command's writes are visible to every reader when `exec`/`submit` returns, and on disk
//!   once a later [`Backend::durable`] resolves, or when `submit` with [`Ack::Durable`]
//!   returns;
//! - a due reminder is claimed by one caller only, and stays in flight until it is finished;
//! - a record that cannot be decoded is reported ([`StoreError::Corrupt`]), never skipped;
//! - an outbound event is written by the command that makes the change it reports, and stays
//!   due until a later command records its delivery or failure (an attempt cut short by a
//!   crash is made again);
//! - a task is listed as live (the queue, its invoice's, its client's) exactly while it is
//!   open or claimed.
//!
//! sled ([`SledBackend`](super::sled_backend::SledBackend)) is the default, embedded backend.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;

use super::StoreError;
use super::health::FaultInjector;
pub use super::ops::TxOps;
use super::tally::Tallies;
use super::tx::{Tx, TxError};
use super::writer::{Ack, WriterStats};
use crate::domain::{
    Attempt, Client, ClientId, Contact, ContactEvent, EventId, EventState, InboxEntry, IndexLine,
    Invoice, InvoiceId, OutboundEvent, Reminder, ReminderId, SentMessage, Task, TaskId,
};

/// A boxed future, so that [`Backend`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a command returns to its backend once its own result is set aside: `Ok(())` keeps its
/// writes, `Err(TxError::Abort(()))` discards them, `Err(TxError::Conflict(_))` is a store
/// failure.
pub type CommandResult = Result<(), TxError<()>>;

/// A command run on the calling (blocking) thread; it may borrow from the caller.
pub type BlockingCommand<'c> = &'c mut (dyn FnMut(&mut Tx<'_>) -> CommandResult + 'c);

/// A command handed to the backend to run on its own thread (async callers).
pub type Command = Box<dyn FnOnce(&mut Tx<'_>) -> CommandResult + Send + 'static>;

/// One entry of the due index: a reminder waiting to fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    /// When it fires (microsecond precision).
    pub at: Timestamp,
    /// Which reminder.
    pub reminder: ReminderId,
    /// The invoice it chases.
    pub invoice: InvoiceId,
}

/// A storage backend: everything [`Store`](super::Store) does, type-erased so a store is one
/// handle whatever holds the data.
pub trait Backend: Send + Sync + 'static {
    /// The backend's name for logs and errors (`sled`).
    fn name(&self) -> &'static str;

    /// The fencing epoch under which this node leads a shared database (PostgreSQL): it rises
    /// by one at every takeover. `None` for an embedded store, which has no leader.
    fn leader_epoch(&self) -> Option<i64> {
        None
    }

    /// Batches a shared database rolled back for a conflict with another transaction
    /// (serialization failure, deadlock) that this node ran again, since it opened the store.
    /// `None` for an embedded store, which has no such conflicts.
    fn conflict_retries(&self) -> Option<u64> {
        None
    }

    /// Runs `cmd` once as one command, on the calling thread, and returns once its writes are
    /// visible to every reader (not yet durable). Blocks.
    fn exec(&self, cmd: BlockingCommand<'_>) -> Result<(), StoreError>;
    /// Runs `cmd` once as one command on the backend's own thread(s); resolves once its writes
    /// are visible ([`Ack::Applied`]) or on disk ([`Ack::Durable`]). A panic in `cmd` is
    /// resumed in the caller.
    fn submit(&self, cmd: Command, ack: Ack) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Resolves once every command that returned before this call is on disk.
    fn durable(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Makes everything written so far durable, on the calling thread.
    fn flush_blocking(&self) -> Result<(), StoreError>;
    /// Makes everything durable and closes the backend so that the next open is fast (clean
    /// shutdown); every later call fails. Blocks.
    fn close(&self) -> Result<(), StoreError>;

    /// `Err(reason)` while the backend cannot write.
    fn health(&self) -> Result<(), String>;
    /// Proves the backend can write now (a durable write).
    fn probe(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The fault-injection seam (tests): makes writes fail until cleared.
    fn faults(&self) -> FaultInjector;
    /// What the write path has done so far (tests, benchmarks).
    fn writer_stats(&self) -> Result<WriterStats, StoreError>;
    /// Bytes used on disk.
    fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// The client `id`, if stored.
    fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    /// The invoice `id`, if stored.
    fn invoice(&self, id: &InvoiceId) -> Result<Option<Invoice>, StoreError>;
    /// Ids of the invoices of `client`, open or not, in invoice id (byte) order (the client's
    /// invoice index: reads only that client's entries).
    fn invoice_ids_of_client(&self, client: &ClientId) -> Result<Vec<InvoiceId>, StoreError>;
    /// Every entry of the client's invoice index, each with its [`IndexLine`] (the open
    /// balance a statement shows), when the client has at most `max` invoices; `None`, having
    /// read `max + 1` entries and decoded none, when it has more (a client with 20,000
    /// invoices must not cost 20,000 reads per message).
    fn invoice_lines_of_client_within(
        &self,
        client: &ClientId,
        max: usize,
    ) -> Result<Option<Vec<(InvoiceId, IndexLine)>>, StoreError>;
    /// Ids of the open invoices of `client`, in invoice id (byte) order (reads the client's
    /// invoices only).
    fn open_invoice_ids_of(&self, client: &ClientId) -> Result<Vec<InvoiceId>, StoreError>;
    /// Up to `limit` client ids, in ascending id (byte) order, starting after `after`
    /// (exclusive; `None`: from the first). Keyset pagination over the clients only (no other
    /// record kind appears): pass the last id of a page to get the next one. Pages stay
    /// consistent while commands run: no id is listed twice in one walk, and a client that
    /// exists for the whole walk is listed once.
    fn client_ids_after(
        &self,
        after: Option<&ClientId>,
        limit: usize,
    ) -> Result<Vec<ClientId>, StoreError>;
    /// Up to `limit` invoice ids, in ascending id (byte) order, starting after `after`
    /// (exclusive; `None`: from the first): keyset pagination over the invoices only, with
    /// the same guarantees as [`Backend::client_ids_after`]. Reads only the ids.
    fn invoice_ids_after(
        &self,
        after: Option<&InvoiceId>,
        limit: usize,
    ) -> Result<Vec<InvoiceId>, StoreError>;
    /// Up to `limit` entries of the due index firing in `from..to`, in firing order (then
    /// reminder id), starting after `after` (exclusive; `None`: from `from`): what is planned
    /// in a time range, a page at a time. Reads only the index.
    fn due_entries(
        &self,
        from: Timestamp,
        to: Timestamp,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError>;
    /// The value stored under `key` in the store's own metadata (markers of one-time passes,
    /// such as the facts backfill), if any. These keys are a namespace of their own, apart from
    /// what the backend keeps for itself (the schema version).
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores `value` under `key` in the store's own metadata (see [`Backend::meta`]) and
    /// returns once it is durable, together with every command applied before the call.
    /// Blocks.
    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// The reminder `id` of `invoice`: the claimed copy while in flight, else the kept one.
    fn reminder(
        &self,
        invoice: &InvoiceId,
        id: &ReminderId,
    ) -> Result<Option<Reminder>, StoreError>;
    /// What is known about `address` (normalised with [`Contact::normalize`]).
    fn contact(&self, address: &str) -> Result<Option<Contact>, StoreError>;
    /// The message `provider_message_id` sent through `provider`, if recorded.
    fn sent_message(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SentMessage>, StoreError>;
    /// The received payment event `key`, if any.
    fn inbox_entry(&self, key: &str) -> Result<Option<InboxEntry>, StoreError>;
    /// Every queued payment event key with when it is next due, earliest first.
    fn inbox_queue(&self) -> Result<Vec<(String, Timestamp)>, StoreError>;
    /// Up to `limit` keys of the payment events due at `now`, earliest first.
    fn inbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError>;
    /// When the earliest queued payment event is due.
    fn inbox_next_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Every received payment event.
    fn inbox_entries(&self) -> Result<Vec<InboxEntry>, StoreError>;
    /// The outbound event `id`, if stored.
    fn event(&self, id: &EventId) -> Result<Option<OutboundEvent>, StoreError>;
    /// Up to `limit` pending events due at `now`, earliest due first (reads only those).
    fn events_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboundEvent>, StoreError>;
    /// When the earliest pending event is due.
    fn events_next_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Up to `limit` events in `state` (any state: `None`), newest first.
    fn events(
        &self,
        state: Option<EventState>,
        limit: usize,
    ) -> Result<Vec<OutboundEvent>, StoreError>;
    /// Forgets delivered events created before `older_than`; returns how many.
    fn prune_events(&self, older_than: Timestamp) -> Result<usize, StoreError>;
    /// The task `id`, if stored.
    fn task(&self, id: &TaskId) -> Result<Option<Task>, StoreError>;
    /// Every live (open or claimed) task, in id (creation) order: reads only those.
    fn live_tasks(&self) -> Result<Vec<Task>, StoreError>;
    /// Up to `limit` tasks of any state, newest first.
    fn recent_tasks(&self, limit: usize) -> Result<Vec<Task>, StoreError>;
    /// The client's own timeline, oldest first.
    fn client_timeline(&self, client: &ClientId) -> Result<Vec<ContactEvent>, StoreError>;
    /// The invoice's timeline, oldest first, headed by its creation line.
    fn timeline(&self, invoice: &InvoiceId) -> Result<Vec<Attempt>, StoreError>;
    /// When the earliest due reminder fires (microsecond precision).
    fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Number of due entries.
    fn pending_count(&self) -> Result<u64, StoreError>;
    /// Claims up to `limit` reminders due at `now`, earliest first, blocking (see
    /// [`Store::claim_due`](super::Store::claim_due)).
    fn claim_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Reminder>, StoreError>;
    /// [`Backend::claim_due`] for async callers: no async worker thread blocks on it.
    fn claim_due_async(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Reminder>, StoreError>>;
    /// Reminders claimed and not finished yet.
    fn in_flight(&self) -> Result<Vec<Reminder>, StoreError>;
    /// Forgets webhook deliveries processed before `older_than`; returns how many.
    fn prune_webhooks(&self, older_than: Timestamp) -> Result<usize, StoreError>;
    /// The tallies of the lines logged in the UTC hours starting in `from..to`.
    fn tallies(&self, from: Timestamp, to: Timestamp) -> Result<Tallies, StoreError>;

    /// The concrete backend, for its own white-box tests.
    fn as_any(&self) -> &dyn Any;
}
