//! The report arithmetic on hand-made records, with the expected figures worked out by hand.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;

use super::*;
use crate::domain::{
    Arrangement, ArrangementKind, ArrangementState, Attempt, AttemptOutcome, Client, ClientId,
    ContactEvent, ContactEventKind, Currency, DeliveryState, Due, Escalation, EscalationKind,
    Invoice, InvoiceId, InvoiceStatus, Payment,
};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn client(id: &str) -> Client {
    Client {
        id: ClientId::new(id).unwrap(),
        name: id.into(),
        email: None,
        phone: None,
        whatsapp: None,
        locale: None,
        timezone: None,
        country: None,
        subdivision: None,
        blocked_times: vec![],
        segment: None,
        preferred_channels: vec![],
        tags: vec![],
        credits: Default::default(),
        broken_promises: 0,
        facts: Default::default(),
        created_at: ts("2025-01-01T00:00:00Z"),
        updated_at: ts("2025-01-01T00:00:00Z"),
    }
}

/// An invoice of `amount` in `cur`, issued on `issued`, due on `due`, paid by `payments`
/// (`(amount, paid_at)`).
fn invoice(
    id: &str,
    cur: &str,
    amount: &str,
    issued: &str,
    due: &str,
    payments: &[(&str, &str)],
) -> Invoice {
    Invoice {
        id: InvoiceId::new(id).unwrap(),
        client_id: ClientId::new("c").unwrap(),
        number: id.into(),
        currency: Currency::parse(cur).unwrap(),
        amount: dec(amount),
        balance: dec(amount),
        issued_at: Some(issued.parse().unwrap()),
        due_at: Due::parse(due).unwrap(),
        payment_url: None,
        metadata: Default::default(),
        status: InvoiceStatus::Open,
        payments: payments
            .iter()
            .enumerate()
            .map(|(i, (a, at))| Payment {
                amount: dec(a),
                paid_at: ts(at),
                reference: format!("{id}-{i}"),
                source: "api".into(),
                same_as: vec![],
            })
            .collect(),
        pause: None,
        generation: 0,
        cursor: None,
        pending: None,
        arrangements: vec![],
        created_at: ts("2025-01-01T00:00:00Z"),
        updated_at: ts("2025-01-01T00:00:00Z"),
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    }
}

fn line(
    inv: &str,
    at: &str,
    outcome: AttemptOutcome,
    step: Option<&str>,
    channel: &str,
    msg: Option<&str>,
    delivery: Option<DeliveryState>,
) -> Attempt {
    Attempt {
        at: ts(at),
        invoice_id: InvoiceId::new(inv).unwrap(),
        reminder_id: None,
        step: step.map(str::to_owned),
        channel: Some(channel.into()),
        recipient: None,
        outcome,
        provider_message_id: msg.map(str::to_owned),
        delivery,
        detail: None,
    }
}

fn sent(inv: &str, at: &str, step: &str, channel: &str) -> Attempt {
    line(
        inv,
        at,
        AttemptOutcome::Sent,
        Some(step),
        channel,
        None,
        None,
    )
}

fn promise(state: ArrangementState, closed: &str) -> Arrangement {
    let mut a = Arrangement::new(
        1,
        ArrangementKind::Promise,
        vec![(Due::parse("2026-02-10").unwrap(), dec("100"))],
        None,
        None,
        ts("2026-01-20T00:00:00Z"),
    );
    a.close(state, "test".into(), ts(closed));
    a
}

fn records(invoices: Vec<(Invoice, Vec<Attempt>)>, events: Vec<ContactEvent>) -> ClientRecords {
    ClientRecords {
        client: client("c"),
        zone: TimeZone::UTC,
        segment: "standard".into(),
        invoices: invoices
            .into_iter()
            .map(|(invoice, timeline)| InvoiceRecords {
                invoice,
                timeline,
                segment: "standard".into(),
            })
            .collect(),
        events,
    }
}

fn event(at: &str, kind: ContactEventKind, channel: &str) -> ContactEvent {
    ContactEvent {
        at: ts(at),
        client_id: ClientId::new("c").unwrap(),
        event: kind,
        channel: channel.into(),
        address: "+573001234567".into(),
        text: None,
        provider_message_id: None,
        detail: None,
    }
}

/// The period 2026-01-01 to 2026-04-01 (31 + 28 + 31 = 90 days), as of its end.
fn params(currency: Option<&str>) -> ReportParams {
    ReportQuery {
        as_of: Some("2026-03-31".into()), // the end of that day: 2026-04-01T00:00Z
        currency: currency.map(str::to_owned),
        segment: None,
        from: None, // 90 days before `to`
        to: None,   // as_of
    }
    .params(ts("2026-06-01T00:00:00Z"))
    .unwrap()
}

/// A: COP 1000 issued 01-10, due 02-09, 400 on 02-01 and 600 on 02-20 (paid in full), a
/// promise kept; an email delivered on 02-05 and an SMS on 02-18.
/// B: COP 2000 issued 2025-12-01, due 2025-12-31, unpaid, a promise broken; an SMS failed.
/// C: COP 500 issued 03-15, due 04-15, unpaid.
/// D: COP 800 issued 2025-11-01, due 2025-12-01, written off on 02-15 with 800 owed, 300
/// recovered on 03-10.
/// E: USD 100.00 issued 03-01, due 03-31, paid in full on 03-05.
/// F: COP 700 created after as_of: left out.
fn portfolio() -> ClientRecords {
    // (COP is shown with its 2 minor units.)
    let mut a = invoice(
        "a",
        "COP",
        "1000",
        "2026-01-10",
        "2026-02-09",
        &[
            ("400", "2026-02-01T15:00:00Z"),
            ("600", "2026-02-20T10:00:00Z"),
        ],
    );
    a.arrangements = vec![promise(ArrangementState::Kept, "2026-02-20T10:00:00Z")];
    let mut b = invoice("b", "COP", "2000", "2025-12-01", "2025-12-31", &[]);
    b.arrangements = vec![promise(ArrangementState::Broken, "2026-02-11T05:00:00Z")];
    let c = invoice("c-1", "COP", "500", "2026-03-15", "2026-04-15", &[]);
    let mut d = invoice(
        "d",
        "COP",
        "800",
        "2025-11-01",
        "2025-12-01",
        &[("300", "2026-03-10T12:00:00Z")],
    );
    d.escalation = Some(Escalation {
        kind: EscalationKind::WrittenOff,
        partner: None,
        reason: None,
        at: ts("2026-02-15T00:00:00Z"),
        balance: dec("800"),
        recovered: dec("300"),
    });
    let e = invoice(
        "e",
        "USD",
        "100.00",
        "2026-03-01",
        "2026-03-31",
        &[("100.00", "2026-03-05T00:00:00Z")],
    );
    let mut f = invoice("f", "COP", "700", "2026-03-01", "2026-03-31", &[]);
    f.created_at = ts("2026-04-02T00:00:00Z");
    let a_lines = vec![
        line(
            "a",
            "2026-02-05T14:00:00Z",
            AttemptOutcome::Sent,
            Some("due_today"),
            "email",
            Some("m1"),
            None,
        ),
        line(
            "a",
            "2026-02-05T14:05:00Z",
            AttemptOutcome::Receipt,
            None,
            "email",
            Some("m1"),
            Some(DeliveryState::Delivered),
        ),
        sent("a", "2026-02-18T14:00:00Z", "firm", "sms"),
    ];
    let b_lines = vec![line(
        "b",
        "2026-03-01T14:00:00Z",
        AttemptOutcome::Failed,
        Some("firm"),
        "sms",
        None,
        None,
    )];
    records(
        vec![
            (a, a_lines),
            (b, b_lines),
            (c, vec![]),
            (d, vec![]),
            (e, vec![]),
            (f, vec![]),
        ],
        vec![
            event("2026-02-19T10:00:00Z", ContactEventKind::Inbound, "sms"),
            event("2026-03-02T10:00:00Z", ContactEventKind::OptOut, "sms"),
            // Before the period: not counted.
            event("2025-12-02T10:00:00Z", ContactEventKind::OptOut, "sms"),
        ],
    )
}

#[test]
fn query_defaults_and_refusals() {
    let p = params(None);
    assert_eq!(p.as_of, ts("2026-04-01T00:00:00Z"));
    assert_eq!(p.period.to, p.as_of);
    assert_eq!(p.period.from, ts("2026-01-01T00:00:00Z"));
    assert_eq!(p.period.days(), 90.0);
    let now = ts("2026-06-01T00:00:00Z");
    let bad = |q: ReportQuery| q.params(now).unwrap_err().to_string();
    assert!(
        bad(ReportQuery {
            as_of: Some("yesterday".into()),
            ..Default::default()
        })
        .starts_with("as_of:")
    );
    assert!(
        bad(ReportQuery {
            from: Some("2026-05-01".into()),
            to: Some("2026-04-01".into()),
            ..Default::default()
        })
        .contains("start before it ends")
    );
    assert!(
        bad(ReportQuery {
            as_of: Some("2026-03-01".into()),
            to: Some("2026-04-01".into()),
            ..Default::default()
        })
        .contains("after as_of")
    );
    assert!(
        bad(ReportQuery {
            currency: Some("XYZ".into()),
            ..Default::default()
        })
        .starts_with("currency:")
    );
}

#[test]
fn kpis_of_a_fixed_portfolio() {
    let mut acc = KpiAccumulator::new(params(None));
    acc.add_client(&portfolio());
    let r = acc.finish();
    assert_eq!(r.currencies.len(), 2, "COP and USD, never mixed");
    let cop = &r.currencies[0];
    assert_eq!(cop.currency, "COP");
    // At as_of (04-01): A paid, D written off, F not created yet; B 2000 + C 500 owed.
    assert_eq!(cop.receivables, "2500.00");
    assert_eq!(cop.open_invoices, 2);
    // C is due 04-15: current. B was due 2025-12-31: 31 (Jan) + 28 (Feb) + 31 (Mar) + 1 = 91
    // days overdue on 04-01: the 91-180 bucket.
    let aging: Vec<(&str, u64, &str)> = cop
        .aging
        .iter()
        .map(|b| (b.bucket.as_str(), b.count, b.balance.as_str()))
        .collect();
    assert_eq!(
        aging,
        [
            ("current", 1, "500.00"),
            ("1-30", 0, "0.00"),
            ("31-60", 0, "0.00"),
            ("61-90", 0, "0.00"),
            ("91-180", 1, "2000.00"),
            ("over_180", 0, "0.00"),
        ]
    );
    // Invoiced in the period: A 1000 (01-10) + C 500 (03-15) = 1500.
    assert_eq!(cop.invoiced, "1500.00");
    // DSO = closing receivables 2500 / invoiced 1500 * 90 days = 150.
    assert!((cop.dso_days.unwrap() - 150.0).abs() < 1e-9);
    // CEI: opening (01-01) = B 2000 + D 800 = 2800; closing = 2500; closing current = C 500.
    // (2800 + 1500 - 2500) / (2800 + 1500 - 500) * 100 = 1800 / 3800 * 100 = 47.368...
    assert_eq!(cop.cei.opening_receivables, "2800.00");
    assert_eq!(cop.cei.closing_receivables, "2500.00");
    assert_eq!(cop.cei.closing_current, "500.00");
    assert!((cop.cei.percent.unwrap() - 1800.0 / 3800.0 * 100.0).abs() < 1e-9);
    // A: issued 01-10, closed by the payment of 02-20: 21 + 20 = 41 days; due 02-09: 11 late.
    assert_eq!(cop.days_to_pay.invoices, 1);
    assert_eq!(cop.days_to_pay.avg_days_to_pay, Some(41.0));
    assert_eq!(cop.days_to_pay.avg_days_after_due, Some(11.0));
    assert_eq!(cop.written_off.count, 1);
    assert_eq!(cop.written_off.amount, "800.00");
    assert_eq!(cop.recovered_after_write_off, "300.00");
    assert_eq!(cop.handed_off.count, 0);
    // Collections: 400 + 600 + 300 = 1300; 13 weeks from 01-01 (90 / 7 = 12.9). 02-01 is
    // day 31 (week 4), 02-20 day 50 (week 7), 03-10 day 68 (week 9).
    assert_eq!(cop.collections.total, "1300.00");
    let weeks: Vec<&str> = cop
        .collections
        .weeks
        .iter()
        .map(|w| w.amount.as_str())
        .collect();
    assert_eq!(
        weeks,
        [
            "0.00", "0.00", "0.00", "0.00", "400.00", "0.00", "0.00", "600.00", "0.00", "300.00",
            "0.00", "0.00", "0.00"
        ]
    );
    assert_eq!(cop.collections.weeks[4].start, ts("2026-01-29T00:00:00Z"));
    let usd = &r.currencies[1];
    assert_eq!(usd.currency, "USD");
    assert_eq!(usd.receivables, "0.00");
    assert_eq!(usd.invoiced, "100.00");
    // E: issued 03-01, paid 03-05: 4 days, on time.
    assert_eq!(usd.days_to_pay.avg_days_to_pay, Some(4.0));
    assert_eq!(usd.days_to_pay.avg_days_after_due, Some(0.0));
    // No USD receivable at either end, nothing invoiced before: CEI = 100 / 100 * 100.
    assert_eq!(usd.cei.percent, Some(100.0));
    // One promise kept (A), one broken (B).
    assert_eq!(r.arrangements.promises_kept, 1);
    assert_eq!(r.arrangements.promises_broken, 1);
    assert_eq!(r.arrangements.promise_kept_rate, Some(0.5));
    // email: one message, delivered. sms: one sent (A), one failed (B), one inbound, one
    // opt-out in the period.
    let ch: Vec<(&str, u64, u64, u64, u64, u64)> = r
        .channels
        .iter()
        .map(|c| {
            (
                c.channel.as_str(),
                c.contacts,
                c.delivered,
                c.failures,
                c.inbound,
                c.opt_outs,
            )
        })
        .collect();
    assert_eq!(ch, [("email", 1, 1, 0, 0, 0), ("sms", 1, 0, 1, 1, 1)]);
    assert!(r.dso_method.contains("days in the period"));
}

#[test]
fn as_of_in_the_past_reconstructs_balances() {
    // As of 2026-02-10 (end of the day), period 2026-01-01 .. 02-11 (41 days).
    let p = ReportQuery {
        as_of: Some("2026-02-10".into()),
        from: Some("2026-01-01".into()),
        currency: Some("COP".into()),
        ..Default::default()
    }
    .params(ts("2026-06-01T00:00:00Z"))
    .unwrap();
    let mut acc = KpiAccumulator::new(p);
    acc.add_client(&portfolio());
    let r = acc.finish();
    assert_eq!(r.currencies.len(), 1, "only COP asked for");
    let cop = &r.currencies[0];
    // A owed 1000 - 400 = 600 (due 02-09: 2 days late on 02-11: 1-30); B 2000 (42 days late:
    // 31-60); D 800 (not written off yet; due 2025-12-01: 72 days late: 61-90); C not issued.
    assert_eq!(cop.receivables, "3400.00");
    let counts: Vec<u64> = cop.aging.iter().map(|b| b.count).collect();
    assert_eq!(counts, [0, 1, 1, 1, 0, 0]);
    assert_eq!(cop.aging[1].balance, "600.00");
    // DSO = 3400 / 1000 * 41.
    assert!((cop.dso_days.unwrap() - 3.4 * 41.0).abs() < 1e-9);
    assert_eq!(cop.days_to_pay.invoices, 0);
}

#[test]
fn effectiveness_credits_the_last_message_before_the_payment() {
    // A: courtesy email 02-05 14:00, firm SMS 02-18 14:00, paid in full 02-20 10:00: only the
    // SMS is credited, 1 day 20 hours = 1.8333 days after it.
    // G: courtesy email 03-01 00:00, paid in full (200 + 300) 03-06 12:00: 5.5 days.
    // H: courtesy email 03-02, firm SMS 03-03, never paid in full (100 of 900).
    // K: courtesy email 2025-12-20 (before the period), paid 01-05: outside the period.
    let a = portfolio().invoices.remove(0).invoice;
    let g = invoice(
        "g",
        "COP",
        "500",
        "2026-02-01",
        "2026-03-01",
        &[
            ("200", "2026-03-02T00:00:00Z"),
            ("300", "2026-03-06T12:00:00Z"),
        ],
    );
    let h = invoice(
        "h",
        "COP",
        "900",
        "2026-02-01",
        "2026-03-01",
        &[("100", "2026-03-04T00:00:00Z")],
    );
    let k = invoice(
        "k",
        "COP",
        "900",
        "2025-11-01",
        "2025-12-01",
        &[("900", "2026-01-05T00:00:00Z")],
    );
    let c = records(
        vec![
            (
                a,
                vec![
                    sent("a", "2026-02-05T14:00:00Z", "courtesy", "email"),
                    sent("a", "2026-02-18T14:00:00Z", "firm", "sms"),
                ],
            ),
            (
                g,
                vec![sent("g", "2026-03-01T00:00:00Z", "courtesy", "email")],
            ),
            (
                h,
                vec![
                    sent("h", "2026-03-02T00:00:00Z", "courtesy", "email"),
                    sent("h", "2026-03-03T00:00:00Z", "firm", "sms"),
                ],
            ),
            (
                k,
                vec![sent("k", "2025-12-20T00:00:00Z", "courtesy", "email")],
            ),
        ],
        vec![],
    );
    let p = params(None);
    let mut acc = EffectAccumulator::new(p.period, p.filter);
    acc.add_client(&c);
    let r = acc.finish();
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|r| (r.step.as_str(), r.channel.as_str(), r))
        .collect();
    assert_eq!(rows.len(), 2);
    let (step, channel, courtesy) = rows[0];
    assert_eq!((step, channel), ("courtesy", "email"));
    // Sent in the period: A, G, H (K's was before it). Credited: G only (A's payment goes to
    // its SMS). 5.5 days: within 7, not within 3.
    assert_eq!(courtesy.sent, 3);
    assert_eq!(courtesy.paid, 1);
    assert_eq!(courtesy.paid_within_3d, 0);
    assert_eq!(courtesy.paid_within_7d, 1);
    assert_eq!(courtesy.share_paid_3d, 0.0);
    assert!((courtesy.share_paid_7d - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(courtesy.median_days_to_pay, Some(5.5));
    let (step, channel, firm) = rows[1];
    assert_eq!((step, channel), ("firm", "sms"));
    // A's SMS and H's: A's credited after 44 hours (1.8333 days), H's never.
    assert_eq!(firm.sent, 2);
    assert_eq!(firm.paid_within_3d, 1);
    assert_eq!(firm.share_paid_3d, 0.5);
    assert!((firm.median_days_to_pay.unwrap() - 44.0 / 24.0).abs() < 1e-9);
    assert!(r.attribution.contains("last message"));
}

#[test]
fn median_of_even_and_odd_counts() {
    assert_eq!(effectiveness::median(&mut []), None);
    assert_eq!(effectiveness::median(&mut [3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(effectiveness::median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
}

#[test]
fn balances_and_full_payment_follow_payment_dates() {
    let mut inv = invoice(
        "x",
        "COP",
        "1000",
        "2026-01-01",
        "2026-02-01",
        &[
            ("600", "2026-01-10T00:00:00Z"),
            ("-200", "2026-01-12T00:00:00Z"), // a refund
            ("600", "2026-01-15T00:00:00Z"),
        ],
    );
    assert_eq!(balance_at(&inv, ts("2026-01-11T00:00:00Z")), dec("400"));
    assert_eq!(balance_at(&inv, ts("2026-01-13T00:00:00Z")), dec("600"));
    assert_eq!(balance_at(&inv, ts("2026-01-16T00:00:00Z")), dec("0"));
    assert_eq!(paid_in_full_at(&inv), Some(ts("2026-01-15T00:00:00Z")));
    inv.payments.pop();
    assert_eq!(paid_in_full_at(&inv), None);
    // Before its issue date an invoice is not a receivable.
    assert_eq!(
        receivable_at(&inv, &TimeZone::UTC, ts("2025-12-31T00:00:00Z")),
        None
    );
}
