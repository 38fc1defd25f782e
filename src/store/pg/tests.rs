//! The PostgreSQL backend against a real PostgreSQL server (see [`super::testing`]).

use super::super::pg_backend::PgBackend;
use crate::store::conformance::Harness;
use crate::store::{Store, StoreOptions};

/// Opens stores on one database of its own.
pub(crate) struct PgHarness {
    pub(crate) url: String,
}

impl PgHarness {
    /// A harness on a new database; `None` (test skipped) without PostgreSQL.
    pub(crate) fn new() -> Option<Self> {
        super::testing::new_database()
            .unwrap()
            .map(|url| PgHarness { url })
    }
}

impl Harness for PgHarness {
    fn open(&self) -> Store {
        let backend = PgBackend::open(&self.url, StoreOptions::default()).unwrap();
        Store::with_backend(std::sync::Arc::new(backend))
    }
}

#[test]
fn a_newer_schema_is_refused_and_nothing_is_written() {
    let Some(h) = PgHarness::new() else { return };
    drop(h.open());
    let url = h.url.clone();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute("INSERT INTO schema_migrations (version) VALUES (99)")
            .unwrap();
    })
    .join()
    .unwrap();
    let err = PgBackend::open(&h.url, StoreOptions::default())
        .err()
        .unwrap();
    let latest = super::MIGRATIONS.last().map(|m| m.0).unwrap();
    assert!(
        matches!(
            err,
            crate::store::StoreError::SchemaMismatch {
                found: 99,
                expected,
            } if i64::from(expected) == i64::from(latest)
        ),
        "{err}"
    );
}

#[test]
fn an_unreachable_database_is_a_clear_error_at_open() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgresql://plazo@127.0.0.1:{port}/none?connect_timeout=5");
    let err = PgBackend::open(&url, StoreOptions::default())
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("connect to PostgreSQL") && msg.contains("cannot connect"),
        "{msg}"
    );
    // With the cause, not just "error connecting to server".
    assert!(msg.contains("refused"), "{msg}");
    assert!(err.is_storage_failure(), "{msg}");
}

#[test]
fn records_without_a_schema_version_are_reported_not_overwritten() {
    let Some(h) = PgHarness::new() else { return };
    drop(h.open());
    let url = h.url.clone();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute("DELETE FROM meta; INSERT INTO keyspace VALUES ('\\x00', '\\x00')")
            .unwrap();
    })
    .join()
    .unwrap();
    let err = PgBackend::open(&h.url, StoreOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, crate::store::StoreError::Corrupt { tree: "meta", .. }),
        "{err}"
    );
}

#[test]
fn the_backend_is_named_postgres() {
    let Some(h) = PgHarness::new() else { return };
    assert_eq!(h.open().backend_name(), "postgres");
}

#[test]
fn a_clean_close_gives_leadership_up_while_handles_remain() {
    let Some(h) = PgHarness::new() else { return };
    let first = h.open();
    let still_held = first.clone(); // a worker that has not stopped yet, say
    let wait_briefly = |wait| crate::store::LeaderOptions {
        wait: Some(wait),
        ..crate::store::LeaderOptions::default()
    };
    // While it leads, a second node waits as a standby.
    let refused = PgBackend::open_with(
        &h.url,
        StoreOptions::default(),
        &wait_briefly(std::time::Duration::from_millis(300)),
    );
    assert!(
        matches!(refused, Err(crate::store::StoreError::Leadership(_))),
        "a second leader while the first leads"
    );
    first.close().unwrap();
    let second = PgBackend::open_with(
        &h.url,
        StoreOptions::default(),
        &wait_briefly(std::time::Duration::from_secs(10)),
    )
    .expect("a closed store has given leadership up");
    assert_eq!(
        Store::with_backend(std::sync::Arc::new(second)).leader_epoch(),
        Some(2)
    );
    // The closed store writes nothing any more.
    let c = crate::store::conformance::client("late");
    assert!(
        still_held
            .transaction::<_, std::convert::Infallible>(move |tx| Ok(tx.put_client(&c)?))
            .is_err()
    );
}

/// The backend conformance suite, on PostgreSQL.
mod conformance_on_postgres {
    use super::PgHarness;
    crate::conformance_suite!(match PgHarness::new() {
        Some(h) => h,
        None => return,
    });
}

/// Writes `n` clients as `n` concurrent async commands, then waits for durability: commands
/// per second (a rough figure: debug build, shared machine).
async fn write_rate(store: &Store, n: usize) -> f64 {
    let started = crate::clock::monotonic_now();
    let writes = (0..n).map(|i| {
        let store = store.clone();
        async move {
            let c = crate::store::conformance::client(&format!("c-{i}"));
            store
                .write::<_, std::convert::Infallible>(move |tx| Ok(tx.put_client(&c)?))
                .await
                .unwrap()
                .unwrap();
            store.durable().await.unwrap();
        }
    });
    futures::future::join_all(writes).await;
    n as f64 / crate::clock::elapsed_since(started).as_secs_f64()
}

/// Writes `n` clients one command at a time, each waited for until durable: commands per
/// second.
async fn sequential_rate(store: &Store, n: usize) -> f64 {
    let started = crate::clock::monotonic_now();
    for i in 0..n {
        let c = crate::store::conformance::client(&format!("s-{i}"));
        store
            .write::<_, std::convert::Infallible>(move |tx| Ok(tx.put_client(&c)?))
            .await
            .unwrap()
            .unwrap();
        store.durable().await.unwrap();
    }
    n as f64 / crate::clock::elapsed_since(started).as_secs_f64()
}

/// Rough write throughput, PostgreSQL beside sled (run by hand with `--ignored --nocapture`).
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn rough_write_throughput() {
    let Some(h) = PgHarness::new() else { return };
    let n = 5000;
    let pg_store = h.open();
    let pg = write_rate(&pg_store, n).await;
    let pg_seq = sequential_rate(&pg_store, 500).await;
    let dir = tempfile::tempdir().unwrap();
    let sled = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let sl = write_rate(&sled, n).await;
    let sl_seq = sequential_rate(&sled, 500).await;
    eprintln!("{n} concurrent durable commands: postgres {pg:.0}/s, sled {sl:.0}/s");
    eprintln!("500 sequential durable commands: postgres {pg_seq:.0}/s, sled {sl_seq:.0}/s");
}

/// A connection cut by the server (a restart, a failover): the store reports the failed write,
/// reconnects by itself, and writes again.
#[tokio::test(flavor = "multi_thread")]
async fn the_store_reconnects_after_its_connections_are_cut() {
    let Some(h) = PgHarness::new() else { return };
    let store = h.open();
    let write = |id: &str| {
        let store = store.clone();
        let c = crate::store::conformance::client(id);
        async move {
            store
                .write::<_, std::convert::Infallible>(move |tx| Ok(tx.put_client(&c)?))
                .await
        }
    };
    write("c-before").await.unwrap().unwrap();
    let url = h.url.clone();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .unwrap();
    })
    .join()
    .unwrap();
    // The first writes may fail (the batch that met the cut connection); writes work again
    // once the store has reconnected.
    let mut i = 0;
    let recovered = crate::store::conformance::eventually(|| {
        i += 1;
        let id = format!("c-after-{i}");
        let store = store.clone();
        std::thread::spawn(move || {
            let c = crate::store::conformance::client(&id);
            store
                .transaction::<_, std::convert::Infallible>(|tx| Ok(tx.put_client(&c)?))
                .is_ok()
        })
        .join()
        .unwrap()
    })
    .await;
    assert!(recovered, "the store never wrote again");
    assert!(store.health().is_ok());
    // A read may meet a pool connection that has not noticed the cut yet; the next one
    // reconnects.
    let id = crate::domain::ClientId::new("c-before").unwrap();
    let found =
        crate::store::conformance::eventually(|| matches!(store.client(&id), Ok(Some(_)))).await;
    assert!(found, "the client written before the cut is gone");
}

/// Two nodes on one database: the second waits as a standby while the first leads, takes over
/// once the first is gone, and the first's writes are fenced off from then on.
#[tokio::test(flavor = "multi_thread")]
async fn one_leader_at_a_time_and_a_deposed_leader_cannot_write() {
    use crate::store::{LeaderError, LeaderOptions, StoreError};
    use std::time::Duration;
    let Some(h) = PgHarness::new() else { return };
    let quick = |node: &str, wait: u64| LeaderOptions {
        node: node.into(),
        poll: Duration::from_millis(100),
        wait: Some(Duration::from_millis(wait)),
        on_lost: None,
    };
    // a checks its lock only once a minute: it cannot win the lock back before b takes it.
    let slow = LeaderOptions {
        poll: Duration::from_secs(60),
        ..quick("a", 0)
    };
    let a = PgBackend::open_with(&h.url, StoreOptions::default(), &slow).unwrap();
    let a = Store::with_backend(std::sync::Arc::new(a));
    let put = |store: &Store, id: &str| {
        let c = crate::store::conformance::client(id);
        store.transaction::<_, std::convert::Infallible>(|tx| Ok(tx.put_client(&c)?))
    };
    put(&a, "by-a").unwrap().unwrap();

    // b cannot lead while a does, and says who leads.
    let url = h.url.clone();
    let refused = std::thread::spawn(move || {
        PgBackend::open_with(&url, StoreOptions::default(), &quick("b", 300)).err()
    })
    .join()
    .unwrap();
    match refused {
        Some(StoreError::Leadership(LeaderError::Standby { holder, .. })) => {
            assert_eq!(holder, "a")
        }
        other => panic!(
            "expected a standby refusal, got {:?}",
            other.map(|e| e.to_string())
        ),
    }

    // a's lock session ends (as when its process dies): b takes over...
    let url = h.url.clone();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND classid = 28780 AND objid = 1635413836
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .unwrap();
    })
    .join()
    .unwrap();
    let url = h.url.clone();
    let b = std::thread::spawn(move || {
        PgBackend::open_with(&url, StoreOptions::default(), &quick("b", 10_000))
    })
    .join()
    .unwrap()
    .unwrap();
    let b = Store::with_backend(std::sync::Arc::new(b));
    put(&b, "by-b").unwrap().unwrap();
    let seen = crate::domain::ClientId::new("by-a").unwrap();
    assert!(b.client(&seen).unwrap().is_some(), "b reads what a wrote");

    // ...and a, deposed, can no longer write anything.
    let url = h.url.clone();
    let mut refused = String::new();
    let deposed = crate::store::conformance::eventually(|| match put(&a, "late-by-a") {
        Err(e) => {
            refused = e.to_string();
            true
        }
        Ok(_) => false,
    })
    .await;
    assert!(deposed, "the deposed leader still writes");
    // The server's reason reaches the error (not just "db error").
    assert!(refused.contains("no longer the leader"), "{refused}");
    let late = crate::domain::ClientId::new("late-by-a").unwrap();
    assert!(b.client(&late).unwrap().is_none(), "a fenced write landed");
    let node: String = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query_one("SELECT node FROM leader WHERE id = 1", &[])
            .unwrap()
            .get(0)
    })
    .join()
    .unwrap();
    assert_eq!(node, "b");
}

/// The keyspace of a database of its own, led by this node, with nothing above it; and the
/// database's URL. `None` without PostgreSQL.
fn bare_keyspace() -> Option<(std::sync::Arc<dyn crate::store::kv::Kv>, String)> {
    bare_keyspace_and_leader().map(|(ks, url, _)| (ks, url))
}

/// [`bare_keyspace`], with this node's leadership (for its counters).
fn bare_keyspace_and_leader() -> Option<(
    std::sync::Arc<dyn crate::store::kv::Kv>,
    String,
    std::sync::Arc<super::Leader>,
)> {
    let h = PgHarness::new()?;
    let config = super::parse_url(&h.url).unwrap();
    super::migrate_now(&config).unwrap();
    let opts = crate::store::LeaderOptions {
        node: "kv-test".into(),
        wait: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    };
    let leader = super::Leader::acquire(&config, &opts).unwrap();
    let target = super::PgTarget {
        url: h.url.clone(),
        leader: leader.clone(),
    };
    let (ks, _meta) = super::open_keyspace(&target).unwrap();
    Some((ks, h.url, leader))
}

/// Runs `sql` on a connection of its own (as another node would).
fn run_sql(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute(&sql).unwrap();
    })
    .join()
    .unwrap();
}

/// The value at `key` in the database itself (not through the store).
fn value_in_database(url: &str, key: &[u8]) -> Option<Vec<u8>> {
    let (url, key) = (url.to_owned(), key.to_vec());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query_opt("SELECT v FROM keyspace WHERE k = $1", &[&key])
            .unwrap()
            .map(|r| r.get::<_, Vec<u8>>(0))
    })
    .join()
    .unwrap()
}

#[test]
fn a_read_after_a_write_sees_the_write() {
    let Some((kv, url)) = bare_keyspace() else {
        return;
    };
    let (k, other) = (&b"\x01key"[..], &b"\x01other"[..]);
    // Absent, and that absence read (and cached) first.
    assert_eq!(kv.get(k).unwrap(), None);
    kv.apply(&[(k, Some(b"one")), (other, Some(b"x"))]).unwrap();
    assert_eq!(kv.get(k).unwrap().as_deref(), Some(&b"one"[..]));
    kv.apply(&[(k, Some(b"two"))]).unwrap();
    assert_eq!(kv.get(k).unwrap().as_deref(), Some(&b"two"[..]));
    kv.apply(&[(k, None)]).unwrap();
    assert_eq!(kv.get(k).unwrap(), None);
    kv.insert(k, b"three").unwrap();
    assert_eq!(kv.get(k).unwrap().as_deref(), Some(&b"three"[..]));
    kv.remove(k).unwrap();
    assert_eq!(kv.get(k).unwrap(), None);
    assert_eq!(kv.get(other).unwrap().as_deref(), Some(&b"x"[..]));
    // The database agrees.
    assert_eq!(value_in_database(&url, k), None);
    assert_eq!(value_in_database(&url, other), Some(b"x".to_vec()));
    // Ranges read the database, and agree too.
    let all: Vec<_> = kv
        .scan_prefix(b"\x01", false)
        .map(|e| e.unwrap().0.to_vec())
        .collect();
    assert_eq!(all, vec![other.to_vec()]);
}

#[test]
fn a_failed_write_leaves_no_stale_value_behind() {
    let Some((kv, url)) = bare_keyspace() else {
        return;
    };
    let k = &b"\x01key"[..];
    kv.apply(&[(k, Some(b"mine"))]).unwrap();
    assert_eq!(kv.get(k).unwrap().as_deref(), Some(&b"mine"[..]));
    // Another node takes over and writes the key; this node has not noticed yet.
    run_sql(
        &url,
        "UPDATE leader SET epoch = epoch + 1, node = 'other' WHERE id = 1;
         UPDATE keyspace SET v = 'theirs' WHERE k = '\\x016b6579'",
    );
    // This node's next write fails (fenced): from then on it reads the database.
    assert!(kv.apply(&[(k, Some(b"late"))]).is_err());
    assert_eq!(kv.get(k).unwrap().as_deref(), Some(&b"theirs"[..]));
    assert_eq!(value_in_database(&url, k), Some(b"theirs".to_vec()));
}

#[test]
fn prefetched_keys_read_as_the_database_holds_them() {
    let Some((kv, url)) = bare_keyspace() else {
        return;
    };
    // Written before this node read anything (as by a previous leader).
    run_sql(&url, "INSERT INTO keyspace VALUES ('\\x0161', 'before')");
    let (a, b) = (b"\x01a".to_vec(), b"\x01b".to_vec());
    kv.prefetch(&[a.clone(), b.clone(), a.clone()]).unwrap();
    assert_eq!(kv.get(&a).unwrap().as_deref(), Some(&b"before"[..]));
    assert_eq!(kv.get(&b).unwrap(), None);
    kv.apply(&[(&b, Some(b"now"))]).unwrap();
    kv.prefetch(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(kv.get(&b).unwrap().as_deref(), Some(&b"now"[..]));
}

#[test]
fn ids_keep_growing_across_blocks_and_instances() {
    let Some(h) = PgHarness::new() else { return };
    let config = super::parse_url(&h.url).unwrap();
    super::migrate_now(&config).unwrap();
    let opts = crate::store::LeaderOptions {
        node: "ids-test".into(),
        wait: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    };
    let target = super::PgTarget {
        url: h.url.clone(),
        leader: super::Leader::acquire(&config, &opts).unwrap(),
    };
    let mut last = 0;
    for _ in 0..2 {
        // A new instance (as after a reopen) goes on above every id handed out before.
        let (kv, _) = super::open_keyspace(&target).unwrap();
        for _ in 0..(super::ID_BLOCK * 2 + 3) {
            let id = kv.generate_id().unwrap();
            assert!(id > last, "{id} after {last}");
            last = id;
        }
    }
}

#[test]
fn the_in_flight_slot_is_read_whole_and_kept_up_to_date() {
    let Some((kv, url)) = bare_keyspace() else {
        return;
    };
    // In flight before this node read anything (as after a previous leader's crash).
    run_sql(&url, "INSERT INTO keyspace VALUES ('\\x0461', 'claimed')");
    let (a, b) = (&b"\x04a"[..], &b"\x04b"[..]);
    assert_eq!(kv.get(b).unwrap(), None);
    assert_eq!(kv.get(a).unwrap().as_deref(), Some(&b"claimed"[..]));
    kv.apply(&[(b, Some(b"new")), (a, None)]).unwrap();
    assert_eq!(kv.get(a).unwrap(), None);
    assert_eq!(kv.get(b).unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(value_in_database(&url, b), Some(b"new".to_vec()));
    assert_eq!(value_in_database(&url, a), None);
}

#[test]
fn a_batch_rolled_back_by_a_deadlock_runs_again_and_commits() {
    use std::sync::atomic::Ordering;
    let Some((kv, url, leader)) = bare_keyspace_and_leader() else {
        return;
    };
    let (a, b) = (&b"\x01a"[..], &b"\x01b"[..]);
    kv.apply(&[(a, Some(b"a0")), (b, Some(b"b0"))]).unwrap();
    // Another session (an operator's, say) locks `b`, then, once the batch holds `a` and waits
    // for `b`, asks for `a`: a deadlock. The batch's session looks for deadlocks first (after
    // the default 1 s; the other one waits 30 s), so PostgreSQL rolls the batch back.
    let (locked, wait_locked) = std::sync::mpsc::channel();
    let other = {
        let url = url.clone();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut tx = c.transaction().unwrap();
            tx.batch_execute("SET LOCAL deadlock_timeout = '30s'")
                .unwrap();
            tx.execute(
                "UPDATE keyspace SET v = 'b1' WHERE k = $1",
                &[&b"\x01b".to_vec()],
            )
            .unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            tx.execute(
                "UPDATE keyspace SET v = 'a1' WHERE k = $1",
                &[&b"\x01a".to_vec()],
            )
            .unwrap();
            tx.commit().unwrap();
        })
    };
    wait_locked.recv().unwrap();
    kv.apply(&[(a, Some(b"a2")), (b, Some(b"b2"))])
        .expect("a batch rolled back for a deadlock runs again");
    other.join().unwrap();
    assert!(
        leader.conflict_retries().load(Ordering::Relaxed) >= 1,
        "the batch was run again"
    );
    // It committed after the other session, whole.
    assert_eq!(value_in_database(&url, a), Some(b"a2".to_vec()));
    assert_eq!(value_in_database(&url, b), Some(b"b2".to_vec()));
    assert_eq!(kv.get(a).unwrap().as_deref(), Some(&b"a2"[..]));
}

#[test]
fn a_database_out_of_reach_is_tried_again_after_a_pause_not_on_every_write() {
    // A port nothing listens on: every connect is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = super::parse_url(&format!("postgresql://plazo@127.0.0.1:{port}/none")).unwrap();
    let pool = super::Pool::start(config, 1, std::time::Duration::from_secs(3)).unwrap();
    let started = crate::clock::monotonic_now();
    for _ in 0..20 {
        let err = pool.run(|_| Ok(())).unwrap_err().to_string();
        assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    }
    // Refused connects are quick: the 20 writes normally fall inside the first 100 ms pause
    // (one try); on a slow machine at most one more try per 100 ms, never one per write.
    let elapsed = crate::clock::elapsed_since(started).as_millis();
    let allowed = 1 + u64::try_from(elapsed / 100).unwrap_or(u64::MAX);
    assert!(
        pool.connects() <= allowed.min(3),
        "{} tries for 20 writes in {elapsed} ms",
        pool.connects()
    );
    let before = pool.connects();
    std::thread::sleep(std::time::Duration::from_millis(450));
    assert!(pool.run(|_| Ok(())).is_err());
    assert_eq!(
        pool.connects(),
        before + 1,
        "tried again once the pause is over"
    );
}
