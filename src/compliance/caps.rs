//! Contact caps: how many contacts a preset allows a debtor per day or week, how far apart,
//! and on how many channels, counted from what plazo already recorded (the timelines of the
//! client's invoices are the record of every contact).

use std::collections::BTreeSet;

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};

use super::preset::{Cap, Count, Limit, Period, Scope};
use crate::domain::{Attempt, AttemptOutcome, DeliveryState, InvoiceId};

/// How far back contacts matter: the longest `min_gap_days` (30) and a week.
pub const HISTORY_DAYS: i64 = 31;

/// The channel kind call tasks count under.
pub const CALL: &str = "call";

/// How a timeline line starts when a reminder went out inside another invoice's message (one
/// message a day per client, `group = "client"`): the same contact, not another one.
pub const GROUPED: &str = "in the grouped statement";

/// Whether `line` records a reminder included in another invoice's message.
pub fn is_grouped_inclusion(line: &Attempt) -> bool {
    line.detail
        .as_deref()
        .is_some_and(|d| d.starts_with(GROUPED))
}

/// One contact with a debtor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactMade {
    /// When.
    pub at: Timestamp,
    /// Channel kind (`email`, `sms`, `whatsapp`, `webhook`, `call`).
    pub kind: String,
    /// The invoice it was about.
    pub invoice: InvoiceId,
    /// Whether it got through: a delivery or read receipt, or a call that reached the debtor.
    pub effective: bool,
}

/// The contacts on one invoice's timeline since `since`: every message sent (with a delivery
/// or read receipt for it making it effective) and every call task's outcome (its line carries
/// channel `call`, delivered when the call reached the debtor).
pub fn contacts_on(timeline: &[Attempt], since: Timestamp) -> Vec<ContactMade> {
    let delivered: BTreeSet<&str> = timeline
        .iter()
        .filter(|l| {
            l.outcome == AttemptOutcome::Receipt
                && matches!(
                    l.delivery,
                    Some(DeliveryState::Delivered | DeliveryState::Read)
                )
        })
        .filter_map(|l| l.provider_message_id.as_deref())
        .collect();
    timeline
        .iter()
        .filter(|l| l.at >= since)
        .filter_map(|l| {
            let kind = l.channel.as_deref()?;
            if is_grouped_inclusion(l) {
                return None; // counted once, on the message's own invoice
            }
            let effective = match l.outcome {
                AttemptOutcome::Sent => l
                    .provider_message_id
                    .as_deref()
                    .is_some_and(|id| delivered.contains(id)),
                AttemptOutcome::Event if kind == CALL => {
                    l.delivery == Some(DeliveryState::Delivered)
                }
                _ => return None,
            };
            Some(ContactMade {
                at: l.at,
                kind: kind.to_owned(),
                invoice: l.invoice_id.clone(),
                effective,
            })
        })
        .collect()
}

/// Every contact with `client` in the last [`HISTORY_DAYS`] days before `now`, from the
/// timelines of all its invoices.
pub fn recent_contacts(
    store: &crate::store::Store,
    client: &crate::domain::ClientId,
    now: Timestamp,
) -> Result<Vec<ContactMade>, crate::store::StoreError> {
    let since = now
        .checked_sub(SignedDuration::from_hours(24 * HISTORY_DAYS))
        .unwrap_or(now);
    let mut contacts = Vec::new();
    for id in store.invoice_ids_of_client(client)? {
        contacts.extend(contacts_on(&store.timeline(&id)?, since));
    }
    Ok(contacts)
}

/// A cap that holds a contact back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The preset it comes from.
    pub preset: String,
    /// The cap.
    pub cap: Cap,
    /// The earliest instant it allows the contact again.
    pub until: Timestamp,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} allows {}", self.preset, self.cap.describe())
    }
}

/// Everything `check` needs about the debtor besides the caps.
#[derive(Debug, Clone, Copy)]
pub struct Debtor<'a> {
    /// Their contacts (any order), from [`contacts_on`] over every invoice of the client.
    pub contacts: &'a [ContactMade],
    /// When they last wrote to plazo (a reply: an effective contact).
    pub last_inbound: Option<Timestamp>,
    /// Their time zone (days and weeks are local).
    pub zone: &'a TimeZone,
}

/// The caps of `caps` that forbid a contact on channel `kind` about `invoice` at `now`, each
/// with the instant it frees; empty when the contact may go out.
pub fn check(
    caps: &[(String, Cap)],
    debtor: Debtor<'_>,
    kind: &str,
    invoice: &InvoiceId,
    now: Timestamp,
) -> Vec<Held> {
    caps.iter()
        .filter(|(_, cap)| cap.covers(kind))
        .filter_map(|(preset, cap)| {
            // A cap that frees now (or earlier) holds nothing back.
            let until = held_until(cap, debtor, kind, invoice, now).filter(|u| *u > now);
            until.map(|until| Held {
                preset: preset.clone(),
                cap: cap.clone(),
                until,
            })
        })
        .collect()
}

/// When `cap` frees a contact on `kind` about `invoice` that it forbids at `now`.
fn held_until(
    cap: &Cap,
    debtor: Debtor<'_>,
    kind: &str,
    invoice: &InvoiceId,
    now: Timestamp,
) -> Option<Timestamp> {
    let (start, end) = period(cap.per, now, debtor.zone)?;
    let counted = |c: &&ContactMade| {
        c.at <= now
            && cap.covers(&c.kind)
            && (cap.scope == Scope::Person || c.invoice == *invoice)
            && (cap.count == Count::Attempt || c.effective)
    };
    match cap.limit {
        Limit::Max(max) => {
            // A rolling week is (now − 7 days, now]: a contact exactly 7 days old has left it.
            let inside = |t: Timestamp| match cap.per {
                Period::Rolling7d => t > start,
                Period::Day | Period::CalendarWeek => t >= start,
            };
            let mut times: Vec<Timestamp> = debtor
                .contacts
                .iter()
                .filter(counted)
                .map(|c| c.at)
                .filter(|t| inside(*t))
                .collect();
            let max = usize::try_from(max).ok()?;
            if times.len() < max {
                return None;
            }
            match cap.per {
                // Free once enough of them are 7 days old: the (n - max + 1)-th oldest.
                Period::Rolling7d => {
                    times.sort();
                    let pivot = times.get(times.len() - max)?;
                    pivot.checked_add(SignedDuration::from_hours(7 * 24)).ok()
                }
                Period::Day | Period::CalendarWeek => Some(end),
            }
        }
        Limit::MinGapDays(days) => {
            let last = debtor.contacts.iter().filter(counted).map(|c| c.at).max()?;
            let free = last
                .checked_add(SignedDuration::from_hours(24 * i64::from(days)))
                .ok()?;
            (free > now).then_some(free)
        }
        Limit::DistinctChannels(max) => {
            let in_period = |c: &&ContactMade| {
                c.at >= start
                    && c.at <= now
                    && cap.covers(&c.kind)
                    && (cap.scope == Scope::Person || c.invoice == *invoice)
            };
            let effective = debtor
                .contacts
                .iter()
                .filter(in_period)
                .any(|c| c.effective)
                || debtor.last_inbound.is_some_and(|t| t >= start && t <= now);
            if !effective {
                return None;
            }
            let used: BTreeSet<&str> = debtor
                .contacts
                .iter()
                .filter(in_period)
                .map(|c| c.kind.as_str())
                .collect();
            let max = usize::try_from(max).ok()?;
            (!used.contains(kind) && used.len() >= max).then_some(end)
        }
    }
}

/// The period of `per` around `now` in `zone`: `[start, end)`. A rolling period ends now.
fn period(per: Period, now: Timestamp, zone: &TimeZone) -> Option<(Timestamp, Timestamp)> {
    let local = now.to_zoned(zone.clone());
    match per {
        Period::Rolling7d => Some((
            now.checked_sub(SignedDuration::from_hours(7 * 24)).ok()?,
            now,
        )),
        Period::Day => {
            let start = local.start_of_day().ok()?;
            let end = start.checked_add(Span::new().days(1)).ok()?;
            Some((start.timestamp(), end.start_of_day().ok()?.timestamp()))
        }
        Period::CalendarWeek => {
            let back = i64::from(local.weekday().since(Weekday::Monday));
            let monday = local
                .start_of_day()
                .ok()?
                .checked_sub(Span::new().days(back))
                .ok()?;
            let start = monday.start_of_day().ok()?;
            let end = start
                .checked_add(Span::new().days(7))
                .ok()?
                .start_of_day()
                .ok()?;
            Some((start.timestamp(), end.timestamp()))
        }
    }
}

#[cfg(test)]
mod tests;
