//! Durable state in sled: typed trees, key codecs, one batching writer for every mutation, the
//! due index, the communication log and group-commit durability.
//!
//! # Layout
//!
//! Schema 2 ([`SCHEMA_VERSION`]). The sled tree `meta` holds `schema_version` (u32,
//! big-endian). Every record lives in one sled tree, `records` (the keyspace), under a key that
//! starts with its kind's slot byte (`tx::slot`), so one atomic `apply_batch` writes a whole
//! batch of commands. Values are compact binary records with a version byte (`records`).
//!
//! | slot | kind          | key (after the slot byte)                          | value                  |
//! |------|---------------|----------------------------------------------------|------------------------|
//! | 0    | `clients`     | client id                                          | [`Client`]             |
//! | 1    | `invoices`    | invoice id                                         | [`Invoice`]            |
//! | 2    | `reminders`   | reminder id (16 bytes)                             | [`Reminder`]           |
//! | 3    | `due`         | fire time (8 bytes) ++ reminder id (16 bytes)      | empty                  |
//! | 4    | `inflight`    | reminder id                                        | empty                  |
//! | 5    | `log`         | invoice id ++ 0x00 ++ sequence (u64 big-endian)    | [`Attempt`]            |
//! | 6    | `tallies`     | UTC hour (8 bytes) ++ [`Tally`] byte               | count (u64 big-endian) |
//! | 7    | `webhooks`    | delivery id                                        | when it was processed  |
//! | 8    | `contacts`    | address (E.164 phone or lower-cased email)         | [`Contact`]            |
//! | 9    | `messages`    | `provider:message-id` (`twilio:SM…`)               | [`SentMessage`]        |
//! | 10   | `client_log`  | client id ++ 0x00 ++ sequence (u64 big-endian)     | [`ContactEvent`]       |
//! | 11   | `inbox`       | `provider:event-id`                                | [`InboxEntry`]         |
//! | 12   | `inbox_queue` | next attempt (8 bytes) ++ `provider:event-id`       | empty                  |
//! | 13   | `numbers`     | invoice number (`FV-1001`)                         | invoice id             |
//!
//! Times in keys are microseconds since the Unix epoch (rounded down), big-endian with the sign
//! bit flipped, so byte order is time order, also before 1970.
//!
//! Schema 1 (releases before store v2) had one sled tree per kind, JSON values and a
//! `log_by_time` index instead of the tallies; a schema-1 directory is migrated when opened.
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
//! Every mutation is a command of the single writer (`writer.rs`): commands from all callers
//! join one batch, applied atomically, then flushed once. A command's writes are visible to
//! every reader when `transaction` (blocking threads) or `write` (async code) returns, but not
//! durable yet: `store.durable().await` waits for the flush of its batch (group commit).

mod durability;
mod fail;
mod health;
mod keys;
// Wired into `open_inner` by the store-v2 work; until then only its tests use it.
mod migrate;
mod records;
mod tally;
mod tx;
mod typed;
mod v1;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use jiff::Timestamp;

use crate::domain::{
    Attempt, Client, ClientId, Contact, ContactEvent, InboxEntry, Invoice, InvoiceId, Reminder,
    ReminderId, ReminderState, SentMessage,
};
use durability::GroupCommit;
use health::Health;
use keys::{
    ClientLogKey, DueKey, HourKey, InflightKey, KeyCodec, LogKey, MetaKey, QueueKey, TextKey,
    WebhookKey, micros,
};
use records::InvoiceRecord;
use tx::slot;
use typed::TypedTree;

pub use health::FaultInjector;
pub use tally::{Tallies, Tally};
pub use tx::{Tx, TxError, TxFail, abort};
use writer::Writer;
pub use writer::WriterStats;

/// The schema version this build of plazo reads and writes.
///
/// 1: one sled tree per record kind, JSON values. 2: one keyspace (`records`), every key
/// starting with its kind's slot byte, compact binary values with a version byte (`records`),
/// hourly tallies instead of a time index of the log. A schema-1 directory is migrated in
/// place when opened.
pub const SCHEMA_VERSION: u32 = 2;

const SCHEMA_KEY: &str = "schema_version";

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

/// Name of the sled tree holding every record (schema 2): the keyspace.
const KEYSPACE: &str = "records";

/// Every logical tree, opened once: `meta` is a sled tree of its own; the others are slices of
/// the keyspace, each under its slot byte (see `tx::slot`).
struct Trees {
    meta: TypedTree<MetaKey, u32>,
    keyspace: sled::Tree,
    clients: TypedTree<ClientId, Client>,
    invoices: TypedTree<InvoiceId, InvoiceRecord>,
    due: TypedTree<DueKey, ()>,
    inflight: TypedTree<InflightKey, Reminder>,
    log: TypedTree<LogKey, Attempt>,
    tallies: TypedTree<HourKey, u64>,
    webhooks: TypedTree<WebhookKey, Timestamp>,
    contacts: TypedTree<TextKey, Contact>,
    messages: TypedTree<TextKey, SentMessage>,
    client_log: TypedTree<ClientLogKey, ContactEvent>,
    inbox: TypedTree<TextKey, InboxEntry>,
    inbox_queue: TypedTree<QueueKey, ()>,
}

impl Trees {
    fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let ks = db
            .open_tree(KEYSPACE)
            .map_err(|source| StoreError::Storage {
                op: "open keyspace",
                source,
            })?;
        Ok(Trees {
            meta: TypedTree::open(db, "meta")?,
            clients: TypedTree::in_keyspace(&ks, slot::CLIENTS, "clients"),
            invoices: TypedTree::in_keyspace(&ks, slot::INVOICES, "invoices"),
            due: TypedTree::in_keyspace(&ks, slot::DUE, "due"),
            inflight: TypedTree::in_keyspace(&ks, slot::INFLIGHT, "inflight"),
            log: TypedTree::in_keyspace(&ks, slot::LOG, "log"),
            tallies: TypedTree::in_keyspace(&ks, slot::TALLIES, "tallies"),
            webhooks: TypedTree::in_keyspace(&ks, slot::WEBHOOKS, "webhooks"),
            contacts: TypedTree::in_keyspace(&ks, slot::CONTACTS, "contacts"),
            messages: TypedTree::in_keyspace(&ks, slot::MESSAGES, "messages"),
            client_log: TypedTree::in_keyspace(&ks, slot::CLIENT_LOG, "client_log"),
            inbox: TypedTree::in_keyspace(&ks, slot::INBOX, "inbox"),
            inbox_queue: TypedTree::in_keyspace(&ks, slot::INBOX_QUEUE, "inbox_queue"),
            keyspace: ks,
        })
    }
}

/// Whether the database holds no record at all, in either schema's layout (a new database).
fn records_empty(db: &sled::Db, trees: &Trees) -> bool {
    let only_own_trees = db.tree_names().iter().all(|name| {
        let name = name.as_ref();
        name == b"__sled__default" || name == b"meta" || name == KEYSPACE.as_bytes()
    });
    only_own_trees && trees.keyspace.is_empty()
}

/// One opened instance of the database.
struct Inner {
    // Field order matters for drop: the writer and flusher threads (holding `Db` clones) are
    // joined first.
    /// Applies every mutation, in batches.
    writer: Writer,
    /// Flushes on demand for writes made outside the writer (probes).
    commit: GroupCommit,
    trees: Trees,
    db: sled::Db,
    /// Which instance this is: 0 at open, +1 per reopen.
    generation: u64,
}

/// What every clone of a store shares.
struct Shared {
    dir: PathBuf,
    opts: StoreOptions,
    /// The instance in use; `None` only while it is being reopened.
    current: RwLock<Option<Arc<Inner>>>,
    /// Generation of the instance in use.
    generation: AtomicU64,
    health: Health,
    faults: FaultInjector,
    /// When a readiness probe last proved the store can write: probes within
    /// [`PROBE_FRESH`] of it share that result, so a burst of `/readyz` calls (an open
    /// endpoint) costs one durable write, not one each.
    last_probe: tokio::sync::Mutex<Option<std::time::Instant>>,
}

/// The store: a handle on the sled database. Cheap to clone; clones share everything.
///
/// Methods are synchronous (sled is); call them from async code through `spawn_blocking` when
/// they may scan a lot. [`Store::durable`] and [`Store::probe`] are the async methods.
///
/// A write or flush that fails (a full disk, an I/O error) marks the store unhealthy
/// ([`Store::health`]) and starts its self-recovery: once the directory accepts writes again
/// the database is reopened in place, without a restart (see `health.rs`).
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

/// Opens one instance of the database in `dir` and checks its schema version.
fn open_inner(
    dir: &Path,
    opts: &StoreOptions,
    faults: &FaultInjector,
    generation: u64,
) -> Result<Inner, StoreError> {
    std::fs::create_dir_all(dir)?;
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(opts.cache_capacity_bytes)
        .flush_every_ms(opts.flush_every_ms);
    // sled's file lock is released by its background threads shortly after the previous
    // handle is dropped (a restart in the same process, or a process still exiting):
    // wait for it for up to two seconds before reporting the directory as in use.
    let mut tries = 0;
    let db = loop {
        match config.open() {
            Ok(db) => break db,
            Err(sled::Error::Io(e))
                if tries < 40 && e.to_string().contains("could not acquire lock") =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    };
    let key = MetaKey(SCHEMA_KEY.to_owned());
    // A newer schema is refused before anything is created or written.
    let meta: TypedTree<MetaKey, u32> = TypedTree::open(&db, "meta")?;
    if let Some(found) = meta.get(&key, "read schema version")? {
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaMismatch {
                found,
                expected: SCHEMA_VERSION,
            });
        }
    }
    // Schema 1 (one tree per kind, JSON) is migrated in place; a migration cut short after its
    // switch left old trees behind, dropped now.
    migrate::migrate(&db, dir)?;
    migrate::drop_leftover_v1_trees(&db)?;
    let trees = Trees::open(&db)?;
    match trees.meta.get(&key, "read schema version")? {
        Some(found) if found == SCHEMA_VERSION => {}
        Some(found) => {
            return Err(StoreError::SchemaMismatch {
                found,
                expected: SCHEMA_VERSION,
            });
        }
        None if records_empty(&db, &trees) => {
            faults.check().map_err(|source| StoreError::Storage {
                op: "write schema version",
                source,
            })?;
            trees
                .meta
                .insert(&key, &SCHEMA_VERSION, "write schema version")?;
            db.flush().map_err(|source| StoreError::Storage {
                op: "flush",
                source,
            })?;
        }
        None => {
            return Err(StoreError::Corrupt {
                tree: "meta",
                key: SCHEMA_KEY.to_owned(),
                reason: "the schema version is missing but the store holds records".into(),
            });
        }
    }
    let commit = GroupCommit::start(db.clone(), faults.clone())?;
    let writer = Writer::start(db.clone(), trees.keyspace.clone(), faults.clone())?;
    Ok(Inner {
        writer,
        commit,
        trees,
        db,
        generation,
    })
}

/// Key of the value rewritten by probes (readiness, recovery).
const PROBE_KEY: &str = "write_probe";

/// How long a successful readiness probe stands for the next ones.
const PROBE_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

impl Inner {
    /// Writes the probe key and flushes: proves this instance can write.
    fn probe_blocking(&self, faults: &FaultInjector) -> Result<(), StoreError> {
        faults.check().map_err(|source| StoreError::Storage {
            op: "probe write",
            source,
        })?;
        self.trees
            .meta
            .insert(&MetaKey(PROBE_KEY.to_owned()), &0, "probe write")?;
        self.db.flush().map_err(|source| StoreError::Storage {
            op: "flush",
            source,
        })?;
        Ok(())
    }
}

/// Longest wait, during a reopen, for operations still using the old instance.
const DRAIN_OLD_INSTANCE: Duration = Duration::from_secs(2);

impl Shared {
    /// Reopens the database if its directory accepts writes again; the new instance must pass
    /// a probe write before it is used.
    fn try_reopen(&self) -> Result<(), StoreError> {
        health::directory_writable(&self.dir, &self.faults)?;
        let old = self
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let generation = match &old {
            Some(inner) => inner.generation + 1,
            None => self.generation.load(Ordering::SeqCst) + 1,
        };
        if let Some(old) = old {
            // Operations holding the old instance finish (they fail fast on its latched error).
            let mut waited = Duration::ZERO;
            while Arc::strong_count(&old) > 1 && waited < DRAIN_OLD_INSTANCE {
                std::thread::sleep(Duration::from_millis(5));
                waited += Duration::from_millis(5);
            }
            drop(old);
        }
        let inner = open_inner(&self.dir, &self.opts, &self.faults, generation)?;
        inner.probe_blocking(&self.faults)?;
        self.generation.store(generation, Ordering::SeqCst);
        self.health.recovered();
        self.health.recovery_ended();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(inner));
        Ok(())
    }
}

/// Retries [`Shared::try_reopen`] with backoff until it works or the store is dropped.
fn recover(weak: &Weak<Shared>) {
    let mut attempt = 0u32;
    loop {
        std::thread::sleep(health::retry_delay(attempt));
        attempt = attempt.saturating_add(1);
        let Some(shared) = weak.upgrade() else {
            return;
        };
        match shared.try_reopen() {
            Ok(()) => {
                tracing::warn!(
                    attempts = attempt,
                    "the store writes again: reopened the database after a write failure"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(attempt, error = %e, "the store still cannot write; retrying");
            }
        }
    }
}

impl Store {
    /// Opens the store in `dir`, creating the directory and a new database if needed.
    ///
    /// A new database gets schema version [`SCHEMA_VERSION`]; an existing one with another
    /// version is refused with [`StoreError::SchemaMismatch`].
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        let faults = FaultInjector::default();
        let inner = open_inner(dir, &opts, &faults, 0)?;
        Ok(Store {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                opts,
                current: RwLock::new(Some(Arc::new(inner))),
                generation: AtomicU64::new(0),
                health: Health::default(),
                faults,
                last_probe: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The instance in use.
    fn inner(&self) -> Result<Arc<Inner>, StoreError> {
        self.shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(StoreError::Reopening)
    }

    /// Passes `r` through; a storage failure of the instance in use marks the store
    /// unhealthy and starts its recovery (once).
    fn observe<T>(&self, inner: &Inner, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &r {
            let current = inner.generation == self.shared.generation.load(Ordering::SeqCst);
            if e.is_storage_failure() && current {
                tracing::error!(error = %e, "store write failed; the store reports unready and will reopen itself once it can write");
                if self.shared.health.fail(e.to_string()) {
                    let weak = Arc::downgrade(&self.shared);
                    let spawned = std::thread::Builder::new()
                        .name("plazo-store-recover".into())
                        .spawn(move || recover(&weak));
                    if let Err(err) = spawned {
                        tracing::error!(error = %err, "cannot start the store's recovery thread");
                        self.shared.health.recovery_ended();
                    }
                }
            }
        }
        r
    }

    /// `Err(reason)` while the store cannot write (a write or flush failed and the store has
    /// not recovered yet); `/readyz` reports it.
    pub fn health(&self) -> Result<(), String> {
        self.shared.health.status()?;
        self.inner().map(|_| ()).map_err(|e| e.to_string())
    }

    /// Writes a probe value and waits until it is durable: whether the store can write now.
    /// A failure marks the store unhealthy, like any failed write.
    ///
    /// Probes run one at a time, and a probe that succeeded less than a second ago answers for
    /// the ones that follow, unless a write has failed since ([`Store::health`]).
    pub async fn probe(&self) -> Result<(), StoreError> {
        let mut last = self.shared.last_probe.lock().await;
        let fresh = last.is_some_and(|at| crate::clock::monotonic_now() - at < PROBE_FRESH);
        if fresh && self.shared.health.status().is_ok() {
            return Ok(());
        }
        let r = self.probe_write().await;
        *last = r.is_ok().then(crate::clock::monotonic_now);
        r
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let write = inner
            .trees
            .meta
            .insert(&MetaKey(PROBE_KEY.to_owned()), &0, "probe write");
        let faulted = self
            .shared
            .faults
            .check()
            .map_err(|source| StoreError::Storage {
                op: "probe write",
                source,
            });
        let r = match faulted.and(write) {
            Ok(()) => inner.commit.durable().await,
            Err(e) => Err(e),
        };
        self.observe(&inner, r)
    }

    /// The fault-injection seam (tests): makes writes and flushes fail until cleared.
    pub fn faults(&self) -> FaultInjector {
        self.shared.faults.clone()
    }

    /// The client `id`, if stored.
    pub fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        self.inner()?.trees.clients.get(id, "read client")
    }

    /// The invoice `id`, if stored.
    pub fn invoice(&self, id: &InvoiceId) -> Result<Option<Invoice>, StoreError> {
        Ok(self
            .inner()?
            .trees
            .invoices
            .get(id, "read invoice")?
            .map(|r| r.invoice))
    }

    /// Ids of the invoices of `client` that are still open (a scan of every invoice: O(n)).
    pub fn open_invoice_ids_of(&self, client: &ClientId) -> Result<Vec<InvoiceId>, StoreError> {
        let inner = self.inner()?;
        inner
            .trees
            .invoices
            .iter("scan invoices")
            .filter_map(|e| match e {
                Ok((id, InvoiceRecord { invoice: inv, .. })) => (inv.client_id == *client
                    && inv.status == crate::domain::InvoiceStatus::Open)
                    .then_some(Ok(id)),
                Err(e) => Some(Err(e)),
            })
            .collect()
    }

    /// The reminder `id` of `invoice`, if stored: the claimed copy while it is in flight,
    /// else the copy kept with the invoice (reminders cancelled before any send attempt are not kept).
    pub fn reminder(
        &self,
        invoice: &InvoiceId,
        id: &ReminderId,
    ) -> Result<Option<Reminder>, StoreError> {
        let inner = self.inner()?;
        let key = InflightKey {
            invoice: invoice.clone(),
            id: *id,
        };
        if let Some(r) = inner.trees.inflight.get(&key, "read in-flight set")? {
            return Ok(Some(r));
        }
        Ok(inner
            .trees
            .invoices
            .get(invoice, "read invoice")?
            .and_then(|rec| rec.reminder(id).cloned()))
    }

    /// What is known about `address` (normalised with [`Contact::normalize`]), if anything.
    pub fn contact(&self, address: &str) -> Result<Option<Contact>, StoreError> {
        self.inner()?
            .trees
            .contacts
            .get(&TextKey(Contact::normalize(address)), "read contact")
    }

    /// The message `provider_message_id` sent through `provider`, if recorded.
    pub fn sent_message(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SentMessage>, StoreError> {
        self.inner()?.trees.messages.get(
            &TextKey(format!("{provider}:{provider_message_id}")),
            "read sent message",
        )
    }

    /// The received payment event `key` (`provider:event-id`), if any.
    pub fn inbox_entry(&self, key: &str) -> Result<Option<InboxEntry>, StoreError> {
        self.inner()?
            .trees
            .inbox
            .get(&TextKey(key.to_owned()), "read inbox entry")
    }

    /// Keys of the payment events still to process, with when each is next due, earliest first
    /// (a scan of the whole queue: for tests and reports; the processor uses
    /// [`Store::inbox_due`]).
    pub fn inbox_queue(&self) -> Result<Vec<(String, Timestamp)>, StoreError> {
        self.inner()?
            .trees
            .inbox_queue
            .iter("scan inbox queue")
            .map(|e| e.map(|(k, ())| (k.key, k.at)))
            .collect()
    }

    /// Up to `limit` keys of the payment events due at `now`, earliest first: reads only those
    /// (the queue is ordered by due time).
    pub fn inbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
        self.inner()?
            .trees
            .inbox_queue
            .range(
                std::ops::Bound::Unbounded,
                std::ops::Bound::Included(QueueKey::upper_bound(now)),
                "scan inbox queue",
            )
            .take(limit)
            .map(|e| e.map(|(k, ())| k.key))
            .collect()
    }

    /// When the earliest queued payment event is due, if any.
    pub fn inbox_next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .inner()?
            .trees
            .inbox_queue
            .first("read inbox queue")?
            .map(|(k, ())| k.at))
    }

    /// Every received payment event, in key order (for reports; a scan).
    pub fn inbox_entries(&self) -> Result<Vec<InboxEntry>, StoreError> {
        self.inner()?
            .trees
            .inbox
            .iter("scan inbox")
            .map(|e| e.map(|(_, v)| v))
            .collect()
    }

    /// The client's own timeline (inbound messages, opt-outs), oldest first.
    pub fn client_timeline(&self, client: &ClientId) -> Result<Vec<ContactEvent>, StoreError> {
        let mut out = self
            .inner()?
            .trees
            .client_log
            .scan_prefix(ClientLogKey::prefix(client), "read client timeline")
            .map(|e| e.map(|(_, a)| a))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|a| a.at);
        Ok(out)
    }

    /// Everything logged on `invoice`, oldest first (by `at`; ties in the order logged), headed
    /// by the line its creation logged.
    pub fn timeline(&self, invoice: &InvoiceId) -> Result<Vec<Attempt>, StoreError> {
        let inner = self.inner()?;
        let opening = inner
            .trees
            .invoices
            .get(invoice, "read invoice")?
            .and_then(|r| r.opening);
        let mut out = opening.into_iter().collect::<Vec<_>>();
        for entry in inner
            .trees
            .log
            .scan_prefix(LogKey::prefix(invoice), "read timeline")
        {
            out.push(entry?.1);
        }
        out.sort_by_key(|a| a.at);
        Ok(out)
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
        Ok(self
            .inner()?
            .trees
            .due
            .first("read due index")?
            .map(|(k, ())| k.at))
    }

    /// Claims the reminders due at `now`, earliest first, at most `limit` due entries.
    ///
    /// In one transaction, every due entry taken (fire time `<= now`, to the microsecond) is
    /// removed. When its reminder is `Scheduled` (or `AwaitingReceipt`) and still due at that time, it becomes
    /// `Claimed`, joins the in-flight set and is returned. An entry whose reminder is missing,
    /// not `Scheduled`, or scheduled at another time is stale and just removed. Concurrent
    /// callers never claim the same entry twice (one of them may get fewer than `limit`).
    pub fn claim_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        let candidates = self.due_candidates(now, limit)?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let claimed = self.transaction::<_, std::convert::Infallible>(|tx| {
            Ok(claim_candidates(tx, &candidates)?)
        })?;
        Ok(claimed.unwrap_or_else(|never| match never {}))
    }

    /// [`Store::claim_due`] for async callers: the claim runs as a command on the writer's
    /// thread, so no async worker thread ever blocks on it.
    pub async fn claim_due_async(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Reminder>, StoreError> {
        let candidates = self.due_candidates(now, limit)?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let claimed = self
            .write::<_, std::convert::Infallible>(move |tx| Ok(claim_candidates(tx, &candidates)?))
            .await?;
        Ok(claimed.unwrap_or_else(|never| match never {}))
    }

    /// The first `limit` due entries firing at or before `now` (a read; claiming re-checks each).
    fn due_candidates(&self, now: Timestamp, limit: usize) -> Result<Vec<DueKey>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.inner()?
            .trees
            .due
            .range(
                std::ops::Bound::Unbounded,
                std::ops::Bound::Included(DueKey::upper_bound(now)),
                "scan due index",
            )
            .take(limit)
            .map(|e| e.map(|(k, ())| k))
            .collect()
    }

    /// Reminders claimed by [`Store::claim_due`] and not yet [`Tx::finish`]ed: after a crash,
    /// these may or may not have gone out.
    pub fn in_flight(&self) -> Result<Vec<Reminder>, StoreError> {
        self.inner()?
            .trees
            .inflight
            .iter("scan in-flight set")
            .map(|e| e.map(|(_, r)| r))
            .collect()
    }

    /// Waits until everything written before this call is on disk.
    ///
    /// Group commit: resolves once a flush that started after the call has completed; all
    /// concurrent callers share flushes, run one at a time by a dedicated flusher thread.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let r = inner.writer.durable().await;
        self.observe(&inner, r)
    }

    /// What the writer has done since this instance opened (for tests and benchmarks).
    pub fn writer_stats(&self) -> Result<WriterStats, StoreError> {
        Ok(self.inner()?.writer.stats())
    }

    /// Flushes to disk on the calling thread (blocking); for shutdown.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let r = self
            .shared
            .faults
            .check()
            .and_then(|()| inner.db.flush().map(|_| ()))
            .map_err(|source| StoreError::Storage {
                op: "flush",
                source,
            });
        self.observe(&inner, r)
    }

    /// Runs `f` as one atomic command of the writer, on the calling thread, and returns once
    /// the batch it joined is applied (every reader sees it). Blocks: call it from a blocking
    /// thread (`spawn_blocking`), or use [`Store::write`] from async code.
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
        let inner = self.inner()?;
        let r = inner.writer.exec(f);
        self.observe(&inner, r)
    }

    /// Runs `f` as one atomic command on the writer's own thread and resolves once the batch
    /// it joined is applied; nothing runs on the calling async task's thread. The async twin of
    /// [`Store::transaction`]; await [`Store::durable`] before acknowledging.
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
        let inner = self.inner()?;
        let r = inner.writer.submit(f).await;
        self.observe(&inner, r)
    }

    /// Number of entries in the due index (a scan: O(n)).
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        Ok(self.inner()?.trees.due.len() as u64)
    }

    /// Forgets webhook deliveries processed before `older_than`; returns how many.
    ///
    /// Reads the remembered ids, then removes the old ones through the writer, in commands of
    /// a thousand ids; an id marked again meanwhile (a newer time) is kept.
    pub fn prune_webhooks(&self, older_than: Timestamp) -> Result<usize, StoreError> {
        let old = self
            .inner()?
            .trees
            .webhooks
            .iter("scan webhooks")
            .filter_map(|e| match e {
                Ok((id, at)) => (at < older_than).then_some(Ok(id)),
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<WebhookKey>, _>>()?;
        let mut removed = 0;
        for chunk in old.chunks(PRUNE_CHUNK) {
            let n = self.transaction(|tx| {
                let mut n = 0;
                for id in chunk {
                    if tx.forget_webhook_if_older(id, older_than)? {
                        n += 1;
                    }
                }
                Ok::<_, TxError<std::convert::Infallible>>(n)
            })?;
            removed += n.unwrap_or_else(|never| match never {});
        }
        Ok(removed)
    }

    /// The tallies of the lines logged in the UTC hours that start in `from..to`: the hour
    /// holding `from` counts whole, the hour starting at `to` does not (for the daily digest,
    /// to the hour).
    pub fn tallies(&self, from: Timestamp, to: Timestamp) -> Result<Tallies, StoreError> {
        let mut out = Tallies::default();
        let (lo, hi) = (tally::hour_of(from), micros(to));
        if lo >= hi {
            return Ok(out);
        }
        let inner = self.inner()?;
        let bounds = (
            std::ops::Bound::Included(HourKey { hour: lo, tally: 0 }.encode()),
            std::ops::Bound::Excluded(keys::encode_micros(hi).to_vec()),
        );
        for entry in inner
            .trees
            .tallies
            .range(bounds.0, bounds.1, "read tallies")
        {
            let (key, n) = entry?;
            if key.hour < lo || key.hour >= hi {
                continue;
            }
            let Some(t) = Tally::from_byte(key.tally) else {
                return Err(StoreError::Corrupt {
                    tree: inner.trees.tallies.name(),
                    key: key.describe(),
                    reason: format!("unknown tally kind {}", key.tally),
                });
            };
            out.add(t, n);
        }
        Ok(out)
    }

    /// Bytes the database uses on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner()?
            .db
            .size_on_disk()
            .map_err(|source| StoreError::Storage {
                op: "size on disk",
                source,
            })
    }
}

/// Webhook ids removed per writer command by [`Store::prune_webhooks`].
const PRUNE_CHUNK: usize = 1000;

/// How many times [`Store::invoice_view`] reads again while batches keep changing the invoice
/// (one batch is applied every flush, about a millisecond: a few tries are the most seen).
const VIEW_READ_TRIES: usize = 1000;

/// Takes each of `candidates` off the due index and claims its reminder when it is still
/// waiting at that time (see [`Store::claim_due`]): two writes per reminder claimed.
fn claim_candidates(tx: &Tx<'_>, candidates: &[DueKey]) -> Result<Vec<Reminder>, TxFail> {
    let mut claimed = Vec::new();
    for key in candidates {
        if !tx.take_due(key)? {
            continue; // claimed by a concurrent caller
        }
        let Some(mut r) = tx.reminder(&key.invoice, &key.id)? else {
            continue;
        };
        let waiting = matches!(
            r.state,
            ReminderState::Scheduled | ReminderState::AwaitingReceipt
        );
        if !waiting || micros(r.fire_at) != micros(key.at) {
            continue;
        }
        r.state = ReminderState::Claimed;
        tx.add_inflight(&r)?;
        claimed.push(r);
    }
    Ok(claimed)
}

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
