//! In-process ingest: `service::upsert_invoice` on a real sled store (validation, one
//! transaction writing the invoice, planning with `schedule::plan`, scheduling the reminder,
//! logging), and planner-only throughput for context.
//!
//! Then the writer under load: `INGEST_CONC` callers (default 64) each upserting and waiting
//! for durability, as the HTTP handlers do, and, in the same run, raw sled writing the same
//! number of keys of the same sizes in batches of the same size, each batch flushed: plazo's
//! ratio to sled's own limit.
//!
//! Run: `cargo bench --bench ingest` (sizes: `INGEST_N`, default 100000; `INGEST_THREADS`,
//! default "1,2"; `INGEST_CONC`, default 64; `PLAN_N`, default 200000;
//! `INGEST_RAW=0` skips the raw sled runs, for profiling plazo alone).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use plazo::domain::{ClientId, InvoiceId};
use plazo::policy::{LoadedPolicy, load_policy};
use plazo::schedule::plan;
use plazo::service::{
    ClientInput, InvoiceInput, upsert_client, upsert_invoice, upsert_invoice_async,
};
use plazo::store::{Ack, Store, StoreOptions};

fn client_input() -> ClientInput {
    serde_json::from_value(serde_json::json!({"name": "Ana", "email": "ana@example.co"})).unwrap()
}

/// A fresh store in a temp directory (kept alive by the returned guard) with the bench policy
/// and client `c1`.
fn fresh_store() -> (tempfile::TempDir, Arc<LoadedPolicy>, Store) {
    let dir = tempfile::tempdir().unwrap();
    let policy = Arc::new(load_policy(&common::write_policy(dir.path())).unwrap());
    let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
    upsert_client(
        &store,
        &policy.policy,
        &ClientId::new("c1").unwrap(),
        client_input(),
        Timestamp::now(),
    )
    .unwrap();
    (dir, policy, store)
}

fn ingest(n: usize, threads: usize) {
    let (_dir, policy, store) = fresh_store();
    let due = Timestamp::now() + SignedDuration::from_hours(24 * 365);
    // Inputs built before the clock starts (the HTTP layer's JSON parsing is not measured here).
    let per = n / threads;
    let inputs: Vec<Vec<(InvoiceId, InvoiceInput)>> = (0..threads)
        .map(|t| {
            (t * per..(t + 1) * per)
                .map(|i| {
                    (
                        InvoiceId::new(format!("inv-{i}")).unwrap(),
                        common::invoice_input(i, due),
                    )
                })
                .collect()
        })
        .collect();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for chunk in inputs {
            let store = store.clone();
            let policy = policy.clone();
            s.spawn(move || {
                for (id, input) in chunk {
                    let (_, _, next) =
                        upsert_invoice(&store, &policy.policy, &id, input, Timestamp::now())
                            .unwrap();
                    assert!(next.is_some());
                }
            });
        }
    });
    let ingest = t0.elapsed();
    let t1 = Instant::now();
    store.flush_blocking().unwrap();
    let flush = t1.elapsed();
    let total = per * threads;
    println!(
        "ingest in-process: n={total} threads={threads}: {:.2} s -> {:.0} invoices/s (not durable); \
         + final flush {:.3} s -> {:.0} invoices/s including it; disk {} MB",
        ingest.as_secs_f64(),
        total as f64 / ingest.as_secs_f64(),
        flush.as_secs_f64(),
        total as f64 / (ingest + flush).as_secs_f64(),
        store.size_on_disk().unwrap_or(0) / 1_000_000
    );
}

/// `conc` async callers upsert `n` invoices through the writer (`upsert_invoice_async`, as
/// `PUT /v1/invoices/{id}` does), each answered once durable.
fn ingest_durable(n: usize, conc: usize) {
    let (_dir, policy, store) = fresh_store();
    let due = Timestamp::now() + SignedDuration::from_hours(24 * 365);
    let before = store.writer_stats().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let per = n / conc;
    let t0 = Instant::now();
    let mut latencies: Vec<f64> = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..conc {
            let store = store.clone();
            let policy = policy.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per);
                for i in t * per..(t + 1) * per {
                    let input = common::invoice_input(i, due);
                    let id = InvoiceId::new(format!("inv-{i}")).unwrap();
                    let s0 = Instant::now();
                    upsert_invoice_async(
                        &store,
                        policy.clone(),
                        id,
                        input,
                        Timestamp::now(),
                        Ack::Durable,
                    )
                    .await
                    .unwrap();
                    lat.push(s0.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let el = t0.elapsed();
    latencies.sort_by(f64::total_cmp);
    let total = per * conc;
    let after = store.writer_stats().unwrap();
    let (batches, commands, writes, bytes) = (
        after.batches - before.batches,
        after.commands - before.commands,
        after.writes - before.writes,
        after.bytes - before.bytes,
    );
    let (flushes, flush_micros) = (
        after.flushes - before.flushes,
        after.flush_micros - before.flush_micros,
    );
    let rate = total as f64 / el.as_secs_f64();
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "ingest through the writer, durable: n={total} callers={conc}: {:.2} s -> {rate:.0} invoices/s; \
         latency ms p50 {:.2} p99 {:.2}; {batches} batches ({:.1} commands each), {:.2} writes and {:.0} bytes per invoice",
        el.as_secs_f64(),
        p(0.5),
        p(0.99),
        commands as f64 / batches.max(1) as f64,
        writes as f64 / commands.max(1) as f64,
        bytes as f64 / commands.max(1) as f64,
    );
    println!(
        "  group commit: {flushes} flushes ({:.1} invoices each), mean flush {:.3} ms, the flusher busy {:.0} % of the run",
        total as f64 / flushes.max(1) as f64,
        flush_micros as f64 / 1000.0 / flushes.max(1) as f64,
        100.0 * flush_micros as f64 / 1e6 / el.as_secs_f64(),
    );
    drop(store);
    if std::env::var("INGEST_RAW").is_ok_and(|v| v == "0") {
        return; // profiling plazo alone
    }
    // Raw sled, same run: the same keys per invoice, of the same average size, in batches of
    // the same size, one flush per batch.
    let writes_per = (writes as f64 / commands.max(1) as f64).round().max(1.0) as usize;
    let bytes_per_write = (bytes as usize / writes.max(1) as usize).max(1);
    let batch = (commands as usize / batches.max(1) as usize).max(1);
    let raw = sled_raw(total, writes_per, bytes_per_write, batch);
    println!(
        "raw sled, same run: {total} invoices x {writes_per} keys of {bytes_per_write} B, {batch} invoices per batch, flushed: {raw:.0} invoices/s; plazo at {:.0} % of it",
        100.0 * rate / raw
    );
    // sled's best with the same records: batches applied while a second thread flushes (as
    // plazo's writer does), over a range of batch sizes.
    let mut best = (0.0f64, 0usize);
    for b in [batch, 64, 256, 1024] {
        let r = sled_raw_pipelined(total, writes_per, bytes_per_write, b);
        println!("raw sled, pipelined flushes: {b} invoices per batch: {r:.0} invoices/s");
        if r > best.0 {
            best = (r, b);
        }
    }
    println!(
        "raw sled's best here: {:.0} invoices/s ({} per batch, pipelined); plazo at {:.0} % of it",
        best.0,
        best.1,
        100.0 * rate / best.0
    );
}

/// Like [`sled_raw`], but a second thread flushes continuously while batches are applied (one
/// flush covers every batch applied before it started), then a last flush: the most sled does
/// with these records when durability is group-committed.
fn sled_raw_pipelined(n: usize, writes: usize, size: usize, batch: usize) -> f64 {
    let (_dir, db, tree) = raw_db();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let t0 = Instant::now();
    let flusher = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                db.flush().unwrap();
            }
        })
    };
    let mut i = 0usize;
    while i < n {
        tree.apply_batch(raw_batch(i..(i + batch).min(n), writes, size))
            .unwrap();
        i += batch;
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    flusher.join().unwrap();
    db.flush().unwrap();
    n as f64 / t0.elapsed().as_secs_f64()
}

/// Invoices per second raw sled takes: `writes` random keys of `size` bytes (key and value)
/// each, `batch` invoices per atomic batch, one flush per batch.
fn sled_raw(n: usize, writes: usize, size: usize, batch: usize) -> f64 {
    let (_dir, db, tree) = raw_db();
    let t0 = Instant::now();
    let mut i = 0usize;
    let (mut apply_ms, mut flush_ms) = (Vec::new(), Vec::new());
    while i < n {
        let b = raw_batch(i..(i + batch).min(n), writes, size);
        let a = Instant::now();
        tree.apply_batch(b).unwrap();
        let f = Instant::now();
        db.flush().unwrap();
        apply_ms.push((f - a).as_secs_f64() * 1000.0);
        flush_ms.push(f.elapsed().as_secs_f64() * 1000.0);
        i += batch;
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    for v in [&mut apply_ms, &mut flush_ms] {
        v.sort_by(f64::total_cmp);
    }
    let p = |v: &[f64], q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    println!(
        "raw sled, serial: per batch of {batch}: apply ms p50 {:.3} p99 {:.3}; flush ms p50 {:.3} p99 {:.3}",
        p(&apply_ms, 0.5),
        p(&apply_ms, 0.99),
        p(&flush_ms, 0.5),
        p(&flush_ms, 0.99)
    );
    rate
}

/// A fresh sled database in a temporary directory, with the store's cache size, and its tree.
fn raw_db() -> (tempfile::TempDir, sled::Db, sled::Tree) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(64 * 1024 * 1024)
        .open()
        .unwrap();
    let tree = db.open_tree("raw").unwrap();
    (dir, db, tree)
}

/// One atomic batch for the invoices `invoices`: `writes` keys of `size` bytes (key and value)
/// each, keys hashed like ids so inserts land all over the tree.
fn raw_batch(invoices: std::ops::Range<usize>, writes: usize, size: usize) -> sled::Batch {
    let value = vec![7u8; size.saturating_sub(20).max(1)];
    let mut b = sled::Batch::default();
    for inv in invoices {
        for w in 0..writes {
            let k = (inv as u64 * 31 + w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut key = k.to_be_bytes().to_vec();
            key.extend_from_slice(&[b'k'; 12]);
            b.insert(key, value.clone());
        }
    }
    b
}

fn planner(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let policy = load_policy(&common::write_policy(dir.path())).unwrap();
    let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
    let now = Timestamp::now();
    let cid = ClientId::new("c1").unwrap();
    upsert_client(&store, &policy.policy, &cid, client_input(), now).unwrap();
    let id = InvoiceId::new("inv-0").unwrap();
    let due = now + SignedDuration::from_hours(24 * 365);
    upsert_invoice(
        &store,
        &policy.policy,
        &id,
        common::invoice_input(0, due),
        now,
    )
    .unwrap();
    let inv = store.invoice(&id).unwrap().unwrap();
    let client = store.client(&cid).unwrap().unwrap();
    let t0 = Instant::now();
    let mut steps = 0;
    for _ in 0..n {
        steps += std::hint::black_box(plan(&inv, &client, &policy.policy, now))
            .steps
            .len();
    }
    let el = t0.elapsed();
    assert_eq!(steps, 2 * n);
    println!(
        "planner only (schedule::plan, 2-step cadence): n={n}: {:.3} s -> {:.0} plans/s",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful either.
    println!("machine: {}", common::machine());
    let n = common::env_or("INGEST_N", 100_000usize);
    let threads = std::env::var("INGEST_THREADS").unwrap_or_else(|_| "1,2".into());
    for t in threads
        .split(',')
        .filter_map(|t| t.trim().parse::<usize>().ok())
    {
        ingest(n, t.max(1));
    }
    ingest_durable(n, common::env_or("INGEST_CONC", 64usize).max(1));
    planner(common::env_or("PLAN_N", 200_000usize));
}
