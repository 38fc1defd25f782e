//! In-process ingest: `service::upsert_invoice` on a real sled store (validation, one
//! transaction writing the invoice, planning with `schedule::plan`, scheduling the reminder,
//! logging), and planner-only throughput for context.
//!
//! Run: `cargo bench --bench ingest` (sizes: `INGEST_N`, default 100000; `INGEST_THREADS`,
//! default "1,2"; `PLAN_N`, default 200000).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use plazo::domain::{ClientId, InvoiceId};
use plazo::policy::load_policy;
use plazo::schedule::plan;
use plazo::service::{ClientInput, InvoiceInput, upsert_client, upsert_invoice};
use plazo::store::{Store, StoreOptions};

fn client_input() -> ClientInput {
    serde_json::from_value(serde_json::json!({"name": "Ana", "email": "ana@example.co"})).unwrap()
}

fn ingest(n: usize, threads: usize) {
    let dir = tempfile::tempdir().unwrap();
    let policy = Arc::new(load_policy(&common::write_policy(dir.path())).unwrap());
    let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
    let now = Timestamp::now();
    upsert_client(
        &store,
        &policy.policy,
        &ClientId::new("c1").unwrap(),
        client_input(),
        now,
    )
    .unwrap();
    let due = now + SignedDuration::from_hours(24 * 365);
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
    planner(common::env_or("PLAN_N", 200_000usize));
}
