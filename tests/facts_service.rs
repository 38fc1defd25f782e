//! Client facts kept by the real service, change by change, against the facts recomputed from
//! the client's history: payments (some reported late), refunds, promises kept and broken (by
//! the dispatcher at their deadline), invoice updates by PUT and PATCH that change the amount
//! (and so close or re-open the invoice) or the due date, hand-off, write-off, recall and void,
//! with cadences that write off and hand off by themselves. Also: an amount change and an
//! inbound reply re-check the client's segments.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // the shared harness reads the real clock

mod common;

use common::sim::{Sim, ts};
use common::test_policy;
use plazo::domain::{AttemptOutcome, InvoiceId, InvoiceStatus};
use plazo::service::{EscalationRequest, PaymentInput, ServiceError, record_payment};
use proptest::prelude::*;
use rust_decimal::Decimal;

const START: &str = "2026-03-10T12:00:00Z";
const CLIENT: &str = "cli-1";
const PHONE: &str = "+573001234567";

/// Bogotá, window 08:00-19:00 daily. Segments, first matching rule wins:
/// `dificil_cobro` (a broken promise; hands off at +20d), `cumplido` (`paid_rule`), `standard`
/// (default; writes off when its cadence is exhausted). A promise cadence, one partner.
fn policy(paid_rule: &str) -> String {
    let step = common::firm_step;
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard", "dificil_cobro", "cumplido"],
        &[
            step("standard", "due_today", "0d", "due_today"),
            step("standard", "firm_overdue", "+10d", "firm_overdue"),
            step("standard", "final_notice", "+30d", "final_notice"),
            step("dificil_cobro", "dc_firm", "+8d", "firm_overdue"),
            "[[cadences.dificil_cobro.steps]]\nname = \"dc_agency\"\noffset = \"+20d\"\naction = \"hand_off:cobranzas_norte\"\n\n".to_owned(),
            step("cumplido", "c_firm", "+5d", "firm_overdue"),
            step("promise", "promise_tomorrow", "-1d", "promise_reminder"),
        ],
    );
    p = p.replacen(
        "[[cadences.standard.steps]]",
        "[cadences.standard]\non_exhausted = \"write_off\"\n\n[[cadences.standard.steps]]",
        1,
    );
    p = p.replacen(
        "[segments.dificil_cobro]\ncadence = \"dificil_cobro\"\n",
        "[segments.dificil_cobro]\ncadence = \"dificil_cobro\"\nwhen = \"client.facts.broken_promises >= 1\"\n",
        1,
    );
    p = p.replacen(
        "[segments.cumplido]\ncadence = \"cumplido\"\n",
        &format!("[segments.cumplido]\ncadence = \"cumplido\"\nwhen = \"{paid_rule}\"\n"),
        1,
    );
    p.push_str("[promises]\ncadence = \"promise\"\ngrace = \"1d\"\nmax_days = 30\n");
    p.push_str("[partners.cobranzas_norte]\nname = \"Cobranzas del Norte S.A.S.\"\n");
    p
}

fn start(paid_rule: &str) -> Sim {
    let sim = Sim::new(&policy(paid_rule), START);
    sim.client(
        CLIENT,
        serde_json::json!({"name": "María Pérez", "email": "maria@cliente.example.co",
                           "phone": PHONE, "timezone": "America/Bogota", "country": "CO"}),
    );
    sim
}

/// A service refusal (conflict, invalid input, unknown record) is an answer; a storage error
/// is a failure of the test.
fn refused<T>(r: Result<T, ServiceError>) {
    if let Err(ServiceError::Store(e)) = r {
        panic!("storage error: {e}");
    }
}

/// Payment `reference` of `amount` COP on invoice `id`, made `back_hours` before now.
fn pay_at(sim: &Sim, id: &str, amount: Decimal, back_hours: i64, reference: &str) {
    let p = sim.policy.current();
    refused(record_payment(
        &sim.store,
        &p.policy,
        &InvoiceId::new(id).unwrap(),
        &PaymentInput {
            amount: Some(amount.to_string()),
            currency: "COP".into(),
            paid_at: Some(sim.now() - jiff::SignedDuration::from_hours(back_hours)),
            reference: reference.into(),
        },
        "api",
        None,
        sim.now(),
    ));
}

/// What the client paid on invoice `id`, net of refunds.
fn received(sim: &Sim, id: &str) -> Decimal {
    sim.inv(id).payments.iter().map(|p| p.amount).sum()
}

/// `PATCH /v1/invoices/{id}` at the service level.
fn patch(sim: &Sim, rt: &tokio::runtime::Runtime, id: &str, body: serde_json::Value) {
    let p = sim.policy.current();
    refused(rt.block_on(plazo::service::patch_invoice(
        &sim.store,
        p,
        &InvoiceId::new(id).unwrap(),
        &body,
        sim.now(),
    )));
}

fn facts(sim: &Sim) -> plazo::domain::BehaviourFacts {
    let p = sim.policy.current();
    plazo::domain::behaviour_of(
        &sim.client_record(CLIENT),
        p.policy.facts.last_paid,
        sim.now(),
    )
}

// ---------------------------------------------------------------------------------------
// The two drifts, one by one.

#[tokio::test]
async fn a_refund_sending_a_paid_invoice_back_to_its_partner_or_written_off_uncounts_it() {
    // No `cumplido` rule can match here: the facts alone are under test.
    let sim = start("client.facts.paid_invoices >= 1000");
    sim.invoice("inv-1", CLIENT, "2026-03-16", "1000000");
    sim.invoice("inv-2", CLIENT, "2026-03-16", "500000");
    for (id, request) in [
        ("inv-1", EscalationRequest::WriteOff),
        ("inv-2", EscalationRequest::HandOff),
    ] {
        sim.escalate(id, request, Some("test")).unwrap();
    }
    sim.set("2026-04-20T15:00:00Z");
    sim.pay_in_full("inv-1", "tx-1");
    sim.pay_in_full("inv-2", "tx-2");
    assert_eq!(facts(&sim).paid_invoices, 2);
    sim.facts_drift(CLIENT).unwrap();

    sim.refund("inv-1", "300000", "evt_r1");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::WrittenOff);
    assert_eq!(facts(&sim).paid_invoices, 1, "inv-1 is no longer paid");
    sim.facts_drift(CLIENT).unwrap();
    sim.refund("inv-2", "1000", "evt_r2");
    assert_eq!(sim.inv("inv-2").status, InvoiceStatus::HandedOff);
    let f = facts(&sim);
    assert_eq!(f.paid_invoices, 0, "inv-2 is no longer paid");
    assert_eq!(f.considered, 0);
    assert_eq!(f.avg_ticket.len(), 0);
    sim.facts_drift(CLIENT).unwrap();
}

#[tokio::test]
async fn an_amount_change_that_closes_or_reopens_an_invoice_updates_the_facts_and_segments() {
    let sim = start("client.facts.paid_invoices >= 1");
    sim.invoice("inv-1", CLIENT, "2026-03-16", "1000000");
    sim.invoice("inv-2", CLIENT, "2026-03-20", "500000");
    assert_eq!(sim.inv("inv-2").followed.unwrap().segment, "standard");
    sim.set("2026-03-12T15:00:00Z");
    sim.pay("inv-1", "800000", "tx-1");
    assert_eq!(facts(&sim).paid_invoices, 0);

    // A credit note lowers the amount to what was paid: paid in full, counted, and the
    // client's other invoice moves to the segment the new facts choose.
    sim.invoice("inv-1", CLIENT, "2026-03-16", "800000");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Paid);
    let f = facts(&sim);
    assert_eq!(f.paid_invoices, 1);
    assert_eq!(f.avg_ticket["COP"].to_string(), "800000");
    sim.facts_drift(CLIENT).unwrap();
    let inv2 = sim.inv("inv-2");
    assert_eq!(inv2.followed.unwrap().segment, "cumplido");
    let moved = sim.lines_with("inv-2", "to segment cumplido (cadence cumplido)");
    assert_eq!(moved.len(), 1, "{:?}", sim.timeline("inv-2"));
    assert!(
        moved[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("rule `client.facts.paid_invoices >= 1` matches")
    );

    // Still paid, a lower amount again: the ticket follows.
    sim.invoice("inv-1", CLIENT, "2026-03-16", "700000");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Paid);
    assert_eq!(facts(&sim).avg_ticket["COP"].to_string(), "700000");
    sim.facts_drift(CLIENT).unwrap();

    // A higher amount re-opens it: no longer counted; both invoices back on standard (inv-1,
    // re-planned with the new facts, was on cumplido while it was paid).
    sim.invoice("inv-1", CLIENT, "2026-03-16", "1200000");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Open);
    assert_eq!(facts(&sim).paid_invoices, 0);
    sim.facts_drift(CLIENT).unwrap();
    assert_eq!(sim.inv("inv-2").followed.unwrap().segment, "standard");
    assert_eq!(sim.inv("inv-1").followed.unwrap().segment, "standard");
    assert_eq!(
        sim.lines_with("inv-2", "no segment rule matches any more")
            .len(),
        1
    );
}

#[test]
fn a_patch_that_closes_or_reopens_an_invoice_updates_the_facts() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sim = start("client.facts.paid_invoices >= 1");
    sim.invoice("inv-1", CLIENT, "2026-03-16", "1000000");
    sim.invoice("inv-2", CLIENT, "2026-03-20", "500000");
    sim.pay("inv-1", "600000", "tx-1");
    patch(&sim, &rt, "inv-1", serde_json::json!({"amount": "600000"}));
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Paid);
    assert_eq!(facts(&sim).paid_invoices, 1);
    assert_eq!(sim.inv("inv-2").followed.unwrap().segment, "cumplido");
    sim.facts_drift(CLIENT).unwrap();
    patch(
        &sim,
        &rt,
        "inv-1",
        serde_json::json!({"amount": "600000.50"}),
    );
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Open);
    assert_eq!(facts(&sim).paid_invoices, 0);
    assert_eq!(sim.inv("inv-2").followed.unwrap().segment, "standard");
    sim.facts_drift(CLIENT).unwrap();
}

// ---------------------------------------------------------------------------------------
// An inbound reply changes `last_inbound_at`, which rules read.

#[tokio::test]
async fn an_inbound_reply_re_checks_the_clients_segments_at_once() {
    let sim = start("client.facts.last_inbound_at is not none");
    sim.invoice("inv-1", CLIENT, "2026-03-16", "1000000");
    assert_eq!(sim.inv("inv-1").followed.unwrap().segment, "standard");
    assert_eq!(sim.pending("inv-1").unwrap().step_name, "due_today");
    assert_eq!(sim.at("2026-03-16T14:00:00Z").await, 1);
    sim.set("2026-03-17T15:00:00Z");
    let p = sim.policy.current();
    let out = plazo::service::record_inbound(
        &sim.store,
        &p.policy,
        &plazo::service::InboundInput {
            kind: "sms".into(),
            from: PHONE.into(),
            text: Some("¿cuánto debo?".into()),
            provider_message_id: "SM1".into(),
            provider_action: None,
        },
        sim.now(),
    )
    .unwrap();
    assert_eq!(out.clients, 1);
    assert_eq!(
        sim.client_record(CLIENT).facts.last_inbound_at,
        Some(sim.now())
    );
    // Moved now, not at the daily pass: the timeline names the rule, and the next step is
    // the new cadence's (c_firm at +5d, 03-21 09:00 Bogotá).
    let inv = sim.inv("inv-1");
    assert_eq!(inv.followed.unwrap().segment, "cumplido");
    let moved = sim.lines_with("inv-1", "to segment cumplido (cadence cumplido)");
    assert_eq!(moved.len(), 1, "{:?}", sim.timeline("inv-1"));
    assert!(
        moved[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("rule `client.facts.last_inbound_at is not none` matches")
    );
    let next = sim.pending("inv-1").unwrap();
    assert_eq!(next.step_name, "c_firm");
    assert_eq!(next.fire_at, ts("2026-03-21T14:00:00Z"));
    assert_eq!(sim.at("2026-03-21T14:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps(), ["due_today", "c_firm"]);
    assert!(sim.outcomes("inv-1", AttemptOutcome::Sent).len() == 2);
}

// ---------------------------------------------------------------------------------------
// Any sequence of changes through the real service.

#[derive(Debug, Clone)]
enum Op {
    /// The clock moves on and the dispatcher runs what is due (reminders, promise deadlines,
    /// hand-off steps, exhausted cadences).
    Wait { hours: i64 },
    /// A payment of `tenths`/10 of the balance (10: all of it), made `back_hours` ago.
    Pay {
        inv: usize,
        tenths: u32,
        back_hours: i64,
    },
    /// A refund of `tenths`/10 of what was received.
    Refund { inv: usize, tenths: u32 },
    /// A promise of `tenths`/10 of the balance in `days`.
    Promise { inv: usize, tenths: u32, days: i64 },
    /// PUT with a new amount: what was received (closes it), more (re-opens it) or any.
    Amount { inv: usize, how: AmountChange },
    /// PATCH of the amount or of the due date.
    Patch { inv: usize, how: AmountChange },
    /// Hand-off, write-off, recall or void.
    Escalate { inv: usize, request: u8 },
}

#[derive(Debug, Clone)]
enum AmountChange {
    ToReceived,
    Raise(i64),
    To(i64),
    DueIn(i64),
}

const INVOICES: usize = 3;

fn amount_change() -> impl Strategy<Value = AmountChange> {
    prop_oneof![
        Just(AmountChange::ToReceived),
        (1i64..300_000).prop_map(AmountChange::Raise),
        (1i64..3_000_000).prop_map(AmountChange::To),
        (-20i64..40).prop_map(AmountChange::DueIn),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let inv = 0..INVOICES;
    prop_oneof![
        3 => (1i64..400).prop_map(|hours| Op::Wait { hours }),
        4 => (inv.clone(), prop_oneof![Just(10u32), 1u32..10], 0i64..240)
            .prop_map(|(inv, tenths, back_hours)| Op::Pay { inv, tenths, back_hours }),
        2 => (inv.clone(), 1u32..=10).prop_map(|(inv, tenths)| Op::Refund { inv, tenths }),
        2 => (inv.clone(), 1u32..=10, 1i64..12)
            .prop_map(|(inv, tenths, days)| Op::Promise { inv, tenths, days }),
        2 => (inv.clone(), amount_change()).prop_map(|(inv, how)| Op::Amount { inv, how }),
        1 => (inv.clone(), amount_change()).prop_map(|(inv, how)| Op::Patch { inv, how }),
        2 => (inv, 0u8..4).prop_map(|(inv, request)| Op::Escalate { inv, request }),
    ]
}

/// `part`/10 of `of`, in whole pesos; all of it when that rounds to nothing.
fn tenths_of(of: Decimal, part: u32) -> Decimal {
    let x = (of * Decimal::from(part) / Decimal::from(10)).round_dp(0);
    if x.is_zero() { of } else { x }
}

struct Run {
    sim: Sim,
    rt: tokio::runtime::Runtime,
    /// Due date of each invoice, `YYYY-MM-DD`.
    due: Vec<String>,
    n: usize,
}

impl Run {
    fn id(i: usize) -> String {
        format!("inv-{i}")
    }

    fn put(&self, i: usize, amount: Decimal) {
        refused(
            self.sim
                .try_invoice(&Run::id(i), CLIENT, &self.due[i], &amount.to_string()),
        );
    }

    fn apply(&mut self, op: &Op) {
        self.n += 1;
        let n = self.n;
        match *op {
            Op::Wait { hours } => {
                let at = self.sim.now() + jiff::SignedDuration::from_hours(hours);
                self.rt.block_on(self.sim.at_ts(at));
            }
            Op::Pay {
                inv,
                tenths,
                back_hours,
            } => {
                let balance = self.sim.inv(&Run::id(inv)).balance;
                if balance > Decimal::ZERO {
                    let amount = tenths_of(balance, tenths);
                    pay_at(
                        &self.sim,
                        &Run::id(inv),
                        amount,
                        back_hours,
                        &format!("p{n}"),
                    );
                }
            }
            Op::Refund { inv, tenths } => {
                let got = received(&self.sim, &Run::id(inv));
                if got > Decimal::ZERO {
                    let back = tenths_of(got, tenths);
                    refused(self.sim.try_refund(
                        &Run::id(inv),
                        &back.to_string(),
                        &format!("evt_{n}"),
                    ));
                }
            }
            Op::Promise { inv, tenths, days } => {
                let balance = self.sim.inv(&Run::id(inv)).balance;
                if balance > Decimal::ZERO {
                    let date = (self.sim.now() + jiff::SignedDuration::from_hours(24 * days))
                        .to_zoned(jiff::tz::TimeZone::get("America/Bogota").unwrap())
                        .date()
                        .to_string();
                    refused(self.sim.try_promise(
                        &Run::id(inv),
                        &tenths_of(balance, tenths).to_string(),
                        &date,
                    ));
                }
            }
            Op::Amount { inv, ref how } | Op::Patch { inv, ref how } => {
                let patching = matches!(op, Op::Patch { .. });
                let current = self.sim.inv(&Run::id(inv));
                let amount = match *how {
                    AmountChange::ToReceived => received(&self.sim, &Run::id(inv)),
                    AmountChange::Raise(by) => current.amount + Decimal::from(by),
                    AmountChange::To(to) => Decimal::from(to),
                    AmountChange::DueIn(days) => {
                        let due = jiff::civil::date(2026, 3, 16) + jiff::Span::new().days(days);
                        self.due[inv] = due.to_string();
                        current.amount
                    }
                };
                if amount <= Decimal::ZERO {
                    return;
                }
                if patching {
                    let body = match how {
                        AmountChange::DueIn(_) => serde_json::json!({"due_at": self.due[inv]}),
                        _ => serde_json::json!({"amount": amount.to_string()}),
                    };
                    patch(&self.sim, &self.rt, &Run::id(inv), body);
                } else {
                    self.put(inv, amount);
                }
            }
            Op::Escalate { inv, request } => {
                let request = match request {
                    0 => EscalationRequest::HandOff,
                    1 => EscalationRequest::WriteOff,
                    2 => EscalationRequest::Recall,
                    _ => EscalationRequest::Void,
                };
                refused(self.sim.escalate(&Run::id(inv), request, Some("test")));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// After every change, the facts plazo kept change by change on the client equal those
    /// recomputed from its invoices (and its broken promises equal its broken arrangements).
    #[test]
    fn facts_kept_by_the_service_equal_facts_recomputed_from_history(
        amounts in proptest::collection::vec(100_000i64..3_000_000, INVOICES),
        due_in in proptest::collection::vec(-5i64..20, INVOICES),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut run = Run {
            sim: start("client.facts.paid_invoices >= 2 and client.facts.paid_late >= 1"),
            rt: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            due: due_in
                .iter()
                .map(|d| (jiff::civil::date(2026, 3, 16) + jiff::Span::new().days(*d)).to_string())
                .collect(),
            n: 0,
        };
        for (i, amount) in amounts.iter().enumerate() {
            run.put(i, Decimal::from(*amount));
        }
        for (k, op) in ops.iter().enumerate() {
            run.apply(op);
            if let Err(drift) = run.sim.facts_drift(CLIENT) {
                prop_assert!(false, "after op {k} {op:?} (of {ops:?}):\n{drift}");
            }
        }
    }
}
