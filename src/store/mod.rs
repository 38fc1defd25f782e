//! Durable state behind a storage seam: [`Store`] is the handle the service, the dispatcher and
//! the payments inbox use; a [`Backend`](backend::Backend) does the work. sled
//! ([`SledBackend`]) is the default, embedded backend.
//!
//! # Modules
//!
//! - `backend`: the seam. [`TxOps`](backend::TxOps) (the reads and writes of one command, which
//!   [`Tx`] forwards to; kept in the leaf `ops`) and [`Backend`](backend::Backend) (reads,
//!   commands, claims, durability, health), both at the level of domain operations, never raw
//!   keys.
//! - `conformance` (tests): the contract as checks any backend runs as named tests
//!   (`conformance_suite!`); sled runs them in `sled_backend/tests.rs`, PostgreSQL in
//!   `pg/tests.rs`.
//! - `tx`: [`Tx`], [`TxError`], [`abort`]: what a command's closure sees.
//! - `sled_backend`: the sled backend (open, schema check, reads, claims, recovery, close);
//!   `sled_tx`: one command on it; `slot`: the slot bytes of the keyspace; `writer`: its
//!   single batching writer, and `overlay` the layered view a command reads through (`Ctx`);
//!   `typed`, `keys`, `records`: typed trees, key codecs, binary records;
//!   `tally`: hourly counters; `health`: self-recovery and fault injection; `migrate`, `v1`:
//!   schema 1 to schema 2, schema 2 to schema 3.
//! - `kv`: the ordered key-value space the typed trees and the writer run over (a sled tree,
//!   or a PostgreSQL table).
//! - `pg`: the PostgreSQL backend ([`PgBackend`], opened by `pg_backend`, chosen by `[store]
//!   backend = "postgres"`): the same keyspace, writer and commands over table `keyspace` (bytea
//!   keys, ordered like sled's), a batch committed as one transaction; versioned migrations at
//!   open; `pg/leader.rs`: one leader node per database (advisory lock, standbys), every write
//!   fenced by the leader epoch.
//!
//! # Layout (sled)
//!
//! Schema 3 ([`SCHEMA_VERSION`]). The sled tree `meta` holds `schema_version` (u32,
//! big-endian), the readiness probe's `write_probe`, and the markers of
//! [`Store::meta`]/[`Store::put_meta`] under `marker:KEY` (raw bytes; `marker:facts_backfill`
//! once the one-time facts backfill has run). Every record lives in one sled tree, `records` (the keyspace), under a key that
//! starts with its kind's slot byte (`slot`), so one atomic `apply_batch` writes a whole
//! batch of commands. Values are compact binary records with a version byte (`records`).
//!
//! | slot | kind          | key (after the slot byte)                          | value                  |
//! |------|---------------|----------------------------------------------------|------------------------|
//! | 0    | `clients`     | client id                                          | [`Client`]             |
//! | 1    | `invoices`    | invoice id                                         | the invoice, its reminders and its opening line |
//! | 2    | `reminders`   | (schema 1 only: emptied by the migration)          |                        |
//! | 3    | `due`         | fire time (8 bytes) ++ reminder id (16) ++ invoice id | empty               |
//! | 4    | `inflight`    | invoice id ++ 0x00 ++ reminder id                  | the claimed [`Reminder`] |
//! | 5    | `log`         | invoice id ++ 0x00 ++ sequence (u64 big-endian)    | [`Attempt`]            |
//! | 6    | `tallies`     | UTC hour (8 bytes) ++ [`Tally`] byte               | count (u64 big-endian) |
//! | 7    | `webhooks`    | delivery id                                        | when it was processed  |
//! | 8    | `contacts`    | address (E.164 phone or lower-cased email)         | [`Contact`]            |
//! | 9    | `messages`    | `provider:message-id` (`twilio:SM…`)               | [`SentMessage`]        |
//! | 10   | `client_log`  | client id ++ 0x00 ++ sequence (u64 big-endian)     | [`ContactEvent`]       |
//! | 11   | `inbox`       | `provider:event-id`                                | [`InboxEntry`]         |
//! | 12   | `inbox_queue` | next attempt (8 bytes) ++ `provider:event-id`       | empty                  |
//! | 13   | `numbers`     | invoice number (`FV-1001`)                         | invoice id             |
//! | 14   | `probe`       | `write_probe` (rewritten by readiness probes)      | one byte               |
//! | 15   | `client_invoices` | client id ++ 0x00 ++ invoice id (schema 3)     | [`IndexLine`] (empty: written before lines) |
//! | 16   | `events`      | event id (creation time, 8 bytes ++ sequence, 8)   | [`OutboundEvent`]      |
//! | 17   | `events_index`| 0x00 ++ next attempt (8) ++ event id: pending; 0x01 ++ event id: failed | empty |
//! | 18   | `tasks`       | task id (creation time, 8 bytes ++ sequence, 8)    | [`Task`]               |
//! | 19   | `tasks_index` | 0x00 ++ task id; 0x01 ++ invoice id ++ 0x00 ++ task id; 0x02 ++ client id ++ 0x00 ++ task id: live tasks only | empty |
//!
//! Ids never contain 0x00 (`domain::ids`: `[A-Za-z0-9._:-]` only), so `id ++ 0x00` is a prefix
//! matching exactly one invoice's (or client's) entries.
//!
//! `client_invoices` is each client's invoice index, kept by the store itself, never by its
//! callers: writing an invoice that was not stored ([`Tx::create_invoice`], [`Tx::put_invoice`])
//! adds its entry, writing it under another client moves the entry, rewriting it under the
//! same client writes the entry again only when its [`IndexLine`] changed (the open balance
//! a statement shows: number, currency, balance, due date, payment link; or settled), so a
//! reminder's outcome writes no index key and a payment writes one.
//! [`Store::invoice_ids_of_client`] and [`Tx::invoice_ids_of_client`] read it (in invoice id
//! order), [`Store::invoice_lines_of_client_within`] reads it with its lines (a message's
//! statement: one range, no invoice record read), and [`Store::open_invoice_ids_of`] reads
//! the invoices it lists, so none scans every invoice. Entries written before the index kept
//! lines hold an empty value, read as [`IndexLine::Unknown`]: the statement reads those
//! invoices instead (a migration from schema 1 or 2 writes every line).
//!
//! `events` is the outbox of events out (`service::events`): a command that makes a change
//! writes the event reporting it ([`Tx::put_event`]: its record and one index entry), so both
//! are on disk together or not at all. The store keeps `events_index` in step with each
//! event's state: a pending event is due at its next attempt (the delivery worker reads
//! [`Store::events_due`]), a failed one is listed for [`Store::events`], a delivered one has no
//! entry. Neither slot changes an existing layout, so the schema stays 3 (a build without
//! events ignores them).
//!
//! `tasks` holds the calls and reviews people work (`service::tasks`); the store keeps
//! `tasks_index` in step with each task's state ([`Tx::put_task`]): a live (open or claimed)
//! task is in the queue ([`Store::live_tasks`]) and listed under its invoice and its client
//! ([`Tx::live_tasks_of_invoice`], [`Tx::live_tasks_of_client`]), a done or cancelled one is
//! not. Like the outbox, these slots change no existing layout: the schema stays 3.
//!
//! Times in keys are microseconds since the Unix epoch (rounded down), big-endian with the sign
//! bit flipped, so byte order is time order, also before 1970.
//!
//! Schema 2 was schema 3 without `client_invoices`; a schema-2 directory is migrated in place
//! when opened (the index is built from every invoice record, then the version switches to 3).
//! Schema 1 (releases before store v2) had one sled tree per kind, JSON values and a
//! `log_by_time` index instead of the tallies; a schema-1 directory is migrated to schema 2,
//! then to 3, in the same open. A directory with a newer schema is refused, untouched (see
//! `migrate.rs`).
//!
//! # Use
//!
//! ```no_run
//! # use plazo::store::{Store, StoreOptions, abort};
//! # fn demo(dir: &std::path::Path, inv: plazo::domain::Invoice) -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open(dir, StoreOptions::default())?;
//! let written: Result<(), &str> = store.transaction(|tx| {
//!     if tx.invoice(&inv.id)?.is_some() {
//!         return abort("already there");
//!     }
//!     tx.put_invoice(&inv)?;
//!     Ok(())
//! })?;
//! # Ok(()) }
//! ```
//!
//! On sled, every mutation is a command of the single writer (`writer.rs`): commands from all callers
//! join one batch, applied atomically, then flushed once. A command's writes are visible to
//! every reader when `transaction` (blocking threads) or `write` (async code) returns, but not
//! durable yet: `store.durable().await` waits for the flush of its batch (group commit).
//! `write_durable` (async code) returns once its batch is flushed: the flush answers it.

pub mod backend;
#[cfg(test)]
#[macro_use]
mod conformance;
mod event_routing;
mod fail;
mod health;
mod keys;
mod kv;
mod lines_version;
mod migrate;
mod ops;
mod overlay;
mod pg;
mod pg_backend;
mod records;
mod sled_backend;
mod sled_tx;
mod slot;
mod tally;
mod tx;
mod typed;
mod v1;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;

use crate::domain::{
    Attempt, Client, ClientId, Contact, ContactEvent, EventId, EventState, InboxEntry, IndexLine,
    Invoice, InvoiceId, OutboundEvent, Reminder, ReminderId, SentMessage, Task, TaskId,
};
pub use backend::DueEntry;
use backend::{Backend, CommandResult};
use event_routing::EventsSwitch;

pub use event_routing::EventRouting;
pub use health::FaultInjector;
/// A throwaway PostgreSQL server for tests (unit and integration); not part of the API.
#[doc(hidden)]
#[cfg(unix)]
pub use pg::sends::{
    ClaimedSend, DONE as SENDS_DONE_CHANNEL, QUEUED as SENDS_QUEUED_CHANNEL, SendQueue,
    SendQueueError, parse_done as parse_send_result,
};
pub use pg::testing as pg_testing;
pub use pg::{LeaderError, LeaderOptions, OnLost, default_node_name};
pub use pg_backend::PgBackend;
pub use sled_backend::SledBackend;
pub use tally::{Tallies, Tally};
pub use tx::{Tx, TxError, TxFail, abort};
pub use writer::{Ack, WriterStats};

/// The schema version this build of plazo reads and writes.
///
/// 1: one sled tree per record kind, JSON values. 2: one keyspace (`records`), every key
/// starting with its kind's slot byte, compact binary values with a version byte (`records`),
/// hourly tallies instead of a time index of the log. 3: schema 2 plus each client's invoice
/// index (slot 15, `client_invoices`). A schema-1 or schema-2 directory is migrated in place
/// when opened.
pub const SCHEMA_VERSION: u32 = 3;

const SCHEMA_KEY: &str = "schema_version";

/// The marker ([`Store::meta`]) of the one-time facts backfill
/// ([`backfill_facts_once`](crate::service::backfill_facts_once)): set once every client's
/// facts have been rebuilt from its invoices. A store created by this version holds it from
/// the start, since every client it will ever hold is written with its facts kept up to
/// date: only a data directory from before plazo kept facts runs the backfill.
pub const FACTS_BACKFILL_MARKER: &str = "facts_backfill";

/// How the store is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Upper bound of sled's page cache, in bytes (default 64 MiB). sled's own default is 1 GiB.
    pub cache_capacity_bytes: u64,
    /// sled's background flush interval in milliseconds. Default `None` (off): durability comes
    /// from [`Store::durable`] (group commit) and [`Store::flush_blocking`].
    pub flush_every_ms: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_capacity_bytes: 64 * 1024 * 1024,
            flush_every_ms: None,
        }
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A sled error without more context.
    #[error("store error: {0}")]
    Sled(#[from] sled::Error),
    /// A sled error during a named operation.
    #[error("store operation `{op}` failed: {source}")]
    Storage {
        /// What the store was doing.
        op: &'static str,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// The database could not be opened.
    #[error(
        "cannot open the store at {}: {source} (is another plazo process using this directory?)",
        path.display()
    )]
    Open {
        /// The store directory.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// A record failed to decode. Records are never skipped silently.
    #[error(
        "corrupt record in tree `{tree}` at key {key}: {reason}. Restore the store from a backup, \
         or remove the record if you know it is safe to lose"
    )]
    Corrupt {
        /// The tree holding the record.
        tree: &'static str,
        /// The record's key (text, or hex for binary keys).
        key: String,
        /// What failed to decode.
        reason: String,
    },
    /// A record could not be encoded (a bug: domain types always serialise).
    #[error("cannot encode record for tree `{tree}` at key {key}: {reason}")]
    Encode {
        /// The tree.
        tree: &'static str,
        /// The record's key.
        key: String,
        /// The serialiser's message.
        reason: String,
    },
    /// The store was written by a different version of plazo.
    #[error(
        "the store has schema version {found} but this plazo uses version {expected}: run a plazo \
         release that uses schema {found}, or restore a backup made with this release"
    )]
    SchemaMismatch {
        /// Version found on disk.
        found: u32,
        /// Version this build uses.
        expected: u32,
    },
    /// A file-system error (creating the store directory, starting the flusher thread).
    #[error("store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The flusher thread is gone, so durability cannot be confirmed.
    #[error("the store's flusher thread stopped; writes may not be durable")]
    FlusherStopped,
    /// The database is being reopened after a write failure (see [`Store::health`]).
    #[error("the store is reopening after a write failure; retry in a moment")]
    Reopening,
    /// The store was closed ([`Store::close`]: plazo is shutting down).
    #[error("the store is closed: plazo is shutting down")]
    Closed,
    /// A storage backend broke the [`Backend`] contract (a bug in that backend).
    #[error("the {backend} storage backend broke its contract: {what}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// What it did wrong.
        what: &'static str,
    },
    /// This node could not become the leader of its PostgreSQL database (see
    /// `store::pg::leader`).
    #[error("{0}")]
    Leadership(#[from] pg::LeaderError),
    /// A consistent read of several records kept seeing one of them change.
    #[error("{what} kept changing while it was read; retry in a moment")]
    Contended {
        /// What was being read.
        what: String,
    },
}

impl StoreError {
    /// Whether this is a failure of the database itself (I/O, flush), as opposed to a bad
    /// record or a schema mismatch: such a failure starts the store's self-recovery.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Sled(_) | StoreError::Storage { .. } | StoreError::FlusherStopped
        )
    }

    /// Whether the same write may succeed later, once the store has recovered by itself: a
    /// storage failure, or the store being reopened after one.
    pub fn is_temporary(&self) -> bool {
        self.is_storage_failure()
            || matches!(self, StoreError::Reopening | StoreError::Contended { .. })
    }
}

/// The store: a cheap, cloneable handle on a storage [`Backend`] (sled by default). Clones
/// share everything.
///
/// Reads are synchronous; call them from async code through `spawn_blocking` when they may scan
/// a lot. Writes are commands: [`Store::transaction`] (blocking threads) and [`Store::write`]
/// (async code); [`Store::durable`] waits until they are on disk, and [`Store::write_durable`]
/// returns once its own command is.
///
/// A write or flush that fails (a full disk, an I/O error) marks the store unhealthy
/// ([`Store::health`]); the sled backend then recovers by itself once it can write again.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    /// The outbox's routing (off until [`Store::enable_events`]) and its wake-up signal.
    events: Arc<EventsSwitch>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Store {
    /// Opens the sled store in `dir`, creating the directory and a new database if needed.
    ///
    /// A new database gets schema version [`SCHEMA_VERSION`]; a schema-1 or schema-2 one is
    /// migrated in place; a newer one is refused with [`StoreError::SchemaMismatch`], nothing
    /// written.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        Ok(Store::with_backend(Arc::new(SledBackend::open(dir, opts)?)))
    }

    /// A store on `backend`.
    pub fn with_backend(backend: Arc<dyn Backend>) -> Store {
        Store {
            backend,
            events: Arc::default(),
        }
    }

    /// The backend's name (`sled`).
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// The fencing epoch under which this node leads its PostgreSQL database (it rises by one
    /// at every takeover); `None` on sled.
    pub fn leader_epoch(&self) -> Option<i64> {
        self.backend.leader_epoch()
    }

    /// Batches the PostgreSQL database rolled back for a conflict (serialization failure,
    /// deadlock) and this node ran again; `None` on sled.
    pub fn conflict_retries(&self) -> Option<u64> {
        self.backend.conflict_retries()
    }

    /// The backend, for its own white-box tests.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// `Err(reason)` while the store cannot write (a write or flush failed and the store has
    /// not recovered yet); `/readyz` reports it.
    pub fn health(&self) -> Result<(), String> {
        self.backend.health()
    }

    /// Writes a probe value and waits until it is durable: whether the store can write now.
    /// A failure marks the store unhealthy, like any failed write. A probe that succeeded less
    /// than a second ago answers for the ones that follow, unless a write has failed since.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.backend.probe().await
    }

    /// The fault-injection seam (tests): makes writes and flushes fail until cleared.
    pub fn faults(&self) -> FaultInjector {
        self.backend.faults()
    }

    /// The client `id`, if stored.
    pub fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        self.backend.client(id)
    }

    /// The invoice `id`, if stored.
    pub fn invoice(&self, id: &InvoiceId) -> Result<Option<Invoice>, StoreError> {
        self.backend.invoice(id)
    }

    /// Ids of the invoices of `client`, open or not, in invoice id (byte) order. Reads the
    /// client's invoice index (kept by the store whenever an invoice is written), so it costs
    /// one entry per invoice of the client, not a scan of every invoice.
    pub fn invoice_ids_of_client(&self, client: &ClientId) -> Result<Vec<InvoiceId>, StoreError> {
        self.backend.invoice_ids_of_client(client)
    }

    /// The version of `client`'s invoice-index lines: it changes whenever a batch that wrote
    /// one of them is applied. Take it *before* reading the lines
    /// ([`Store::invoice_lines_of_client_within`]); lines cached under a version that is still
    /// current are up to date.
    pub fn client_lines_version(&self, client: &ClientId) -> u64 {
        lines_version::current(client)
    }

    /// Every entry of the client's invoice index, in invoice id (byte) order, each with what
    /// the index keeps of the invoice: its open balance as a statement lists it
    /// ([`IndexLine::Open`]), [`IndexLine::Settled`], or [`IndexLine::Unknown`] for an entry
    /// written before the index kept lines (read the invoice then). `None` when the client has
    /// more than `max` invoices: then `max + 1` entries are read and none is decoded. A
    /// message's statement reads this one range instead of every invoice of the client.
    pub fn invoice_lines_of_client_within(
        &self,
        client: &ClientId,
        max: usize,
    ) -> Result<Option<Vec<(InvoiceId, IndexLine)>>, StoreError> {
        self.backend.invoice_lines_of_client_within(client, max)
    }

    /// Ids of the invoices of `client` that are still open, in invoice id (byte) order: the
    /// client's invoice index, then each of its invoices (O(invoices of the client)).
    pub fn open_invoice_ids_of(&self, client: &ClientId) -> Result<Vec<InvoiceId>, StoreError> {
        self.backend.open_invoice_ids_of(client)
    }

    /// Up to `limit` client ids in ascending id (byte) order, after `after` (exclusive;
    /// `None`: from the first client). Keyset pagination: pass the last id of a page to get
    /// the next page; an empty or short page ends the walk. Only clients are listed.
    ///
    /// Each page is read anew, so a walk runs alongside writes: no id is listed twice, every
    /// client that exists for the whole walk is listed once, and a client created meanwhile is
    /// listed when its id sorts after the page being read. Reads only the ids (no record is
    /// decoded); call it from a blocking thread.
    pub fn client_ids_after(
        &self,
        after: Option<&ClientId>,
        limit: usize,
    ) -> Result<Vec<ClientId>, StoreError> {
        self.backend.client_ids_after(after, limit)
    }

    /// Up to `limit` invoice ids in ascending id (byte) order after `after` (exclusive): pages
    /// over every invoice, like [`Store::client_ids_after`] over clients. Reads only the ids;
    /// call it from a blocking thread.
    pub fn invoice_ids_after(
        &self,
        after: Option<&InvoiceId>,
        limit: usize,
    ) -> Result<Vec<InvoiceId>, StoreError> {
        self.backend.invoice_ids_after(after, limit)
    }

    /// Up to `limit` due-index entries firing in `from..to`, in firing order, after `after`
    /// (exclusive): the reminders planned in a time range, a page at a time.
    pub fn due_entries(
        &self,
        from: Timestamp,
        to: Timestamp,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError> {
        self.backend.due_entries(from, to, after, limit)
    }

    /// The value stored under `key` in the store's own metadata, if any: markers of one-time
    /// passes over the data (the facts backfill). A namespace of its own: the backend's
    /// internal keys (the schema version) cannot be read or overwritten through it.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.meta(key)
    }

    /// Stores `value` under `key` in the store's own metadata (see [`Store::meta`]) and
    /// returns once it is durable, along with every command applied before the call (a marker
    /// set after a pass is never on disk without the pass's writes). Blocks.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.backend.put_meta(key, value)
    }

    /// The reminder `id` of `invoice`, if stored: the claimed copy while it is in flight,
    /// else the copy kept with the invoice (reminders cancelled before any send attempt are
    /// not kept).
    pub fn reminder(
        &self,
        invoice: &InvoiceId,
        id: &ReminderId,
    ) -> Result<Option<Reminder>, StoreError> {
        self.backend.reminder(invoice, id)
    }

    /// What is known about `address` (normalised with [`Contact::normalize`]), if anything.
    pub fn contact(&self, address: &str) -> Result<Option<Contact>, StoreError> {
        self.backend.contact(address)
    }

    /// The message `provider_message_id` sent through `provider`, if recorded.
    pub fn sent_message(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SentMessage>, StoreError> {
        self.backend.sent_message(provider, provider_message_id)
    }

    /// The received payment event `key` (`provider:event-id`), if any.
    pub fn inbox_entry(&self, key: &str) -> Result<Option<InboxEntry>, StoreError> {
        self.backend.inbox_entry(key)
    }

    /// Keys of the payment events still to process, with when each is next due, earliest first
    /// (a scan of the whole queue: for tests and reports; the processor uses
    /// [`Store::inbox_due`]).
    pub fn inbox_queue(&self) -> Result<Vec<(String, Timestamp)>, StoreError> {
        self.backend.inbox_queue()
    }

    /// Up to `limit` keys of the payment events due at `now`, earliest first: reads only those.
    pub fn inbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        self.backend.inbox_due(now, limit)
    }

    /// When the earliest queued payment event is due, if any.
    pub fn inbox_next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.backend.inbox_next_due()
    }

    /// Every received payment event, in key order (for reports; a scan).
    pub fn inbox_entries(&self) -> Result<Vec<InboxEntry>, StoreError> {
        self.backend.inbox_entries()
    }

    /// The client's own timeline (inbound messages, opt-outs), oldest first.
    pub fn client_timeline(&self, client: &ClientId) -> Result<Vec<ContactEvent>, StoreError> {
        self.backend.client_timeline(client)
    }

    /// Everything logged on `invoice`, oldest first (by `at`; ties in the order logged), headed
    /// by the line its creation logged.
    pub fn timeline(&self, invoice: &InvoiceId) -> Result<Vec<Attempt>, StoreError> {
        self.backend.timeline(invoice)
    }

    /// An invoice with its timeline and the reminder its `pending` slot names, read as one
    /// consistent view.
    ///
    /// The writer applies each batch atomically, but a batch may be applied between two reads
    /// (the dispatcher recording a step and planning the next one; a payment closing the
    /// invoice and cancelling its reminder). So the invoice is read first and again last, and
    /// the view is read anew while it changed: every batch that touches the chase changes
    /// the invoice, so `pending` names the reminder returned, in the state that batch left it,
    /// and the timeline holds every line written with it.
    pub fn invoice_view(&self, id: &InvoiceId) -> Result<Option<InvoiceView>, StoreError> {
        for _ in 0..VIEW_READ_TRIES {
            let Some(invoice) = self.invoice(id)? else {
                return Ok(None);
            };
            let timeline = self.timeline(id)?;
            let next_reminder = match invoice.pending {
                Some(rid) => self.reminder(id, &rid)?,
                None => None,
            };
            if self.invoice(id)?.as_ref() == Some(&invoice) {
                return Ok(Some(InvoiceView {
                    invoice,
                    timeline,
                    next_reminder,
                }));
            }
            std::thread::yield_now();
        }
        Err(StoreError::Contended {
            what: format!("invoice {id}"),
        })
    }

    /// When the earliest reminder in the due index fires (microsecond precision), if any.
    pub fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.backend.next_due()
    }

    /// Claims the reminders due at `now`, earliest first, at most `limit` due entries.
    ///
    /// In one command, every due entry taken (fire time `<= now`, to the microsecond) is
    /// removed. When its reminder is `Scheduled` (or `AwaitingReceipt`) and still due at that
    /// time, it becomes `Claimed`, joins the in-flight set and is returned. An entry whose
    /// reminder is missing, not waiting, or scheduled at another time is stale and just
    /// removed. Concurrent callers never claim the same entry twice (one of them may get fewer
    /// than `limit`). Blocks: async callers use [`Store::claim_due_async`].
    pub fn claim_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        self.backend.claim_due(now, limit)
    }

    /// [`Store::claim_due`] for async callers: the claim runs on the backend's writer, so no
    /// async worker thread ever blocks on it.
    pub async fn claim_due_async(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        self.backend.claim_due_async(now, limit).await
    }

    /// Reminders claimed by [`Store::claim_due`] and not yet [`Tx::finish`]ed: after a crash,
    /// these may or may not have gone out.
    pub fn in_flight(&self) -> Result<Vec<Reminder>, StoreError> {
        self.backend.in_flight()
    }

    /// Waits until everything written before this call is on disk (group commit: concurrent
    /// callers share flushes).
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.backend.durable().await
    }

    /// What the writer has done since this instance opened (for tests and benchmarks).
    pub fn writer_stats(&self) -> Result<WriterStats, StoreError> {
        self.backend.writer_stats()
    }

    /// Flushes to disk on the calling thread (blocking).
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.backend.flush_blocking()
    }

    /// Clean shutdown: makes everything durable and closes the store so that the next open is
    /// fast (on sled, it brings the snapshot up to date: a start then replays nothing, however
    /// much was written since the last one). Every clone of this store fails afterwards.
    /// Blocks; call it once nothing else uses the store.
    pub fn close(&self) -> Result<(), StoreError> {
        self.backend.close()
    }

    /// Runs `f` as one atomic command, on the calling thread, and returns once its writes are
    /// applied (every reader sees them). Blocks: call it from a blocking thread
    /// (`spawn_blocking`), or use [`Store::write`] from async code.
    ///
    /// Returns `Ok(Ok(t))` when `f` committed, `Ok(Err(e))` when `f` aborted with
    /// [`TxError::Abort`] (nothing written), and `Err(_)` on a store failure, including a record
    /// that failed to decode ([`StoreError::Corrupt`]). `f` runs exactly once: there are no
    /// conflicts, since one writer applies every command in turn.
    ///
    /// Not durable on return: await [`Store::durable`] before acknowledging. `f` runs while the
    /// writer's lock is held, so it must be short and must not call `Store`'s writing methods
    /// (they would wait for it forever); read what you need through `tx`.
    pub fn transaction<T, E>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, TxError<E>>,
    ) -> Result<Result<T, E>, StoreError> {
        let mut f = Some(f);
        let mut out = None;
        let mut routing = self.event_routing();
        let mut wrote_events = false;
        let mut cmd = |tx: &mut Tx<'_>| match f.take() {
            Some(f) => {
                tx.set_events(routing.take());
                let r = run_command(f, tx, &mut out);
                wrote_events = r.is_ok() && tx.wrote_events();
                r
            }
            None => Ok(()),
        };
        self.backend.exec(&mut cmd)?;
        if wrote_events {
            self.events.written.notify_one();
        }
        out.ok_or(StoreError::Backend {
            backend: self.backend.name(),
            what: "a command returned without running",
        })
    }

    /// Runs `f` as one atomic command on the backend's writer and resolves once its writes are
    /// applied; nothing runs on the calling async task's thread. The async twin of
    /// [`Store::transaction`]; await [`Store::durable`] before acknowledging, or use
    /// [`Store::write_durable`].
    ///
    /// A panic inside `f` is resumed in the caller.
    pub async fn write<T, E>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, TxError<E>> + Send + 'static,
    ) -> Result<Result<T, E>, StoreError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        self.write_acked(Ack::Applied, f).await
    }

    /// [`Store::write`] that resolves once the command's writes are on disk: what a caller
    /// acknowledges a request with. The same as `write` then [`Store::durable`], with one
    /// wake-up of the caller instead of two (the flush that covers the command answers it).
    pub async fn write_durable<T, E>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, TxError<E>> + Send + 'static,
    ) -> Result<Result<T, E>, StoreError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        self.write_acked(Ack::Durable, f).await
    }

    /// [`Store::write`] answered as `ack` says.
    pub async fn write_acked<T, E>(
        &self,
        ack: Ack,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, TxError<E>> + Send + 'static,
    ) -> Result<Result<T, E>, StoreError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let slot = Arc::new(std::sync::Mutex::new(None));
        let filled = slot.clone();
        let routing = self.event_routing();
        let wrote = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let wrote_events = wrote.clone();
        self.backend
            .submit(
                Box::new(move |tx: &mut Tx<'_>| {
                    let mut out = None;
                    tx.set_events(routing);
                    let r = run_command(f, tx, &mut out);
                    if r.is_ok() && tx.wrote_events() {
                        wrote_events.store(true, std::sync::atomic::Ordering::Release);
                    }
                    *filled
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = out;
                    r
                }),
                ack,
            )
            .await?;
        if wrote.load(std::sync::atomic::Ordering::Acquire) {
            self.events.written.notify_one();
        }
        let out = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        out.ok_or(StoreError::Backend {
            backend: self.backend.name(),
            what: "a command returned without running",
        })
    }

    /// Number of entries in the due index (a scan: O(n)).
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        self.backend.pending_count()
    }

    /// Forgets webhook deliveries processed before `older_than`; returns how many. An id
    /// marked again meanwhile (a newer time) is kept.
    pub fn prune_webhooks(&self, older_than: Timestamp) -> Result<usize, StoreError> {
        self.backend.prune_webhooks(older_than)
    }

    /// The tallies of the lines logged in the UTC hours that start in `from..to`: the hour
    /// holding `from` counts whole, the hour starting at `to` does not (for the daily digest,
    /// to the hour).
    pub fn tallies(&self, from: Timestamp, to: Timestamp) -> Result<Tallies, StoreError> {
        self.backend.tallies(from, to)
    }

    /// Bytes the database uses on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.backend.size_on_disk()
    }

    /// Turns the events outbox on for this store and every clone of it: from now on, commands
    /// see `routing` through [`Tx::events`] and record the events it asks for (see
    /// `service::events`). Set once (the daemon does it at start from `[events]`); false if
    /// it was already on, leaving the first routing in force.
    pub fn enable_events(&self, routing: EventRouting) -> bool {
        self.events.routing.set(Arc::new(routing)).is_ok()
    }

    /// The outbox's routing, when it is on.
    pub fn event_routing(&self) -> Option<Arc<EventRouting>> {
        self.events.routing.get().cloned()
    }

    /// Notified after a command that wrote an event due at once has been applied (the
    /// delivery worker waits on it).
    pub fn events_written(&self) -> &tokio::sync::Notify {
        &self.events.written
    }

    /// The outbound event `id`, if stored.
    pub fn event(&self, id: &EventId) -> Result<Option<OutboundEvent>, StoreError> {
        self.backend.event(id)
    }

    /// Up to `limit` pending events due at `now`, earliest due first: reads only those.
    pub fn events_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboundEvent>, StoreError> {
        self.backend.events_due(now, limit)
    }

    /// When the earliest pending event is due, if any.
    pub fn events_next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.backend.events_next_due()
    }

    /// Up to `limit` events in `state` (any state: `None`), newest first.
    pub fn events(
        &self,
        state: Option<EventState>,
        limit: usize,
    ) -> Result<Vec<OutboundEvent>, StoreError> {
        self.backend.events(state, limit)
    }

    /// Forgets delivered events created before `older_than` (pending and failed ones stay);
    /// returns how many.
    pub fn prune_events(&self, older_than: Timestamp) -> Result<usize, StoreError> {
        self.backend.prune_events(older_than)
    }

    /// The task `id`, if stored.
    pub fn task(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        self.backend.task(id)
    }

    /// Every live (open or claimed) task, oldest first: reads only those.
    pub fn live_tasks(&self) -> Result<Vec<Task>, StoreError> {
        self.backend.live_tasks()
    }

    /// Up to `limit` tasks of any state, newest first.
    pub fn recent_tasks(&self, limit: usize) -> Result<Vec<Task>, StoreError> {
        self.backend.recent_tasks(limit)
    }
}

/// Runs the caller's command `f` and sets its result aside in `out`, so the backend sees only
/// whether to keep the writes.
fn run_command<T, E>(
    f: impl FnOnce(&mut Tx<'_>) -> Result<T, TxError<E>>,
    tx: &mut Tx<'_>,
    out: &mut Option<Result<T, E>>,
) -> CommandResult {
    match f(tx) {
        Ok(t) => {
            *out = Some(Ok(t));
            Ok(())
        }
        Err(TxError::Abort(e)) => {
            *out = Some(Err(e));
            Err(TxError::Abort(()))
        }
        Err(TxError::Conflict(fail)) => Err(TxError::Conflict(fail)),
    }
}

/// How many times [`Store::invoice_view`] reads again while batches keep changing the invoice
/// (one batch is applied every flush, about a millisecond: a few tries are the most seen).
const VIEW_READ_TRIES: usize = 1000;

/// An invoice, its timeline and its next planned reminder, read together.
#[derive(Debug, Clone)]
pub struct InvoiceView {
    /// The invoice.
    pub invoice: Invoice,
    /// Its timeline, oldest first.
    pub timeline: Vec<Attempt>,
    /// The reminder its `pending` slot names, if any.
    pub next_reminder: Option<Reminder>,
}
