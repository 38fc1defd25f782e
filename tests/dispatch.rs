//! Dispatcher behaviour under a manual clock, with a scriptable recording channel: timing,
//! rendering, retries with backoff, channel chains, contact windows, pauses and payments,
//! catch-up and crash recovery. Driven through `Dispatcher::dispatch_due_once` (the claim path
//! `Dispatcher::run` uses), so no real sleeps.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use common::rec::Answer;
use common::sim::{Sim, SimOptions, ts};
use common::{step, test_policy};
use std::time::Duration;

use jiff::SignedDuration;
use plazo::config::OnUnknown;
use plazo::dispatch::recover_in_flight;
use plazo::domain::{AttemptOutcome, InvoiceId, ReminderState};
use plazo::service::pause_invoice;

// ---------------------------------------------------------------------------------------------
// Harness.

fn policy_text() -> String {
    test_policy(
        "America/Bogota",
        "en",
        ("08:00", "19:00"),
        &["standard", "chain", "late"],
        &[
            step("standard", "courtesy", "-3d", None, &["email"]),
            step("standard", "due_today", "0d", None, &["email"]),
            step("standard", "friendly_overdue", "+3d", None, &["email"]),
            step("standard", "firm_overdue", "+10d", None, &["email"]),
            step("chain", "due_today", "0d", None, &["email", "sms"]),
            step("chain", "firm_overdue", "+5d", None, &["email"]),
            step("late", "due_today", "0d", Some("18:58"), &["email"]),
            step("late", "firm_overdue", "+5d", None, &["email"]),
        ],
    )
}

/// The dispatcher under [`policy_text`], the clock at `now`.
fn harness(now: &str, max_attempts: u32) -> Sim {
    let options = SimOptions {
        max_attempts,
        ..SimOptions::default()
    };
    Sim::with(&policy_text(), now, options)
}

fn maria(email: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": "María Pérez", "locale": "es-CO", "timezone": "America/Bogota",
        "country": "CO", "phone": "3001234567"
    });
    if email {
        v["email"] = "maria@cliente.example.co".into();
    }
    v
}

// Due 2026-03-16 (a Monday) in America/Bogota (UTC-5, no DST), send_at 09:00 local = 14:00Z:
// courtesy 03-13T14:00Z, due_today 03-16T14:00Z, friendly 03-19T14:00Z, firm 03-26T14:00Z.

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn not_sent_early_then_sent_on_time_rendered_for_locale_and_next_step_planned() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    h.client("cli-1", maria(true));
    let next = h.invoice_due("inv-1", "cli-1", "2026-03-16");
    assert_eq!(next, Some(ts("2026-03-13T14:00:00Z")));

    assert_eq!(h.at("2026-03-13T13:59:59Z").await, 0);
    assert!(h.email.sent().is_empty(), "sent before its time");

    assert_eq!(h.at("2026-03-13T14:00:00Z").await, 1);
    let sent = h.email.sent();
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m.to, "maria@cliente.example.co");
    assert_eq!(m.step, "courtesy");
    assert_eq!(m.locale, "es", "es-CO falls back to the es templates");
    let subject = m.subject.as_deref().unwrap();
    assert!(
        subject.starts_with("Recordatorio: su factura FV-inv-1"),
        "{subject}"
    );
    assert!(m.text.contains("María Pérez"), "{}", m.text);
    assert!(m.text.contains("$ 1.250.000"), "{}", m.text);
    assert!(m.html.as_deref().unwrap().contains("FV-inv-1"));

    let sent_lines = h.outcomes("inv-1", AttemptOutcome::Sent);
    assert_eq!(sent_lines.len(), 1);
    assert_eq!(sent_lines[0].channel.as_deref(), Some("email"));
    assert_eq!(
        sent_lines[0].provider_message_id.as_deref(),
        Some("rec-email-1")
    );
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "due_today");
    assert_eq!(next.fire_at, ts("2026-03-16T14:00:00Z"));
    assert_eq!(h.inv("inv-1").cursor, Some(0));

    // Running again at the same instant sends nothing more.
    assert_eq!(h.at("2026-03-13T14:00:00Z").await, 0);
    assert_eq!(h.email.sent().len(), 1);
}

#[tokio::test]
async fn transient_errors_retry_with_backoff_then_fall_through_to_next_channel() {
    let h = harness("2026-03-01T12:00:00Z", 3);
    let mut c = maria(true);
    c["segment"] = "chain".into();
    h.client("cli-1", c);
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    h.email.script(&[
        Answer::Transient(None),
        Answer::Transient(Some(Duration::from_secs(600))),
        Answer::Transient(None),
    ]);
    let t0 = ts("2026-03-16T14:00:00Z");
    assert_eq!(h.at_ts(t0).await, 1);
    assert!(h.email.sent().is_empty() && h.sms.sent().is_empty());
    let r = h.pending("inv-1").unwrap();
    assert_eq!(r.state, ReminderState::Scheduled);
    assert_eq!(r.attempts, 1);
    // base 60 s with ±20 % jitter.
    let delay = r.fire_at.duration_since(t0);
    assert!(
        delay >= SignedDuration::from_secs(48) && delay <= SignedDuration::from_secs(72),
        "first retry after {delay}"
    );
    // Not before its time.
    assert_eq!(h.at_ts(r.fire_at - SignedDuration::from_secs(1)).await, 0);
    assert_eq!(h.email.calls(), 1);

    // Second attempt: the provider asks for 10 minutes, which beats the backoff.
    let t1 = r.fire_at;
    assert_eq!(h.at_ts(t1).await, 1);
    let r = h.pending("inv-1").unwrap();
    assert_eq!(r.attempts, 2);
    assert!(
        r.fire_at.duration_since(h.now()) >= SignedDuration::from_secs(600),
        "{r:?} {:?}",
        h.timeline("inv-1")
    );
    assert_eq!(h.at_ts(r.fire_at - SignedDuration::from_secs(1)).await, 0);

    // Third attempt reaches max_attempts: email gives up, sms is tried in the same pass.
    assert_eq!(h.at_ts(r.fire_at).await, 1);
    assert_eq!(h.email.calls(), 3);
    assert!(h.email.sent().is_empty());
    let sms = h.sms.sent();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].to, "+573001234567");
    assert!(sms[0].subject.is_none());
    assert_eq!(h.outcomes("inv-1", AttemptOutcome::RetryScheduled).len(), 2);
    let failed = h.outcomes("inv-1", AttemptOutcome::Failed);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].channel.as_deref(), Some("email"));
    assert!(
        failed[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("gave up after 3 attempts")
    );
    let sent = h.outcomes("inv-1", AttemptOutcome::Sent);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].channel.as_deref(), Some("sms"));
    assert_eq!(h.pending("inv-1").unwrap().step_name, "firm_overdue");
}

#[tokio::test]
async fn permanent_error_tries_next_channel_in_same_pass() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    let mut c = maria(true);
    c["segment"] = "chain".into();
    h.client("cli-1", c);
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    h.email.script(&[Answer::Permanent]);
    assert_eq!(h.at("2026-03-16T14:00:00Z").await, 1);
    assert_eq!(h.email.calls(), 1);
    assert_eq!(h.sms.sent().len(), 1);
    let failed = h.outcomes("inv-1", AttemptOutcome::Failed);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].channel.as_deref(), Some("email"));
    assert!(
        h.outcomes("inv-1", AttemptOutcome::RetryScheduled)
            .is_empty()
    );
    assert_eq!(h.pending("inv-1").unwrap().step_name, "firm_overdue");
}

#[tokio::test]
async fn every_channel_failing_records_the_step_failed_and_the_cadence_continues() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    let mut c = maria(true);
    c["segment"] = "chain".into();
    h.client("cli-1", c);
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    h.email.script(&[Answer::Permanent]);
    h.sms.script(&[Answer::Permanent]);
    assert_eq!(h.at("2026-03-16T14:00:00Z").await, 1);
    assert!(h.email.sent().is_empty() && h.sms.sent().is_empty());
    let failed = h.outcomes("inv-1", AttemptOutcome::Failed);
    assert_eq!(failed.len(), 3, "email, sms, and the step: {failed:?}");
    assert!(failed[2].detail.as_deref().unwrap().contains("no channel"));
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "firm_overdue");
    assert_eq!(next.fire_at, ts("2026-03-21T14:00:00Z"));
}

#[tokio::test]
async fn client_without_email_skips_the_channel_with_a_reason() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    let mut c = maria(false);
    c["segment"] = "chain".into();
    h.client("cli-1", c);
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    assert_eq!(h.at("2026-03-16T14:00:00Z").await, 1);
    assert_eq!(h.email.calls(), 0, "no address: the channel is not called");
    assert_eq!(h.sms.sent().len(), 1);
    let skipped = h.outcomes("inv-1", AttemptOutcome::Skipped);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].channel.as_deref(), Some("email"));
    assert!(
        skipped[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("no email address"),
        "{skipped:?}"
    );
}

#[tokio::test]
async fn preferred_channels_reorder_the_chain() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    let mut c = maria(true);
    c["segment"] = "chain".into();
    c["preferred_channels"] = serde_json::json!(["sms"]);
    h.client("cli-1", c);
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    assert_eq!(h.at("2026-03-16T14:00:00Z").await, 1);
    assert_eq!(h.sms.sent().len(), 1);
    assert_eq!(h.email.calls(), 0, "sms delivered first; email never tried");
}

#[tokio::test]
async fn step_at_night_is_planned_into_the_window_and_late_retry_is_deferred() {
    // Step at 18:58 local; the retry (after 2 h) lands at 20:58 local, outside 08:00-19:00.
    let h = harness("2026-03-01T12:00:00Z", 6);
    let mut c = maria(true);
    c["segment"] = "late".into();
    h.client("cli-1", c);
    let next = h.invoice_due("inv-1", "cli-1", "2026-03-16");
    assert_eq!(next, Some(ts("2026-03-16T23:58:00Z")));
    h.email
        .script(&[Answer::Transient(Some(Duration::from_secs(7200)))]);
    assert_eq!(h.at("2026-03-16T23:58:00Z").await, 1);
    let r = h.pending("inv-1").unwrap();
    assert_eq!(r.fire_at, ts("2026-03-17T01:58:00Z"), "20:58 local");
    // At 22:00 local the retry is due (the daemon was busy); it must wait for 08:00 local.
    assert_eq!(h.at("2026-03-17T03:00:00Z").await, 1);
    assert_eq!(h.email.calls(), 1, "nothing sent outside the window");
    let deferred = h.outcomes("inv-1", AttemptOutcome::Deferred);
    assert_eq!(deferred.len(), 1, "{:?}", h.timeline("inv-1"));
    let r = h.pending("inv-1").unwrap();
    assert_eq!(
        r.fire_at,
        ts("2026-03-17T13:00:00Z"),
        "08:00 local next day"
    );
    assert_eq!(h.at("2026-03-17T12:59:59Z").await, 0);
    assert_eq!(h.at("2026-03-17T13:00:00Z").await, 1);
    assert_eq!(h.email.sent().len(), 1);
}

#[tokio::test]
async fn step_due_outside_the_window_is_planned_for_the_next_morning() {
    // Due at an instant 22:00 local: the 0d step lands then, and moves to 08:00 next day.
    let h = harness("2026-03-01T12:00:00Z", 6);
    h.client("cli-1", maria(true));
    let next = h.invoice_due("inv-1", "cli-1", "2026-03-16T22:00:00-05:00");
    // courtesy at -3d (same wall time, 22:00) → 2026-03-14 08:00 local.
    assert_eq!(next, Some(ts("2026-03-14T13:00:00Z")));
    assert_eq!(
        h.at("2026-03-14T03:00:00Z").await,
        0,
        "22:00 local: nothing"
    );
    assert_eq!(h.at("2026-03-14T13:00:00Z").await, 1);
    assert_eq!(h.email.sent().len(), 1);
}

#[tokio::test]
async fn paid_or_paused_invoices_get_nothing() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    h.client("cli-1", maria(true));
    h.invoice_due("inv-paid", "cli-1", "2026-03-16");
    h.invoice_due("inv-paused", "cli-1", "2026-03-16");
    h.pay_in_full("inv-paid", "PSE-1");
    let p = h.policy.current();
    pause_invoice(
        &h.store,
        &p.policy,
        &InvoiceId::new("inv-paused").unwrap(),
        "disputed".into(),
        None,
        h.now(),
    )
    .unwrap();
    for t in [
        "2026-03-13T14:00:00Z",
        "2026-03-16T14:00:00Z",
        "2026-04-30T14:00:00Z",
    ] {
        h.at(t).await;
    }
    assert_eq!(h.email.calls(), 0);
    assert!(h.pending("inv-paid").is_none());
    assert!(h.pending("inv-paused").is_none());
    assert!(h.outcomes("inv-paid", AttemptOutcome::Sent).is_empty());
}

#[tokio::test]
async fn catch_up_sends_one_message_and_skips_the_older_steps() {
    // Ingested five days after the due date: courtesy, due_today and friendly_overdue are past.
    let h = harness("2026-03-21T15:00:00Z", 6);
    h.client("cli-1", maria(true));
    let next = h.invoice_due("inv-1", "cli-1", "2026-03-16");
    assert_eq!(
        next,
        Some(ts("2026-03-21T15:00:00Z")),
        "caught-up step is due now"
    );
    assert_eq!(h.at("2026-03-21T15:00:00Z").await, 1);
    let sent = h.email.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].step, "friendly_overdue");
    let skipped: Vec<String> = h
        .outcomes("inv-1", AttemptOutcome::Skipped)
        .into_iter()
        .map(|a| a.step.unwrap())
        .collect();
    assert_eq!(skipped, ["courtesy", "due_today"]);
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "firm_overdue");
    assert_eq!(next.fire_at, ts("2026-03-26T14:00:00Z"));
    // Nothing else goes out before firm_overdue.
    assert_eq!(h.at("2026-03-26T13:59:00Z").await, 0);
    assert_eq!(h.email.sent().len(), 1);
}

#[tokio::test]
async fn crash_recovery_skip_logs_unknown_and_moves_on() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    h.client("cli-1", maria(true));
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    h.clock.set(ts("2026-03-13T14:00:00Z"));
    // Claimed, made durable, then the process "dies" before sending or recording.
    let claimed = h.store.claim_due(h.now(), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(h.store.in_flight().unwrap().len(), 1);
    let p = h.policy.current();
    let n = recover_in_flight(&h.store, &p.policy, OnUnknown::Skip, h.now()).unwrap();
    assert_eq!(n, 1);
    assert!(h.store.in_flight().unwrap().is_empty());
    let unknown = h.outcomes("inv-1", AttemptOutcome::Unknown);
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].step.as_deref(), Some("courtesy"));
    assert_eq!(
        h.store
            .reminder(&claimed[0].invoice_id, &claimed[0].id)
            .unwrap()
            .unwrap()
            .state,
        ReminderState::Unknown
    );
    assert_eq!(h.at("2026-03-13T14:00:00Z").await, 0, "not resent");
    assert_eq!(h.email.calls(), 0);
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "due_today");
    assert_eq!(next.fire_at, ts("2026-03-16T14:00:00Z"));
}

#[tokio::test]
async fn crash_recovery_resend_sends_again() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    h.client("cli-1", maria(true));
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    h.clock.set(ts("2026-03-13T14:00:00Z"));
    let claimed = h.store.claim_due(h.now(), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    h.clock.set(ts("2026-03-13T15:00:00Z"));
    let p = h.policy.current();
    recover_in_flight(&h.store, &p.policy, OnUnknown::Resend, h.now()).unwrap();
    assert_eq!(h.outcomes("inv-1", AttemptOutcome::Unknown).len(), 1);
    assert_eq!(h.d.dispatch_due_once().await.unwrap(), 1);
    let sent = h.email.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].step, "courtesy");
    assert_eq!(sent[0].reminder_id, claimed[0].id);
    assert_eq!(h.pending("inv-1").unwrap().step_name, "due_today");
}

#[tokio::test]
async fn repeated_preferences_never_try_a_channel_twice() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    let mut c = maria(true);
    c["segment"] = "chain".into();
    c["preferred_channels"] = serde_json::json!(["sms", "email", "sms"]);
    h.client("cli-1", c);
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    h.sms.script(&[Answer::Permanent, Answer::Permanent]);
    h.email.script(&[Answer::Permanent]);
    assert_eq!(h.at("2026-03-16T14:00:00Z").await, 1);
    assert_eq!(h.sms.calls(), 1, "sms tried twice for one step");
    assert_eq!(h.email.calls(), 1);
}

#[tokio::test]
async fn pause_until_catches_up_at_its_end_and_logs_the_superseded_step_then() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    h.client("cli-1", maria(true));
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    let p = h.policy.current();
    // Until 2026-03-17 20:00 local: courtesy and due_today will have passed.
    pause_invoice(
        &h.store,
        &p.policy,
        &InvoiceId::new("inv-1").unwrap(),
        "disputed".into(),
        Some(ts("2026-03-18T01:00:00Z")),
        h.now(),
    )
    .unwrap();
    assert!(
        h.outcomes("inv-1", AttemptOutcome::Skipped).is_empty(),
        "nothing is skipped before its time"
    );
    assert_eq!(h.inv("inv-1").cursor, None);
    let r = h.pending("inv-1").unwrap();
    assert_eq!(r.step_name, "due_today");
    assert_eq!(
        r.fire_at,
        ts("2026-03-18T13:00:00Z"),
        "08:00 local after the pause"
    );
    assert_eq!(h.at("2026-03-13T14:00:00Z").await, 0);
    assert_eq!(h.at("2026-03-18T13:00:00Z").await, 1);
    let sent = h.email.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].step, "due_today");
    let skipped: Vec<String> = h
        .outcomes("inv-1", AttemptOutcome::Skipped)
        .into_iter()
        .map(|a| a.step.unwrap())
        .collect();
    assert_eq!(skipped, ["courtesy"]);
    assert_eq!(h.pending("inv-1").unwrap().step_name, "friendly_overdue");
}

#[tokio::test]
async fn an_outcome_that_cannot_be_recorded_during_a_store_outage_is_recorded_after_recovery() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    h.client("cli-1", maria(true));
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    // The provider accepts the message, then the disk fills up before plazo records it; space
    // comes back a moment later.
    let faults = h.store.faults();
    h.email
        .script(&[Answer::OkThen(std::sync::Arc::new(move || {
            faults.fail_writes(true);
            let faults = faults.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                faults.fail_writes(false);
            });
        }))]);

    assert_eq!(h.at("2026-03-13T14:00:00Z").await, 1);
    assert_eq!(h.store.health(), Ok(()), "the store recovered by itself");
    assert_eq!(h.email.sent().len(), 1);
    let sent = h.outcomes("inv-1", AttemptOutcome::Sent);
    assert_eq!(sent.len(), 1, "the send is on the timeline once");
    assert_eq!(sent[0].step.as_deref(), Some("courtesy"));
    // Not left in flight until a restart: the next step is planned.
    let next = h.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "due_today");
    assert_eq!(next.state, ReminderState::Scheduled);
    assert!(h.store.in_flight().unwrap().is_empty());

    // And nothing is sent twice.
    assert_eq!(h.at("2026-03-13T14:00:00Z").await, 0);
    assert_eq!(h.email.sent().len(), 1);
}

#[tokio::test]
async fn crash_recovery_plans_again_what_was_queued_but_never_taken_even_with_skip() {
    let h = harness("2026-03-01T12:00:00Z", 6);
    h.client("cli-1", maria(true));
    h.invoice_due("inv-1", "cli-1", "2026-03-16");
    h.client("cli-2", maria(true));
    h.invoice_due("inv-2", "cli-2", "2026-03-16");
    h.clock.set(ts("2026-03-13T14:00:00Z"));
    // Both claimed; a new leader finds inv-1's message still queued, never taken by a node.
    let claimed = h.store.claim_due(h.now(), 10).unwrap();
    assert_eq!(claimed.len(), 2);
    let queued = claimed
        .iter()
        .find(|r| r.invoice_id.as_str() == "inv-1")
        .unwrap();
    let never_sent = std::collections::HashSet::from([queued.id]);
    h.clock.set(ts("2026-03-13T15:00:00Z"));
    let p = h.policy.current();
    let in_doubt = plazo::dispatch::recover_in_flight_knowing(
        &h.store,
        &p.policy,
        OnUnknown::Skip,
        h.now(),
        &never_sent,
    )
    .unwrap();
    assert_eq!(in_doubt, 1, "only inv-2 was in doubt");
    assert!(h.store.in_flight().unwrap().is_empty());
    // inv-2: unknown, not sent again (skip). inv-1: no unknown line, planned again, sent.
    assert_eq!(h.outcomes("inv-2", AttemptOutcome::Unknown).len(), 1);
    assert!(h.outcomes("inv-1", AttemptOutcome::Unknown).is_empty());
    let deferred = h.outcomes("inv-1", AttemptOutcome::Deferred);
    assert_eq!(deferred.len(), 1);
    assert!(
        deferred[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("never taken by any"),
        "{deferred:?}"
    );
    assert_eq!(h.d.dispatch_due_once().await.unwrap(), 1);
    let sent = h.email.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].reminder_id, queued.id);
    assert_eq!(sent[0].step, "courtesy");
    assert_eq!(h.pending("inv-1").unwrap().step_name, "due_today");
}
