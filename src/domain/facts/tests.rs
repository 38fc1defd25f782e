//! Client facts: the incremental upkeep against a recomputation from the invoices.

use jiff::Timestamp;
use jiff::civil::date;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::domain::{
    Arrangement, ArrangementKind, ArrangementState, ClientId, Currency, Due, Invoice, InvoiceId,
    InvoiceStatus, Payment,
};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn invoice(n: usize, amount: i64, due: Due) -> Invoice {
    let t = ts("2026-01-01T00:00:00Z");
    Invoice {
        id: InvoiceId::new(format!("inv-{n}")).unwrap(),
        client_id: ClientId::new("c1".to_owned()).unwrap(),
        number: format!("FV-{n}"),
        currency: Currency::parse("COP").unwrap(),
        amount: Decimal::from(amount),
        balance: Decimal::from(amount),
        issued_at: None,
        due_at: due,
        payment_url: None,
        metadata: Default::default(),
        status: InvoiceStatus::Open,
        payments: Vec::new(),
        pause: None,
        generation: 0,
        cursor: None,
        pending: None,
        arrangements: Vec::new(),
        created_at: t,
        updated_at: t,
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    }
}

#[test]
fn days_late_counts_calendar_days_in_the_clients_zone() {
    let bogota = TimeZone::get("America/Bogota").unwrap();
    let due = Due::Date(date(2026, 3, 10));
    // 2026-03-11T03:00Z is still the 10th in Bogotá (UTC-5): on time.
    assert_eq!(days_late(&due, ts("2026-03-11T03:00:00Z"), &bogota), 0);
    assert_eq!(days_late(&due, ts("2026-03-11T06:00:00Z"), &bogota), 1);
    assert_eq!(days_late(&due, ts("2026-04-24T12:00:00Z"), &bogota), 45);
    // Early payment is not negative lateness.
    assert_eq!(days_late(&due, ts("2026-02-01T12:00:00Z"), &bogota), 0);
    let instant = Due::Instant(ts("2026-03-10T22:00:00Z"));
    assert_eq!(days_late(&instant, ts("2026-03-12T12:00:00Z"), &bogota), 2);
}

#[test]
fn facts_are_over_the_last_n_paid_invoices() {
    let utc = TimeZone::UTC;
    let mut ledger = FactsLedger::default();
    // Three old invoices paid 40 days late, then two recent ones on time.
    for (n, late, at) in [
        (1, 40, "2026-02-10T00:00:00Z"),
        (2, 40, "2026-02-11T00:00:00Z"),
        (3, 40, "2026-02-12T00:00:00Z"),
        (4, 0, "2026-03-01T00:00:00Z"),
        (5, 0, "2026-03-02T00:00:00Z"),
    ] {
        let closed = ts(at);
        let due = closed.to_zoned(utc.clone()).date() - jiff::Span::new().days(late);
        let inv = invoice(n, 1000 * n as i64, Due::Date(due));
        ledger.record_paid(paid_entry(&inv, closed, &utc));
        ledger.record_payment(closed);
    }
    let now = ts("2026-03-12T00:00:00Z");
    let all = ledger.facts(12, 2, now);
    assert_eq!(all.paid_invoices, 5);
    assert_eq!(all.considered, 5);
    assert_eq!(all.paid_late, 3);
    assert_eq!(all.paid_late_share, 0.6);
    assert_eq!(all.avg_days_late, 24.0);
    assert_eq!(all.max_days_late, 40);
    assert_eq!(all.avg_ticket["COP"], Decimal::from(3000));
    assert_eq!(all.broken_promises, 2);
    assert_eq!(all.days_since_last_payment, Some(10));
    // Over the last two only, the client pays on time.
    let recent = ledger.facts(2, 2, now);
    assert_eq!(recent.paid_invoices, 5, "the count is all-time");
    assert_eq!(recent.considered, 2);
    assert_eq!(recent.paid_late_share, 0.0);
    assert_eq!(recent.max_days_late, 0);
    assert_eq!(recent.avg_ticket["COP"], Decimal::from(4500));
    // A refund re-opens invoice 5: it leaves the window and the count.
    ledger.record_reopened(&InvoiceId::new("inv-5".to_owned()).unwrap());
    let after = ledger.facts(2, 2, now);
    assert_eq!(after.paid_invoices, 4);
    assert_eq!(after.paid_late, 1);
}

#[test]
fn a_new_client_has_neutral_facts() {
    let f = FactsLedger::default().facts(12, 0, ts("2026-03-12T00:00:00Z"));
    assert_eq!(f.paid_invoices, 0);
    assert_eq!(f.paid_late_share, 0.0);
    assert_eq!(f.avg_days_late, 0.0);
    assert!(f.avg_ticket.is_empty());
    assert_eq!(f.days_since_last_payment, None);
}

#[test]
fn the_history_is_capped_at_the_most_recent() {
    let utc = TimeZone::UTC;
    let mut ledger = FactsLedger::default();
    let base = ts("2026-01-01T00:00:00Z");
    for n in 0..(PAID_HISTORY_CAP + 5) {
        let inv = invoice(n, 10, Due::Date(date(2026, 1, 1)));
        let at = base + jiff::SignedDuration::from_hours(n as i64);
        ledger.record_paid(paid_entry(&inv, at, &utc));
    }
    assert_eq!(ledger.paid.len(), PAID_HISTORY_CAP);
    assert_eq!(ledger.paid_count as usize, PAID_HISTORY_CAP + 5);
    assert_eq!(ledger.paid[0].invoice_id.as_str(), "inv-5");
}

#[test]
fn a_paid_invoice_reopened_into_an_escalated_state_or_changed_while_paid_follows() {
    let utc = TimeZone::UTC;
    for back_to in [InvoiceStatus::WrittenOff, InvoiceStatus::HandedOff] {
        let mut ledger = FactsLedger::default();
        let mut inv = invoice(1, 1000, Due::Date(date(2026, 1, 10)));
        let mark = FactsMark::of(&inv);
        inv.balance = Decimal::ZERO;
        inv.status = InvoiceStatus::Paid;
        inv.closed_at = Some(ts("2026-01-20T00:00:00Z"));
        assert!(ledger.update(mark, &inv, None, &utc));
        assert_eq!(ledger.paid_count, 1);
        // A refund sends it back where it was before it was paid.
        let mark = FactsMark::of(&inv);
        inv.balance = Decimal::from(300);
        inv.status = back_to;
        inv.closed_at = None;
        assert!(ledger.update(mark, &inv, None, &utc), "{back_to:?}");
        assert_eq!(ledger, FactsLedger::recompute(&[inv], &utc, None));
        assert_eq!(ledger.paid_count, 0);
    }
    // Still paid, with a lower amount and a later due date: the entry follows, in place.
    let mut ledger = FactsLedger::default();
    let mut inv = invoice(1, 1000, Due::Date(date(2026, 1, 10)));
    let mark = FactsMark::of(&inv);
    inv.balance = Decimal::ZERO;
    inv.status = InvoiceStatus::Paid;
    inv.closed_at = Some(ts("2026-01-20T00:00:00Z"));
    ledger.update(mark, &inv, None, &utc);
    assert_eq!(ledger.paid[0].days_late, 10);
    let mark = FactsMark::of(&inv);
    inv.amount = Decimal::from(800);
    inv.due_at = Due::Date(date(2026, 1, 25));
    assert!(ledger.update(mark, &inv, None, &utc));
    assert_eq!(ledger.paid_count, 1);
    assert_eq!(ledger.paid[0].amount, Decimal::from(800));
    assert_eq!(ledger.paid[0].days_late, 0);
    assert_eq!(ledger, FactsLedger::recompute(&[inv], &utc, None));
}

/// One thing that can happen to a client's invoices.
#[derive(Debug, Clone)]
enum Op {
    /// Pay `part` tenths of the balance of invoice `inv` (10 = all of it).
    Pay { inv: usize, part: u8 },
    /// Refund `part` tenths of what was paid on invoice `inv`.
    Refund { inv: usize, part: u8 },
    /// A promise on invoice `inv`, then kept (`true`) or broken.
    Promise { inv: usize, kept: bool },
    /// Time passes.
    Wait { hours: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..6usize, 1..=10u8).prop_map(|(inv, part)| Op::Pay { inv, part }),
        1 => (0..6usize, 1..=10u8).prop_map(|(inv, part)| Op::Refund { inv, part }),
        1 => (0..6usize, any::<bool>()).prop_map(|(inv, kept)| Op::Promise { inv, kept }),
        2 => (1..2000u16).prop_map(|hours| Op::Wait { hours }),
    ]
}

/// Applies `op` to `invoices` as the service does (balance, payments, status, arrangements),
/// keeping `ledger` up to date through [`FactsLedger::update`], the hook the service calls.
fn apply(
    op: &Op,
    invoices: &mut [Invoice],
    ledger: &mut FactsLedger,
    now: &mut Timestamp,
    zone: &TimeZone,
) {
    match *op {
        Op::Wait { hours } => *now += jiff::SignedDuration::from_hours(i64::from(hours)),
        Op::Pay { inv, part } => {
            let i = &mut invoices[inv];
            if i.balance <= Decimal::ZERO {
                return;
            }
            let mark = FactsMark::of(i);
            let paid = (i.balance * Decimal::from(part) / Decimal::from(10)).round_dp(2);
            let paid = if paid.is_zero() { i.balance } else { paid };
            i.balance -= paid;
            i.payments.push(Payment {
                amount: paid,
                paid_at: *now,
                reference: format!("p{}", i.payments.len()),
                source: "api".to_owned(),
                same_as: Vec::new(),
            });
            if i.balance <= Decimal::ZERO {
                i.status = InvoiceStatus::Paid;
                i.closed_at = Some(*now);
                if let Some(a) = i.arrangements.last_mut().filter(|a| a.is_active()) {
                    a.close(ArrangementState::Kept, "paid".to_owned(), *now);
                }
            }
            ledger.update(mark, i, Some(*now), zone);
        }
        Op::Refund { inv, part } => {
            let i = &mut invoices[inv];
            let received = i.amount - i.balance;
            if received <= Decimal::ZERO {
                return;
            }
            let mark = FactsMark::of(i);
            let back = (received * Decimal::from(part) / Decimal::from(10)).round_dp(2);
            let back = if back.is_zero() { received } else { back };
            i.balance += back;
            i.payments.push(Payment {
                amount: -back,
                paid_at: *now,
                reference: format!("r{}", i.payments.len()),
                source: "api".to_owned(),
                same_as: Vec::new(),
            });
            if i.status == InvoiceStatus::Paid {
                i.status = InvoiceStatus::Open;
                i.closed_at = None;
            }
            ledger.update(mark, i, None, zone);
        }
        Op::Promise { inv, kept } => {
            let i = &mut invoices[inv];
            if i.status != InvoiceStatus::Open || i.active_arrangement().is_some() {
                return;
            }
            let mark = FactsMark::of(i);
            let id = u32::try_from(i.arrangements.len()).unwrap() + 1;
            let mut a = Arrangement::new(
                id,
                ArrangementKind::Promise,
                vec![(Due::Instant(*now), i.balance)],
                None,
                None,
                *now,
            );
            let state = if kept {
                ArrangementState::Kept
            } else {
                ArrangementState::Broken
            };
            a.close(state, "test".to_owned(), *now);
            i.arrangements.push(a);
            ledger.update(mark, i, None, zone);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After any sequence of payments, refunds and promises, the ledger kept change by change
    /// equals the one recomputed from the invoices' final state.
    #[test]
    fn incremental_facts_equal_facts_recomputed_from_history(
        ops in proptest::collection::vec(op(), 0..80),
        amounts in proptest::collection::vec(1i64..5_000_000, 6),
        due_days in proptest::collection::vec(0i8..60, 6),
    ) {
        let zone = TimeZone::get("America/Bogota").unwrap();
        let mut invoices: Vec<Invoice> = amounts
            .iter()
            .zip(&due_days)
            .enumerate()
            .map(|(n, (a, d))| {
                invoice(n, *a, Due::Date(date(2026, 1, 1) + jiff::Span::new().days(i64::from(*d))))
            })
            .collect();
        let mut ledger = FactsLedger::default();
        let mut now = ts("2026-01-01T12:00:00Z");
        for op in &ops {
            apply(op, &mut invoices, &mut ledger, &mut now, &zone);
        }
        let recomputed = FactsLedger::recompute(&invoices, &zone, None);
        prop_assert_eq!(&ledger, &recomputed);
        let at = now;
        prop_assert_eq!(ledger.facts(4, 0, at), recomputed.facts(4, 0, at));
    }
}
