//! Rule-based segments in the dispatcher, under a manual clock: a client whose facts start
//! matching a segment's `when` rule (a second broken promise, a late payment) has its open
//! invoices moved onto that segment's cadence from its next future step — nothing sent twice,
//! nothing in the past sent late — and every invoice's timeline names the rule.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests may read the real clock

mod common;

use common::sim::{Sim, ts};
use common::{email_step, test_policy};
use plazo::domain::AttemptOutcome;

/// Bogotá (UTC-5), send_at 09:00 local (14:00Z), window 08:00-19:00 every day. Segments:
/// `standard` (default) and `dificil_cobro`, chosen by `rule`.
fn policy(rule: &str) -> String {
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard", "dificil_cobro"],
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
            email_step(
                "dificil_cobro",
                "dc_call_soon",
                "+1d",
                "firm_overdue",
                "firm",
            ),
            email_step("dificil_cobro", "dc_firm", "+8d", "firm_overdue", "firm"),
            email_step("dificil_cobro", "dc_final", "+20d", "final_notice", "final"),
            email_step(
                "promise",
                "promise_tomorrow",
                "-1d",
                "promise_reminder",
                "friendly",
            ),
            email_step("broken", "promise_broken", "0d", "promise_broken", "firm"),
        ],
    );
    p = p.replacen(
        "[segments.dificil_cobro]\ncadence = \"dificil_cobro\"\n",
        &format!("[segments.dificil_cobro]\ncadence = \"dificil_cobro\"\nwhen = \"{rule}\"\n"),
        1,
    );
    p.push_str(
        "[promises]\ncadence = \"promise\"\ngrace = \"1d\"\nbroken_cadence = \"broken\"\nmax_days = 30\n",
    );
    p
}

/// `(invoice, step)` of every email sent, in order.
fn sent(sim: &Sim) -> Vec<(String, String)> {
    sim.email
        .sent()
        .into_iter()
        .map(|o| (o.invoice_id.to_string(), o.step))
        .collect()
}

#[tokio::test]
async fn a_second_broken_promise_moves_every_open_invoice_onto_the_stricter_cadence() {
    let rule = "client.facts.broken_promises >= 2";
    let sim = Sim::new(&policy(rule), "2026-03-10T12:00:00Z");
    sim.client(
        "cli-1",
        serde_json::json!({"name": "María Pérez", "email": "maria@cliente.example.co",
                           "timezone": "America/Bogota", "country": "CO"}),
    );
    sim.invoice("inv-1", "cli-1", "2026-03-16", "1000000");
    sim.invoice("inv-2", "cli-1", "2026-03-16", "2000000");
    assert_eq!(sim.inv("inv-1").followed.unwrap().segment, "standard");
    assert_eq!(sim.at("2026-03-16T14:00:00Z").await, 2);

    sim.set("2026-03-17T15:00:00Z");
    sim.promise("inv-1", "1000000", "2026-03-20");
    sim.promise("inv-2", "2000000", "2026-03-20");
    assert_eq!(sim.at("2026-03-19T14:00:00Z").await, 2);
    // Both deadline checks run at local midnight after a day of grace (they send nothing):
    // both promises broke, the second makes two.
    assert_eq!(sim.at("2026-03-22T05:00:00Z").await, 2);
    assert_eq!(sim.email.sent().len(), 4);
    assert_eq!(sim.client_record("cli-1").broken_promises, 2);

    for id in ["inv-1", "inv-2"] {
        let inv = sim.inv(id);
        assert_eq!(
            inv.followed.as_ref().unwrap().segment,
            "dificil_cobro",
            "{id}"
        );
        let moved = sim.lines_with(id, "moved from segment standard");
        assert_eq!(moved.len(), 1, "{id}: {moved:?}");
        let line = moved[0].detail.clone().unwrap();
        assert!(line.contains("to segment dificil_cobro"), "{line}");
        assert!(line.contains(&format!("rule `{rule}` matches")), "{line}");
        // dc_call_soon (+1d, 03-17) had passed: skipped with the reason, never sent late.
        let skipped = sim.lines_with(id, "before the client moved to segment dificil_cobro");
        assert_eq!(skipped.len(), 1, "{id}: {skipped:?}");
        assert_eq!(skipped[0].step.as_deref(), Some("dc_call_soon"));
        assert_eq!(skipped[0].outcome, AttemptOutcome::Skipped);
    }

    // The broken-promise step, then the new cadence's next future step; the standard
    // cadence's firm_overdue (03-26) never goes out.
    assert_eq!(sim.at("2026-03-22T13:00:00Z").await, 2);
    assert_eq!(sim.at("2026-03-24T14:00:00Z").await, 2);
    assert_eq!(sim.at("2026-03-26T14:00:00Z").await, 0);
    assert_eq!(sim.at("2026-04-05T14:00:00Z").await, 2);
    assert_eq!(sim.at("2026-06-01T14:00:00Z").await, 0);
    let mut got = sent(&sim);
    got.sort();
    let mut want: Vec<(String, String)> = Vec::new();
    for id in ["inv-1", "inv-2"] {
        for step in [
            "due_today",
            "promise_tomorrow",
            "promise_broken",
            "dc_firm",
            "dc_final",
        ] {
            want.push((id.to_owned(), step.to_owned()));
        }
    }
    want.sort();
    assert_eq!(got, want, "each step once per invoice, nothing twice");
}

#[tokio::test]
async fn a_late_payment_moves_the_clients_other_invoices_and_an_early_one_does_not() {
    let rule = "client.facts.max_days_late > 5";
    let sim = Sim::new(&policy(rule), "2026-03-01T12:00:00Z");
    sim.client(
        "cli-1",
        serde_json::json!({"name": "Juan", "email": "juan@cliente.example.co"}),
    );
    sim.client(
        "cli-2",
        serde_json::json!({"name": "Lucía", "email": "lucia@cliente.example.co"}),
    );
    sim.invoice("old-1", "cli-1", "2026-03-02", "500000");
    sim.invoice("new-1", "cli-1", "2026-03-16", "700000");
    sim.invoice("old-2", "cli-2", "2026-03-02", "500000");
    sim.invoice("new-2", "cli-2", "2026-03-16", "700000");
    // cli-2 pays on time; cli-1 pays 8 days late.
    sim.set("2026-03-02T15:00:00Z");
    sim.pay_in_full("old-2", "tx-2");
    sim.set("2026-03-10T15:00:00Z");
    sim.pay_in_full("old-1", "tx-1");

    let facts = |id: &str| {
        let c = sim.client_record(id);
        plazo::domain::behaviour_of(&c, 12, sim.now())
    };
    assert_eq!(facts("cli-1").max_days_late, 8);
    assert_eq!(facts("cli-2").max_days_late, 0);
    assert_eq!(
        sim.inv("new-1").followed.unwrap().segment,
        "dificil_cobro",
        "the late payment moved the client's other open invoice"
    );
    assert_eq!(sim.inv("new-2").followed.unwrap().segment, "standard");
    // new-1 had nothing sent yet: it simply follows the new cadence from its start.
    assert_eq!(
        sim.pending("new-1").unwrap().fire_at,
        ts("2026-03-17T14:00:00Z")
    );
    assert_eq!(sim.at("2026-03-16T14:00:00Z").await, 1);
    assert_eq!(sim.at("2026-03-17T14:00:00Z").await, 1);
    let got = sent(&sim);
    assert_eq!(
        got,
        [
            ("new-2".to_owned(), "due_today".to_owned()),
            ("new-1".to_owned(), "dc_call_soon".to_owned()),
        ]
    );
}
