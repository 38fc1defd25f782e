//! End to end: payment providers stop the chase. The real daemon; Stripe events signed as
//! Stripe signs them; Mercado Pago notifications signed as Mercado Pago signs them, with the
//! payment fetched from a local server that checks the request; a SIGKILL between
//! acknowledging an event and applying it.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::mock_http::{MockHttp, Seen};
use common::{
    Daemon, MP_SECRET, MP_TOKEN, STRIPE_SECRET, free_port, reqwest, step, test_policy, write,
};
use serde_json::{Value, json};

fn policy() -> String {
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("00:00", "24:00"),
        &["standard"],
        &[
            step("standard", "due_today", "0d", None, &["email"]),
            step("standard", "firm_overdue", "+10d", None, &["email"]),
        ],
    );
    p.push_str(
        "\n[payments]\nlink = \"https://pagos.example.co/pagar/{{ invoice.id }}\"\nearly_discount = { percent = \"2\", days_before_due = 10 }\n",
    );
    p
}

fn config(port: u16, mp: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:{port}"
data_dir = "data"
policy = "policy.toml"

[routes]
email = "outbox"

[channels.outbox]
type = "outbox"

[mercadopago]
base_url = "{mp}"
timeout_secs = 2
"#
    )
}

fn start(dir: &std::path::Path, mp: &str) -> (Daemon, u16) {
    write(&dir.join("policy.toml"), &policy());
    let port = free_port();
    (Daemon::start(dir, &config(port, mp), port), port)
}

fn setup(daemon: &Daemon) {
    let (st, b) = daemon.api(
        "PUT",
        "/v1/clients/cli-1",
        Some(
            &json!({"name": "María Pérez", "email": "maria@cliente.example.co", "country": "CO"})
                .to_string(),
        ),
    );
    assert_eq!(st, 201, "{b}");
    // Due in ten days: the first reminder is pending.
    let due = (jiff::Zoned::now().date() + jiff::Span::new().days(10)).to_string();
    let (st, b) = daemon.api(
        "PUT",
        "/v1/invoices/inv-1",
        Some(
            &json!({"client_id": "cli-1", "number": "FV-1001", "currency": "COP",
                      "amount": "1250000", "due_at": due})
            .to_string(),
        ),
    );
    assert_eq!(st, 201, "{b}");
    assert!(b["next_reminder_at"].is_string(), "{b}");
}

/// The invoice with its timeline and the next reminder's time (`next_reminder_at`, null when
/// nothing is pending).
fn invoice(daemon: &Daemon) -> Value {
    flat(&daemon.api("GET", "/v1/invoices/inv-1", None).1)
}

/// `GET /v1/invoices/{id}`'s answer as [`invoice`] gives it.
fn flat(v: &Value) -> Value {
    let mut inv = v["invoice"].clone();
    inv["timeline"] = v["timeline"].clone();
    inv["next_reminder_at"] = v["next_reminder"]["fire_at"].clone();
    inv
}

fn wait_invoice(daemon: &Daemon, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    flat(&daemon.wait_get("/v1/invoices/inv-1", what, |v| pred(&flat(v))))
}

fn stripe_event(id: &str, kind: &str, object: Value, previous: Option<Value>) -> String {
    let mut data = json!({"object": object});
    if let Some(p) = previous {
        data["previous_attributes"] = p;
    }
    json!({"id": id, "object": "event", "api_version": "2026-06-24.dahlia", "created": 1_700_000_000,
           "livemode": false, "pending_webhooks": 1, "type": kind, "data": data})
    .to_string()
}

fn invoice_paid(id: &str) -> String {
    stripe_event(
        id,
        "invoice.paid",
        json!({"id": "in_1Q", "object": "invoice", "number": "STRIPE-0001", "currency": "cop",
               "amount_paid": 125_000_000, "amount_remaining": 0, "status": "paid",
               "metadata": {"plazo_invoice_id": "inv-1"},
               "status_transitions": {"paid_at": 1_700_000_000}}),
        None,
    )
}

fn charge_refunded(id: &str, refunded_cents: i64) -> String {
    stripe_event(
        id,
        "charge.refunded",
        json!({"id": "ch_1Q", "object": "charge", "payment_intent": "pi_1Q", "currency": "cop",
               "amount": 125_000_000, "amount_refunded": refunded_cents, "refunded": false,
               "metadata": {"plazo_invoice_id": "inv-1"}}),
        Some(json!({"amount_refunded": 0})),
    )
}

fn post_stripe(daemon: &Daemon, body: &str, secret: &str) -> (u16, String) {
    let t = jiff::Timestamp::now().as_second();
    let sig = plazo::payments::stripe::sign_header(secret, t, body.as_bytes());
    reqwest::post_raw(
        &format!("{}/webhooks/stripe", daemon.base),
        "application/json",
        &[("Stripe-Signature", &sig)],
        body,
    )
}

#[test]
fn stripe_invoice_paid_stops_the_chase_and_a_forged_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, _) = start(dir.path(), "http://127.0.0.1:9");
    setup(&daemon);

    let (st, _) = post_stripe(&daemon, &invoice_paid("evt_forged"), "whsec_not_the_secret");
    assert_eq!(st, 401);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(invoice(&daemon)["status"], "open");

    let (st, body) = post_stripe(&daemon, &invoice_paid("evt_paid_1"), STRIPE_SECRET);
    assert_eq!(st, 200, "{body}");
    let v = wait_invoice(&daemon, "paid", |v| v["status"] == "paid");
    let balance: rust_decimal::Decimal = v["balance"].as_str().unwrap().parse().unwrap();
    assert!(balance.is_zero(), "{v:#}");
    assert!(
        v["next_reminder_at"].is_null(),
        "the chase must stop: {v:#}"
    );
    let timeline = v["timeline"].as_array().unwrap();
    assert!(
        timeline.iter().any(|l| l["outcome"] == "cancelled"),
        "the pending reminder is cancelled: {timeline:#?}"
    );
    assert!(
        timeline
            .iter()
            .any(|l| l["detail"].as_str().unwrap_or("").contains("stripe:in_1Q"))
    );
}

#[test]
fn the_same_event_three_times_out_of_order_with_a_refund_applies_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, _) = start(dir.path(), "http://127.0.0.1:9");
    setup(&daemon);

    // The refund of 500,000.00 arrives before the payment it refunds.
    let (st, b) = post_stripe(
        &daemon,
        &charge_refunded("evt_refund_1", 50_000_000),
        STRIPE_SECRET,
    );
    assert_eq!(st, 200, "{b}");
    // The payment, delivered three times.
    for i in 0..3 {
        let (st, b) = post_stripe(&daemon, &invoice_paid("evt_paid_2"), STRIPE_SECRET);
        assert_eq!(st, 200, "{b}");
        let b: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(b["duplicate"], i > 0, "{b}");
    }
    // Paid once, then the refund re-opens 500,000.00 and the chase resumes.
    let half: rust_decimal::Decimal = "500000".parse().unwrap();
    let v = wait_invoice(&daemon, "the refund", |v| {
        v["balance"]
            .as_str()
            .and_then(|b| b.parse::<rust_decimal::Decimal>().ok())
            == Some(half)
    });
    assert_eq!(v["status"], "open", "{v:#}");
    assert!(
        v["next_reminder_at"].is_string(),
        "the chase resumes: {v:#}"
    );
    let payments = v["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 2, "one payment, one refund: {payments:#?}");
    let (_, events) = daemon.api("GET", "/v1/payment-events?state=applied", None);
    assert_eq!(events.as_array().unwrap().len(), 2, "{events:#}");
}

#[test]
fn unmatched_and_foreign_currency_events_are_kept_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, _) = start(dir.path(), "http://127.0.0.1:9");
    setup(&daemon);
    let unmatched = invoice_paid("evt_other")
        .replace("inv-1", "inv-unknown")
        .replace("STRIPE-0001", "X-9");
    assert_eq!(post_stripe(&daemon, &unmatched, STRIPE_SECRET).0, 200);
    let usd = invoice_paid("evt_usd").replace("\"cop\"", "\"usd\"");
    assert_eq!(post_stripe(&daemon, &usd, STRIPE_SECRET).0, 200);
    let end = Instant::now() + Duration::from_secs(10);
    let (unmatched, flagged) = loop {
        let (_, u) = daemon.api("GET", "/v1/payment-events?state=unmatched", None);
        let (_, f) = daemon.api("GET", "/v1/payment-events?state=flagged", None);
        if (!u.as_array().unwrap().is_empty() && !f.as_array().unwrap().is_empty())
            || Instant::now() > end
        {
            break (u, f);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(unmatched[0]["key"], "stripe:evt_other", "{unmatched:#}");
    assert!(
        unmatched[0]["detail"]
            .as_str()
            .unwrap()
            .contains("no invoice matches")
    );
    assert_eq!(flagged[0]["key"], "stripe:evt_usd", "{flagged:#}");
    assert!(
        flagged[0]["detail"]
            .as_str()
            .unwrap()
            .contains("does not match the invoice currency COP")
    );
    let v = invoice(&daemon);
    assert_eq!(v["status"], "open");
    assert_eq!(v["balance"], "1250000");
}

/// A Mercado Pago API mock: `GET /v1/payments/{id}` answers an approved payment for inv-1;
/// while `down` is set it answers 503 (the daemon keeps the event and retries).
fn mercadopago(down: Arc<AtomicBool>) -> MockHttp {
    MockHttp::start(move |req: &Seen| {
        assert_eq!(req.method, "GET");
        assert_eq!(
            req.header("authorization").unwrap(),
            format!("Bearer {MP_TOKEN}")
        );
        if down.load(Ordering::SeqCst) {
            return (
                503,
                "application/json",
                json!({"message": "try later"}).to_string(),
            );
        }
        match req.path.as_str() {
            "/v1/payments/1234567890" => (
                200,
                "application/json",
                json!({"id": 1234567890u64, "status": "approved", "status_detail": "accredited",
                       "transaction_amount": 1250000, "transaction_amount_refunded": 0,
                       "currency_id": "COP", "external_reference": "inv-1",
                       "date_approved": "2026-05-25T13:01:08.000-04:00", "metadata": {}})
                .to_string(),
            ),
            _ => (404, "application/json", json!({"message": "Payment not found", "error": "not_found", "status": 404, "cause": []}).to_string()),
        }
    })
}

fn post_mercadopago(daemon: &Daemon, data_id: &str, request_id: &str) -> (u16, String) {
    let ts = jiff::Timestamp::now().as_millisecond().to_string();
    let manifest = format!("id:{data_id};request-id:{request_id};ts:{ts};");
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(MP_SECRET.as_bytes()).unwrap();
    mac.update(manifest.as_bytes());
    let sig = format!("ts={ts},v1={}", hex::encode(mac.finalize().into_bytes()));
    let body = json!({"id": 112233445566u64, "live_mode": true, "type": "payment",
                      "date_created": "2026-05-25T13:01:08.000-03:00", "action": "payment.updated",
                      "api_version": "v1", "data": {"id": data_id}})
    .to_string();
    reqwest::post_raw(
        &format!(
            "{}/webhooks/mercadopago?data.id={data_id}&type=payment",
            daemon.base
        ),
        "application/json",
        &[("x-signature", &sig), ("x-request-id", request_id)],
        &body,
    )
}

#[test]
fn mercadopago_notification_fetches_the_payment_and_closes_the_invoice() {
    let down = Arc::new(AtomicBool::new(false));
    let mp = mercadopago(down);
    let dir = tempfile::tempdir().unwrap();
    let (daemon, _) = start(dir.path(), &mp.url());
    setup(&daemon);
    let (st, _) = post_mercadopago(&daemon, "1234567890", "not-the-signed-id");
    assert_eq!(st, 200, "signed with the id it carries");
    // Tampered: the signature was made for another payment id.
    let ts = jiff::Timestamp::now().as_millisecond();
    let (st, _) = reqwest::post_raw(
        &format!(
            "{}/webhooks/mercadopago?data.id=999&type=payment",
            daemon.base
        ),
        "application/json",
        &[
            ("x-signature", &format!("ts={ts},v1=00")),
            ("x-request-id", "r"),
        ],
        "{}",
    );
    assert_eq!(st, 401);
    let v = wait_invoice(&daemon, "paid", |v| v["status"] == "paid");
    assert!(v["next_reminder_at"].is_null(), "{v:#}");
    let fetches = mp.wait_for("/v1/payments/1234567890", 1, Duration::ZERO);
    assert_eq!(fetches.len(), 1);
}

#[test]
fn sigkill_between_acknowledging_and_applying_loses_nothing() {
    let down = Arc::new(AtomicBool::new(true));
    let mp = mercadopago(down.clone());
    let dir = tempfile::tempdir().unwrap();
    let (daemon, port) = start(dir.path(), &mp.url());
    setup(&daemon);
    let (st, b) = post_mercadopago(&daemon, "1234567890", "req-kill-1");
    assert_eq!(st, 200, "{b}");
    // Acknowledged; the API is down, so nothing is applied yet. Kill the daemon now.
    let tried = mp.wait_for("/v1/payments/1234567890", 1, Duration::from_secs(10));
    assert!(!tried.is_empty(), "log:\n{}", daemon.log_text());
    assert_eq!(invoice(&daemon)["status"], "open");
    daemon.kill();
    down.store(false, Ordering::SeqCst);
    let daemon = Daemon::start_existing(dir.path(), port);
    let v = wait_invoice(&daemon, "paid after restart", |v| v["status"] == "paid");
    assert!(v["next_reminder_at"].is_null(), "{v:#}");
    let (_, events) = daemon.api("GET", "/v1/payment-events", None);
    let e = &events.as_array().unwrap()[0];
    assert_eq!(e["key"], "mercadopago:1234567890:req-kill-1");
    assert_eq!(e["state"], "applied", "{e:#}");
}

#[test]
fn an_early_payment_of_the_discounted_amount_closes_the_invoice() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, _) = start(dir.path(), "http://127.0.0.1:9");
    // Due in ten days: the 2 % discount is open until today.
    setup(&daemon);
    // 1,250,000.00 less 2 % = 1,225,000.00, in cents.
    let discounted = invoice_paid("evt_early").replace("125000000", "122500000");
    let (st, b) = post_stripe(&daemon, &discounted, STRIPE_SECRET);
    assert_eq!(st, 200, "{b}");
    let v = wait_invoice(&daemon, "settled by the discount", |v| {
        v["status"] == "paid"
    });
    assert!(v["next_reminder_at"].is_null(), "{v:#}");
    let line = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["detail"]
                .as_str()
                .unwrap_or("")
                .contains("discount settles")
        })
        .cloned();
    assert!(line.is_some(), "{v:#}");
    assert_eq!(v["payments"][0]["amount"], "1225000.00");
}
