//! The thank-you after full payment (`[payments] thank_you`), under a manual clock: queued in
//! the payment's own write, sent once by the dispatcher on the first reachable channel inside
//! the contact window, with the client's other open invoices; cancelled by a refund that
//! reopens the invoice first; never sent twice, also after a crash; skipped for opted-out
//! addresses; sent for a recovery after a write-off.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests may read the real clock

mod common;

use common::sim::Sim;
use common::test_policy;
use plazo::config::OnUnknown;
use plazo::domain::{AttemptOutcome, InvoiceId, InvoiceStatus, ReminderState, Track};
use plazo::service::{
    ContactChange, EscalationInput, EscalationRequest, apply_contact_change, escalate_invoice,
};

const THANKS: &str =
    "\n[payments]\nthank_you = { template = \"thank_you\", channels = [\"email\", \"sms\"] }\n";

/// Bogotá (UTC-5), window 08:00-19:00 every day, one step on the due date by email; the
/// thank-you on email then SMS when `thanks`.
fn policy(thanks: bool) -> String {
    let step = "[[cadences.standard.steps]]\nname = \"due_today\"\noffset = \"0d\"\nchannels = [\"email\"]\ntemplate = \"due_today\"\ntone = \"friendly\"\n\n".to_owned();
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &[step],
    );
    if thanks {
        p.push_str(THANKS);
    }
    p
}

/// 2026-03-10 10:00 in Bogotá; client cli-1 (email and phone) with inv-1 and inv-2 open, due
/// on the 20th.
fn start(thanks: bool, now: &str) -> Sim {
    let sim = Sim::new(&policy(thanks), now);
    sim.client(
        "cli-1",
        serde_json::json!({
            "name": "María Pérez", "email": "maria@cliente.example.co", "phone": "3001234567",
            "country": "CO"
        }),
    );
    sim.invoice("inv-1", "cli-1", "2026-03-20", "1000000");
    sim.invoice("inv-2", "cli-1", "2026-03-25", "400000");
    sim
}

fn thanked(sim: &Sim) -> Vec<plazo::channels::Outbound> {
    sim.email
        .sent()
        .into_iter()
        .chain(sim.sms.sent())
        .filter(|o| o.step == "thank_you")
        .collect()
}

fn thank_you_reminder(sim: &Sim, id: &str) -> Option<plazo::domain::Reminder> {
    let inv = sim.inv(id);
    let rid = plazo::domain::ReminderId::for_track(&inv.id, inv.generation, &Track::ThankYou, 0);
    sim.store.reminder(&inv.id, &rid).unwrap()
}

#[tokio::test]
async fn full_payment_queues_one_thank_you_sent_once_with_the_other_open_invoices() {
    let sim = start(true, "2026-03-10T15:00:00Z");
    sim.pay("inv-1", "400000", "p-1");
    assert!(
        thank_you_reminder(&sim, "inv-1").is_none(),
        "not paid in full yet"
    );
    sim.pay_in_full("inv-1", "p-2");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Paid);
    // Queued in the payment's own write, on the timeline.
    assert_eq!(sim.lines_with("inv-1", "thank-you queued").len(), 1);
    let r = thank_you_reminder(&sim, "inv-1").unwrap();
    assert_eq!(r.state, ReminderState::Scheduled);
    assert_ne!(sim.inv("inv-1").pending, Some(r.id), "not the chase's slot");

    assert_eq!(sim.at("2026-03-10T15:00:00Z").await, 1);
    let sent = thanked(&sim);
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(
        m.kind, "email",
        "the first channel the client can be reached on"
    );
    assert_eq!(
        m.subject.as_deref(),
        Some("Gracias por su pago: factura FV-inv-1")
    );
    assert!(m.text.contains("quedó saldada"), "{}", m.text);
    // The statement: the other open invoice, not the paid one.
    assert!(m.text.contains("- FV-inv-2: 400.000 COP"), "{}", m.text);
    assert_eq!(m.text.matches("FV-inv-1").count(), 1, "{}", m.text);
    let sent_lines: Vec<_> = sim
        .outcomes("inv-1", AttemptOutcome::Sent)
        .into_iter()
        .filter(|a| a.step.as_deref() == Some("thank_you"))
        .collect();
    assert_eq!(sent_lines.len(), 1, "written on the timeline");
    assert_eq!(
        thank_you_reminder(&sim, "inv-1").unwrap().state,
        ReminderState::Sent
    );

    // Never twice: more money on the paid invoice, later dispatches, a refund that reopens it
    // and a payment that closes it again.
    sim.pay("inv-1", "1000", "p-3");
    sim.at("2026-03-11T15:00:00Z").await;
    sim.refund("inv-1", "500000", "evt_r1");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Open);
    sim.pay_in_full("inv-1", "p-4");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Paid);
    sim.at("2026-03-12T15:00:00Z").await;
    assert_eq!(thanked(&sim).len(), 1);
    assert_eq!(sim.lines_with("inv-1", "thank-you queued").len(), 1);
    // The other invoice, still open, was not thanked for.
    assert!(thank_you_reminder(&sim, "inv-2").is_none());
}

/// The statement is read from the client's invoice index, whose entries carry each invoice's
/// open balance, and kept by the dispatcher while the index has not changed: a part payment,
/// an amount change and a full payment of the *other* invoice show in the next message at
/// once (the second round of messages fails if the cache outlives a change).
#[tokio::test]
async fn the_statement_follows_the_other_invoices_balance_as_it_changes() {
    let sim = start(true, "2026-03-10T15:00:00Z");
    sim.invoice("inv-3", "cli-1", "2026-03-28", "90000");
    sim.pay("inv-2", "150000", "p-2a");
    sim.invoice("inv-3", "cli-1", "2026-03-28", "95000");
    sim.pay_in_full("inv-1", "p-1");
    assert_eq!(sim.at("2026-03-10T15:00:00Z").await, 1);
    let sent = thanked(&sim);
    assert_eq!(sent.len(), 1);
    let text = &sent[0].text;
    assert!(text.contains("- FV-inv-2: 250.000 COP"), "{text}");
    assert!(text.contains("- FV-inv-3: 95.000 COP"), "{text}");
    assert!(
        !text.contains("400.000"),
        "the balance before the part payment: {text}"
    );
    assert!(
        !text.contains("90.000"),
        "the amount before the change: {text}"
    );

    // inv-3 paid, inv-2 reopened... only what is open with a balance is listed.
    sim.pay_in_full("inv-3", "p-3");
    sim.invoice("inv-4", "cli-1", "2026-03-30", "70000");
    sim.pay_in_full("inv-4", "p-4");
    let sent = thanked(&sim);
    assert_eq!(sim.at("2026-03-10T15:00:00Z").await, 2, "two thank-yous");
    let later: Vec<_> = thanked(&sim).into_iter().skip(sent.len()).collect();
    assert_eq!(later.len(), 2);
    for m in &later {
        assert!(m.text.contains("- FV-inv-2: 250.000 COP"), "{}", m.text);
        assert!(!m.text.contains("- FV-inv-3:"), "paid: {}", m.text);
        assert!(!m.text.contains("- FV-inv-1:"), "paid: {}", m.text);
    }
}

#[tokio::test]
async fn the_contact_window_holds_it_and_a_refund_that_reopens_the_invoice_first_cancels_it() {
    // 21:00 in Bogotá: outside the window.
    let sim = start(true, "2026-03-11T02:00:00Z");
    sim.pay_in_full("inv-1", "p-1");
    sim.at("2026-03-11T02:00:00Z").await;
    assert!(thanked(&sim).is_empty(), "held for the window");
    assert_eq!(
        sim.lines_with("inv-1", "outside the contact window").len(),
        1
    );
    sim.set("2026-03-11T03:00:00Z");
    sim.refund("inv-1", "1000000", "evt_r1");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Open);
    assert_eq!(
        sim.lines_with("inv-1", "invoice reopened before the thank-you went out")
            .len(),
        1
    );
    sim.at("2026-03-11T13:30:00Z").await;
    sim.at("2026-03-12T13:30:00Z").await;
    assert!(thanked(&sim).is_empty());
    // Paid again: it was never sent, so it goes out now (once).
    sim.pay_in_full("inv-1", "p-2");
    sim.at("2026-03-12T14:00:00Z").await;
    sim.at("2026-03-13T14:00:00Z").await;
    assert_eq!(thanked(&sim).len(), 1);
}

#[tokio::test]
async fn opted_out_addresses_are_skipped() {
    let sim = start(true, "2026-03-10T15:00:00Z");
    sim.store
        .transaction(|tx| {
            apply_contact_change(
                tx,
                "maria@cliente.example.co",
                &ContactChange::OptOut {
                    kind: "email".into(),
                    source: "one-click unsubscribe".into(),
                },
                sim.now(),
            )?;
            Ok::<_, plazo::store::TxError<std::convert::Infallible>>(())
        })
        .unwrap()
        .unwrap();
    sim.pay_in_full("inv-1", "p-1");
    sim.at("2026-03-10T15:00:00Z").await;
    let sent = thanked(&sim);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, "sms", "email opted out: the next channel");
    assert!(sim.email.sent().is_empty());

    // Opted out of both: nothing goes, and the timeline says why.
    let phone = sim.client_record("cli-1").phone.unwrap();
    sim.store
        .transaction(|tx| {
            apply_contact_change(
                tx,
                &phone,
                &ContactChange::OptOut {
                    kind: "sms".into(),
                    source: "keyword BAJA via sms".into(),
                },
                sim.now(),
            )?;
            Ok::<_, plazo::store::TxError<std::convert::Infallible>>(())
        })
        .unwrap()
        .unwrap();
    sim.pay_in_full("inv-2", "p-2");
    sim.at("2026-03-10T15:05:00Z").await;
    assert_eq!(thanked(&sim).len(), 1);
    assert_eq!(
        thank_you_reminder(&sim, "inv-2").unwrap().state,
        ReminderState::Failed
    );
    assert_eq!(
        sim.lines_with("inv-2", "no channel of [email, sms] delivered")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_thank_you_in_flight_at_a_crash_is_never_sent_again() {
    let sim = start(true, "2026-03-10T15:00:00Z");
    sim.pay_in_full("inv-1", "p-1");
    // Claimed (durably), then the process dies before sending.
    let claimed = sim.store.claim_due(sim.now(), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].track, Track::ThankYou);
    let p = sim.policy.current();
    // Even with on_unknown = resend, a thank-you is not worth a duplicate.
    let found =
        plazo::dispatch::recover_in_flight(&sim.store, &p.policy, OnUnknown::Resend, sim.now())
            .unwrap();
    assert_eq!(found, 1);
    assert_eq!(
        thank_you_reminder(&sim, "inv-1").unwrap().state,
        ReminderState::Unknown
    );
    sim.at("2026-03-10T15:01:00Z").await;
    sim.at("2026-03-11T15:00:00Z").await;
    assert!(thanked(&sim).is_empty());
}

#[tokio::test]
async fn a_recovery_after_a_write_off_is_thanked_and_no_policy_no_thank_you() {
    let sim = start(true, "2026-03-10T15:00:00Z");
    let p = sim.policy.current();
    escalate_invoice(
        &sim.store,
        &p.policy,
        &InvoiceId::new("inv-1").unwrap(),
        EscalationRequest::WriteOff,
        EscalationInput {
            partner: None,
            reason: Some("lost".into()),
        },
        sim.now(),
    )
    .unwrap();
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::WrittenOff);
    sim.pay_in_full("inv-1", "p-1");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Paid);
    sim.at("2026-03-10T15:00:00Z").await;
    assert_eq!(thanked(&sim).len(), 1);

    // Without [payments] thank_you nothing is queued.
    let sim = start(false, "2026-03-10T15:00:00Z");
    sim.pay_in_full("inv-1", "p-1");
    assert!(thank_you_reminder(&sim, "inv-1").is_none());
    assert!(sim.lines_with("inv-1", "thank-you").is_empty());
    sim.at("2026-03-10T15:00:00Z").await;
    assert!(thanked(&sim).is_empty());
}
