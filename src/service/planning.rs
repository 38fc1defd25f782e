//! Keeping an invoice's single pending reminder in line with the policy, inside a transaction.

use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::domain::{Attempt, AttemptOutcome, Client, Invoice, InvoiceStatus, ReminderState};
use crate::policy::Policy;
use crate::schedule::{PlannedStatus, plan, reminder_for};
use crate::store::{Tx, TxFail};

/// Cancels the invoice's pending reminder, if it is still waiting. Logs a line with `reason`
/// when `reason` is given.
pub fn cancel_pending(
    tx: &Tx<'_>,
    invoice: &mut Invoice,
    now: Timestamp,
    reason: Option<&str>,
) -> Result<(), TxFail> {
    let Some(rid) = invoice.pending.take() else {
        return Ok(());
    };
    if let Some(mut r) = tx.reminder(&rid)? {
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
