//! Leadership over one PostgreSQL database: which node may write.
//!
//! Several plazo nodes may point at one database; exactly one of them (the leader) writes and
//! dispatches, the others wait as standbys. The election is PostgreSQL's own: a session-level
//! advisory lock ([`LEADER_LOCK`]) held by one connection of the leader, released by the
//! server the moment that session ends (a node killed, its host gone, its connection cut).
//!
//! Taking the lock bumps `leader.epoch`; every batch the leader writes first reads that row
//! `FOR SHARE` and is refused unless the epoch is still its own ([`check_epoch`]). A takeover's
//! `UPDATE` therefore waits for the old leader's batch in flight, and every later batch of the
//! old leader fails: a node that lost the lock (a network partition, a paused process) can never
//! write over its successor's work (fencing). Its in-flight reminders are in doubt for the new
//! leader, which applies `on_unknown`, exactly as after a crash of a single node.
//!
//! A leader that stops checking its lock (its process paused or hung, its host frozen) would
//! keep the lock for as long as its idle session stays open, which is for ever when nothing
//! breaks the connection. So the lock's session asks the server to end it once idle for the
//! leader's lease ([`LeaderOptions::lease`], `idle_session_timeout`, PostgreSQL 14 or later),
//! and the store's connections end a transaction left idle that long
//! (`idle_in_transaction_session_timeout`): its row lock on `leader` would hold a takeover up.
//!
//! A leader whose lock connection drops reconnects and takes the lock again; it stays leader
//! only if the epoch is still its own (nobody took over meanwhile). Otherwise it has lost
//! leadership for good, and says so through its `on_lost` callback (the daemon exits, and
//! systemd starts it again as a standby).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::Duration;

use thiserror::Error;

use super::{PgConfig, pg_text};

/// Key of the advisory lock the leader holds (a constant of plazo's, "plazoL").
pub(crate) const LEADER_LOCK: i64 = 0x706c_617a_6f4c;

/// Called once when this node has lost leadership for good, with the reason.
pub type OnLost = Arc<dyn Fn(String) + Send + Sync>;

/// How a node seeks and keeps leadership.
#[derive(Clone)]
pub struct LeaderOptions {
    /// This node's name, recorded in `leader.node` (for operators and logs).
    pub node: String,
    /// How often a standby tries the lock, and the leader checks its session.
    pub poll: Duration,
    /// How long [`PgBackend::open`](super::PgBackend) waits to become leader: `None` waits
    /// for ever (a standby); on expiry the open fails with [`LeaderError::Standby`].
    pub wait: Option<Duration>,
    /// Called once when leadership is lost for good (see the module docs).
    pub on_lost: Option<OnLost>,
}

/// The shortest lease (see [`LeaderOptions::lease`]).
const MIN_LEASE: Duration = Duration::from_secs(3);

impl LeaderOptions {
    /// How long the leader's sessions may sit idle (the process paused or hung) before the
    /// server ends them and the lock is free for a standby: ten checks, at least 3 s.
    pub fn lease(&self) -> Duration {
        self.poll.saturating_mul(10).max(MIN_LEASE)
    }
}

impl std::fmt::Debug for LeaderOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderOptions")
            .field("node", &self.node)
            .field("poll", &self.poll)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Default for LeaderOptions {
    fn default() -> Self {
        LeaderOptions {
            node: default_node_name(),
            poll: Duration::from_millis(500),
            wait: None,
            on_lost: None,
        }
    }
}

/// This host's name and the process id: unique among nodes running at once.
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Why leadership could not be taken.
#[derive(Debug, Error)]
pub enum LeaderError {
    /// Another node held the lock for the whole wait.
    #[error(
        "another plazo node is the leader of this database (node {holder:?}); this node waited {waited:?} as a standby"
    )]
    Standby {
        /// The leader's name, as recorded in `leader.node`.
        holder: String,
        /// How long this node waited.
        waited: Duration,
    },
    /// The database could not be reached or queried.
    #[error("PostgreSQL (leadership): {0}")]
    Database(String),
}

/// What [`check_epoch`] runs (prepared by the caller's connection).
pub(crate) const EPOCH_SQL: &str = "SELECT epoch FROM leader WHERE id = 1 FOR SHARE";

/// Fencing: `Ok` when `epoch` is still the leader's epoch, read `FOR SHARE` inside the
/// caller's transaction (a takeover waits for that transaction, and fails every later one).
/// `fence` is [`EPOCH_SQL`], prepared.
pub(crate) fn check_epoch(
    tx: &mut postgres::Transaction<'_>,
    fence: &postgres::Statement,
    epoch: i64,
) -> Result<(), postgres::Error> {
    let current: i64 = tx.query_one(fence, &[])?.get(0);
    if current == epoch {
        return Ok(());
    }
    // Raised by the server, so the caller sees one kind of error for every failed batch; only
    // numbers go into the statement (no text from the database or the config).
    tx.batch_execute(&format!(
        "DO $$ BEGIN RAISE EXCEPTION 'plazo: this node is no longer the leader (its epoch {epoch}; another node took over with epoch {current})'; END $$"
    ))
}

/// Asks the server to end the lock's session once idle for `lease`: a leader that stops
/// checking (paused, hung) then loses the lock instead of holding it for ever.
fn set_lease(client: &mut postgres::Client, lease: Duration) {
    let ms = lease.as_millis();
    if let Err(e) = client.batch_execute(&format!("SET idle_session_timeout = {ms}")) {
        tracing::warn!(error = %pg_text(&e), "leader: the server cannot end an idle lock session (idle_session_timeout needs PostgreSQL 14): a paused leader keeps the lock until its connection breaks");
    }
}

/// Leadership held by this node: the lock's session lives on its own thread.
pub(crate) struct Leader {
    epoch: i64,
    lease: Duration,
    lost: Arc<AtomicBool>,
    /// Batches of this node's store that PostgreSQL rolled back for a conflict and that ran
    /// again (`retry.rs`).
    conflict_retries: AtomicU64,
    /// Dropping it stops the keeper thread, whose session then ends (see [`Leader::release`]).
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: crate::threads::JoinOnce,
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Leader {
    /// Waits (up to `opts.wait`) until this node holds the lock, then bumps the epoch.
    pub(crate) fn acquire(
        config: &PgConfig,
        opts: &LeaderOptions,
    ) -> Result<Arc<Leader>, LeaderError> {
        let started = crate::clock::monotonic_now();
        let db = |e: postgres::Error| LeaderError::Database(pg_text(&e));
        let mut client = config
            .connect()
            .map_err(|e| LeaderError::Database(e.to_string()))?;
        let mut announced = false;
        loop {
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
                .map_err(db)?
                .get(0);
            if got {
                break;
            }
            let holder: String = client
                .query_opt("SELECT node FROM leader WHERE id = 1", &[])
                .map_err(db)?
                .map(|r| r.get(0))
                .unwrap_or_default();
            let waited = crate::clock::monotonic_now().saturating_duration_since(started);
            if opts.wait.is_some_and(|w| waited >= w) {
                return Err(LeaderError::Standby { holder, waited });
            }
            if !announced {
                tracing::info!(node = %opts.node, leader = %holder, "standby: another node is the leader; waiting for its lock");
                announced = true;
            }
            std::thread::sleep(opts.poll);
        }
        set_lease(&mut client, opts.lease());
        let epoch: i64 = client
            .query_one(
                "UPDATE leader SET epoch = epoch + 1, node = $1, since = now() WHERE id = 1 RETURNING epoch",
                &[&opts.node],
            )
            .map_err(db)?
            .get(0);
        tracing::info!(node = %opts.node, epoch, "leader of the database");
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel();
        let keeper = Keeper {
            config: config.clone(),
            client,
            epoch,
            opts: opts.clone(),
            lost: lost.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("plazo-pg-leader".into())
            .spawn(move || keeper.run(&stopped))
            .map_err(|e| LeaderError::Database(format!("cannot start the leader thread: {e}")))?;
        Ok(Arc::new(Leader {
            epoch,
            lease: opts.lease(),
            lost,
            conflict_retries: AtomicU64::new(0),
            stop: Mutex::new(Some(stop)),
            thread: crate::threads::JoinOnce::new(thread),
        }))
    }

    /// The epoch this node's batches carry.
    pub(crate) fn epoch(&self) -> i64 {
        self.epoch
    }

    /// How long the leader's sessions may sit idle ([`LeaderOptions::lease`]).
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// The count of batches run again after a conflict (see `retry.rs`).
    pub(crate) fn conflict_retries(&self) -> &AtomicU64 {
        &self.conflict_retries
    }

    /// Whether leadership has been lost for good.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Gives leadership up at once: the keeper thread ends and its session with it, which
    /// releases the lock for a standby. From then on this node counts as having lost
    /// leadership (nothing of it writes again; `on_lost` is not called: it was asked for).
    /// Called by a clean close of the store, and on drop.
    pub(crate) fn release(&self) {
        self.lost.store(true, Ordering::SeqCst);
        drop(
            self.stop
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        self.thread.join();
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Closing the session releases the lock at once, for the next leader.
        self.release();
    }
}

/// Why the lock's session could not be restored.
enum Retake {
    /// The database cannot be reached (try again).
    Unreachable(String),
    /// Another node holds the lock or took over: leadership is gone.
    Lost(String),
}

/// Keeps the lock's session alive and checks it, on the leader thread.
struct Keeper {
    config: PgConfig,
    client: postgres::Client,
    epoch: i64,
    opts: LeaderOptions,
    lost: Arc<AtomicBool>,
}

impl Keeper {
    fn run(mut self, stopped: &mpsc::Receiver<()>) {
        loop {
            match stopped.recv_timeout(self.opts.poll) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Stopped: the session closes with the client, releasing the lock.
                _ => return,
            }
            let alive = self
                .client
                .query_one("SELECT epoch FROM leader WHERE id = 1", &[])
                .map(|r| r.get::<_, i64>(0));
            match alive {
                Ok(epoch) if epoch == self.epoch => continue,
                Ok(epoch) => {
                    return self.lose(format!(
                        "another node took over (epoch {epoch}, this node had {})",
                        self.epoch
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %pg_text(&e), "leader: lost the lock's session; reconnecting");
                    match self.retake() {
                        Ok(()) => tracing::info!(
                            epoch = self.epoch,
                            "leader: session restored; still the leader"
                        ),
                        // The database is out of reach: so it is for any other node, which
                        // cannot take over meanwhile. Batches fail until it is back.
                        Err(Retake::Unreachable(why)) => {
                            tracing::warn!(reason = %why, "leader: database unreachable; retrying");
                        }
                        Err(Retake::Lost(why)) => return self.lose(why),
                    }
                }
            }
        }
    }

    /// After the session dropped: leader again only if nobody took over meanwhile.
    fn retake(&mut self) -> Result<(), Retake> {
        let unreachable = |e: postgres::Error| Retake::Unreachable(pg_text(&e));
        let mut client = self
            .config
            .connect()
            .map_err(|e| Retake::Unreachable(e.to_string()))?;
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
            .map_err(unreachable)?
            .get(0);
        if !got {
            return Err(Retake::Lost("another node holds the leader lock".into()));
        }
        let epoch: i64 = client
            .query_one("SELECT epoch FROM leader WHERE id = 1", &[])
            .map_err(unreachable)?
            .get(0);
        if epoch != self.epoch {
            return Err(Retake::Lost(format!(
                "another node took over (epoch {epoch}, this node had {})",
                self.epoch
            )));
        }
        set_lease(&mut client, self.opts.lease());
        self.client = client;
        Ok(())
    }

    fn lose(&self, why: String) {
        self.lost.store(true, Ordering::SeqCst);
        tracing::error!(node = %self.opts.node, reason = %why, "no longer the leader of the database: this node stops writing");
        if let Some(f) = &self.opts.on_lost {
            f(why);
        }
    }
}
