//! The HTTP API of the daemon, run in-process (`plazo::daemon::start`) on a free port with a
//! `ManualClock`, a temporary data dir and secrets read from files (no process-global env).

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use common::inproc::{InProcess, start_in_process};
use common::write_private;

use common::{step, test_policy};

use jiff::Timestamp;
use plazo::clock::ManualClock;
use plazo::daemon::Running;
use plazo::inbound::standard_webhooks::{WebhookSecret, sign};
use serde_json::{Value, json};

const TOKEN: &str = "api-test-token-5f2a9c";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: &str = "2026-03-01T12:00:00Z";

fn policy() -> String {
    test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &[
            step("standard", "courtesy", "-3d", None, &["email"]),
            step("standard", "due_today", "0d", None, &["email"]),
            step("standard", "firm_overdue", "+10d", None, &["email"]),
        ],
    )
}

struct Api {
    running: Option<Running>,
    base: String,
    clock: ManualClock,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_private(&d.join("whsec"), WEBHOOK_SECRET);
    let tables = format!(
        "[payment_webhooks]\nsecret = {{ file = \"{}\" }}",
        d.join("whsec").display()
    );
    let (running, clock) = start_in_process(
        d,
        InProcess {
            policy: &policy(),
            token: TOKEN,
            top: "",
            tables: &tables,
            now: NOW,
            channels: "",
        },
    )
    .await;
    Api {
        base: format!("http://{}", running.addr),
        running: Some(running),
        clock,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Api {
    async fn raw(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        common::inproc::request(&self.http, &self.base, method, path, auth, body).await
    }
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        self.raw(
            method,
            path,
            Some(&format!("Bearer {TOKEN}")),
            body.as_deref(),
        )
        .await
    }
    async fn get(&self, path: &str) -> Value {
        let (st, v) = self.call("GET", path, None).await;
        assert_eq!(st, 200, "{v}");
        v
    }
    async fn client(&self, id: &str) {
        let (st, v) = self
            .call(
                "PUT",
                &format!("/v1/clients/{id}"),
                Some(
                    json!({"name": "María Pérez", "email": "maria@cliente.example.co",
                            "locale": "es-CO", "timezone": "America/Bogota", "country": "CO",
                            "phone": "3001234567"}),
                ),
            )
            .await;
        assert!(st == 201 || st == 200, "{v}");
    }
    async fn invoice(&self, id: &str, due: &str, amount: &str) -> (u16, Value) {
        self.call(
            "PUT",
            &format!("/v1/invoices/{id}"),
            Some(invoice_body("cli-1", due, amount)),
        )
        .await
    }
    /// A signed webhook delivery with timestamp `ts` (Unix seconds).
    async fn webhook(&self, id: &str, ts: i64, body: &str, tamper: bool) -> (u16, Value) {
        let secret = WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
        let sig = sign(&secret, id, ts, body.as_bytes());
        let sent = if tamper {
            body.replace("250000", "950000")
        } else {
            body.to_owned()
        };
        let resp = self
            .http
            .post(format!("{}/webhooks/payments", self.base))
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .header("content-type", "application/json")
            .body(sent)
            .send()
            .await
            .unwrap();
        let st = resp.status().as_u16();
        (st, resp.json().await.unwrap())
    }
    fn now_secs(&self) -> i64 {
        plazo::clock::Clock::now(&self.clock).as_second()
    }
    async fn stop(mut self) {
        self.running.take().unwrap().shutdown().await.unwrap();
    }
}

fn invoice_body(client: &str, due: &str, amount: &str) -> Value {
    json!({"client_id": client, "number": "FV-1001", "currency": "COP", "amount": amount,
           "issued_at": "2026-02-01", "due_at": due,
           "payment_url": "https://pagos.example.co/FV-1001"})
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn outcomes(inv: &Value, outcome: &str) -> Vec<Value> {
    inv["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["outcome"] == outcome)
        .cloned()
        .collect()
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

// Due 2026-03-20 in America/Bogota: courtesy 2026-03-17 09:00 local = 14:00Z.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_health_and_ready() {
    let api = start().await;
    let (st, v) = api.raw("GET", "/v1/clients/cli-1", None, None).await;
    assert_error(st, &v, 401, "unauthorized");
    let (st, v) = api
        .raw("GET", "/v1/clients/cli-1", Some("Bearer wrong-token"), None)
        .await;
    assert_error(st, &v, 401, "unauthorized");
    let (st, v) = api.raw("GET", "/v1/clients/cli-1", Some(TOKEN), None).await;
    assert_error(st, &v, 401, "unauthorized");
    // A rejected write changes nothing.
    let (st, _) = api
        .raw(
            "PUT",
            "/v1/clients/cli-1",
            Some("Bearer nope"),
            Some(r#"{"name":"X"}"#),
        )
        .await;
    assert_eq!(st, 401);
    let (st, v) = api.call("GET", "/v1/clients/cli-1", None).await;
    assert_error(st, &v, 404, "not_found");

    let (st, v) = api.raw("GET", "/healthz", None, None).await;
    assert_eq!((st, v), (200, Value::String("ok".into())));
    let (st, v) = api.raw("GET", "/readyz", None, None).await;
    assert_eq!((st, v), (200, Value::String("ready".into())));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_and_rejected_requests_change_nothing() {
    let api = start().await;
    api.client("cli-1").await;
    let (st, _) = api.invoice("inv-1", "2026-03-20", "1250000").await;
    assert_eq!(st, 201);
    let client_before = api.get("/v1/clients/cli-1").await;
    let inv_before = api.get("/v1/invoices/inv-1").await;

    // Malformed JSON: 400 with line and column.
    let (st, v) = api
        .raw(
            "PUT",
            "/v1/invoices/inv-1",
            Some(&format!("Bearer {TOKEN}")),
            Some("{\n  \"client_id\": \"cli-1\",\n  \"number\": }"),
        )
        .await;
    assert_error(st, &v, 400, "malformed_json");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("line 3 column"), "{msg}");

    // Invoices: 422 with the field named.
    for (body, field) in [
        (
            json!({"client_id": "cli-1", "number": "FV-1001", "currency": "XYZ", "amount": "1", "due_at": "2026-03-20"}),
            "currency",
        ),
        (
            json!({"client_id": "cli-1", "number": "FV-1001", "currency": "COP", "amount": "10.005", "due_at": "2026-03-20"}),
            "amount",
        ),
        (
            json!({"client_id": "cli-1", "number": "FV-1001", "currency": "COP", "amount": "-5", "due_at": "2026-03-20"}),
            "amount",
        ),
        (
            json!({"client_id": "cli-1", "number": "FV-1001", "currency": "COP", "amount": "5", "due_at": "20/03/2026"}),
            "due_at",
        ),
    ] {
        let (st, v) = api.call("PUT", "/v1/invoices/inv-1", Some(body)).await;
        assert_error(st, &v, 422, "invalid");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{field}:")), "{msg}");
    }
    // Unknown field: deny_unknown_fields answers 400 bad_request, naming the field.
    let mut body = invoice_body("cli-1", "2026-03-20", "1250000");
    body["amount_due"] = "5".into();
    let (st, v) = api.call("PUT", "/v1/invoices/inv-1", Some(body)).await;
    assert_error(st, &v, 400, "bad_request");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("amount_due"),
        "{v}"
    );

    // Clients: 422 per field.
    for (body, field) in [
        (json!({"name": "Ana", "phone": "3001234567"}), "phone"),
        (json!({"name": "Ana", "email": "not-an-email"}), "email"),
        (
            json!({"name": "Ana", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (json!({"name": "Ana", "segment": "platinum"}), "segment"),
    ] {
        let (st, v) = api.call("PUT", "/v1/clients/cli-1", Some(body)).await;
        assert_error(st, &v, 422, "invalid");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{field}:")), "{msg}");
    }
    // The phone without + is fine with a country.
    let (st, v) = api
        .call(
            "PUT",
            "/v1/clients/cli-2",
            Some(json!({"name": "Ana", "phone": "3001234567", "country": "CO"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["phone"], "+573001234567");

    // 404s.
    let (st, v) = api.call("GET", "/v1/invoices/nope", None).await;
    assert_error(st, &v, 404, "not_found");
    let (st, v) = api
        .call(
            "PUT",
            "/v1/invoices/inv-9",
            Some(invoice_body("ghost", "2026-03-20", "100")),
        )
        .await;
    assert_error(st, &v, 404, "not_found");
    let (st, v) = api.call("GET", "/v1/invoices/inv-9", None).await;
    assert_error(st, &v, 404, "not_found");
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/nope/payments",
            Some(json!({"amount": "1", "currency": "COP", "reference": "R"})),
        )
        .await;
    assert_error(st, &v, 404, "not_found");

    // 409: move an invoice to another client; resume a chase that is not paused.
    let (st, v) = api
        .call(
            "PUT",
            "/v1/invoices/inv-1",
            Some(invoice_body("cli-2", "2026-03-20", "1250000")),
        )
        .await;
    assert_error(st, &v, 409, "conflict");
    let (st, v) = api.call("POST", "/v1/invoices/inv-1/resume", None).await;
    assert_error(st, &v, 409, "conflict");
    // 422: payment in another currency; pause ending in the past.
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/payments",
            Some(json!({"amount": "10", "currency": "USD", "reference": "R-USD"})),
        )
        .await;
    assert_error(st, &v, 422, "invalid");
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/pause",
            Some(json!({"reason": "dispute", "until": "2026-02-01T00:00:00Z"})),
        )
        .await;
    assert_error(st, &v, 422, "invalid");

    assert_eq!(api.get("/v1/clients/cli-1").await, client_before);
    assert_eq!(api.get("/v1/invoices/inv-1").await, inv_before);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_invoice_is_idempotent_and_changes_replan() {
    let api = start().await;
    api.client("cli-1").await;
    let (st, v) = api.invoice("inv-1", "2026-03-20", "1250000").await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["result"], "created");
    assert_eq!(
        ts(v["next_reminder_at"].as_str().unwrap()),
        ts("2026-03-17T14:00:00Z")
    );
    let first = api.get("/v1/invoices/inv-1").await;

    let (st, v) = api.invoice("inv-1", "2026-03-20", "1250000").await;
    assert_eq!(st, 200);
    assert_eq!(v["result"], "unchanged");
    assert_eq!(api.get("/v1/invoices/inv-1").await, first);

    // A new due date: new generation, old reminder cancelled, next at the new time.
    let old_reminder = first["next_reminder"]["id"].clone();
    let (st, v) = api.invoice("inv-1", "2026-04-10", "1250000").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"], "updated");
    let inv = api.get("/v1/invoices/inv-1").await;
    assert_eq!(inv["invoice"]["generation"], 1);
    assert_eq!(inv["next_reminder"]["generation"], 1);
    assert_eq!(inv["next_reminder"]["step_name"], "courtesy");
    assert_ne!(inv["next_reminder"]["id"], old_reminder);
    assert_eq!(
        ts(inv["next_reminder"]["fire_at"].as_str().unwrap()),
        ts("2026-04-07T14:00:00Z")
    );
    let cancelled = outcomes(&inv, "cancelled");
    assert_eq!(cancelled.len(), 1, "{inv}");
    assert_eq!(cancelled[0]["reminder_id"], old_reminder);

    // A new amount updates the balance (after a partial payment) and keeps the plan's time.
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/payments",
            Some(json!({"amount": "250000", "currency": "COP", "reference": "PSE-1"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = api.invoice("inv-1", "2026-04-10", "2000000").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"], "updated");
    let inv = api.get("/v1/invoices/inv-1").await;
    assert_eq!(inv["invoice"]["amount"], "2000000");
    assert_eq!(inv["invoice"]["balance"], "1750000");
    assert_eq!(
        ts(inv["next_reminder"]["fire_at"].as_str().unwrap()),
        ts("2026-04-07T14:00:00Z")
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_partial_duplicate_and_full() {
    let api = start().await;
    api.client("cli-1").await;
    api.invoice("inv-1", "2026-03-20", "1250000").await;
    let before = api.get("/v1/invoices/inv-1").await;
    let pay = json!({"amount": "250000", "currency": "COP", "reference": "PSE-123"});

    let (st, v) = api
        .call("POST", "/v1/invoices/inv-1/payments", Some(pay.clone()))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!({"result": "applied", "balance": "1000000", "status": "open"})
    );
    let after = api.get("/v1/invoices/inv-1").await;
    assert_eq!(after["invoice"]["balance"], "1000000");
    assert_eq!(
        after["next_reminder"], before["next_reminder"],
        "partial payment keeps the plan"
    );

    let (st, v) = api
        .call("POST", "/v1/invoices/inv-1/payments", Some(pay))
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["result"], "duplicate");
    let again = api.get("/v1/invoices/inv-1").await;
    assert_eq!(again, after, "a duplicate changes nothing");
    assert_eq!(again["invoice"]["payments"].as_array().unwrap().len(), 1);

    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/payments",
            Some(json!({"amount": "1001500", "currency": "COP", "reference": "PSE-124"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!({"result": "applied", "balance": "0", "status": "paid"})
    );
    // Paid 1,500 too much: kept as a credit on the client.
    let client = api.get("/v1/clients/cli-1").await;
    assert_eq!(client["credits"]["COP"]["amount"], "1500", "{client}");
    let paid = api.get("/v1/invoices/inv-1").await;
    assert_eq!(paid["invoice"]["status"], "paid");
    assert!(paid["next_reminder"].is_null(), "{paid}");
    let cancelled = outcomes(&paid, "cancelled");
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["reminder_id"], before["next_reminder"]["id"]);
    // Paid: nothing to pause.
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/pause",
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_error(st, &v, 409, "conflict");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_until_indefinitely_and_resume() {
    let api = start().await;
    api.client("cli-1").await;
    api.invoice("inv-1", "2026-03-20", "1250000").await;

    // Until 2026-03-25T00:00Z (2026-03-24 19:00 local): courtesy and due_today are past by then;
    // due_today is caught up at the next window opening, 2026-03-25 08:00 local.
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/pause",
            Some(json!({"reason": "disputed", "until": "2026-03-25T00:00:00Z"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let inv = api.get("/v1/invoices/inv-1").await;
    let fire = ts(inv["next_reminder"]["fire_at"].as_str().unwrap());
    assert!(fire >= ts("2026-03-25T00:00:00Z"), "{inv}");
    assert_eq!(fire, ts("2026-03-25T13:00:00Z"));
    assert_eq!(inv["next_reminder"]["step_name"], "due_today");

    // Paused indefinitely: no next reminder.
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/pause",
            Some(json!({"reason": "agreement"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let inv = api.get("/v1/invoices/inv-1").await;
    assert!(inv["next_reminder"].is_null(), "{inv}");
    assert_eq!(inv["invoice"]["pause"]["reason"], "agreement");

    // Resumed: re-planned from now (2026-03-01): courtesy at its time again.
    let (st, v) = api.call("POST", "/v1/invoices/inv-1/resume", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        ts(v["next_reminder_at"].as_str().unwrap()),
        ts("2026-03-17T14:00:00Z")
    );
    let inv = api.get("/v1/invoices/inv-1").await;
    assert!(inv["invoice"]["pause"].is_null());
    assert_eq!(inv["next_reminder"]["step_name"], "courtesy");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_webhooks_payments() {
    let api = start().await;
    api.client("cli-1").await;
    api.invoice("inv-1", "2026-03-20", "1250000").await;
    let event = |inv: &str, reference: &str| {
        json!({"type": "payment.succeeded", "timestamp": NOW,
               "data": {"invoice_id": inv, "amount": "250000", "currency": "COP",
                        "reference": reference}})
        .to_string()
    };
    let now = api.now_secs();
    let before = api.get("/v1/invoices/inv-1").await;

    // Stale both ways relative to the daemon's (manual) clock, and tampered: 401, no change.
    for (id, t, tamper) in [
        ("msg_old", now - 301, false),
        ("msg_future", now + 301, false),
        ("msg_tampered", now, true),
    ] {
        let (st, v) = api.webhook(id, t, &event("inv-1", id), tamper).await;
        assert_error(st, &v, 401, "bad_signature");
    }
    // Unknown invoice: 404, and the id is not remembered.
    let (st, v) = api
        .webhook("msg_ghost", now, &event("inv-ghost", "R-G"), false)
        .await;
    assert_error(st, &v, 404, "not_found");
    // Unknown event type: acknowledged, ignored.
    let other = json!({"type": "invoice.created", "timestamp": NOW, "data": {}}).to_string();
    let (st, v) = api.webhook("msg_other", now, &other, false).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"], "ignored");
    assert_eq!(api.get("/v1/invoices/inv-1").await, before);

    // Within tolerance (4 minutes old by the daemon's clock): applied once.
    let (st, v) = api
        .webhook("msg_1", now - 240, &event("inv-1", "R-1"), false)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"], "applied");
    assert_eq!(v["balance"], "1000000");
    let (st, v) = api
        .webhook("msg_1", now, &event("inv-1", "R-1"), false)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"], "duplicate");
    let inv = api.get("/v1/invoices/inv-1").await;
    assert_eq!(inv["invoice"]["balance"], "1000000");
    assert_eq!(inv["invoice"]["payments"].as_array().unwrap().len(), 1);
    assert_eq!(inv["invoice"]["payments"][0]["source"], "webhook:msg_1");

    // The id refused for an unknown invoice was not remembered: a later delivery applies.
    api.call(
        "PUT",
        "/v1/invoices/inv-ghost",
        Some(invoice_body("cli-1", "2026-03-20", "500000")),
    )
    .await;
    let (st, v) = api
        .webhook("msg_ghost", now, &event("inv-ghost", "R-G"), false)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"], "applied");
    api.stop().await;
}

#[tokio::test]
async fn manual_opt_out_and_opt_in_of_an_address() {
    let api = start().await;
    let (st, v) = api
        .call(
            "PUT",
            "/v1/clients/cli-9",
            Some(json!({"name": "Ana", "phone": "3001234567", "country": "CO"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (st, c) = api.call("GET", "/v1/contacts/+573001234567", None).await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["clients"], json!(["cli-9"]));

    let (st, v) = api
        .call(
            "POST",
            "/v1/contacts/+573001234567/opt-out",
            Some(json!({"channel": "webhook"})),
        )
        .await;
    assert_error(st, &v, 422, "invalid");
    let (st, c) = api
        .call(
            "POST",
            "/v1/contacts/+573001234567/opt-out",
            Some(json!({"channel": "sms", "reason": "asked by phone"})),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["opt_outs"]["sms"]["source"], "api: asked by phone");
    let (st, c) = api
        .call(
            "POST",
            "/v1/contacts/+573001234567/opt-in",
            Some(json!({"channel": "sms"})),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    assert!(c.get("opt_outs").is_none(), "{c}");
    let (_, events) = api.call("GET", "/v1/clients/cli-9/timeline", None).await;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["opt_out", "opt_in"], "{events}");
    let (st, v) = api.call("GET", "/v1/contacts/+15550000000", None).await;
    assert_error(st, &v, 404, "not_found");
    let (st, v) = api.call("GET", "/v1/clients/nobody/timeline", None).await;
    assert_error(st, &v, 404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_facts_follow_payments_and_open_invoices() {
    let api = start().await;
    api.client("cli-1").await;
    let facts = api.get("/v1/clients/cli-1").await["facts"].clone();
    assert_eq!(facts["paid_invoices"], 0, "{facts}");
    assert_eq!(facts["open_invoices"], 0, "{facts}");
    assert_eq!(facts["last_payment_at"], Value::Null, "{facts}");

    // One invoice paid 7 days late, one open and 9 days overdue (NOW is 2026-03-01), one
    // open and not due yet.
    let (st, _) = api.invoice("inv-old", "2026-02-10", "300000").await;
    assert_eq!(st, 201);
    let (st, _) = api.invoice("inv-late", "2026-02-20", "500000").await;
    assert_eq!(st, 201);
    let (st, _) = api.invoice("inv-new", "2026-03-20", "1250000.50").await;
    assert_eq!(st, 201);
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-old/payments",
            Some(json!({"amount": "300000", "currency": "COP",
                        "paid_at": "2026-02-17T15:00:00Z", "reference": "tx-old"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    let view = api.get("/v1/clients/cli-1").await;
    assert_eq!(
        view["name"], "María Pérez",
        "the client record is still there: {view}"
    );
    let facts = &view["facts"];
    assert_eq!(facts["paid_invoices"], 1, "{facts}");
    assert_eq!(facts["paid_late"], 1, "{facts}");
    assert_eq!(facts["paid_late_share"], 1.0, "{facts}");
    assert_eq!(facts["avg_days_late"], 7.0, "{facts}");
    assert_eq!(facts["max_days_late"], 7, "{facts}");
    assert_eq!(facts["avg_ticket"]["COP"], "300000.00", "{facts}");
    assert_eq!(facts["last_payment_at"], "2026-02-17T15:00:00Z", "{facts}");
    assert_eq!(facts["days_since_last_payment"], 11, "{facts}");
    assert_eq!(facts["open_invoices"], 2, "{facts}");
    assert_eq!(facts["open_balance"]["COP"], "1750000.50", "{facts}");
    assert_eq!(facts["oldest_days_overdue"], 9, "{facts}");
    assert_eq!(facts["broken_promises"], 0, "{facts}");
    // The open invoices themselves, earliest due first (the paid one is not listed).
    let open = view["open_invoices"].as_array().unwrap();
    let listed: Vec<(&str, &str, &str)> = open
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap(),
                o["balance"].as_str().unwrap(),
                o["due_at"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("inv-late", "500000.00", "2026-02-20"),
            ("inv-new", "1250000.50", "2026-03-20")
        ],
        "{view}"
    );
    assert_eq!(open[0]["currency"], "COP");
    assert_eq!(open[0]["paused"], false);
    // A PUT of the client (which cannot carry facts) keeps them.
    api.client("cli-1").await;
    let again = api.get("/v1/clients/cli-1").await;
    assert_eq!(again["facts"]["paid_invoices"], 1, "{again}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_off_recall_hand_off_and_void_over_http() {
    let api = start().await;
    api.client("cli-1").await;
    let (st, _) = api.invoice("inv-1", "2026-03-20", "1250000").await;
    assert_eq!(st, 201);

    // An empty body is fine; the answer is the invoice in its new state.
    let (st, v) = api.call("POST", "/v1/invoices/inv-1/write-off", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"], "written_off");
    assert_eq!(v["invoice"]["status"], "written_off");
    assert_eq!(v["invoice"]["escalation"]["kind"], "written_off");
    assert_eq!(v["invoice"]["escalation"]["balance"], "1250000");
    let (st, v) = api.call("POST", "/v1/invoices/inv-1/write-off", None).await;
    assert_error(st, &v, 409, "conflict");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is written off; recall it first"),
        "{v}"
    );

    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/recall",
            Some(json!({"reason": "client called"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["invoice"]["status"], "open");
    assert_eq!(
        v["next_reminder_at"], "2026-03-17T14:00:00Z",
        "courtesy, still ahead"
    );

    // This policy has no partner: a hand-off says how to add one, and changes nothing.
    let before = api.get("/v1/invoices/inv-1").await;
    let (st, v) = api.call("POST", "/v1/invoices/inv-1/hand-off", None).await;
    assert_error(st, &v, 422, "invalid");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("add [partners.NAME]"),
        "{v}"
    );
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/hand-off",
            Some(json!({"partner": "x", "extra": 1})),
        )
        .await;
    assert_eq!(st, 400, "unknown fields are refused: {v}");
    assert_eq!(api.get("/v1/invoices/inv-1").await, before);

    let (st, v) = api.call("POST", "/v1/invoices/inv-1/void", None).await;
    assert_error(st, &v, 422, "invalid");
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/void",
            Some(json!({"reason": "issued twice"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["invoice"]["status"], "void");
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/payments",
            Some(json!({"amount": "1000", "currency": "COP", "reference": "tx-void"})),
        )
        .await;
    assert_error(st, &v, 409, "conflict");
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/nope/void",
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_error(st, &v, 404, "not_found");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_go_on_the_invoice_and_client_timelines() {
    let api = start().await;
    api.client("cli-1").await;
    let (st, _) = api.invoice("inv-1", "2026-03-20", "1250000").await;
    assert_eq!(st, 201);
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-1/notes",
            Some(
                json!({"author": "Laura (cartera)", "text": "Llamé: paga el viernes.\nConfirmar."}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["line"]["outcome"], "note");
    let inv = api.get("/v1/invoices/inv-1").await;
    let timeline = inv["timeline"].as_array().unwrap();
    assert!(
        timeline.iter().any(|l| l["outcome"] == "note"
            && l["detail"] == "note by Laura (cartera): Llamé: paga el viernes.\nConfirmar."),
        "{inv}"
    );
    let (st, v) = api
        .call(
            "POST",
            "/v1/clients/cli-1/notes",
            Some(json!({"author": "Laura", "text": "Prefiere WhatsApp"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let tl = api.get("/v1/clients/cli-1/timeline").await;
    assert!(tl.to_string().contains("Prefiere WhatsApp"), "{tl}");

    // Bad input: refused, nothing written.
    for (body, field) in [
        (json!({"author": "", "text": "x"}), "author"),
        (json!({"author": "a\nb", "text": "x"}), "author"),
        (json!({"author": "Laura", "text": "  "}), "text"),
        (json!({"author": "Laura", "text": "a\u{0}b"}), "text"),
    ] {
        let (st, v) = api
            .call("POST", "/v1/invoices/inv-1/notes", Some(body))
            .await;
        assert_error(st, &v, 422, "invalid");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(field),
            "{v}"
        );
    }
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/nope/notes",
            Some(json!({"author": "a", "text": "b"})),
        )
        .await;
    assert_error(st, &v, 404, "not_found");
    let after = api.get("/v1/invoices/inv-1").await;
    let notes = after["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["outcome"] == "note")
        .count();
    assert_eq!(notes, 1);
    api.stop().await;
}
