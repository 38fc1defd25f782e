//! Hostile client data and misbehaving channels cannot lose a reminder (issue 9, items 1, 7, 9):
//! a panic in a send task is recorded as a failure and the chase goes on; names with CR, LF or
//! NUL stored before validation still go out over real SMTP; the API refuses them with a JSON
//! 422 and changes nothing; a client update cannot overwrite a concurrent broken promise; and
//! a new time zone or segment re-plans pending reminders. Driven under a manual clock.

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::rec::RecChannel;
use common::sim::{Sim, SimOptions, ts};
use common::{SmtpServer, step, test_policy};
use futures::future::BoxFuture;
use plazo::channels::ratelimit::SharedLimiter;
use plazo::channels::{Channel, ChannelError, Outbound, Receipt, SharedChannel};
use plazo::clock::Clock;
use plazo::config::DispatchConfig;
use plazo::dispatch::send_task_panics;
use plazo::domain::{AttemptOutcome, Client, ClientId, ReminderState};
use plazo::service::{ClientInput, upsert_client};
use plazo::store::TxError;

// ---------------------------------------------------------------------------------------------
// Harness.

fn policy_text() -> String {
    test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard", "vip", "solo"],
        &[
            step("standard", "courtesy", "-3d", None, &["email"]),
            step("standard", "due_today", "0d", None, &["email", "sms"]),
            step("standard", "friendly_overdue", "+3d", None, &["email"]),
            step("standard", "firm_overdue", "+10d", None, &["email"]),
            step("vip", "due_today", "0d", Some("11:00"), &["email"]),
            step("vip", "firm_overdue", "+20d", None, &["email"]),
            step("solo", "due_today", "0d", None, &["email"]),
            step("solo", "firm_overdue", "+3d", None, &["email"]),
        ],
    )
}

/// A channel that panics inside its send future.
struct PanicOnSend;

impl Channel for PanicOnSend {
    fn name(&self) -> &str {
        "panicky"
    }
    fn adapter(&self) -> &'static str {
        "test"
    }
    fn send<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>> {
        Box::pin(async move { panic!("adapter bug while sending to {}", msg.to) })
    }
}

/// A channel that panics before any send starts (when asked for its rate limiter), i.e.
/// outside the guarded send call: the reminder-level guard must catch it.
struct PanicOnLimiter;

impl Channel for PanicOnLimiter {
    fn name(&self) -> &str {
        "panicky-limiter"
    }
    fn adapter(&self) -> &'static str {
        "test"
    }
    fn rate_limiter(&self) -> Option<&SharedLimiter> {
        panic!("limiter bug")
    }
    fn send<'a>(&'a self, _msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>> {
        Box::pin(async move { Ok(Receipt::default()) })
    }
}

/// The shared manual-clock harness ([`Sim`]) on [`policy_text`], with `email` behind the email
/// route and, when given, `sms` behind the SMS route (no SMS route otherwise); the dispatcher's
/// default number of attempts.
fn harness(now: &str, email: SharedChannel, sms: Option<RecChannel>) -> Sim {
    let options = SimOptions {
        email: Some(email),
        sms_route: sms.is_some(),
        sms: sms.unwrap_or_else(|| RecChannel::new("rec-sms")),
        max_attempts: DispatchConfig::default().max_attempts,
        ..SimOptions::default()
    };
    Sim::with(&policy_text(), now, options)
}

/// What these tests need besides [`Sim`]'s own helpers.
trait Hostile {
    /// `PUT /v1/clients/{id}` through the service, the refusal as text.
    fn put_client(&self, id: &str, json: serde_json::Value) -> Result<Client, String>;
    /// Writes a client record as an older version might have stored it (no validation).
    fn store_raw_client(&self, id: &str, name: &str, email: &str);
}

impl Hostile for Sim {
    fn put_client(&self, id: &str, json: serde_json::Value) -> Result<Client, String> {
        let input: ClientInput = serde_json::from_value(json).map_err(|e| e.to_string())?;
        let p = self.policy.current();
        upsert_client(
            &self.store,
            &p.policy,
            &ClientId::new(id).unwrap(),
            input,
            self.clock.now(),
        )
        .map(|(c, _)| c)
        .map_err(|e| e.to_string())
    }
    fn store_raw_client(&self, id: &str, name: &str, email: &str) {
        let mut c = self
            .put_client(
                id,
                serde_json::json!({"name": "placeholder", "email": email}),
            )
            .unwrap();
        c.name = name.to_owned();
        self.store
            .transaction(|tx| {
                tx.put_client(&c)?;
                Ok::<_, TxError<std::convert::Infallible>>(())
            })
            .unwrap()
            .unwrap();
    }
}

// Due 2026-03-16 (Monday) in America/Bogota (UTC-5), send_at 09:00 local = 14:00Z:
// courtesy 03-13T14:00Z, due_today 03-16T14:00Z, friendly 03-19T14:00Z, firm 03-26T14:00Z.

// ---------------------------------------------------------------------------------------------
// Item 1: a panic in a send task.

#[tokio::test]
async fn a_channel_that_panics_is_a_recorded_failure_and_the_chase_goes_on() {
    let sms = RecChannel::new("rec-sms");
    let h = harness(
        "2026-03-01T12:00:00Z",
        Arc::new(PanicOnSend),
        Some(sms.clone()),
    );
    h.put_client(
        "cli-1",
        serde_json::json!({"name": "Ana", "email": "ana@cliente.example.co",
                           "phone": "+573001234567", "timezone": "America/Bogota"}),
    )
    .unwrap();
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    let panics = send_task_panics();

    // courtesy (email only): the panic fails the step, the next one is planned.
    assert_eq!(h.at("2026-03-13T14:00:00Z").await, 1);
    let failed: Vec<_> = h
        .timeline("inv-1")
        .into_iter()
        .filter(|a| a.outcome == AttemptOutcome::Failed)
        .collect();
    assert!(
        failed.iter().any(|a| a.channel.as_deref() == Some("email")
            && a.detail.as_deref().unwrap_or("").contains("panicked")
            && a.detail.as_deref().unwrap_or("").contains("adapter bug")),
        "{failed:#?}"
    );
    assert!(h.store.in_flight().unwrap().is_empty(), "left in flight");
    let next = h.pending("inv-1").expect("the chase must go on");
    assert_eq!(next.step_name, "due_today");
    assert_eq!(next.state, ReminderState::Scheduled);
    assert!(send_task_panics() > panics, "the panic metric must rise");

    // due_today (email, then sms): the panicking email falls back to sms.
    assert_eq!(h.at("2026-03-16T14:00:00Z").await, 1);
    assert_eq!(sms.sent().len(), 1);
    let r = h
        .store
        .reminder(&next.invoice_id, &next.id)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, ReminderState::Sent);
    assert_eq!(h.pending("inv-1").unwrap().step_name, "friendly_overdue");
    assert!(h.store.in_flight().unwrap().is_empty());
}

#[tokio::test]
async fn a_panic_outside_the_send_call_is_recorded_and_the_next_step_planned() {
    let h = harness("2026-03-01T12:00:00Z", Arc::new(PanicOnLimiter), None);
    h.put_client(
        "cli-1",
        serde_json::json!({"name": "Ana", "email": "ana@cliente.example.co", "segment": "solo"}),
    )
    .unwrap();
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    let first = h.pending("inv-1").unwrap();
    let panics = send_task_panics();

    assert_eq!(h.at("2026-03-16T14:00:00Z").await, 1);
    let r = h
        .store
        .reminder(&first.invoice_id, &first.id)
        .unwrap()
        .unwrap();
    assert_eq!(r.state, ReminderState::Failed);
    let line = h
        .timeline("inv-1")
        .into_iter()
        .find(|a| a.reminder_id == Some(first.id) && a.outcome == AttemptOutcome::Failed)
        .expect("a failed line for the reminder");
    assert!(
        line.detail.as_deref().unwrap().contains("limiter bug"),
        "{line:?}"
    );
    assert!(h.store.in_flight().unwrap().is_empty(), "left in flight");
    assert_eq!(h.pending("inv-1").unwrap().step_name, "firm_overdue");
    assert!(send_task_panics() > panics);
}

#[tokio::test]
async fn the_panic_counter_is_exposed_at_metrics() {
    let h = harness("2026-03-01T12:00:00Z", Arc::new(PanicOnSend), None);
    h.put_client(
        "cli-1",
        serde_json::json!({"name": "Ana", "email": "ana@cliente.example.co", "segment": "solo"}),
    )
    .unwrap();
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    assert_eq!(h.at("2026-03-16T14:00:00Z").await, 1);
    let base = serve(&h).await;
    let body = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("plazo_send_task_panics_total "))
        .unwrap_or_else(|| panic!("metric missing:\n{body}"))
        .parse()
        .unwrap();
    assert!(value >= 1, "{body}");
    assert!(body.contains("# TYPE plazo_send_task_panics_total counter"));
}

/// Builds the real SMTP channel towards `smtp`.
fn smtp_channel(smtp: std::net::SocketAddr, dir: &std::path::Path) -> SharedChannel {
    let toml = format!(
        "type = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\n\
         from = \"Cartera <cartera@example.co>\"\ntimeout = \"5s\"\n",
        smtp.port()
    );
    let cfg: plazo::channels::config::ChannelConfig = toml::from_str(&toml).unwrap();
    let ctx = plazo::channels::BuildContext {
        data_dir: dir.to_owned(),
        env: Arc::new(|_| None),
        public_url: None,
        limiters: Default::default(),
        clock: Arc::new(plazo::clock::SystemClock),
    };
    cfg.build("mail", &ctx).unwrap()
}

#[tokio::test]
async fn names_with_cr_lf_nul_stored_before_validation_still_go_out_over_smtp() {
    let smtp = SmtpServer::start();
    let chdir = tempfile::tempdir().unwrap();
    let h = harness(
        "2026-03-01T12:00:00Z",
        smtp_channel(smtp.addr, chdir.path()),
        None,
    );
    let names = [
        ("c-crlf", "Ana\r\nBcc: victim@evil.example"),
        ("c-lf", "Ana\nB"),
        ("c-nul", "Ana\0B"),
        ("c-only", "\r\n\0"),
    ];
    for (i, (id, name)) in names.iter().enumerate() {
        h.store_raw_client(id, name, &format!("{id}@cliente.example.co"));
        h.put_client(
            id,
            serde_json::json!({"name": "x", "email": "y@z.co", "segment": "solo"}),
        )
        .map(|_| ())
        .unwrap();
        // Back to the hostile record, now in segment "solo".
        let mut c = h
            .store
            .client(&ClientId::new(*id).unwrap())
            .unwrap()
            .unwrap();
        c.name = (*name).to_owned();
        c.email = Some(format!("{id}@cliente.example.co"));
        h.store
            .transaction(|tx| {
                tx.put_client(&c)?;
                Ok::<_, TxError<std::convert::Infallible>>(())
            })
            .unwrap()
            .unwrap();
        h.invoice_due(&format!("inv-{i}"), id, "2026-03-16");
    }
    assert_eq!(h.at("2026-03-16T14:00:00Z").await, names.len());
    let mails = smtp.wait_for(names.len(), Duration::from_secs(10));
    assert_eq!(mails.len(), names.len(), "{mails:#?}");
    for m in &mails {
        let head = m.data.split("\r\n\r\n").next().unwrap();
        assert!(!head.contains('\0'), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("\r\nbcc:"),
            "header injected: {head}"
        );
        assert_eq!(m.to.len(), 1, "{:?}", m.to);
    }
    for i in 0..names.len() {
        let sent: Vec<_> = h
            .timeline(&format!("inv-{i}"))
            .into_iter()
            .filter(|a| a.outcome == AttemptOutcome::Sent)
            .collect();
        assert_eq!(
            sent.len(),
            1,
            "inv-{i}: {:#?}",
            h.timeline(&format!("inv-{i}"))
        );
        assert_eq!(
            h.pending(&format!("inv-{i}")).unwrap().step_name,
            "firm_overdue"
        );
    }
    assert!(h.store.in_flight().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Item 7: no lost update of credits and broken promises.

#[test]
fn a_client_update_never_overwrites_a_concurrent_broken_promise() {
    let h = harness("2026-03-01T12:00:00Z", Arc::new(PanicOnSend), None);
    h.put_client("cli-1", serde_json::json!({"name": "Ana"}))
        .unwrap();
    let id = ClientId::new("cli-1").unwrap();
    const N: u32 = 300;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..N {
                h.put_client("cli-1", serde_json::json!({"name": format!("Ana {i}")}))
                    .unwrap();
            }
        });
        s.spawn(|| {
            for _ in 0..N {
                // What a broken promise does to the client, in its own transaction.
                h.store
                    .transaction(|tx| {
                        let mut c = tx.client(&id)?.unwrap();
                        c.broken_promises += 1;
                        tx.put_client(&c)?;
                        Ok::<_, TxError<std::convert::Infallible>>(())
                    })
                    .unwrap()
                    .unwrap();
            }
        });
    });
    let c = h.store.client(&id).unwrap().unwrap();
    assert_eq!(c.broken_promises, N, "broken promises were lost");
}

// ---------------------------------------------------------------------------------------------
// Item 9: a new time zone or segment re-plans pending reminders.

fn sent_steps(rec: &RecChannel) -> Vec<String> {
    rec.sent().into_iter().map(|m| m.step).collect()
}

#[tokio::test]
async fn a_new_time_zone_replans_pending_reminders_without_resending_or_sending_the_past() {
    let email = RecChannel::new("rec-email");
    let h = harness("2026-03-01T12:00:00Z", Arc::new(email.clone()), None);
    let body = |tz: &str| serde_json::json!({"name": "Ana", "email": "ana@cliente.example.co", "timezone": tz});
    h.put_client("cli-1", body("America/Bogota")).unwrap();
    assert_eq!(
        h.invoice_due("inv-1", "cli-1", "2026-03-16"),
        Some(ts("2026-03-13T14:00:00Z"))
    );

    // Madrid (UTC+1 in March): courtesy at 09:00 local = 08:00Z.
    h.put_client("cli-1", body("Europe/Madrid")).unwrap();
    let p = h.pending("inv-1").unwrap();
    assert_eq!(
        (p.step_name.as_str(), p.fire_at),
        ("courtesy", ts("2026-03-13T08:00:00Z"))
    );
    assert_eq!(
        h.store.next_due().unwrap(),
        Some(ts("2026-03-13T08:00:00Z"))
    );
    assert!(
        h.timeline("inv-1").iter().any(|a| a
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("time zone or segment changed")),
        "the re-plan is on the timeline"
    );
    assert_eq!(h.at("2026-03-13T08:00:00Z").await, 1);
    assert_eq!(h.at("2026-03-16T08:00:00Z").await, 1);
    assert_eq!(sent_steps(&email), ["courtesy", "due_today"]);

    // Back to Bogota: due_today would be at 14:00Z today, still ahead, but it was sent.
    h.clock.set(ts("2026-03-16T10:00:00Z"));
    h.put_client("cli-1", body("America/Bogota")).unwrap();
    let p = h.pending("inv-1").unwrap();
    assert_eq!(
        (p.step_name.as_str(), p.fire_at),
        ("friendly_overdue", ts("2026-03-19T14:00:00Z"))
    );
    assert_eq!(h.at("2026-03-16T14:00:00Z").await, 0, "nothing sent twice");

    // Madrid again at 13:00Z on the 19th: friendly (09:00 Madrid = 08:00Z) has passed there;
    // it is caught up now, not scheduled in the past, and sent once.
    h.clock.set(ts("2026-03-19T13:00:00Z"));
    h.put_client("cli-1", body("Europe/Madrid")).unwrap();
    let p = h.pending("inv-1").unwrap();
    assert_eq!(p.step_name, "friendly_overdue");
    assert!(
        p.fire_at >= h.clock.now(),
        "planned in the past: {}",
        p.fire_at
    );
    assert_eq!(h.at("2026-03-19T13:00:00Z").await, 1);
    assert_eq!(h.at("2026-03-19T14:00:00Z").await, 0);
    assert_eq!(
        sent_steps(&email),
        ["courtesy", "due_today", "friendly_overdue"]
    );
    let p = h.pending("inv-1").unwrap();
    assert_eq!(
        (p.step_name.as_str(), p.fire_at),
        ("firm_overdue", ts("2026-03-26T08:00:00Z"))
    );

    // An update that changes neither zone nor segment leaves the plan alone.
    let before = h.timeline("inv-1").len();
    let mut same = body("Europe/Madrid");
    same["name"] = "Ana María".into();
    h.put_client("cli-1", same).unwrap();
    assert_eq!(
        h.pending("inv-1").unwrap().fire_at,
        ts("2026-03-26T08:00:00Z")
    );
    assert_eq!(h.timeline("inv-1").len(), before);
}

#[tokio::test]
async fn a_new_segment_or_segment_tag_replans_with_its_cadence() {
    let email = RecChannel::new("rec-email");
    let h = harness("2026-03-01T12:00:00Z", Arc::new(email.clone()), None);
    h.put_client(
        "cli-1",
        serde_json::json!({"name": "Ana", "email": "ana@cliente.example.co"}),
    )
    .unwrap();
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    h.invoice_due("inv-2", "cli-1", "2026-04-16");
    assert_eq!(h.pending("inv-1").unwrap().cadence, "standard");

    // A tag naming a segment selects it: the vip cadence (due_today at 11:00 local = 16:00Z).
    h.put_client(
        "cli-1",
        serde_json::json!({"name": "Ana", "email": "ana@cliente.example.co", "tags": ["vip"]}),
    )
    .unwrap();
    for (inv, at) in [
        ("inv-1", "2026-03-16T16:00:00Z"),
        ("inv-2", "2026-04-16T16:00:00Z"),
    ] {
        let p = h.pending(inv).unwrap();
        assert_eq!(
            (p.cadence.as_str(), p.step_name.as_str(), p.fire_at),
            ("vip", "due_today", ts(at)),
            "{inv}"
        );
    }
    // Only the re-planned reminders are due: the old courtesy step never fires.
    assert_eq!(h.at("2026-03-13T14:00:00Z").await, 0);
    assert_eq!(h.at("2026-03-16T16:00:00Z").await, 1);
    assert_eq!(sent_steps(&email), ["due_today"]);
    // Segment named directly.
    h.put_client(
        "cli-1",
        serde_json::json!({"name": "Ana", "email": "ana@cliente.example.co", "segment": "solo"}),
    )
    .unwrap();
    let p = h.pending("inv-2").unwrap();
    assert_eq!(
        (p.cadence.as_str(), p.fire_at),
        ("solo", ts("2026-04-16T14:00:00Z"))
    );
}

// ---------------------------------------------------------------------------------------------
// Item 1 at the API, and the client body fuzzed through the real router.

async fn serve(h: &Sim) -> String {
    let state = plazo::http::AppState::new(plazo::http::AppParts {
        store: h.store.clone(),
        policy: h.policy.clone(),
        clock: Arc::new(h.clock.clone()),
        wake: Arc::new(plazo::dispatch::Wake::default()),
        api_token: Arc::from(common::TOKEN),
        payment_secret: None,
        webhook_tolerance: Duration::from_secs(300),
        ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        providers: Arc::default(),
        simulation: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = plazo::http::router(state, &plazo::config::HttpConfig::default());
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn put(base: &str, id: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .put(format!("{base}/v1/clients/{id}"))
        .bearer_auth(common::TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, json)
}

#[tokio::test]
async fn the_api_refuses_control_characters_and_oversized_fields_and_changes_nothing() {
    let h = harness("2026-03-01T12:00:00Z", Arc::new(PanicOnSend), None);
    let base = serve(&h).await;
    let good =
        serde_json::json!({"name": "Ana", "email": "ana@cliente.example.co", "tags": ["vip"]});
    let (st, _) = put(&base, "cli-1", &good.to_string()).await;
    assert_eq!(st, 201);
    let stored = h.store.client(&ClientId::new("cli-1").unwrap()).unwrap();

    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("name", serde_json::json!({"name": "Ana\nB"})),
        ("name", serde_json::json!({"name": "Ana\r\nBcc: x@y.co"})),
        ("name", serde_json::json!({"name": "Ana\u{0}B"})),
        ("name", serde_json::json!({"name": "Ana\u{2028}B"})),
        ("name", serde_json::json!({"name": "x".repeat(10_000)})),
        ("name", serde_json::json!({"name": "é".repeat(201)})),
        (
            "email",
            serde_json::json!({"name": "Ana", "email": "ana@x.co\r\nBcc: y@z.co"}),
        ),
        (
            "tags[1]",
            serde_json::json!({"name": "Ana", "tags": ["ok", "a\nb"]}),
        ),
        ("tags[0]", serde_json::json!({"name": "Ana", "tags": [""]})),
        (
            "tags[0]",
            serde_json::json!({"name": "Ana", "tags": ["t".repeat(65)]}),
        ),
        (
            "tags",
            serde_json::json!({"name": "Ana", "tags": vec!["t"; 33]}),
        ),
        (
            "preferred_channels",
            serde_json::json!({"name": "Ana", "preferred_channels": vec!["email"; 9]}),
        ),
        (
            "segment",
            serde_json::json!({"name": "Ana", "segment": "vip\n"}),
        ),
        (
            "timezone",
            serde_json::json!({"name": "Ana", "timezone": "America/Bogota\u{0}"}),
        ),
        (
            "locale",
            serde_json::json!({"name": "Ana", "locale": "es\r\n"}),
        ),
        (
            "phone",
            serde_json::json!({"name": "Ana", "phone": "+573001234567\n"}),
        ),
    ];
    for (field, body) in cases {
        let (st, err) = put(&base, "cli-1", &body.to_string()).await;
        assert_eq!(st, 422, "{body}: {err}");
        assert_eq!(err["error"]["code"], "invalid", "{err}");
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{field}:")), "{field}: {msg}");
        assert_eq!(
            h.store.client(&ClientId::new("cli-1").unwrap()).unwrap(),
            stored,
            "a refused body changed the client"
        );
    }
    // Right-to-left marks and non-Latin scripts are names, not attacks.
    let (st, c) = put(
        &base,
        "cli-1",
        &serde_json::json!({"name": "\u{200f}مريم\u{200e} Ана"}).to_string(),
    )
    .await;
    assert_eq!(st, 200, "{c}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    pub(super) fn hostile_string() -> impl Strategy<Value = String> {
        prop_oneof![
            "(\\PC|[\r\n\0\t\u{2028}\u{2029}\u{200e}\u{200f}\u{202e}\u{7f}\u{85}])*",
            any::<String>(),
            Just("x".repeat(10_000)),
            Just("\u{200f}".repeat(300)),
            Just(String::new()),
        ]
    }

    fn body() -> impl Strategy<Value = serde_json::Value> {
        (
            hostile_string(),
            proptest::option::of(hostile_string()),
            proptest::option::of(hostile_string()),
            proptest::option::of(hostile_string()),
            proptest::option::of(hostile_string()),
            proptest::option::of(prop_oneof![hostile_string(), Just("vip".to_owned())]),
            proptest::collection::vec(hostile_string(), 0..40),
            proptest::collection::vec(
                prop_oneof![hostile_string(), Just("email".to_owned())],
                0..10,
            ),
        )
            .prop_map(|(name, email, phone, tz, locale, segment, tags, chans)| {
                let mut v =
                    serde_json::json!({"name": name, "tags": tags, "preferred_channels": chans});
                for (k, x) in [
                    ("email", email),
                    ("phone", phone),
                    ("timezone", tz),
                    ("locale", locale),
                    ("segment", segment),
                ] {
                    if let Some(x) = x {
                        v[k] = x.into();
                    }
                }
                v
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn client_put_never_panics_and_refusals_change_nothing(body in body()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let h = harness("2026-03-01T12:00:00Z", Arc::new(PanicOnSend), None);
                let base = serve(&h).await;
                let (st, _) = put(&base, "cli-1", &serde_json::json!({"name": "Ana"}).to_string()).await;
                assert_eq!(st, 201);
                let id = ClientId::new("cli-1").unwrap();
                let before = h.store.client(&id).unwrap();
                let (st, resp) = put(&base, "cli-1", &body.to_string()).await;
                match st {
                    200 => {
                        let c = h.store.client(&id).unwrap().unwrap();
                        for s in std::iter::once(&c.name).chain(&c.tags).chain(c.email.iter()) {
                            assert!(!s.chars().any(char::is_control), "stored {s:?}");
                        }
                    }
                    400..=499 => {
                        assert!(resp["error"]["code"].is_string(), "{resp}");
                        assert!(resp["error"]["message"].is_string(), "{resp}");
                        assert_eq!(h.store.client(&id).unwrap(), before, "refusal changed state");
                    }
                    _ => panic!("{st}: {resp} for {body}"),
                }
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Every shipped template rendered with hostile client data.

mod templates_fuzz {
    use super::*;
    use plazo::channels::email::{MessageSettings, build_message, format_message};
    use plazo::templates::{StepInfo, message_context};
    use proptest::prelude::*;

    /// Renders every template of every locale for every kind with a client named `name`;
    /// email messages are built and their headers checked. Returns how many rendered.
    fn render_all(h: &Sim, name: &str) -> usize {
        let loaded = h.policy.current();
        let settings =
            MessageSettings::new("Cartera <cartera@example.co>", None, None, None).unwrap();
        let mut client = h
            .store
            .client(&ClientId::new("cli-1").unwrap())
            .unwrap()
            .unwrap();
        client.name = name.to_owned();
        client.tags = vec![name.to_owned()];
        let invoice = h.inv("inv-1");
        let zone = jiff::tz::TimeZone::get("America/Bogota").unwrap();
        let mut rendered = 0;
        for template in loaded.templates.names() {
            for locale in loaded.templates.locales() {
                let step = StepInfo {
                    name: template.clone(),
                    tone: "firm".into(),
                    index: 1,
                };
                let ctx = message_context(
                    &client,
                    &invoice,
                    &loaded.policy.company,
                    &step,
                    &locale,
                    &zone,
                    h.clock.now(),
                );
                for kind in ["email", "sms", "whatsapp", "webhook"] {
                    let Ok(r) = loaded.templates.render(&template, &locale, kind, &ctx) else {
                        continue;
                    };
                    rendered += 1;
                    if let Some(s) = &r.subject {
                        assert!(
                            !s.contains(['\r', '\n']),
                            "{template}/{locale}: subject {s:?}"
                        );
                    }
                    if kind != "email" {
                        continue;
                    }
                    let msg = Outbound {
                        reminder_id: plazo::domain::ReminderId::derive(&invoice.id, 0, 1),
                        invoice_id: invoice.id.clone(),
                        client_id: client.id.clone(),
                        kind: kind.to_owned(),
                        to: "ana@cliente.example.co".to_owned(),
                        to_name: client.name.clone(),
                        subject: r.subject.clone(),
                        text: r.text.clone(),
                        html: r.html.clone(),
                        step: template.clone(),
                        tone: "firm".into(),
                        locale: r.locale.clone(),
                        unsubscribe_url: None,
                        whatsapp: None,
                    };
                    let m = build_message(&settings, &msg)
                        .unwrap_or_else(|e| panic!("{template}/{locale}: {e}"));
                    let raw = String::from_utf8(format_message(&m).unwrap()).unwrap();
                    let head = raw.split("\r\n\r\n").next().unwrap();
                    for line in head.split("\r\n") {
                        assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
                        assert!(
                            line.starts_with([' ', '\t']) || line.contains(':'),
                            "{template}/{locale}: not a header line {line:?}"
                        );
                        assert!(
                            !line.to_ascii_lowercase().starts_with("bcc:"),
                            "header injected: {head}"
                        );
                    }
                }
            }
        }
        rendered
    }

    fn setup() -> Sim {
        let h = harness("2026-03-01T12:00:00Z", Arc::new(PanicOnSend), None);
        h.put_client(
            "cli-1",
            serde_json::json!({"name": "Ana", "email": "ana@cliente.example.co"}),
        )
        .unwrap();
        h.invoice_due("inv-1", "cli-1", "2026-03-16");
        h
    }

    #[test]
    fn every_shipped_template_renders_hostile_names_without_breaking_headers() {
        let h = setup();
        for name in [
            "Ana\r\nBcc: victim@evil.example",
            "Ana\0B",
            "\u{202e}anA\u{200f}",
            &"x".repeat(10_000),
            "{{ 7 * 7 }} {% raw %}",
        ] {
            assert!(render_all(&h, name) > 20, "too few templates rendered");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_client_name_renders_every_template(name in super::fuzz::hostile_string()) {
            let h = setup();
            prop_assert!(render_all(&h, &name) > 20);
        }
    }
}
