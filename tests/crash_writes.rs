//! Crash safety of the write path: SIGKILL the daemon while 64 clients write invoices at once,
//! restart it, and check that every request answered 2xx is on disk, whole, and that a request
//! cut off by the kill is either wholly there or not at all (never half-applied).

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, free_port, step, test_policy, write};
use serde_json::{Value, json};

const WRITERS: usize = 64;
/// Acknowledged writes to wait for before the kill.
const KILL_AFTER: usize = 2000;

/// What one request got.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// A 2xx answer.
    Acked,
    /// No answer (the connection died with the daemon) or a non-2xx one.
    Cut,
}

fn body(id: &str) -> String {
    json!({"client_id": "c1", "number": format!("N-{id}"), "currency": "COP",
           "amount": format!("{}", 1000 + id.len()), "due_at": "2031-06-30"})
    .to_string()
}

/// Checks that invoice `id` is there whole: the invoice as sent, its first reminder planned
/// and its creation on the timeline.
fn assert_whole(daemon: &Daemon, id: &str, v: &Value) {
    let inv = &v["invoice"];
    assert_eq!(inv["number"], format!("N-{id}"), "{v}");
    assert_eq!(inv["amount"], format!("{}", 1000 + id.len()), "{v}");
    let next = &v["next_reminder"];
    assert_eq!(
        next["state"], "scheduled",
        "invoice {id} lost its plan: {v}"
    );
    assert_eq!(inv["pending"], next["id"], "{v}");
    let timeline = v["timeline"].as_array().unwrap();
    assert!(
        timeline.iter().any(|l| l["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("invoice created")),
        "invoice {id} has no creation line: {v}; log:\n{}",
        daemon.log_text()
    );
}

#[test]
fn sigkill_during_concurrent_writes_keeps_every_acknowledged_write_whole() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("policy.toml"),
        &test_policy(
            "UTC",
            "es",
            ("00:00", "24:00"),
            &["one"],
            &[step("one", "courtesy", "-3d", None, &["webhook"])],
        ),
    );
    let port = free_port();
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
data_dir = "data"
[routes]
webhook = "crm"
[channels.crm]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret_env = "PLAZO_WEBHOOK_SECRET"
"#
    );
    let daemon = Daemon::start(dir.path(), &config, port);
    let (st, v) = daemon.api("PUT", "/v1/clients/c1", Some(r#"{"name":"Ana"}"#));
    assert!(st == 200 || st == 201, "{st} {v}");

    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Arc<std::sync::Mutex<Vec<(String, Answer)>>> = Arc::default();
    let url = daemon.base.clone();
    let token = daemon.token.clone();
    let writers = common::reqwest::block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        (0..WRITERS)
            .map(|w| {
                let (client, url, token) = (client.clone(), url.clone(), token.clone());
                let (acked, stop, answers) = (acked.clone(), stop.clone(), answers.clone());
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let id = format!("w{w}-{i}");
                        i += 1;
                        let res = client
                            .put(format!("{url}/v1/invoices/{id}"))
                            .bearer_auth(&token)
                            .header("content-type", "application/json")
                            .body(body(&id))
                            .send()
                            .await;
                        let answer = match res {
                            Ok(r) if r.status().is_success() => Answer::Acked,
                            _ => Answer::Cut,
                        };
                        if answer == Answer::Acked {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        answers.lock().unwrap().push((id, answer.clone()));
                        if answer == Answer::Cut {
                            break; // the daemon is gone
                        }
                    }
                })
            })
            .collect::<Vec<_>>()
    });
    let end = Instant::now() + Duration::from_secs(120);
    while acked.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < end,
            "writes too slow; log:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    daemon.kill();
    stop.store(true, Ordering::SeqCst);
    common::reqwest::block_on(async {
        for w in writers {
            w.await.unwrap();
        }
    });
    let answers = answers.lock().unwrap().clone();
    let cut: Vec<_> = answers.iter().filter(|(_, a)| *a == Answer::Cut).collect();
    assert!(
        !cut.is_empty(),
        "the kill came when no request was in flight: nothing tested"
    );

    let daemon = Daemon::start_existing(dir.path(), port);
    let mut lost = Vec::new();
    let mut cut_applied = 0;
    for (id, answer) in &answers {
        let (st, v) = daemon.api("GET", &format!("/v1/invoices/{id}"), None);
        match (answer, st) {
            (Answer::Acked, 200) => assert_whole(&daemon, id, &v),
            (Answer::Acked, _) => lost.push(id.clone()),
            (Answer::Cut, 200) => {
                cut_applied += 1;
                assert_whole(&daemon, id, &v);
            }
            (Answer::Cut, 404) => {}
            (Answer::Cut, other) => panic!("GET {id}: {other} {v}"),
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged but lost after the kill: {lost:?}"
    );
    eprintln!(
        "crash during writes: {} acknowledged, all whole after restart; {} cut off by the kill, {cut_applied} of them applied whole, the rest absent",
        answers.len() - cut.len(),
        cut.len()
    );
}
