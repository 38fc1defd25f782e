//! Channel fallback, delivery receipts, opt-outs and rate limits in the dispatcher, under a
//! manual clock with scriptable recording channels: waiting for a receipt and falling back when
//! it does not come (or reports a failure), provider and keyword opt-outs, unreachable
//! addresses, WhatsApp's 24-hour window, and rate-limit slots that queue messages instead of
//! dropping them. Driven through `Dispatcher::dispatch_due_once`, so nothing sleeps for real.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use common::rec::{Answer, RecChannel};
use common::sim::{Sim, SimOptions, ts};
use common::{step, test_policy};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use plazo::channels::FailureScope;
use plazo::channels::ratelimit::{RateLimitConfig, RateLimiter};
use plazo::config::OnUnknown;
use plazo::dispatch::recover_in_flight;
use plazo::domain::{
    Attempt, AttemptOutcome, ClientId, ContactEventKind, DeliveryState, InvoiceId, Reminder,
    ReminderState,
};
use plazo::policy::model::KeywordAction;
use plazo::service::{InboundInput, ReceiptOutcome, pause_invoice, record_inbound, resume_invoice};

// ---------------------------------------------------------------------------------------------
// Harness.

const PHONE: &str = "+573001234567";

fn policy_text() -> String {
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["fb", "solo", "wa", "late", "rl_late"],
        &[
            // SMS, then email when the SMS is not confirmed.
            step("fb", "due_today", "0d", None, &["sms", "email"]),
            step("fb", "firm_overdue", "+10d", None, &["sms", "email"]),
            // Nothing follows the SMS.
            step("solo", "due_today", "0d", None, &["sms"]),
            step("solo", "firm_overdue", "+10d", None, &["email"]),
            // WhatsApp without an approved template, then email.
            step("wa", "due_today", "0d", None, &["whatsapp", "email"]),
            step(
                "wa",
                "friendly_overdue",
                "+1d",
                None,
                &["whatsapp", "email"],
            ),
            step("wa", "firm_overdue", "+3d", None, &["whatsapp", "email"]),
            // Sent at 18:30 local: a 1 h receipt timeout ends outside the 08:00-19:00 window.
            step("late", "due_today", "0d", Some("18:30"), &["sms", "email"]),
            step("late", "firm_overdue", "+10d", None, &["sms", "email"]),
            // Rate-limited near the end of the window.
            step("rl_late", "due_today", "0d", Some("18:59"), &["sms"]),
            step("rl_late", "firm_overdue", "+10d", None, &["email"]),
        ],
    );
    p.push_str(
        "\n[channels.sms]\nreceipt_timeout = \"1h\"\n\n[channels.whatsapp]\nreceipt_timeout = \"1h\"\n",
    );
    p
}

/// SMS through a provider that reports delivery (`twilio`, ids `rec-sms-N`); email and
/// WhatsApp that do not.
fn harness(now: &str) -> Sim {
    harness_with(now, RecChannel::reporting("rec-sms", "twilio"))
}

/// The dispatcher under [`policy_text`] with `sms` behind the `sms` route, the clock at `now`.
fn harness_with(now: &str, sms: RecChannel) -> Sim {
    let options = SimOptions {
        sms,
        whatsapp: true,
        ..SimOptions::default()
    };
    Sim::with(&policy_text(), now, options)
}

/// What only these tests need: messages from, and the contact record of, [`PHONE`].
trait PhoneExt {
    fn inbound(&self, kind: &str, text: &str, msg_id: &str) -> plazo::service::InboundOutcome;
    fn contact(&self) -> plazo::domain::Contact;
}

impl PhoneExt for Sim {
    fn inbound(&self, kind: &str, text: &str, msg_id: &str) -> plazo::service::InboundOutcome {
        let p = self.policy.current();
        record_inbound(
            &self.store,
            &p.policy,
            &InboundInput {
                kind: kind.into(),
                from: PHONE.into(),
                text: Some(text.into()),
                provider_message_id: msg_id.into(),
                provider_action: None,
            },
            self.now(),
        )
        .unwrap()
    }
    fn contact(&self) -> plazo::domain::Contact {
        self.store.contact(PHONE).unwrap().unwrap()
    }
}

fn maria(segment: &str) -> serde_json::Value {
    serde_json::json!({
        "name": "María Pérez", "locale": "es-CO", "timezone": "America/Bogota",
        "country": "CO", "phone": "3001234567", "email": "maria@cliente.example.co",
        "segment": segment
    })
}

// Due 2026-03-16 (a Monday) in America/Bogota (UTC-5, no DST), send_at 09:00 local = 14:00Z:
// due_today 03-16T14:00Z, firm_overdue (+10d) 03-26T14:00Z. Window 08:00-19:00 local.

const DUE: &str = "2026-03-16";
const T0: &str = "2026-03-16T14:00:00Z";
const FIRM: &str = "2026-03-26T14:00:00Z";

// ---------------------------------------------------------------------------------------------
// Receipts and fallback.

#[tokio::test]
async fn no_receipt_within_the_timeout_falls_back_to_the_next_channel_once() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    assert_eq!(h.invoice_due("inv-1", "cli-1", DUE), Some(ts(T0)));

    assert_eq!(h.at(T0).await, 1);
    assert_eq!(h.sms.sent().len(), 1);
    assert_eq!(h.sms.sent()[0].to, PHONE);
    assert_eq!(h.email.calls(), 0, "email waits for the SMS receipt");
    let r = h.pending("inv-1").unwrap();
    assert_eq!(r.step_name, "due_today");
    assert_eq!(r.state, ReminderState::AwaitingReceipt);
    assert_eq!(r.fire_at, ts("2026-03-16T15:00:00Z"), "now + 1 h");
    let aw = r.awaiting.clone().unwrap();
    assert_eq!(
        (
            aw.provider.as_str(),
            aw.provider_message_id.as_str(),
            aw.kind.as_str(),
            aw.channel_index,
            aw.since
        ),
        ("twilio", "rec-sms-1", "sms", 0, ts(T0))
    );
    assert_eq!(
        h.store.next_due().unwrap(),
        Some(ts("2026-03-16T15:00:00Z"))
    );
    let msg = h
        .store
        .sent_message("twilio", "rec-sms-1")
        .unwrap()
        .unwrap();
    assert_eq!(msg.state, DeliveryState::Accepted);
    assert_eq!(msg.reminder_id, r.id);
    assert_eq!(msg.recipient, PHONE);
    assert_eq!(h.inv("inv-1").cursor, None, "the step is not done yet");

    // 59 minutes later: still waiting.
    assert_eq!(h.at("2026-03-16T14:59:00Z").await, 0);
    assert_eq!(h.at("2026-03-16T14:59:59Z").await, 0);
    assert_eq!(h.email.calls(), 0);
    assert_eq!(h.sms.calls(), 1);

    // The timeout: email goes out, SMS is not sent again.
    assert_eq!(h.at("2026-03-16T15:00:00Z").await, 1);
    assert_eq!(h.sms.calls(), 1);
    let email = h.email.sent();
    assert_eq!(email.len(), 1);
    assert_eq!(email[0].to, "maria@cliente.example.co");
    assert_eq!(email[0].step, "due_today");
    let no_receipt = h.lines_with("inv-1", "no delivery receipt");
    assert_eq!(no_receipt.len(), 1, "{:?}", h.timeline("inv-1"));
    assert_eq!(no_receipt[0].outcome, AttemptOutcome::Failed);
    assert_eq!(no_receipt[0].channel.as_deref(), Some("sms"));
    assert_eq!(
        no_receipt[0].provider_message_id.as_deref(),
        Some("rec-sms-1")
    );
    assert_eq!(
        no_receipt[0].detail.as_deref(),
        Some("no delivery receipt for sms message rec-sms-1 within 1h; trying the next channel")
    );
    let sent: Vec<Option<String>> = h
        .outcomes("inv-1", AttemptOutcome::Sent)
        .into_iter()
        .map(|a| a.channel)
        .collect();
    assert_eq!(sent, [Some("sms".into()), Some("email".into())]);
    assert_eq!(
        h.store
            .reminder(&r.invoice_id, &r.id)
            .unwrap()
            .unwrap()
            .state,
        ReminderState::Sent
    );
    assert_eq!(h.inv("inv-1").cursor, Some(0));

    // The next step, planned once.
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "firm_overdue");
    assert_eq!(next.fire_at, ts(FIRM));
    assert_eq!(next.state, ReminderState::Scheduled);
    assert_eq!(h.store.next_due().unwrap(), Some(ts(FIRM)));
    assert_eq!(h.at("2026-03-16T15:00:00Z").await, 0);
    assert_eq!(h.at("2026-03-20T15:00:00Z").await, 0);
    // A late receipt for the SMS is recorded but changes nothing.
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Delivered, None),
        ReceiptOutcome::Recorded
    );
    assert_eq!(h.pending("inv-1").unwrap().id, next.id);
    assert_eq!(h.store.next_due().unwrap(), Some(ts(FIRM)));
    assert_eq!((h.sms.calls(), h.email.calls()), (1, 1));
}

#[tokio::test]
async fn delivered_receipt_closes_the_step_and_never_goes_back() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    assert_eq!(h.at(T0).await, 1);
    let r = h.pending("inv-1").unwrap();
    assert_eq!(r.state, ReminderState::AwaitingReceipt);

    // An intermediate state is recorded; the step keeps waiting.
    h.clock.set(ts("2026-03-16T14:05:00Z"));
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Sent, None),
        ReceiptOutcome::Recorded
    );
    let still = h.pending("inv-1").unwrap();
    assert_eq!(still.state, ReminderState::AwaitingReceipt);
    assert_eq!(still.fire_at, ts("2026-03-16T15:00:00Z"));

    h.clock.set(ts("2026-03-16T14:30:00Z"));
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Delivered, None),
        ReceiptOutcome::StepDone
    );
    let done = h.store.reminder(&r.invoice_id, &r.id).unwrap().unwrap();
    assert_eq!(done.state, ReminderState::Sent);
    assert!(done.awaiting.is_none());
    assert_eq!(h.inv("inv-1").cursor, Some(0));
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "firm_overdue");
    assert_eq!(next.fire_at, ts(FIRM));
    assert_eq!(
        h.store.next_due().unwrap(),
        Some(ts(FIRM)),
        "the timeout entry is gone"
    );
    let receipts = h.outcomes("inv-1", AttemptOutcome::Receipt);
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[1].delivery, Some(DeliveryState::Delivered));
    assert_eq!(
        receipts[1].detail.as_deref(),
        Some("twilio reports delivered; step done")
    );
    assert_eq!(
        h.store
            .sent_message("twilio", "rec-sms-1")
            .unwrap()
            .unwrap()
            .state,
        DeliveryState::Delivered
    );

    // The timeout passes: nothing is sent.
    assert_eq!(h.at("2026-03-16T15:00:00Z").await, 0);
    assert_eq!(h.at("2026-03-16T18:00:00Z").await, 0);
    assert_eq!(h.email.calls(), 0);
    assert!(h.lines_with("inv-1", "no delivery receipt").is_empty());

    // A failure after delivered is not newer: recorded nowhere, triggers nothing.
    let lines = h.timeline("inv-1").len();
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Failed, Some(30003)),
        ReceiptOutcome::NotNewer
    );
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Delivered, None),
        ReceiptOutcome::NotNewer
    );
    assert_eq!(h.timeline("inv-1").len(), lines);
    assert_eq!(
        h.store
            .sent_message("twilio", "rec-sms-1")
            .unwrap()
            .unwrap()
            .state,
        DeliveryState::Delivered
    );
    assert!(
        h.store
            .contact(PHONE)
            .unwrap()
            .is_none_or(|c| c.unreachable.is_empty()),
        "an ignored failure teaches nothing about the address"
    );
    assert_eq!(h.pending("inv-1").unwrap().id, next.id);
    assert_eq!(h.at("2026-03-16T18:00:00Z").await, 0);
    assert_eq!((h.sms.calls(), h.email.calls()), (1, 0));

    // The next step goes out on SMS again.
    assert_eq!(h.at(FIRM).await, 1);
    assert_eq!(h.sms.sent().len(), 2);
    assert_eq!(h.sms.sent()[1].step, "firm_overdue");
}

#[tokio::test]
async fn failed_receipt_falls_back_at_once_and_marks_the_number_unreachable() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    assert_eq!(h.at(T0).await, 1);
    let r = h.pending("inv-1").unwrap();

    h.clock.set(ts("2026-03-16T14:10:00Z"));
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Undelivered, Some(30003)),
        ReceiptOutcome::FellBack
    );
    let back = h.pending("inv-1").unwrap();
    assert_eq!(back.id, r.id);
    assert_eq!(back.state, ReminderState::Scheduled);
    assert_eq!(back.fire_at, ts("2026-03-16T14:10:00Z"), "due now");
    assert_eq!(back.channel_index, 1, "the email");
    assert!(back.awaiting.is_none());
    assert_eq!(
        h.store.next_due().unwrap(),
        Some(ts("2026-03-16T14:10:00Z"))
    );
    // A duplicate callback changes nothing.
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Undelivered, Some(30003)),
        ReceiptOutcome::NotNewer
    );
    let contact = h.contact();
    let why = &contact.unreachable.get("sms").unwrap().reason;
    assert!(why.contains("twilio error 30003"), "{why}");
    assert!(contact.opt_outs.is_empty());
    let events = h
        .store
        .client_timeline(&ClientId::new("cli-1").unwrap())
        .unwrap();
    let unreachable: Vec<_> = events
        .iter()
        .filter(|e| e.event == ContactEventKind::Unreachable)
        .collect();
    assert_eq!(unreachable.len(), 1, "{events:?}");
    assert_eq!(unreachable[0].channel, "sms");

    // The email goes out on the next pass, at once.
    assert_eq!(h.at("2026-03-16T14:10:00Z").await, 1);
    assert_eq!(h.email.sent().len(), 1);
    assert_eq!(h.email.sent()[0].step, "due_today");
    assert_eq!(h.sms.calls(), 1);
    let receipts = h.outcomes("inv-1", AttemptOutcome::Receipt);
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].delivery, Some(DeliveryState::Undelivered));
    assert!(
        receipts[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("falling back to the step's next channel")
    );
    assert!(h.lines_with("inv-1", "no delivery receipt").is_empty());
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "firm_overdue");
    assert_eq!(next.fire_at, ts(FIRM));
    // The old timeout entry (15:00) does not fire anything.
    assert_eq!(h.at("2026-03-16T15:00:00Z").await, 0);

    // A later step skips SMS for this number, with the reason.
    assert_eq!(h.at(FIRM).await, 1);
    assert_eq!(
        h.sms.calls(),
        1,
        "SMS is not tried on an unreachable number"
    );
    assert_eq!(h.email.sent().len(), 2);
    let skipped = h.outcomes("inv-1", AttemptOutcome::Skipped);
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].step.as_deref(), Some("firm_overdue"));
    assert_eq!(skipped[0].channel.as_deref(), Some("sms"));
    let d = skipped[0].detail.as_deref().unwrap();
    assert!(d.contains("sms cannot reach +573001234567"), "{d}");
}

#[tokio::test]
async fn fallback_happens_once_per_step_never_a_storm() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    // inv-1 falls back on a failure receipt; inv-2 on the timeout.
    h.invoice_due("inv-1", "cli-1", DUE);
    h.invoice_due("inv-2", "cli-1", DUE);
    assert_eq!(h.at(T0).await, 2);
    assert_eq!(h.sms.sent().len(), 2);
    let id1 = h
        .pending("inv-1")
        .unwrap()
        .awaiting
        .unwrap()
        .provider_message_id;
    let id2 = h
        .pending("inv-2")
        .unwrap()
        .awaiting
        .unwrap()
        .provider_message_id;
    assert_ne!(id1, id2);

    h.clock.set(ts("2026-03-16T14:10:00Z"));
    assert_eq!(
        h.receipt(&id1, DeliveryState::Failed, None),
        ReceiptOutcome::FellBack
    );
    assert_eq!(h.at("2026-03-16T14:10:00Z").await, 1);
    assert_eq!(h.at("2026-03-16T15:00:00Z").await, 1, "inv-2's timeout");
    assert_eq!(h.email.sent().len(), 2);

    // Email (the last channel) reports nothing: the steps are done.
    for inv in ["inv-1", "inv-2"] {
        let next = h.pending(inv).unwrap();
        assert_eq!(next.step_name, "firm_overdue", "{inv}");
        assert_eq!(h.inv(inv).cursor, Some(0));
    }
    let planned: Vec<_> = ["inv-1", "inv-2"]
        .iter()
        .map(|i| h.pending(i).unwrap().id)
        .collect();

    // More failure receipts, in any order and repeated: nothing is rescheduled.
    for (id, state) in [
        (&id1, DeliveryState::Undelivered),
        (&id1, DeliveryState::Failed),
        (&id2, DeliveryState::Undelivered),
        (&id2, DeliveryState::Failed),
        (&id2, DeliveryState::Undelivered),
    ] {
        let out = h.receipt(id, state, Some(30003));
        assert!(!out.schedules(), "{id} {state:?} → {out:?}");
    }
    assert_eq!(h.store.next_due().unwrap(), Some(ts(FIRM)));
    for t in [
        "2026-03-16T15:00:00Z",
        "2026-03-16T16:00:00Z",
        "2026-03-17T14:00:00Z",
    ] {
        assert_eq!(h.at(t).await, 0, "{t}");
    }
    assert_eq!((h.sms.calls(), h.email.calls()), (2, 2));
    for inv in ["inv-1", "inv-2"] {
        let sent: Vec<_> = h
            .outcomes(inv, AttemptOutcome::Sent)
            .into_iter()
            .map(|a| a.channel.unwrap())
            .collect();
        assert_eq!(sent, ["sms", "email"], "{inv}");
        assert_eq!(
            h.outcomes(inv, AttemptOutcome::Receipt).len(),
            1,
            "{inv}: only the first failure of each message is recorded"
        );
    }
    let planned_after: Vec<_> = ["inv-1", "inv-2"]
        .iter()
        .map(|i| h.pending(i).unwrap().id)
        .collect();
    assert_eq!(planned, planned_after);
}

#[tokio::test]
async fn no_wait_for_a_receipt_when_no_channel_follows() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("solo"));
    h.invoice_due("inv-1", "cli-1", DUE);
    assert_eq!(h.at(T0).await, 1);
    assert_eq!(h.sms.sent().len(), 1);
    let sent = h.outcomes("inv-1", AttemptOutcome::Sent);
    assert_eq!(sent.len(), 1);
    let r = h
        .store
        .reminder(&sent[0].invoice_id, &sent[0].reminder_id.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(r.state, ReminderState::Sent);
    assert!(r.awaiting.is_none());
    assert_eq!(h.inv("inv-1").cursor, Some(0));
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "firm_overdue");
    assert_eq!(next.fire_at, ts(FIRM));
    assert_eq!(
        h.store.next_due().unwrap(),
        Some(ts(FIRM)),
        "no timeout entry"
    );
    // The message is still tracked for receipts, which are recorded but try nothing else.
    assert!(
        h.store
            .sent_message("twilio", "rec-sms-1")
            .unwrap()
            .is_some()
    );
    h.clock.set(ts("2026-03-16T14:20:00Z"));
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Undelivered, Some(30003)),
        ReceiptOutcome::Recorded
    );
    assert_eq!(h.pending("inv-1").unwrap().id, next.id);
    assert_eq!(h.at("2026-03-16T15:00:00Z").await, 0);
    assert_eq!((h.sms.calls(), h.email.calls()), (1, 0));
}

// ---------------------------------------------------------------------------------------------
// Opt-outs.

#[tokio::test]
async fn provider_opt_out_falls_back_in_the_same_pass_and_sticks() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    h.sms.script(&[Answer::Scoped(FailureScope::OptedOut)]);
    assert_eq!(h.at(T0).await, 1);
    assert_eq!(h.sms.calls(), 1);
    assert!(h.sms.sent().is_empty());
    assert_eq!(h.email.sent().len(), 1, "email in the same pass");
    let failed = h.outcomes("inv-1", AttemptOutcome::Failed);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].channel.as_deref(), Some("sms"));
    let contact = h.contact();
    let o = contact.opt_outs.get("sms").unwrap();
    assert_eq!(o.at, ts(T0));
    assert!(o.source.starts_with("twilio answered:"), "{}", o.source);
    assert!(contact.unreachable.is_empty());
    assert_eq!(h.pending("inv-1").unwrap().step_name, "firm_overdue");

    assert_eq!(h.at(FIRM).await, 1);
    assert_eq!(h.sms.calls(), 1, "an opted-out number is never called");
    assert_eq!(h.email.sent().len(), 2);
    let skipped = h.outcomes("inv-1", AttemptOutcome::Skipped);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].channel.as_deref(), Some("sms"));
    let d = skipped[0].detail.as_deref().unwrap();
    assert!(d.contains("+573001234567 opted out of sms"), "{d}");
}

#[tokio::test]
async fn provider_address_error_marks_the_channel_unreachable() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    h.sms.script(&[Answer::Scoped(FailureScope::Address)]);
    assert_eq!(h.at(T0).await, 1);
    assert_eq!(h.email.sent().len(), 1);
    let contact = h.contact();
    assert!(contact.opt_outs.is_empty());
    assert!(contact.unreachable.contains_key("sms"));
    assert_eq!(h.at(FIRM).await, 1);
    assert_eq!(h.sms.calls(), 1);
    assert_eq!(
        h.lines_with("inv-1", "sms cannot reach +573001234567")
            .len(),
        1
    );
    // A message-scoped error teaches nothing about the address.
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    h.sms.script(&[Answer::Permanent]);
    assert_eq!(h.at(T0).await, 1);
    assert!(
        h.store
            .contact(PHONE)
            .unwrap()
            .is_none_or(|c| c.unreachable.is_empty() && c.opt_outs.is_empty())
    );
    assert_eq!(h.at(FIRM).await, 1);
    assert_eq!(h.sms.calls(), 2, "SMS tried again on the next step");
}

#[tokio::test]
async fn inbound_keywords_opt_out_and_back_in_once_per_message() {
    let h = harness("2026-03-10T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    let cli = ClientId::new("cli-1").unwrap();

    let out = h.inbound("sms", "BAJA", "SMin1");
    assert_eq!(
        (out.duplicate, out.action, out.clients),
        (false, Some(KeywordAction::OptOut), 1)
    );
    let o = h.contact().opt_outs.get("sms").cloned().unwrap();
    assert_eq!(o.source, "keyword \"BAJA\" via sms");
    assert!(!h.contact().opt_outs.contains_key("whatsapp"));

    // A redelivery of the same message: nothing new.
    h.clock.advance(SignedDuration::from_mins(1));
    let dup = h.inbound("sms", "BAJA", "SMin1");
    assert_eq!((dup.duplicate, dup.action), (true, None));
    let inbound_logged: Vec<_> = h
        .store
        .client_timeline(&cli)
        .unwrap()
        .into_iter()
        .filter(|e| e.provider_message_id.as_deref() == Some("SMin1"))
        .collect();
    assert_eq!(inbound_logged.len(), 1, "{inbound_logged:?}");
    assert_eq!(inbound_logged[0].event, ContactEventKind::Inbound);
    assert_eq!(inbound_logged[0].text.as_deref(), Some("BAJA"));
    assert_eq!(
        h.contact().opt_outs.get("sms").unwrap().at,
        ts("2026-03-10T12:00:00Z"),
        "the opt-out is not re-recorded"
    );

    let start = h.inbound("sms", "START", "SMin2");
    assert_eq!(start.action, Some(KeywordAction::OptIn));
    assert!(h.contact().opt_outs.is_empty());

    // Only a reply made of the keyword alone counts.
    let sentence = h.inbound("sms", "BAJA POR FAVOR", "SMin3");
    assert_eq!((sentence.duplicate, sentence.action), (false, None));
    assert!(h.contact().opt_outs.is_empty());

    let padded = h.inbound("sms", "  baja!  ", "SMin4");
    assert_eq!(padded.action, Some(KeywordAction::OptOut));
    assert!(h.contact().opt_outs.contains_key("sms"));

    let kinds: Vec<ContactEventKind> = h
        .store
        .client_timeline(&cli)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    use ContactEventKind::{Inbound, OptIn, OptOut};
    assert_eq!(
        kinds,
        [Inbound, OptOut, Inbound, OptIn, Inbound, Inbound, OptOut]
    );

    // The dispatcher honours it: SMS skipped, email sent.
    assert_eq!(h.at(T0).await, 1);
    assert_eq!(h.sms.calls(), 0);
    assert_eq!(h.email.sent().len(), 1);
    let skipped = h.outcomes("inv-1", AttemptOutcome::Skipped);
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("opted out of sms"),
        "{skipped:?}"
    );

    // START again: the next step goes out on SMS.
    h.clock.set(ts("2026-03-20T12:00:00Z"));
    assert_eq!(
        h.inbound("sms", "Start", "SMin5").action,
        Some(KeywordAction::OptIn)
    );
    assert_eq!(h.at(FIRM).await, 1);
    assert_eq!(h.sms.sent().len(), 1);
    assert_eq!(h.sms.sent()[0].step, "firm_overdue");
}

// ---------------------------------------------------------------------------------------------
// Rate limits.

#[tokio::test]
async fn rate_limited_sends_are_rescheduled_to_their_slot_never_dropped() {
    // One message every 10 s: every later slot is beyond the 1 s in-task wait, so nothing sleeps.
    let limiter = Arc::new(RateLimiter::new(
        "twilio:test",
        RateLimitConfig {
            per_second: 0.1,
            burst: 1,
        },
    ));
    let h = harness_with(
        "2026-03-01T12:00:00Z",
        RecChannel::reporting("rec-sms", "twilio").limited(limiter.clone()),
    );
    for (i, phone) in ["3001234561", "3001234562", "3001234563"]
        .iter()
        .enumerate()
    {
        let mut c = maria("solo");
        c["phone"] = (*phone).into();
        h.client(&format!("cli-{i}"), c);
        assert_eq!(
            h.invoice_due(&format!("inv-{i}"), &format!("cli-{i}"), DUE),
            Some(ts(T0))
        );
    }

    assert_eq!(h.at(T0).await, 3);
    assert_eq!(h.sms.sent().len(), 1, "one slot free now");
    let mut deferred: Vec<(String, Reminder, Attempt)> = Vec::new();
    for i in 0..3 {
        let inv = format!("inv-{i}");
        let d = h.outcomes(&inv, AttemptOutcome::Deferred);
        if let Some(line) = d.first() {
            assert_eq!(d.len(), 1);
            let r = h.pending(&inv).unwrap();
            assert_eq!(r.step_name, "due_today", "not dropped");
            assert_eq!(r.state, ReminderState::Scheduled);
            deferred.push((inv, r, line.clone()));
        }
    }
    assert_eq!(deferred.len(), 2);
    deferred.sort_by_key(|(_, r, _)| r.fire_at);
    let slots: Vec<Timestamp> = deferred
        .iter()
        .map(|(_, r, _)| r.rate_slot.unwrap())
        .collect();
    assert_eq!(
        slots,
        [ts("2026-03-16T14:00:10Z"), ts("2026-03-16T14:00:20Z")]
    );
    for (_, r, line) in &deferred {
        // Due again one in-task wait (min(1 s, 8 intervals)) before the slot, so the loop's
        // latency cannot bunch booked sends.
        assert_eq!(
            r.fire_at,
            r.rate_slot.unwrap() - SignedDuration::from_secs(1)
        );
        assert_eq!(line.channel.as_deref(), Some("sms"));
        let d = line.detail.as_deref().unwrap();
        assert!(d.starts_with("rate limit twilio:test: waiting"), "{d}");
        assert!(
            d.contains(&format!("until {}", r.rate_slot.unwrap())),
            "{d}"
        );
    }

    // Not before; at the slot, without booking another.
    assert_eq!(h.at("2026-03-16T14:00:08Z").await, 0);
    assert_eq!(h.at("2026-03-16T14:00:10Z").await, 1);
    assert_eq!(h.sms.sent().len(), 2);
    assert_eq!(h.at("2026-03-16T14:00:18Z").await, 0);
    assert_eq!(h.at("2026-03-16T14:00:20Z").await, 1);
    assert_eq!(h.at("2026-03-16T14:00:30Z").await, 0);

    let mut to: Vec<String> = h.sms.sent().into_iter().map(|m| m.to).collect();
    to.sort();
    assert_eq!(to, ["+573001234561", "+573001234562", "+573001234563"]);
    for i in 0..3 {
        let inv = format!("inv-{i}");
        assert_eq!(h.outcomes(&inv, AttemptOutcome::Sent).len(), 1, "{inv}");
        assert_eq!(h.pending(&inv).unwrap().step_name, "firm_overdue");
    }
    let stats = limiter.stats(h.now());
    assert_eq!(stats.reserved, 3, "a booked slot is used, not booked again");
    assert_eq!(stats.delayed, 2);
}

#[tokio::test]
async fn a_rate_slot_deferred_past_the_window_is_booked_again() {
    // One message every 100 s from 18:59 local; the window closes at 19:00.
    let limiter = Arc::new(RateLimiter::new(
        "twilio:test",
        RateLimitConfig {
            per_second: 0.01,
            burst: 1,
        },
    ));
    let h = harness_with(
        "2026-03-01T12:00:00Z",
        RecChannel::reporting("rec-sms", "twilio").limited(limiter.clone()),
    );
    for (i, phone) in ["3001234561", "3001234562", "3001234563"]
        .iter()
        .enumerate()
    {
        let mut c = maria("rl_late");
        c["phone"] = (*phone).into();
        h.client(&format!("cli-{i}"), c);
        assert_eq!(
            h.invoice_due(&format!("inv-{i}"), &format!("cli-{i}"), DUE),
            Some(ts("2026-03-16T23:59:00Z"))
        );
    }
    assert_eq!(h.at("2026-03-16T23:59:00Z").await, 3);
    assert_eq!(h.sms.sent().len(), 1);
    // Slots at 19:00:40 and 19:02:20 local: outside the window, moved to 08:00 next day.
    assert_eq!(h.at("2026-03-17T00:00:40Z").await, 1);
    assert_eq!(h.at("2026-03-17T00:02:20Z").await, 1);
    assert_eq!(h.sms.sent().len(), 1);
    let morning = ts("2026-03-17T13:00:00Z");
    assert_eq!(h.store.next_due().unwrap(), Some(morning));

    // At 08:00 the two queued messages must still respect the rate: one now, one 100 s later.
    assert_eq!(h.at_ts(morning).await, 2);
    assert_eq!(
        h.sms.sent().len(),
        2,
        "stale slots from last night must not bypass the rate limit"
    );
    assert_eq!(
        h.store.next_due().unwrap(),
        Some(ts("2026-03-17T13:01:39Z")),
        "due one in-task wait before its 13:01:40 slot"
    );
    assert_eq!(h.at("2026-03-17T13:01:38Z").await, 0);
    assert_eq!(h.at("2026-03-17T13:01:40Z").await, 1);
    assert_eq!(h.sms.sent().len(), 3);
    for i in 0..3 {
        let inv = format!("inv-{i}");
        assert_eq!(h.outcomes(&inv, AttemptOutcome::Sent).len(), 1, "{inv}");
        assert_eq!(h.pending(&inv).unwrap().step_name, "firm_overdue");
    }
}

// ---------------------------------------------------------------------------------------------
// WhatsApp window.

#[tokio::test]
async fn whatsapp_goes_only_inside_the_window_without_a_template() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("wa"));
    h.invoice_due("inv-1", "cli-1", DUE);

    // Window closed, no template: skipped with a reason, the chain continues.
    assert_eq!(h.at(T0).await, 1);
    assert_eq!(h.wa.calls(), 0);
    assert_eq!(h.email.sent().len(), 1);
    let skipped = h.outcomes("inv-1", AttemptOutcome::Skipped);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].channel.as_deref(), Some("whatsapp"));
    let d = skipped[0].detail.as_deref().unwrap();
    assert!(
        d.contains("24-hour WhatsApp window is closed") && d.contains("\"due_today\""),
        "{d}"
    );

    // The debtor writes on WhatsApp at 15:00 local; the next step (09:00 next day) is inside
    // the 24 h window and goes as free-form text.
    h.clock.set(ts("2026-03-16T20:00:00Z"));
    let out = h.inbound("whatsapp", "Hola, ya casi pago", "wamid.in1");
    assert_eq!((out.duplicate, out.action, out.clients), (false, None, 1));
    // Not a keyword: nothing is opted out.
    assert!(h.contact().opt_outs.is_empty());
    assert!(h.contact().whatsapp_window_open(ts("2026-03-17T14:00:00Z")));
    assert_eq!(h.at("2026-03-17T14:00:00Z").await, 1);
    let wa = h.wa.sent();
    assert_eq!(wa.len(), 1);
    assert_eq!(wa[0].to, PHONE);
    assert_eq!(wa[0].step, "friendly_overdue");
    let content = wa[0].whatsapp.as_ref().unwrap();
    assert!(content.session_open);
    assert!(content.template.is_none());
    assert!(!wa[0].text.is_empty());
    assert_eq!(h.email.sent().len(), 1, "email not needed");

    // Three days after due, more than 24 h after the debtor wrote: closed again.
    assert_eq!(h.at("2026-03-19T14:00:00Z").await, 1);
    assert_eq!(h.wa.calls(), 1);
    assert_eq!(h.email.sent().len(), 2);
    let skipped = h.outcomes("inv-1", AttemptOutcome::Skipped);
    assert_eq!(skipped.len(), 2);
    assert_eq!(skipped[1].step.as_deref(), Some("firm_overdue"));
    assert!(
        skipped[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("window is closed")
    );
}

// ---------------------------------------------------------------------------------------------
// Waiting for a receipt meets the contact window and re-planning.

#[tokio::test]
async fn a_receipt_timeout_held_by_the_window_still_accepts_the_receipt() {
    // Sent at 18:30 local: the 1 h timeout ends at 19:30, outside the window, and the
    // fallback is held until 08:00. A delivered receipt arriving meanwhile closes the step.
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("late"));
    assert_eq!(
        h.invoice_due("inv-1", "cli-1", DUE),
        Some(ts("2026-03-16T23:30:00Z"))
    );
    assert_eq!(h.at("2026-03-16T23:30:00Z").await, 1);
    assert_eq!(h.sms.sent().len(), 1);
    assert_eq!(h.at("2026-03-17T00:30:00Z").await, 1);
    assert_eq!(h.email.calls(), 0, "nothing outside the window");
    let r = h.pending("inv-1").unwrap();
    assert_eq!(r.fire_at, ts("2026-03-17T13:00:00Z"));
    assert_eq!(r.state, ReminderState::AwaitingReceipt);
    assert!(r.awaiting.is_some());

    h.clock.set(ts("2026-03-17T01:00:00Z"));
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Delivered, None),
        ReceiptOutcome::StepDone
    );
    assert_eq!(h.at("2026-03-17T13:00:00Z").await, 0);
    assert_eq!(h.email.calls(), 0, "delivered: no email");
    assert!(h.lines_with("inv-1", "no delivery receipt").is_empty());
    assert_eq!(h.pending("inv-1").unwrap().step_name, "firm_overdue");

    // Without a receipt, the fallback goes out at 08:00.
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("late"));
    h.invoice_due("inv-1", "cli-1", DUE);
    assert_eq!(h.at("2026-03-16T23:30:00Z").await, 1);
    assert_eq!(h.at("2026-03-17T00:30:00Z").await, 1);
    assert_eq!(h.at("2026-03-17T12:59:00Z").await, 0);
    assert_eq!(h.at("2026-03-17T13:00:00Z").await, 1);
    assert_eq!(h.email.sent().len(), 1);
    assert_eq!(h.lines_with("inv-1", "no delivery receipt").len(), 1);
    assert_eq!(h.pending("inv-1").unwrap().step_name, "firm_overdue");
}

#[tokio::test]
async fn a_failure_receipt_during_a_pause_falls_back_when_the_pause_ends() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    assert_eq!(h.at(T0).await, 1);
    let p = h.policy.current();
    h.clock.set(ts("2026-03-16T14:30:00Z"));
    pause_invoice(
        &h.store,
        &p.policy,
        &InvoiceId::new("inv-1").unwrap(),
        "calling the client".into(),
        Some(ts("2026-03-16T18:00:00Z")),
        h.now(),
    )
    .unwrap();
    // The timeout fires during the pause: held until it ends.
    assert_eq!(h.at("2026-03-16T15:00:00Z").await, 1);
    assert_eq!(h.email.calls(), 0);
    let r = h.pending("inv-1").unwrap();
    assert_eq!(r.fire_at, ts("2026-03-16T18:00:00Z"));
    // Undelivered meanwhile: falls back (the pause still holds the email).
    h.clock.set(ts("2026-03-16T16:00:00Z"));
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Undelivered, Some(30003)),
        ReceiptOutcome::FellBack
    );
    assert_eq!(h.at("2026-03-16T16:00:00Z").await, 1);
    assert_eq!(h.email.calls(), 0);
    assert_eq!(h.at("2026-03-16T18:00:00Z").await, 1);
    assert_eq!(h.email.sent().len(), 1);
    assert_eq!(h.sms.calls(), 1);
    assert!(h.lines_with("inv-1", "no delivery receipt").is_empty());
    assert_eq!(h.pending("inv-1").unwrap().step_name, "firm_overdue");
}

#[tokio::test]
async fn an_amount_change_while_waiting_for_a_receipt_keeps_the_chase_going() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    h.invoice_due("inv-2", "cli-1", DUE);
    assert_eq!(h.at(T0).await, 2);
    let waiting: Vec<Reminder> = ["inv-1", "inv-2"]
        .iter()
        .map(|i| h.pending(i).unwrap())
        .collect();

    // The ERP corrects both amounts during the wait.
    h.clock.set(ts("2026-03-16T14:20:00Z"));
    for inv in ["inv-1", "inv-2"] {
        let next = h.invoice(inv, "cli-1", DUE, "1300000");
        assert_eq!(next, None, "{inv}: the same step is not planned twice");
        let r = h.pending(inv).expect("the waiting step stays pending");
        assert_eq!(r.id, waiting[if inv == "inv-1" { 0 } else { 1 }].id);
        assert_eq!(r.state, ReminderState::AwaitingReceipt);
        assert_eq!(r.fire_at, ts("2026-03-16T15:00:00Z"));
    }
    assert_eq!(h.sms.calls(), 2, "the step is not sent again");

    // inv-1: delivered → the next step is planned.
    let id1 = waiting[0].awaiting.clone().unwrap().provider_message_id;
    assert_eq!(
        h.receipt(&id1, DeliveryState::Delivered, None),
        ReceiptOutcome::StepDone
    );
    assert_eq!(h.pending("inv-1").unwrap().step_name, "firm_overdue");

    // inv-2: no receipt → email at the timeout, then the next step.
    assert_eq!(h.at("2026-03-16T15:00:00Z").await, 1);
    assert_eq!(h.email.sent().len(), 1);
    assert_eq!(
        h.email.sent()[0].invoice_id,
        InvoiceId::new("inv-2").unwrap()
    );
    assert!(
        h.email.sent()[0].text.contains("1.300.000"),
        "{}",
        h.email.sent()[0].text
    );
    assert_eq!(h.pending("inv-2").unwrap().step_name, "firm_overdue");
    assert_eq!(h.sms.calls(), 2);
}

#[tokio::test]
async fn an_amount_change_while_a_step_is_in_flight_keeps_the_chase_going() {
    // The same holds for a step claimed for sending: when it ends (here through crash
    // recovery, which records it as unknown), the next step is planned.
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    h.clock.set(ts(T0));
    let claimed = h.store.claim_due(h.now(), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(h.invoice("inv-1", "cli-1", DUE, "1300000"), None);
    assert_eq!(h.inv("inv-1").pending, Some(claimed[0].id));
    let p = h.policy.current();
    recover_in_flight(&h.store, &p.policy, OnUnknown::Skip, h.now()).unwrap();
    assert_eq!(h.outcomes("inv-1", AttemptOutcome::Unknown).len(), 1);
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "firm_overdue");
    assert_eq!(next.fire_at, ts(FIRM));
    assert_eq!(h.at(T0).await, 0, "the step is not sent again");
    assert_eq!(h.sms.calls() + h.email.calls(), 0);
}

#[tokio::test]
async fn a_delivery_during_an_open_ended_pause_counts_and_resume_plans_the_next_step() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    assert_eq!(h.at(T0).await, 1);
    let p = h.policy.current();
    let id = InvoiceId::new("inv-1").unwrap();
    h.clock.set(ts("2026-03-16T14:10:00Z"));
    pause_invoice(&h.store, &p.policy, &id, "disputed".into(), None, h.now()).unwrap();
    h.clock.set(ts("2026-03-16T14:20:00Z"));
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Delivered, None),
        ReceiptOutcome::StepDone
    );
    assert_eq!(h.inv("inv-1").cursor, Some(0), "the step is done");
    assert!(h.pending("inv-1").is_none(), "paused: nothing planned");
    assert_eq!(h.at("2026-03-16T15:00:00Z").await, 0);
    assert_eq!(h.email.calls(), 0);

    h.clock.set(ts("2026-03-16T16:00:00Z"));
    let (_, next) = resume_invoice(&h.store, &p.policy, &id, h.now()).unwrap();
    assert_eq!(next, Some(ts(FIRM)));
    assert_eq!(h.pending("inv-1").unwrap().step_name, "firm_overdue");
    assert_eq!(
        h.at("2026-03-16T16:00:00Z").await,
        0,
        "due_today not resent"
    );
    assert_eq!(h.sms.calls(), 1);
}

#[tokio::test]
async fn paid_while_waiting_for_a_receipt_stops_the_fallback() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    assert_eq!(h.at(T0).await, 1);
    let r = h.pending("inv-1").unwrap();
    h.clock.set(ts("2026-03-16T14:10:00Z"));
    h.pay_in_full("inv-1", "PSE-1");
    assert_eq!(h.at("2026-03-16T15:00:00Z").await, 1);
    assert_eq!(h.email.calls(), 0, "a paid invoice gets no fallback");
    assert_eq!(
        h.store
            .reminder(&r.invoice_id, &r.id)
            .unwrap()
            .unwrap()
            .state,
        ReminderState::Cancelled
    );
    assert!(h.pending("inv-1").is_none());
    assert!(h.lines_with("inv-1", "no delivery receipt").is_empty());
    // A late failure is recorded and triggers nothing.
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Undelivered, None),
        ReceiptOutcome::Recorded
    );
    assert_eq!(h.store.next_due().unwrap(), None);
    assert_eq!(h.at("2026-04-30T15:00:00Z").await, 0);
    assert_eq!((h.sms.calls(), h.email.calls()), (1, 0));
}

#[tokio::test]
async fn no_wait_when_the_next_channel_cannot_be_used_for_this_client() {
    let h = harness("2026-03-01T12:00:00Z");
    // Chain [sms, email], but the client has no email: nothing could follow the SMS.
    let mut no_email = maria("fb");
    no_email.as_object_mut().unwrap().remove("email");
    h.client("cli-1", no_email);
    h.invoice_due("inv-1", "cli-1", DUE);
    assert_eq!(h.at(T0).await, 1);
    assert_eq!(h.sms.sent().len(), 1);
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "firm_overdue", "the step is done at once");
    assert_eq!(next.fire_at, ts(FIRM));
    assert_eq!(
        h.outcomes("inv-1", AttemptOutcome::Failed).len(),
        0,
        "{:#?}",
        h.timeline("inv-1")
    );
}

#[tokio::test]
async fn a_failure_is_final_even_if_a_read_receipt_follows() {
    let h = harness("2026-03-01T12:00:00Z");
    h.client("cli-1", maria("fb"));
    h.invoice_due("inv-1", "cli-1", DUE);
    assert_eq!(h.at(T0).await, 1);
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Failed, Some(30008)),
        ReceiptOutcome::FellBack
    );
    assert_eq!(
        h.receipt("rec-sms-1", DeliveryState::Read, None),
        ReceiptOutcome::NotNewer
    );
    let msg = h
        .store
        .sent_message("twilio", "rec-sms-1")
        .unwrap()
        .unwrap();
    assert_eq!(msg.state, DeliveryState::Failed);
}
