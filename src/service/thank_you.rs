//! The thank-you after full payment (`[payments] thank_you`): queued in the command that pays
//! the invoice, as a reminder of its own track ([`Track::ThankYou`]) in the due index, so the
//! dispatcher sends it like any reminder (contact window, channel chain, opt-outs) with the
//! same at-most-once guarantee (claimed durably before sending; a claim found after a crash is
//! in doubt and never sent again). It is never the invoice's pending reminder: the chase and
//! the thank-you do not share a slot.
//!
//! Its id does not depend on the plan generation ([`ReminderId::for_track`]): there is one per
//! invoice. A refund that reopens the invoice before it went out cancels it; paid in full again,
//! it is queued again. Once handled (sent, failed, in doubt) it is never queued again.

use jiff::Timestamp;

use super::timeline::event;
use crate::domain::{Invoice, Reminder, ReminderId, ReminderState, Track};
use crate::policy::Policy;
use crate::policy::terms::ThankYou;
use crate::store::{Tx, TxFail};

/// The thank-you reminder of `inv`, due at `at`.
fn reminder(inv: &Invoice, at: Timestamp) -> Reminder {
    let track = Track::ThankYou;
    Reminder::scheduled(inv, track, 0, ThankYou::STEP, "", at)
}

/// After `inv` became paid in full: queues its thank-you (due now; the dispatcher waits for
/// the contact window) when the policy has one and it was not handled before. Logs the line on
/// the timeline. Returns when it is due, if queued.
pub(crate) fn queue(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &Invoice,
    now: Timestamp,
) -> Result<Option<Timestamp>, TxFail> {
    let Some(thanks) = &policy.terms.thank_you else {
        return Ok(None);
    };
    let r = reminder(inv, now);
    match tx.reminder(&inv.id, &r.id)? {
        None => {}
        Some(existing) => match existing.state {
            // Cancelled by a refund before it went out: paid again, it goes out after all.
            ReminderState::Cancelled => {}
            // Still queued (or being sent): nothing to add.
            ReminderState::Scheduled | ReminderState::Claimed | ReminderState::AwaitingReceipt => {
                return Ok(None);
            }
            // Handled once: never again.
            ReminderState::Sent
            | ReminderState::Failed
            | ReminderState::Skipped
            | ReminderState::Unknown
            | ReminderState::Checked => return Ok(None),
        },
    }
    tx.schedule(&r)?;
    tx.log(&event(
        inv,
        now,
        format!(
            "thank-you queued: template {:?} on the first reachable of [{}]",
            thanks.template,
            thanks.channels.join(", ")
        ),
    ))?;
    Ok(Some(r.fire_at))
}

/// After `inv` was reopened (a refund): cancels its thank-you if it has not gone out yet.
pub(crate) fn cancel(tx: &Tx<'_>, inv: &Invoice, now: Timestamp) -> Result<(), TxFail> {
    let id = ReminderId::for_track(&inv.id, inv.generation, &Track::ThankYou, 0);
    let Some(r) = tx.reminder(&inv.id, &id)? else {
        return Ok(());
    };
    if r.state != ReminderState::Scheduled {
        // In flight or handled: the dispatcher re-checks the status before sending.
        return Ok(());
    }
    super::pending::cancel_scheduled(
        tx,
        &inv.id,
        r,
        now,
        Some("invoice reopened before the thank-you went out; not sent"),
    )
}
