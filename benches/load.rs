//! End-to-end load on the real daemon.
//!
//! Scenarios (first non-flag argument or `LOAD_SCENARIO`, comma-separated; default
//! `http,dispatch`):
//!
//! - `http`: `plazo::daemon::start` in-process on port 0, then `PUT /v1/invoices/{id}` from a
//!   reqwest client with `HTTP_CONC` (64) requests in flight over keep-alive connections;
//!   `HTTP_N` (50000) invoices. The client runs on its own 2-thread runtime (`load-client`) in
//!   the same process. `HTTP_CLIENT=raw` uses a minimal keep-alive HTTP/1.1 client instead
//!   (`common/raw_http.rs`, what `wrk` does), which leaves more of the two cores to the daemon.
//! - `floor`: the `http` scenario's floor (axum + raw sled, group commit) served alone on
//!   `FLOOR_PORT` (8089) until killed, for an outside load generator; `FLOOR_KEYS` (4, 0 = no
//!   store) keys of `FLOOR_BYTES` (105) bytes per request.
//! - `dispatch`: `DISPATCH_N` (30000) invoices preloaded through the library into the daemon's
//!   store, each with one reminder due at `T0 + i / DISPATCH_RATE` (`DISPATCH_RATE` = 0: all at
//!   `T0`; default runs both `0` and `5000`), then the daemon is started and sends them through
//!   the `webhook` channel to a local axum sink that records lateness = receipt time − fire_at.
//!   Every outcome is recorded with a durable group commit (the daemon's normal path).
//!   `DISPATCH_STORE=postgres` runs the daemon (and the preload) on a throwaway PostgreSQL
//!   database instead of sled (`PLAZO_PG_FSYNC=on` for a server that fsyncs; raise
//!   `DISPATCH_LEAD_SECS`, the preload runs at ~1,000/s there). There `DISPATCH_NODES=N` starts
//!   N−1 more `plazo serve` nodes on the same database once the bench's daemon leads (each
//!   sends from the shared queue) and prints what each sent; `DISPATCH_DELIVERY=leader` sends
//!   from the leader alone.
//!   `DISPATCH_CHANNEL` = `sms` or `whatsapp` routes the step through the real Twilio or
//!   WhatsApp adapter instead (`[routes] sms = "twilio"` / `whatsapp = "wa"`, client with a
//!   phone, WhatsApp template mapped on the step) to the local provider mock
//!   (`common/providers.rs`); `DISPATCH_RATE_LIMIT` (per second, `DISPATCH_BURST`, default 1)
//!   sets `rate_limit` on that channel and the rate observed at the mock is printed.
//!   `DISPATCH_CHANNEL` = `email` routes it through the real SMTP adapter (`[routes] email =
//!   "mail"`, `type = "smtp"`, `security = "plain"`, `max_connections` =
//!   `DISPATCH_SMTP_CONNECTIONS`, default 64 = the dispatcher's concurrency) to a local SMTP
//!   sink (`common/smtp_sink.rs`, its own current-thread runtime like the mock) that records
//!   the time each message's final `.` arrived and the invoice `F-{i}` in its `Subject`; the
//!   distinct `Message-ID`s (one per reminder) are printed too.
//! - `restart`: `RESTART_N` (100000; the target is 1000000) invoices preloaded far in the future,
//!   then the release binary `target/release/plazo serve` is started `RESTART_RUNS` (3) times:
//!   time from spawn to `/readyz` = 200, VmRSS after ready and after one GET, then SIGTERM.
//!   Needs `cargo build --release` first.
//! - `payments`: `PAY_N` (20000) invoices `inv-{i}` (COP 1,250,000.00, due in a year, one
//!   reminder pending) preloaded through the library, then the daemon in-process (as `http`,
//!   Stripe signing secret from `STRIPE_WEBHOOK_SECRET`) receives one signed Stripe
//!   `invoice.paid` per invoice (`evt_{i}`, `metadata.plazo_invoice_id = inv-{i}`) on
//!   `POST /webhooks/stripe`, `PAY_CONC` (64; a comma list runs each) in flight. Measures the
//!   acknowledgement (verified + persisted durably) latency and rate; the apply rate and
//!   send → applied latency from the inbox processor's `payment event processed` log lines;
//!   for every `PAY_SAMPLE_EVERY`th (100; 0 = off) event, send → `GET /v1/invoices/{id}`
//!   shows `paid`. Then checks through the API: N applied, nothing received / unmatched /
//!   flagged / failed, every invoice paid with no reminder pending. `PAY_RATE` (0 = closed
//!   loop) paces the sends at that many per second; `PAY_TIMEOUT_SECS` (300).
//!
//! Run: `cargo bench --bench load -- http` etc.; see BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

#[path = "common/mod.rs"]
mod common;
#[path = "common/raw_http.rs"]
mod raw_http;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use plazo::clock::SystemClock;
use plazo::config::load_daemon_config;
use plazo::domain::{ClientId, InvoiceId};
use plazo::policy::load_policy;
use plazo::service::{ClientInput, upsert_client, upsert_invoice};
use plazo::store::{Store, StoreOptions};

fn rt(threads: usize) -> tokio::runtime::Runtime {
    rt_named(threads, "tokio-runtime-worker")
}

/// [`rt`] whose worker and blocking threads are called `name` (so `perf report --sort comm`
/// tells the daemon from the load generator).
fn rt_named(threads: usize, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

/// Writes policy + config into `dir` and loads the config.
fn daemon_config(dir: &Path, listen: &str, sink_url: &str) -> plazo::config::DaemonConfig {
    common::write_policy(dir);
    let cfg = dir.join("plazo.toml");
    std::fs::write(
        &cfg,
        common::config_text(listen, &dir.join("data"), sink_url),
    )
    .unwrap();
    load_daemon_config(&cfg).unwrap()
}

/// Writes policy + config for channel kind `kind` through the provider mock at `mock_base`
/// into `dir` and loads the config.
fn daemon_config_for(
    dir: &Path,
    listen: &str,
    mock_base: &str,
    kind: &str,
    rate_limit: Option<(f64, u32)>,
) -> plazo::config::DaemonConfig {
    common::write_policy_for(dir, kind);
    let cfg = dir.join("plazo.toml");
    std::fs::write(
        &cfg,
        common::config_text_for(listen, &dir.join("data"), mock_base, kind, rate_limit),
    )
    .unwrap();
    load_daemon_config(&cfg).unwrap()
}

/// Where the daemon's log goes: the current scenario's `bench-daemon.log` (the subscriber is
/// global and installed once; each scenario points it at its own file).
static LOG_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// A writer into [`LOG_FILE`]; each formatted event is written whole under the lock.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(f) = LOG_FILE.lock().unwrap().as_mut() {
            f.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Logs like the real binary does at the default level (info), into `dir/bench-daemon.log`,
/// without colour codes (the `payments` scenario reads it back).
fn init_tracing(dir: &Path) {
    let file = std::fs::File::create(dir.join("bench-daemon.log")).unwrap();
    *LOG_FILE.lock().unwrap() = Some(file);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .try_init();
}

/// `DISPATCH_STORE=postgres`: a throwaway PostgreSQL database (`plazo::store::pg_testing`;
/// `DISPATCH_DELIVERY=leader` to send from the leader alone instead of the shared queue;
/// `PLAZO_PG_FSYNC=on` for a server that fsyncs its commits, as sled does), its URL in
/// `dir/db-url`, and `dir/plazo.toml` pointed at it (`[store] backend = "postgres"`). Returns
/// the daemon config read back.
fn on_postgres(dir: &Path) -> plazo::config::DaemonConfig {
    use std::os::unix::fs::PermissionsExt;
    let url = plazo::store::pg_testing::new_database()
        .unwrap()
        .expect("DISPATCH_STORE=postgres needs PostgreSQL's binaries");
    let url_file = dir.join("db-url");
    std::fs::write(&url_file, &url).unwrap();
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.join("plazo.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[store]\nbackend = \"postgres\"\nurl = {{ file = \"{}\" }}\nnode = \"bench-a\"\ndelivery = \"{}\"\n",
        url_file.display(),
        std::env::var("DISPATCH_DELIVERY").unwrap_or_else(|_| "shared".into())
    ));
    std::fs::write(&cfg, text).unwrap();
    println!(
        "  store: PostgreSQL (throwaway server, fsync={})",
        if std::env::var("PLAZO_PG_FSYNC").is_ok_and(|v| v == "on") {
            "on"
        } else {
            "off"
        }
    );
    load_daemon_config(&cfg).unwrap()
}

/// `DISPATCH_NODES`: starts `nodes - 1` more `plazo serve` processes (this build's binary) on
/// the PostgreSQL database of `dir/plazo.toml`, each with a copy of that config under its own
/// `node` name and data directory. They wait as standbys and send from the shared queue.
fn extra_nodes(dir: &Path, nodes: usize) -> Vec<(String, std::process::Child)> {
    if nodes <= 1 {
        return Vec::new();
    }
    let text = std::fs::read_to_string(dir.join("plazo.toml")).unwrap();
    assert!(
        text.contains("backend = \"postgres\""),
        "DISPATCH_NODES needs DISPATCH_STORE=postgres"
    );
    let data = format!("data_dir = \"{}\"", dir.join("data").display());
    (2..=nodes)
        .map(|k| {
            let node = format!("bench-{k}");
            let cfg = dir.join(format!("plazo-{k}.toml"));
            let own = format!("data_dir = \"{}\"", dir.join(&node).display());
            std::fs::write(
                &cfg,
                text.replace(&data, &own)
                    .replace("node = \"bench-a\"", &format!("node = \"{node}\"")),
            )
            .unwrap();
            let log = std::fs::File::create(dir.join(format!("{node}.log"))).unwrap();
            let child = std::process::Command::new(env!("CARGO_BIN_EXE_plazo"))
                .args(["serve", "--config"])
                .arg(&cfg)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            println!("  node {node}: pid {} (standby, sending)", child.id());
            (node, child)
        })
        .collect()
}

/// SIGTERMs the extra nodes, waits for them, and reads from each one's log how many messages
/// it sent ("stopped sending from the shared queue ... sent=N").
fn stop_extra_nodes(dir: &Path, nodes: Vec<(String, std::process::Child)>) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for (node, mut child) in nodes {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
        let log = std::fs::read_to_string(dir.join(format!("{node}.log"))).unwrap_or_default();
        let sent = log
            .lines()
            .filter(|l| l.contains("stopped sending from the shared queue"))
            .find_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("sent="))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or_else(|| panic!("{node} did not log what it sent:\n{log}"));
        out.push((node, sent));
    }
    out
}

/// The store the preload writes: sled at `dir/data/db`, or the PostgreSQL database named in
/// `dir/db-url` (see [`on_postgres`]); the preload's store releases the leadership when
/// dropped, so the daemon then takes it.
fn open_store(dir: &Path) -> Store {
    match std::fs::read_to_string(dir.join("db-url")) {
        Ok(url) => Store::with_backend(Arc::new(
            plazo::store::PgBackend::open(url.trim(), StoreOptions::default()).unwrap(),
        )),
        Err(_) => Store::open(&dir.join("data").join("db"), StoreOptions::default()).unwrap(),
    }
}

/// `LOAD_CLIENTS` (default 1): how many clients the preloaded invoices are spread over, round
/// robin. With one, every reminder's statement finds more than `STATEMENT_MAX_INVOICES` and is
/// left out; the side-by-side harness (`../shared/bench`) uses 997 clients of ~20 invoices,
/// where every message carries a statement of the client's other ~19 open invoices.
fn load_clients() -> usize {
    std::env::var("LOAD_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// The name of preloaded client `c`: `c1` for the first, as before `LOAD_CLIENTS` existed.
fn client_name(c: usize) -> String {
    format!("c{}", c + 1)
}

/// Loads client `c1` and `n` invoices `inv-{i}` due at `due(i)` straight into the store at
/// `dir/data/db` (what `PUT /v1/invoices` would write), then flushes and closes it.
fn preload(dir: &Path, n: usize, due: impl Fn(usize) -> Timestamp) -> Duration {
    preload_with(dir, n, due, false)
}

/// [`preload`]; with `phone`, client `c1` also has a Colombian mobile number (for `sms` and
/// `whatsapp`).
fn preload_with(dir: &Path, n: usize, due: impl Fn(usize) -> Timestamp, phone: bool) -> Duration {
    let policy = load_policy(&dir.join("policy.toml")).unwrap();
    let store = open_store(dir);
    let now = Timestamp::now();
    let mut client = serde_json::json!({"name": "Ana", "email": "ana@example.co"});
    if phone {
        client["phone"] = "+573001234567".into();
        client["country"] = "CO".into();
    }
    let clients = load_clients();
    for c in 0..clients {
        let input: ClientInput = serde_json::from_value(client.clone()).unwrap();
        upsert_client(
            &store,
            &policy.policy,
            &ClientId::new(client_name(c)).unwrap(),
            input,
            now,
        )
        .unwrap();
    }
    let t0 = Instant::now();
    for i in 0..n {
        let id = InvoiceId::new(format!("inv-{i}")).unwrap();
        let mut input = common::invoice_input(i, due(i));
        input.client_id = client_name(i % clients);
        upsert_invoice(&store, &policy.policy, &id, input, Timestamp::now()).unwrap();
        if i > 0 && i % 200_000 == 0 {
            println!(
                "  preloaded {i} ({:.0}/s)",
                i as f64 / t0.elapsed().as_secs_f64()
            );
        }
    }
    store.flush_blocking().unwrap();
    let el = t0.elapsed();
    // Closed as the daemon closes it on a clean stop (the snapshot brought up to date).
    let on_disk = store.size_on_disk().unwrap_or(0);
    store.close().unwrap();
    println!(
        "  preloaded {n} invoices in {:.2} s ({:.0}/s); store {} MB on disk",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64(),
        on_disk / 1_000_000
    );
    el
}

// ---------------------------------------------------------------------------------------------
// HTTP ingest

/// The JSON body of `PUT /v1/invoices/inv-{i}` in the HTTP ingest, due at `due`.
fn invoice_body(i: usize, due: &str) -> String {
    format!(
        r#"{{"client_id":"c1","number":"F-{i}","currency":"COP","amount":"1250000.00","due_at":"{due}","payment_url":"https://pay.example.co/x"}}"#
    )
}

fn scenario_http() {
    let n = common::env_or("HTTP_N", 50_000usize);
    let conc = common::env_or("HTTP_CONC", 64usize);
    // `reqwest` (default) or `raw`: a minimal keep-alive client that leaves more of the two
    // cores to the daemon (like `wrk`).
    let raw = match std::env::var("HTTP_CLIENT").as_deref() {
        Ok("raw") => true,
        Ok("reqwest") | Err(_) => false,
        Ok(other) => panic!("HTTP_CLIENT={other:?}: use reqwest or raw"),
    };
    let client_name = if raw {
        "raw keep-alive client"
    } else {
        "reqwest client"
    };
    let dir = tempfile::tempdir().unwrap();
    init_tracing(dir.path());
    let cfg = daemon_config(dir.path(), "127.0.0.1:0", "http://127.0.0.1:9/hook");
    let drt = rt(2);
    let running = drt
        .block_on(plazo::daemon::start(cfg, Arc::new(SystemClock)))
        .unwrap();
    let crt = rt_named(2, "load-client");
    let before = running.store().writer_stats().unwrap();
    let cpu_before = common::cpu_secs("load-client");
    let (elapsed, mut lat) = crt.block_on(drive_puts(running.addr, raw, n, conc));
    let cpu_after = common::cpu_secs("load-client");
    let after = running.store().writer_stats().unwrap();
    let writes = (after.writes - before.writes) as f64 / n as f64;
    let bytes = (after.bytes - before.bytes) as f64 / (after.writes - before.writes).max(1) as f64;
    let rate = n as f64 / elapsed.as_secs_f64();
    let batches = (after.batches - before.batches).max(1);
    let flushes = (after.flushes - before.flushes).max(1);
    println!(
        "http ingest ({client_name}): n={n} conc={conc}: {:.2} s -> {rate:.0} invoices/s; latency ms {}; {writes:.2} writes of {bytes:.0} B per invoice; {batches} batches ({:.1} commands each), {flushes} flushes of {:.2} ms on average",
        elapsed.as_secs_f64(),
        lat_stats(&mut lat),
        (after.commands - before.commands) as f64 / batches as f64,
        (after.flush_micros - before.flush_micros) as f64 / flushes as f64 / 1000.0,
    );
    let client = cpu_after.1 - cpu_before.1;
    let all = cpu_after.0 - cpu_before.0;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "  CPU per request: {:.1} µs by the daemon (the process less the load client), {:.1} µs by the client; the {cores} cores {:.0} % busy with this process",
        1e6 * (all - client) / n as f64,
        1e6 * client / n as f64,
        100.0 * all / (cores as f64 * elapsed.as_secs_f64()),
    );
    drt.block_on(running.shutdown()).unwrap();
    drop(drt);
    if std::env::var("HTTP_FLOOR").is_ok_and(|v| v == "1") {
        // The same client and load against the floor: an axum server on the same 2-thread
        // runtime that checks the token, parses the JSON body and answers it back, (a) with
        // no store, (b) writing the same keys of the same size to raw sled through one batching
        // thread, one flush per batch, acknowledging after the flush (plazo's durability).
        let w = writes.round().max(1.0) as usize;
        let size = bytes.round().max(1.0) as usize;
        for store in [None, Some((w, size))] {
            let frt = rt(2);
            let floor = frt.block_on(floor::start(store, 0));
            let (el, mut lat) = crt.block_on(drive_puts(floor, raw, n, conc));
            let r = n as f64 / el.as_secs_f64();
            println!(
                "http floor ({client_name}), {}: n={n} conc={conc}: {:.2} s -> {r:.0}/s; latency ms {}; plazo at {:.0} % of it",
                floor::describe(store),
                el.as_secs_f64(),
                lat_stats(&mut lat),
                100.0 * rate / r,
            );
            drop(frt);
        }
    }
}

/// Serves the HTTP floor alone on `FLOOR_PORT` until the process is killed, so that a load
/// generator outside this bench (the side-by-side harness's own loader) can be pointed at it.
/// `FLOOR_KEYS` keys of `FLOOR_BYTES` bytes per request through raw sled (defaults: 4 of 105,
/// what `http` prints for plazo's invoice creation); `FLOOR_KEYS=0` serves with no store.
fn scenario_floor() {
    let port = common::env_or("FLOOR_PORT", 8089u16);
    let keys = common::env_or("FLOOR_KEYS", 4usize);
    let bytes = common::env_or("FLOOR_BYTES", 105usize);
    let frt = rt(2);
    let store = (keys > 0).then_some((keys, bytes));
    let addr = frt.block_on(floor::start(store, port));
    println!(
        "http floor serving on {addr}: {}; kill the process to stop",
        floor::describe(store)
    );
    frt.block_on(std::future::pending::<()>());
}

fn lat_stats(lat: &mut [f64]) -> String {
    lat.sort_by(|a, b| a.total_cmp(b));
    format!(
        "p50 {:.2} p99 {:.2} max {:.2}",
        common::pct(lat, 50.0),
        common::pct(lat, 99.0),
        common::pct(lat, 100.0),
    )
}

/// `conc` workers `PUT /v1/invoices/inv-{i}` for `i` in `0..n` at `addr` (client `c1` is put
/// first), each waiting for its 201 before the next; returns the elapsed time and latencies (ms).
async fn drive_puts(
    addr: std::net::SocketAddr,
    raw: bool,
    n: usize,
    conc: usize,
) -> (Duration, Vec<f64>) {
    let base = format!("http://{addr}");
    let auth = format!("Bearer {}", common::TOKEN);
    let due = (Timestamp::now() + SignedDuration::from_hours(24 * 365)).to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc * 2)
        .build()
        .unwrap();
    let r = client
        .put(format!("{base}/v1/clients/c1"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(r#"{"name":"Ana","email":"ana@example.co"}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conc {
        if raw {
            let addr = addr.to_string();
            let (next, auth, due) = (next.clone(), auth.clone(), due.clone());
            tasks.spawn(async move {
                let mut conn = raw_http::RawConn::connect(&addr).await.unwrap();
                let auth = format!("authorization: {auth}");
                let headers = [auth.as_str(), "content-type: application/json"];
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let body = invoice_body(i, &due);
                    let s = Instant::now();
                    let (st, _) = conn
                        .request(
                            "PUT",
                            &format!("/v1/invoices/inv-{i}"),
                            &headers,
                            body.as_bytes(),
                        )
                        .await
                        .unwrap();
                    assert_eq!(st, 201);
                    lat.push(s.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            });
            continue;
        }
        let (client, next, base, auth, due) = (
            client.clone(),
            next.clone(),
            base.clone(),
            auth.clone(),
            due.clone(),
        );
        tasks.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let body = invoice_body(i, &due);
                let s = Instant::now();
                let r = client
                    .put(format!("{base}/v1/invoices/inv-{i}"))
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let st = r.status();
                let _ = r.bytes().await.unwrap();
                assert_eq!(st.as_u16(), 201);
                lat.push(s.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(l) = tasks.join_next().await {
        all.extend(l.unwrap());
    }
    (t0.elapsed(), all)
}

/// The floor the HTTP ingest bench compares plazo with: the same HTTP server stack (axum on
/// hyper, on the same runtime shape) doing the least an ingest endpoint can do.
mod floor {
    use std::net::SocketAddr;
    use std::sync::mpsc;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::put;
    use tokio::sync::oneshot;

    type Ack = oneshot::Sender<()>;

    #[derive(Clone)]
    struct Floor {
        writer: Option<mpsc::Sender<(String, Ack)>>,
    }

    /// What the floor does per request, for the bench's output.
    pub fn describe(store: Option<(usize, usize)>) -> String {
        match store {
            Some((keys, size)) => {
                format!("axum + raw sled, {keys} keys of {size} B per request, group commit")
            }
            None => "axum, no store".to_owned(),
        }
    }

    /// Starts the floor server on the current runtime; with `Some((writes, size))`, every
    /// request also writes `writes` keys of `size` bytes through one batching sled thread and
    /// is answered after the flush that covers it.
    pub async fn start(store: Option<(usize, usize)>, port: u16) -> SocketAddr {
        let writer = store.map(|(writes, size)| {
            let (tx, rx) = mpsc::channel::<(String, Ack)>();
            std::thread::spawn(move || write_loop(rx, writes, size));
            tx
        });
        let app = Router::new()
            .route("/v1/clients/{id}", put(client))
            .route("/v1/invoices/{id}", put(invoice))
            .with_state(Floor { writer });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    async fn client() -> StatusCode {
        StatusCode::OK
    }

    async fn invoice(
        State(f): State<Floor>,
        Path(id): Path<String>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, Vec<u8>) {
        let want = format!("Bearer {}", super::common::TOKEN);
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
            return (StatusCode::UNAUTHORIZED, Vec::new());
        }
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return (StatusCode::UNPROCESSABLE_ENTITY, Vec::new());
        };
        if let Some(w) = &f.writer {
            let (ack, done) = oneshot::channel();
            w.send((id.clone(), ack)).unwrap();
            done.await.unwrap();
        }
        v["id"] = serde_json::Value::String(id);
        (StatusCode::CREATED, serde_json::to_vec(&v).unwrap())
    }

    /// Takes every request queued, writes their keys in one atomic batch, flushes, answers.
    fn write_loop(rx: mpsc::Receiver<(String, Ack)>, writes: usize, size: usize) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .unwrap();
        let tree = db.open_tree("raw").unwrap();
        let value = vec![7u8; size.saturating_sub(20).max(1)];
        while let Ok(first) = rx.recv() {
            let mut pending = vec![first];
            pending.extend(rx.try_iter());
            let mut batch = sled::Batch::default();
            for (id, _) in &pending {
                for w in 0..writes {
                    // Each of a request's keys in a region of its own (as plazo's invoice
                    // record, due entry, number index and client index are), not side by side.
                    let mut key = vec![w as u8];
                    key.extend_from_slice(id.as_bytes());
                    batch.insert(key, value.clone());
                }
            }
            tree.apply_batch(batch).unwrap();
            db.flush().unwrap();
            for (_, ack) in pending {
                let _ = ack.send(());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch through the webhook channel

fn scenario_dispatch(rate: f64) {
    let n = common::env_or("DISPATCH_N", 30_000usize);
    let kind = std::env::var("DISPATCH_CHANNEL").unwrap_or_else(|_| "webhook".into());
    let provider = match kind.as_str() {
        "webhook" => "webhook",
        "sms" => "twilio",
        "whatsapp" => "whatsapp",
        "email" => "smtp",
        other => panic!("DISPATCH_CHANNEL={other:?}: use webhook, sms, whatsapp or email"),
    };
    let rate_limit = std::env::var("DISPATCH_RATE_LIMIT")
        .ok()
        .and_then(|r| r.parse::<f64>().ok())
        .map(|r| (r, common::env_or("DISPATCH_BURST", 1u32)));
    let dir = tempfile::tempdir().unwrap();
    init_tracing(dir.path());
    // Leave time for the preload (~15k/s on this machine) and the start-up.
    let lead = common::env_or("DISPATCH_LEAD_SECS", 3.0 + n as f64 / 10_000.0);
    let t0 = Timestamp::now() + SignedDuration::from_secs_f64(lead);
    let due = |i: usize| {
        if rate > 0.0 {
            t0 + SignedDuration::from_secs_f64(i as f64 / rate)
        } else {
            t0
        }
    };
    let fire_at: Vec<i64> = (0..n).map(|i| due(i).as_microsecond()).collect();
    // The provider mock (and webhook sink) on its own current-thread runtime and thread.
    let (addr, mock) = common::providers::start(0);
    // The SMTP sink likewise, recording into the same state.
    let base = if kind == "email" {
        format!("smtp://{}", common::smtp_sink::start(mock.clone(), 0))
    } else {
        format!("http://{addr}")
    };
    let mut cfg = daemon_config_for(dir.path(), "127.0.0.1:0", &base, &kind, rate_limit);
    if std::env::var("DISPATCH_STORE").is_ok_and(|v| v == "postgres") {
        cfg = on_postgres(dir.path());
    }
    preload_with(
        dir.path(),
        n,
        due,
        matches!(kind.as_str(), "sms" | "whatsapp"),
    );
    let start_at = Timestamp::now();
    assert!(
        start_at < t0,
        "preload overran T0 by {}; raise DISPATCH_LEAD_SECS",
        start_at - t0
    );
    let drt = rt(2);
    let running = drt
        .block_on(plazo::daemon::start(cfg, Arc::new(SystemClock)))
        .unwrap();
    // `DISPATCH_NODES=N` (PostgreSQL): N-1 more nodes, started once the bench's daemon leads.
    let extra = extra_nodes(dir.path(), common::env_or("DISPATCH_NODES", 1usize));
    let last_fire = due(n - 1);
    let limited = rate_limit.map_or(0.0, |(r, _)| n as f64 / r);
    let deadline = Instant::now()
        + Duration::try_from(last_fire.duration_since(Timestamp::now())).unwrap_or_default()
        + Duration::from_secs_f64(120.0 + limited);
    loop {
        let got = mock.count(provider);
        if got >= n || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let by_extra = stop_extra_nodes(dir.path(), extra);
    drt.block_on(running.shutdown()).unwrap();
    if !by_extra.is_empty() {
        let others: u64 = by_extra.iter().map(|(_, sent)| sent).sum();
        println!(
            "  nodes: bench-a (leader) sent {}, {}",
            mock.count(provider) as u64 - others.min(mock.count(provider) as u64),
            by_extra
                .iter()
                .map(|(node, sent)| format!("{node} sent {sent}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let seen = mock.arrivals(provider).lock().unwrap().clone();
    let mut late: Vec<f64> = seen
        .iter()
        .map(|a| (a.at_us - fire_at[a.key.expect("message index in request")]) as f64 / 1000.0)
        .collect();
    late.sort_by(|a, b| a.total_cmp(b));
    let mut keys: Vec<usize> = seen.iter().filter_map(|a| a.key).collect();
    keys.sort_unstable();
    keys.dedup();
    let times: Vec<i64> = seen.iter().map(|a| a.at_us).collect();
    let first = times.iter().copied().min().unwrap_or(0);
    let last = times.iter().copied().max().unwrap_or(0);
    let span = (last - t0.as_microsecond()) as f64 / 1e6;
    let rs = common::providers::rate_stats(&times);
    let mode = if rate > 0.0 {
        format!("spread at {rate:.0}/s over {:.1} s", n as f64 / rate)
    } else {
        "burst (all due at T0)".to_owned()
    };
    let mut limit = rate_limit.map_or(String::new(), |(r, b)| {
        format!(" rate_limit={r}/s burst={b}")
    });
    let mut distinct = keys.len().to_string();
    if kind == "email" {
        limit.insert_str(
            0,
            &format!(
                " max_connections={}",
                common::env_or(
                    "DISPATCH_SMTP_CONNECTIONS",
                    common::providers::SMTP_CONNECTIONS
                )
            ),
        );
        distinct.push_str(&format!(
            ", distinct Message-ID {}",
            mock.smtp_message_ids.lock().unwrap().len()
        ));
    }
    println!(
        "dispatch {kind} ({provider} adapter{limit}): n={n} {mode}: delivered {} (distinct {distinct}) ; T0->last receipt {:.2} s -> {:.0} reminders/s; \
         first->last receipt {:.2} s; lateness ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}; \
         at the mock: (n-1)/(last-first) {:.3}/s, max in any 1 s {}, shortest gap {:.1} ms; rejected by mock {}",
        seen.len(),
        span,
        seen.len() as f64 / span,
        (last - first) as f64 / 1e6,
        common::pct(&late, 50.0),
        common::pct(&late, 90.0),
        common::pct(&late, 99.0),
        common::pct(&late, 100.0),
        rs.intervals_per_s,
        rs.max_1s,
        rs.min_gap_ms,
        mock.rejected.load(Ordering::Relaxed),
    );
    assert_eq!(seen.len(), n, "not every reminder arrived");
    assert_eq!(keys.len(), n, "a reminder arrived twice");
    if kind == "email" {
        assert_eq!(
            mock.smtp_message_ids.lock().unwrap().len(),
            n,
            "Message-IDs are not one per reminder"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Restart with many pending reminders (real binary)

fn http_status(addr: &str, path: &str, auth: Option<&str>) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = auth.map_or(String::new(), |a| format!("authorization: Bearer {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}connection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn scenario_restart() {
    let n = common::env_or("RESTART_N", 100_000usize);
    let runs = common::env_or("RESTART_RUNS", 3usize);
    let bin = common::repo().join("target/release/plazo");
    if !bin.exists() {
        println!(
            "restart: skipped, {} missing: run `cargo build --release` first",
            bin.display()
        );
        return;
    }
    let keep = std::env::var("RESTART_DIR").ok();
    let tmp = tempfile::tempdir().unwrap();
    let dir = keep.as_deref().map_or(tmp.path(), Path::new).to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    daemon_config(&dir, &addr, "http://127.0.0.1:9/hook");
    if dir.join("data/db").exists() {
        println!("  reusing the store in {}", dir.display());
    } else {
        let due = Timestamp::now() + SignedDuration::from_hours(24 * 365);
        preload(&dir, n, |_| due);
    }
    for run in 1..=runs {
        let log = std::fs::File::create(dir.join(format!("daemon-{run}.log"))).unwrap();
        let t0 = Instant::now();
        let mut child = Command::new(&bin)
            .args(["serve", "--config"])
            .arg(dir.join("plazo.toml"))
            .env("PLAZO_API_TOKEN", common::TOKEN)
            .env("PLAZO_WEBHOOK_SECRET", common::WEBHOOK_SECRET)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        while http_status(&addr, "/readyz", None) != Some(200) {
            assert!(t0.elapsed() < Duration::from_secs(120), "never ready");
            std::thread::sleep(Duration::from_millis(2));
        }
        let ready = t0.elapsed();
        let rss_ready = status_kb(pid, "VmRSS:");
        // Let start-up work that runs after /readyz answers (if any) finish, then look again.
        std::thread::sleep(Duration::from_millis(1500));
        let rss_settled = status_kb(pid, "VmRSS:");
        let st = http_status(&addr, "/v1/invoices/inv-42", Some(common::TOKEN));
        assert_eq!(st, Some(200));
        let rss_get = status_kb(pid, "VmRSS:");
        let hwm = status_kb(pid, "VmHWM:");
        let t1 = Instant::now();
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let code = child.wait().unwrap();
        println!(
            "restart run {run}: pending={n}: exec->/readyz 200 {:.3} s; VmRSS ready {} MB, +1.5 s {} MB, after GET {} MB, VmHWM {} MB; SIGTERM->exit {:.3} s ({code})",
            ready.as_secs_f64(),
            rss_ready / 1024,
            rss_settled / 1024,
            rss_get / 1024,
            hwm / 1024,
            t1.elapsed().as_secs_f64(),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Payment webhooks: signed Stripe `invoice.paid` events, acknowledged durably, then applied

/// One `payment event processed` line of the daemon's log (the inbox processor writes it at
/// info level right after the event's apply transaction commits).
struct Processed {
    /// `i` of `evt_{i}`.
    idx: usize,
    /// The line's timestamp, µs since the epoch.
    at_us: i64,
    /// `outcome=Applied { .. closed: true }`: the invoice is paid in full.
    paid: bool,
}

fn parse_processed(line: &str) -> Option<Processed> {
    if !line.contains("payment event processed") {
        return None;
    }
    let at: Timestamp = line.split_whitespace().next()?.parse().ok()?;
    const TAG: &str = "event=stripe:evt_";
    let rest = &line[line.find(TAG)? + TAG.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some(Processed {
        idx: rest[..end].parse().ok()?,
        at_us: at.as_microsecond(),
        paid: line.contains("outcome=Applied") && line.contains("closed: true"),
    })
}

/// Follows the daemon log at `path` until `n` events closed their invoice, or until `deadline`
/// once nothing new is written; returns every processed line.
fn tail_processed(path: &Path, n: usize, deadline: Instant) -> Vec<Processed> {
    let mut f = std::fs::File::open(path).unwrap();
    let mut pending = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut out = Vec::new();
    let mut paid = 0;
    loop {
        let k = f.read(&mut chunk).unwrap();
        if k == 0 {
            if paid >= n || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        pending.extend_from_slice(&chunk[..k]);
        while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            if let Some(p) = parse_processed(&String::from_utf8_lossy(&line)) {
                paid += usize::from(p.paid);
                out.push(p);
            }
        }
    }
}

/// One acknowledged webhook.
struct Acked {
    idx: usize,
    /// Wall clock just before the request was sent, µs since the epoch.
    sent_us: i64,
    /// Send → `200` with the body read, ms.
    ack_ms: f64,
}

/// Polls `GET /v1/invoices/inv-{i}` for the sampled events, oldest acknowledged first (the
/// processor applies in arrival order), until each reads `paid`; returns (i, sent → seen paid
/// in ms). One request at a time, 2 ms apart while the oldest is not paid yet.
async fn sample_paid(
    client: reqwest::Client,
    base: String,
    auth: String,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(usize, i64)>,
    deadline: Instant,
) -> Vec<(usize, f64)> {
    let mut queue = std::collections::VecDeque::new();
    let mut out = Vec::new();
    while Instant::now() < deadline {
        while let Ok(x) = rx.try_recv() {
            queue.push_back(x);
        }
        let Some(&(i, sent_us)) = queue.front() else {
            match rx.recv().await {
                Some(x) => queue.push_back(x),
                None => break,
            }
            continue;
        };
        let v: serde_json::Value = client
            .get(format!("{base}/v1/invoices/inv-{i}"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["invoice"]["status"] == "paid" {
            out.push((
                i,
                (Timestamp::now().as_microsecond() - sent_us) as f64 / 1000.0,
            ));
            queue.pop_front();
        } else {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    out
}

fn stripe_invoice_paid(i: usize) -> String {
    format!(
        r#"{{"id":"evt_{i}","object":"event","type":"invoice.paid","created":1700000000,"data":{{"object":{{"id":"in_{i}","object":"invoice","number":"S-{i}","currency":"cop","amount_paid":125000000,"status":"paid","metadata":{{"plazo_invoice_id":"inv-{i}"}},"status_transitions":{{"paid_at":1700000000}}}}}}}}"#
    )
}

fn ms_stats(v: &mut [f64]) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!(
        "p50 {:.2} p90 {:.2} p99 {:.2} max {:.2} (n={})",
        common::pct(v, 50.0),
        common::pct(v, 90.0),
        common::pct(v, 99.0),
        common::pct(v, 100.0),
        v.len()
    )
}

fn scenario_payments(conc: usize) {
    let n = common::env_or("PAY_N", 20_000usize);
    let sample_every = common::env_or("PAY_SAMPLE_EVERY", 100usize);
    let timeout = Duration::from_secs(common::env_or("PAY_TIMEOUT_SECS", 300u64));
    // Offered rate: event i is not sent before first send + i / rate (0: as fast as `conc`
    // in-flight requests allow).
    let rate = common::env_or("PAY_RATE", 0.0f64);
    let dir = tempfile::tempdir().unwrap();
    init_tracing(dir.path());
    let cfg = daemon_config(dir.path(), "127.0.0.1:0", "http://127.0.0.1:9/hook");
    // Invoices due in a year: each has its first reminder pending, which the payment cancels.
    let due = Timestamp::now() + SignedDuration::from_hours(24 * 365);
    preload(dir.path(), n, |_| due);
    let drt = rt_named(2, "plazo-daemon");
    let running = drt
        .block_on(plazo::daemon::start(cfg, Arc::new(SystemClock)))
        .unwrap();
    let base = format!("http://{}", running.addr);
    let auth = format!("Bearer {}", common::TOKEN);
    let deadline = Instant::now() + timeout;
    let log = dir.path().join("bench-daemon.log");
    let watcher = std::thread::spawn(move || tail_processed(&log, n, deadline));
    let crt = rt_named(2, "bench-client");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc * 2)
        .build()
        .unwrap();
    let (acks_elapsed, mut acked, sampled, duplicates) = crt.block_on(async {
        let (stx, srx) = tokio::sync::mpsc::unbounded_channel::<(usize, i64)>();
        let sampler = (sample_every > 0).then(|| {
            tokio::spawn(sample_paid(
                client.clone(),
                base.clone(),
                auth.clone(),
                srx,
                deadline,
            ))
        });
        let next = Arc::new(AtomicUsize::new(0));
        let dups = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..conc {
            let client = client.clone();
            let next = next.clone();
            let dups = dups.clone();
            let base = base.clone();
            let stx = stx.clone();
            tasks.spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    if rate > 0.0 {
                        tokio::time::sleep_until(
                            (t0 + Duration::from_secs_f64(i as f64 / rate)).into(),
                        )
                        .await;
                    }
                    let body = stripe_invoice_paid(i);
                    let sig = plazo::payments::stripe::sign_header(
                        common::STRIPE_SECRET,
                        Timestamp::now().as_second(),
                        body.as_bytes(),
                    );
                    let sent = Timestamp::now();
                    let s = Instant::now();
                    let r = client
                        .post(format!("{base}/webhooks/stripe"))
                        .header(plazo::payments::stripe::SIGNATURE_HEADER, sig)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let st = r.status();
                    let b = r.bytes().await.unwrap();
                    let ack_ms = s.elapsed().as_secs_f64() * 1000.0;
                    assert_eq!(st.as_u16(), 200, "{}", String::from_utf8_lossy(&b));
                    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                    if v["duplicate"] != false {
                        dups.fetch_add(1, Ordering::Relaxed);
                    }
                    if sample_every > 0 && i % sample_every == 0 {
                        let _ = stx.send((i, sent.as_microsecond()));
                    }
                    out.push(Acked {
                        idx: i,
                        sent_us: sent.as_microsecond(),
                        ack_ms,
                    });
                }
                out
            });
        }
        drop(stx);
        let mut all = Vec::with_capacity(n);
        while let Some(l) = tasks.join_next().await {
            all.extend(l.unwrap());
        }
        let el = t0.elapsed();
        let sampled = match sampler {
            Some(h) => h.await.unwrap(),
            None => Vec::new(),
        };
        (el, all, sampled, dups.load(Ordering::Relaxed))
    });
    let processed = watcher.join().unwrap();

    // Throughput and latency.
    acked.sort_by_key(|a| a.idx);
    let mut ack_ms: Vec<f64> = acked.iter().map(|a| a.ack_ms).collect();
    let first_send = acked.iter().map(|a| a.sent_us).min().unwrap_or(0);
    let last_ack = acked
        .iter()
        .map(|a| a.sent_us + (a.ack_ms * 1000.0) as i64)
        .max()
        .unwrap_or(0);
    let paid: Vec<&Processed> = processed.iter().filter(|p| p.paid).collect();
    let first_apply = paid.iter().map(|p| p.at_us).min().unwrap_or(0);
    let last_apply = paid.iter().map(|p| p.at_us).max().unwrap_or(0);
    let applied_by_last_ack = paid.iter().filter(|p| p.at_us <= last_ack).count();
    let mut e2e: Vec<f64> = paid
        .iter()
        .filter(|p| p.idx < n)
        .map(|p| (p.at_us - acked[p.idx].sent_us) as f64 / 1000.0)
        .collect();
    let mut api_seen: Vec<f64> = sampled.iter().map(|s| s.1).collect();
    let span_apply = (last_apply - first_send) as f64 / 1e6;
    println!(
        "payments: n={n} conc={conc} offered {}: acks {:.2} s -> {:.0} acks/s; ack latency ms {}",
        if rate > 0.0 {
            format!("{rate}/s")
        } else {
            "closed loop".to_owned()
        },
        acks_elapsed.as_secs_f64(),
        n as f64 / acks_elapsed.as_secs_f64(),
        ms_stats(&mut ack_ms),
    );
    println!(
        "payments: applied (invoice paid) {} of {n}; first send -> last apply {:.2} s -> {:.0} applied/s; \
         first apply -> last apply {:.2} s ({:.0}/s); applied by the last ack {} ({:.0} %), last ack -> last apply {:.2} s",
        paid.len(),
        span_apply,
        paid.len() as f64 / span_apply,
        (last_apply - first_apply) as f64 / 1e6,
        paid.len() as f64 / ((last_apply - first_apply) as f64 / 1e6),
        applied_by_last_ack,
        100.0 * applied_by_last_ack as f64 / n as f64,
        (last_apply - last_ack) as f64 / 1e6,
    );
    println!(
        "payments: end to end send -> applied (processor log line, commit before the pass's flush) ms {}",
        ms_stats(&mut e2e)
    );
    if sample_every > 0 {
        println!(
            "payments: end to end send -> GET /v1/invoices shows paid (every {sample_every}th, polled oldest first) ms {}",
            ms_stats(&mut api_seen)
        );
    }

    // Acknowledged and applied per second since the first send: shows whether the processor
    // keeps up while the webhooks are coming in, or only catches up afterwards.
    let secs = ((last_apply.max(last_ack) - first_send) / 1_000_000 + 1) as usize;
    let mut per_s = vec![(0usize, 0usize); secs];
    for a in &acked {
        let at = a.sent_us + (a.ack_ms * 1000.0) as i64;
        per_s[((at - first_send) / 1_000_000) as usize].0 += 1;
    }
    for p in &paid {
        per_s[(((p.at_us - first_send).max(0)) / 1_000_000) as usize].1 += 1;
    }
    println!(
        "payments: per second since the first send, acked/applied: {}",
        per_s
            .iter()
            .map(|(a, p)| format!("{a}/{p}"))
            .collect::<Vec<_>>()
            .join(" ")
    );

    // Correctness, through the API.
    let check_start = Instant::now();
    let (states, invoices_paid, chase_stopped) = crt.block_on(async {
        let mut states = Vec::new();
        for s in ["received", "applied", "unmatched", "flagged", "failed"] {
            let v: Vec<serde_json::Value> = client
                .get(format!("{base}/v1/payment-events?state={s}"))
                .header("authorization", &auth)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            states.push((s, v.len()));
        }
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..conc {
            let (client, next, base, auth) =
                (client.clone(), next.clone(), base.clone(), auth.clone());
            tasks.spawn(async move {
                let (mut paid, mut stopped) = (0usize, 0usize);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let v: serde_json::Value = client
                        .get(format!("{base}/v1/invoices/inv-{i}"))
                        .header("authorization", &auth)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    if v["invoice"]["status"] == "paid" && v["invoice"]["balance"] == "0.00" {
                        paid += 1;
                    }
                    if v["next_reminder"].is_null() {
                        stopped += 1;
                    }
                }
                (paid, stopped)
            });
        }
        let (mut paid, mut stopped) = (0, 0);
        while let Some(r) = tasks.join_next().await {
            let (p, s) = r.unwrap();
            paid += p;
            stopped += s;
        }
        (states, paid, stopped)
    });
    let count = |s: &str| states.iter().find(|(k, _)| *k == s).map_or(0, |(_, c)| *c);
    println!(
        "payments: check ({:.1} s): payment events {}; duplicates acknowledged {duplicates}; invoices paid with balance 0.00: {invoices_paid} of {n}; no reminder pending: {chase_stopped} of {n}",
        check_start.elapsed().as_secs_f64(),
        states
            .iter()
            .map(|(s, c)| format!("{s} {c}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    drt.block_on(running.shutdown()).unwrap();
    assert_eq!(count("applied"), n, "not every event was applied");
    for s in ["received", "unmatched", "flagged", "failed"] {
        assert_eq!(count(s), 0, "events left {s}");
    }
    assert_eq!(duplicates, 0);
    assert_eq!(invoices_paid, n, "not every invoice is paid");
    assert_eq!(
        chase_stopped, n,
        "a reminder is still pending on a paid invoice"
    );
    assert_eq!(
        paid.len(),
        n,
        "the log shows fewer applied events than the API"
    );
}

fn main() {
    common::set_env();
    println!("machine: {}", common::machine());
    let arg = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .or_else(|| std::env::var("LOAD_SCENARIO").ok())
        .unwrap_or_else(|| "http,dispatch".into());
    for s in arg.split(',') {
        match s.trim() {
            "http" => scenario_http(),
            "floor" => scenario_floor(),
            "dispatch" => {
                let rates = std::env::var("DISPATCH_RATE").unwrap_or_else(|_| "0,5000".into());
                for r in rates
                    .split(',')
                    .filter_map(|r| r.trim().parse::<f64>().ok())
                {
                    scenario_dispatch(r);
                }
            }
            "restart" => scenario_restart(),
            "payments" => {
                let concs = std::env::var("PAY_CONC").unwrap_or_else(|_| "64".into());
                for c in concs
                    .split(',')
                    .filter_map(|c| c.trim().parse::<usize>().ok())
                {
                    scenario_payments(c);
                }
            }
            other => {
                eprintln!(
                    "unknown scenario {other:?}: use http, floor, dispatch, restart, payments"
                )
            }
        }
    }
}
