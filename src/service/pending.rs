//! The invoice's pending reminder and step cursors, inside a transaction: cancelling the
//! pending reminder, marking a step handled, logging passed steps as skipped. The pieces of
//! planning that never plan anew, so that what [`replan`](super::planning::replan) calls
//! (segment moves, escalation) can use them without importing planning.

use jiff::Timestamp;

use crate::domain::{
    Attempt, AttemptOutcome, Client, Invoice, InvoiceId, Reminder, ReminderState, Track,
};
use crate::policy::Policy;
use crate::schedule::{PlannedStatus, plan};
use crate::store::{Tx, TxFail};

/// Cancels `r`, a scheduled reminder of `invoice_id`: out of the due index and recorded
/// cancelled with `reason`, plus a timeline line saying why when `reason` is given.
pub(crate) fn cancel_scheduled(
    tx: &Tx<'_>,
    invoice_id: &InvoiceId,
    mut r: Reminder,
    now: Timestamp,
    reason: Option<&str>,
) -> Result<(), TxFail> {
    tx.unschedule(&r)?;
    r.state = ReminderState::Cancelled;
    r.last_error = reason.map(str::to_owned);
    tx.put_reminder(&r)?;
    let Some(reason) = reason else {
        return Ok(());
    };
    tx.log(&Attempt {
        at: now,
        invoice_id: invoice_id.clone(),
        reminder_id: Some(r.id),
        step: Some(r.step_name.clone()),
        channel: None,
        recipient: None,
        outcome: AttemptOutcome::Cancelled,
        provider_message_id: None,
        delivery: None,
        detail: Some(reason.to_owned()),
    })
}

/// Cancels the invoice's pending reminder, if it is still waiting. Logs a line with `reason`
/// when `reason` is given.
///
/// A reminder of the current generation that is in progress (claimed for sending, or sent and
/// waiting for its delivery receipt) stays pending: when it ends,
/// [`advance_past`](super::planning::advance_past) records its step and plans the next one,
/// and the dispatcher drops it if the invoice was paid or paused meanwhile. Releasing it would leave the invoice with no step planned, for good.
pub fn cancel_pending(
    tx: &Tx<'_>,
    invoice: &mut Invoice,
    now: Timestamp,
    reason: Option<&str>,
) -> Result<(), TxFail> {
    let Some(rid) = invoice.pending else {
        return Ok(());
    };
    let current = tx.reminder(&invoice.id, &rid)?;
    if current.as_ref().is_some_and(|r| {
        r.generation == invoice.generation
            && matches!(
                r.state,
                ReminderState::Claimed | ReminderState::AwaitingReceipt
            )
    }) {
        return Ok(());
    }
    invoice.pending = None;
    if let Some(r) = current {
        if r.state == ReminderState::Scheduled {
            cancel_scheduled(tx, &invoice.id, r, now, reason)?;
        }
    }
    Ok(())
}

/// Records step `index` of `track` as handled on `inv` (cursors only move forward). A step of
/// an instalment that is no longer the one chased, or of an arrangement that ended, changes
/// nothing.
pub(super) fn mark_handled(inv: &mut Invoice, track: Track, index: u32) {
    let up = |c: &mut Option<u32>| *c = Some(c.map_or(index, |c| c.max(index)));
    match track {
        Track::Cadence => up(&mut inv.cursor),
        Track::Instalment {
            arrangement,
            instalment,
        } => {
            if let Some(a) = inv
                .arrangement_mut(arrangement)
                .filter(|a| a.is_active() && a.current == instalment)
            {
                up(&mut a.cursor);
            }
        }
        Track::Broken { arrangement } => {
            if let Some(a) = inv.arrangement_mut(arrangement) {
                up(&mut a.broken_cursor);
            }
        }
        Track::Deadline { .. } | Track::ThankYou => {}
    }
}

/// Marks the regular cadence's steps whose time has passed as handled, logging each as
/// skipped with `why` (the chase was following a promise or plan meanwhile): when the regular
/// cadence takes over again it goes on with its next future step instead of catching up.
pub(crate) fn skip_passed_steps(
    tx: &Tx<'_>,
    inv: &mut Invoice,
    client: &Client,
    policy: &Policy,
    now: Timestamp,
    why: &str,
) -> Result<(), TxFail> {
    let passed: Vec<(u32, String, Timestamp)> = plan(inv, client, policy, now)
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.status,
                PlannedStatus::CatchUp | PlannedStatus::SkippedCatchUp
            )
        })
        .map(|s| (s.index, s.step.clone(), s.nominal.timestamp()))
        .collect();
    for (index, step, nominal) in passed {
        tx.log(&Attempt {
            at: now,
            invoice_id: inv.id.clone(),
            reminder_id: None,
            step: Some(step),
            channel: None,
            recipient: None,
            outcome: AttemptOutcome::Skipped,
            provider_message_id: None,
            delivery: None,
            detail: Some(format!("step was due {nominal} {why}; not sent late")),
        })?;
        mark_handled(inv, Track::Cadence, index);
    }
    Ok(())
}
