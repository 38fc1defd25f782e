//! The daemon under hostile or broken conditions, in-process on a socket bound by the test:
//! slow and idle clients are cut off, the connection limit does not lock the API, oversize
//! bodies get 413, every error is the JSON envelope, and a store that cannot write is reported
//! by `/readyz` and recovers (the dispatcher resumes) without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use common::inproc::{InProcess, start_in_process};

use std::time::Duration;

use common::{step, test_policy};
use plazo::clock::ManualClock;
use plazo::daemon::Running;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "hardening-token-7c1e";
const NOW: &str = "2026-03-01T12:00:00Z";

struct Daemon {
    running: Option<Running>,
    addr: std::net::SocketAddr,
    clock: ManualClock,
    dir: tempfile::TempDir,
}

async fn start(http: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let policy = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &[step("standard", "courtesy", "-3d", None, &["email"])],
    );
    let (running, clock) = start_in_process(
        dir.path(),
        InProcess {
            policy: &policy,
            token: TOKEN,
            top: "",
            tables: &format!("[http]\n{http}"),
            now: NOW,
            channels: "",
        },
    )
    .await;
    Daemon {
        addr: running.addr,
        running: Some(running),
        clock,
        dir,
    }
}

impl Daemon {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends `request` as is and reads the answer until the server closes (10 s at most).
    async fn raw(&self, request: &[u8]) -> String {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let _ = s.write_all(request).await;
        read_until_closed(&mut s)
            .await
            .expect("the server never closed")
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let auth = format!("Bearer {TOKEN}");
        let base = format!("http://{}", self.addr);
        common::inproc::request(
            &reqwest::Client::new(),
            &base,
            method,
            path,
            Some(&auth),
            body.as_deref(),
        )
        .await
    }

    async fn stop(mut self) {
        self.running.take().unwrap().shutdown().await.unwrap();
    }
}

/// Everything the peer sends until it closes; `None` if it is still open after 10 s.
async fn read_until_closed(s: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    done.ok()
        .map(|()| String::from_utf8_lossy(&out).into_owned())
}

/// The status code and JSON body of a raw HTTP/1.1 answer.
fn parse_answer(text: &str) -> (u16, Value) {
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
    )
}

fn assert_error(st: u16, v: &Value, status: u16, code: &str) {
    assert_eq!(st, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

const FAST: &str = "header_timeout_ms = 300\nbody_timeout_ms = 300\nmax_connections = 4";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slow_header_and_slow_body_connections_are_closed() {
    let d = start(FAST).await;

    // Idle: connects and sends nothing.
    let mut idle = TcpStream::connect(d.addr).await.unwrap();
    assert!(
        read_until_closed(&mut idle).await.is_some(),
        "an idle connection stayed open"
    );

    // Slow header: never finishes its head.
    let mut slow = TcpStream::connect(d.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut slow).await.is_some(),
        "a connection with an unfinished head stayed open"
    );

    // Slow body: announces 100 bytes, sends 10.
    let mut body = TcpStream::connect(d.addr).await.unwrap();
    body.write_all(
        b"POST /webhooks/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\": 1, ",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut body)
        .await
        .expect("a connection with an unfinished body stayed open");
    let (st, v) = parse_answer(&answer);
    assert_error(st, &v, 408, "request_timeout");

    // A keep-alive connection is closed once idle after its answer.
    let mut ka = TcpStream::connect(d.addr).await.unwrap();
    ka.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut ka)
        .await
        .expect("an idle keep-alive connection stayed open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_do_not_lock_the_api_out() {
    let d = start(FAST).await;
    // Twice the limit of idle connections, held open by the client.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(d.addr).await.unwrap());
    }
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(d.url("/healthz"))
        .send()
        .await
        .expect("the API stayed unreachable behind idle connections");
    assert_eq!(resp.status(), 200);
    // The idle ones were closed by the server, not by us.
    for s in &mut held {
        assert!(read_until_closed(s).await.is_some());
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_get_413_json_per_route() {
    let d = start("").await;
    let big = 10 * 1024 * 1024;
    let head = format!(
        "PUT /v1/clients/c-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {big}\r\n\r\n"
    );
    let (st, v) = parse_answer(&d.raw(head.as_bytes()).await);
    assert_error(st, &v, 413, "payload_too_large");

    // /v1 takes 64 KiB: 100 KiB is refused, whatever the content.
    let body = format!("{{\"name\": \"{}\"}}", "a".repeat(100 * 1024));
    let (st, v) = d
        .call(
            "PUT",
            "/v1/clients/c-1",
            Some(serde_json::from_str(&body).unwrap()),
        )
        .await;
    assert_error(st, &v, 413, "payload_too_large");

    // Webhooks take 1 MiB: 2 MiB without a Content-Length (chunked) is refused too.
    let chunk = "x".repeat(2 * 1024 * 1024);
    let req = format!(
        "POST /webhooks/payments HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let _ = s.write_all(req.as_bytes()).await;
    let answer = read_until_closed(&mut s).await.unwrap();
    let (st, v) = parse_answer(&answer);
    assert_error(st, &v, 413, "payload_too_large");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_the_json_envelope() {
    let d = start("").await;
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let cases: [(String, u16, &str); 6] = [
        (
            "GET /u/%FF%FE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
            400,
            "bad_request",
        ),
        (
            "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
            404,
            "no_route",
        ),
        (
            format!(
                "DELETE /v1/clients/c-1 HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
            ),
            405,
            "method_not_allowed",
        ),
        (
            "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .into(),
            405,
            "method_not_allowed",
        ),
        (
            format!(
                "GET /v1/clients/%FF%FE HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
            ),
            400,
            "bad_request",
        ),
        (
            format!(
                "PUT /v1/clients/c-1 HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{{"
            ),
            400,
            "malformed_json",
        ),
    ];
    for (req, status, code) in cases {
        let answer = d.raw(req.as_bytes()).await;
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{req:?} -> {answer}"
        );
        let (st, v) = parse_answer(&answer);
        assert_error(st, &v, status, code);
    }
    d.stop().await;
}

/// Polls `f` every 50 ms for up to 20 s.
async fn eventually<F, Fut>(mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn outbox_files(d: &Daemon) -> usize {
    std::fs::read_dir(d.dir.path().join("data/outbox"))
        .map(|r| r.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_write_is_unready_then_recovers_and_sends_without_restart() {
    let d = start("").await;
    let client = json!({"name": "María Pérez", "email": "maria@cliente.example.co",
                        "locale": "es-CO", "timezone": "America/Bogota", "country": "CO"});
    let (st, v) = d
        .call("PUT", "/v1/clients/cli-1", Some(client.clone()))
        .await;
    assert_eq!(st, 201, "{v}");
    let invoice = json!({"client_id": "cli-1", "number": "FV-1001", "currency": "COP",
                         "amount": "250000", "issued_at": "2026-02-01", "due_at": "2026-03-20",
                         "payment_url": "https://pagos.example.co/FV-1001"});
    let (st, v) = d
        .call("PUT", "/v1/invoices/inv-1", Some(invoice.clone()))
        .await;
    assert!(st == 201 || st == 200, "{v}");
    let fire: jiff::Timestamp = v["next_reminder_at"]
        .as_str()
        .or(v["next_reminder"]["fire_at"].as_str())
        .unwrap_or_else(|| panic!("no next reminder in {v}"))
        .parse()
        .unwrap();
    // Just before the reminder: the dispatcher polls every ~100 ms of real time.
    d.clock.set(fire - jiff::SignedDuration::from_millis(100));
    // A second invoice wakes the dispatcher, which then sees the first one due in 100 ms.
    let mut second = invoice;
    second["number"] = json!("FV-1002");
    let (st, v) = d.call("PUT", "/v1/invoices/inv-2", Some(second)).await;
    assert!(st == 201 || st == 200, "{v}");
    let ready = reqwest::get(d.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    // The disk fills up.
    let faults = d.running.as_ref().unwrap().store().faults();
    faults.fail_writes(true);
    let (st, v) = d
        .call("PUT", "/v1/clients/cli-2", Some(client.clone()))
        .await;
    assert_error(st, &v, 500, "storage");
    let resp = reqwest::get(d.url("/readyz")).await.unwrap();
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "store_unwritable", "{v}");
    let metrics = reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("plazo_store_writable 0"), "{metrics}");
    // The reminder falls due while writes fail: nothing can be claimed or sent.
    d.clock.set(fire + jiff::SignedDuration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(outbox_files(&d), 0);

    // Space is freed: the store recovers by itself, readiness follows, the reminder goes out.
    faults.fail_writes(false);
    let url = d.url("/readyz");
    assert!(
        eventually(|| {
            let url = url.clone();
            async move { reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) }
        })
        .await,
        "/readyz never came back"
    );
    let (st, v) = d.call("PUT", "/v1/clients/cli-2", Some(client)).await;
    assert_eq!(st, 201, "{v}");
    let metrics = reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("plazo_store_writable 1"), "{metrics}");
    assert!(
        eventually(|| async { outbox_files(&d) >= 1 }).await,
        "the due reminder was never sent after recovery"
    );
    d.stop().await;
}
