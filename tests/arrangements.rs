//! Promises to pay and payment plans in the dispatcher, under a manual clock: a kept promise
//! stops the chase (or hands it back to the regular cadence), a broken one fires the
//! broken-promise step and counts against the client, a plan reminds per instalment and closes
//! on its last payment, a missed instalment breaks the plan; plus cancellations, refunds,
//! due-date changes, crash recovery of a deadline check and the API's validation.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use common::sim::{Sim, ts};
use common::{email_step, repo, test_policy};
use plazo::domain::{
    ArrangementKind, ArrangementState, AttemptOutcome, InstalmentState, InvoiceId, InvoiceStatus,
    ReminderState, Track,
};
use plazo::service::{
    InstalmentInput, PlanInput, PromiseInput, ServiceError, cancel_arrangement, make_plan,
    make_promise,
};

/// Templates that print what a message is about, so assertions do not depend on the wording
/// of the shipped ones.
fn templates() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let es = dir.path().join("es");
        std::fs::create_dir_all(&es).unwrap();
        let body = "{{ step.name }} saldo={{ invoice.balance }}{% if arrangement %} {{ arrangement.kind }} {{ arrangement.instalment }}/{{ arrangement.instalments }} monto={{ arrangement.amount }} pendiente={{ arrangement.outstanding }} fecha={{ arrangement.due_date_iso }} roto={{ arrangement.broken }}{% endif %}\n";
        for name in [
            "due_today",
            "friendly_overdue",
            "firm_overdue",
            "final_notice",
            "promise_reminder",
            "instalment_reminder",
            "promise_broken",
        ] {
            std::fs::write(es.join(format!("{name}.subject.txt")), "{{ step.name }}").unwrap();
            std::fs::write(es.join(format!("{name}.txt")), body).unwrap();
            std::fs::write(es.join(format!("{name}.html")), format!("<p>{body}</p>")).unwrap();
        }
        dir
    })
    .path()
}

/// Bogotá (UTC-5, no DST), send_at 09:00 local (14:00Z), window 08:00-19:00 every day.
fn policy() -> String {
    let p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &[
            email_step("standard", "due_today", "0d", "due_today", "friendly"),
            email_step(
                "standard",
                "friendly_overdue",
                "+3d",
                "friendly_overdue",
                "friendly",
            ),
            email_step("standard", "firm_overdue", "+10d", "firm_overdue", "firm"),
            email_step("standard", "final_notice", "+60d", "final_notice", "final"),
            email_step(
                "promise",
                "promise_tomorrow",
                "-1d",
                "promise_reminder",
                "friendly",
            ),
            email_step(
                "instalments",
                "instalment_soon",
                "-3d",
                "instalment_reminder",
                "friendly",
            ),
            email_step(
                "instalments",
                "instalment_due",
                "0d",
                "instalment_reminder",
                "firm",
            ),
            email_step("broken", "promise_broken", "0d", "promise_broken", "firm"),
        ],
    );
    let p = p.replacen(
        &format!(
            "templates_dir = \"{}\"",
            repo().join("config/templates").display()
        ),
        &format!("templates_dir = \"{}\"", templates().display()),
        1,
    );
    let mut p = p;
    p.push_str(
        "[promises]\ncadence = \"promise\"\ngrace = \"1d\"\nbroken_cadence = \"broken\"\nmax_days = 30\n\n[plans]\ncadence = \"instalments\"\ngrace = \"2d\"\nmax_instalments = 6\n",
    );
    p
}

// Invoice due 2026-03-16: due_today 03-16T14:00Z, friendly_overdue 03-19T14:00Z,
// firm_overdue 03-26T14:00Z, final_notice 05-15T14:00Z.
const DUE: &str = "2026-03-16";

/// A client and a 1,250,000 COP invoice due 2026-03-16 whose first step went out on the due
/// date; the clock is then at 2026-03-17T15:00Z (10:00 in Bogotá).
async fn started() -> Sim {
    let sim = Sim::new(&policy(), "2026-03-10T12:00:00Z");
    sim.client(
        "cli-1",
        serde_json::json!({"name": "María Pérez", "email": "maria@cliente.example.co",
                           "timezone": "America/Bogota", "country": "CO"}),
    );
    sim.invoice("inv-1", "cli-1", DUE, "1250000");
    assert_eq!(sim.at("2026-03-16T14:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps(), ["due_today"]);
    sim.set("2026-03-17T15:00:00Z");
    sim
}

fn promise(sim: &Sim, amount: &str, date: &str) -> Result<plazo::service::Arranged, ServiceError> {
    let p = sim.policy.current();
    make_promise(
        &sim.store,
        &p.policy,
        &InvoiceId::new("inv-1").unwrap(),
        PromiseInput {
            amount: amount.into(),
            date: date.into(),
            channel: Some("phone".into()),
            note: Some("llamada con María".into()),
        },
        sim.now(),
    )
}

fn plan(sim: &Sim, parts: &[(&str, &str)]) -> Result<plazo::service::Arranged, ServiceError> {
    let p = sim.policy.current();
    make_plan(
        &sim.store,
        &p.policy,
        &InvoiceId::new("inv-1").unwrap(),
        PlanInput {
            instalments: parts
                .iter()
                .map(|(d, a)| InstalmentInput {
                    date: (*d).into(),
                    amount: (*a).into(),
                })
                .collect(),
            channel: Some("whatsapp".into()),
            note: None,
        },
        sim.now(),
    )
}

fn last_text(sim: &Sim) -> String {
    let sent = sim.email.sent();
    let o = sent.last().unwrap();
    format!("{}\n{}", o.subject.clone().unwrap_or_default(), o.text)
}

#[tokio::test]
async fn a_promise_pauses_the_cadence_reminds_the_day_before_and_kept_stops_the_chase() {
    let sim = started().await;
    let made = promise(&sim, "1250000", "2026-03-20").unwrap();
    assert_eq!(made.arrangement.kind, ArrangementKind::Promise);
    // The day before the promised date, at send_at; friendly_overdue (03-19 too) waits.
    assert_eq!(made.next, Some(ts("2026-03-19T14:00:00Z")));
    let pending = sim.pending("inv-1").unwrap();
    assert_eq!(
        pending.track,
        Track::Instalment {
            arrangement: 1,
            instalment: 0
        }
    );
    assert_eq!(sim.at("2026-03-19T13:59:59Z").await, 0);
    assert_eq!(sim.at("2026-03-19T14:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps(), ["due_today", "promise_tomorrow"]);
    let text = last_text(&sim);
    assert!(text.contains("1.250.000"), "{text}");
    // Next: the deadline check at the end of 03-20 + 1 day of grace, local midnight.
    let deadline = sim.pending("inv-1").unwrap();
    assert_eq!(deadline.fire_at, ts("2026-03-22T05:00:00Z"));
    assert!(matches!(deadline.track, Track::Deadline { .. }));

    sim.set("2026-03-20T20:00:00Z");
    sim.pay("inv-1", "1250000", "tx-1");
    let inv = sim.inv("inv-1");
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert_eq!(inv.arrangements[0].state, ArrangementState::Kept);
    assert_eq!(inv.pending, None);
    for t in [
        "2026-03-22T05:00:00Z",
        "2026-03-26T14:00:00Z",
        "2026-05-20T14:00:00Z",
    ] {
        assert_eq!(sim.at(t).await, 0, "nothing after a kept promise ({t})");
    }
    assert_eq!(sim.emailed_steps(), ["due_today", "promise_tomorrow"]);
    assert_eq!(sim.client_record("cli-1").broken_promises, 0);
    assert_eq!(sim.lines_with("inv-1", "promise #1 kept").len(), 1);
}

#[tokio::test]
async fn a_partial_promise_kept_hands_back_to_the_regular_cadence_without_a_burst() {
    let sim = started().await;
    promise(&sim, "500000", "2026-03-20").unwrap();
    assert_eq!(sim.at("2026-03-19T14:00:00Z").await, 1);
    sim.set("2026-03-20T16:00:00Z");
    sim.pay("inv-1", "300000", "tx-1");
    assert_eq!(
        sim.inv("inv-1").arrangements[0].state,
        ArrangementState::Active,
        "300,000 of 500,000 does not keep it"
    );
    sim.pay("inv-1", "200000", "tx-2");
    let inv = sim.inv("inv-1");
    assert_eq!(inv.arrangements[0].state, ArrangementState::Kept);
    assert_eq!(inv.balance.to_string(), "750000");
    // friendly_overdue fell due during the promise: skipped, not sent late.
    let skipped = sim.lines_with("inv-1", "while promise #1 was active");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].step.as_deref(), Some("friendly_overdue"));
    assert_eq!(skipped[0].outcome, AttemptOutcome::Skipped);
    let next = sim.pending("inv-1").unwrap();
    assert_eq!(
        (next.step_name.as_str(), next.fire_at),
        ("firm_overdue", ts("2026-03-26T14:00:00Z"))
    );
    assert_eq!(sim.at("2026-03-22T05:00:00Z").await, 0);
    assert_eq!(sim.at("2026-03-26T14:00:00Z").await, 1);
    assert_eq!(
        sim.emailed_steps(),
        ["due_today", "promise_tomorrow", "firm_overdue"]
    );
}

#[tokio::test]
async fn a_broken_promise_fires_the_broken_step_counts_and_resumes_the_cadence() {
    let sim = started().await;
    promise(&sim, "500000", "2026-03-20").unwrap();
    assert_eq!(sim.at("2026-03-19T14:00:00Z").await, 1);
    sim.set("2026-03-20T16:00:00Z");
    sim.pay("inv-1", "200000", "tx-1");
    // Grace runs to the end of 03-21 local: nothing yet.
    assert_eq!(sim.at("2026-03-22T04:59:59Z").await, 0);
    assert_eq!(sim.client_record("cli-1").broken_promises, 0);
    // The check runs at local midnight; the message waits for the 08:00 window.
    assert_eq!(sim.at("2026-03-22T05:00:00Z").await, 1);
    let inv = sim.inv("inv-1");
    let arr = &inv.arrangements[0];
    assert_eq!(arr.state, ArrangementState::Broken);
    assert_eq!(arr.instalments[0].state, InstalmentState::Missed);
    assert_eq!(arr.instalments[0].paid.to_string(), "200000");
    assert_eq!(sim.client_record("cli-1").broken_promises, 1);
    let next = sim.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "promise_broken");
    assert_eq!(next.fire_at, ts("2026-03-22T13:00:00Z"));
    assert_eq!(
        sim.emailed_steps().len(),
        2,
        "the check itself sends nothing"
    );
    assert_eq!(sim.at("2026-03-22T13:00:00Z").await, 1);
    assert_eq!(
        sim.emailed_steps(),
        ["due_today", "promise_tomorrow", "promise_broken"]
    );
    let text = last_text(&sim);
    assert!(
        text.contains("300.000"),
        "what is still owed on the promise: {text}"
    );
    // Then the regular cadence: friendly_overdue (03-19) was skipped, firm_overdue goes out.
    assert_eq!(
        sim.lines_with("inv-1", "while arrangement #1 was active")[0]
            .step
            .as_deref(),
        Some("friendly_overdue")
    );
    assert_eq!(sim.at("2026-03-26T14:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps().last().unwrap(), "firm_overdue");
    // The deadline check is recorded as checked (not sent, not cancelled).
    let deadline = plazo::domain::ReminderId::for_track(
        &InvoiceId::new("inv-1").unwrap(),
        0,
        &Track::Deadline {
            arrangement: 1,
            instalment: 0,
        },
        0,
    );
    assert_eq!(
        sim.store
            .reminder(&InvoiceId::new("inv-1").unwrap(), &deadline)
            .unwrap()
            .unwrap()
            .state,
        ReminderState::Checked
    );
    assert_eq!(sim.lines_with("inv-1", "promise #1 broken").len(), 1);
}

#[tokio::test]
async fn a_three_instalment_plan_reminds_per_instalment_and_closes_on_the_last_payment() {
    let sim = started().await;
    let made = plan(
        &sim,
        &[
            ("2026-04-01", "400000"),
            ("2026-04-15", "400000"),
            ("2026-04-30", "450000"),
        ],
    )
    .unwrap();
    // Instalment 1, three days before.
    assert_eq!(made.next, Some(ts("2026-03-29T14:00:00Z")));
    // Regular steps on 03-19 and 03-26 wait.
    assert_eq!(sim.at("2026-03-19T14:00:00Z").await, 0);
    assert_eq!(sim.at("2026-03-26T14:00:00Z").await, 0);
    assert_eq!(sim.at("2026-03-29T14:00:00Z").await, 1);
    assert!(last_text(&sim).contains("400.000"));
    // Paid before its date: its "due" reminder is not sent; instalment 2 is next.
    sim.set("2026-03-31T15:00:00Z");
    sim.pay("inv-1", "400000", "cuota-1");
    let next = sim.pending("inv-1").unwrap();
    assert_eq!(
        (next.step_name.as_str(), next.fire_at),
        ("instalment_soon", ts("2026-04-12T14:00:00Z"))
    );
    assert_eq!(sim.at("2026-04-01T14:00:00Z").await, 0);
    assert_eq!(sim.at("2026-04-12T14:00:00Z").await, 1);
    assert_eq!(sim.at("2026-04-15T14:00:00Z").await, 1);
    // Paid in two parts, oldest instalment first.
    sim.set("2026-04-15T20:00:00Z");
    sim.pay("inv-1", "150000", "cuota-2a");
    let inv = sim.inv("inv-1");
    assert_eq!(inv.arrangements[0].current, 1);
    assert_eq!(
        inv.arrangements[0].instalments[1].paid.to_string(),
        "150000"
    );
    sim.pay("inv-1", "250000", "cuota-2b");
    assert_eq!(sim.inv("inv-1").arrangements[0].current, 2);
    assert_eq!(sim.at("2026-04-27T14:00:00Z").await, 1);
    assert!(last_text(&sim).contains("450.000"));
    assert_eq!(sim.at("2026-04-30T14:00:00Z").await, 1);
    sim.set("2026-04-30T18:00:00Z");
    sim.pay("inv-1", "450000", "cuota-3");
    let inv = sim.inv("inv-1");
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert_eq!(inv.arrangements[0].state, ArrangementState::Kept);
    assert!(
        inv.arrangements[0]
            .instalments
            .iter()
            .all(|i| i.state == InstalmentState::Paid)
    );
    assert_eq!(sim.at("2026-05-20T14:00:00Z").await, 0);
    assert_eq!(
        sim.emailed_steps(),
        [
            "due_today",
            "instalment_soon",
            "instalment_soon",
            "instalment_due",
            "instalment_soon",
            "instalment_due"
        ]
    );
    // Each message was about its own instalment.
    let reminders: Vec<_> = sim
        .email
        .sent()
        .iter()
        .skip(1)
        .map(|o| {
            sim.store
                .reminder(&o.invoice_id, &o.reminder_id)
                .unwrap()
                .unwrap()
                .track
        })
        .collect();
    let instalments: Vec<u32> = reminders
        .iter()
        .map(|t| match t {
            Track::Instalment { instalment, .. } => *instalment,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(instalments, [0, 1, 1, 2, 2]);
    assert_eq!(sim.client_record("cli-1").broken_promises, 0);
}

#[tokio::test]
async fn a_missed_instalment_breaks_the_plan_like_a_broken_promise() {
    let sim = started().await;
    plan(&sim, &[("2026-04-01", "600000"), ("2026-04-15", "650000")]).unwrap();
    sim.set("2026-03-30T15:00:00Z");
    sim.pay("inv-1", "600000", "cuota-1");
    assert_eq!(sim.at("2026-04-12T14:00:00Z").await, 1);
    assert_eq!(sim.at("2026-04-15T14:00:00Z").await, 1);
    // Grace of 2 days: broken at the start of 04-18 local.
    assert_eq!(sim.at("2026-04-18T04:59:00Z").await, 0);
    assert_eq!(sim.at("2026-04-18T05:00:00Z").await, 1);
    let inv = sim.inv("inv-1");
    assert_eq!(inv.arrangements[0].state, ArrangementState::Broken);
    assert_eq!(
        inv.arrangements[0].instalments[0].state,
        InstalmentState::Paid
    );
    assert_eq!(
        inv.arrangements[0].instalments[1].state,
        InstalmentState::Missed
    );
    assert_eq!(sim.client_record("cli-1").broken_promises, 1);
    assert_eq!(sim.at("2026-04-18T13:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps().last().unwrap(), "promise_broken");
    // The regular cadence takes over with its next future step.
    let next = sim.pending("inv-1").unwrap();
    assert_eq!(
        (next.step_name.as_str(), next.fire_at, next.track),
        ("final_notice", ts("2026-05-15T14:00:00Z"), Track::Cadence)
    );
    // Every regular step that passed during the plan was skipped once, none sent.
    let skipped = sim.lines_with("inv-1", "while arrangement #1 was active");
    let names: Vec<_> = skipped.iter().map(|a| a.step.clone().unwrap()).collect();
    assert_eq!(names, ["friendly_overdue", "firm_overdue"]);
}

#[tokio::test]
async fn cancelling_a_promise_resumes_the_cadence_and_is_not_a_broken_promise() {
    let sim = started().await;
    promise(&sim, "500000", "2026-03-25").unwrap();
    sim.set("2026-03-20T15:00:00Z");
    let p = sim.policy.current();
    let id = InvoiceId::new("inv-1").unwrap();
    let wrong = cancel_arrangement(
        &sim.store,
        &p.policy,
        &id,
        ArrangementKind::Plan,
        1,
        None,
        sim.now(),
    );
    assert!(
        matches!(wrong, Err(ServiceError::NotFound { .. })),
        "{wrong:?}"
    );
    let (inv, next) = cancel_arrangement(
        &sim.store,
        &p.policy,
        &id,
        ArrangementKind::Promise,
        1,
        Some("renegotiated by phone".into()),
        sim.now(),
    )
    .unwrap();
    assert_eq!(inv.arrangements[0].state, ArrangementState::Cancelled);
    assert_eq!(next, Some(ts("2026-03-26T14:00:00Z")));
    let again = cancel_arrangement(
        &sim.store,
        &p.policy,
        &id,
        ArrangementKind::Promise,
        1,
        None,
        sim.now(),
    );
    assert!(matches!(again, Err(ServiceError::Conflict(_))), "{again:?}");
    assert_eq!(
        sim.at("2026-03-25T14:00:00Z").await,
        0,
        "no promise reminder after a cancel"
    );
    assert_eq!(sim.at("2026-03-30T14:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps(), ["due_today", "firm_overdue"]);
    assert_eq!(sim.client_record("cli-1").broken_promises, 0);
    // A new promise can be made once the old one is over.
    sim.set("2026-03-30T15:00:00Z");
    assert_eq!(
        promise(&sim, "100000", "2026-04-02")
            .unwrap()
            .arrangement
            .id,
        2
    );
}

#[tokio::test]
async fn a_due_date_change_never_sends_a_promise_step_twice() {
    let sim = started().await;
    promise(&sim, "500000", "2026-03-20").unwrap();
    assert_eq!(sim.at("2026-03-19T14:00:00Z").await, 1);
    sim.set("2026-03-19T16:00:00Z");
    // The ERP moves the due date: a new plan generation.
    sim.invoice("inv-1", "cli-1", "2026-03-18", "1250000");
    assert_eq!(sim.inv("inv-1").generation, 1);
    let next = sim.pending("inv-1").unwrap();
    assert!(matches!(next.track, Track::Deadline { .. }), "{next:?}");
    assert_eq!(sim.at("2026-03-19T18:00:00Z").await, 0);
    assert_eq!(sim.emailed_steps(), ["due_today", "promise_tomorrow"]);
}

#[tokio::test]
async fn a_refund_moves_the_chase_back_to_the_uncovered_instalment_without_resending() {
    let sim = started().await;
    plan(&sim, &[("2026-04-01", "600000"), ("2026-04-15", "650000")]).unwrap();
    assert_eq!(sim.at("2026-03-29T14:00:00Z").await, 1);
    assert_eq!(sim.at("2026-04-01T14:00:00Z").await, 1);
    sim.set("2026-04-01T16:00:00Z");
    sim.pay("inv-1", "600000", "cuota-1");
    assert_eq!(sim.inv("inv-1").arrangements[0].current, 1);
    // Refunded (a chargeback): instalment 1 is owed again, its steps were already sent.
    sim.refund("inv-1", "600000", "evt_refund");
    let inv = sim.inv("inv-1");
    assert_eq!(inv.balance.to_string(), "1250000");
    assert_eq!(inv.arrangements[0].current, 0);
    let next = sim.pending("inv-1").unwrap();
    assert_eq!(
        next.track,
        Track::Deadline {
            arrangement: 1,
            instalment: 0
        },
        "both steps of instalment 1 were sent: only its deadline is left"
    );
    assert_eq!(next.fire_at, ts("2026-04-04T05:00:00Z"));
    assert_eq!(sim.at("2026-04-04T05:00:00Z").await, 1);
    assert_eq!(
        sim.inv("inv-1").arrangements[0].state,
        ArrangementState::Broken
    );
    assert_eq!(
        sim.emailed_steps(),
        ["due_today", "instalment_soon", "instalment_due"]
    );
}

#[tokio::test]
async fn a_deadline_check_in_flight_at_a_crash_runs_again() {
    let sim = started().await;
    promise(&sim, "500000", "2026-03-20").unwrap();
    assert_eq!(sim.at("2026-03-19T14:00:00Z").await, 1);
    sim.set("2026-03-22T05:00:00Z");
    let claimed = sim.store.claim_due(sim.now(), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(matches!(claimed[0].track, Track::Deadline { .. }));
    // Restart: recovery puts the check back (it sends nothing, so it is safe to run).
    let p = sim.policy.current();
    let found = plazo::dispatch::recover_in_flight(
        &sim.store,
        &p.policy,
        plazo::config::OnUnknown::Skip,
        sim.now(),
    )
    .unwrap();
    assert_eq!(found, 1);
    assert_eq!(sim.at("2026-03-22T05:00:00Z").await, 1);
    assert_eq!(
        sim.inv("inv-1").arrangements[0].state,
        ArrangementState::Broken
    );
    assert_eq!(sim.client_record("cli-1").broken_promises, 1);
}

#[tokio::test]
async fn bad_promises_and_plans_are_refused_with_a_reason_and_change_nothing() {
    let sim = started().await;
    let before = sim.inv("inv-1");
    let invalid =
        |r: Result<plazo::service::Arranged, ServiceError>, field: &str, text: &str| match r {
            Err(ServiceError::Invalid { field: f, message }) => {
                assert_eq!(f, field, "{message}");
                assert!(message.contains(text), "{message}");
            }
            other => panic!("expected invalid {field}: {other:?}"),
        };
    invalid(
        promise(&sim, "1250001", "2026-03-20"),
        "amount",
        "more than the balance",
    );
    invalid(
        promise(&sim, "0", "2026-03-20"),
        "amount",
        "greater than zero",
    );
    invalid(promise(&sim, "10.555", "2026-03-20"), "amount", "decimal");
    invalid(promise(&sim, "1000", "2026-03-16"), "date", "in the past");
    invalid(
        promise(&sim, "1000", "2026-05-01"),
        "date",
        "more than 30 days",
    );
    invalid(promise(&sim, "1000", "20/03/2026"), "date", "2026-12-01");
    invalid(
        plan(&sim, &[("2026-04-01", "600000"), ("2026-04-15", "600000")]),
        "instalments",
        "add up to 1200000 but the balance is 1250000",
    );
    invalid(
        plan(&sim, &[("2026-04-15", "600000"), ("2026-04-01", "650000")]),
        "instalments[1].date",
        "does not come after",
    );
    let seven: Vec<(&str, &str)> = [
        "2026-04-01",
        "2026-04-02",
        "2026-04-03",
        "2026-04-04",
        "2026-04-05",
        "2026-04-06",
        "2026-04-07",
    ]
    .iter()
    .map(|d| (*d, "1"))
    .collect();
    invalid(plan(&sim, &seven), "instalments", "1 to 6");
    let p = sim.policy.current();
    let bad_channel = make_promise(
        &sim.store,
        &p.policy,
        &InvoiceId::new("inv-1").unwrap(),
        PromiseInput {
            amount: "1000".into(),
            date: "2026-03-20".into(),
            channel: Some("by phone!".into()),
            note: None,
        },
        sim.now(),
    );
    invalid(bad_channel, "channel", "not a channel name");
    assert_eq!(sim.inv("inv-1"), before, "nothing changed");
    // One active arrangement at a time.
    promise(&sim, "1000", "2026-03-20").unwrap();
    let second = plan(&sim, &[("2026-04-01", "1250000")]);
    match second {
        Err(ServiceError::Conflict(m)) => {
            assert!(m.contains("DELETE /v1/invoices/inv-1/promises/1"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // A paid invoice takes no promise.
    sim.pay("inv-1", "1250000", "all");
    assert!(matches!(
        promise(&sim, "1000", "2026-03-20"),
        Err(ServiceError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_plan_is_cancelled_when_the_invoice_amount_changes() {
    let sim = started().await;
    plan(&sim, &[("2026-04-01", "600000"), ("2026-04-15", "650000")]).unwrap();
    sim.invoice("inv-1", "cli-1", DUE, "1000000");
    let inv = sim.inv("inv-1");
    assert_eq!(inv.arrangements[0].state, ArrangementState::Cancelled);
    assert!(
        inv.arrangements[0]
            .outcome
            .as_deref()
            .unwrap()
            .contains("no longer matches the balance")
    );
    assert_eq!(
        inv.pending.map(|_| sim.pending("inv-1").unwrap().track),
        Some(Track::Cadence)
    );
    assert_eq!(sim.client_record("cli-1").broken_promises, 0);
}

#[tokio::test]
async fn a_regular_step_in_flight_when_a_promise_is_made_counts_as_handled() {
    let sim = started().await;
    // friendly_overdue is claimed for sending when the promise comes in.
    sim.set("2026-03-19T14:00:00Z");
    let claimed = sim.store.claim_due(sim.now(), 10).unwrap();
    assert_eq!(claimed[0].step_name, "friendly_overdue");
    sim.set("2026-03-19T14:00:01Z");
    let made = promise(&sim, "500000", "2026-03-25").unwrap();
    assert_eq!(made.next, None, "planned when the send in flight ends");
    // It ends (here: found in flight at a restart, recorded as unknown).
    let p = sim.policy.current();
    plazo::dispatch::recover_in_flight(
        &sim.store,
        &p.policy,
        plazo::config::OnUnknown::Skip,
        sim.now(),
    )
    .unwrap();
    let next = sim.pending("inv-1").unwrap();
    assert_eq!(
        (next.step_name.as_str(), next.fire_at),
        ("promise_tomorrow", ts("2026-03-24T14:00:00Z"))
    );
    assert_eq!(sim.inv("inv-1").cursor, Some(1));
    assert_eq!(sim.at("2026-03-24T14:00:00Z").await, 1);
    assert_eq!(sim.at("2026-03-27T05:00:00Z").await, 1);
    let skipped: Vec<_> = sim
        .lines_with("inv-1", "while arrangement #1 was active")
        .into_iter()
        .map(|a| a.step.unwrap())
        .collect();
    assert_eq!(
        skipped,
        ["firm_overdue"],
        "friendly_overdue was handled, not skipped"
    );
}
