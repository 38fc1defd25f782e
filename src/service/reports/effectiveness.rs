//! Which reminder works (`GET /v1/reports/effectiveness`): for every segment, step and
//! channel, the messages sent in the period and how often the invoice was paid in full soon
//! after.
//!
//! Attribution: an invoice's full payment (the payment that brought the money received to
//! the invoice's amount) is credited to the LAST message sent for that invoice at or before
//! the payment, and to no other. A message is "paid within N days" when the payment credited
//! to it came at most N × 24 hours after it. Messages sent before the period still take the
//! credit of a payment that followed them (so a period's messages are not credited with a
//! payment an earlier message was the last before). Payments are the ones known when the
//! report is made, including those after the period.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{ClientRecords, Filter, Period, paid_in_full_at};
use crate::domain::AttemptOutcome;

/// The attribution rule, as the report says it (`attribution`).
pub const ATTRIBUTION: &str = "a full payment is credited to the last message sent for the invoice at or before it; a message counts as paid within N days when the payment credited to it came within N*24 hours";

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectivenessReport {
    /// Start of the period (inclusive).
    pub from: Timestamp,
    /// End of the period (exclusive).
    pub to: Timestamp,
    /// The currency asked for, if any.
    pub currency: Option<String>,
    /// The segment asked for, if any.
    pub segment: Option<String>,
    /// How payments are attributed to messages.
    pub attribution: String,
    /// One row per (segment, step, channel), in that order.
    pub rows: Vec<EffectRow>,
}

/// How one step on one channel of one segment did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectRow {
    /// Segment of the invoices.
    pub segment: String,
    /// Step name.
    pub step: String,
    /// Channel kind.
    pub channel: String,
    /// Messages sent in the period.
    pub sent: u64,
    /// Of those, credited with a full payment at all.
    pub paid: u64,
    /// Of those, paid in full within 3 days.
    pub paid_within_3d: u64,
    /// Of those, paid in full within 7 days.
    pub paid_within_7d: u64,
    /// `paid_within_3d / sent`, from 0 to 1.
    pub share_paid_3d: f64,
    /// `paid_within_7d / sent`, from 0 to 1.
    pub share_paid_7d: f64,
    /// Median days from message to the full payment credited to it; null when none was.
    pub median_days_to_pay: Option<f64>,
}

#[derive(Debug, Default)]
struct RowAcc {
    sent: u64,
    within3: u64,
    within7: u64,
    delays: Vec<f64>,
}

/// Collects messages and payments client by client, then [`EffectAccumulator::finish`].
#[derive(Debug)]
pub struct EffectAccumulator {
    period: Period,
    filter: Filter,
    rows: BTreeMap<(String, String, String), RowAcc>,
}

impl EffectAccumulator {
    /// An empty accumulator over `period` for the invoices `filter` covers.
    pub fn new(period: Period, filter: Filter) -> Self {
        EffectAccumulator {
            period,
            filter,
            rows: BTreeMap::new(),
        }
    }

    /// Adds the messages of one client's invoices.
    pub fn add_client(&mut self, c: &ClientRecords) {
        for r in &c.invoices {
            if !self.filter.covers(&r.invoice, &r.segment) {
                continue;
            }
            let mut sent: Vec<_> = r
                .timeline
                .iter()
                .filter(|l| l.outcome == AttemptOutcome::Sent)
                .filter_map(|l| Some((l.at, l.step.as_deref()?, l.channel.as_deref()?)))
                .collect();
            sent.sort_by_key(|s| s.0);
            let paid = paid_in_full_at(&r.invoice);
            // The one message credited: the last at or before the full payment.
            let credited = paid.and_then(|p| sent.iter().rposition(|s| s.0 <= p).map(|i| (i, p)));
            for (i, (at, step, channel)) in sent.iter().enumerate() {
                if !self.period.contains(*at) {
                    continue;
                }
                let row = self
                    .rows
                    .entry((r.segment.clone(), (*step).to_owned(), (*channel).to_owned()))
                    .or_default();
                row.sent += 1;
                if let Some((_, p)) = credited.filter(|(ci, _)| *ci == i) {
                    let days = p.duration_since(*at).as_secs_f64() / 86_400.0;
                    row.delays.push(days);
                    if days <= 3.0 {
                        row.within3 += 1;
                    }
                    if days <= 7.0 {
                        row.within7 += 1;
                    }
                }
            }
        }
    }

    /// The report.
    pub fn finish(self) -> EffectivenessReport {
        let rows = self
            .rows
            .into_iter()
            .map(|((segment, step, channel), mut a)| {
                let share = |n: u64| {
                    if a.sent == 0 {
                        0.0
                    } else {
                        n as f64 / a.sent as f64
                    }
                };
                EffectRow {
                    share_paid_3d: share(a.within3),
                    share_paid_7d: share(a.within7),
                    segment,
                    step,
                    channel,
                    sent: a.sent,
                    paid: a.delays.len() as u64,
                    paid_within_3d: a.within3,
                    paid_within_7d: a.within7,
                    median_days_to_pay: median(&mut a.delays),
                }
            })
            .collect();
        EffectivenessReport {
            from: self.period.from,
            to: self.period.to,
            currency: self.filter.currency.map(|c| c.code().to_owned()),
            segment: self.filter.segment,
            attribution: ATTRIBUTION.to_owned(),
            rows,
        }
    }
}

/// The median of `xs` (the mean of the two middle values for an even count); null when empty.
pub fn median(xs: &mut [f64]) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => xs.get(n / 2).copied(),
        _ => Some((xs.get(n / 2 - 1)? + xs.get(n / 2)?) / 2.0),
    }
}
