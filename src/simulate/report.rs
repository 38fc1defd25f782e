//! What a simulation reports: messages per day by channel, per segment and per step,
//! deferrals by reason (contact hours, holidays, the debtor's blocked times, caps), skipped
//! and failed steps, the estimated cost per channel, and the difference between two policies.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::Serialize;

use super::SimulateError;
use super::channel::SimMessage;
use crate::config::SimulationConfig;
use crate::domain::{AttemptOutcome, InvoiceId};
use crate::store::Store;

/// What one policy does over the simulated days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyOutcome {
    /// Messages sent.
    pub messages: u64,
    /// Messages per channel kind.
    pub by_channel: BTreeMap<String, u64>,
    /// Messages per segment (the one chasing the invoice when the message went out).
    pub by_segment: BTreeMap<String, u64>,
    /// Messages per step name.
    pub by_step: BTreeMap<String, u64>,
    /// Messages per day (in the policy's default time zone) and channel.
    pub by_day: BTreeMap<String, BTreeMap<String, u64>>,
    /// Sends put off, by reason: `hours` (outside a contact window or a legal preset's
    /// hours), `holiday`, `debtor_blocked_times`, `caps` (a contact cap was reached),
    /// `paused`, `rate_limit`, `other`. One step put off twice counts twice.
    pub deferrals: BTreeMap<String, u64>,
    /// Sends held back by contact caps (the same as `deferrals.caps`).
    pub caps_hit: u64,
    /// Steps not sent (superseded, too late for `max_late`, no usable channel, opted out...).
    pub skipped: u64,
    /// Steps whose every channel failed.
    pub failed: u64,
    /// Estimated cost: messages × the unit price of their channel (`[simulation] prices`).
    pub cost: Cost,
    /// Every message, in sending order, when asked for (`messages: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<Vec<SimMessage>>,
}

/// An estimated cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    /// The prices' currency.
    pub currency: String,
    /// Per channel kind.
    pub by_channel: BTreeMap<String, String>,
    /// In all.
    pub total: String,
}

/// Candidate minus current.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// Messages.
    pub messages: i64,
    /// Messages per channel kind.
    pub by_channel: BTreeMap<String, i64>,
    /// Messages per segment.
    pub by_segment: BTreeMap<String, i64>,
    /// Messages per step.
    pub by_step: BTreeMap<String, i64>,
    /// Deferrals by reason.
    pub deferrals: BTreeMap<String, i64>,
    /// Estimated cost.
    pub cost: String,
}

/// The class of a deferral from its timeline line.
pub(super) fn deferral_reason(detail: &str) -> &'static str {
    if detail.starts_with("deferred: ") && detail.contains(" allows ") {
        "caps"
    } else if detail.contains("excludes public holidays") {
        "holiday"
    } else if detail.contains("asked not to be contacted") {
        "debtor_blocked_times"
    } else if detail.starts_with("deferred: outside") {
        "hours"
    } else if detail.starts_with("rate limit") {
        "rate_limit"
    } else if detail.starts_with("chase paused") {
        "paused"
    } else {
        "other"
    }
}

/// Sums `sent` and the scratch store's timeline lines in `from..to`.
pub(super) fn outcome(
    scratch: &Store,
    sent: Vec<SimMessage>,
    zone: &TimeZone,
    prices: &SimulationConfig,
    from: Timestamp,
    to: Timestamp,
    keep_messages: bool,
) -> Result<PolicyOutcome, SimulateError> {
    let mut o = PolicyOutcome {
        messages: sent.len() as u64,
        by_channel: BTreeMap::new(),
        by_segment: BTreeMap::new(),
        by_step: BTreeMap::new(),
        by_day: BTreeMap::new(),
        deferrals: BTreeMap::new(),
        caps_hit: 0,
        skipped: 0,
        failed: 0,
        cost: Cost {
            currency: prices.currency.clone(),
            by_channel: BTreeMap::new(),
            total: "0".into(),
        },
        sent: None,
    };
    for m in &sent {
        *o.by_channel.entry(m.channel.clone()).or_default() += 1;
        *o.by_segment.entry(m.segment.clone()).or_default() += 1;
        *o.by_step.entry(m.step.clone()).or_default() += 1;
        let day = m.at.to_zoned(zone.clone()).date().to_string();
        *o.by_day
            .entry(day)
            .or_default()
            .entry(m.channel.clone())
            .or_default() += 1;
    }
    let mut total = Decimal::ZERO;
    for (kind, n) in &o.by_channel {
        let price = prices.prices.get(kind).copied().unwrap_or(Decimal::ZERO);
        let cost = price
            .checked_mul(Decimal::from(*n))
            .ok_or(SimulateError::Overflow)?;
        total = total.checked_add(cost).ok_or(SimulateError::Overflow)?;
        o.cost
            .by_channel
            .insert(kind.clone(), cost.normalize().to_string());
    }
    o.cost.total = total.normalize().to_string();
    let mut after: Option<InvoiceId> = None;
    loop {
        let ids = scratch.invoice_ids_after(after.as_ref(), 256)?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        for id in ids {
            for line in scratch.timeline(&id)? {
                if line.at < from || line.at >= to {
                    continue;
                }
                match line.outcome {
                    AttemptOutcome::Deferred => {
                        let why = deferral_reason(line.detail.as_deref().unwrap_or(""));
                        *o.deferrals.entry(why.to_owned()).or_default() += 1;
                    }
                    AttemptOutcome::Skipped => o.skipped += 1,
                    AttemptOutcome::Failed => o.failed += 1,
                    _ => {}
                }
            }
        }
        after = Some(last);
    }
    o.caps_hit = o.deferrals.get("caps").copied().unwrap_or(0);
    if keep_messages {
        o.sent = Some(sent);
    }
    Ok(o)
}

fn diff_maps(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for k in a.keys().chain(b.keys()) {
        let d =
            i128::from(b.get(k).copied().unwrap_or(0)) - i128::from(a.get(k).copied().unwrap_or(0));
        out.insert(k.clone(), i64::try_from(d).unwrap_or(i64::MAX));
    }
    out
}

/// `candidate` minus `current`.
pub(super) fn difference(current: &PolicyOutcome, candidate: &PolicyOutcome) -> Difference {
    let cost = match (
        current.cost.total.parse::<Decimal>(),
        candidate.cost.total.parse::<Decimal>(),
    ) {
        (Ok(a), Ok(b)) => b
            .checked_sub(a)
            .map_or_else(String::new, |d| d.normalize().to_string()),
        _ => String::new(),
    };
    Difference {
        messages: i64::try_from(i128::from(candidate.messages) - i128::from(current.messages))
            .unwrap_or(i64::MAX),
        by_channel: diff_maps(&current.by_channel, &candidate.by_channel),
        by_segment: diff_maps(&current.by_segment, &candidate.by_segment),
        by_step: diff_maps(&current.by_step, &candidate.by_step),
        deferrals: diff_maps(&current.deferrals, &candidate.deferrals),
        cost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferrals_are_classed_by_their_timeline_text() {
        assert_eq!(
            deferral_reason(
                "deferred: co_ley_2300 allows 1 contact per day per person; next Tue 08:00"
            ),
            "caps"
        );
        assert_eq!(
            deferral_reason(
                "deferred: co_ley_2300 excludes public holidays (Día del Trabajo); next x"
            ),
            "holiday"
        );
        assert_eq!(
            deferral_reason("deferred: outside the contact window (Mon 08:00–19:00); next x"),
            "hours"
        );
        assert_eq!(
            deferral_reason("deferred: the debtor asked not to be contacted then (allowed: x)"),
            "debtor_blocked_times"
        );
        assert_eq!(deferral_reason("chase paused until 2026-03-01"), "paused");
        assert_eq!(deferral_reason("rate limit sms: waiting"), "rate_limit");
    }

    #[test]
    fn the_difference_is_candidate_minus_current_over_every_key() {
        let mk = |n: u64, ch: &[(&str, u64)], total: &str| PolicyOutcome {
            messages: n,
            by_channel: ch.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            by_segment: BTreeMap::new(),
            by_step: BTreeMap::new(),
            by_day: BTreeMap::new(),
            deferrals: BTreeMap::new(),
            caps_hit: 0,
            skipped: 0,
            failed: 0,
            cost: Cost {
                currency: "USD".into(),
                by_channel: BTreeMap::new(),
                total: total.into(),
            },
            sent: None,
        };
        let d = difference(
            &mk(3, &[("email", 3)], "0.3"),
            &mk(5, &[("email", 2), ("sms", 3)], "0.5079"),
        );
        assert_eq!(d.messages, 2);
        assert_eq!(d.by_channel["email"], -1);
        assert_eq!(d.by_channel["sms"], 3);
        assert_eq!(d.cost, "0.2079");
    }
}
