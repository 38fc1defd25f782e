//! End to end: the real daemon, a real SMTP server on loopback, a reminder that falls due in a
//! second or two, a signed payment webhook that stops the chase, and a restart that keeps state.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::time::Duration;

use common::{Daemon, SmtpServer, decode_mail_text, free_port, step, test_policy, write};
use serde_json::json;

fn policy() -> String {
    test_policy(
        "America/Bogota",
        "es",
        ("00:00", "24:00"),
        &["fast"],
        &[
            step("fast", "due_today", "0d", None, &["email"]),
            step("fast", "firm_overdue", "+1h", None, &["email"]),
        ],
    )
}

fn config(port: u16, smtp: std::net::SocketAddr) -> String {
    format!(
        r#"
listen = "127.0.0.1:{port}"
data_dir = "data"
policy = "policy.toml"

[dispatch]
backoff_base_secs = 1

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

#[test]
fn reminder_arrives_by_smtp_then_payment_webhook_stops_the_chase_and_restart_keeps_state() {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("policy.toml"), &policy());
    let port = free_port();
    let daemon = Daemon::start(dir.path(), &config(port, smtp.addr), port);

    let (st, body) = daemon.api(
        "PUT",
        "/v1/clients/cli-1",
        Some(
            &json!({"name": "María Pérez", "email": "maria@cliente.example.co", "locale": "es-CO",
                      "timezone": "America/Bogota", "country": "CO"})
            .to_string(),
        ),
    );
    assert_eq!(st, 201, "{body}");
    let due = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1500);
    let (st, body) = daemon.api(
        "PUT",
        "/v1/invoices/inv-1",
        Some(&json!({"client_id": "cli-1", "number": "FV-1001", "currency": "COP", "amount": "1250000",
                      "due_at": due.to_string(), "payment_url": "https://pagos.example.co/FV-1001"}).to_string()),
    );
    assert_eq!(st, 201, "{body}");
    assert!(body["next_reminder_at"].is_string(), "{body}");
    // A second invoice due far in the future: its schedule must survive the restart.
    let (st, _) = daemon.api(
        "PUT",
        "/v1/invoices/inv-2",
        Some(&json!({"client_id": "cli-1", "number": "FV-1002", "currency": "COP", "amount": "99000",
                      "due_at": "2099-01-15"}).to_string()),
    );
    assert_eq!(st, 201);

    let mails = smtp.wait_for(1, Duration::from_secs(15));
    assert_eq!(
        mails.len(),
        1,
        "no email arrived; daemon log:\n{}",
        daemon.log_text()
    );
    let mail = &mails[0];
    assert_eq!(mail.to, vec!["maria@cliente.example.co".to_string()]);
    assert!(mail.from.contains("cartera@tornillo.example.co"));
    let data = &mail.data;
    assert!(data.contains("Subject: "), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("Message-ID: <"), "{data}");
    let decoded = decode_mail_text(data);
    assert!(
        decoded.contains("María"),
        "personalised greeting missing:\n{decoded}"
    );
    assert!(
        decoded.contains("FV-1001"),
        "invoice number missing:\n{decoded}"
    );
    assert!(
        decoded.contains("$ 1.250.000"),
        "amount formatted for es-CO missing:\n{decoded}"
    );
    assert!(
        decoded.contains("https://pagos.example.co/FV-1001"),
        "payment link missing:\n{decoded}"
    );

    // The timeline records the send with the provider's message id (once the outcome is
    // written, just after the SMTP server took the mail); the next step is planned.
    let is_sent = |l: &serde_json::Value| l["outcome"] == "sent";
    let inv = daemon.wait_get("/v1/invoices/inv-1", "the sent line", |v| {
        v["timeline"]
            .as_array()
            .is_some_and(|t| t.iter().any(is_sent))
    });
    let sent: Vec<_> = inv["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| is_sent(l))
        .collect();
    assert_eq!(sent.len(), 1, "{inv}");
    assert_eq!(sent[0]["channel"], "email");
    assert_eq!(sent[0]["recipient"], "maria@cliente.example.co");
    assert!(
        sent[0]["provider_message_id"]
            .as_str()
            .unwrap()
            .contains("@tornillo.example.co")
    );
    assert_eq!(inv["next_reminder"]["step_name"], "firm_overdue", "{inv}");

    // A signed invoice.paid webhook closes the invoice and cancels the rest.
    let event = json!({"type": "invoice.paid", "timestamp": jiff::Timestamp::now().to_string(),
                       "data": {"invoice_id": "inv-1", "currency": "COP", "reference": "PSE-778"}})
    .to_string();
    let (st, body) = daemon.payment_webhook("msg_paid_1", &event);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["result"], "applied");
    assert_eq!(body["status"], "paid");
    // The same delivery again is acknowledged and applied once.
    let (st, body) = daemon.payment_webhook("msg_paid_1", &event);
    assert_eq!(st, 200);
    assert_eq!(body["result"], "duplicate");
    // A tampered one is refused and changes nothing.
    let (st, body) = common::reqwest::call(
        "POST",
        &format!("{}/webhooks/payments", daemon.base),
        &[
            ("webhook-id", "msg_x"),
            (
                "webhook-timestamp",
                &jiff::Timestamp::now().as_second().to_string(),
            ),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
            ),
        ],
        Some(&event),
    );
    assert_eq!(st, 401, "{body}");
    assert_eq!(body["error"]["code"], "bad_signature");

    let (_, inv) = daemon.api("GET", "/v1/invoices/inv-1", None);
    assert_eq!(inv["invoice"]["status"], "paid");
    assert_eq!(inv["invoice"]["balance"], "0");
    assert!(inv["next_reminder"].is_null(), "{inv}");
    assert!(
        inv["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["outcome"] == "cancelled"),
        "{inv}"
    );
    let timeline_before = inv["timeline"].clone();
    let (_, inv2_before) = daemon.api("GET", "/v1/invoices/inv-2", None);
    assert!(inv2_before["next_reminder"]["fire_at"].is_string());

    // Clean restart: SIGTERM exits 0, and everything is still there.
    assert_eq!(daemon.terminate(), Some(0));
    let daemon = Daemon::start_existing(dir.path(), port);
    let (_, inv) = daemon.api("GET", "/v1/invoices/inv-1", None);
    assert_eq!(inv["timeline"], timeline_before);
    assert_eq!(inv["invoice"]["status"], "paid");
    let (_, inv2_after) = daemon.api("GET", "/v1/invoices/inv-2", None);
    assert_eq!(inv2_after["next_reminder"], inv2_before["next_reminder"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        smtp.mails().len(),
        1,
        "nothing more may be sent after payment"
    );
}
