//! End to end: promises and payment plans through the real daemon's API, with a real SMTP
//! server on loopback and the shipped templates. A promise kept stops reminders; a promise
//! broken fires the broken-promise step and counts against the client; a three-instalment
//! plan reminds per instalment and closes on the last payment. Promised dates are instants a
//! few seconds ahead, so nothing waits for a calendar day.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Mail, SmtpServer, decode_mail_text, free_port, test_policy, write};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

fn policy() -> String {
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("00:00", "24:00"),
        &["standard"],
        &[
            common::firm_step("standard", "due_today", "0d", "due_today"),
            common::firm_step("standard", "firm_overdue", "+1h", "firm_overdue"),
            common::firm_step("promise", "promise_tomorrow", "-1d", "promise_reminder"),
            common::firm_step("instalments", "instalment_due", "0d", "instalment_reminder"),
            common::firm_step("broken", "promise_broken", "0d", "promise_broken"),
        ],
    );
    p.push_str(
        "[promises]\ncadence = \"promise\"\ngrace = \"0d\"\nbroken_cadence = \"broken\"\n\n[plans]\ncadence = \"instalments\"\ngrace = \"1d\"\n",
    );
    p
}

fn config(port: u16, smtp: std::net::SocketAddr) -> String {
    format!(
        r#"
listen = "127.0.0.1:{port}"
data_dir = "data"
policy = "policy.toml"

[routes]
email = "smtp"

[channels.smtp]
type = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
from = "Cartera Tornillo <cartera@tornillo.example.co>"
"#,
        smtp_port = smtp.port()
    )
}

struct World {
    _dir: tempfile::TempDir,
    smtp: SmtpServer,
    daemon: Daemon,
}

/// A daemon with client cli-1 and invoice inv-1 (1,250,000 COP, due half an hour ago): the
/// due_today reminder has arrived; firm_overdue is half an hour away.
fn world() -> World {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("policy.toml"), &policy());
    let port = free_port();
    let daemon = Daemon::start(dir.path(), &config(port, smtp.addr), port);
    let (st, b) = daemon.api(
        "PUT",
        "/v1/clients/cli-1",
        Some(
            &json!({"name": "María Pérez", "email": "maria@cliente.example.co", "locale": "es-CO",
                      "timezone": "America/Bogota", "country": "CO"})
            .to_string(),
        ),
    );
    assert_eq!(st, 201, "{b}");
    let due = Timestamp::now() - SignedDuration::from_mins(30);
    let (st, b) = daemon.api(
        "PUT",
        "/v1/invoices/inv-1",
        Some(
            &json!({"client_id": "cli-1", "number": "FV-1001", "currency": "COP",
                      "amount": "1250000", "due_at": due.to_string(),
                      "payment_url": "https://pagos.example.co/FV-1001"})
            .to_string(),
        ),
    );
    assert_eq!(st, 201, "{b}");
    let w = World {
        _dir: dir,
        smtp,
        daemon,
    };
    let first = w.mails(1);
    assert!(decode_mail_text(&first[0].data).contains("FV-1001"));
    w
}

impl World {
    fn mails(&self, n: usize) -> Vec<Mail> {
        let m = self.smtp.wait_for(n, Duration::from_secs(20));
        assert!(
            m.len() >= n,
            "expected {n} messages, got {}\nlog:\n{}",
            m.len(),
            self.daemon.log_text()
        );
        m
    }
    fn invoice(&self) -> Value {
        self.daemon.api("GET", "/v1/invoices/inv-1", None).1
    }
    fn wait(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.invoice();
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}: {v:#}\nlog:\n{}",
                self.daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    fn pay(&self, amount: &str, reference: &str) -> Value {
        let (st, b) = self.daemon.api(
            "POST",
            "/v1/invoices/inv-1/payments",
            Some(&json!({"amount": amount, "currency": "COP", "reference": reference}).to_string()),
        );
        assert_eq!(st, 200, "{b}");
        b
    }
}

fn in_secs(s: i64) -> String {
    (Timestamp::now() + SignedDuration::from_secs(s)).to_string()
}

#[test]
fn a_promise_kept_stops_reminders() {
    let w = world();
    // Promised for tomorrow (plus 3 s): the "day before" reminder is due in 3 s.
    let date = in_secs(86_400 + 3);
    let (st, b) = w.daemon.api(
        "POST",
        "/v1/invoices/inv-1/promises",
        Some(
            &json!({"amount": "1250000", "date": date, "channel": "phone",
                      "note": "llamó a cartera"})
            .to_string(),
        ),
    );
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["arrangement"]["kind"], "promise");
    assert_eq!(b["arrangement"]["state"], "active");
    // A second promise while this one is active is refused.
    let (st, conflict) = w.daemon.api(
        "POST",
        "/v1/invoices/inv-1/promises",
        Some(&json!({"amount": "1000", "date": in_secs(3600)}).to_string()),
    );
    assert_eq!(st, 409, "{conflict}");
    let mails = w.mails(2);
    let text = decode_mail_text(&mails[1].data);
    assert!(text.contains("1.250.000"), "the promised amount:\n{text}");
    let v = w.invoice();
    assert_eq!(v["next_reminder"]["track"]["kind"], "deadline", "{v:#}");

    let paid = w.pay("1250000", "PSE-1");
    assert_eq!(paid["status"], "paid");
    let v = w.invoice();
    assert_eq!(v["invoice"]["arrangements"][0]["state"], "kept", "{v:#}");
    assert!(v["next_reminder"].is_null(), "{v:#}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        w.smtp.mails().len(),
        2,
        "nothing after the promise was kept"
    );
    let (_, client) = w.daemon.api("GET", "/v1/clients/cli-1", None);
    assert_eq!(client["broken_promises"], 0, "{client}");
}

#[test]
fn a_promise_broken_fires_the_broken_promise_step() {
    let w = world();
    let (st, b) = w.daemon.api(
        "POST",
        "/v1/invoices/inv-1/promises",
        Some(&json!({"amount": "500000", "date": in_secs(2), "channel": "whatsapp"}).to_string()),
    );
    assert_eq!(st, 201, "{b}");
    // Its "day before" step was already past when the promise was made: not sent. At the
    // promised instant (grace 0d) nothing has arrived: broken, and the broken step goes out.
    let mails = w.mails(2);
    let text = decode_mail_text(&mails[1].data);
    assert!(text.contains("500.000"), "what was promised:\n{text}");
    let v = w.wait("the broken promise", |v| {
        v["invoice"]["arrangements"][0]["state"] == "broken"
    });
    assert_eq!(
        v["invoice"]["arrangements"][0]["instalments"][0]["state"],
        "missed"
    );
    let (_, client) = w.daemon.api("GET", "/v1/clients/cli-1", None);
    assert_eq!(client["broken_promises"], 1, "{client}");
    // The regular cadence takes over: firm_overdue is next.
    let v = w.wait("the regular cadence", |v| {
        v["next_reminder"]["step_name"] == "firm_overdue"
    });
    assert!(v["next_reminder"]["track"].is_null(), "{v:#}");
    let timeline = v["timeline"].to_string();
    assert!(timeline.contains("promise #1 broken"), "{timeline}");
    assert_eq!(w.smtp.mails().len(), 2);
}

#[test]
fn a_three_instalment_plan_reminds_per_instalment_and_closes_on_the_last_payment() {
    let w = world();
    let (st, bad) = w.daemon.api(
        "POST",
        "/v1/invoices/inv-1/plans",
        Some(
            &json!({"instalments": [
            {"date": in_secs(2), "amount": "400000"},
            {"date": in_secs(4), "amount": "400000"}]})
            .to_string(),
        ),
    );
    assert_eq!(st, 422, "{bad}");
    assert!(bad.to_string().contains("balance"), "{bad}");
    let (st, b) = w.daemon.api(
        "POST",
        "/v1/invoices/inv-1/plans",
        Some(
            &json!({"channel": "phone", "instalments": [
            {"date": in_secs(2), "amount": "400000"},
            {"date": in_secs(4), "amount": "400000"},
            {"date": in_secs(6), "amount": "450000"}]})
            .to_string(),
        ),
    );
    assert_eq!(st, 201, "{b}");
    let n = b["arrangement"]["id"].as_u64().unwrap();
    for (i, (amount, reference)) in [("400000", "c1"), ("400000", "c2"), ("450000", "c3")]
        .iter()
        .enumerate()
    {
        let mails = w.mails(i + 2);
        let text = decode_mail_text(&mails[i + 1].data);
        let shown = format!("{}.000", &amount[..3]);
        assert!(
            text.contains(&shown),
            "instalment {} shows {shown}:\n{text}",
            i + 1
        );
        w.pay(amount, reference);
    }
    let v = w.wait("the plan to close", |v| v["invoice"]["status"] == "paid");
    let plan = &v["invoice"]["arrangements"][0];
    assert_eq!(plan["id"].as_u64(), Some(n));
    assert_eq!(plan["state"], "kept", "{v:#}");
    for i in 0..3 {
        assert_eq!(plan["instalments"][i]["state"], "paid");
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        w.smtp.mails().len(),
        4,
        "one reminder per instalment, nothing after"
    );
}

#[test]
fn promises_are_cancelled_over_http_and_bad_requests_say_what_is_wrong() {
    let w = world();
    let (st, b) = w.daemon.api(
        "POST",
        "/v1/invoices/inv-1/promises",
        Some(r#"{"amount": "1000", "date": "#),
    );
    assert_eq!(st, 400, "malformed JSON: {b}");
    let (st, b) = w.daemon.api(
        "POST",
        "/v1/invoices/inv-1/promises",
        Some(&json!({"amount": "1000", "date": in_secs(3600), "colour": "red"}).to_string()),
    );
    assert_eq!(st, 400, "unknown field: {b}");
    assert!(b.to_string().contains("colour"), "{b}");
    let (st, b) = w.daemon.api(
        "POST",
        "/v1/invoices/inv-1/promises",
        Some(&json!({"amount": "2000000", "date": in_secs(3600)}).to_string()),
    );
    assert_eq!(st, 422, "{b}");
    assert!(b.to_string().contains("more than the balance"), "{b}");
    let (st, b) = w.daemon.api(
        "POST",
        "/v1/invoices/nope/promises",
        Some(&json!({"amount": "1000", "date": in_secs(3600)}).to_string()),
    );
    assert_eq!(st, 404, "{b}");
    let (st, b) = w.daemon.api(
        "POST",
        "/v1/invoices/inv-1/promises",
        Some(&json!({"amount": "1000", "date": in_secs(3600), "channel": "phone"}).to_string()),
    );
    assert_eq!(st, 201, "{b}");
    let (st, b) = w
        .daemon
        .api("DELETE", "/v1/invoices/inv-1/promises/x", None);
    assert_eq!(st, 400, "{b}");
    let (st, b) = w.daemon.api("DELETE", "/v1/invoices/inv-1/plans/1", None);
    assert_eq!(st, 404, "a promise is not a plan: {b}");
    let (st, b) = w.daemon.api(
        "DELETE",
        "/v1/invoices/inv-1/promises/1",
        Some(&json!({"reason": "renegotiated"}).to_string()),
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["invoice"]["arrangements"][0]["state"], "cancelled");
    assert_eq!(b["invoice"]["arrangements"][0]["outcome"], "renegotiated");
    let (st, b) = w
        .daemon
        .api("DELETE", "/v1/invoices/inv-1/promises/1", None);
    assert_eq!(st, 409, "{b}");
    let (_, client) = w.daemon.api("GET", "/v1/clients/cli-1", None);
    assert_eq!(
        client["broken_promises"], 0,
        "a cancel is not a broken promise"
    );
}
