//! Keeping an invoice's single pending reminder in line with the policy, inside a transaction.

use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::domain::{
    Attempt, AttemptOutcome, Client, Invoice, InvoiceStatus, Reminder, ReminderState,
};
use crate::policy::Policy;
use crate::schedule::{PlannedStatus, plan, reminder_for};
use crate::store::{Tx, TxFail};

/// Cancels the invoice's pending reminder, if it is still waiting. Logs a line with `reason`
/// when `reason` is given.
///
/// A reminder of the current generation that is in progress (claimed for sending, or sent and
/// waiting for its delivery receipt) stays pending: when it ends, [`advance_past`] records its
/// step and plans the next one, and the dispatcher drops it if the invoice was paid or paused
/// meanwhile. Releasing it would leave the invoice with no step planned, for good.
pub fn cancel_pending(
    tx: &Tx<'_>,
    invoice: &mut Invoice,
    now: Timestamp,
    reason: Option<&str>,
) -> Result<(), TxFail> {
    let Some(rid) = invoice.pending else {
        return Ok(());
    };
    let current = tx.reminder(&rid)?;
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
    if let Some(mut r) = current {
        if r.state == ReminderState::Scheduled {
            tx.unschedule(&r)?;
            r.state = ReminderState::Cancelled;
            r.last_error = reason.map(str::to_owned);
            tx.put_reminder(&r)?;
            if let Some(reason) = reason {
                tx.log(&Attempt {
                    at: now,
                    invoice_id: invoice.id.clone(),
                    reminder_id: Some(r.id),
                    step: Some(r.step_name.clone()),
                    channel: None,
                    recipient: None,
                    outcome: AttemptOutcome::Cancelled,
                    provider_message_id: None,
                    delivery: None,
                    detail: Some(reason.to_owned()),
                })?;
            }
        }
    }
    Ok(())
}

/// Replaces the invoice's pending reminder with the next step the policy calls for at `now`
/// (catch-up and contact windows applied), logging superseded steps as skipped. Returns the
/// instant of the newly scheduled reminder, if any. The caller writes `invoice` afterwards.
pub fn replan(
    tx: &Tx<'_>,
    invoice: &mut Invoice,
    client: &Client,
    policy: &Policy,
    now: Timestamp,
) -> Result<Option<Timestamp>, TxFail> {
    cancel_pending(tx, invoice, now, None)?;
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
    let plan = plan(invoice, client, policy, plan_now);
    // Planned for the end of a pause: steps the pause will supersede are not due yet and may
    // still be sent if the chase resumes early, so they are neither logged nor marked done now;
    // the dispatcher records them as skipped when the caught-up step goes out.
    let commit_skips = plan_now <= now;
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
            detail: Some(format!(
                "step was due {} and a later step is due too; only the latest past step is sent",
                skipped.nominal.timestamp()
            )),
        })?;
        invoice.cursor = Some(
            invoice
                .cursor
                .map_or(skipped.index, |c| c.max(skipped.index)),
        );
    }
    let Some(next) = plan.next() else {
        return Ok(None);
    };
    let reminder = reminder_for(invoice, client, &plan, next);
    if let Some(existing) = tx.reminder(&reminder.id)? {
        if !matches!(
            existing.state,
            ReminderState::Scheduled | ReminderState::Cancelled
        ) {
            // Already claimed or handled: never plan the same step twice.
            return Ok(None);
        }
        if existing.state == ReminderState::Scheduled {
            tx.unschedule(&existing)?;
        }
    }
    tx.schedule(&reminder)?;
    invoice.pending = Some(reminder.id);
    Ok(Some(reminder.fire_at))
}

/// Marks `reminder`'s step as handled on its invoice (sent, failed, skipped or in doubt) and
/// plans the next step. Steps between the cursor and this one, superseded by catch-up, are
/// logged as skipped. Does nothing when the reminder is no longer the invoice's current one.
/// Returns the instant of the newly scheduled reminder, if any.
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
    let first_open = inv.cursor.map_or(0, |c| c + 1);
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
    inv.cursor = Some(
        inv.cursor
            .map_or(reminder.step_index, |c| c.max(reminder.step_index)),
    );
    inv.pending = None;
    let next = match tx.client(&inv.client_id)? {
        Some(client) => replan(tx, &mut inv, &client, policy, now)?,
        None => None,
    };
    tx.put_invoice(&inv)?;
    Ok(next)
}
