//! Property-based fuzzing of every HTTP input of the daemon, in-process on loopback with a
//! manual clock and a real sled store: every API body and path (merge patches, notes, escalations,
//! task claims and outcomes included), the query strings of the lists and reports, and every
//! provider webhook body and header, validly signed so that the parsers behind the signature
//! checks are reached too. Where a target names its unmutated bases, each is first checked to be
//! accepted, so the mutations start from bodies the endpoint takes.
//!
//! For each generated request it asserts:
//! - no 5xx: the daemon never fails on input;
//! - every 4xx answers the documented JSON, `{"error": {"code": "...", "message": "..."}}`;
//! - a rejected request changes nothing: the seeded client, invoices, contact, payment events
//!   and the entity named in the request's path read the same before and after.
//!
//! `PROPTEST_CASES` raises the number of cases per target (default 48).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use plazo::clock::ManualClock;
use plazo::daemon::Running;
use plazo::inbound::standard_webhooks::{WebhookSecret, sign};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use common::inproc::{InProcess, start_in_process};
use common::{step, test_policy};

const TOKEN: &str = "fuzz-api-token-0123456789";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STRIPE_SECRET: &str = "whsec_stripe_fuzz";
const MP_SECRET: &str = "mp-secret-fuzz";
const TWILIO_TOKEN: &str = "twilio-token-fuzz";
const WA_SECRET: &str = "wa-app-secret-fuzz";
const PUBLIC: &str = "https://cobros.example.co";
const NOW: &str = "2026-03-01T12:00:00Z";
const PHONE: &str = "+573001234567";

/// The daemon under test, with its runtime.
struct Target {
    rt: tokio::runtime::Runtime,
    running: Option<Running>,
    base: String,
    http: reqwest::Client,
    _clock: ManualClock,
    _dir: tempfile::TempDir,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = self.rt.block_on(r.shutdown());
        }
    }
}

/// One generated request.
#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    content_type: &'static str,
    /// GET paths that must read the same when the request is refused.
    watch: Vec<String>,
}

fn write_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    common::write_private(&p, text);
    p.display().to_string()
}

fn start() -> Target {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policy = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &[
            step("standard", "courtesy", "-3d", None, &["email"]),
            step("standard", "firm_overdue", "+10d", None, &["email"]),
        ],
    );
    let tables = format!(
        r#"
[payment_webhooks]
secret = {{ file = "{whsec}" }}

[stripe]
webhook_secret = {{ file = "{stripe}" }}

[mercadopago]
webhook_secret = {{ file = "{mp}" }}
access_token = {{ file = "{mp}" }}
base_url = "http://127.0.0.1:9"
timeout_secs = 1

[twilio_webhooks]
auth_token = {{ file = "{twilio}" }}

[whatsapp_webhooks]
app_secret = {{ file = "{wa}" }}
verify_token = {{ file = "{wa}" }}
"#,
        whsec = write_file(d, "whsec", WEBHOOK_SECRET),
        stripe = write_file(d, "stripe", STRIPE_SECRET),
        mp = write_file(d, "mp", MP_SECRET),
        twilio = write_file(d, "twilio", TWILIO_TOKEN),
        wa = write_file(d, "wa", WA_SECRET),
    );
    // A partner, for the hand-offs.
    let policy = format!(
        "{policy}\n[partners.cobranzas_norte]\nname = \"Cobranzas del Norte S.A.S.\"\n\
         email = \"asignaciones@cobranzas-norte.example.co\"\n"
    );
    let (running, clock) = rt.block_on(start_in_process(
        d,
        InProcess {
            policy: &policy,
            token: TOKEN,
            top: &format!("public_url = \"{PUBLIC}\""),
            tables: &tables,
            now: NOW,
            channels: "",
        },
    ));
    let t = Target {
        base: format!("http://{}", running.addr),
        running: Some(running),
        // A new connection per request: the daemon closes a keep-alive connection left idle
        // past its header timeout, and a request sent on it at that moment meets a broken pipe
        // (a client-side race, not a refusal).
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        _clock: clock,
        rt,
        _dir: dir,
    };
    t.seed();
    t
}

fn client_body() -> Value {
    json!({"name": "María Pérez", "email": "maria@cliente.example.co", "phone": PHONE,
           "locale": "es-CO", "timezone": "America/Bogota", "country": "CO",
           "preferred_channels": ["email"], "tags": ["retail"]})
}

fn invoice_body() -> Value {
    json!({"client_id": "c1", "number": "FV-1", "currency": "COP", "amount": "1250000",
           "issued_at": "2026-02-01", "due_at": "2026-03-20",
           "payment_url": "https://pagos.example.co/FV-1"})
}

impl Target {
    fn seed(&self) {
        let (st, v) = self.api("PUT", "/v1/clients/c1", Some(client_body()));
        assert_eq!(st, 201, "{v}");
        for (id, number) in [("i1", "FV-1"), ("i2", "FV-2")] {
            let mut body = invoice_body();
            body["number"] = json!(number);
            let (st, v) = self.api("PUT", &format!("/v1/invoices/{id}"), Some(body));
            assert!(st == 201 || st == 200, "{v}");
        }
        let (st, v) = self.api(
            "POST",
            "/v1/invoices/i2/promises",
            Some(json!({"amount": "1000", "date": "2026-03-10"})),
        );
        assert_eq!(st, 201, "{v}");
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = Req {
            method: leak_method(method),
            path: path.to_owned(),
            headers: vec![("authorization".into(), format!("Bearer {TOKEN}"))],
            body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            content_type: "application/json",
            watch: vec![],
        };
        let (st, text) = self.send(&req);
        (
            st,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn send(&self, req: &Req) -> (u16, String) {
        self.rt.block_on(async {
            let m = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
            let mut r = self
                .http
                .request(m, format!("{}{}", self.base, req.path))
                .header("content-type", req.content_type);
            for (k, v) in &req.headers {
                r = r.header(k.as_str(), v.as_str());
            }
            if !req.body.is_empty() {
                r = r.body(req.body.clone());
            }
            let resp = r.send().await.expect("the daemon answers every request");
            let st = resp.status().as_u16();
            (st, resp.text().await.unwrap_or_default())
        })
    }

    /// What a refused request must leave as it was.
    fn snapshot(&self, extra: &[String]) -> Vec<(String, u16, String)> {
        let mut paths: Vec<String> = [
            "/v1/clients/c1",
            "/v1/invoices/i1",
            "/v1/invoices/i2",
            "/v1/clients/c1/timeline",
            "/v1/payment-events",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        paths.push(format!("/v1/contacts/{}", PHONE.replace('+', "%2B")));
        paths.extend(extra.iter().cloned());
        paths
            .into_iter()
            .map(|p| {
                let (st, v) = self.api("GET", &p, None);
                (p, st, v.to_string())
            })
            .collect()
    }

    /// Waits until background work (the payments inbox) has settled.
    fn settled(&self, extra: &[String]) -> Vec<(String, u16, String)> {
        let mut last = self.snapshot(extra);
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(10));
            let next = self.snapshot(extra);
            if next == last {
                return next;
            }
            last = next;
        }
        last
    }

    /// Checks one request and returns its status.
    fn check(&self, req: &Req) -> Result<u16, TestCaseError> {
        let before = self.settled(&req.watch);
        let (st, text) = self.send(req);
        prop_assert!(
            st < 500,
            "{} {} answered {st}: {text}\nbody: {:?}",
            req.method,
            req.path,
            String::from_utf8_lossy(&req.body)
        );
        // The unsubscribe page is for people: it answers HTML by design.
        let html_page =
            req.path.starts_with("/u/") && text.trim_start().starts_with("<!doctype html>");
        if st >= 400 && !html_page {
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                TestCaseError::fail(format!(
                    "{} {} answered {st} with a body that is not JSON ({e}): {text:?}",
                    req.method, req.path
                ))
            })?;
            let code = v["error"]["code"].as_str().unwrap_or_default();
            let message = v["error"]["message"].as_str().unwrap_or_default();
            prop_assert!(
                !code.is_empty() && !message.is_empty(),
                "{} {} answered {st} without the error JSON: {text}",
                req.method,
                req.path
            );
        }
        if st >= 400 {
            let after = self.snapshot(&req.watch);
            prop_assert_eq!(
                before,
                after,
                "refused {} {} ({}) changed state; body {:?}",
                req.method,
                req.path,
                st,
                String::from_utf8_lossy(&req.body)
            );
        }
        Ok(st)
    }
}

fn leak_method(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        _ => "OPTIONS",
    }
}

/// Strings an attacker or a broken ERP would send.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            " ",
            "Ana\nB",
            "Ana\r\nBcc: victim@example.com",
            "nul\0byte",
            "\u{202E}fdp.exe",
            "\u{200F}\u{061C}rtl",
            "1e5",
            "1_000",
            "+5",
            ".5",
            "1.",
            " 5 ",
            "-1",
            "0",
            "NaN",
            "Infinity",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "79228162514264337593543950336",
            "0.0000000000000000000000000001",
            "9999999999999999999999.99",
            "2026-02-30",
            "9999-12-31",
            "0001-01-01",
            "2026-03-01T12:00:00+25:00",
            "2026-03-01T12:00:00+23:59",
            "2026-03-01T12:00:00-24:00",
            "99999-01-01T00:00:00Z",
            "Mars/Olympus",
            "{{ client.name }}",
            "{% for x in range(99999999) %}x{% endfor %}",
            "<script>alert(1)</script>",
            "x@y",
            "+0",
            "+57 300 123 4567",
            "not-a-phone",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,40}",
        any::<String>(),
        (1usize..12_000).prop_map(|n| "x".repeat(n)),
        (1usize..300).prop_map(|n| "💸\r\n".repeat(n)),
    ]
}

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => hostile_string().prop_map(Value::String),
        1 => any::<i64>().prop_map(|n| json!(n)),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => prop::collection::vec(hostile_string().prop_map(Value::String), 0..300).prop_map(Value::Array),
        1 => Just(json!({"nested": {"deeper": [1, 2, {"x": "y"}]}})),
    ]
}

/// A valid body with one hostile change: a field replaced, removed, or an unknown one added;
/// or a body that is not what the endpoint expects at all.
fn mutated(base: Value) -> impl Strategy<Value = Vec<u8>> {
    let leaves = leaf_pointers(&base);
    let n = leaves.len().max(1);
    prop_oneof![
        6 => (0..n, hostile_value()).prop_map({
            let base = base.clone();
            let leaves = leaves.clone();
            move |(i, v)| {
                let mut b = base.clone();
                if let Some(p) = leaves.get(i) {
                    if let Some(slot) = b.pointer_mut(p) {
                        *slot = v;
                    }
                }
                b.to_string().into_bytes()
            }
        }),
        2 => (0..n).prop_map({
            let base = base.clone();
            let leaves = leaves.clone();
            move |i| {
                let mut b = base.clone();
                if let Some(p) = leaves.get(i) {
                    remove_pointer(&mut b, p);
                }
                b.to_string().into_bytes()
            }
        }),
        1 => hostile_string().prop_map({
            let base = base.clone();
            move |k| {
                let mut b = base.clone();
                if let Some(o) = b.as_object_mut() {
                    o.insert(k, json!("unexpected"));
                }
                b.to_string().into_bytes()
            }
        }),
        1 => hostile_value().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => Just(b"{\"truncated\": ".to_vec()),
    ]
}

fn leaf_pointers(v: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    walk(x, format!("{at}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{at}/{i}"), out);
                }
            }
            _ => out.push(at),
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

fn remove_pointer(v: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.remove(key);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = key.parse::<usize>() {
                if i < a.len() {
                    a.remove(i);
                }
            }
        }
        _ => {}
    }
}

/// Path segments: the seeded ids, hostile ids, and raw percent-encodings (some invalid).
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["c1", "i1", "i2", "1", "2", "0", "-1", "99999999999999999999"]).prop_map(str::to_owned),
        2 => prop::sample::select(vec![
            "%ZZ", "%", "%00", "a%0Ab", "a%0D%0Ab", "%C3%28", "%FF", "..", "%2e%2e", "%2F", "a%2Fb",
            "%E2%80%AE", "%2B573001234567", "maria%40cliente.example.co", "x%20y",
        ]).prop_map(str::to_owned),
        2 => hostile_string().prop_map(|s| utf8_percent_encode(&s)),
        1 => (1usize..2_000).prop_map(|n| "a".repeat(n)),
    ]
}

fn utf8_percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn bearer() -> Vec<(String, String)> {
    vec![("authorization".into(), format!("Bearer {TOKEN}"))]
}

fn api_req(method: &'static str, path: String, body: Vec<u8>, watch: Vec<String>) -> Req {
    Req {
        method,
        path,
        headers: bearer(),
        body,
        content_type: "application/json",
        watch,
    }
}

fn run(name: &str, strategy: impl Strategy<Value = Req>) {
    run_expecting(name, &[], strategy, |_| true);
}

/// As `run`, after checking that each of `valid` (the unmutated bases) is accepted, so that
/// the mutations start from a body the endpoint takes; and each status must satisfy `expect`.
fn run_expecting(
    name: &str,
    valid: &[Req],
    strategy: impl Strategy<Value = Req>,
    expect: impl Fn(u16) -> bool,
) {
    let target = start();
    for req in valid {
        let (st, text) = target.send(req);
        assert!(
            (200..300).contains(&st),
            "{name}: the valid {} {} answered {st}: {text}",
            req.method,
            req.path
        );
    }
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, |req| {
        let st = target.check(&req)?;
        prop_assert!(
            expect(st),
            "{} {} answered an unexpected {st}",
            req.method,
            req.path
        );
        Ok(())
    }) {
        panic!("{name}: {e}");
    }
}

#[test]
fn client_bodies_and_ids() {
    run(
        "PUT /v1/clients",
        (segment(), mutated(client_body())).prop_map(|(id, body)| {
            let path = format!("/v1/clients/{id}");
            api_req("PUT", path.clone(), body, vec![path])
        }),
    );
}

#[test]
fn invoice_bodies_and_ids() {
    run(
        "PUT /v1/invoices",
        (segment(), mutated(invoice_body())).prop_map(|(id, body)| {
            let path = format!("/v1/invoices/{id}");
            api_req("PUT", path.clone(), body, vec![path])
        }),
    );
}

#[test]
fn payment_pause_and_resume_bodies() {
    let payment = json!({"amount": "1000", "currency": "COP", "reference": "PSE-1"});
    let pause = json!({"reason": "disputed", "until": "2026-03-05T14:00:00Z"});
    run(
        "payments, pause, resume",
        (
            segment(),
            prop::sample::select(vec!["payments", "pause", "resume"]),
            mutated(payment),
            mutated(pause),
        )
            .prop_map(|(id, what, pay, pause)| {
                let path = format!("/v1/invoices/{id}/{what}");
                let body = if what == "payments" { pay } else { pause };
                api_req("POST", path, body, vec![format!("/v1/invoices/{id}")])
            }),
    );
}

#[test]
fn promise_and_plan_bodies() {
    let promise = json!({"amount": "1000", "date": "2026-03-25", "channel": "phone", "note": "ok"});
    let plan = json!({"channel": "whatsapp", "note": "ok", "instalments": [
        {"date": "2026-03-25", "amount": "625000"}, {"date": "2026-04-25", "amount": "625000"}]});
    let cancel = json!({"reason": "agreed otherwise"});
    run(
        "promises and plans",
        (
            segment(),
            segment(),
            0..4usize,
            mutated(promise),
            mutated(plan),
            mutated(cancel),
        )
            .prop_map(|(id, n, which, promise, plan, cancel)| {
                let watch = vec![format!("/v1/invoices/{id}")];
                match which {
                    0 => api_req(
                        "POST",
                        format!("/v1/invoices/{id}/promises"),
                        promise,
                        watch,
                    ),
                    1 => api_req("POST", format!("/v1/invoices/{id}/plans"), plan, watch),
                    2 => api_req(
                        "DELETE",
                        format!("/v1/invoices/{id}/promises/{n}"),
                        cancel,
                        watch,
                    ),
                    _ => api_req(
                        "DELETE",
                        format!("/v1/invoices/{id}/plans/{n}"),
                        cancel,
                        watch,
                    ),
                }
            }),
    );
}

#[test]
fn contact_addresses_and_bodies() {
    let opt = json!({"channel": "sms", "reason": "asked by phone"});
    run(
        "contacts",
        (segment(), 0..3usize, mutated(opt)).prop_map(|(address, which, body)| {
            let watch = vec![format!("/v1/contacts/{address}")];
            match which {
                0 => api_req("GET", format!("/v1/contacts/{address}"), vec![], vec![]),
                1 => api_req(
                    "POST",
                    format!("/v1/contacts/{address}/opt-out"),
                    body,
                    watch,
                ),
                _ => api_req(
                    "POST",
                    format!("/v1/contacts/{address}/opt-in"),
                    body,
                    watch,
                ),
            }
        }),
    );
}

#[test]
fn unknown_routes_methods_and_auth() {
    run(
        "routes",
        (
            prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]),
            prop::collection::vec(segment(), 0..4),
            prop::sample::select(vec!["", "/v1", "/webhooks", "/u"]),
            prop::sample::select(vec![
                None,
                Some("Bearer wrong"),
                Some("Basic Zm9vOmJhcg=="),
                Some("Bearer"),
            ]),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(method, segs, prefix, auth, body)| {
                let mut path = prefix.to_owned();
                for s in segs {
                    path.push('/');
                    path.push_str(&s);
                }
                if path.is_empty() {
                    path.push('/');
                }
                let headers = match auth {
                    Some(a) => vec![("authorization".to_owned(), a.to_owned())],
                    None => bearer(),
                };
                Req {
                    method,
                    path,
                    headers,
                    body,
                    content_type: "application/json",
                    watch: vec![],
                }
            }),
    );
}

fn standard_webhook() -> Value {
    json!({"type": "payment.succeeded", "timestamp": "2026-03-01T12:00:00Z", "data": {
        "invoice_id": "i1", "amount": "1000", "currency": "COP", "reference": "SW-1"}})
}

fn stripe_event() -> Value {
    json!({"id": "evt_1", "object": "event", "type": "invoice.paid", "created": 1772366400,
        "data": {"object": {"id": "in_1", "object": "invoice", "amount_paid": 100000,
            "currency": "cop", "payment_intent": "pi_1", "metadata": {"plazo_invoice_id": "i1"}}}})
}

fn whatsapp_event() -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
        "contacts": [{"wa_id": "573001234567", "profile": {"name": "María"}}],
        "messages": [{"from": "573001234567", "id": "wamid.1", "timestamp": "1772366400",
            "type": "text", "text": {"body": "BAJA"}}],
        "statuses": [{"id": "wamid.2", "status": "failed", "timestamp": "1772366400",
            "recipient_id": "573001234567", "errors": [{"code": 131026, "title": "x"}]}]}}]}]})
}

#[test]
fn signed_payment_webhooks() {
    let now = NOW.parse::<jiff::Timestamp>().unwrap().as_second();
    let secret = WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
    run(
        "payment webhooks",
        (
            0..3usize,
            mutated(standard_webhook()),
            mutated(stripe_event()),
            segment(),
            hostile_string(),
            prop::option::of(hostile_string()),
        )
            .prop_map(move |(which, sw, stripe, data_id, request_id, hostile_header)| {
                let watch = vec![];
                match which {
                    0 => {
                        let msg_id = format!("msg_{}", sw.len());
                        let sig = sign(&secret, &msg_id, now, &sw);
                        let mut headers = vec![
                            ("webhook-id".to_owned(), msg_id),
                            ("webhook-timestamp".to_owned(), now.to_string()),
                            ("webhook-signature".to_owned(), sig),
                        ];
                        if let Some(h) = hostile_header.filter(|h| h.is_ascii() && !h.contains(['\r', '\n', '\0'])) {
                            headers[1].1 = h;
                        }
                        Req { method: "POST", path: "/webhooks/payments".into(), headers, body: sw, content_type: "application/json", watch }
                    }
                    1 => {
                        let sig = plazo::payments::stripe::sign_header(STRIPE_SECRET, now, &stripe);
                        Req { method: "POST", path: "/webhooks/stripe".into(), headers: vec![("stripe-signature".into(), sig)], body: stripe, content_type: "application/json", watch }
                    }
                    _ => {
                        let data_id = if data_id.is_ascii() { data_id } else { "123".to_owned() };
                        let request_id: String = request_id.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
                        let ts = (now * 1000).to_string();
                        let v1 = plazo::payments::mercadopago::sign(MP_SECRET, Some(&data_id.to_lowercase()), Some(&request_id), &ts);
                        let body = json!({"action": "payment.updated", "type": "payment", "data": {"id": data_id}}).to_string().into_bytes();
                        Req {
                            method: "POST",
                            path: format!("/webhooks/mercadopago?data.id={data_id}&type=payment"),
                            headers: vec![("x-signature".into(), format!("ts={ts},v1={v1}")), ("x-request-id".into(), request_id)],
                            body,
                            content_type: "application/json",
                            watch,
                        }
                    }
                }
            }),
    );
}

#[test]
fn signed_twilio_and_whatsapp_callbacks() {
    type HmacSha256 = Hmac<sha2::Sha256>;
    run(
        "twilio and whatsapp callbacks",
        (
            any::<bool>(),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "MessageSid",
                        "MessageStatus",
                        "From",
                        "To",
                        "Body",
                        "ErrorCode",
                        "AccountSid",
                        "SmsStatus",
                    ]),
                    hostile_string(),
                ),
                0..8,
            ),
            mutated(whatsapp_event()),
        )
            .prop_map(|(twilio, params, wa)| {
                if twilio {
                    let inbound = params.len() % 2 == 0;
                    let path = if inbound {
                        "/webhooks/twilio/inbound"
                    } else {
                        "/webhooks/twilio/status"
                    };
                    let params: Vec<(String, String)> =
                        params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                    let sig = plazo::inbound::twilio::expected_signature(
                        TWILIO_TOKEN,
                        &format!("{PUBLIC}{path}"),
                        &params,
                    );
                    let body = form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(params.iter())
                        .finish();
                    Req {
                        method: "POST",
                        path: path.into(),
                        headers: vec![("x-twilio-signature".into(), sig)],
                        body: body.into_bytes(),
                        content_type: "application/x-www-form-urlencoded",
                        watch: vec![],
                    }
                } else {
                    let mut mac =
                        <HmacSha256 as KeyInit>::new_from_slice(WA_SECRET.as_bytes()).unwrap();
                    mac.update(&wa);
                    let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    Req {
                        method: "POST",
                        path: "/webhooks/whatsapp".into(),
                        headers: vec![("x-hub-signature-256".into(), sig)],
                        body: wa,
                        content_type: "application/json",
                        watch: vec![],
                    }
                }
            }),
    );
}

/// A client body with every optional field, the newer ones included.
fn client_body_full() -> Value {
    let mut b = client_body();
    b["whatsapp"] = json!(PHONE);
    b["subdivision"] = json!("CO-DC");
    b["blocked_times"] = json!([{"days": "mon-fri", "from": "12:00", "to": "14:00"},
                                {"days": "sat", "from": "09:00", "to": "10:00"}]);
    b
}

fn valid_req(method: &'static str, path: &str, body: &Value) -> Req {
    api_req(
        method,
        path.to_owned(),
        body.to_string().into_bytes(),
        vec![],
    )
}

#[test]
fn client_bodies_with_whatsapp_subdivision_and_blocked_times() {
    run_expecting(
        "PUT /v1/clients (all fields)",
        &[valid_req("PUT", "/v1/clients/c1", &client_body_full())],
        mutated(client_body_full()).prop_map(|body| {
            let path = "/v1/clients/c1".to_owned();
            api_req("PUT", path.clone(), body, vec![path])
        }),
        |_| true,
    );
}

#[test]
fn merge_patches_of_clients_and_invoices() {
    let client_patch = json!({"tags": ["retail", "vip"], "whatsapp": null, "email": "otra@cliente.example.co",
        "country": "CO", "subdivision": "CO-ANT",
        "blocked_times": [{"days": "mon,wed", "from": "12:00", "to": "14:00"}]});
    let invoice_patch = json!({"due_at": "2026-03-25", "amount": "1300000", "payment_url": null});
    let valid = [
        valid_req("PATCH", "/v1/clients/c1", &client_patch),
        valid_req("PATCH", "/v1/invoices/i1", &invoice_patch),
    ];
    run_expecting(
        "PATCH clients and invoices",
        &valid,
        (
            any::<bool>(),
            prop::sample::select(vec!["c1", "i1", "i2", "nope"]),
            segment(),
            mutated(client_patch),
            mutated(invoice_patch),
            prop::sample::select(vec![
                "application/merge-patch+json",
                "application/json",
                "text/plain",
            ]),
        )
            .prop_map(|(client, known, hostile, cp, ip, ct)| {
                let id = if hostile.len() % 3 == 0 {
                    hostile
                } else {
                    known.to_owned()
                };
                let (path, body) = if client {
                    (format!("/v1/clients/{id}"), cp)
                } else {
                    (format!("/v1/invoices/{id}"), ip)
                };
                Req {
                    content_type: ct,
                    ..api_req("PATCH", path.clone(), body, vec![path])
                }
            }),
        |_| true,
    );
}

#[test]
fn note_bodies() {
    let note = json!({"author": "ana@plazo.example.co", "text": "Llamó, paga el viernes"});
    let valid = [
        valid_req("POST", "/v1/clients/c1/notes", &note),
        valid_req("POST", "/v1/invoices/i1/notes", &note),
    ];
    run_expecting(
        "notes",
        &valid,
        (any::<bool>(), segment(), mutated(note)).prop_map(|(client, id, body)| {
            let (path, watch) = if client {
                (
                    format!("/v1/clients/{id}/notes"),
                    format!("/v1/clients/{id}"),
                )
            } else {
                (
                    format!("/v1/invoices/{id}/notes"),
                    format!("/v1/invoices/{id}"),
                )
            };
            api_req("POST", path, body, vec![watch])
        }),
        |_| true,
    );
}

#[test]
fn escalation_bodies() {
    let hand_off = json!({"partner": "cobranzas_norte", "reason": "no answer after 60 days"});
    let other = json!({"reason": "no answer after 60 days"});
    // i1 goes through the moves once, so that the fuzzing starts from bodies each one takes.
    let valid: Vec<Req> = ["hand-off", "recall", "write-off", "recall"]
        .iter()
        .map(|what| {
            let body = if *what == "hand-off" {
                &hand_off
            } else {
                &other
            };
            valid_req("POST", &format!("/v1/invoices/i1/{what}"), body)
        })
        .collect();
    run_expecting(
        "hand-off, write-off, recall, void",
        &valid,
        (
            segment(),
            prop::sample::select(vec!["hand-off", "write-off", "recall", "void"]),
            prop_oneof![4 => mutated(hand_off), 1 => Just(Vec::new())],
            mutated(other),
        )
            .prop_map(|(id, what, hand_off, other)| {
                let path = format!("/v1/invoices/{id}/{what}");
                let body = if what == "hand-off" { hand_off } else { other };
                api_req("POST", path, body, vec![format!("/v1/invoices/{id}")])
            }),
        |_| true,
    );
}

/// The fuzz daemon's policy has no call steps, so it has no tasks: every claim and outcome
/// names a task that does not exist and must be refused with a JSON 4xx.
#[test]
fn task_claims_and_outcomes_of_unknown_tasks() {
    let claim = json!({"agent": "ana"});
    let outcome = json!({"result": "promise", "note": "ok", "agent": "ana",
        "promise": {"amount": "1000", "date": "2026-03-25"}});
    run_expecting(
        "task claim and outcome",
        &[],
        (segment(), any::<bool>(), mutated(claim), mutated(outcome)).prop_map(
            |(id, is_claim, claim, outcome)| {
                let watch = vec!["/v1/tasks".to_owned()];
                if is_claim {
                    api_req("POST", format!("/v1/tasks/{id}/claim"), claim, watch)
                } else {
                    api_req("POST", format!("/v1/tasks/{id}/outcome"), outcome, watch)
                }
            },
        ),
        |st| (400..500).contains(&st),
    );
}

#[test]
fn list_and_report_query_strings() {
    let endpoints: Vec<(&'static str, Vec<&'static str>)> = vec![
        (
            "/v1/invoices",
            vec![
                "status",
                "client_id",
                "segment",
                "currency",
                "overdue_min_days",
                "due_before",
                "limit",
                "cursor",
            ],
        ),
        ("/v1/clients", vec!["segment", "tag", "limit", "cursor"]),
        (
            "/v1/reminders",
            vec!["from", "to", "channel", "limit", "cursor"],
        ),
        (
            "/v1/tasks",
            vec![
                "state",
                "due_before",
                "segment",
                "agent",
                "kind",
                "limit",
                "cursor",
            ],
        ),
        ("/v1/events", vec!["state", "limit"]),
        (
            "/v1/reports/kpis",
            vec!["as_of", "currency", "segment", "from", "to"],
        ),
    ];
    let n = endpoints.len();
    run(
        "list query strings",
        (
            0..n,
            prop::collection::vec((0..16usize, hostile_string(), any::<bool>()), 1..4),
            any::<bool>(),
        )
            .prop_map(move |(e, params, raw)| {
                let (path, names) = &endpoints[e];
                let query: Vec<String> = params
                    .into_iter()
                    .map(|(i, v, raw_value)| {
                        let name = names[i % names.len()];
                        // Sometimes a raw, possibly invalid, percent-encoding instead.
                        let v = if raw && raw_value {
                            ["%ZZ", "%", "%00", "%C3%28", "%FF", "a&b=c", "x+y"][i % 7].to_owned()
                        } else {
                            utf8_percent_encode(&v)
                        };
                        format!("{name}={v}")
                    })
                    .collect();
                api_req("GET", format!("{path}?{}", query.join("&")), vec![], vec![])
            }),
    );
}
