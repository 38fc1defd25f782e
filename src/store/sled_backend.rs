//! The sled backend: the default, embedded [`Backend`]. One sled database in the data
//! directory; every record in one tree (the keyspace, see the layout in the `store` module
//! docs); one batching writer (`writer.rs`) applies every command; a write failure starts the
//! self-recovery (`health.rs`) that reopens the database once the directory accepts writes.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use jiff::Timestamp;

use super::backend::{Backend, BlockingCommand, BoxFuture, Command, DueEntry, TxOps};
use super::health::{self, FaultInjector, Health};
use super::keys::{
    self, ClientInvoiceKey, ClientLogKey, DueKey, EventIndexKey, HourKey, InflightKey, KeyCodec,
    LogKey, MetaKey, QueueKey, TaskIndexKey, TextKey, WebhookKey, micros,
};
use super::kv::{Kv, SledKv};
use super::migrate;
use super::records::InvoiceRecord;
use super::sled_tx::SledTx;
use super::slot::{self, KEYSPACE};
use super::tally::{self, Tallies, Tally};
use super::tx::{Tx, TxError, TxFail};
use super::typed::TypedTree;
use super::writer::{Ack, Writer, WriterStats};
use super::{SCHEMA_KEY, SCHEMA_VERSION, StoreError, StoreOptions};
use crate::domain::{
    Attempt, Client, ClientId, Contact, ContactEvent, EventId, EventState, InboxEntry, IndexLine,
    Invoice, InvoiceId, OutboundEvent, Reminder, ReminderId, ReminderState, SentMessage, Task,
    TaskId,
};

#[cfg(test)]
mod tests;

/// Every logical tree, opened once: `meta` is a sled tree of its own; the others are slices of
/// the keyspace, each under its slot byte (see `tx::slot`).
struct Trees {
    meta: TypedTree<MetaKey, u32>,
    /// The same `meta` tree, for the markers of [`Backend::meta`] (raw bytes, under
    /// [`MARKER_PREFIX`]).
    markers: TypedTree<MetaKey, Vec<u8>>,
    keyspace: Arc<dyn Kv>,
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
    client_invoices: TypedTree<ClientInvoiceKey, IndexLine>,
    events: TypedTree<EventId, OutboundEvent>,
    events_index: TypedTree<EventIndexKey, ()>,
    tasks: TypedTree<TaskId, Task>,
    tasks_index: TypedTree<TaskIndexKey, ()>,
}

impl Trees {
    fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let open = |name: &'static str| -> Result<Arc<dyn Kv>, StoreError> {
            let tree = db.open_tree(name).map_err(|source| StoreError::Storage {
                op: "open keyspace",
                source,
            })?;
            Ok(Arc::new(SledKv {
                tree,
                db: db.clone(),
            }))
        };
        Ok(Trees::over(open(KEYSPACE)?, open("meta")?))
    }

    /// The trees over `ks` (the keyspace) and `meta`, whatever holds them.
    fn over(ks: Arc<dyn Kv>, meta: Arc<dyn Kv>) -> Self {
        Trees {
            meta: TypedTree::whole(meta.clone(), "meta"),
            markers: TypedTree::whole(meta, "meta"),
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
            client_invoices: TypedTree::in_keyspace(&ks, slot::CLIENT_INVOICES, "client_invoices"),
            events: TypedTree::in_keyspace(&ks, slot::EVENTS, "events"),
            events_index: TypedTree::in_keyspace(&ks, slot::EVENTS_INDEX, "events_index"),
            tasks: TypedTree::in_keyspace(&ks, slot::TASKS, "tasks"),
            tasks_index: TypedTree::in_keyspace(&ks, slot::TASKS_INDEX, "tasks_index"),
            keyspace: ks,
        }
    }
}

/// Whether the database holds no record at all, in either schema's layout (a new database).
fn records_empty(db: &sled::Db, trees: &Trees) -> bool {
    let only_own_trees = db.tree_names().iter().all(|name| {
        let name = name.as_ref();
        name == b"__sled__default" || name == b"meta" || name == KEYSPACE.as_bytes()
    });
    only_own_trees && trees.keyspace.scan_prefix(&[], false).next().is_none()
}

/// Where the data lives.
#[derive(Clone)]
pub(crate) enum Location {
    /// A sled database in this directory.
    Dir(PathBuf),
    /// A PostgreSQL database, led by this node.
    Postgres(super::pg::PgTarget),
}

impl Location {
    /// Opens one instance of the database.
    fn open(
        &self,
        opts: &StoreOptions,
        faults: &FaultInjector,
        generation: u64,
    ) -> Result<Inner, StoreError> {
        match self {
            Location::Dir(dir) => open_inner(dir, opts, faults, generation),
            Location::Postgres(target) => {
                let (ks, meta) = super::pg::open_keyspace(target)?;
                open_over(Trees::over(ks, meta), faults, generation, |trees| {
                    trees.keyspace.scan_prefix(&[], false).next().is_none()
                })
            }
        }
    }
}

/// One opened instance of the database.
struct Inner {
    // Field order matters for drop: the writer and flusher threads (holding `Db` clones) are
    // joined first.
    /// Applies every mutation, in batches.
    writer: Writer,
    trees: Trees,
    /// The keyspace, for flushes and sizes of the whole database.
    db: Arc<dyn Kv>,
    /// Which instance this is: 0 at open, +1 per reopen.
    generation: u64,
}

/// What every clone of a store shares.
struct Shared {
    location: Location,
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
    /// Set by [`Backend::close`]: no instance will be opened again.
    closed: std::sync::atomic::AtomicBool,
}

/// The sled backend: a handle on the sled database. Cheap to clone; clones share everything.
///
/// A write or flush that fails (a full disk, an I/O error) marks the store unhealthy
/// ([`Store::health`]) and starts its self-recovery: once the directory accepts writes again
/// the database is reopened in place, without a restart (see `health.rs`).
#[derive(Clone)]
pub struct SledBackend {
    shared: Arc<Shared>,
}

/// Opens the sled database in `dir`. sled's file lock is released by its background threads
/// shortly after the previous handle is dropped (a restart in the same process, or a process
/// still exiting): wait for it for up to two seconds before reporting the directory as in use.
fn open_sled(dir: &Path, opts: &StoreOptions) -> Result<sled::Db, StoreError> {
    std::fs::create_dir_all(dir)?;
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(opts.cache_capacity_bytes)
        .flush_every_ms(opts.flush_every_ms);
    let mut tries = 0;
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
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
    }
}

/// Opens one instance of the database in `dir` and checks its schema version.
fn open_inner(
    dir: &Path,
    opts: &StoreOptions,
    faults: &FaultInjector,
    generation: u64,
) -> Result<Inner, StoreError> {
    let db = open_sled(dir, opts)?;
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
    // Schema 1 (one tree per kind, JSON) and schema 2 (no client index) are migrated in place;
    // a migration cut short after its switch to schema 2 left old trees behind, dropped now.
    migrate::migrate(&db, dir)?;
    migrate::drop_leftover_v1_trees(&db)?;
    let trees = Trees::open(&db)?;
    open_over(trees, faults, generation, |trees| records_empty(&db, trees))
}

/// Checks the schema version in `trees` (writing it when the store is new: `is_new`) and starts
/// the writer over them.
fn open_over(
    trees: Trees,
    faults: &FaultInjector,
    generation: u64,
    is_new: impl FnOnce(&Trees) -> bool,
) -> Result<Inner, StoreError> {
    let key = MetaKey(SCHEMA_KEY.to_owned());
    match trees.meta.get(&key, "read schema version")? {
        Some(found) if found == SCHEMA_VERSION => {}
        Some(found) => {
            return Err(StoreError::SchemaMismatch {
                found,
                expected: SCHEMA_VERSION,
            });
        }
        None if is_new(&trees) => {
            faults.check().map_err(|source| StoreError::Storage {
                op: "write schema version",
                source,
            })?;
            trees
                .meta
                .insert(&key, &SCHEMA_VERSION, "write schema version")?;
            // A new store holds only clients written with their facts: no backfill to run.
            trees.markers.insert(
                &marker_key(super::FACTS_BACKFILL_MARKER),
                &b"new store".to_vec(),
                "write meta marker",
            )?;
            trees
                .keyspace
                .flush()
                .map_err(|source| StoreError::Storage {
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
    let writer = Writer::start(trees.keyspace.clone(), faults.clone())?;
    Ok(Inner {
        writer,
        db: trees.keyspace.clone(),
        trees,
        generation,
    })
}

/// Key of the value rewritten by probes (readiness, recovery).
const PROBE_KEY: &str = "write_probe";

/// What the keys of [`Backend::meta`] start with in the `meta` tree, so that no marker can
/// read or overwrite the schema version or the probe key.
const MARKER_PREFIX: &str = "marker:";

/// The `meta` key of marker `key`.
fn marker_key(key: &str) -> MetaKey {
    MetaKey(format!("{MARKER_PREFIX}{key}"))
}

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
        if self.closed.load(Ordering::SeqCst) {
            return Ok(()); // closed meanwhile: nothing to reopen
        }
        if let Location::Dir(dir) = &self.location {
            health::directory_writable(dir, &self.faults)?;
        }
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
            drain(old);
        }
        let inner = self.location.open(&self.opts, &self.faults, generation)?;
        inner.probe_blocking(&self.faults)?;
        self.generation.store(generation, Ordering::SeqCst);
        self.health.recovered();
        self.health.recovery_ended();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(inner));
        Ok(())
    }
}

/// Waits (up to [`DRAIN_OLD_INSTANCE`]) until no operation holds `old` any more, then drops
/// it, which closes that instance of the database.
fn drain(old: Arc<Inner>) {
    let mut waited = Duration::ZERO;
    while Arc::strong_count(&old) > 1 && waited < DRAIN_OLD_INSTANCE {
        std::thread::sleep(Duration::from_millis(5));
        waited += Duration::from_millis(5);
    }
    drop(old);
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

impl SledBackend {
    /// Opens the store in `dir`, creating the directory and a new database if needed.
    ///
    /// A new database gets schema version [`SCHEMA_VERSION`]; a schema-1 or schema-2 one is
    /// migrated in place; a newer one is refused with [`StoreError::SchemaMismatch`].
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<SledBackend, StoreError> {
        Self::open_at(Location::Dir(dir.to_path_buf()), opts)
    }

    /// Opens the store at `location` (the PostgreSQL backend shares everything but the
    /// key-value space, see `pg.rs`).
    pub(crate) fn open_at(
        location: Location,
        opts: StoreOptions,
    ) -> Result<SledBackend, StoreError> {
        let faults = FaultInjector::default();
        let inner = location.open(&opts, &faults, 0)?;
        Ok(SledBackend {
            shared: Arc::new(Shared {
                location,
                opts,
                current: RwLock::new(Some(Arc::new(inner))),
                generation: AtomicU64::new(0),
                health: Health::default(),
                faults,
                last_probe: tokio::sync::Mutex::new(None),
                closed: std::sync::atomic::AtomicBool::new(false),
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
            .ok_or_else(|| {
                if self.shared.closed.load(Ordering::SeqCst) {
                    StoreError::Closed
                } else {
                    StoreError::Reopening
                }
            })
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

    /// Writes a probe value and waits until it is durable: whether the store can write now.
    /// A failure marks the store unhealthy, like any failed write.
    ///
    /// Probes run one at a time, and a probe that succeeded less than a second ago answers for
    /// the ones that follow, unless a write has failed since ([`Store::health`]).
    async fn probe_now(&self) -> Result<(), StoreError> {
        let mut last = self.shared.last_probe.lock().await;
        let fresh = last.is_some_and(|at| crate::clock::monotonic_now() - at < PROBE_FRESH);
        if fresh && self.shared.health.status().is_ok() {
            return Ok(());
        }
        let r = self.probe_write().await;
        *last = r.is_ok().then(crate::clock::monotonic_now);
        r
    }

    /// Writes the probe key through the writer (like any command) and waits for its flush.
    async fn probe_write(&self) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let r = inner
            .writer
            .submit::<_, std::convert::Infallible>(Ack::Durable, |tx| {
                tx.put_probe(PROBE_KEY);
                Ok(())
            })
            .await
            .map(|_| ());
        self.observe(&inner, r)
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

    /// Waits until everything written before this call is on disk.
    ///
    /// Group commit: resolves once a flush that started after the call has completed; all
    /// concurrent callers share flushes, run one at a time by a dedicated flusher thread.
    async fn durable_now(&self) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let r = inner.writer.durable().await;
        self.observe(&inner, r)
    }

    /// [`Store::claim_due`] for async callers: the claim runs as a command on the writer's
    /// thread, so no async worker thread ever blocks on it.
    async fn claim_async(&self, now: Timestamp, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        let candidates = self.due_candidates(now, limit)?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let inner = self.inner()?;
        let r = inner
            .writer
            .submit::<_, std::convert::Infallible>(Ack::Applied, move |tx| {
                Ok(claim_candidates(tx, &candidates)?)
            })
            .await
            .map(|claimed| claimed.unwrap_or_else(|never| match never {}));
        self.observe(&inner, r)
    }
}

impl Backend for SledBackend {
    fn name(&self) -> &'static str {
        match self.shared.location {
            Location::Dir(_) => "sled",
            Location::Postgres(_) => "postgres",
        }
    }

    fn leader_epoch(&self) -> Option<i64> {
        match &self.shared.location {
            Location::Dir(_) => None,
            Location::Postgres(target) => Some(target.leader.epoch()),
        }
    }

    fn conflict_retries(&self) -> Option<u64> {
        match &self.shared.location {
            Location::Dir(_) => None,
            Location::Postgres(target) => Some(
                target
                    .leader
                    .conflict_retries()
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }

    fn exec(&self, cmd: BlockingCommand<'_>) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let r = inner
            .writer
            .exec(|stx: &SledTx<'_>| cmd(&mut Tx::new(stx)))
            .map(|kept| kept.unwrap_or(()));
        self.observe(&inner, r)
    }

    fn submit(&self, cmd: Command, ack: Ack) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let inner = self.inner()?;
            let r = inner
                .writer
                .submit(ack, move |stx: &SledTx<'_>| cmd(&mut Tx::new(stx)))
                .await
                .map(|kept| kept.unwrap_or(()));
            self.observe(&inner, r)
        })
    }

    fn durable(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.durable_now())
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.probe_now())
    }

    fn claim_due_async(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Reminder>, StoreError>> {
        Box::pin(self.claim_async(now, limit))
    }

    fn close(&self) -> Result<(), StoreError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.flush_blocking()?;
        self.shared.closed.store(true, Ordering::SeqCst);
        let old = self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(old) = old else {
            return Ok(()); // already closed, or reopening after a failure
        };
        // Operations still holding the instance finish first (none, at shutdown).
        drain(old);
        // sled writes its snapshot (the page table) only while opening, after replaying the
        // log written since the last one: open once more now, so the next start replays
        // nothing however much was written since this one.
        let dir = match &self.shared.location {
            Location::Dir(dir) => dir,
            Location::Postgres(target) => {
                // Every batch is committed; give leadership up now, so that a standby takes
                // over at once, without waiting for this process to end.
                target.leader.release();
                return Ok(());
            }
        };
        let t0 = crate::clock::monotonic_now();
        drop(open_sled(dir, &self.shared.opts)?);
        tracing::info!(
            secs = (crate::clock::monotonic_now() - t0).as_secs_f64(),
            "store closed; its snapshot is up to date, so the next start is fast"
        );
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// `Err(reason)` while the store cannot write (a write or flush failed and the store has
    /// not recovered yet); `/readyz` reports it.
    fn health(&self) -> Result<(), String> {
        self.shared.health.status()?;
        self.inner().map(|_| ()).map_err(|e| e.to_string())
    }

    /// The fault-injection seam (tests): makes writes and flushes fail until cleared.
    fn faults(&self) -> FaultInjector {
        self.shared.faults.clone()
    }

    /// The client `id`, if stored.
    fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        self.inner()?.trees.clients.get(id, "read client")
    }

    /// The invoice `id`, if stored.
    fn invoice(&self, id: &InvoiceId) -> Result<Option<Invoice>, StoreError> {
        Ok(self
            .inner()?
            .trees
            .invoices
            .get(id, "read invoice")?
            .map(|r| r.invoice))
    }

    /// Ids of the invoices of `client`, open or not, in invoice id (byte) order: a prefix scan
    /// of the client's invoice index, one entry per invoice of the client.
    fn invoice_ids_of_client(&self, client: &ClientId) -> Result<Vec<InvoiceId>, StoreError> {
        client_invoice_ids(&*self.inner()?, client)
    }

    /// The client's index entries with their lines, if at most `max`: reads `max + 1` raw
    /// entries at most, and decodes them only when they are not too many.
    fn invoice_lines_of_client_within(
        &self,
        client: &ClientId,
        max: usize,
    ) -> Result<Option<Vec<(InvoiceId, IndexLine)>>, StoreError> {
        let inner = self.inner()?;
        let index = &inner.trees.client_invoices;
        let raw = index.scan_prefix_raw(
            ClientInvoiceKey::prefix(client),
            max.saturating_add(1),
            "read client's invoice index",
        )?;
        if raw.len() > max {
            return Ok(None);
        }
        raw.iter()
            .map(|(k, v)| index.decode_entry(k, v).map(|(k, line)| (k.invoice, line)))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Ids of the invoices of `client` that are still open, in invoice id (byte) order: the
    /// client's invoice index, then each of those invoices (O(invoices of the client)).
    ///
    /// The index and the records are not read as one snapshot: an invoice the index lists
    /// that has meanwhile moved to another client is left out. One the index lists that is not
    /// stored at all is [`StoreError::Corrupt`] (invoices are never removed).
    fn open_invoice_ids_of(&self, client: &ClientId) -> Result<Vec<InvoiceId>, StoreError> {
        let inner = self.inner()?;
        let mut open = Vec::new();
        for id in client_invoice_ids(&inner, client)? {
            let Some(InvoiceRecord { invoice, .. }) =
                inner.trees.invoices.get(&id, "read invoice")?
            else {
                return Err(StoreError::Corrupt {
                    tree: inner.trees.client_invoices.name(),
                    key: ClientInvoiceKey {
                        client: client.clone(),
                        invoice: id,
                    }
                    .describe(),
                    reason: "the client's invoice index names an invoice that is not stored".into(),
                });
            };
            if invoice.client_id == *client && invoice.status == crate::domain::InvoiceStatus::Open
            {
                open.push(id);
            }
        }
        Ok(open)
    }

    /// Up to `limit` client ids after `after`, in id (byte) order: a range read of the
    /// clients' slot, keys only (no client record is decoded).
    fn client_ids_after(
        &self,
        after: Option<&ClientId>,
        limit: usize,
    ) -> Result<Vec<ClientId>, StoreError> {
        self.inner()?
            .trees
            .clients
            .keys_after(after, limit, "scan client ids")
    }

    fn invoice_ids_after(
        &self,
        after: Option<&InvoiceId>,
        limit: usize,
    ) -> Result<Vec<InvoiceId>, StoreError> {
        self.inner()?
            .trees
            .invoices
            .keys_after(after, limit, "scan invoice ids")
    }

    fn due_entries(
        &self,
        from: Timestamp,
        to: Timestamp,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError> {
        use std::ops::Bound;
        if limit == 0 || to <= from {
            return Ok(Vec::new());
        }
        let lo = match after {
            Some(a) if a.at >= from => Bound::Excluded(
                DueKey {
                    at: a.at,
                    id: a.reminder,
                    invoice: a.invoice.clone(),
                }
                .encode(),
            ),
            _ => Bound::Included(keys::encode_time(from).to_vec()),
        };
        // Every key at `to` or later starts with `to`'s encoding and is longer than it.
        let hi = Bound::Excluded(keys::encode_time(to).to_vec());
        self.inner()?
            .trees
            .due
            .range(lo, hi, "scan due index")
            .take(limit)
            .map(|e| {
                e.map(|(k, ())| DueEntry {
                    at: k.at,
                    reminder: k.id,
                    invoice: k.invoice,
                })
            })
            .collect()
    }

    /// The marker `key`, from the `meta` tree (under `marker:`).
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner()?
            .trees
            .markers
            .get(&marker_key(key), "read meta marker")
    }

    /// Writes the marker `key` to the `meta` tree (outside the writer: it is not part of any
    /// command's batch) and flushes the database, so the marker is on disk with every batch
    /// applied before it. A failure marks the store unhealthy, like any failed write.
    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let inner = self.inner()?;
        let r = self
            .shared
            .faults
            .check()
            .map_err(|source| StoreError::Storage {
                op: "write meta marker",
                source,
            })
            .and_then(|()| {
                inner
                    .trees
                    .markers
                    .insert(&marker_key(key), &value.to_vec(), "write meta marker")
            })
            .and_then(|()| {
                inner
                    .db
                    .flush()
                    .map(|_| ())
                    .map_err(|source| StoreError::Storage {
                        op: "flush",
                        source,
                    })
            });
        self.observe(&inner, r)
    }

    /// The reminder `id` of `invoice`, if stored: the claimed copy while it is in flight,
    /// else the copy kept with the invoice (reminders cancelled before any send attempt are not kept).
    fn reminder(
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
    fn contact(&self, address: &str) -> Result<Option<Contact>, StoreError> {
        self.inner()?
            .trees
            .contacts
            .get(&TextKey(Contact::normalize(address)), "read contact")
    }

    /// The message `provider_message_id` sent through `provider`, if recorded.
    fn sent_message(
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
    fn inbox_entry(&self, key: &str) -> Result<Option<InboxEntry>, StoreError> {
        self.inner()?
            .trees
            .inbox
            .get(&TextKey(key.to_owned()), "read inbox entry")
    }

    /// Keys of the payment events still to process, with when each is next due, earliest first
    /// (a scan of the whole queue: for tests and reports; the processor uses
    /// [`Store::inbox_due`]).
    fn inbox_queue(&self) -> Result<Vec<(String, Timestamp)>, StoreError> {
        self.inner()?
            .trees
            .inbox_queue
            .iter("scan inbox queue")
            .map(|e| e.map(|(k, ())| (k.key, k.at)))
            .collect()
    }

    /// Up to `limit` keys of the payment events due at `now`, earliest first: reads only those
    /// (the queue is ordered by due time).
    fn inbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, StoreError> {
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
    fn inbox_next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .inner()?
            .trees
            .inbox_queue
            .first("read inbox queue")?
            .map(|(k, ())| k.at))
    }

    /// Every received payment event, in key order (for reports; a scan).
    fn inbox_entries(&self) -> Result<Vec<InboxEntry>, StoreError> {
        self.inner()?
            .trees
            .inbox
            .iter("scan inbox")
            .map(|e| e.map(|(_, v)| v))
            .collect()
    }

    /// The outbound event `id`, if stored.
    fn event(&self, id: &EventId) -> Result<Option<OutboundEvent>, StoreError> {
        self.inner()?.trees.events.get(id, "read event")
    }

    /// Up to `limit` pending events due at `now`, earliest due first: reads the due part of
    /// the events index up to `now`, then each event.
    fn events_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboundEvent>, StoreError> {
        let inner = self.inner()?;
        let trees = &inner.trees;
        let mut out = Vec::new();
        let entries = trees.events_index.range(
            std::ops::Bound::Included(vec![EventIndexKey::DUE]),
            std::ops::Bound::Included(EventIndexKey::due_upper_bound(now)),
            "scan events index",
        );
        for entry in entries.take(limit) {
            let (key, ()) = entry?;
            let EventIndexKey::Due { id, .. } = key else {
                continue;
            };
            match trees.events.get(&id, "read event")? {
                Some(e) => out.push(e),
                None => return Err(dangling(trees, &key)),
            }
        }
        Ok(out)
    }

    /// When the earliest pending event is due, if any.
    fn events_next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let inner = self.inner()?;
        let first = inner
            .trees
            .events_index
            .scan_prefix(vec![EventIndexKey::DUE], "read events index")
            .next()
            .transpose()?;
        Ok(first.and_then(|(k, ())| match k {
            EventIndexKey::Due { at, .. } => Some(at),
            EventIndexKey::Failed(_) => None,
        }))
    }

    /// Up to `limit` events in `state` (any: `None`), newest first. Failed ones come from the
    /// events index (newest first); pending ones from its due part (every pending key is read,
    /// then the newest `limit` events); delivered ones, and all, from the outbox newest first
    /// (delivered events are most of it, so the walk stops early).
    fn events(
        &self,
        state: Option<EventState>,
        limit: usize,
    ) -> Result<Vec<OutboundEvent>, StoreError> {
        let inner = self.inner()?;
        let trees = &inner.trees;
        let read = |key: &EventIndexKey, id: &EventId| {
            trees
                .events
                .get(id, "read event")?
                .ok_or_else(|| dangling(trees, key))
        };
        match state {
            Some(EventState::Failed) => trees
                .events_index
                .scan_prefix_rev(vec![EventIndexKey::FAILED], "read events index")
                .take(limit)
                .map(|entry| {
                    let (key, ()) = entry?;
                    match &key {
                        EventIndexKey::Failed(id) => read(&key, id),
                        EventIndexKey::Due { .. } => Err(dangling(trees, &key)),
                    }
                })
                .collect(),
            Some(EventState::Pending) => {
                let mut due = trees
                    .events_index
                    .scan_prefix(vec![EventIndexKey::DUE], "read events index")
                    .map(|entry| entry.map(|(k, ())| k))
                    .collect::<Result<Vec<_>, _>>()?;
                due.sort_by_key(|k| match k {
                    EventIndexKey::Due { id, .. } | EventIndexKey::Failed(id) => {
                        std::cmp::Reverse(*id)
                    }
                });
                due.iter()
                    .take(limit)
                    .map(|key| match key {
                        EventIndexKey::Due { id, .. } | EventIndexKey::Failed(id) => read(key, id),
                    })
                    .collect()
            }
            _ => trees
                .events
                .scan_prefix_rev(Vec::new(), "scan events")
                .filter(|entry| match (entry, state) {
                    (Ok((_, e)), Some(want)) => e.state == want,
                    _ => true,
                })
                .take(limit)
                .map(|entry| entry.map(|(_, e)| e))
                .collect(),
        }
    }

    /// Forgets delivered events created before `older_than`; returns how many. Reads the
    /// outbox up to that instant (event ids start with their creation time), then removes the
    /// delivered ones through the writer in commands of a thousand.
    fn prune_events(&self, older_than: Timestamp) -> Result<usize, StoreError> {
        let old = self
            .inner()?
            .trees
            .events
            .range(
                std::ops::Bound::Unbounded,
                std::ops::Bound::Excluded(EventId::new(older_than, 0).encode()),
                "scan events",
            )
            .filter_map(|e| match e {
                Ok((id, ev)) => (ev.state == EventState::Delivered).then_some(Ok(id)),
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<EventId>, _>>()?;
        let mut removed = 0;
        for chunk in old.chunks(PRUNE_CHUNK) {
            let inner = self.inner()?;
            let n = inner.writer.exec(|tx| {
                let mut n = 0;
                for id in chunk {
                    if tx.forget_event_if_delivered(id)? {
                        n += 1;
                    }
                }
                Ok::<_, TxError<std::convert::Infallible>>(n)
            });
            let n = self.observe(&inner, n)?;
            removed += n.unwrap_or_else(|never| match never {});
        }
        Ok(removed)
    }

    /// The task `id`, if stored.
    fn task(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        self.inner()?.trees.tasks.get(id, "read task")
    }

    /// Every live task, oldest first: reads the queue part of the tasks index, then each task.
    fn live_tasks(&self) -> Result<Vec<Task>, StoreError> {
        let inner = self.inner()?;
        let trees = &inner.trees;
        let mut out = Vec::new();
        for entry in trees
            .tasks_index
            .scan_prefix(vec![TaskIndexKey::LIVE], "read tasks index")
        {
            let (key, ()) = entry?;
            match trees.tasks.get(&key.id(), "read task")? {
                Some(t) => out.push(t),
                None => {
                    return Err(StoreError::Corrupt {
                        tree: trees.tasks_index.name(),
                        key: key.describe(),
                        reason: "the tasks index names a task that is not stored".into(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Up to `limit` tasks of any state, newest first (task ids start with their creation
    /// time).
    fn recent_tasks(&self, limit: usize) -> Result<Vec<Task>, StoreError> {
        self.inner()?
            .trees
            .tasks
            .scan_prefix_rev(Vec::new(), "scan tasks")
            .take(limit)
            .map(|entry| entry.map(|(_, t)| t))
            .collect()
    }

    /// The client's own timeline (inbound messages, opt-outs), oldest first.
    fn client_timeline(&self, client: &ClientId) -> Result<Vec<ContactEvent>, StoreError> {
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
    fn timeline(&self, invoice: &InvoiceId) -> Result<Vec<Attempt>, StoreError> {
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

    /// When the earliest reminder in the due index fires (microsecond precision), if any.
    fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
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
    fn claim_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Reminder>, StoreError> {
        let candidates = self.due_candidates(now, limit)?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let inner = self.inner()?;
        let r = inner
            .writer
            .exec::<_, std::convert::Infallible>(|tx| Ok(claim_candidates(tx, &candidates)?))
            .map(|claimed| claimed.unwrap_or_else(|never| match never {}));
        self.observe(&inner, r)
    }

    /// Reminders claimed by [`Store::claim_due`] and not yet [`Tx::finish`]ed: after a crash,
    /// these may or may not have gone out.
    fn in_flight(&self) -> Result<Vec<Reminder>, StoreError> {
        self.inner()?
            .trees
            .inflight
            .iter("scan in-flight set")
            .map(|e| e.map(|(_, r)| r))
            .collect()
    }

    /// What the writer has done since this instance opened (for tests and benchmarks).
    fn writer_stats(&self) -> Result<WriterStats, StoreError> {
        Ok(self.inner()?.writer.stats())
    }

    /// Flushes to disk on the calling thread (blocking); for shutdown.
    fn flush_blocking(&self) -> Result<(), StoreError> {
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

    /// Number of entries in the due index (a scan: O(n)).
    fn pending_count(&self) -> Result<u64, StoreError> {
        Ok(self.inner()?.trees.due.len() as u64)
    }

    /// Forgets webhook deliveries processed before `older_than`; returns how many.
    ///
    /// Reads the remembered ids, then removes the old ones through the writer, in commands of
    /// a thousand ids; an id marked again meanwhile (a newer time) is kept.
    fn prune_webhooks(&self, older_than: Timestamp) -> Result<usize, StoreError> {
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
            let inner = self.inner()?;
            let n = inner.writer.exec(|tx| {
                let mut n = 0;
                for id in chunk {
                    if tx.forget_webhook_if_older(id, older_than)? {
                        n += 1;
                    }
                }
                Ok::<_, TxError<std::convert::Infallible>>(n)
            });
            let n = self.observe(&inner, n)?;
            removed += n.unwrap_or_else(|never| match never {});
        }
        Ok(removed)
    }

    /// The tallies of the lines logged in the UTC hours that start in `from..to`: the hour
    /// holding `from` counts whole, the hour starting at `to` does not (for the daily digest,
    /// to the hour).
    fn tallies(&self, from: Timestamp, to: Timestamp) -> Result<Tallies, StoreError> {
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
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner()?
            .db
            .size_on_disk()
            .map_err(|source| StoreError::Storage {
                op: "size on disk",
                source,
            })
    }
}

/// Ids of the invoices of `client` in the client's invoice index, in invoice id (byte) order
/// (their lines are read, not decoded).
fn client_invoice_ids(inner: &Inner, client: &ClientId) -> Result<Vec<InvoiceId>, StoreError> {
    let index = &inner.trees.client_invoices;
    index
        .scan_prefix_raw(
            ClientInvoiceKey::prefix(client),
            usize::MAX,
            "read client's invoice index",
        )?
        .iter()
        .map(|(k, _)| {
            <ClientInvoiceKey as KeyCodec>::decode(k)
                .map(|k| k.invoice)
                .map_err(|reason| StoreError::Corrupt {
                    tree: index.name(),
                    key: keys::describe_raw(k),
                    reason,
                })
        })
        .collect()
}

/// The error for an events-index entry naming an event that is not stored.
fn dangling(trees: &Trees, key: &EventIndexKey) -> StoreError {
    StoreError::Corrupt {
        tree: trees.events_index.name(),
        key: key.describe(),
        reason: "the events index names an event that is not stored".into(),
    }
}

/// Webhook ids removed per writer command by [`Store::prune_webhooks`].
const PRUNE_CHUNK: usize = 1000;

/// Takes each of `candidates` off the due index and claims its reminder when it is still
/// waiting at that time (see [`Store::claim_due`]): two writes per reminder claimed.
fn claim_candidates(tx: &SledTx<'_>, candidates: &[DueKey]) -> Result<Vec<Reminder>, TxFail> {
    let mut claimed = Vec::new();
    tx.prefetch_claim(candidates)?;
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
