//! End to end through the real `plazo` binary: the collection layer. A client who breaks two
//! promises moves to the `dificil_cobro` segment by its rule (the timeline names the rule) and
//! its invoice follows that cadence; a hand-off posts `invoice.handed_off` to the ERP and to
//! the partner, each verified by a local receiver whose checks are proven on the official
//! Standard Webhooks vectors; and events that could not be delivered survive a SIGKILL and are
//! delivered after the restart, every one of them. A call task's `promise` outcome creates
//! the promise, and "ya pagué" by SMS (a signed Twilio inbound webhook) pauses the chase and
//! opens a review task.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests read the real clock: the daemon runs on it

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::receiver::{Delivery, Receiver, erp_secret, partner_secret, vectors};
use common::{Daemon, SmtpServer, free_port, test_policy, write, write_private};
use jiff::{SignedDuration, Timestamp};
use plazo::clock::SystemClock;
use plazo::inbound::standard_webhooks::{VerifyError, WebhookSecret, sign};
use serde_json::{Value, json};

/// Segments `standard` (the default), `phone` (a call task on the due date) and
/// `dificil_cobro` (two broken promises), promises with no grace, and two partners.
fn policy() -> String {
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("00:00", "24:00"),
        &["standard", "dificil_cobro"],
        &[
            common::firm_step("standard", "due_today", "0d", "due_today"),
            common::firm_step("standard", "firm_overdue", "+10d", "firm_overdue"),
            common::firm_step("dificil_cobro", "hard_due_today", "0d", "due_today"),
            common::firm_step("dificil_cobro", "hard_firm", "+2d", "firm_overdue"),
            common::firm_step("promise", "promise_tomorrow", "-1d", "promise_reminder"),
            common::firm_step("broken", "promise_broken", "0d", "promise_broken"),
            "[[cadences.phone.steps]]\nname = \"call_debtor\"\noffset = \"0d\"\naction = \"task\"\n\n"
                .to_owned(),
        ],
    );
    p = p.replacen(
        "[segments.dificil_cobro]\n",
        "[segments.phone]\ncadence = \"phone\"\n\n[segments.dificil_cobro]\n",
        1,
    );
    p = p.replacen(
        "[segments.dificil_cobro]\ncadence = \"dificil_cobro\"\n",
        "[segments.dificil_cobro]\ncadence = \"dificil_cobro\"\nwhen = \"client.facts.broken_promises >= 2\"\n",
        1,
    );
    p.push_str(
        "[promises]\ncadence = \"promise\"\ngrace = \"0d\"\nbroken_cadence = \"broken\"\n\n\
         [partners.cobranzas_norte]\nname = \"Cobranzas del Norte S.A.S.\"\n\n\
         [partners.juridico]\nname = \"Abogados Cartera Jurídica S.A.S.\"\n",
    );
    p
}

/// The daemon's config: SMTP to the local server, events to the receiver's `/erp`, hand-offs
/// to `juridico` also to `/juridico`; secrets in files, retries after a second.
fn config(dir: &Path, port: u16, smtp: std::net::SocketAddr, receiver: &Receiver) -> String {
    let erp = dir.join("erp.secret");
    let partner = dir.join("juridico.secret");
    write_private(&erp, &erp_secret());
    write_private(&partner, &partner_secret());
    format!(
        r#"
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
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

[events]
url = "{erp_url}"
secret = {{ file = "{erp}" }}
timeout_ms = 2000
backoff_base_secs = 1
backoff_max_secs = 1

[events.partners.juridico]
url = "{partner_url}"
secret = {{ file = "{partner}" }}
"#,
        smtp_port = smtp.port(),
        erp_url = receiver.url("/erp"),
        partner_url = receiver.url("/juridico"),
        erp = erp.display(),
        partner = partner.display(),
    )
}

/// A receiver checking `/erp` and `/juridico` with their secrets against the wall clock,
/// running on the helper runtime (the test itself is a plain thread driving the binary).
fn receiver() -> Receiver {
    common::reqwest::block_on(Receiver::start(
        Arc::new(SystemClock),
        &[("/erp", erp_secret()), ("/juridico", partner_secret())],
    ))
}

struct World {
    dir: tempfile::TempDir,
    port: u16,
    _smtp: SmtpServer,
    receiver: Receiver,
    daemon: Option<Daemon>,
}

impl World {
    fn start() -> World {
        let smtp = SmtpServer::start();
        let receiver = receiver();
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("policy.toml"), &policy());
        let port = free_port();
        let text = config(dir.path(), port, smtp.addr, &receiver);
        let daemon = Daemon::start(dir.path(), &text, port);
        World {
            dir,
            port,
            _smtp: smtp,
            receiver,
            daemon: Some(daemon),
        }
    }

    fn d(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let body = (!body.is_null()).then(|| body.to_string());
        let (st, v) = self.d().api(method, path, body.as_deref());
        assert!((200..300).contains(&st), "{method} {path}: {st} {v}");
        v
    }

    /// Polls `GET path` until `pred` holds (20 s at most).
    fn wait(&self, what: &str, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, v) = self.d().api("GET", path, None);
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < end,
                "{what}: not reached; last {v:#}\nlog:\n{}",
                self.d().log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Client `id` and an invoice `inv` of 1,000,000 COP due half an hour ago.
    fn debtor(&self, id: &str, inv: &str) {
        self.ok(
            "PUT",
            &format!("/v1/clients/{id}"),
            json!({"name": "María Pérez", "email": format!("{id}@cliente.example.co"),
                   "locale": "es-CO", "timezone": "America/Bogota", "country": "CO"}),
        );
        let due = Timestamp::now() - SignedDuration::from_mins(30);
        self.ok(
            "PUT",
            &format!("/v1/invoices/{inv}"),
            json!({"client_id": id, "number": format!("FV-{inv}"), "currency": "COP",
                   "amount": "1000000", "due_at": due.to_string()}),
        );
    }

    /// A promise for the whole balance, two seconds ahead; waits until it is broken.
    fn break_a_promise(&self, inv: &str, n: usize) {
        let date = (Timestamp::now() + SignedDuration::from_secs(2)).to_string();
        self.ok(
            "POST",
            &format!("/v1/invoices/{inv}/promises"),
            json!({"amount": "1000000", "date": date, "channel": "phone"}),
        );
        self.wait(
            &format!("promise {n} broken"),
            &format!("/v1/invoices/{inv}"),
            |v| v["invoice"]["arrangements"][n - 1]["state"] == "broken",
        );
    }
}

/// The receiver's checks hold on the official vectors: each is accepted as sent, refused
/// with a byte added, and plazo's signer reproduces it.
fn receiver_checks_hold_on_the_official_vectors() {
    for v in vectors() {
        let secret = WebhookSecret::parse(&v.secret).unwrap();
        assert_eq!(
            sign(&secret, &v.msg_id, v.timestamp, v.payload.as_bytes()),
            v.expected
        );
        let at = Timestamp::from_second(v.timestamp).unwrap();
        let r = common::reqwest::block_on(Receiver::start(
            Arc::new(plazo::clock::ManualClock::new(at)),
            &[("/in", v.secret.clone())],
        ));
        for (body, status) in [(v.payload.clone(), 200), (format!("{} ", v.payload), 401)] {
            let ts = v.timestamp.to_string();
            let (st, _) = common::reqwest::post_raw(
                &r.url("/in"),
                "application/json",
                &[
                    ("webhook-id", &v.msg_id),
                    ("webhook-timestamp", &ts),
                    ("webhook-signature", &v.expected),
                ],
                &body,
            );
            assert_eq!(st, status);
        }
        let seen = r.seen();
        assert_eq!(seen[0].verified, Ok(()));
        assert_eq!(seen[1].verified, Err(VerifyError::NoMatch));
    }
}

fn of_type<'a>(seen: &'a [Delivery], path: &str, kind: &str) -> Vec<&'a Delivery> {
    seen.iter()
        .filter(|d| d.path == path && d.json()["type"] == kind)
        .collect()
}

#[test]
fn two_broken_promises_move_the_client_to_dificil_cobro_and_a_hand_off_reaches_erp_and_partner() {
    receiver_checks_hold_on_the_official_vectors();
    let w = World::start();
    w.debtor("cli-1", "inv-1");
    let v = w.ok("GET", "/v1/invoices/inv-1", Value::Null);
    assert_eq!(v["invoice"]["followed"]["segment"], "standard", "{v:#}");

    // One broken promise: still standard.
    w.break_a_promise("inv-1", 1);
    let v = w.ok("GET", "/v1/clients/cli-1", Value::Null);
    assert_eq!(v["facts"]["broken_promises"], 1, "{v:#}");
    let v = w.ok("GET", "/v1/invoices/inv-1", Value::Null);
    assert_eq!(v["invoice"]["followed"]["segment"], "standard", "{v:#}");

    // The second: the rule matches, the invoice moves, and its next step is the new cadence's.
    w.break_a_promise("inv-1", 2);
    let v = w.wait("the move to dificil_cobro", "/v1/invoices/inv-1", |v| {
        v["invoice"]["followed"]["segment"] == "dificil_cobro"
    });
    let timeline = v["timeline"].to_string();
    assert!(
        timeline.contains("dificil_cobro")
            && timeline.contains("client.facts.broken_promises >= 2"),
        "the timeline names the segment and its rule: {timeline}"
    );
    let v = w.wait("the dificil_cobro step", "/v1/invoices/inv-1", |v| {
        v["next_reminder"]["step_name"] == "hard_firm"
    });
    assert!(v["next_reminder"]["track"].is_null(), "{v:#}");

    // The ERP heard both broken promises and the segment change, each signed.
    let seen = w
        .receiver
        .wait_until("promise.broken x2, client.segment_changed", |s| {
            of_type(s, "/erp", "promise.broken").len() == 2
                && of_type(s, "/erp", "client.segment_changed").len() == 1
        });
    let changed = of_type(&seen, "/erp", "client.segment_changed")[0];
    assert_eq!(changed.verified, Ok(()));
    let data = &changed.json()["data"];
    assert_eq!(data["invoice_id"], "inv-1", "{data}");
    assert!(data.to_string().contains("dificil_cobro"), "{data}");

    // The hand-off to the law firm: the ERP and the partner each get it, signed with their
    // own secret, with the same webhook-id.
    let v = w.ok(
        "POST",
        "/v1/invoices/inv-1/hand-off",
        json!({"partner": "juridico", "reason": "two promises broken"}),
    );
    assert_eq!(v["invoice"]["status"], "handed_off", "{v:#}");
    let seen = w
        .receiver
        .wait_until("invoice.handed_off at /erp and /juridico", |s| {
            !of_type(s, "/erp", "invoice.handed_off").is_empty()
                && !of_type(s, "/juridico", "invoice.handed_off").is_empty()
        });
    let erp = of_type(&seen, "/erp", "invoice.handed_off")[0];
    let partner = of_type(&seen, "/juridico", "invoice.handed_off")[0];
    for d in [erp, partner] {
        assert_eq!(d.verified, Ok(()), "{d:?}");
        let data = &d.json()["data"];
        assert_eq!(data["invoice_id"], "inv-1");
        assert_eq!(data["partner"], "juridico");
        assert_eq!(data["partner_name"], "Abogados Cartera Jurídica S.A.S.");
        assert_eq!(data["reason"], "two promises broken");
        assert_eq!(data["balance"], "1000000.00");
        assert_eq!(data["status"], "handed_off");
    }
    // A partner's copy is a delivery of its own: its own id and event record.
    assert_ne!(erp.id, partner.id);
    // Nothing is left undelivered (the daemon records a delivery once the receiver's answer
    // is back, which may be just after the receiver saw it).
    w.wait("no event pending", "/v1/events?state=pending", |v| {
        v == &json!([])
    });
}

#[test]
fn a_sigkill_with_events_undelivered_loses_none() {
    let mut w = World::start();
    // The ERP is down: every delivery fails, and is retried.
    w.receiver.answer(&[], 503);
    w.debtor("cli-1", "inv-1");
    w.debtor("cli-2", "inv-2");
    w.ok(
        "POST",
        "/v1/invoices/inv-1/hand-off",
        json!({"partner": "cobranzas_norte"}),
    );
    w.ok(
        "POST",
        "/v1/invoices/inv-2/write-off",
        json!({"reason": "insolvent"}),
    );
    w.ok(
        "POST",
        "/v1/invoices/inv-2/recall",
        json!({"reason": "new owner pays"}),
    );
    // Wait until each was tried and failed at least once: they are pending, undelivered.
    let pending = w.wait(
        "three events tried and failed",
        "/v1/events?state=pending",
        |v| {
            v.as_array().is_some_and(|a| {
                a.len() == 3 && a.iter().all(|e| e["attempts"].as_u64().unwrap_or(0) >= 1)
            })
        },
    );
    let ids: BTreeSet<String> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let kinds: BTreeSet<&str> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "invoice.handed_off",
            "invoice.recalled",
            "invoice.written_off"
        ])
    );
    assert!(w.receiver.seen().iter().all(|d| d.verified.is_ok()));

    // SIGKILL, then the ERP comes back and the daemon restarts on the same data.
    w.daemon.take().unwrap().kill();
    w.receiver.answer(&[], 200);
    w.daemon = Some(Daemon::start_existing(w.dir.path(), w.port));
    let seen = w.receiver.wait_until("every pending event delivered", |s| {
        ids.iter().all(|id| {
            s.iter()
                .any(|d| &d.id == id && d.status == 200 && d.path == "/erp")
        })
    });
    // Each was delivered with its stable id and the same body it was first sent with.
    for id in &ids {
        let copies: Vec<&Delivery> = seen.iter().filter(|d| &d.id == id).collect();
        assert!(
            copies.iter().any(|d| d.status == 503) && copies.iter().any(|d| d.status == 200),
            "{id} was refused before the kill and delivered after: {copies:?}"
        );
        assert!(copies.iter().all(|d| d.verified.is_ok()), "{copies:?}");
        assert!(copies.windows(2).all(|p| p[0].body == p[1].body), "{id}");
    }
    w.wait("no event left pending", "/v1/events?state=pending", |v| {
        v == &json!([])
    });
    let v = w.ok("GET", "/v1/events?state=delivered", Value::Null);
    let delivered: BTreeSet<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.is_subset(&delivered), "{ids:?} vs {delivered:?}");
}

/// Sends a Twilio inbound SMS to the daemon, signed with its auth token over its public URL.
fn sms_from(d: &Daemon, from: &str, sid: &str, body: &str) -> (u16, String) {
    let url = format!("{}/webhooks/twilio/inbound", d.base);
    let params: Vec<(String, String)> = [
        ("MessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", from),
        ("To", "+15005550006"),
        ("Body", body),
        ("NumMedia", "0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let sig = plazo::inbound::twilio::expected_signature(common::TWILIO_TOKEN, &url, &params);
    common::reqwest::post_form(&url, &[("X-Twilio-Signature", &sig)], &params)
}

#[test]
fn a_call_task_promise_creates_the_promise_and_ya_pague_by_sms_pauses_the_chase() {
    let w = World::start();
    w.ok(
        "PUT",
        "/v1/clients/cli-1",
        json!({"name": "María Pérez", "email": "maria@cliente.example.co",
               "phone": "+573001234567", "segment": "phone", "locale": "es-CO",
               "timezone": "America/Bogota", "country": "CO"}),
    );
    let due = Timestamp::now() + SignedDuration::from_secs(2);
    for inv in ["inv-1", "inv-2"] {
        w.ok(
            "PUT",
            &format!("/v1/invoices/{inv}"),
            json!({"client_id": "cli-1", "number": format!("FV-{inv}"), "currency": "COP",
                   "amount": "1000000", "due_at": due.to_string()}),
        );
    }

    // On the due date the call step opens one task per invoice, in the queue.
    let tasks = w.wait("two call tasks", "/v1/tasks?state=open", |v| {
        v["tasks"].as_array().is_some_and(|a| a.len() == 2)
    });
    let task = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["invoice_id"] == "inv-1")
        .unwrap()
        .clone();
    assert_eq!(task["kind"], "call", "{task}");
    let id = task["id"].as_str().unwrap();
    w.ok(
        "POST",
        &format!("/v1/tasks/{id}/claim"),
        json!({"agent": "laura"}),
    );
    // Another agent cannot take it; a result that does not exist changes nothing.
    let (st, v) = w.d().api(
        "POST",
        &format!("/v1/tasks/{id}/claim"),
        Some(&json!({"agent": "pedro"}).to_string()),
    );
    assert_eq!(st, 409, "{v}");
    let (st, v) = w.d().api(
        "POST",
        &format!("/v1/tasks/{id}/outcome"),
        Some(&json!({"result": "maybe"}).to_string()),
    );
    assert_eq!(st, 422, "{v}");
    // The debtor promises on the phone: the promise exists, the task is done.
    let promised = (Timestamp::now() + SignedDuration::from_hours(72)).to_string();
    w.ok(
        "POST",
        &format!("/v1/tasks/{id}/outcome"),
        json!({"result": "promise", "note": "paga el jueves",
               "promise": {"amount": "1000000", "date": promised}}),
    );
    let v = w.ok("GET", "/v1/invoices/inv-1", Value::Null);
    let arr = &v["invoice"]["arrangements"][0];
    assert_eq!(arr["state"], "active", "{v:#}");
    assert_eq!(arr["instalments"][0]["amount"], "1000000", "{v:#}");
    assert!(v["timeline"].to_string().contains("laura"), "{v:#}");
    let v = w.ok("GET", &format!("/v1/tasks/{id}"), Value::Null);
    assert_eq!(v["state"], "done", "{v:#}");
    assert_eq!(v["result"], "promise", "{v:#}");

    // "Ya pagué" by SMS: every open invoice of the client pauses, one review task opens.
    let (st, body) = sms_from(
        w.d(),
        "+573001234567",
        "SM0000000000000000000000000000ya01",
        "¡Ya pagué! Gracias",
    );
    assert_eq!(st, 200, "{body}");
    for inv in ["inv-1", "inv-2"] {
        let v = w.wait("the pause", &format!("/v1/invoices/{inv}"), |v| {
            v["invoice"]["pause"]["reason"] == "debtor_says_paid"
        });
        assert!(
            v["next_reminder"].is_null(),
            "a paused invoice has no reminder: {v:#}"
        );
    }
    let v = w.ok("GET", "/v1/tasks?state=open&kind=review", Value::Null);
    let reviews = v["tasks"].as_array().unwrap();
    assert_eq!(reviews.len(), 1, "{v:#}");
    assert_eq!(reviews[0]["client_id"], "cli-1");
    // The same message delivered again by Twilio changes nothing.
    let (st, _) = sms_from(
        w.d(),
        "+573001234567",
        "SM0000000000000000000000000000ya01",
        "¡Ya pagué! Gracias",
    );
    assert_eq!(st, 200);
    let v = w.ok("GET", "/v1/tasks?state=open&kind=review", Value::Null);
    assert_eq!(v["tasks"].as_array().unwrap().len(), 1, "{v:#}");
    // The ERP heard of the tasks.
    w.receiver.wait_until("task.created x3", |s| {
        of_type(s, "/erp", "task.created").len() == 3
    });
}
