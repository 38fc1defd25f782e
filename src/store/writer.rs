//! The single writer: every mutation of the store is a command that joins one shared batch;
//! one committer thread applies each batch atomically, and a flusher thread makes applied
//! batches durable, one flush for every batch applied before it started (group commit), while
//! the committer goes on building the next batch.
//!
//! The committer runs commands into the next batch while a flush is under way, but applies
//! that batch only once the flush has ended: every command that arrives during a flush joins
//! one batch, applied and flushed as one, and an apply never runs beside a flush. On the 2-core
//! VM this made HTTP ingest 22 % faster than applying each batch as soon as it was built
//! (BENCHMARKS.md, "Store v2, ninth look"): batches grew from 14–18 to 22 commands, and a
//! flush took half the time with no apply beside it.
//!
//! A command runs against a layered view: its own writes, then the batch being built (the
//! commands before it), then the batch being applied, then the database. So commands in one
//! batch see each other's writes in order, exactly as if each had committed alone, and no
//! command ever conflicts or runs twice.
//!
//! Two ways in, one batch:
//! - [`Writer::exec`] (blocking threads): the caller runs its closure itself, under the writer's
//!   lock, then waits until its batch is applied. The closure may borrow.
//! - [`Writer::submit`] (async code): the closure is queued and the committer thread runs it,
//!   so no store work happens on a tokio worker thread.
//!
//! A command reads single keys through every layer; it may also read the keys of a slot listed
//! in `slot::SCANNED` by prefix ([`Ctx::scan_prefix`]): each layer keeps its pending writes of
//! those slots in key order, so the read merges them with the database's range without
//! looking at the layer's other writes.
//!
//! Either way, a command's result is returned once its batch is applied (visible to every
//! reader); [`Writer::durable`] then waits until that batch is flushed. A queued command may
//! instead ask to be answered once its batch is flushed ([`Ack::Durable`]): the flusher
//! answers it, so its caller wakes once, not twice. No lock is held across an await. A batch
//! that fails to apply fails every command in it and every command built on top of it, and
//! latches the instance broken (the store reopens itself, see `health.rs`).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use sled::IVec;
use tokio::sync::{oneshot, watch};

use super::StoreError;
use super::fail::{FailKind, TxFail};
use super::health::FaultInjector;
use super::kv::Kv;
use super::overlay::{Counts, Ctx, Overlay, add_counts};
use super::sled_tx::SledTx;
use super::tx::TxError;

/// Most commands in one batch: bounds how long one apply holds readers of the batch back.
const MAX_BATCH_COMMANDS: usize = 4096;

/// A queued command (from [`Writer::submit`]): runs against a context, says whether its writes
/// are kept, and hands back what delivers its result once the batch is applied (or flushed,
/// see [`Ack`]).
type Job = Box<dyn FnOnce(&Ctx<'_>) -> (bool, Deliver, Ack) + Send>;

/// Delivers a queued command's result: the batch number it joined, or why the batch failed.
type Deliver = Box<dyn FnOnce(Result<u64, StoreError>) + Send>;

/// When a queued command's caller is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Once its batch is applied: every reader sees its writes (on disk after
    /// [`Store::durable`](super::Store::durable)).
    Applied,
    /// Once its batch is on disk: the flush that covers it answers it, in one wake-up of the
    /// caller (what an acknowledged request needs).
    Durable,
}

/// Answers of [`Ack::Durable`] commands waiting for the flush that covers their batch:
/// (batch number, answer), in non-decreasing batch order.
type AwaitingFlush = VecDeque<(u64, Deliver)>;

fn flush_failed(why: &str) -> StoreError {
    StoreError::Storage {
        op: "flush",
        source: sled::Error::Io(std::io::Error::other(why.to_owned())),
    }
}

#[derive(Default)]
struct State {
    /// The batch being built.
    building: Overlay,
    /// Counter increments of the batch being built.
    building_counts: Counts,
    /// Number of the batch being built (batches count from 1).
    building_no: u64,
    /// Commands in the batch being built.
    building_commands: usize,
    /// The batch being applied.
    applying: Option<Arc<Overlay>>,
    /// Highest batch number applied.
    applied: u64,
    /// Highest batch number holding a kept command: what [`Writer::durable`] waits for.
    last_kept: u64,
    /// The first batch that failed to apply, and why: every batch from it on fails.
    failed: Option<(u64, String)>,
    /// Highest applied batch the flusher has been asked to make durable.
    flush_wanted: u64,
    /// Set once the committer thread has ended: the flusher ends after its last flush.
    committer_done: bool,
}

/// What callers hand the committer, under a lock of its own: an async caller queues a command
/// without waiting for the committer, which holds [`State`]'s lock while it runs commands.
#[derive(Default)]
struct Inbox {
    /// Commands queued by [`Writer::submit`].
    queue: VecDeque<Job>,
    /// A blocking [`Writer::exec`] added writes to the batch being built: apply it.
    kicked: bool,
    /// Set when the store instance is dropped.
    shutdown: bool,
    /// Why a batch failed to apply, once one has (mirrors [`State::failed`]).
    failed: Option<String>,
}

/// The latest flushed batch.
#[derive(Clone, Debug, Default)]
struct Flushed {
    /// Every batch up to this number is on disk.
    done: u64,
    /// Set once a flush failed: every later wait fails with it.
    error: Option<String>,
}

/// Counters for tests and benchmarks.
#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    commands: AtomicU64,
    writes: AtomicU64,
    counter_writes: AtomicU64,
    bytes: AtomicU64,
    flushes: AtomicU64,
    flush_micros: AtomicU64,
    durable_batch: AtomicU64,
}

impl Counters {
    /// Counts one kept command and its writes.
    fn count(&self, writes: &Overlay) {
        self.commands.fetch_add(1, Ordering::Relaxed);
        self.writes
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        self.bytes
            .fetch_add(writes.bytes() as u64, Ordering::Relaxed);
    }
}

/// What the writer has done so far (for tests and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Batches applied.
    pub batches: u64,
    /// Commands that kept their writes.
    pub commands: u64,
    /// Keys written (inserted or removed), counted once per command that wrote them.
    pub writes: u64,
    /// Counter keys written once per batch (the hourly tallies), not counted in `writes`.
    pub counter_writes: u64,
    /// Bytes of those keys and values.
    pub bytes: u64,
    /// Group-commit flushes made.
    pub flushes: u64,
    /// Time spent in those flushes, in microseconds.
    pub flush_micros: u64,
    /// Every batch up to this number (batches count from 1, in the order applied) is on disk.
    pub durable_batch: u64,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes blocking callers waiting for their batch to be applied.
    changed: Condvar,
    /// Commands and signals for the committer.
    inbox: Mutex<Inbox>,
    /// Wakes the committer (a command queued, a batch kicked, a flush ended, or shutdown).
    work: Condvar,
    /// [`State::applied`], readable without the state lock (by [`Writer::durable`]).
    applied: AtomicU64,
    /// Wakes the flusher (a batch applied, or the committer ended).
    flush_needed: Condvar,
    flushed: watch::Sender<Flushed>,
    /// Answers waiting for a flush ([`Ack::Durable`]); the flusher takes them. The flusher
    /// moves `counters.durable_batch` and sets `flush_error` under this lock, so an answer
    /// handed over is either taken by a flush or answered at once, never left behind.
    awaiting: Mutex<AwaitingFlush>,
    /// Why a flush failed, once one has: every waiting and later durable answer fails with it.
    flush_error: std::sync::OnceLock<String>,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn awaiting(&self) -> MutexGuard<'_, AwaitingFlush> {
        self.awaiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether every applied batch is on disk (or flushing has failed: nothing to wait for).
    fn flush_caught_up(&self) -> bool {
        self.counters.durable_batch.load(Ordering::Acquire) >= self.applied.load(Ordering::Acquire)
            || self.flush_error.get().is_some()
    }

    /// Hands `answers` to the flusher, to be given `Ok(batch)` once batch `batch` is on disk
    /// (at once when it is already). Call it before asking for the flush of `batch`, so that
    /// flush finds them.
    fn answer_when_flushed(&self, batch: u64, answers: Vec<Deliver>) {
        if answers.is_empty() {
            return;
        }
        let now: Result<u64, String> = {
            let mut waiting = self.awaiting();
            if let Some(why) = self.flush_error.get() {
                Err(why.clone())
            } else if self.counters.durable_batch.load(Ordering::Acquire) >= batch {
                Ok(batch)
            } else {
                waiting.extend(answers.into_iter().map(|d| (batch, d)));
                return;
            }
        };
        for d in answers {
            d(now.clone().map_err(|why| flush_failed(&why)));
        }
    }

    /// Wakes the committer for writes a blocking caller added to the batch being built. Lock
    /// order: the state lock may be held when this takes the inbox's, never the reverse.
    fn kick(&self) {
        self.inbox().kicked = true;
        self.work.notify_one();
    }
}

/// The writer of one store instance; dropping it stops its committer after the queued work.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    keyspace: Arc<dyn Kv>,
    faults: FaultInjector,
    thread: Option<JoinHandle<()>>,
    flusher: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the committer and flusher threads for `keyspace`.
    pub(crate) fn start(keyspace: Arc<dyn Kv>, faults: FaultInjector) -> Result<Self, StoreError> {
        let (flushed, _) = watch::channel(Flushed::default());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                building_no: 1,
                ..State::default()
            }),
            changed: Condvar::new(),
            inbox: Mutex::new(Inbox::default()),
            work: Condvar::new(),
            applied: AtomicU64::new(0),
            flush_needed: Condvar::new(),
            flushed,
            awaiting: Mutex::new(AwaitingFlush::new()),
            flush_error: std::sync::OnceLock::new(),
            counters: Counters::default(),
        });
        let committer = Committer {
            shared: shared.clone(),
            keyspace: keyspace.clone(),
            faults: faults.clone(),
        };
        let flusher = Flusher {
            shared: shared.clone(),
            db: keyspace.clone(),
            faults: faults.clone(),
        };
        let flusher = std::thread::Builder::new()
            .name("plazo-store-flusher".into())
            .spawn(move || flusher.run())
            .map_err(StoreError::Io)?;
        let thread = std::thread::Builder::new()
            .name("plazo-store-writer".into())
            .spawn(move || committer.run())
            .map_err(StoreError::Io)?;
        Ok(Writer {
            shared,
            keyspace,
            faults,
            thread: Some(thread),
            flusher: Some(flusher),
        })
    }

    /// What the writer has done so far.
    pub(crate) fn stats(&self) -> WriterStats {
        let c = &self.shared.counters;
        WriterStats {
            batches: c.batches.load(Ordering::Relaxed),
            commands: c.commands.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            counter_writes: c.counter_writes.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            flush_micros: c.flush_micros.load(Ordering::Relaxed),
            durable_batch: c.durable_batch.load(Ordering::Acquire),
        }
    }

    /// Runs `f` on the calling thread as one command of the current batch, and returns once
    /// that batch is applied. Blocks: call it from a blocking thread, never from async code.
    ///
    /// `f` runs while the writer's lock is held: it must be short and must not call the
    /// store's writing methods (it would wait for itself).
    pub(crate) fn exec<T, E>(
        &self,
        f: impl FnOnce(&SledTx<'_>) -> Result<T, TxError<E>>,
    ) -> Result<Result<T, E>, StoreError> {
        self.faults.check().map_err(|source| StoreError::Storage {
            op: "transaction",
            source,
        })?;
        let mut st = self.shared.lock();
        if let Some((_, why)) = &st.failed {
            return Err(broken(why));
        }
        let ctx = Ctx {
            local: std::cell::RefCell::new(Overlay::with_capacity(8)),
            counts: Default::default(),
            building: &st.building,
            applying: st.applying.as_deref(),
            keyspace: &*self.keyspace,
        };
        let result = run_command(&ctx, f);
        let counts = ctx.counts.into_inner();
        let local = ctx.local.into_inner();
        let value = match result {
            Ok(v) => v,
            Err(TxError::Abort(e)) => return Ok(Err(e)),
            Err(TxError::Conflict(fail)) => return Err(fail.into_store_error()),
        };
        let batch = if local.is_empty() {
            // Read only: it may have read writes of the batch being built or applied, which
            // are not visible to other readers (nor durable) yet; answer once they are applied.
            if st.building.is_empty() && st.applying.is_none() {
                return Ok(Ok(value));
            }
            st.last_kept
        } else {
            self.shared.counters.count(&local);
            st.building.merge(local);
            add_counts(&mut st.building_counts, counts);
            st.building_commands += 1;
            st.last_kept = st.building_no;
            self.shared.kick();
            st.building_no
        };
        // Wait until the batch is applied (or failed).
        loop {
            if let Some((from, why)) = &st.failed {
                if *from <= batch {
                    return Err(broken(why));
                }
            }
            if st.applied >= batch {
                return Ok(Ok(value));
            }
            st = self
                .shared
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Queues `f` as one command for the committer thread to run, and resolves once its batch
    /// is applied, or with [`Ack::Durable`] once it is on disk. Nothing runs on the calling
    /// (async) thread.
    ///
    /// A panic in `f` is caught on the committer thread and resumed here.
    pub(crate) async fn submit<T, E>(
        &self,
        ack: Ack,
        f: impl FnOnce(&SledTx<'_>) -> Result<T, TxError<E>> + Send + 'static,
    ) -> Result<Result<T, E>, StoreError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        self.faults.check().map_err(|source| StoreError::Storage {
            op: "transaction",
            source,
        })?;
        type Outcome<T, E> = std::thread::Result<Result<Result<T, E>, StoreError>>;
        let (send, recv) = oneshot::channel::<Outcome<T, E>>();
        let job: Job = Box::new(move |ctx: &Ctx<'_>| {
            let ran = catch_unwind(AssertUnwindSafe(|| run_command(ctx, f)));
            match ran {
                Ok(Ok(value)) => {
                    let deliver: Deliver = Box::new(move |applied| {
                        let _ = send.send(Ok(applied.map(|_| Ok(value))));
                    });
                    (true, deliver, ack)
                }
                Ok(Err(e)) => {
                    let out = match e {
                        TxError::Abort(e) => Ok(Err(e)),
                        TxError::Conflict(fail) => Err(fail.into_store_error()),
                    };
                    let _ = send.send(Ok(out));
                    (false, Box::new(|_| {}), Ack::Applied)
                }
                Err(panic) => {
                    let _ = send.send(Err(panic));
                    (false, Box::new(|_| {}), Ack::Applied)
                }
            }
        });
        {
            // The inbox's lock only: never the state lock, which the committer holds while it
            // runs commands (this is an async worker thread).
            let mut inbox = self.shared.inbox();
            if let Some(why) = &inbox.failed {
                return Err(broken(why));
            }
            inbox.queue.push_back(job);
            self.shared.work.notify_one();
        }
        match recv.await {
            Ok(Ok(out)) => out,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // Dropped unrun: the instance broke or is shutting down.
            Err(_) => Err(StoreError::FlusherStopped),
        }
    }

    /// Waits until every batch applied before this call is on disk: every command whose
    /// caller has had its answer ([`Writer::exec`] and [`Writer::submit`] answer once their
    /// batch is applied). A batch still being built or applied belongs to callers still
    /// waiting, so it is not waited for.
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        self.faults.check().map_err(|source| StoreError::Storage {
            op: "flush",
            source,
        })?;
        // Lock-free: an async caller never waits for the committer's lock.
        let target = self.shared.applied.load(Ordering::Acquire);
        let mut rx = self.shared.flushed.subscribe();
        loop {
            {
                let f = rx.borrow_and_update();
                if let Some(e) = &f.error {
                    return Err(StoreError::Storage {
                        op: "flush",
                        source: sled::Error::Io(std::io::Error::other(e.clone())),
                    });
                }
                if f.done >= target {
                    return Ok(());
                }
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::FlusherStopped);
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shared.inbox().shutdown = true;
        self.shared.work.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The committer has ended (or never started): let the flusher make its last batches
        // durable, then end.
        self.shared.lock().committer_done = true;
        self.shared.flush_needed.notify_one();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
    }
}

/// Runs command `f` against `ctx`; when it succeeds, its pending record writes are written into
/// `ctx` (see [`SledTx::finish`]).
fn run_command<T, E>(
    ctx: &Ctx<'_>,
    f: impl FnOnce(&SledTx<'_>) -> Result<T, TxError<E>>,
) -> Result<T, TxError<E>> {
    let tx = SledTx::new(ctx);
    let value = f(&tx)?;
    tx.finish()?;
    Ok(value)
}

fn broken(why: &str) -> StoreError {
    StoreError::Storage {
        op: "apply batch",
        source: sled::Error::Io(std::io::Error::other(format!(
            "an earlier batch failed to apply: {why}"
        ))),
    }
}

/// The answers of the commands of one batch, by when they are due ([`Ack`]).
#[derive(Default)]
struct Answers {
    applied: Vec<Deliver>,
    durable: Vec<Deliver>,
}

/// The committer thread's side.
struct Committer {
    shared: Arc<Shared>,
    keyspace: Arc<dyn Kv>,
    faults: FaultInjector,
}

impl Committer {
    fn run(self) {
        // Commands taken from the inbox and not yet run (a batch holds at most
        // `MAX_BATCH_COMMANDS`).
        let mut pending: VecDeque<Job> = VecDeque::new();
        // The answers of the commands in the batch being built.
        let mut answers = Answers::default();
        // The batch being built holds writes and waits for the flush of the one before.
        let mut holding = false;
        loop {
            let shutdown = {
                let mut inbox = self.shared.inbox();
                while pending.is_empty()
                    && inbox.queue.is_empty()
                    && !inbox.kicked
                    && !inbox.shutdown
                    && !(holding && self.shared.flush_caught_up())
                {
                    inbox = self
                        .shared
                        .work
                        .wait(inbox)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                pending.append(&mut inbox.queue);
                inbox.kicked = false;
                inbox.shutdown
            };
            let mut st = self.shared.lock();
            if st.building.is_empty() && pending.is_empty() {
                if shutdown {
                    return; // shut down with nothing left to do
                }
                continue;
            }
            self.run_queued(&mut st, &mut pending, &mut answers);
            if st.building.is_empty() {
                let answers = std::mem::take(&mut answers);
                // Only read-only or aborted commands: nothing to apply. What they read is in
                // the batches applied so far: a durable answer waits for those to be flushed.
                let applied = st.applied;
                drop(st);
                for d in answers.applied {
                    d(Ok(0));
                }
                self.shared.answer_when_flushed(applied, answers.durable);
                continue;
            }
            // While the batch before is being flushed, this one takes more commands rather
            // than being applied now: the flush then covers more commands, and the one after
            // it starts as soon as it ends (no pipelining of small batches behind it).
            holding = !shutdown
                && st.building_commands < MAX_BATCH_COMMANDS
                && !self.shared.flush_caught_up();
            if holding {
                continue;
            }
            let answers = std::mem::take(&mut answers);
            // A counter that cannot be read fails the batch like a failed apply.
            let counted = self.add_counters(&mut st);
            // The next batch likely holds about as many writes: reserve room for them now
            // rather than growing the table write by write.
            let room = st.building.len();
            let batch = Arc::new(std::mem::replace(
                &mut st.building,
                Overlay::with_capacity(room),
            ));
            let number = st.building_no;
            st.building_no += 1;
            st.building_commands = 0;
            st.applying = Some(batch.clone());
            drop(st);

            let applied = counted.and_then(|()| self.apply(&batch));
            // Counted before any answer is handed over (the flusher may answer a durable one
            // before this thread runs again): a caller's answer never precedes its count.
            self.shared.counters.batches.fetch_add(1, Ordering::Relaxed);
            if applied.is_ok() {
                // After the apply (and outside the state lock): a reader that sees the new
                // version reads the new lines.
                super::lines_version::bump_written(batch.writes.keys().map(Vec::as_slice));
            }
            let mut durable = answers.durable;
            if applied.is_ok() {
                // Before the flush of this batch is asked for, so that flush answers them.
                self.shared
                    .answer_when_flushed(number, std::mem::take(&mut durable));
            }
            let mut st = self.shared.lock();
            st.applying = None;
            match &applied {
                Ok(()) => {
                    st.applied = number;
                    self.shared.applied.store(number, Ordering::Release);
                    st.flush_wanted = number;
                    self.shared.flush_needed.notify_one();
                }
                Err(e) => {
                    tracing::error!(error = %e, batch = number, "store batch failed to apply");
                    if st.failed.is_none() {
                        st.failed = Some((number, e.to_string()));
                        self.shared.inbox().failed = Some(e.to_string());
                    }
                }
            }
            self.shared.changed.notify_all();
            drop(st);
            // `durable` is empty unless the batch failed.
            for d in answers.applied.into_iter().chain(durable) {
                d(match &applied {
                    Ok(()) => Ok(number),
                    Err(e) => Err(broken(&e.to_string())),
                });
            }
            if applied.is_err() {
                self.shared.flushed.send_modify(|f| {
                    f.error.get_or_insert("a batch failed to apply".into());
                });
            }
        }
    }

    /// Runs queued commands into the batch being built (lock held), up to the batch limit.
    fn run_queued(
        &self,
        st: &mut MutexGuard<'_, State>,
        pending: &mut VecDeque<Job>,
        answers: &mut Answers,
    ) {
        while st.building_commands < MAX_BATCH_COMMANDS {
            let Some(job) = pending.pop_front() else {
                break;
            };
            if st.failed.is_some() {
                // The instance is broken: drop the command unrun; its caller is told.
                drop(job);
                continue;
            }
            let ctx = Ctx {
                local: std::cell::RefCell::new(Overlay::with_capacity(8)),
                counts: Default::default(),
                building: &st.building,
                applying: st.applying.as_deref(),
                keyspace: &*self.keyspace,
            };
            let (keep, deliver, ack) = job(&ctx);
            let counts = ctx.counts.into_inner();
            let local = ctx.local.into_inner();
            if keep && !local.is_empty() {
                self.shared.counters.count(&local);
                st.building.merge(local);
                add_counts(&mut st.building_counts, counts);
                st.building_commands += 1;
                st.last_kept = st.building_no;
            }
            match ack {
                Ack::Applied => answers.applied.push(deliver),
                Ack::Durable => answers.durable.push(deliver),
            }
        }
    }

    /// Turns the batch's counter increments into writes of the batch: each counter read once
    /// and written once. The batch before has been applied, so the keyspace holds every
    /// counter's current value (only the committer writes counters).
    fn add_counters(&self, st: &mut MutexGuard<'_, State>) -> Result<(), StoreError> {
        let counts = std::mem::take(&mut st.building_counts);
        let mut written = 0u64;
        for (key, n) in counts {
            let current = match self.keyspace.get(&key) {
                Ok(Some(raw)) => <[u8; 8]>::try_from(raw.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        tree: "tallies",
                        key: super::keys::describe_raw(&key),
                        reason: format!("counter is {} bytes, expected 8", raw.len()),
                    })?,
                Ok(None) => 0,
                Err(source) => {
                    return Err(StoreError::Storage {
                        op: "read counter",
                        source,
                    });
                }
            };
            let value = current.saturating_add(n).to_be_bytes();
            st.building.insert(key, Some(IVec::from(&value[..])));
            written += 1;
        }
        self.shared
            .counters
            .counter_writes
            .fetch_add(written, Ordering::Relaxed);
        Ok(())
    }

    /// Applies `batch` to the keyspace as one atomic batch of the keyspace (all or nothing, also across
    /// a crash).
    fn apply(&self, batch: &Overlay) -> Result<(), StoreError> {
        self.faults.check().map_err(|source| StoreError::Storage {
            op: "apply batch",
            source,
        })?;
        // In no particular order: a backend that needs one (PostgreSQL) sorts them itself.
        let writes: Vec<(&[u8], Option<&[u8]>)> = batch
            .writes
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        self.keyspace
            .apply(&writes)
            .map_err(|source| StoreError::Storage {
                op: "apply batch",
                source,
            })
    }
}

/// Makes applied batches durable, on its own thread, so the committer runs the next batch's
/// commands while one is flushed. One flush covers every batch applied before it started
/// (group commit).
struct Flusher {
    shared: Arc<Shared>,
    db: Arc<dyn Kv>,
    faults: FaultInjector,
}

impl Flusher {
    fn run(self) {
        let mut done = 0;
        loop {
            let target = {
                let mut st = self.shared.lock();
                while st.flush_wanted <= done && !st.committer_done {
                    st = self
                        .shared
                        .flush_needed
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if st.flush_wanted <= done {
                    return; // the committer has ended and everything applied is flushed
                }
                st.flush_wanted
            };
            let started = crate::clock::monotonic_now();
            let flushed = self.faults.check().and_then(|()| self.db.flush());
            let c = &self.shared.counters;
            c.flushes.fetch_add(1, Ordering::Relaxed);
            c.flush_micros.fetch_add(
                u64::try_from(crate::clock::elapsed_since(started).as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            // The durable answers first: those callers wait on nothing else.
            let (ready, result) = {
                let mut waiting = self.shared.awaiting();
                match &flushed {
                    Ok(()) => {
                        c.durable_batch.fetch_max(target, Ordering::Release);
                        let n = waiting.iter().take_while(|(b, _)| *b <= target).count();
                        (waiting.drain(..n).collect::<Vec<_>>(), Ok(()))
                    }
                    Err(e) => {
                        let _ = self.shared.flush_error.set(e.to_string());
                        let why = self.shared.flush_error.get().cloned().unwrap_or_default();
                        (waiting.drain(..).collect(), Err(why))
                    }
                }
            };
            // A batch the committer holds for this flush may be applied now. Taking the inbox's
            // lock first: the committer checks for that under it, so it cannot miss the wake.
            drop(self.shared.inbox());
            self.shared.work.notify_one();
            for (batch, d) in ready {
                d(match &result {
                    Ok(()) => Ok(batch),
                    Err(why) => Err(flush_failed(why)),
                });
            }
            self.shared.flushed.send_modify(|f| match flushed {
                Ok(()) => f.done = f.done.max(target),
                Err(e) => {
                    tracing::error!(error = %e, "store flush failed");
                    f.error.get_or_insert(e.to_string());
                }
            });
            done = target;
        }
    }
}

impl TxFail {
    /// The store error a failed command reports.
    pub(crate) fn into_store_error(self) -> StoreError {
        match self.0 {
            FailKind::Conflict => StoreError::Storage {
                op: "transaction",
                source: sled::Error::ReportableBug("unexpected transaction conflict".into()),
            },
            FailKind::Storage(source) => StoreError::Storage {
                op: "transaction",
                source,
            },
            FailKind::Corrupt { tree, key, reason } => StoreError::Corrupt { tree, key, reason },
            FailKind::Encode { tree, key, reason } => StoreError::Encode { tree, key, reason },
        }
    }
}
