//! What to do at start with reminders claimed before an unclean stop.

use std::collections::HashSet;

use jiff::Timestamp;

use crate::config::OnUnknown;
use crate::domain::{AttemptOutcome, Reminder, ReminderId, ReminderState, Track};
use crate::policy::Policy;
use crate::service::advance_past;
use crate::store::{Store, StoreError, Tx, TxError, TxFail};

/// Settles every reminder found in flight. With [`OnUnknown::Skip`] (the default) each is
/// recorded as `unknown` and the invoice moves on to its next step, so the debtor never gets a
/// duplicate; with [`OnUnknown::Resend`] each is put back in the due index for now. Returns how
/// many were found. Every one is logged at WARN with its id. A thank-you (`Track::ThankYou`)
/// is never resent, whatever the setting.
pub fn recover_in_flight(
    store: &Store,
    policy: &Policy,
    on_unknown: OnUnknown,
    now: Timestamp,
) -> Result<usize, StoreError> {
    recover_in_flight_knowing(store, policy, on_unknown, now, &HashSet::new())
}

/// [`recover_in_flight`], knowing that the messages of `never_sent` were never handed to a
/// channel: a new PostgreSQL leader finds them in the old leader's send queue, still waiting
/// for a node when the old leader stopped (and no node may claim them any more). Those
/// reminders are not in doubt: each is planned again for `now`, with a `deferred` line saying
/// why, whatever `on_unknown` says. Returns how many were in doubt (the others).
pub fn recover_in_flight_knowing(
    store: &Store,
    policy: &Policy,
    on_unknown: OnUnknown,
    now: Timestamp,
    never_sent: &HashSet<ReminderId>,
) -> Result<usize, StoreError> {
    let found = store.in_flight()?;
    let mut in_doubt = 0;
    for r in &found {
        if never_sent.contains(&r.id) {
            tracing::info!(
                reminder = %r.id, invoice = %r.invoice_id, step = %r.step_name,
                "reminder was queued for the nodes when the leader stopped, and no node had taken it: planned again"
            );
            let res = store.transaction(|tx| {
                let mut r = r.clone();
                tx.log(&super::timeline::line(
                    &r,
                    now,
                    AttemptOutcome::Deferred,
                    "queued for the nodes when the leader stopped, and never taken by any: not sent; planned again",
                ))?;
                plan_again(tx, &mut r, now)?;
                Ok::<_, TxError<std::convert::Infallible>>(())
            })?;
            if let Err(never) = res {
                match never {}
            }
            continue;
        }
        in_doubt += 1;
        tracing::warn!(
            reminder = %r.id, invoice = %r.invoice_id, step = %r.step_name, ?on_unknown,
            "reminder was in flight at an unclean stop; it may or may not have been delivered"
        );
        let res = store.transaction(|tx| {
            let mut r = r.clone();
            if matches!(r.track, Track::Deadline { .. }) {
                // A deadline check sends nothing: run it again.
                r.state = ReminderState::Scheduled;
                r.fire_at = now;
                tx.finish(&r)?;
                tx.schedule(&r)?;
                return Ok(());
            }
            // A thank-you is never worth a duplicate: it is not resent whatever the setting.
            let on_unknown = if r.track == Track::ThankYou {
                OnUnknown::Skip
            } else {
                on_unknown
            };
            let detail = match on_unknown {
                OnUnknown::Skip => "claimed before an unclean stop; may or may not have been delivered; not resent (dispatch.on_unknown = skip)",
                OnUnknown::Resend => "claimed before an unclean stop; resending (dispatch.on_unknown = resend)",
            };
            tx.log(&super::timeline::line(
                &r,
                now,
                AttemptOutcome::Unknown,
                detail,
            ))?;
            match on_unknown {
                OnUnknown::Resend => plan_again(tx, &mut r, now)?,
                OnUnknown::Skip => {
                    r.state = ReminderState::Unknown;
                    tx.finish(&r)?;
                    advance_past(tx, &r, policy, now)?;
                }
            }
            Ok::<_, TxError<std::convert::Infallible>>(())
        })?;
        if let Err(never) = res {
            match never {}
        }
    }
    if !found.is_empty() {
        store.flush_blocking()?;
    }
    Ok(in_doubt)
}

/// Puts `r` back in the due index for `now`, out of flight. A receipt-timeout fallback in
/// progress keeps waiting for its receipt.
fn plan_again(tx: &mut Tx<'_>, r: &mut Reminder, now: Timestamp) -> Result<(), TxFail> {
    r.state = if r.awaiting.is_some() {
        ReminderState::AwaitingReceipt
    } else {
        ReminderState::Scheduled
    };
    r.fire_at = now;
    tx.finish(r)?;
    tx.schedule(r)
}
