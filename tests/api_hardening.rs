//! Issue 9, the API in-process under a manual clock (a real store, the real router on a
//! listener bound to port 0): Mercado Pago's timestamp tolerance (item 10), strict grammars and
//! size limits (item 11), and property tests of hostile bodies and headers: never a panic,
//! either success or a 4xx with the JSON error body, and nothing stored on a rejection.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use jiff::Timestamp;
use plazo::clock::ManualClock;
use plazo::http::{AppParts, AppState, ProviderHooks, router};
use plazo::payments::{mercadopago, stripe};
use plazo::store::Store;
use serde_json::{Value, json};

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

impl Api {
    fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let text = common::inproc::one_step_policy();
        let (store, policy) = common::inproc::store_with_policy(dir.path(), &text);
        let clock = ManualClock::new(NOW.parse().unwrap());
        let state = AppState::new(AppParts {
            store: store.clone(),
            policy,
            clock: Arc::new(clock.clone()),
            wake: Arc::new(plazo::dispatch::Wake::default()),
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
            simulation: None,
        });
        let listener: SocketAddr = common::reqwest::block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let app = router(state, &plazo::config::HttpConfig::default());
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
        common::reqwest::block_on(async move {
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

    fn clock_now(&self) -> Timestamp {
        plazo::clock::Clock::now(&self.clock)
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

// ---------------------------------------------------------------------------------------------
// Item 11: strict grammars and size limits
// ---------------------------------------------------------------------------------------------

fn invoice_body(amount: &str, due: &str) -> String {
    json!({"client_id": "c-1", "number": "FV-1", "currency": "COP", "amount": amount, "due_at": due})
        .to_string()
}

#[test]
fn amounts_are_plain_decimals_and_bounded() {
    let api = Api::start();
    api.setup_invoice();
    let before = api.snapshot();
    for bad in [
        "1e5", "1_000", "+5", ".5", "1.", " 5", "5 ", "1,000", "0x10", "NaN",
    ] {
        let (s, b) = api.call(
            "PUT",
            "/v1/invoices/inv-1",
            Some(&invoice_body(bad, "2026-03-20")),
        );
        assert_eq!(s, 422, "{bad:?}: {b}");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains("plain decimal"), "{bad:?}: {msg}");
        let pay = json!({"amount": bad, "currency": "COP", "reference": "r"}).to_string();
        let (s, b) = api.call("POST", "/v1/invoices/inv-1/payments", Some(&pay));
        assert_eq!(s, 422, "{bad:?}: {b}");
    }
    let (s, b) = api.call(
        "PUT",
        "/v1/invoices/inv-1",
        Some(&invoice_body("1000000000000000", "2026-03-20")),
    );
    assert_eq!(s, 422);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("999999999999999.99"),
        "{b}"
    );
    assert_eq!(api.snapshot(), before, "nothing changed");
}

#[test]
fn dates_offsets_and_far_future_get_a_clear_message() {
    let api = Api::start();
    api.setup_invoice();
    let before = api.snapshot();
    let cases = [
        ("2026-03-20T12:00:00+24:00", "±23:59"),
        ("2026-03-20T12:00:00-25:59", "±23:59"),
        ("9999-12-31", "2999-12-31"),
        ("9999-12-31T00:00:00Z", "2999-12-31"),
        ("20260320", "neither a date"),
        ("2026-03-20T12:00Z", "neither a date"),
    ];
    for (due, says) in cases {
        let (s, b) = api.call(
            "PUT",
            "/v1/invoices/inv-1",
            Some(&invoice_body("1000", due)),
        );
        assert_eq!(s, 422, "{due}: {b}");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{due}: {msg}");
    }
    let pay = json!({"amount": "1", "currency": "COP", "reference": "r",
                     "paid_at": "2026-03-01T10:00:00+25:00"})
    .to_string();
    let (s, b) = api.call("POST", "/v1/invoices/inv-1/payments", Some(&pay));
    assert!(s == 400 || s == 422, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("±23:59"),
        "{b}"
    );
    let pause = json!({"reason": "dispute", "until": "99999-01-01T00:00:00Z"}).to_string();
    let (s, b) = api.call("POST", "/v1/invoices/inv-1/pause", Some(&pause));
    assert!(s == 400 || s == 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2999-12-31"),
        "{b}"
    );
    let promise = json!({"amount": "10", "date": "2026-03-10T10:00:00+99:00"}).to_string();
    let (s, b) = api.call("POST", "/v1/invoices/inv-1/promises", Some(&promise));
    assert_eq!(s, 422, "{b}");
    assert_eq!(api.snapshot(), before, "nothing changed");
}

/// The `due_before` filters of `GET /v1/tasks` (an instant) and `GET /v1/invoices` (a date or
/// an instant) take the same strict grammar as request bodies: offsets within ±23:59, dates up
/// to 2999-12-31, each refusal a 422 JSON error saying what is wrong.
#[test]
fn due_before_filters_take_the_strict_date_and_instant_grammar() {
    let api = Api::start();
    api.setup_invoice();
    let refused = [
        ("/v1/tasks", "2026-03-20T12:00:00%2B24:00", "±23:59"),
        ("/v1/tasks", "2026-03-20T12:00:00-25:59", "±23:59"),
        ("/v1/tasks", "9999-12-31T00:00:00Z", "2999-12-31"),
        ("/v1/tasks", "2026-03-20T12:00Z", "not an RFC 3339 instant"),
        ("/v1/tasks", "2026-03-20", "not an RFC 3339 instant"),
        ("/v1/invoices", "2026-03-20T12:00:00%2B24:00", "±23:59"),
        ("/v1/invoices", "9999-12-31", "2999-12-31"),
        ("/v1/invoices", "9999-12-31T00:00:00Z", "2999-12-31"),
        ("/v1/invoices", "20260320", "neither a date"),
    ];
    for (path, due, says) in refused {
        let (s, b) = api.call("GET", &format!("{path}?due_before={due}"), None);
        assert_eq!(s, 422, "{path} {due}: {b}");
        assert_eq!(b["error"]["code"], "invalid", "{path} {due}: {b}");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains("due_before"), "{path} {due}: {msg}");
        assert!(msg.contains(says), "{path} {due}: {msg}");
    }
    for (path, due) in [
        ("/v1/tasks", "2026-03-20T12:00:00-05:00"),
        ("/v1/tasks", "2026-03-20T12:00:00%2B23:59"),
        ("/v1/invoices", "2026-03-20"),
        ("/v1/invoices", "2999-12-31"),
        ("/v1/invoices", "2026-03-20T12:00:00Z"),
    ] {
        let (s, b) = api.call("GET", &format!("{path}?due_before={due}"), None);
        assert_eq!(s, 200, "{path} {due}: {b}");
    }
}

#[test]
fn contact_addresses_must_be_e164_phones_or_emails() {
    let api = Api::start();
    for bad in [
        "hello",
        "573001234567",
        "%2B57",
        "ana%40",
        "%2B57300123456789012",
    ] {
        let (s, b) = api.call("GET", &format!("/v1/contacts/{bad}"), None);
        assert_eq!(s, 422, "{bad}: {b}");
        assert_eq!(b["error"]["code"], "invalid");
        let (s, _) = api.call(
            "POST",
            &format!("/v1/contacts/{bad}/opt-out"),
            Some(r#"{"channel":"sms"}"#),
        );
        assert_eq!(s, 422, "{bad}");
    }
    let (s, _) = api.call("GET", "/v1/contacts/%2B573001234567", None);
    assert_eq!(s, 404, "valid but unknown");
    let (s, b) = api.call(
        "POST",
        "/v1/contacts/%2B573001234567/opt-out",
        Some(r#"{"channel":"sms","reason":"asked by phone"}"#),
    );
    assert_eq!(s, 200, "{b}");
    let (s, _) = api.call("GET", "/v1/contacts/ana%40example.co", None);
    assert_eq!(s, 404);
}

#[test]
fn every_string_has_a_size_limit() {
    let api = Api::start();
    api.setup_invoice();
    let before = api.snapshot();
    let long = |n: usize| "x".repeat(n);
    let mut inv: Value = serde_json::from_str(&invoice_body("1000", "2026-03-20")).unwrap();
    let cases: Vec<(&str, &str, Value)> = vec![
        ("PUT", "/v1/invoices/inv-1", {
            let mut b = inv.clone();
            b["number"] = long(65).into();
            b
        }),
        ("PUT", "/v1/invoices/inv-1", {
            let mut b = inv.clone();
            b["payment_url"] = format!("https://x.co/{}", long(2000)).into();
            b
        }),
        ("PUT", "/v1/invoices/inv-1", {
            let mut b = inv.clone();
            b["metadata"] = json!({ "k": long(501) });
            b
        }),
        ("PUT", "/v1/invoices/inv-1", {
            let mut b = inv.clone();
            b["metadata"] = json!({ long(65): "v" });
            b
        }),
        ("PUT", "/v1/invoices/inv-1", {
            let mut b = inv.clone();
            b["number"] = "FV\r\n1".into();
            b
        }),
        (
            "POST",
            "/v1/invoices/inv-1/payments",
            json!({"amount": "1", "currency": "COP", "reference": long(201)}),
        ),
        (
            "POST",
            "/v1/invoices/inv-1/pause",
            json!({"reason": long(501)}),
        ),
        (
            "POST",
            "/v1/invoices/inv-1/promises",
            json!({"amount": "10", "date": "2026-03-10", "note": long(2001)}),
        ),
        (
            "POST",
            "/v1/invoices/inv-1/plans",
            json!({"instalments": [{"amount": "1000", "date": "2026-03-10"}], "channel": long(33)}),
        ),
        (
            "POST",
            "/v1/contacts/%2B573001234567/opt-out",
            json!({"channel": "sms", "reason": long(501)}),
        ),
    ];
    for (method, path, body) in cases {
        let (s, b) = api.call(method, path, Some(&body.to_string()));
        assert_eq!(s, 422, "{path} {b}");
        assert!(is_json_error(&b), "{b}");
        assert!(
            b.to_string().len() < 2000,
            "the error does not echo the input: {b}"
        );
    }
    // Under the /v1 body limit (64 KiB; a larger body gets 413), so the field check answers.
    inv["currency"] = long(60_000).into();
    let (s, b) = api.call("PUT", "/v1/invoices/inv-1", Some(&inv.to_string()));
    assert_eq!(s, 422);
    assert!(b.to_string().len() < 2000, "{b}");
    assert_eq!(api.snapshot(), before, "nothing changed");
}

// ---------------------------------------------------------------------------------------------
// Property tests: hostile bodies and headers
// ---------------------------------------------------------------------------------------------

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// One API (and store) per property, so that concurrent properties do not see each
    /// other's writes.
    fn api(name: &'static str) -> &'static Api {
        static APIS: std::sync::Mutex<Vec<(&'static str, &'static Api)>> =
            std::sync::Mutex::new(Vec::new());
        let mut all = APIS.lock().unwrap();
        if let Some((_, a)) = all.iter().find(|(n, _)| *n == name) {
            return a;
        }
        let api: &'static Api = Box::leak(Box::new(Api::start()));
        api.setup_invoice();
        all.push((name, api));
        api
    }

    /// Strings an attacker would send: near-valid values, control characters, RTL marks,
    /// huge numbers, long runs.
    fn hostile() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("1e5".to_owned()),
            Just("79228162514264337593543950336".to_owned()),
            Just("999999999999999.99".to_owned()),
            Just("-0".to_owned()),
            Just("2026-03-20T12:00:00+24:00".to_owned()),
            Just("9999-12-31".to_owned()),
            Just("COP".to_owned()),
            Just("\u{202e}evil\r\n\0".to_owned()),
            "[0-9]{1,40}(\\.[0-9]{0,30})?",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}([+-][0-9]{2}:[0-9]{2}|Z))?",
            "\\PC{0,80}",
            "x{1000,3000}",
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            hostile().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::from)),
            Just(Value::Null),
            Just(json!([])),
            Just(json!({})),
            prop::collection::vec(hostile(), 0..5).prop_map(|v| json!(v)),
        ]
    }

    /// An object with some of `fields` (and perhaps an unknown one), each a hostile value.
    fn body(fields: &'static [&'static str]) -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::collection::vec((prop::sample::select(fields), value()), 0..8).prop_map(|kv| {
                let mut m = serde_json::Map::new();
                for (k, v) in kv {
                    m.insert(k.to_owned(), v);
                }
                Value::Object(m).to_string()
            }),
            1 => "\\PC{0,200}",
        ]
    }

    fn check(api: &Api, method: &str, path: &str, raw: &str) -> Result<(), TestCaseError> {
        let before = api.snapshot();
        let (s, b) = api.call(method, path, Some(raw));
        prop_assert!(s < 500, "{} {} -> {}: {}", method, path, s, b);
        if s >= 400 {
            prop_assert!(is_json_error(&b), "{}", b);
            prop_assert_eq!(api.snapshot(), before, "a rejected request changed nothing");
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn invoice_bodies(raw in body(&["client_id", "number", "currency", "amount", "issued_at", "due_at", "payment_url", "metadata", "extra"])) {
            check(api("invoice"), "PUT", "/v1/invoices/inv-2", &raw)?;
        }

        #[test]
        fn payment_bodies(raw in body(&["amount", "currency", "paid_at", "reference", "extra"])) {
            check(api("payment"), "POST", "/v1/invoices/inv-1/payments", &raw)?;
        }

        #[test]
        fn promise_and_plan_bodies(
            raw in body(&["amount", "date", "channel", "note", "extra"]),
            inst in prop::collection::vec((hostile(), hostile()), 0..4),
            note in hostile(),
        ) {
            let api = api("arrangement");
            check(api, "POST", "/v1/invoices/inv-1/promises", &raw)?;
            let plan = json!({
                "instalments": inst.iter().map(|(a, d)| json!({"amount": a, "date": d})).collect::<Vec<_>>(),
                "note": note,
            });
            check(api, "POST", "/v1/invoices/inv-1/plans", &plan.to_string())?;
        }

        #[test]
        fn pause_and_opt_out_bodies(
            raw in body(&["reason", "until", "channel", "extra"]),
            address in hostile(),
        ) {
            let api = api("pause");
            check(api, "POST", "/v1/invoices/inv-1/pause", &raw)?;
            api.call("POST", "/v1/invoices/inv-1/resume", None);
            let path: String = form_urlencoded::byte_serialize(address.as_bytes()).collect();
            if !path.is_empty() {
                check(api, "POST", &format!("/v1/contacts/{path}/opt-out"), &raw)?;
            }
        }

        /// Unsigned or wrongly signed provider webhooks: refused with JSON, nothing queued.
        #[test]
        fn provider_webhooks_with_hostile_headers(
            sig in hostile(),
            rid in "[ -~]{0,60}",
            raw in "\\PC{0,300}",
            query in "[ -~]{0,60}",
        ) {
            let api = api("webhook-headers");
            let queued = api.store.inbox_queue().unwrap().len();
            let q: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
            for (path, headers) in [
                ("/webhooks/stripe".to_owned(), vec![("stripe-signature", sig.as_str())]),
                (format!("/webhooks/mercadopago?data.id={q}&type=payment"),
                 vec![("x-signature", sig.as_str()), ("x-request-id", rid.as_str())]),
            ] {
                let headers: Vec<(&str, &str)> = headers
                    .into_iter()
                    .filter(|(_, v)| reqwest::header::HeaderValue::from_str(v).is_ok())
                    .collect();
                let (s, b) = api.raw("POST", &path, &headers, Some(&raw));
                prop_assert!((400..500).contains(&s), "{} -> {}: {}", path, s, b);
                prop_assert!(is_json_error(&b), "{}", b);
            }
            prop_assert_eq!(api.store.inbox_queue().unwrap().len(), queued);
        }

        /// Correctly signed Stripe bodies with hostile content: 200 (kept, perhaps as
        /// unreadable) or a 4xx with JSON; never a 5xx.
        #[test]
        fn signed_stripe_bodies_never_crash(
            event_type in prop::sample::select(vec!["invoice.paid", "payment_intent.succeeded", "charge.refunded", "checkout.session.completed", "x"]),
            amount in value(),
            currency in value(),
            id in value(),
            extra in value(),
        ) {
            let api = api("stripe-bodies");
            let body = json!({
                "id": id, "object": "event", "type": event_type, "created": 1_772_377_200,
                "data": { "object": { "id": "in_x", "amount_paid": amount, "amount_received": amount,
                    "amount_refunded": amount, "currency": currency, "payment_intent": extra,
                    "metadata": { "plazo_invoice_id": "inv-1" } } }
            })
            .to_string();
            let t = api.clock_now().as_second();
            let sig = stripe::sign_header(STRIPE_SECRET, t, body.as_bytes());
            let (s, b) = api.raw("POST", "/webhooks/stripe", &[("stripe-signature", &sig)], Some(&body));
            prop_assert!(s == 200 || (400..500).contains(&s), "{} {}", s, b);
            if s != 200 {
                prop_assert!(is_json_error(&b), "{}", b);
            }
        }
    }
}
