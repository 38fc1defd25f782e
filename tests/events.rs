//! Events out: every change records its event in the same write (and nothing when the outbox
//! is off or the change is refused), the delivery worker POSTs them to a local receiver that
//! verifies each Standard Webhooks signature (the official vectors check the receiver and the
//! signer), retries keep the `webhook-id`, failed events are listed and retried over the API,
//! an undelivered event survives a restart, and `plazo check` refuses bad `[events]`.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests may read the real clock

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::inproc::{InProcess, start_in_process};
use common::receiver::{Delivery, Receiver, erp_secret, partner_secret, vectors};
use common::sim::Sim;
use common::{test_policy, write_private};
use jiff::{SignedDuration, Timestamp};
use plazo::clock::ManualClock;
use plazo::config::EventsConfig;
use plazo::daemon::events::EventsWorker;
use plazo::domain::{EventState, InvoiceId, OutboundEvent};
use plazo::inbound::standard_webhooks::{VerifyError, WebhookSecret, sign};
use plazo::service::{
    ContactChange, EscalationInput, EscalationRequest, change_contact, escalate_invoice,
};
use plazo::store::{EventRouting, Store};
use serde_json::{Value, json};

#[tokio::test]
async fn the_signer_reproduces_the_official_vectors_and_the_receiver_verifies_them() {
    for v in vectors() {
        let secret = WebhookSecret::parse(&v.secret).unwrap();
        assert_eq!(
            sign(&secret, &v.msg_id, v.timestamp, v.payload.as_bytes()),
            v.expected,
            "the signer reproduces the official vector exactly"
        );
        // The receiver, its clock at the vector's time, accepts the vector's request as sent
        // and refuses it with one byte added to the body.
        let clock = ManualClock::new(Timestamp::from_second(v.timestamp).unwrap());
        let r = Receiver::start(Arc::new(clock), &[("/in", v.secret.clone())]).await;
        let http = reqwest::Client::new();
        for (body, status) in [(v.payload.clone(), 200), (format!("{} ", v.payload), 401)] {
            let resp = http
                .post(r.url("/in"))
                .header("webhook-id", &v.msg_id)
                .header("webhook-timestamp", v.timestamp.to_string())
                .header("webhook-signature", &v.expected)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), status);
        }
        let seen = r.seen();
        assert_eq!(seen[0].verified, Ok(()));
        assert_eq!(seen[1].verified, Err(VerifyError::NoMatch));
    }
}

// ---------------------------------------------------------------------------------------
// What each change records (service level, a manual clock, no delivery).

/// Bogotá, three steps, a promise cadence, one partner; segment `dificil_cobro` for clients
/// with a broken promise.
fn policy() -> String {
    let step = common::firm_step;
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard", "dificil_cobro"],
        &[
            step("standard", "due_today", "0d", "due_today"),
            step("standard", "firm_overdue", "+10d", "firm_overdue"),
            step("dificil_cobro", "dc_firm", "+8d", "firm_overdue"),
            step("promise", "promise_tomorrow", "-1d", "promise_reminder"),
        ],
    );
    p = p.replacen(
        "[segments.dificil_cobro]\ncadence = \"dificil_cobro\"\n",
        "[segments.dificil_cobro]\ncadence = \"dificil_cobro\"\nwhen = \"client.facts.broken_promises >= 1\"\n",
        1,
    );
    p.push_str("[promises]\ncadence = \"promise\"\ngrace = \"1d\"\nmax_days = 30\n");
    p.push_str("[partners.cobranzas_norte]\nname = \"Cobranzas del Norte S.A.S.\"\n");
    p
}

fn sim_with_events(routing: Option<EventRouting>) -> Sim {
    let sim = Sim::new(&policy(), "2026-03-10T12:00:00Z");
    if let Some(r) = routing {
        assert!(sim.store.enable_events(r));
    }
    sim.client(
        "cli-1",
        json!({"name": "María Pérez", "email": "maria@cliente.example.co",
               "timezone": "America/Bogota", "country": "CO"}),
    );
    sim.invoice("inv-1", "cli-1", "2026-03-16", "1000000");
    sim.invoice("inv-2", "cli-1", "2026-03-16", "2500000.50");
    sim
}

fn all_to_partner() -> EventRouting {
    EventRouting {
        types: None,
        partners: ["cobranzas_norte".to_owned()].into(),
    }
}

/// Every event in the outbox, oldest first.
fn outbox(store: &Store) -> Vec<OutboundEvent> {
    let mut all = store.events(None, 500).unwrap();
    all.reverse();
    all
}

/// `type@destination` of every event, oldest first.
fn kinds(store: &Store) -> Vec<String> {
    outbox(store)
        .iter()
        .map(|e| format!("{}@{}", e.kind, e.destination))
        .collect()
}

fn body(e: &OutboundEvent) -> Value {
    serde_json::from_str(&e.payload).unwrap()
}

fn escalate(sim: &Sim, id: &str, request: EscalationRequest, reason: Option<&str>) {
    try_escalate(sim, id, request, reason).unwrap();
}

fn try_escalate(
    sim: &Sim,
    id: &str,
    request: EscalationRequest,
    reason: Option<&str>,
) -> Result<plazo::service::Escalated, plazo::service::ServiceError> {
    let p = sim.policy.current();
    escalate_invoice(
        &sim.store,
        &p.policy,
        &InvoiceId::new(id).unwrap(),
        request,
        EscalationInput {
            partner: None,
            reason: reason.map(str::to_owned),
        },
        sim.now(),
    )
}

#[tokio::test]
async fn payments_and_escalations_record_their_events_with_the_change() {
    let sim = sim_with_events(Some(all_to_partner()));
    assert_eq!(
        kinds(&sim.store),
        Vec::<String>::new(),
        "creating records nothing"
    );

    // Paid in full, then re-opened by a higher amount.
    sim.pay("inv-2", "2500000.50", "tx-1");
    sim.invoice("inv-2", "cli-1", "2026-03-16", "2600000.50");
    // Handed off (to the ERP and to the partner's own endpoint), recalled, written off, void.
    escalate(
        &sim,
        "inv-1",
        EscalationRequest::HandOff,
        Some("90 days late"),
    );
    escalate(&sim, "inv-1", EscalationRequest::Recall, None);
    escalate(&sim, "inv-1", EscalationRequest::WriteOff, None);
    escalate(&sim, "inv-1", EscalationRequest::Void, Some("issued twice"));
    assert_eq!(
        kinds(&sim.store),
        [
            "invoice.paid@events",
            "invoice.reopened@events",
            "invoice.handed_off@events",
            "invoice.handed_off@partner:cobranzas_norte",
            "invoice.recalled@events",
            "invoice.written_off@events",
            "invoice.voided@events",
        ]
    );
    // A refused change records nothing (a void invoice cannot be handed off).
    assert!(try_escalate(&sim, "inv-1", EscalationRequest::HandOff, None).is_err());
    assert_eq!(outbox(&sim.store).len(), 7);

    let events = outbox(&sim.store);
    let paid = body(&events[0]);
    assert_eq!(paid["type"], "invoice.paid");
    assert_eq!(paid["id"], events[0].id.to_string());
    assert_eq!(paid["timestamp"], "2026-03-10T12:00:00Z");
    let d = &paid["data"];
    assert_eq!(d["invoice_id"], "inv-2");
    assert_eq!(d["number"], "FV-inv-2");
    assert_eq!(d["client_id"], "cli-1");
    assert_eq!(d["currency"], "COP");
    assert_eq!(d["amount"], "2500000.50", "amounts are decimal strings");
    assert_eq!(d["balance"], "0.00");
    assert_eq!(d["status"], "paid");
    assert_eq!(d["segment"], "standard");
    assert_eq!(d["last_payment"]["reference"], "tx-1");
    assert_eq!(d["last_payment"]["amount"], "2500000.50");
    let reopened = &body(&events[1])["data"];
    assert_eq!(reopened["status"], "open");
    assert_eq!(reopened["balance"], "100000.00");

    let erp = body(&events[2]);
    let partner = body(&events[3]);
    assert_ne!(
        erp["id"], partner["id"],
        "one event, one id, per destination"
    );
    for b in [&erp, &partner] {
        let d = &b["data"];
        assert_eq!(b["type"], "invoice.handed_off");
        assert_eq!(d["partner"], "cobranzas_norte");
        assert_eq!(d["partner_name"], "Cobranzas del Norte S.A.S.");
        assert_eq!(d["reason"], "90 days late");
        assert_eq!(d["by"], "the API");
        assert_eq!(d["status"], "handed_off");
        assert_eq!(d["balance"], "1000000.00");
    }
    let recalled = &body(&events[4])["data"];
    assert_eq!(recalled["from"], "handed_off");
    assert_eq!(recalled["partner"], "cobranzas_norte");
    assert_eq!(recalled["status"], "open");
    assert_eq!(body(&events[5])["data"]["status"], "written_off");
    let voided = &body(&events[6])["data"];
    assert_eq!(voided["status"], "void");
    assert_eq!(voided["reason"], "issued twice");
    assert!(
        events
            .iter()
            .all(|e| e.state == EventState::Pending && e.attempts == 0 && e.next_at == sim.now()),
        "due at once"
    );
}

#[tokio::test]
async fn promises_segments_opt_outs_and_exhausted_cadences_record_their_events() {
    let sim = sim_with_events(Some(all_to_partner()));
    assert_eq!(sim.at("2026-03-16T14:00:00Z").await, 2);

    // inv-1: a promise broken -> the client moves to dificil_cobro (both invoices move).
    sim.set("2026-03-17T15:00:00Z");
    sim.promise("inv-1", "1000000", "2026-03-20");
    sim.at("2026-03-19T14:00:00Z").await;
    sim.at("2026-03-22T05:00:00Z").await;
    assert_eq!(sim.client_record("cli-1").broken_promises, 1);
    // inv-2: a promise kept by a payment in full.
    sim.promise("inv-2", "2500000.50", "2026-03-30");
    sim.pay("inv-2", "2500000.50", "tx-9");
    // An opt-out: one event; the same opt-out again changes nothing and records nothing.
    for _ in 0..2 {
        change_contact(
            &sim.store,
            "maria@cliente.example.co",
            &ContactChange::OptOut {
                kind: "email".into(),
                source: "asked by phone".into(),
            },
            sim.now(),
        )
        .unwrap();
    }
    let got = kinds(&sim.store);
    assert_eq!(
        got,
        [
            "promise.made@events",
            "promise.broken@events",
            "client.segment_changed@events",
            "client.segment_changed@events",
            "promise.made@events",
            "promise.kept@events",
            "invoice.paid@events",
            "contact.opted_out@events",
        ],
        "{got:?}"
    );
    let events = outbox(&sim.store);
    let made = &body(&events[0])["data"];
    assert_eq!(made["invoice_id"], "inv-1");
    assert_eq!(made["arrangement"]["kind"], "promise");
    assert_eq!(made["arrangement"]["state"], "active");
    assert_eq!(made["arrangement"]["instalments"][0]["amount"], "1000000");
    assert_eq!(made["arrangement"]["instalments"][0]["due"], "2026-03-20");
    let moved: Vec<Value> = events[2..4]
        .iter()
        .map(|e| body(e)["data"].clone())
        .collect();
    let mut moved_ids: Vec<&str> = moved
        .iter()
        .map(|m| m["invoice_id"].as_str().unwrap())
        .collect();
    moved_ids.sort();
    assert_eq!(moved_ids, ["inv-1", "inv-2"]);
    for m in &moved {
        assert_eq!(m["client_id"], "cli-1");
        assert_eq!(
            m["from"],
            json!({"segment": "standard", "cadence": "standard"})
        );
        assert_eq!(
            m["to"],
            json!({"segment": "dificil_cobro", "cadence": "dificil_cobro"})
        );
        assert_eq!(m["rule"], "client.facts.broken_promises >= 1");
    }
    let broken = &body(&events[1])["data"];
    assert_eq!(broken["arrangement"]["state"], "broken");
    assert_eq!(broken["broken_promises"], 1);
    let kept = &body(&events[5])["data"];
    assert_eq!(kept["arrangement"]["state"], "kept");
    assert_eq!(kept["invoice_id"], "inv-2");
    let opted = &body(&events[7])["data"];
    assert_eq!(opted["address"], "maria@cliente.example.co");
    assert_eq!(opted["channel"], "email");
    assert_eq!(opted["source"], "asked by phone");
    assert_eq!(opted["client_ids"], json!(["cli-1"]));

    // The last step passes: cadence_exhausted, then on_exhausted's hand-off (to both
    // destinations).
    let p = policy().replacen(
        "[[cadences.standard.steps]]",
        "[cadences.standard]\non_exhausted = \"hand_off:cobranzas_norte\"\n\n[[cadences.standard.steps]]",
        1,
    );
    let sim = Sim::new(&p, "2026-03-10T12:00:00Z");
    sim.store.enable_events(all_to_partner());
    sim.client(
        "cli-1",
        json!({"name": "Ana", "email": "ana@cliente.example.co"}),
    );
    sim.invoice("inv-1", "cli-1", "2026-03-16", "1000000");
    sim.at("2026-03-16T14:00:00Z").await;
    sim.at("2026-03-26T14:00:00Z").await;
    sim.at("2026-04-30T14:00:00Z").await;
    assert_eq!(
        kinds(&sim.store),
        [
            "invoice.cadence_exhausted@events",
            "invoice.handed_off@events",
            "invoice.handed_off@partner:cobranzas_norte",
        ]
    );
    let exhausted = &body(&outbox(&sim.store)[0])["data"];
    assert_eq!(exhausted["cadence"], "standard");
    assert_eq!(exhausted["on_exhausted"], "hand_off:cobranzas_norte");
    let by = &body(&outbox(&sim.store)[1])["data"]["by"];
    assert_eq!(by, "cadence standard exhausted");
}

#[tokio::test]
async fn without_events_nothing_is_recorded_and_types_filter_the_erp_only() {
    let off = sim_with_events(None);
    off.pay("inv-2", "2500000.50", "tx-1");
    escalate(&off, "inv-1", EscalationRequest::HandOff, None);
    assert_eq!(off.store.events(None, 10).unwrap(), vec![]);
    assert_eq!(off.store.events_next_due().unwrap(), None);

    let only_paid = sim_with_events(Some(EventRouting {
        types: Some(["invoice.paid".to_owned()].into()),
        partners: ["cobranzas_norte".to_owned()].into(),
    }));
    only_paid.pay("inv-2", "2500000.50", "tx-1");
    escalate(&only_paid, "inv-1", EscalationRequest::HandOff, None);
    escalate(&only_paid, "inv-1", EscalationRequest::Recall, None);
    assert_eq!(
        kinds(&only_paid.store),
        [
            "invoice.paid@events",
            "invoice.handed_off@partner:cobranzas_norte"
        ],
        "the partner gets its hand-off whatever types say"
    );

    let no_partner = sim_with_events(Some(EventRouting::default()));
    escalate(&no_partner, "inv-1", EscalationRequest::HandOff, None);
    assert_eq!(kinds(&no_partner.store), ["invoice.handed_off@events"]);
}

// ---------------------------------------------------------------------------------------
// Delivery by the worker, driven by a manual clock.

fn events_config(r: &Receiver, extra: &str) -> EventsConfig {
    toml::from_str(&format!(
        "url = \"{}\"\nsecret = {{ env = \"ERP\" }}\n{extra}\n[partners.cobranzas_norte]\nurl = \"{}\"\nsecret = {{ env = \"PARTNER\" }}\n",
        r.url("/erp"),
        r.url("/partner")
    ))
    .unwrap()
}

fn worker(clock: &ManualClock, cfg: &EventsConfig, store: &Store) -> EventsWorker {
    let env = |k: &str| match k {
        "ERP" => Some(erp_secret()),
        "PARTNER" => Some(partner_secret()),
        _ => None,
    };
    EventsWorker::from_config(cfg, store.clone(), Arc::new(clock.clone()), &env).unwrap()
}

async fn receiver_for(sim: &Sim) -> Receiver {
    Receiver::start(
        Arc::new(sim.clock.clone()),
        &[("/erp", erp_secret()), ("/partner", partner_secret())],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_failures_then_success_deliver_on_the_third_attempt_with_the_same_webhook_id() {
    let sim = sim_with_events(Some(all_to_partner()));
    let r = receiver_for(&sim).await;
    let cfg = events_config(&r, "backoff_base_secs = 10\nbackoff_max_secs = 60");
    let w = worker(&sim.clock, &cfg, &sim.store);
    sim.pay("inv-2", "2500000.50", "tx-1");
    let id = outbox(&sim.store)[0].id;
    r.answer(&[500, 503], 200);

    let t0 = sim.now();
    assert_eq!(w.deliver_due_once().await, 1);
    let e = sim.store.event(&id).unwrap().unwrap();
    assert_eq!((e.state, e.attempts), (EventState::Pending, 1));
    assert_eq!(e.next_at, t0 + SignedDuration::from_secs(10));
    assert!(e.last_error.as_deref().unwrap().contains("500"), "{e:?}");
    // Not due yet: nothing is sent.
    sim.clock.advance(SignedDuration::from_secs(9));
    assert_eq!(w.deliver_due_once().await, 0);
    sim.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(w.deliver_due_once().await, 1);
    let e = sim.store.event(&id).unwrap().unwrap();
    assert_eq!(e.attempts, 2);
    assert_eq!(
        e.next_at,
        t0 + SignedDuration::from_secs(30),
        "the delay doubles"
    );
    sim.clock.advance(SignedDuration::from_secs(20));
    assert_eq!(w.deliver_due_once().await, 1);
    let e = sim.store.event(&id).unwrap().unwrap();
    assert_eq!(
        (e.state, e.attempts, e.last_error.clone()),
        (EventState::Delivered, 3, None)
    );
    assert_eq!(w.deliver_due_once().await, 0, "delivered once");

    let seen = r.seen();
    assert_eq!(seen.len(), 3);
    for (d, at) in seen.iter().zip([0, 10, 30]) {
        assert_eq!(d.verified, Ok(()), "signed with the [events] secret");
        assert_eq!(d.path, "/erp");
        assert_eq!(d.id, id.to_string(), "the same webhook-id on every attempt");
        assert_eq!(d.body, seen[0].body, "the same body on every attempt");
        assert_eq!(
            d.timestamp,
            (t0 + SignedDuration::from_secs(at)).as_second()
        );
    }
    assert_eq!(seen[0].json()["type"], "invoice.paid");
    assert_eq!(seen[0].json()["id"], id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_outcome_was_not_recorded_is_delivered_again_after_a_restart() {
    let sim = sim_with_events(Some(all_to_partner()));
    let r = receiver_for(&sim).await;
    let cfg = events_config(&r, "");
    sim.pay("inv-2", "2500000.50", "tx-1");
    escalate(&sim, "inv-1", EscalationRequest::HandOff, None);
    let written = outbox(&sim.store);
    assert_eq!(written.len(), 3);
    // Acknowledged changes are durable (the API waits for this before answering).
    sim.store.flush_blocking().unwrap();

    // Delivered, but the store cannot record it (as if the process died after the POST).
    let w = worker(&sim.clock, &cfg, &sim.store);
    sim.store.faults().fail_writes(true);
    assert_eq!(w.deliver_due_once().await, 3);
    sim.store.faults().fail_writes(false);
    assert_eq!(r.seen().len(), 3);
    drop(w);
    let dir = sim.dir.path().join("db");
    let url_dir = sim.dir.path().to_owned();
    let reopen = || {
        for _ in 0..100 {
            if let Ok(s) = common::try_open_store_at(&dir, &url_dir) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cannot reopen the store");
    };
    // Close the store as a crash leaves it: dropped, not closed cleanly.
    let Sim { store, d, .. } = sim;
    drop(d);
    drop(store);
    let store = reopen();
    let pending = store.events(Some(EventState::Pending), 10).unwrap();
    assert_eq!(
        pending.len(),
        3,
        "nothing is lost: every event is still pending"
    );
    let clock = ManualClock::new(Timestamp::from_second(r.seen()[0].timestamp).unwrap());
    let w = worker(&clock, &cfg, &store);
    assert_eq!(w.deliver_due_once().await, 3);
    let seen = r.seen();
    assert_eq!(seen.len(), 6);
    for e in &written {
        let got: Vec<&Delivery> = seen.iter().filter(|d| d.id == e.id.to_string()).collect();
        assert_eq!(
            got.len(),
            2,
            "sent again after the restart, with the same id"
        );
        assert!(
            got.iter()
                .all(|d| d.verified.is_ok() && d.body == e.payload)
        );
        let path = if e.destination.to_string() == "events" {
            "/erp"
        } else {
            "/partner"
        };
        assert!(got.iter().all(|d| d.path == path));
        assert_eq!(
            store.event(&e.id).unwrap().unwrap().state,
            EventState::Delivered
        );
    }
    // The store written by a plain drop also survives a clean close and reopen.
    store.close().unwrap();
    drop(store);
    let store = reopen();
    assert_eq!(
        store.events(Some(EventState::Delivered), 10).unwrap().len(),
        3
    );
}

// ---------------------------------------------------------------------------------------
// The daemon: delivery over HTTP, and the events API.

const TOKEN: &str = "events-test-token-0001";

struct Daemon {
    running: Option<plazo::daemon::Running>,
    base: String,
    clock: ManualClock,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Daemon {
    async fn start(r: &Receiver, extra: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_private(&d.join("erp-secret"), &erp_secret());
        write_private(&d.join("partner-secret"), &partner_secret());
        let tables = format!(
            "[events]\nurl = \"{}\"\nsecret = {{ file = \"{}\" }}\n{extra}\n[events.partners.cobranzas_norte]\nurl = \"{}\"\nsecret = {{ file = \"{}\" }}\n",
            r.url("/erp"),
            d.join("erp-secret").display(),
            r.url("/partner"),
            d.join("partner-secret").display(),
        );
        let (running, own_clock) = start_in_process(
            d,
            InProcess {
                policy: &policy(),
                token: TOKEN,
                top: "",
                tables: &tables,
                now: "2026-03-10T12:00:00Z",
                channels: "",
            },
        )
        .await;
        // The receiver checks signatures against the daemon's clock.
        r.use_clock(Arc::new(own_clock.clone()));
        Daemon {
            base: format!("http://{}", running.addr),
            running: Some(running),
            clock: own_clock,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        common::inproc::request(
            &self.http,
            &self.base,
            method,
            path,
            Some(&format!("Bearer {TOKEN}")),
            body.as_deref(),
        )
        .await
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (st, v) = self.call(method, path, body).await;
        assert!((200..300).contains(&st), "{method} {path}: {st} {v}");
        v
    }

    async fn setup(&self) {
        self.ok(
            "PUT",
            "/v1/clients/cli-1",
            Some(
                json!({"name": "María Pérez", "email": "maria@cliente.example.co",
                        "timezone": "America/Bogota", "country": "CO"}),
            ),
        )
        .await;
        for (id, amount) in [("inv-1", "1000000"), ("inv-2", "2500000.50")] {
            self.ok(
                "PUT",
                &format!("/v1/invoices/{id}"),
                Some(json!({"client_id": "cli-1", "number": format!("FV-{id}"),
                            "currency": "COP", "amount": amount, "due_at": "2026-03-16"})),
            )
            .await;
        }
    }

    /// Pays `inv-2` (from [`Daemon::setup`]) in full over the API.
    async fn pay_inv2_in_full(&self) {
        self.ok(
            "POST",
            "/v1/invoices/inv-2/payments",
            Some(json!({"amount": "2500000.50", "currency": "COP", "reference": "PSE-1"})),
        )
        .await;
    }

    async fn stop(mut self) {
        self.running.take().unwrap().shutdown().await.unwrap();
    }
}

/// A daemon with `[events]` (and `extra` settings in it) pointing at a new receiver.
async fn daemon_and_receiver(extra: &str) -> (Daemon, Receiver) {
    let clock = ManualClock::new("2026-03-10T12:00:00Z".parse().unwrap());
    let r = Receiver::start(
        Arc::new(clock),
        &[("/erp", erp_secret()), ("/partner", partner_secret())],
    )
    .await;
    let d = Daemon::start(&r, extra).await;
    (d, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_over_http_reaches_the_erp_and_the_partner_signed_and_a_payment_sends_invoice_paid()
 {
    let (d, r) = daemon_and_receiver("").await;
    d.setup().await;
    let v = d
        .ok(
            "POST",
            "/v1/invoices/inv-1/hand-off",
            Some(json!({"partner": "cobranzas_norte", "reason": "90 days late"})),
        )
        .await;
    assert_eq!(v["result"], "handed_off");
    let seen = r.wait_for(2, || {}).await;
    let mut paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["/erp", "/partner"]);
    for s in &seen {
        assert_eq!(s.verified, Ok(()), "{s:?}");
        let b = s.json();
        assert_eq!(b["type"], "invoice.handed_off");
        assert_eq!(b["id"], s.id);
        let data = &b["data"];
        assert_eq!(data["invoice_id"], "inv-1");
        assert_eq!(data["number"], "FV-inv-1");
        assert_eq!(data["client_id"], "cli-1");
        assert_eq!(data["amount"], "1000000.00");
        assert_eq!(data["balance"], "1000000.00");
        assert_eq!(data["currency"], "COP");
        assert_eq!(data["status"], "handed_off");
        assert_eq!(data["partner"], "cobranzas_norte");
        assert_eq!(data["partner_name"], "Cobranzas del Norte S.A.S.");
        assert_eq!(data["reason"], "90 days late");
    }

    d.pay_inv2_in_full().await;
    let seen = r.wait_for(3, || {}).await;
    let paid = seen[2].json();
    assert_eq!(seen[2].path, "/erp");
    assert_eq!(seen[2].verified, Ok(()));
    assert_eq!(paid["type"], "invoice.paid");
    assert_eq!(paid["data"]["invoice_id"], "inv-2");
    assert_eq!(paid["data"]["amount"], "2500000.50");
    assert_eq!(paid["data"]["balance"], "0.00");
    assert_eq!(paid["data"]["last_payment"]["reference"], "PSE-1");

    // Listed as delivered, newest first, with their bodies.
    for _ in 0..100 {
        let listed = d.ok("GET", "/v1/events?state=delivered", None).await;
        if listed.as_array().unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = d.ok("GET", "/v1/events?state=delivered", None).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["type"], "invoice.paid");
    assert_eq!(listed[0]["state"], "delivered");
    assert_eq!(listed[0]["attempts"], 1);
    assert_eq!(listed[0]["next_attempt_at"], Value::Null);
    assert_eq!(listed[0]["payload"]["data"]["invoice_id"], "inv-2");
    let one = d
        .ok("GET", &format!("/v1/events/{}", seen[2].id), None)
        .await;
    assert_eq!(one["id"], seen[2].id);
    let limited = d.ok("GET", "/v1/events?limit=1", None).await;
    assert_eq!(limited.as_array().unwrap().len(), 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_keeps_failing_leaves_a_failed_event_that_the_api_lists_and_retries() {
    let (d, r) =
        daemon_and_receiver("max_attempts = 3\nbackoff_base_secs = 5\nbackoff_max_secs = 5").await;
    r.answer(&[], 500);
    d.setup().await;
    d.pay_inv2_in_full().await;
    // Three attempts, five seconds apart on the daemon's clock.
    let clock = d.clock.clone();
    let seen = r
        .wait_for(3, || clock.advance(SignedDuration::from_millis(500)))
        .await;
    assert!(
        seen.iter()
            .all(|s| s.id == seen[0].id && s.verified.is_ok())
    );
    let id = seen[0].id.clone();
    let mut failed = Value::Null;
    for _ in 0..200 {
        failed = d.ok("GET", "/v1/events?state=failed", None).await;
        if failed.as_array().unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failed = failed.as_array().unwrap().clone();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["id"], id);
    assert_eq!(failed[0]["state"], "failed");
    assert_eq!(failed[0]["attempts"], 3);
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("500"),
        "{failed:?}"
    );
    clock.advance(SignedDuration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        r.seen().len(),
        3,
        "a failed event is not tried again by itself"
    );
    assert_eq!(
        d.ok("GET", "/v1/events?state=pending", None).await,
        json!([])
    );

    // Bad requests: the JSON envelope, nothing changed.
    for (method, path, status) in [
        ("GET", "/v1/events?state=lost", 422),
        ("GET", "/v1/events?limit=0", 422),
        ("GET", "/v1/events?limit=501", 422),
        ("GET", "/v1/events?limit=ten", 422),
        ("GET", "/v1/events/evt_nope", 404),
        (
            "POST",
            "/v1/events/evt_00000000000000000000000000000000/retry",
            404,
        ),
        ("POST", "/v1/events/nope/retry", 404),
    ] {
        let (st, v) = d.call(method, path, None).await;
        assert_eq!(st, status, "{method} {path}: {v}");
        assert!(v["error"]["code"].is_string(), "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    let (st, _) = common::inproc::request(
        &d.http,
        &d.base,
        "GET",
        "/v1/events",
        Some("Bearer wrong"),
        None,
    )
    .await;
    assert_eq!(st, 401);

    // The receiver is fixed; a retry sends it once more, with the same id and body.
    r.answer(&[], 200);
    let v = d.ok("POST", &format!("/v1/events/{id}/retry"), None).await;
    assert_eq!(v["event"]["state"], "pending");
    assert_eq!(v["event"]["attempts"], 0);
    let seen = r.wait_for(4, || {}).await;
    assert_eq!(seen[3].id, id);
    assert_eq!(seen[3].body, seen[0].body);
    assert_eq!(seen[3].verified, Ok(()));
    let mut state = Value::Null;
    for _ in 0..100 {
        state = d.ok("GET", &format!("/v1/events/{id}"), None).await["state"].clone();
        if state == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state, "delivered");
    let (st, v) = d
        .call("POST", &format!("/v1/events/{id}/retry"), None)
        .await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "conflict");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("delivered"),
        "{v}"
    );
    assert_eq!(
        d.ok("GET", "/v1/events?state=failed", None).await,
        json!([])
    );
    d.stop().await;
}

// ---------------------------------------------------------------------------------------
// `plazo check` refuses a bad [events] with the place to fix.

fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), policy()).unwrap();
    let path = dir.path().join("plazo.toml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plazo"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn plazo_check_refuses_a_bad_events_table_naming_file_line_and_column() {
    let base = "listen = \"127.0.0.1:8080\"\ndata_dir = \"data\"\n\n[events]\n";
    for (events, expected) in [
        (
            "url = \"ftp://x\"\nsecret = { env = \"PLAZO_EVENTS_SECRET\" }\n",
            "plazo.toml:5:7: events.url: \"ftp://x\" must be an http:// or https:// URL",
        ),
        (
            "url = \"https://erp.example.co/hooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
            "plazo.toml:6:10: a secret is never written in plazo.toml",
        ),
        (
            "url = \"https://erp.example.co/hooks\"\nsecret = { env = \"S\" }\n[events.partners.nadie]\nurl = \"https://x.example\"\nsecret = { env = \"P\" }\n",
            "plazo.toml:7:18: events.partners.nadie: the policy has no [partners.nadie]",
        ),
    ] {
        let (ok, out) = check(&format!("{base}{events}"));
        assert!(!ok, "{events}: accepted\n{out}");
        assert!(
            out.contains(expected),
            "{events}\nexpected {expected:?}\n     got {out}"
        );
        assert!(!out.contains("MfKQ9r8"), "the secret is echoed: {out}");
    }
    let (ok, out) = check(&format!(
        "{base}url = \"https://erp.example.co/hooks\"\nsecret = {{ env = \"S\" }}\ntypes = [\"invoice.paid\"]\n[events.partners.cobranzas_norte]\nurl = \"https://cobra.example\"\nsecret = {{ file = \"/run/credentials/cobra\" }}\n"
    ));
    assert!(ok, "{out}");
    assert!(
        out.contains("events       to https://erp.example.co/hooks (invoice.paid); hand-offs also to cobranzas_norte"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_of_a_paid_invoice_is_409_and_changes_nothing_records_no_line_and_no_event() {
    let (d, _r) = daemon_and_receiver("").await;
    d.setup().await;
    d.pay_inv2_in_full().await;
    let event_ids = || async {
        let listed = d.ok("GET", "/v1/events?limit=100", None).await;
        let mut ids: Vec<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let events_before = event_ids().await;
    assert_eq!(events_before.len(), 1, "invoice.paid: {events_before:?}");
    let before = d.ok("GET", "/v1/invoices/inv-2", None).await;
    assert_eq!(before["invoice"]["status"], "paid");

    let (st, v) = d
        .call(
            "POST",
            "/v1/invoices/inv-2/hand-off",
            Some(json!({"partner": "cobranzas_norte", "reason": "90 days late"})),
        )
        .await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "conflict", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("invoice inv-2 is paid; there is nothing to chase, hand off or write off"),
        "{message}"
    );

    let after = d.ok("GET", "/v1/invoices/inv-2", None).await;
    assert_eq!(after, before, "invoice and timeline unchanged");
    assert_eq!(after["invoice"]["status"], "paid");
    let lines = after["timeline"].to_string();
    assert!(!lines.contains("handed off"), "{lines}");
    assert_eq!(event_ids().await, events_before, "no event recorded");
    d.stop().await;
}
