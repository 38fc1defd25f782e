//! Crash safety: SIGKILL the daemon while it dispatches a few thousand due reminders to the
//! webhook channel, restart it, and check that none is lost and none is delivered twice; the
//! reminders in flight at the kill are logged as `unknown`.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use common::{Daemon, free_port, step, test_policy, write};
use plazo::domain::{ClientId, InvoiceId};
use plazo::policy::load_policy;
use plazo::service::{upsert_client, upsert_invoice};
use plazo::store::{Store, StoreOptions};
use serde_json::json;

const N: usize = 3000;

/// A local HTTP sink counting deliveries per webhook-id, a little slow so the kill lands mid-run.
fn start_sink() -> (SocketAddr, Arc<Mutex<HashMap<String, usize>>>) {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let s2 = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, _body: axum::body::Bytes| {
            let seen = s2.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                *seen.lock().unwrap().entry(id).or_default() += 1;
                "ok"
            }
        }),
    );
    let listener = common::reqwest::block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        common::reqwest::block_on(async move { axum::serve(listener, app).await.unwrap() });
    });
    (addr, seen)
}

#[test]
fn sigkill_mid_dispatch_loses_nothing_and_duplicates_nothing() {
    let (sink, seen) = start_sink();
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("policy.toml"),
        &test_policy(
            "UTC",
            "es",
            ("00:00", "24:00"),
            &["one"],
            &[
                step("one", "due_today", "0d", None, &["webhook"]),
                step("one", "firm_overdue", "+30d", None, &["webhook"]),
            ],
        ),
    );
    let port = free_port();
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
data_dir = "data"
[dispatch]
concurrency = 64
[routes]
webhook = "crm"
[channels.crm]
type = "webhook"
url = "http://{sink}/hook"
secret_env = "PLAZO_WEBHOOK_SECRET"
"#
    );
    // Load the invoices straight into the store (through the same service code the API uses),
    // so that all of them fall due together shortly after the daemon starts, however slow
    // the machine is.
    let due = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3);
    {
        let store = Store::open(&dir.path().join("data/db"), StoreOptions::default()).unwrap();
        let loaded = load_policy(&dir.path().join("policy.toml")).unwrap();
        let now = jiff::Timestamp::now();
        let c1 = ClientId::new("c1").unwrap();
        let client = serde_json::from_value(json!({"name": "Ana"})).unwrap();
        upsert_client(&store, &loaded.policy, &c1, client, now).unwrap();
        for i in 0..N {
            let input =
                serde_json::from_value(json!({"client_id": "c1", "number": format!("F-{i}"),
                "currency": "COP", "amount": "1000", "due_at": due.to_string()}))
                .unwrap();
            let id = InvoiceId::new(format!("inv-{i}")).unwrap();
            upsert_invoice(&store, &loaded.policy, &id, input, now).unwrap();
        }
        store.flush_blocking().unwrap();
    }
    let daemon = Daemon::start(dir.path(), &config, port);
    // Wait for dispatch to be well under way, then kill.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let n = seen.lock().unwrap().len();
        if n >= N / 4 {
            break;
        }
        assert!(
            Instant::now() < end,
            "dispatch never started; log:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    daemon.kill();
    let at_kill = seen.lock().unwrap().len();
    assert!(
        at_kill < N,
        "the kill came too late to test anything ({at_kill} of {N} delivered)"
    );

    let daemon = Daemon::start_existing(dir.path(), port);
    // Wait until every invoice has handled its first step.
    let end = Instant::now() + Duration::from_secs(120);
    let mut unknown = 0;
    let mut delivered_ids = 0;
    for i in 0..N {
        loop {
            let (_, inv) = daemon.api("GET", &format!("/v1/invoices/inv-{i}"), None);
            let timeline = inv["timeline"].as_array().unwrap().clone();
            let first: Vec<_> = timeline
                .iter()
                .filter(|l| l["step"] == "due_today")
                .collect();
            let sent = first.iter().filter(|l| l["outcome"] == "sent").count();
            let unk = first.iter().filter(|l| l["outcome"] == "unknown").count();
            if sent + unk > 0 {
                assert!(sent <= 1, "step recorded as sent twice: {inv}");
                assert_eq!(sent + unk, 1, "{inv}");
                unknown += unk;
                delivered_ids += sent;
                assert_eq!(inv["next_reminder"]["step_name"], "firm_overdue", "{inv}");
                break;
            }
            assert!(
                Instant::now() < end,
                "invoice inv-{i} never handled; log:\n{}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if unknown > 0 {
        assert!(
            daemon.log_text().contains("in flight at an unclean stop"),
            "reminders in doubt must be logged"
        );
    }
    let seen = seen.lock().unwrap();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    // Every reminder is accounted for: recorded as sent, or logged unknown (in flight at the kill).
    assert_eq!(delivered_ids + unknown, N);
    // Nothing recorded as sent was missing at the sink.
    assert!(
        seen.len() >= delivered_ids,
        "sink saw {} but {} recorded sent",
        seen.len(),
        delivered_ids
    );
    // In-flight reminders are bounded by the dispatcher's concurrency.
    assert!(
        unknown <= 64 + 1,
        "{unknown} unknown: claims ran ahead of sends"
    );
    eprintln!(
        "crash test: {at_kill} delivered before the kill, {unknown} in flight (logged unknown), {delivered_ids} recorded sent"
    );
}
