//! The KPIs of a portfolio (`GET /v1/reports/kpis`): aging, DSO, CEI, days to pay, promises
//! kept, write-offs, hand-offs and recoveries, collections by week, and contacts by channel.
//! Pure arithmetic over [`ClientRecords`]; money per currency, never mixed.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use super::{
    ClientRecords, InvoiceRecords, ReportParams, issued_instant, paid_in_full_at, receivable_at,
};
use crate::compliance::caps::contacts_on;
use crate::domain::{
    ArrangementKind, ArrangementState, AttemptOutcome, ContactEventKind, Currency, EscalationKind,
    InstalmentState, days_late,
};

/// How DSO is computed, as the report says it (`dso_method`).
pub const DSO_METHOD: &str = "standard: receivables at the end of the period / amount invoiced in the period * days in the period";

/// How CEI is computed, as the report says it (`cei_method`).
pub const CEI_METHOD: &str = "(opening receivables + invoiced in period - closing receivables) / (opening receivables + invoiced in period - closing current receivables) * 100; current: not yet overdue";

/// The aging buckets: name, and the most days overdue it holds (`None`: no limit).
pub const BUCKETS: [(&str, Option<u32>); 6] = [
    ("current", Some(0)),
    ("1-30", Some(30)),
    ("31-60", Some(60)),
    ("61-90", Some(90)),
    ("91-180", Some(180)),
    ("over_180", None),
];

/// The bucket index of an invoice `days` overdue.
pub fn bucket_of(days: u32) -> usize {
    BUCKETS
        .iter()
        .position(|(_, max)| max.is_none_or(|m| days <= m))
        .unwrap_or(BUCKETS.len() - 1)
}

/// The whole KPI report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiReport {
    /// Balances are as of this instant.
    pub as_of: Timestamp,
    /// Start of the period (inclusive).
    pub from: Timestamp,
    /// End of the period (exclusive).
    pub to: Timestamp,
    /// The period's length in days.
    pub period_days: f64,
    /// The currency asked for, if any.
    pub currency: Option<String>,
    /// The segment asked for, if any.
    pub segment: Option<String>,
    /// How DSO is computed.
    pub dso_method: String,
    /// How CEI is computed.
    pub cei_method: String,
    /// One section per currency, by code.
    pub currencies: Vec<CurrencyKpis>,
    /// Promises and plans that were kept or broken in the period.
    pub arrangements: ArrangementKpis,
    /// Contacts by channel in the period.
    pub channels: Vec<ChannelKpis>,
}

/// The money figures of one currency (amounts as decimal strings with the currency's minor
/// units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrencyKpis {
    /// ISO 4217 code.
    pub currency: String,
    /// Receivables at `as_of` (handed-off invoices included, written-off ones not).
    pub receivables: String,
    /// Invoices with a balance at `as_of`.
    pub open_invoices: u64,
    /// Receivables at `as_of` by days overdue.
    pub aging: Vec<AgingBucket>,
    /// Days sales outstanding ([`DSO_METHOD`]); null when nothing was invoiced in the period.
    pub dso_days: Option<f64>,
    /// Collection effectiveness index over the period.
    pub cei: Cei,
    /// Amount invoiced in the period (invoices issued in it).
    pub invoiced: String,
    /// Invoices paid in full in the period and how long they took.
    pub days_to_pay: DaysToPay,
    /// Invoices written off in the period.
    pub written_off: Escalated,
    /// Invoices handed off in the period.
    pub handed_off: Escalated,
    /// Money received in the period on invoices after they were written off.
    pub recovered_after_write_off: String,
    /// Money received in the period on invoices after they were handed off.
    pub recovered_after_hand_off: String,
    /// Money received in the period (net of refunds), total and by week from `from`.
    pub collections: Collections,
}

/// One aging bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgingBucket {
    /// `current`, `1-30`, `31-60`, `61-90`, `91-180`, `over_180` (days overdue).
    pub bucket: String,
    /// Invoices in it.
    pub count: u64,
    /// Their balances at `as_of`.
    pub balance: String,
}

/// The collection effectiveness index and its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cei {
    /// Receivables at `from`.
    pub opening_receivables: String,
    /// Invoiced in the period.
    pub invoiced: String,
    /// Receivables at `to`.
    pub closing_receivables: String,
    /// Receivables at `to` not yet overdue.
    pub closing_current: String,
    /// The index in percent; null when the denominator is zero.
    pub percent: Option<f64>,
}

/// Days to pay of the invoices paid in full in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaysToPay {
    /// Invoices paid in full in the period.
    pub invoices: u64,
    /// Mean days from issue (or creation) to the payment that closed them; null with none.
    pub avg_days_to_pay: Option<f64>,
    /// Mean days after the due date (0 for those paid on time); null with none.
    pub avg_days_after_due: Option<f64>,
}

/// Invoices taken out of the chase in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalated {
    /// How many.
    pub count: u64,
    /// Their balances at that moment.
    pub amount: String,
}

/// Money received in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collections {
    /// Total, net of refunds.
    pub total: String,
    /// By week: week `i` starts at `from + 7 i days` (the last one may be shorter).
    pub weeks: Vec<Week>,
}

/// Money received in one week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Week {
    /// When the week starts.
    pub start: Timestamp,
    /// Amount received, net of refunds.
    pub amount: String,
}

/// Promises and plans that reached a final state in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArrangementKpis {
    /// Promises kept.
    pub promises_kept: u64,
    /// Promises broken.
    pub promises_broken: u64,
    /// `kept / (kept + broken)`, from 0 to 1; null with none.
    pub promise_kept_rate: Option<f64>,
    /// Plans kept (every instalment paid).
    pub plans_kept: u64,
    /// Plans broken.
    pub plans_broken: u64,
    /// Instalments paid, of the plans kept or broken in the period.
    pub instalments_paid: u64,
    /// Instalments missed, of those plans.
    pub instalments_missed: u64,
    /// `paid / (paid + missed)` over those instalments; null with none.
    pub instalment_kept_rate: Option<f64>,
}

/// What happened on one channel in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelKpis {
    /// Channel kind (`email`, `sms`, `whatsapp`, `webhook`, `call`).
    pub channel: String,
    /// Contacts: messages sent (a reminder folded into another invoice's message not counted
    /// again) and calls made.
    pub contacts: u64,
    /// Of those, delivered (a delivery or read receipt) or calls that reached the debtor.
    pub delivered: u64,
    /// Sends that failed for good, and messages the provider reported undelivered or failed.
    pub failures: u64,
    /// Messages the debtors sent us.
    pub inbound: u64,
    /// Opt-outs recorded.
    pub opt_outs: u64,
}

#[derive(Debug, Default)]
struct MoneyAcc {
    receivables: Decimal,
    open: u64,
    aging: [(u64, Decimal); 6],
    invoiced: Decimal,
    opening: Decimal,
    closing: Decimal,
    closing_current: Decimal,
    paid_count: u64,
    days_to_pay: i64,
    days_after_due: i64,
    written_off: (u64, Decimal),
    handed_off: (u64, Decimal),
    recovered_wo: Decimal,
    recovered_ho: Decimal,
    collected: Decimal,
    weeks: Vec<Decimal>,
}

fn add(a: &mut Decimal, b: Decimal) {
    *a = a.checked_add(b).unwrap_or(*a);
}

/// Collects the KPIs client by client ([`KpiAccumulator::add_client`]), then
/// [`KpiAccumulator::finish`] computes the ratios.
#[derive(Debug)]
pub struct KpiAccumulator {
    params: ReportParams,
    money: BTreeMap<String, (Currency, MoneyAcc)>,
    arrangements: ArrangementKpis,
    channels: BTreeMap<String, ChannelKpis>,
    weeks: usize,
}

fn date_in(t: Timestamp, zone: &TimeZone) -> Date {
    t.to_zoned(zone.clone()).date()
}

fn days_between(a: Date, b: Date) -> i64 {
    a.until(b).map_or(0, |s| i64::from(s.get_days()))
}

impl KpiAccumulator {
    /// An empty accumulator for `params`.
    pub fn new(params: ReportParams) -> Self {
        let secs = params
            .period
            .to
            .duration_since(params.period.from)
            .as_secs();
        let week = 7 * 86_400;
        let weeks = usize::try_from((secs + week - 1) / week)
            .unwrap_or(0)
            .max(1);
        KpiAccumulator {
            params,
            money: BTreeMap::new(),
            arrangements: ArrangementKpis::default(),
            channels: BTreeMap::new(),
            weeks,
        }
    }

    fn channel(&mut self, kind: &str) -> &mut ChannelKpis {
        self.channels
            .entry(kind.to_owned())
            .or_insert_with(|| ChannelKpis {
                channel: kind.to_owned(),
                ..ChannelKpis::default()
            })
    }

    /// Adds one client: its invoices the filter covers (created by `as_of`), and its own
    /// timeline when the client is in the segment asked for and has such an invoice (or no
    /// currency was asked for).
    pub fn add_client(&mut self, c: &ClientRecords) {
        let mut any = false;
        for r in &c.invoices {
            if !self.params.filter.covers(&r.invoice, &r.segment)
                || r.invoice.created_at > self.params.as_of
            {
                continue;
            }
            any = true;
            self.add_invoice(r, &c.zone);
        }
        let in_segment = self
            .params
            .filter
            .segment
            .as_deref()
            .is_none_or(|s| s == c.segment);
        if !(in_segment && (any || self.params.filter.currency.is_none())) {
            return;
        }
        let period = self.params.period;
        for e in c.events.iter().filter(|e| period.contains(e.at)) {
            match e.event {
                ContactEventKind::Inbound => self.channel(&e.channel).inbound += 1,
                ContactEventKind::OptOut => self.channel(&e.channel).opt_outs += 1,
                _ => {}
            }
        }
    }

    fn add_invoice(&mut self, r: &InvoiceRecords, zone: &TimeZone) {
        let inv = &r.invoice;
        let p = self.params.clone();
        let (from, to) = (p.period.from, p.period.to);
        let weeks = self.weeks;
        let code = inv.currency.code().to_owned();
        let (_, m) = self
            .money
            .entry(code)
            .or_insert_with(|| (inv.currency, MoneyAcc::default()));
        if m.weeks.len() < weeks {
            m.weeks.resize(weeks, Decimal::ZERO);
        }
        // Aging at as_of.
        if let Some(b) = receivable_at(inv, zone, p.as_of) {
            add(&mut m.receivables, b);
            m.open += 1;
            let slot = &mut m.aging[bucket_of(days_late(&inv.due_at, p.as_of, zone))];
            slot.0 += 1;
            add(&mut slot.1, b);
        }
        // Flows over the period.
        let issued = issued_instant(inv, zone);
        if p.period.contains(issued) {
            add(&mut m.invoiced, inv.amount);
        }
        if let Some(b) = receivable_at(inv, zone, from) {
            add(&mut m.opening, b);
        }
        if let Some(b) = receivable_at(inv, zone, to) {
            add(&mut m.closing, b);
            if days_late(&inv.due_at, to, zone) == 0 {
                add(&mut m.closing_current, b);
            }
        }
        if let Some(at) = paid_in_full_at(inv).filter(|t| p.period.contains(*t)) {
            m.paid_count += 1;
            let start = inv
                .issued_at
                .unwrap_or_else(|| date_in(inv.created_at, zone));
            m.days_to_pay += days_between(start, date_in(at, zone)).max(0);
            m.days_after_due += i64::from(days_late(&inv.due_at, at, zone));
        }
        for pay in inv.payments.iter().filter(|x| p.period.contains(x.paid_at)) {
            add(&mut m.collected, pay.amount);
            let i = pay.paid_at.duration_since(from).as_secs() / (7 * 86_400);
            if let Some(w) = usize::try_from(i).ok().and_then(|i| m.weeks.get_mut(i)) {
                add(w, pay.amount);
            }
        }
        if let Some(e) = &inv.escalation {
            let slot = match e.kind {
                EscalationKind::WrittenOff => Some((&mut m.written_off, &mut m.recovered_wo)),
                EscalationKind::HandedOff => Some((&mut m.handed_off, &mut m.recovered_ho)),
                EscalationKind::Voided => None,
            };
            if let Some((count, recovered)) = slot {
                if p.period.contains(e.at) {
                    count.0 += 1;
                    add(&mut count.1, e.balance);
                }
                for pay in inv.payments.iter() {
                    if pay.paid_at >= e.at && p.period.contains(pay.paid_at) {
                        add(recovered, pay.amount);
                    }
                }
            }
        }
        // Arrangements that ended in the period.
        for a in &inv.arrangements {
            if !a.closed_at.is_some_and(|t| p.period.contains(t)) {
                continue;
            }
            let kept = match a.state {
                ArrangementState::Kept => true,
                ArrangementState::Broken => false,
                _ => continue,
            };
            let k = &mut self.arrangements;
            match (a.kind, kept) {
                (ArrangementKind::Promise, true) => k.promises_kept += 1,
                (ArrangementKind::Promise, false) => k.promises_broken += 1,
                (ArrangementKind::Plan, true) => k.plans_kept += 1,
                (ArrangementKind::Plan, false) => k.plans_broken += 1,
            }
            if a.kind == ArrangementKind::Plan {
                for i in &a.instalments {
                    match i.state {
                        InstalmentState::Paid => k.instalments_paid += 1,
                        InstalmentState::Missed => k.instalments_missed += 1,
                        InstalmentState::Pending => {}
                    }
                }
            }
        }
        // Contacts by channel.
        for c in contacts_on(&r.timeline, from) {
            if c.at >= to {
                continue;
            }
            let ch = self.channel(&c.kind);
            ch.contacts += 1;
            if c.effective {
                ch.delivered += 1;
            }
        }
        for l in r.timeline.iter().filter(|l| p.period.contains(l.at)) {
            let Some(kind) = l.channel.as_deref() else {
                continue;
            };
            let failed = match l.outcome {
                AttemptOutcome::Failed => true,
                AttemptOutcome::Receipt => l.delivery.is_some_and(|d| d.is_failure()),
                _ => false,
            };
            if failed {
                self.channel(kind).failures += 1;
            }
        }
    }

    /// The report.
    pub fn finish(self) -> KpiReport {
        let p = &self.params;
        let currencies = self
            .money
            .into_values()
            .map(|(cur, m)| currency_kpis(cur, m, p, self.weeks))
            .collect();
        let mut arrangements = self.arrangements;
        arrangements.promise_kept_rate =
            rate(arrangements.promises_kept, arrangements.promises_broken);
        arrangements.instalment_kept_rate = rate(
            arrangements.instalments_paid,
            arrangements.instalments_missed,
        );
        KpiReport {
            as_of: p.as_of,
            from: p.period.from,
            to: p.period.to,
            period_days: p.period.days(),
            currency: p.filter.currency.map(|c| c.code().to_owned()),
            segment: p.filter.segment.clone(),
            dso_method: DSO_METHOD.to_owned(),
            cei_method: CEI_METHOD.to_owned(),
            currencies,
            arrangements,
            channels: self.channels.into_values().collect(),
        }
    }
}

/// `good / (good + bad)`, null when both are zero.
pub fn rate(good: u64, bad: u64) -> Option<f64> {
    let total = good + bad;
    (total > 0).then(|| good as f64 / total as f64)
}

/// Days sales outstanding: `receivables / invoiced * days`; null when nothing was invoiced.
pub fn dso(receivables: Decimal, invoiced: Decimal, days: f64) -> Option<f64> {
    if invoiced <= Decimal::ZERO {
        return None;
    }
    receivables
        .checked_div(invoiced)
        .and_then(|r| r.to_f64())
        .map(|r| r * days)
}

/// The collection effectiveness index in percent; null when the denominator is zero.
pub fn cei(opening: Decimal, invoiced: Decimal, closing: Decimal, current: Decimal) -> Option<f64> {
    let base = opening.checked_add(invoiced)?;
    let num = base.checked_sub(closing)?;
    let den = base.checked_sub(current)?;
    if den.is_zero() {
        return None;
    }
    num.checked_div(den)?
        .checked_mul(Decimal::ONE_HUNDRED)?
        .to_f64()
}

fn currency_kpis(cur: Currency, m: MoneyAcc, p: &ReportParams, weeks: usize) -> CurrencyKpis {
    let show = |d: Decimal| cur.show(d);
    let avg = |sum: i64, n: u64| (n > 0).then(|| sum as f64 / n as f64);
    let mut week_amounts = m.weeks;
    week_amounts.resize(weeks, Decimal::ZERO);
    CurrencyKpis {
        currency: cur.code().to_owned(),
        receivables: show(m.receivables),
        open_invoices: m.open,
        aging: BUCKETS
            .iter()
            .zip(m.aging.iter())
            .map(|((name, _), (count, bal))| AgingBucket {
                bucket: (*name).to_owned(),
                count: *count,
                balance: show(*bal),
            })
            .collect(),
        dso_days: dso(m.closing, m.invoiced, p.period.days()),
        cei: Cei {
            opening_receivables: show(m.opening),
            invoiced: show(m.invoiced),
            closing_receivables: show(m.closing),
            closing_current: show(m.closing_current),
            percent: cei(m.opening, m.invoiced, m.closing, m.closing_current),
        },
        invoiced: show(m.invoiced),
        days_to_pay: DaysToPay {
            invoices: m.paid_count,
            avg_days_to_pay: avg(m.days_to_pay, m.paid_count),
            avg_days_after_due: avg(m.days_after_due, m.paid_count),
        },
        written_off: Escalated {
            count: m.written_off.0,
            amount: show(m.written_off.1),
        },
        handed_off: Escalated {
            count: m.handed_off.0,
            amount: show(m.handed_off.1),
        },
        recovered_after_write_off: show(m.recovered_wo),
        recovered_after_hand_off: show(m.recovered_ho),
        collections: Collections {
            total: show(m.collected),
            weeks: week_amounts
                .into_iter()
                .enumerate()
                .map(|(i, a)| Week {
                    start: p
                        .period
                        .from
                        .checked_add(SignedDuration::from_hours(24 * 7 * i as i64))
                        .unwrap_or(p.period.from),
                    amount: show(a),
                })
                .collect(),
        },
    }
}
