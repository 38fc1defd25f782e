//! The planner: `(invoice, client, policy, now) -> Plan`. Pure; no I/O, no clock.
//!
//! For each step of the client's cadence the planner computes the *nominal* time (where the
//! cadence puts it relative to the due date, in the client's zone) and the *fire* time (after
//! catch-up and the contact window). Rules:
//!
//! The same rules lay out every schedule ([`plan_track`]): the regular cadence from the due
//! date (or the last payment, see [`cadence_anchor`]), a promise or plan instalment's cadence
//! from its date, the broken-promise cadence from the moment a promise broke.
//!
//! - Steps with `index <= invoice.cursor` are [`PlannedStatus::Done`].
//! - Among the rest, if some nominal times are at or before `now`, only the highest-index such
//!   step is sent ([`PlannedStatus::CatchUp`], at the next allowed instant from `now`); every
//!   not-done step before it is superseded ([`PlannedStatus::SkippedCatchUp`]). A debtor who
//!   arrives late gets one message, in the tone the cadence has reached, not a burst.
//! - Later steps fire at the next allowed instant from their nominal time
//!   ([`PlannedStatus::Scheduled`] if that is the nominal time, [`PlannedStatus::Deferred`] if
//!   the window moved it), never before the previous step to be sent, so fire times are
//!   non-decreasing in cadence order.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};
use serde::Serialize;

use crate::domain::{Client, Due, Invoice, Reminder, Track};
use crate::policy::terms::CadenceAnchor;
use crate::policy::{Offset, Policy, Segment, Step};

use super::segments::segment_followed;
pub use super::zone::client_zone;
use super::zone::zone_and_name;
use crate::compliance::rules::ContactRules;

/// Where `step` falls for an invoice due at `due`, in `zone`, before catch-up and windows.
///
/// - [`Due::Date`] `d`:
///   - [`Offset::Days`] `n`: local date `d + n` at `step.at` (or `default_send_at`).
///   - [`Offset::Minutes`] `m`: local `d` at `step.at` (or `default_send_at`), plus exactly
///     `m` minutes.
/// - [`Due::Instant`] `i`, `step.at` absent:
///   - [`Offset::Days`] `n`: `i` seen in `zone`, plus `n` calendar days (same wall time).
///   - [`Offset::Minutes`] `m`: `i` plus exactly `m` minutes.
/// - [`Due::Instant`] `i`, `step.at` = `t`:
///   - [`Offset::Days`] `n`: local date of `i`, plus `n` days, at `t`.
///   - [`Offset::Minutes`] `m`: local date of `i + m minutes`, at `t`.
///
/// Local times that do not exist (DST gap) move forward by the gap's length; ambiguous ones
/// (DST fold) take the first occurrence (jiff's `compatible` rule).
///
/// # Errors
///
/// Only when the result falls outside jiff's supported range (about years -9999..=9999).
pub fn nominal_time(
    due: &Due,
    step: &Step,
    zone: &TimeZone,
    default_send_at: Time,
) -> Result<Zoned, jiff::Error> {
    let days = |n: i32| Span::new().try_days(n);
    let minutes = |m: i64| Span::new().try_minutes(m);
    match (*due, step.offset) {
        (Due::Date(d), Offset::Days(n)) => d
            .checked_add(days(n)?)?
            .to_datetime(step.at.unwrap_or(default_send_at))
            .to_zoned(zone.clone()),
        (Due::Date(d), Offset::Minutes(m)) => d
            .to_datetime(step.at.unwrap_or(default_send_at))
            .to_zoned(zone.clone())?
            .checked_add(minutes(m)?),
        (Due::Instant(i), Offset::Days(n)) => {
            let local = i.to_zoned(zone.clone());
            match step.at {
                None => local.checked_add(days(n)?),
                Some(at) => local
                    .date()
                    .checked_add(days(n)?)?
                    .to_datetime(at)
                    .to_zoned(zone.clone()),
            }
        }
        (Due::Instant(i), Offset::Minutes(m)) => {
            let shifted = i.checked_add(minutes(m)?)?.to_zoned(zone.clone());
            match step.at {
                None => Ok(shifted),
                Some(at) => shifted.date().to_datetime(at).to_zoned(zone.clone()),
            }
        }
    }
}

/// What the plan does with a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedStatus {
    /// Future step, firing at its nominal time.
    Scheduled,
    /// Future step, moved later by the contact window (or to keep cadence order).
    Deferred,
    /// The latest step whose time has passed: sent now (or at the next allowed instant).
    CatchUp,
    /// A step whose time has passed, superseded by a later one: not sent.
    SkippedCatchUp,
    /// Already handled (`index <= invoice.cursor`).
    Done,
}

impl PlannedStatus {
    /// Whether a step with this status is still to be sent.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Scheduled | Self::Deferred | Self::CatchUp)
    }
}

/// One cadence step as planned for one invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    /// Index of the step in its cadence.
    pub index: u32,
    /// Step name.
    pub step: String,
    /// Channel kinds to try, in order.
    pub channels: Vec<String>,
    /// Template name.
    pub template: String,
    /// Tone label.
    pub tone: String,
    /// Where the cadence puts the step, in the client's zone.
    pub nominal: Zoned,
    /// When it fires, after catch-up and window adjustment, in the client's zone. For
    /// [`PlannedStatus::Done`] and [`PlannedStatus::SkippedCatchUp`] steps (which never fire)
    /// this is the nominal time.
    pub fire_at: Zoned,
    /// What the plan does with it.
    pub status: PlannedStatus,
    /// Why it fires later than its time, when it does: the contact rule that holds it back
    /// (`"co_ley_2300 excludes public holidays (Inmaculada Concepción)"`), or the previous
    /// step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The whole cadence laid out for one invoice at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Name of the segment's cadence (no steps if the policy lacks it).
    pub cadence: String,
    /// Segment name.
    pub segment: String,
    /// IANA name of the client's zone, in which every time of the plan is expressed.
    pub zone: String,
    /// Steps in cadence order; fire times of pending steps are non-decreasing. A step whose
    /// time cannot be represented (beyond year 9999) is left out.
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    /// The next step to send: the first one that is scheduled, deferred or caught up.
    pub fn next(&self) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| s.status.is_pending())
    }

    /// The steps superseded by catch-up, which the caller records as skipped.
    pub fn skipped(&self) -> impl Iterator<Item = &PlannedStep> {
        self.steps
            .iter()
            .filter(|s| s.status == PlannedStatus::SkippedCatchUp)
    }
}

/// Where the regular cadence of `invoice` counts from: its due date, or with
/// `[payments] cadence_anchor = "last_payment"` the date of its latest payment when that came
/// after the due date (the due date moved later by whole days in `zone`, or the payment
/// instant for invoices due at an instant). Never earlier than the due date, so re-anchoring
/// only ever moves steps later.
pub fn cadence_anchor(invoice: &Invoice, policy: &Policy, zone: &TimeZone) -> Due {
    if policy.terms.anchor != CadenceAnchor::LastPayment {
        return invoice.due_at;
    }
    let Some(last) = invoice
        .payments
        .iter()
        .filter(|p| p.amount > rust_decimal::Decimal::ZERO)
        .map(|p| p.paid_at)
        .max()
    else {
        return invoice.due_at;
    };
    match invoice.due_at {
        Due::Date(d) => Due::Date(d.max(last.to_zoned(zone.clone()).date())),
        Due::Instant(i) => Due::Instant(i.max(last)),
    }
}

/// One schedule to lay out: a cadence's steps from an anchor, with a cursor.
#[derive(Debug, Clone, Copy)]
pub struct TrackSpec<'a> {
    /// The segment the chase follows: its contact window applies.
    pub segment: &'a Segment,
    /// Name of the cadence (recorded on reminders).
    pub cadence: &'a str,
    /// Its steps (empty when the policy lacks it).
    pub steps: &'a [Step],
    /// What step offsets count from.
    pub anchor: Due,
    /// Last step handled; steps up to it are [`PlannedStatus::Done`].
    pub cursor: Option<u32>,
    /// Steps whose time is at or before this instant are [`PlannedStatus::Done`] without being
    /// sent: they belong to a time before the schedule existed (a promise made after the
    /// "day before" step's time).
    pub not_before: Option<Timestamp>,
}

/// Plans `invoice`'s regular cadence for `client` under `policy`, as seen at `now`.
///
/// See the [module docs](self) for the rules. The invoice's status, balance and pause are not
/// looked at: whether to chase at all is the caller's decision
/// ([`Invoice::is_chaseable`]).
pub fn plan(invoice: &Invoice, client: &Client, policy: &Policy, now: Timestamp) -> Plan {
    let segment = segment_followed(policy, client, invoice);
    let steps: &[Step] = policy
        .cadences
        .get(&segment.cadence)
        .map_or(&[], |c| c.steps.as_slice());
    let zone = client_zone(policy, client);
    let spec = TrackSpec {
        segment,
        cadence: &segment.cadence,
        steps,
        anchor: cadence_anchor(invoice, policy, &zone),
        cursor: invoice.cursor,
        not_before: None,
    };
    plan_track(&spec, client, policy, now)
}

/// Lays out any schedule (`spec`) for `client`: nominal times from the anchor in the client's
/// zone, catch-up, the segment's contact window. The rules of the [module docs](self).
pub fn plan_track(spec: &TrackSpec<'_>, client: &Client, policy: &Policy, now: Timestamp) -> Plan {
    let (zone, zone_name) = zone_and_name(policy, client);
    let segment = spec.segment;
    let rules = ContactRules::for_client(policy, client, segment);

    let nominals: Vec<(u32, &Step, Zoned)> = spec
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, step)| {
            let index = u32::try_from(i).ok()?;
            let nominal = nominal_time(&spec.anchor, step, &zone, policy.defaults.send_at).ok()?;
            Some((index, step, nominal))
        })
        .collect();

    let done = |index: u32, nominal: &Zoned| {
        spec.cursor.is_some_and(|c| index <= c)
            || spec.not_before.is_some_and(|t| nominal.timestamp() <= t)
    };
    // A message step more than its `max_late` past its time is not sent at all.
    let stale = |step: &Step, nominal: &Zoned| {
        step.max_late
            .and_then(|m| nominal.timestamp().checked_add(m).ok())
            .is_some_and(|limit| limit < now)
    };
    // The step to catch up on: the highest-index not-done step whose time has passed (and is
    // not stale).
    let catch_up = nominals
        .iter()
        .filter(|(index, step, nominal)| {
            !done(*index, nominal) && nominal.timestamp() <= now && !stale(step, nominal)
        })
        .map(|(index, _, _)| *index)
        .max();

    let mut floor: Option<Zoned> = None;
    let planned = nominals
        .into_iter()
        .map(|(index, step, nominal)| {
            let (status, fire_at, reason) = if done(index, &nominal) {
                (PlannedStatus::Done, nominal.clone(), None)
            } else if nominal.timestamp() <= now && stale(step, &nominal) {
                let why = format!(
                    "its time was {}, more than its max_late ({}) ago",
                    crate::compliance::rules::local_time(&nominal),
                    crate::compliance::rules::show_lateness(step.max_late.unwrap_or_default())
                );
                (PlannedStatus::SkippedCatchUp, nominal.clone(), Some(why))
            } else if catch_up.is_some_and(|k| index < k) {
                (PlannedStatus::SkippedCatchUp, nominal.clone(), None)
            } else {
                let (mut status, mut fire_at, mut why) = if catch_up == Some(index) {
                    let local_now = now.to_zoned(zone.clone());
                    let why = rules.closed(&local_now).map(|c| c.to_string());
                    (PlannedStatus::CatchUp, rules.next_allowed(local_now), why)
                } else {
                    let fire_at = rules.next_allowed(nominal.clone());
                    if fire_at.timestamp() == nominal.timestamp() {
                        (PlannedStatus::Scheduled, fire_at, None)
                    } else {
                        let why = rules.closed(&nominal).map(|c| c.to_string());
                        (PlannedStatus::Deferred, fire_at, why)
                    }
                };
                if let Some(prev) = floor.as_ref() {
                    if prev.timestamp() > fire_at.timestamp() {
                        fire_at = prev.clone();
                        why = Some("after the previous step".to_owned());
                        if status == PlannedStatus::Scheduled {
                            status = PlannedStatus::Deferred;
                        }
                    }
                }
                floor = Some(fire_at.clone());
                (status, fire_at, why)
            };
            PlannedStep {
                index,
                step: step.name.clone(),
                channels: step.channels.clone(),
                template: step.template.clone(),
                tone: step.tone.clone(),
                nominal,
                fire_at,
                status,
                reason,
            }
        })
        .collect();

    Plan {
        cadence: spec.cadence.to_owned(),
        segment: segment.name.clone(),
        zone: zone_name,
        steps: planned,
    }
}

/// The [`Reminder`] record for `step` of `plan`: deterministic id from (invoice, generation,
/// step index), state [`ReminderState::Scheduled`], no attempts yet, first channel of the
/// step, planned and fire time both `step.fire_at`.
pub fn reminder_for(invoice: &Invoice, plan: &Plan, step: &PlannedStep) -> Reminder {
    reminder_on(invoice, plan, step, Track::Cadence)
}

/// The [`Reminder`] for `step` of `plan` on `track` (see [`reminder_for`]); its id comes from
/// [`ReminderId::for_track`].
pub fn reminder_on(invoice: &Invoice, plan: &Plan, step: &PlannedStep, track: Track) -> Reminder {
    Reminder::scheduled(
        invoice,
        track,
        step.index,
        &step.step,
        &plan.cadence,
        step.fire_at.timestamp(),
    )
}

/// When money promised for `due` is late: the end of the promised day in `zone` (for a date)
/// or the promised instant, plus `grace`. Days of grace are calendar days (DST-safe); a
/// result beyond jiff's range is [`Timestamp::MAX`].
pub fn grace_deadline(due: &Due, grace: Offset, zone: &TimeZone) -> Timestamp {
    let days = |n: i64| Span::new().try_days(n);
    let result = match due {
        Due::Date(d) => days(1).and_then(|one| d.checked_add(one)).and_then(|next| {
            let start = next.to_zoned(zone.clone())?;
            match grace {
                Offset::Days(n) => start.checked_add(days(i64::from(n))?),
                Offset::Minutes(m) => start.checked_add(Span::new().try_minutes(m)?),
            }
        }),
        Due::Instant(i) => match grace {
            Offset::Days(n) => {
                days(i64::from(n)).and_then(|s| i.to_zoned(zone.clone()).checked_add(s))
            }
            Offset::Minutes(m) => Span::new()
                .try_minutes(m)
                .and_then(|s| i.to_zoned(zone.clone()).checked_add(s)),
        },
    };
    result.map_or(Timestamp::MAX, |z| z.timestamp())
}
