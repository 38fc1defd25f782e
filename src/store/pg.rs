//! The PostgreSQL backend (spike): the sled backend's key-value design on one PostgreSQL table.
//!
//! Every record lives in table `keyspace(k bytea primary key, v bytea not null)` under exactly
//! the key sled uses (slot byte ++ key; PostgreSQL orders `bytea` bytewise, like sled), and
//! `meta(k, v)` holds what sled's `meta` tree holds. So the typed trees, the batching writer
//! and the commands (`SledTx`) are the sled backend's own, running over [`Kv`]: a batch is
//! applied as one PostgreSQL transaction, and its commit is the durability point.
//!
//! The synchronous `postgres` client blocks on a runtime of its own and must never run on a
//! tokio worker thread: every query runs on a connection thread of this module's [`Pool`].
//! Each connection prepares a statement once and keeps it ([`Conn::prepared`]), so a query is
//! one round trip, not two.
//!
//! Only the leader writes the table, through one [`PgKv`] per table: so that `PgKv` keeps the
//! values of the single keys it read or wrote ([`cache`]), and a key read again (the batching
//! writer reads the records a command touches, and the next command on the same reminder reads
//! them again) costs no round trip. Ranges always go to the database.
//!
//! Tables are created by versioned migrations applied at open (table `schema_migrations`); a
//! database migrated by a newer plazo is refused before anything is written.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use postgres::types::ToSql;
use sled::IVec;

use super::StoreError;
use super::kv::{Kv, KvEntry, KvIter};

mod backoff;
mod cache;
mod config;
#[cfg(all(test, unix))]
mod connect_tests;
mod leader;
mod retry;
pub mod sends;
#[cfg(unix)]
pub mod testing;
#[cfg(test)]
mod tests;
mod tls;

use cache::{Lookup, ReadCache};
pub(crate) use config::PgConfig;
pub(crate) use leader::Leader;
use leader::{EPOCH_SQL, check_epoch};
pub use leader::{LeaderError, LeaderOptions, OnLost, default_node_name};

/// The schema migrations, in order: version, then SQL. Never edit one once released: add one.
pub(crate) const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE keyspace (k bytea PRIMARY KEY, v bytea NOT NULL);
         CREATE TABLE meta (k bytea PRIMARY KEY, v bytea NOT NULL);
         CREATE SEQUENCE plazo_ids;",
    ),
    (
        2,
        "CREATE TABLE leader (
             id integer PRIMARY KEY CHECK (id = 1),
             epoch bigint NOT NULL,
             node text NOT NULL,
             since timestamptz NOT NULL DEFAULT now());
         INSERT INTO leader (id, epoch, node) VALUES (1, 0, '');",
    ),
    (
        3,
        "CREATE TABLE sends (
             epoch bigint NOT NULL,
             seq bigint NOT NULL,
             channel text NOT NULL,
             payload bytea NOT NULL,
             state smallint NOT NULL DEFAULT 0,
             node text,
             lease_until timestamptz,
             claims integer NOT NULL DEFAULT 0,
             result bytea,
             queued_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (epoch, seq));",
    ),
    (
        4,
        // Results travel in the `plazo_sends_done` notification and a finished row is deleted;
        // fresh messages are found through an index of their own (a claim then skips the dead
        // rows of a burst instead of visiting each); the queue's churn is vacuumed early.
        "ALTER TABLE sends DROP COLUMN result;
         CREATE INDEX sends_queued ON sends (epoch, seq) WHERE state = 0;
         ALTER TABLE sends SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);",
    ),
];

/// Arbitrary key of the advisory lock migrations run under (several nodes may start at once).
const MIGRATION_LOCK: i64 = 0x706c_617a_6f00;

/// Connection threads per store.
const CONNECTIONS: usize = 4;

/// Rows read per query while iterating a range.
const PAGE: usize = 256;

/// Most entries of a prefix held whole in the read cache (see [`PgKv::whole`]).
const WHOLE_LIMIT: usize = 4096;

/// Most keys read by one prefetch query.
const PREFETCH_CHUNK: usize = 1024;

/// Ids taken from the sequence at once ([`Kv::generate_id`]): one round trip per block, not
/// per id. The ids a node does not use are skipped, as a sequence's are anyway.
const ID_BLOCK: i64 = 256;

/// Where a PostgreSQL store lives, and this node's leadership over it.
#[derive(Clone)]
pub(crate) struct PgTarget {
    pub(crate) url: String,
    pub(crate) leader: Arc<Leader>,
}

/// Parses the store's URL ([`PgConfig`]: plazo's timeouts, `sslmode`, `sslrootcert`). The
/// error never holds the URL (it holds a password).
pub(crate) fn parse_url(url: &str) -> Result<PgConfig, StoreError> {
    PgConfig::parse(url).map_err(|e| StoreError::Storage {
        op: "parse the PostgreSQL URL",
        source: sled::Error::Io(std::io::Error::other(e.to_string())),
    })
}

/// Connects once and applies the pending migrations (under their advisory lock).
pub(crate) fn migrate_now(config: &PgConfig) -> Result<(), StoreError> {
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    let failed = |e: postgres::Error| StoreError::Storage {
        op: "connect to PostgreSQL and migrate",
        source: pg_err(e),
    };
    let mut client = config.connect().map_err(|e| StoreError::Storage {
        op: "connect to PostgreSQL and migrate",
        source: sled::Error::Io(std::io::Error::other(e.to_string())),
    })?;
    if let Err(found) = migrate(&mut client, latest).map_err(failed)? {
        return Err(StoreError::SchemaMismatch {
            found: u32::try_from(found).unwrap_or(u32::MAX),
            expected: u32::try_from(latest).unwrap_or(u32::MAX),
        });
    }
    Ok(())
}

/// A PostgreSQL failure, as the store reports storage errors.
fn pg_err(e: postgres::Error) -> sled::Error {
    sled::Error::Io(std::io::Error::other(format!(
        "PostgreSQL: {}",
        pg_text(&e)
    )))
}

/// A PostgreSQL error as text, with its cause: the client's own text leaves the cause out
/// ("db error" for whatever the server reported, the fencing refusal included; "error
/// connecting to server" without saying why).
pub(crate) fn pg_text(e: &postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// A connection thread's client and the statements prepared on it (dropped with it, on a
/// reconnect). The statements are a fixed, small set (one per SQL text the store builds).
pub(crate) struct Conn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl Conn {
    /// `sql` prepared on this connection: prepared once, then reused.
    fn prepared(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

/// A query for a connection thread: its connection, or why it cannot connect.
type Job = Box<dyn FnOnce(Result<&mut Conn, &str>) + Send>;

/// Connection threads, each with its own client (connected on first use, reconnected after a
/// failure, with a growing pause between failed tries: `backoff.rs`), taking queries from one
/// queue.
pub(crate) struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Connects tried by the threads, successful or not (the tests read it).
    #[cfg_attr(not(test), allow(dead_code))]
    connects: Arc<std::sync::atomic::AtomicU64>,
}

impl Pool {
    /// `lease`: a transaction left idle that long is ended by the server (its row lock on
    /// `leader` would hold a takeover up while this process is paused).
    fn start(
        config: PgConfig,
        threads: usize,
        lease: std::time::Duration,
    ) -> Result<Arc<Pool>, StoreError> {
        let setup = format!(
            "SET idle_in_transaction_session_timeout = {}",
            lease.as_millis()
        );
        let (send, recv) = mpsc::channel::<Job>();
        let recv = Arc::new(Mutex::new(recv));
        let connects = Arc::new(std::sync::atomic::AtomicU64::new(0));
        for i in 0..threads {
            let recv = recv.clone();
            let config = config.clone();
            let setup = setup.clone();
            let connects = connects.clone();
            std::thread::Builder::new()
                .name(format!("plazo-pg-{i}"))
                .spawn(move || {
                    let mut conn: Result<Conn, String> = Err("not connected yet".into());
                    let mut backoff = backoff::Backoff::default();
                    loop {
                        let job = recv.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = job else { return };
                        let now = crate::clock::monotonic_now();
                        let broken =
                            conn.as_ref().is_ok_and(|c| c.client.is_closed()) || conn.is_err();
                        // Until the pause is over, the job gets the last connect error.
                        if broken && backoff.may_try(now) {
                            connects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            conn = config
                                .connect()
                                .and_then(|mut c| {
                                    c.batch_execute(&setup).map(|()| c).map_err(Into::into)
                                })
                                .map(|client| Conn {
                                    client,
                                    statements: HashMap::new(),
                                })
                                .map_err(|e| e.to_string());
                            match &conn {
                                Ok(_) => backoff.succeeded(),
                                Err(_) => backoff.failed(now),
                            }
                        }
                        job(conn.as_mut().map_err(|e| e.as_str()));
                    }
                })
                .map_err(StoreError::Io)?;
        }
        Ok(Arc::new(Pool {
            jobs: Mutex::new(send),
            connects,
        }))
    }

    /// Connects tried so far by the pool's threads.
    #[cfg(test)]
    fn connects(&self) -> u64 {
        self.connects.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on a connection thread and waits for its result.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, sled::Error> {
        let (send, recv) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            let r = match client {
                Ok(c) => f(c).map_err(pg_err),
                Err(why) => Err(sled::Error::Io(std::io::Error::other(why.to_owned()))),
            };
            let _ = send.send(r);
        });
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| sled::Error::Io(std::io::Error::other("PostgreSQL pool stopped")))?;
        recv.recv()
            .map_err(|_| sled::Error::Io(std::io::Error::other("PostgreSQL pool stopped")))?
    }
}

/// The two tables of a store: the keyspace, then `meta`.
pub(crate) type Tables = (Arc<dyn Kv>, Arc<dyn Kv>);

/// Connects to the store's database (migrated, and led by this node: see
/// [`PgBackend::open_with`]) and returns the keyspace and meta tables, whose writes carry this
/// node's leader epoch.
pub(crate) fn open_keyspace(target: &PgTarget) -> Result<Tables, StoreError> {
    if target.leader.is_lost() {
        return Err(StoreError::Storage {
            op: "open the PostgreSQL store",
            source: sled::Error::Io(std::io::Error::other(
                "this node is no longer the database's leader",
            )),
        });
    }
    let pool = Pool::start(parse_url(&target.url)?, CONNECTIONS, target.leader.lease())?;
    let ks: Arc<dyn Kv> = Arc::new(PgKv::new(
        pool.clone(),
        "keyspace",
        &[&[super::slot::INFLIGHT]],
        target.leader.clone(),
    ));
    let meta: Arc<dyn Kv> = Arc::new(PgKv::new(pool, "meta", &[], target.leader.clone()));
    Ok((ks, meta))
}

/// Applies the pending migrations; `Err(found)` (nothing written) when the database is at a
/// newer version than `latest`.
fn migrate(c: &mut postgres::Client, latest: i32) -> Result<Result<(), i32>, postgres::Error> {
    let current = |c: &mut postgres::Client| -> Result<i32, postgres::Error> {
        let exists: bool = c
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?
            .get(0);
        if !exists {
            return Ok(0);
        }
        c.query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .map(|r| r.get(0))
    };
    let found = current(c)?;
    if found > latest {
        return Ok(Err(found));
    }
    if found == latest {
        return Ok(Ok(()));
    }
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    if found > latest {
        tx.rollback()?;
        return Ok(Err(found));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )?;
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// One table of `bytea` keys and values, read and written through the pool.
struct PgKv {
    pool: Arc<Pool>,
    /// `keyspace` or `meta` (never user input).
    table: &'static str,
    /// This node's leadership: its epoch goes with every write (fencing, see `leader.rs`);
    /// once lost, the cache is dropped (another node writes the table).
    leader: Arc<Leader>,
    /// This node's leader epoch: every write checks it first.
    epoch: i64,
    /// Values of single keys read or written (see [`cache`]).
    cache: ReadCache,
    /// Prefixes the cache holds whole once one of their keys is read, when they have at most
    /// [`WHOLE_LIMIT`] entries: the in-flight reminders of the keyspace (a few per dispatch
    /// slot; asked about for every step planned, and never holding it).
    whole: &'static [&'static [u8]],
    /// Ids taken from the sequence and not handed out yet, in increasing order.
    ids: Mutex<std::collections::VecDeque<u64>>,
    /// The statements' SQL, built once.
    sql: Statements,
}

/// The SQL of a table's statements (the table name is the only thing formatted in), shared
/// with the connection threads without a copy per query.
struct Statements {
    get: Arc<str>,
    get_many: Arc<str>,
    upsert_one: Arc<str>,
    upsert: Arc<str>,
    delete: Arc<str>,
    #[cfg(test)]
    remove: Arc<str>,
}

impl Statements {
    fn new(table: &str) -> Self {
        Statements {
            get: format!("SELECT v FROM {table} WHERE k = $1").into(),
            get_many: format!("SELECT k, v FROM {table} WHERE k = ANY($1)").into(),
            upsert_one: format!(
                "INSERT INTO {table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
            ).into(),
            upsert: format!(
                "INSERT INTO {table} (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[])
                 ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
            ).into(),
            delete: format!("DELETE FROM {table} WHERE k = ANY($1)").into(),
            #[cfg(test)]
            remove: format!("DELETE FROM {table} WHERE k = $1").into(),
        }
    }
}

impl PgKv {
    fn new(
        pool: Arc<Pool>,
        table: &'static str,
        whole: &'static [&'static [u8]],
        leader: Arc<Leader>,
    ) -> Self {
        PgKv {
            pool,
            table,
            whole,
            epoch: leader.epoch(),
            leader,
            cache: ReadCache::default(),
            ids: Mutex::default(),
            sql: Statements::new(table),
        }
    }

    /// The cache, unless leadership is lost (then it is dropped for good).
    fn cache(&self) -> &ReadCache {
        if self.leader.is_lost() {
            self.cache.disable();
        }
        &self.cache
    }

    /// Up to `limit` entries of `lo..hi` in key order (`rev`: reverse).
    fn page(
        &self,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
        rev: bool,
        limit: usize,
    ) -> Result<Vec<(IVec, IVec)>, sled::Error> {
        let mut sql = format!("SELECT k, v FROM {} WHERE true", self.table);
        let mut params: Vec<Vec<u8>> = Vec::new();
        for (bound, incl, excl) in [(lo, ">=", ">"), (hi, "<=", "<")] {
            let (op, key) = match bound {
                Bound::Included(k) => (incl, k),
                Bound::Excluded(k) => (excl, k),
                Bound::Unbounded => continue,
            };
            params.push(key.clone());
            sql.push_str(&format!(" AND k {op} ${}", params.len()));
        }
        let order = if rev { "DESC" } else { "ASC" };
        sql.push_str(&format!(
            " ORDER BY k {order} LIMIT ${}::bigint",
            params.len() + 1
        ));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.pool.run(move |c| {
            let st = c.prepared(&sql)?;
            let mut refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            refs.push(&limit);
            let rows = c.client.query(&st, &refs)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let k: &[u8] = r.get(0);
                    let v: &[u8] = r.get(1);
                    (IVec::from(k), IVec::from(v))
                })
                .collect())
        })
    }
}

/// A range read a page at a time (each page one query).
struct PageIter<'a> {
    kv: &'a PgKv,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    rev: bool,
    buf: std::vec::IntoIter<(IVec, IVec)>,
    done: bool,
}

impl Iterator for PageIter<'_> {
    type Item = KvEntry;

    fn next(&mut self) -> Option<KvEntry> {
        if let Some(e) = self.buf.next() {
            return Some(Ok(e));
        }
        if self.done {
            return None;
        }
        match self.kv.page(&self.lo, &self.hi, self.rev, PAGE) {
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(rows) => {
                self.done = rows.len() < PAGE;
                if let Some((last, _)) = rows.last() {
                    let after = Bound::Excluded(last.to_vec());
                    if self.rev {
                        self.hi = after;
                    } else {
                        self.lo = after;
                    }
                }
                self.buf = rows.into_iter();
                self.buf.next().map(Ok)
            }
        }
    }
}

impl Kv for PgKv {
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, sled::Error> {
        let cache = self.cache();
        let ticket = match cache.lookup(key) {
            Lookup::Hit(v) => return Ok(v),
            Lookup::Miss(ticket) => ticket,
        };
        if let Some(ticket) = ticket {
            let whole = self.whole.iter().find(|p| key.starts_with(p));
            if let Some(prefix) = whole.filter(|p| cache.wants_whole(p)) {
                let rows = self.page(
                    &Bound::Included(prefix.to_vec()),
                    &super::kv::prefix_end(prefix),
                    false,
                    WHOLE_LIMIT + 1,
                )?;
                if rows.len() > WHOLE_LIMIT {
                    cache.fill_whole(ticket, prefix, None);
                } else if cache.fill_whole(ticket, prefix, Some(rows)) {
                    if let Lookup::Hit(v) = cache.lookup(key) {
                        return Ok(v);
                    }
                }
            }
        }
        let sql = self.sql.get.clone();
        let owned = key.to_vec();
        let value = self.pool.run(move |c| {
            let st = c.prepared(&sql)?;
            Ok(c.client.query_opt(&st, &[&owned])?.map(|r| {
                let v: &[u8] = r.get(0);
                IVec::from(v)
            }))
        })?;
        if let Some(ticket) = ticket {
            cache.fill(ticket, key, value.clone());
        }
        Ok(value)
    }

    fn prefetches(&self) -> bool {
        true
    }

    fn prefetch(&self, keys: &[Vec<u8>]) -> Result<(), sled::Error> {
        let cache = self.cache();
        let mut wanted: Vec<Vec<u8>> = keys
            .iter()
            .filter(|k| !cache.contains(k))
            .cloned()
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        for chunk in wanted.chunks(PREFETCH_CHUNK) {
            // Pointless while a write is under way (nothing read could be kept).
            let Some(ticket) = cache.ticket() else {
                return Ok(());
            };
            let sql = self.sql.get_many.clone();
            let owned = chunk.to_vec();
            let found = self.pool.run(move |c| {
                let st = c.prepared(&sql)?;
                let rows = c.client.query(&st, &[&owned])?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        let k: &[u8] = r.get(0);
                        let v: &[u8] = r.get(1);
                        (k.to_vec(), IVec::from(v))
                    })
                    .collect::<HashMap<_, _>>())
            })?;
            cache.fill_many(
                ticket,
                chunk.iter().map(|k| (k.as_slice(), found.get(k).cloned())),
            );
        }
        Ok(())
    }

    fn range(&self, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>, rev: bool) -> KvIter<'_> {
        Box::new(PageIter {
            kv: self,
            lo,
            hi,
            rev,
            buf: Vec::new().into_iter(),
            done: false,
        })
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), sled::Error> {
        let sql = self.sql.upsert_one.clone();
        let (k, v) = (key.to_vec(), value.to_vec());
        let epoch = self.epoch;
        let leader = self.leader.clone();
        let write = self.cache().write([key]);
        self.pool.run(move |c| {
            let fence = c.prepared(EPOCH_SQL)?;
            let st = c.prepared(&sql)?;
            retry::retrying(leader.conflict_retries(), || {
                let mut tx = c.client.transaction()?;
                check_epoch(&mut tx, &fence, epoch)?;
                tx.execute(&st, &[&k, &v])?;
                tx.commit()
            })
        })?;
        write.committed([(key, Some(IVec::from(value)))]);
        Ok(())
    }

    #[cfg(test)]
    fn remove(&self, key: &[u8]) -> Result<(), sled::Error> {
        let sql = self.sql.remove.clone();
        let k = key.to_vec();
        let write = self.cache().write([key]);
        self.pool.run(move |c| {
            let st = c.prepared(&sql)?;
            c.client.execute(&st, &[&k]).map(|_| ())
        })?;
        write.committed([(key, None)]);
        Ok(())
    }

    fn apply(&self, writes: &[(&[u8], Option<&[u8]>)]) -> Result<(), sled::Error> {
        // In key order: PostgreSQL takes the rows' locks in it, the same order for every batch.
        let mut writes = writes.to_vec();
        writes.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut values: Vec<Vec<u8>> = Vec::new();
        let mut removed: Vec<Vec<u8>> = Vec::new();
        for (k, v) in &writes {
            match v {
                Some(v) => {
                    keys.push(k.to_vec());
                    values.push(v.to_vec());
                }
                None => removed.push(k.to_vec()),
            }
        }
        let (upsert, delete) = (self.sql.upsert.clone(), self.sql.delete.clone());
        let epoch = self.epoch;
        let leader = self.leader.clone();
        // Dropped on an error: the outcome is unknown, and the cache is dropped for good.
        let write = self.cache().write(writes.iter().map(|w| w.0));
        self.pool.run(move |c| {
            let fence = c.prepared(EPOCH_SQL)?;
            let upsert = c.prepared(&upsert)?;
            let delete = c.prepared(&delete)?;
            // A batch the server rolled back for a conflict runs again (see `retry.rs`).
            retry::retrying(leader.conflict_retries(), || {
                let mut tx = c.client.transaction()?;
                check_epoch(&mut tx, &fence, epoch)?;
                if !keys.is_empty() {
                    tx.execute(&upsert, &[&keys, &values])?;
                }
                if !removed.is_empty() {
                    tx.execute(&delete, &[&removed])?;
                }
                tx.commit()
            })
        })?;
        write.committed(writes.iter().map(|(k, v)| (*k, v.map(IVec::from))));
        Ok(())
    }

    fn generate_id(&self) -> Result<u64, sled::Error> {
        let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        if ids.is_empty() {
            let mut block = self.pool.run(|c| {
                let st =
                    c.prepared("SELECT nextval('plazo_ids') FROM generate_series(1, $1::bigint)")?;
                Ok(c.client
                    .query(&st, &[&ID_BLOCK])?
                    .iter()
                    .map(|r| r.get::<_, i64>(0).unsigned_abs())
                    .collect::<Vec<u64>>())
            })?;
            block.sort_unstable();
            ids.extend(block);
        }
        ids.pop_front().ok_or_else(|| {
            sled::Error::Io(std::io::Error::other(
                "PostgreSQL: the id sequence returned no value",
            ))
        })
    }

    fn flush(&self) -> Result<(), sled::Error> {
        Ok(()) // every apply is a committed transaction
    }

    fn size_on_disk(&self) -> Result<u64, sled::Error> {
        self.pool.run(|c| {
            let n: i64 = c
                .client
                .query_one("SELECT pg_database_size(current_database())", &[])?
                .get(0);
            Ok(n.unsigned_abs())
        })
    }
}
