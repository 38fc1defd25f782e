//! Issue 9, the API in-process under a manual clock (a real store, the real router on a
//! listener bound to port 0): Mercado Pago's timestamp tolerance (item 10), strict grammars and
//! size limits (item 11), and property tests of hostile bodies and headers: never a panic,
//! either success or a 4xx with the JSON error body, and nothing stored on a rejection.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use jiff::Timestamp;
use plazo::clock::ManualClock;
use plazo::http::{AppState, ProviderHooks, router};
use plazo::payments::{mercadopago, stripe};
use plazo::policy::parse_policy;
use plazo::service::PolicyHandle;
use plazo::store::{Store, StoreOptions};
use serde_json::{Value, json};
use tokio::sync::Notify;

const TOKEN: &str = "test-token-0123456789";
const MP_SECRET: &str = "mp-secret-signature";
const STRIPE_SECRET: &str = "whsec_test_secret";
const NOW: &str = "2026-03-01T15:00:00Z";

struct Api {
    _dir: tempfile::TempDir,
    base: String,
    clock: ManualClock,
    store: Store,
    http: reqwest::Client,
}

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

impl Api {
    fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let text = common::test_policy(
            "America/Bogota",
            "es",
            ("08:00", "19:00"),
            &["standard"],
            &[common::step(
                "standard",
                "due_today",
                "0d",
                None,
                &["email"],
            )],
        );
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, &text).unwrap();
        let policy = PolicyHandle::new(parse_policy(&text, &path).unwrap());
        let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let clock = ManualClock::new(NOW.parse().unwrap());
        let state = AppState {
            store: store.clone(),
            policy,
            clock: Arc::new(clock.clone()),
            wake: Arc::new(Notify::new()),
            api_token: TOKEN.into(),
            payment_secret: None,
            webhook_tolerance: Duration::from_secs(300),
            ready: Arc::new(AtomicBool::new(true)),
            providers: Arc::new(ProviderHooks {
                stripe_secret: Some(STRIPE_SECRET.into()),
                stripe_tolerance: Duration::from_secs(300),
                stripe_metadata_key: "plazo_invoice_id".into(),
                mercadopago_secret: Some(MP_SECRET.into()),
                ..ProviderHooks::default()
            }),
        };
        let listener: SocketAddr = rt().block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let app = router(state);
            tokio::spawn(async move { axum::serve(l, app).await });
            addr
        });
        Api {
            _dir: dir,
            base: format!("http://{listener}"),
            clock,
            store,
            http: reqwest::Client::new(),
        }
    }

    /// `method path` with the bearer token and a raw body; returns status and JSON (or Null).
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        self.raw(
            method,
            path,
            &[("authorization", &format!("Bearer {TOKEN}"))],
            body,
        )
    }

    fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b.to_owned());
        }
        rt().block_on(async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    fn setup_invoice(&self) {
        let (s, b) = self.call(
            "PUT",
            "/v1/clients/c-1",
            Some(r#"{"name":"Ana","email":"ana@example.co"}"#),
        );
        assert!(s == 200 || s == 201, "{s} {b}");
        let (s, b) = self.call(
            "PUT",
            "/v1/invoices/inv-1",
            Some(
                r#"{"client_id":"c-1","number":"FV-1","currency":"COP","amount":"1000","due_at":"2026-03-20"}"#,
            ),
        );
        assert!(s == 200 || s == 201, "{s} {b}");
    }

    fn mp_notify(&self, ts: &str, request_id: &str) -> (u16, Value) {
        let sig = mercadopago::sign(MP_SECRET, Some("123"), Some(request_id), ts);
        let body = json!({"type": "payment", "action": "payment.updated", "data": {"id": "123"}})
            .to_string();
        self.raw(
            "POST",
            "/webhooks/mercadopago?data.id=123&type=payment",
            &[("x-signature", &sig), ("x-request-id", request_id)],
            Some(&body),
        )
    }

    /// Everything the store holds about invoices, payments and the inbox, to compare before
    /// and after a rejected request.
    fn snapshot(&self) -> String {
        let inv = self
            .store
            .invoice(&plazo::domain::InvoiceId::new("inv-1").unwrap())
            .unwrap();
        let queue = self.store.inbox_queue().unwrap();
        format!("{inv:?}\n{queue:?}")
    }
}

fn is_json_error(body: &Value) -> bool {
    body["error"]["code"].is_string() && body["error"]["message"].is_string()
}

// ---------------------------------------------------------------------------------------------
// Item 10: Mercado Pago timestamp tolerance
// ---------------------------------------------------------------------------------------------

#[test]
fn mercadopago_refuses_a_stale_or_future_notification_and_accepts_a_fresh_one() {
    let api = Api::start();
    let now: Timestamp = NOW.parse().unwrap();
    // Ten minutes old (milliseconds, as the docs show): refused, nothing queued.
    let stale = (now.as_millisecond() - 600_000).to_string();
    let (s, b) = api.mp_notify(&stale, "req-stale");
    assert_eq!(s, 401, "{b}");
    assert_eq!(b["error"]["code"], "bad_signature");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("600 s behind") && msg.contains("300 s"),
        "{msg}"
    );
    // Ten minutes ahead (seconds): refused too.
    let future = (now.as_second() + 600).to_string();
    let (s, _) = api.mp_notify(&future, "req-future");
    assert_eq!(s, 401);
    assert!(api.store.inbox_queue().unwrap().is_empty());
    // One minute old: accepted and queued.
    let fresh = (now.as_millisecond() - 60_000).to_string();
    let (s, b) = api.mp_notify(&fresh, "req-fresh");
    assert_eq!(s, 200, "{b}");
    assert_eq!(api.store.inbox_queue().unwrap().len(), 1);
    // The same signature replayed later, once past the tolerance, is refused.
    api.clock.set(now + jiff::SignedDuration::from_mins(6));
    let (s, _) = api.mp_notify(&fresh, "req-fresh");
    assert_eq!(s, 401);
}
