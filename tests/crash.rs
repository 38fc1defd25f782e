//! Crash safety: SIGKILL the daemon while it dispatches a few thousand due reminders to the
//! webhook channel, restart it, and check that none is lost and none is delivered twice; the
//! reminders in flight at the kill are logged as `unknown`.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::time::Duration;

use common::burst::{self, Sink};
use common::{Daemon, free_port, write};
use plazo::domain::{ClientId, InvoiceId};
use plazo::policy::load_policy;
use plazo::service::{upsert_client, upsert_invoice};
use serde_json::json;

const N: usize = 3000;

#[test]
fn sigkill_mid_dispatch_loses_nothing_and_duplicates_nothing() {
    // A little slow, so the kill lands mid-run.
    let sink = Sink::start(Duration::from_millis(20));
    let sink_addr = sink.addr;
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("policy.toml"), &burst::policy());
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
url = "http://{sink_addr}/hook"
secret_env = "PLAZO_WEBHOOK_SECRET"
"#
    );
    // Load the invoices straight into the store (through the same service code the API uses),
    // so that all of them fall due together shortly after the daemon starts, however slow
    // the machine is.
    let due = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3);
    {
        let store = common::open_store_at(&dir.path().join("data/db"), dir.path());
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
    sink.wait_for(N / 4, Duration::from_secs(60), || {
        format!("dispatch never started; log:\n{}", daemon.log_text())
    });
    daemon.kill();
    let at_kill = sink.distinct();
    assert!(
        at_kill < N,
        "the kill came too late to test anything ({at_kill} of {N} delivered)"
    );

    let daemon = Daemon::start_existing(dir.path(), port);
    // Wait until every invoice has handled its first step.
    let burst::Accounting {
        sent: delivered_ids,
        unknown,
        ..
    } = burst::account(&daemon, N, Duration::from_secs(120));
    if unknown > 0 {
        assert!(
            daemon.log_text().contains("in flight at an unclean stop"),
            "reminders in doubt must be logged"
        );
    }
    // The restarted daemon counts the reminders it settled in doubt.
    let (status, page) = daemon.api("GET", "/metrics", None);
    assert_eq!(status, 200);
    let in_doubt: usize = page
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("plazo_reminders_in_doubt_total "))
        .map_or(0, |v| v.trim().parse().unwrap());
    assert_eq!(in_doubt, unknown, "plazo_reminders_in_doubt_total");
    let twice = sink.twice();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    // Every reminder is accounted for: recorded as sent, or logged unknown (in flight at the kill).
    assert_eq!(delivered_ids + unknown, N);
    // Nothing recorded as sent was missing at the sink.
    assert!(
        sink.distinct() >= delivered_ids,
        "sink saw {} but {} recorded sent",
        sink.distinct(),
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
