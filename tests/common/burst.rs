//! A burst of due reminders to the webhook channel, a local sink counting deliveries by
//! `webhook-id`, and the accounting after crashes: every reminder recorded `sent` or logged
//! `unknown` exactly once (tests/crash.rs on sled, tests/pg_failover.rs on PostgreSQL).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;

use super::{Daemon, step, test_policy};

/// A local HTTP sink (`POST /hook`) counting deliveries per `webhook-id`.
pub struct Sink {
    pub addr: SocketAddr,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

impl Sink {
    /// Starts the sink; each request takes `delay`, so a kill lands mid-burst.
    pub fn start(delay: Duration) -> Sink {
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let s2 = seen.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, _body: axum::body::Bytes| {
                let seen = s2.clone();
                async move {
                    tokio::time::sleep(delay).await;
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
        let listener =
            super::reqwest::block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            super::reqwest::block_on(async move { axum::serve(listener, app).await.unwrap() });
        });
        Sink { addr, seen }
    }

    /// Distinct webhook-ids received.
    pub fn distinct(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The webhook-ids received more than once, with their counts.
    pub fn twice(&self) -> Vec<(String, usize)> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (id.clone(), *n))
            .collect()
    }

    /// Waits until at least `n` distinct webhook-ids have arrived; panics after `timeout`
    /// with `why()` (a log, say).
    pub fn wait_for(&self, n: usize, timeout: Duration, why: impl Fn() -> String) {
        let end = Instant::now() + timeout;
        while self.distinct() < n {
            assert!(
                Instant::now() < end,
                "only {} of {n} deliveries arrived; {}",
                self.distinct(),
                why()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The policy of a burst: one cadence, `due_today` then `firm_overdue`, both on the webhook
/// channel, at any hour (UTC).
pub fn policy() -> String {
    test_policy(
        "UTC",
        "es",
        ("00:00", "24:00"),
        &["one"],
        &[
            step("one", "due_today", "0d", None, &["webhook"]),
            step("one", "firm_overdue", "+30d", None, &["webhook"]),
        ],
    )
}

/// How the first step of invoices `inv-0..inv-{n}` ended.
#[derive(Debug, Default)]
pub struct Accounting {
    /// Recorded `sent`.
    pub sent: usize,
    /// Logged `unknown` (in flight at a kill).
    pub unknown: usize,
    /// Recorded `sent`, by the node that sent it (the line's "by node NAME", written when the
    /// message went through the shared send queue).
    pub sent_by: std::collections::BTreeMap<String, usize>,
    /// The details of the `unknown` lines.
    pub unknown_details: Vec<String>,
}

/// Waits (up to `timeout` in all) until every invoice `inv-0..inv-{n}` has handled its
/// `due_today` step, read through `daemon`'s API, and checks each: recorded `sent` or
/// `unknown` exactly once, and its next reminder planned.
pub fn account(daemon: &Daemon, n: usize, timeout: Duration) -> Accounting {
    let end = Instant::now() + timeout;
    let mut acc = Accounting::default();
    for i in 0..n {
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
                acc.unknown += unk;
                acc.sent += sent;
                for l in &first {
                    let detail = l["detail"].as_str().unwrap_or_default();
                    if l["outcome"] == "sent" {
                        if let Some((_, node)) = detail.rsplit_once("by node ") {
                            *acc.sent_by.entry(node.to_owned()).or_default() += 1;
                        }
                    } else if l["outcome"] == "unknown" {
                        acc.unknown_details.push(detail.to_owned());
                    }
                }
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
    acc
}
