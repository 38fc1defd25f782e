//! Keeping an invoice's single pending reminder in line with the policy, inside a transaction.
//! The invoice's agenda ([`Invoice::agenda`]) says which schedule is followed: the regular
//! cadence, a promise or plan instalment (its steps, then a deadline check), or the
//! broken-promise cadence; each has its own cursor, so no step is ever planned twice.

use jiff::Timestamp;
use rust_decimal::Decimal;

use jiff::tz::TimeZone;

use crate::domain::{
    ArrangementKind, Attempt, AttemptOutcome, Client, Due, Invoice, InvoiceStatus, Reminder,
    ReminderState, Track,
};
use crate::policy::Policy;
use crate::schedule::{
    PlannedStatus, TrackSpec, cadence_anchor, client_zone, grace_deadline, plan_track, reminder_on,
    segment_followed,
};
use crate::store::{Tx, TxFail};

pub use super::pending::cancel_pending;
use super::pending::mark_handled;
pub(crate) use super::pending::skip_passed_steps;

/// Most rounds [`replan`] takes to find a step not handled yet (each round moves a cursor).
const MAX_ROUNDS: usize = 512;

/// The schedule `track` lays out for `inv`, and the deadline after which an instalment's steps
/// no longer go out (its grace deadline).
pub(crate) fn schedule_for<'p>(
    inv: &Invoice,
    client: &Client,
    policy: &'p Policy,
    track: Track,
    zone: &TimeZone,
) -> (TrackSpec<'p>, Option<Timestamp>) {
    let steps_of = |name: Option<&'p str>| -> (&'p str, &'p [crate::policy::Step]) {
        match name.and_then(|n| policy.cadences.get(n)) {
            Some(c) => (c.name.as_str(), c.steps.as_slice()),
            None => ("", &[]),
        }
    };
    let rules = &policy.arrangements;
    let segment = segment_followed(policy, client, inv);
    match track {
        Track::Instalment {
            arrangement,
            instalment,
        }
        | Track::Deadline {
            arrangement,
            instalment,
        } => {
            let arr = inv.arrangement(arrangement);
            let inst = arr.and_then(|a| a.instalments.get(instalment as usize));
            let (name, grace) = match arr.map(|a| a.kind) {
                Some(ArrangementKind::Plan) => (rules.plan_cadence.as_deref(), rules.plan_grace),
                _ => (rules.promise_cadence.as_deref(), rules.promise_grace),
            };
            let (cadence, steps) = steps_of(name);
            let anchor = inst.map_or(inv.due_at, |i| i.due);
            let spec = TrackSpec {
                segment,
                cadence,
                steps,
                anchor,
                cursor: arr.and_then(|a| a.cursor),
                not_before: arr.map(|a| a.created_at),
            };
            (spec, Some(grace_deadline(&anchor, grace, zone)))
        }
        Track::Broken { arrangement } => {
            let arr = inv.arrangement(arrangement);
            let (cadence, steps) = steps_of(rules.broken_cadence.as_deref());
            let spec = TrackSpec {
                segment,
                cadence,
                steps,
                anchor: Due::Instant(arr.and_then(|a| a.closed_at).unwrap_or(inv.updated_at)),
                cursor: arr.and_then(|a| a.broken_cursor),
                not_before: None,
            };
            (spec, None)
        }
        // A thank-you is never on the agenda; laid out like the regular cadence if asked.
        Track::Cadence | Track::ThankYou => {
            let steps = policy
                .cadences
                .get(&segment.cadence)
                .map_or(&[][..], |c| c.steps.as_slice());
            let spec = TrackSpec {
                segment,
                cadence: segment.cadence.as_str(),
                steps,
                anchor: cadence_anchor(inv, policy, zone),
                cursor: inv.cursor,
                not_before: None,
            };
            (spec, None)
        }
    }
}

/// The last step of `track` handled on `inv`.
fn cursor_of(inv: &Invoice, track: Track) -> Option<u32> {
    match track {
        Track::Cadence => inv.cursor,
        Track::Instalment {
            arrangement,
            instalment,
        } => inv
            .arrangement(arrangement)
            .filter(|a| a.is_active() && a.current == instalment)
            .and_then(|a| a.cursor),
        Track::Broken { arrangement } => inv.arrangement(arrangement).and_then(|a| a.broken_cursor),
        Track::Deadline { .. } | Track::ThankYou => None,
    }
}

/// Whether the reminders of `track` still belong on `inv`'s agenda.
fn track_current(inv: &Invoice, track: Track) -> bool {
    inv.agenda() == track
}

/// The reminder that checks, at `at`, whether instalment `instalment` of arrangement
/// `arrangement` was paid. Not a message.
fn deadline_reminder(inv: &Invoice, arrangement: u32, instalment: u32, at: Timestamp) -> Reminder {
    let track = Track::Deadline {
        arrangement,
        instalment,
    };
    Reminder::scheduled(inv, track, 0, DEADLINE_STEP, "", at)
}

/// Step name of deadline checks on the timeline.
pub const DEADLINE_STEP: &str = "deadline";

/// Replaces the invoice's pending reminder with the next one its agenda calls for at `now`
/// (catch-up and contact windows applied), logging superseded steps as skipped. The agenda is
/// the active promise or plan instalment (its steps, then its grace deadline), the
/// broken-promise cadence after a promise broke, or else the regular cadence. A step that was
/// already handled (sent, failed, in doubt) is never planned again: its track's cursor moves
/// past it. Returns the instant of the newly scheduled reminder, if any. The caller writes
/// `invoice` afterwards.
///
/// A reminder in flight (claimed, or sent and awaiting its receipt) stays the invoice's
/// pending one: when it ends, [`advance_past`] plans the next step from the agenda then.
pub fn replan(
    tx: &Tx<'_>,
    invoice: &mut Invoice,
    client: &Client,
    policy: &Policy,
    now: Timestamp,
) -> Result<Option<Timestamp>, TxFail> {
    cancel_pending(tx, invoice, now, None)?;
    if invoice.pending.is_some() {
        return Ok(None);
    }
    if invoice.status != InvoiceStatus::Open || invoice.balance <= Decimal::ZERO {
        return Ok(None);
    }
    let plan_now = match &invoice.pause {
        Some(p) => match p.until {
            None => return Ok(None),
            Some(until) if until > now => until,
            Some(_) => now,
        },
        None => now,
    };
    // Planned for the end of a pause: steps the pause will supersede are not due yet and may
    // still be sent if the chase resumes early, so they are neither logged nor marked done now;
    // the dispatcher records them as skipped when the caught-up step goes out.
    let commit_skips = plan_now <= now;
    super::segment_sync::sync_segment(tx, invoice, client, policy, now)?;
    let zone = client_zone(policy, client);
    for _ in 0..MAX_ROUNDS {
        let track = invoice.agenda();
        let (spec, deadline) = schedule_for(invoice, client, policy, track, &zone);
        let plan = plan_track(&spec, client, policy, plan_now);
        for skipped in plan
            .steps
            .iter()
            .filter(|s| commit_skips && s.status == PlannedStatus::SkippedCatchUp)
        {
            tx.log(&Attempt {
                at: now,
                invoice_id: invoice.id.clone(),
                reminder_id: None,
                step: Some(skipped.step.clone()),
                channel: None,
                recipient: None,
                outcome: AttemptOutcome::Skipped,
                provider_message_id: None,
                delivery: None,
                detail: Some(match &skipped.reason {
                    Some(why) => format!("not sent: {why}"),
                    None => format!(
                        "step was due {} and a later step is due too; only the latest past step is sent",
                        skipped.nominal.timestamp()
                    ),
                }),
            })?;
            mark_handled(invoice, track, skipped.index);
        }
        let next = plan
            .next()
            .filter(|s| deadline.is_none_or(|d| s.fire_at.timestamp() <= d));
        let reminder = match (next, track) {
            (Some(step), _) => reminder_on(invoice, &plan, step, track),
            (
                None,
                Track::Instalment {
                    arrangement,
                    instalment,
                },
            ) => {
                let at = deadline.unwrap_or(plan_now).max(plan_now);
                deadline_reminder(invoice, arrangement, instalment, at)
            }
            (None, Track::Broken { arrangement }) => {
                // The broken-promise cadence has run its course: the regular cadence resumes.
                if let Some(a) = invoice.arrangement_mut(arrangement) {
                    a.broken_done = true;
                }
                continue;
            }
            (None, Track::Cadence) => {
                // Every step of the regular cadence is done: say so once, and run its
                // `on_exhausted` (only once the passed steps are committed, not for a plan
                // laid out for the end of a pause).
                if commit_skips && !spec.steps.is_empty() {
                    let cadence = spec.cadence.to_owned();
                    super::escalate_tx::cadence_exhausted(tx, policy, invoice, &cadence, now)?;
                }
                return Ok(None);
            }
            (None, _) => return Ok(None),
        };
        if let Some(existing) = tx.reminder(&invoice.id, &reminder.id)? {
            match existing.state {
                ReminderState::Scheduled => tx.unschedule(&existing)?,
                ReminderState::Cancelled => {}
                _ => {
                    // Already claimed or handled: never plan the same step twice.
                    match next {
                        Some(step) => {
                            mark_handled(invoice, track, step.index);
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
            }
        }
        tx.schedule(&reminder)?;
        invoice.pending = Some(reminder.id);
        return Ok(Some(reminder.fire_at));
    }
    Ok(None)
}

/// Marks `reminder`'s step as handled on its invoice (sent, failed, skipped or in doubt) and
/// plans the next one from the agenda. Steps of the same schedule between its cursor and this
/// one, superseded by catch-up, are logged as skipped. Does nothing when the reminder is no
/// longer the invoice's current one. Returns the instant of the newly scheduled reminder, if
/// any.
pub fn advance_past(
    tx: &Tx<'_>,
    reminder: &Reminder,
    policy: &Policy,
    now: Timestamp,
) -> Result<Option<Timestamp>, TxFail> {
    let Some(mut inv) = tx.invoice(&reminder.invoice_id)? else {
        return Ok(None);
    };
    if inv.generation != reminder.generation || inv.pending != Some(reminder.id) {
        return Ok(None);
    }
    let track = reminder.track;
    // A regular step always moves the regular cursor, even when a promise or plan took over
    // while it was being sent: when the regular cadence resumes, it is not logged as skipped.
    if track.is_cadence()
        || (track_current(&inv, track) && !matches!(track, Track::Deadline { .. }))
    {
        let first_open = cursor_of(&inv, track).map_or(0, |c| c + 1);
        let superseded = policy
            .cadences
            .get(&reminder.cadence)
            .into_iter()
            .flat_map(|c| c.steps.iter())
            .zip(0u32..)
            .filter(|(_, i)| *i >= first_open && *i < reminder.step_index);
        for (step, _) in superseded {
            tx.log(&Attempt {
                at: now,
                invoice_id: reminder.invoice_id.clone(),
                reminder_id: None,
                step: Some(step.name.clone()),
                channel: None,
                recipient: None,
                outcome: AttemptOutcome::Skipped,
                provider_message_id: None,
                delivery: None,
                detail: Some(format!(
                    "superseded by {} (only the latest past step is sent)",
                    reminder.step_name
                )),
            })?;
        }
        mark_handled(&mut inv, track, reminder.step_index);
    }
    inv.pending = None;
    let next = match tx.client(&inv.client_id)? {
        Some(client) => replan(tx, &mut inv, &client, policy, now)?,
        None => None,
    };
    tx.put_invoice(&inv)?;
    Ok(next)
}
