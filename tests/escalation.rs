//! Escalation under a manual clock: a `hand_off` step and `on_exhausted` take an invoice out
//! of the chase, a later payment on a written-off invoice is a recovery, a recall resumes the
//! chase from the next future step without sending anything late, a void invoice takes no
//! payment; and every move refused from the wrong state says why and changes nothing.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests may read the real clock

mod common;

use common::sim::Sim;
use common::test_policy;
use plazo::domain::{AttemptOutcome, EscalationKind, InvoiceId, InvoiceStatus};
use plazo::service::{EscalationInput, EscalationRequest, ServiceError, escalate_invoice};

/// Bogotá (UTC-5), send_at 09:00 local (14:00Z), window 08:00-19:00 every day; one partner.
/// `last` is the cadence's last step (TOML) and `on_exhausted` its setting, if any.
fn policy(last: &str, on_exhausted: Option<&str>) -> String {
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &[
            common::firm_step("standard", "due_today", "0d", "due_today"),
            common::firm_step("standard", "firm_overdue", "+10d", "firm_overdue"),
            last.to_owned(),
        ],
    );
    if let Some(o) = on_exhausted {
        p = p.replacen(
            "[[cadences.standard.steps]]",
            &format!("[cadences.standard]\non_exhausted = \"{o}\"\n\n[[cadences.standard.steps]]"),
            1,
        );
    }
    p.push_str("[partners.cobranzas_norte]\nname = \"Cobranzas del Norte S.A.S.\"\n");
    p
}

fn start(policy: &str) -> Sim {
    let sim = Sim::new(policy, "2026-03-10T12:00:00Z");
    sim.client(
        "cli-1",
        serde_json::json!({"name": "María Pérez", "email": "maria@cliente.example.co"}),
    );
    sim.invoice("inv-1", "cli-1", "2026-03-16", "1000000");
    sim
}

fn request(
    sim: &Sim,
    request: EscalationRequest,
    partner: Option<&str>,
    reason: Option<&str>,
) -> Result<plazo::service::Escalated, ServiceError> {
    let p = sim.policy.current();
    escalate_invoice(
        &sim.store,
        &p.policy,
        &InvoiceId::new("inv-1").unwrap(),
        request,
        EscalationInput {
            partner: partner.map(str::to_owned),
            reason: reason.map(str::to_owned),
        },
        sim.now(),
    )
}

#[tokio::test]
async fn a_hand_off_step_hands_the_invoice_to_the_partner_and_stops_the_reminders() {
    let last = "[[cadences.standard.steps]]\nname = \"to_agency\"\noffset = \"+30d\"\naction = \"hand_off:cobranzas_norte\"\n\n";
    let sim = start(&policy(last, None));
    assert_eq!(sim.at("2026-03-16T14:00:00Z").await, 1);
    assert_eq!(sim.at("2026-03-26T14:00:00Z").await, 1);
    // The hand-off step runs at its time (a Sunday night would do too: it contacts no one).
    assert_eq!(sim.at("2026-04-15T14:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps(), ["due_today", "firm_overdue"]);
    let inv = sim.inv("inv-1");
    assert_eq!(inv.status, InvoiceStatus::HandedOff);
    let esc = inv.escalation.clone().unwrap();
    assert_eq!(esc.kind, EscalationKind::HandedOff);
    assert_eq!(esc.partner.as_deref(), Some("cobranzas_norte"));
    assert_eq!(esc.balance.to_string(), "1000000");
    assert_eq!(inv.pending, None);
    let lines = sim.lines_with("inv-1", "handed off to partner cobranzas_norte");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = lines[0].detail.clone().unwrap();
    assert!(line.contains("Cobranzas del Norte S.A.S."), "{line}");
    assert!(
        line.contains("by step to_agency of cadence standard"),
        "{line}"
    );
    assert_eq!(sim.at("2026-08-01T14:00:00Z").await, 0, "no more reminders");

    // Money still applies while the partner collects; paid in full closes it.
    sim.pay("inv-1", "400000", "tx-1");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::HandedOff);
    assert_eq!(
        sim.lines_with("inv-1", "received while with partner cobranzas_norte")
            .len(),
        1
    );
    sim.pay("inv-1", "600000", "tx-2");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Paid);
    assert_eq!(sim.emailed_steps().len(), 2);
}

#[tokio::test]
async fn on_exhausted_write_off_then_a_payment_is_a_recovery_and_a_refund_goes_back() {
    let last = common::firm_step("standard", "final_notice", "+30d", "final_notice");
    let sim = start(&policy(&last, Some("write_off")));
    for t in [
        "2026-03-16T14:00:00Z",
        "2026-03-26T14:00:00Z",
        "2026-04-15T14:00:00Z",
    ] {
        assert_eq!(sim.at(t).await, 1, "{t}");
    }
    let inv = sim.inv("inv-1");
    assert_eq!(inv.status, InvoiceStatus::WrittenOff);
    let exhausted = sim.lines_with("inv-1", "cadence standard exhausted:");
    assert_eq!(exhausted.len(), 1, "{exhausted:?}");
    assert!(
        exhausted[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("on_exhausted writes it off")
    );
    assert_eq!(
        sim.lines_with("inv-1", "written off by cadence standard exhausted")
            .len(),
        1
    );

    sim.set("2026-05-02T15:00:00Z");
    sim.pay("inv-1", "250000", "tx-1");
    let inv = sim.inv("inv-1");
    assert_eq!(inv.status, InvoiceStatus::WrittenOff, "partly recovered");
    assert_eq!(
        inv.escalation.as_ref().unwrap().recovered.to_string(),
        "250000"
    );
    assert_eq!(
        sim.lines_with("inv-1", "recovered 250000 COP after the write-off")
            .len(),
        1
    );
    sim.pay("inv-1", "750000", "tx-2");
    let inv = sim.inv("inv-1");
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert_eq!(
        inv.escalation.as_ref().unwrap().recovered.to_string(),
        "1000000"
    );
    // A refund re-opens it where it was: written off, not chased.
    sim.refund("inv-1", "300000", "evt_refund");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::WrittenOff);
    assert_eq!(sim.at("2026-09-01T14:00:00Z").await, 0);
    assert_eq!(sim.emailed_steps().len(), 3);
}

#[tokio::test]
async fn an_exhausted_cadence_is_said_once_and_the_invoice_stays_open() {
    let last = common::firm_step("standard", "final_notice", "+30d", "final_notice");
    let sim = start(&policy(&last, None));
    for t in [
        "2026-03-16T14:00:00Z",
        "2026-03-26T14:00:00Z",
        "2026-04-15T14:00:00Z",
    ] {
        assert_eq!(sim.at(t).await, 1, "{t}");
    }
    // A partial payment re-plans: still exhausted, not said again.
    sim.set("2026-04-20T15:00:00Z");
    sim.pay("inv-1", "100000", "tx-1");
    let inv = sim.inv("inv-1");
    assert_eq!(inv.status, InvoiceStatus::Open);
    assert_eq!(inv.pending, None);
    let lines = sim.lines_with("inv-1", "cadence standard exhausted:");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].detail.as_deref().unwrap().contains("stays open"));
}

#[tokio::test]
async fn a_recall_resumes_from_the_next_future_step_and_sends_nothing_late() {
    let last = common::firm_step("standard", "final_notice", "+30d", "final_notice");
    let sim = start(&policy(&last, None));
    assert_eq!(sim.at("2026-03-16T14:00:00Z").await, 1);
    sim.set("2026-03-17T15:00:00Z");
    let done = request(
        &sim,
        EscalationRequest::HandOff,
        None,
        Some("the debtor asked to talk to a lawyer"),
    )
    .unwrap();
    assert_eq!(done.invoice.status, InvoiceStatus::HandedOff);
    assert_eq!(
        done.invoice.escalation.unwrap().partner.as_deref(),
        Some("cobranzas_norte"),
        "the only partner"
    );
    let cancelled = sim.outcomes("inv-1", AttemptOutcome::Cancelled);
    assert_eq!(
        cancelled.len(),
        1,
        "the planned firm_overdue: {cancelled:?}"
    );
    // firm_overdue (03-26) passes while the partner has it.
    assert_eq!(sim.at("2026-03-26T14:00:00Z").await, 0);
    sim.set("2026-04-01T15:00:00Z");
    let back = request(
        &sim,
        EscalationRequest::Recall,
        None,
        Some("agency returned it"),
    )
    .unwrap();
    assert_eq!(back.invoice.status, InvoiceStatus::Open);
    assert_eq!(back.invoice.escalation, None);
    assert_eq!(
        back.next_reminder_at,
        Some(common::sim::ts("2026-04-15T14:00:00Z")),
        "final_notice, not the passed firm_overdue"
    );
    let skipped = sim.lines_with("inv-1", "while with partner cobranzas_norte");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].step.as_deref(), Some("firm_overdue"));
    assert_eq!(sim.at("2026-04-15T14:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps(), ["due_today", "final_notice"]);
}

#[tokio::test]
async fn moves_from_the_wrong_state_or_with_bad_input_are_refused_and_change_nothing() {
    let last = common::firm_step("standard", "final_notice", "+30d", "final_notice");
    let sim = start(&policy(&last, None));
    let before = sim.inv("inv-1");
    let conflict = |r: Result<_, ServiceError>| match r {
        Err(ServiceError::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    };
    let invalid = |r: Result<_, ServiceError>| match r {
        Err(ServiceError::Invalid { field, message }) => format!("{field}: {message}"),
        other => panic!("expected invalid input, got {other:?}"),
    };
    let m = conflict(request(&sim, EscalationRequest::Recall, None, None));
    assert!(m.contains("is open and being chased"), "{m}");
    let m = invalid(request(
        &sim,
        EscalationRequest::HandOff,
        Some("abogados"),
        None,
    ));
    assert!(
        m.starts_with("partner: there is no partner \"abogados\""),
        "{m}"
    );
    assert!(m.contains("\"cobranzas_norte\""), "{m}");
    let m = invalid(request(&sim, EscalationRequest::Void, None, None));
    assert!(m.starts_with("reason: say why"), "{m}");
    let m = invalid(request(
        &sim,
        EscalationRequest::WriteOff,
        Some("cobranzas_norte"),
        None,
    ));
    assert!(m.starts_with("partner: only a hand-off"), "{m}");
    let m = invalid(request(
        &sim,
        EscalationRequest::WriteOff,
        None,
        Some("a\nb"),
    ));
    assert!(m.starts_with("reason: contains control characters"), "{m}");
    assert_eq!(sim.inv("inv-1"), before, "nothing changed");

    // A paid invoice cannot be handed off, written off or voided.
    sim.pay_in_full("inv-1", "tx-1");
    let m = conflict(request(&sim, EscalationRequest::HandOff, None, None));
    assert!(m.contains("is paid"), "{m}");
    let m = conflict(request(
        &sim,
        EscalationRequest::Void,
        None,
        Some("duplicate"),
    ));
    assert!(m.contains("refund the payments before voiding"), "{m}");

    // A void invoice takes no payment and no further move.
    sim.invoice("inv-2", "cli-1", "2026-03-20", "500000");
    let p = sim.policy.current();
    let id2 = InvoiceId::new("inv-2").unwrap();
    let void = escalate_invoice(
        &sim.store,
        &p.policy,
        &id2,
        EscalationRequest::Void,
        EscalationInput {
            partner: None,
            reason: Some("issued twice; replaced by inv-3".into()),
        },
        sim.now(),
    )
    .unwrap();
    assert_eq!(void.invoice.status, InvoiceStatus::Void);
    assert_eq!(void.invoice.pending, None);
    let m = match sim.try_pay("inv-2", "500000", "tx-9") {
        Err(ServiceError::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    };
    assert!(m.contains("is void"), "{m}");
    assert_eq!(sim.inv("inv-2").balance.to_string(), "500000");
    assert_eq!(
        sim.at("2026-06-01T14:00:00Z").await,
        0,
        "nothing for the void invoice"
    );
}
