//! A local Standard Webhooks receiver for the events out: it verifies every request with the
//! secret of its path (the official vectors of `../shared/fixtures` check it), records what
//! arrived, and answers scripted statuses.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use plazo::clock::SharedClock;
use plazo::inbound::standard_webhooks::{
    DEFAULT_TOLERANCE, HeaderLookup, VerifyError, WebhookSecret, verify,
};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// The official Standard Webhooks vectors, and a receiver that checks every request with them.

#[derive(serde::Deserialize, Clone)]
pub struct Vector {
    pub secret: String,
    pub msg_id: String,
    pub timestamp: i64,
    pub payload: String,
    pub expected: String,
}

/// The vectors of `/work/shared/fixtures` (the repository keeps a byte-identical copy in
/// `tests/fixtures`, used where the shared directory is not mounted).
pub fn vectors() -> Vec<Vector> {
    let shared = std::path::Path::new("/work/shared/fixtures/signature_test_vectors.json");
    let path = if shared.is_file() {
        shared.to_path_buf()
    } else {
        super::repo().join("tests/fixtures/signature_test_vectors.json")
    };
    let mut all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::from_value(all["standard_webhooks"].take()).unwrap()
}

/// The `[events]` endpoint's secret: the first official vector's.
pub fn erp_secret() -> String {
    vectors()[0].secret.clone()
}

/// The partner endpoint's secret: the second official vector's.
pub fn partner_secret() -> String {
    vectors()[1].secret.clone()
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    pub id: String,
    pub timestamp: i64,
    pub body: String,
    pub verified: Result<(), VerifyError>,
    /// The status the receiver answered.
    pub status: u16,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A local HTTP receiver: verifies each request with the secret of its path and the time of
/// `clock` (answering 401 to a bad signature), then answers the next status scripted for the
/// path, or `fallback`.
#[derive(Clone)]
pub struct Receiver {
    addr: SocketAddr,
    /// The clock signatures are checked against (the daemon's, once it runs).
    clock: Arc<Mutex<SharedClock>>,
    seen: Arc<Mutex<Vec<Delivery>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    fallback: Arc<Mutex<u16>>,
}

impl Receiver {
    pub async fn start(clock: SharedClock, secrets: &[(&str, String)]) -> Receiver {
        let secrets: HashMap<String, WebhookSecret> = secrets
            .iter()
            .map(|(p, s)| ((*p).to_owned(), WebhookSecret::parse(s).unwrap()))
            .collect();
        let r = Receiver {
            addr: "127.0.0.1:0".parse().unwrap(),
            clock: Arc::new(Mutex::new(clock)),
            seen: Arc::default(),
            script: Arc::default(),
            fallback: Arc::new(Mutex::new(200)),
        };
        let state = (r.clone(), Arc::new(secrets));
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let (r, secrets) = state.clone();
            async move {
                let now = r.clock.lock().unwrap().now();
                let path = uri.path().to_owned();
                let verified = match secrets.get(&path) {
                    Some(secret) => verify(
                        secret,
                        &HeaderLookup::from_headers(&headers),
                        &body,
                        now,
                        DEFAULT_TOLERANCE,
                    ),
                    None => Err(VerifyError::NoMatch),
                };
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let status = if verified.is_err() {
                    401
                } else {
                    let next = r.script.lock().unwrap().pop_front();
                    next.unwrap_or(*r.fallback.lock().unwrap())
                };
                r.seen.lock().unwrap().push(Delivery {
                    path,
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp").parse().unwrap_or(0),
                    body: String::from_utf8_lossy(&body).into_owned(),
                    verified,
                    status,
                });
                (StatusCode::from_u16(status).unwrap(), "ok")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, ..r }
    }

    /// Checks signatures against `clock` from now on.
    pub fn use_clock(&self, clock: SharedClock) {
        *self.clock.lock().unwrap() = clock;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Delivery> {
        self.seen.lock().unwrap().clone()
    }

    pub fn answer(&self, statuses: &[u16], then: u16) {
        self.script.lock().unwrap().extend(statuses);
        *self.fallback.lock().unwrap() = then;
    }

    /// Waits (real time, polling) until `n` requests arrived; `tick` runs between polls.
    pub async fn wait_for(&self, n: usize, mut tick: impl FnMut()) -> Vec<Delivery> {
        for _ in 0..400 {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            tick();
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} deliveries, got {:?}", self.seen());
    }

    /// Waits (real time, polling the blocking way) until `pred` holds for what arrived, for
    /// tests driving the real daemon from a plain thread; `what` names it in the failure.
    pub fn wait_until(&self, what: &str, pred: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        for _ in 0..1200 {
            let seen = self.seen();
            if pred(&seen) {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("{what}: not seen in 30 s; got {:#?}", self.seen());
    }
}
