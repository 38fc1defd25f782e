//! What becomes of a reminder whose processing panicked: recorded, never left in flight.

use jiff::SignedDuration;

use super::Dispatcher;
use super::timeline::line;
use crate::domain::{AttemptOutcome, Reminder, ReminderState, Track};
use crate::service::advance_past;
use crate::store::{StoreError, TxError};

/// When a deadline check whose processing panicked runs again.
const DEADLINE_RETRY: SignedDuration = SignedDuration::from_hours(1);

impl Dispatcher {
    /// Records reminder `claimed` as failed after its processing panicked with `why`, unless
    /// its outcome was already recorded (the panic came later): one `failed` line on the
    /// timeline, and the invoice moves on to its next step. A deadline check (which sends
    /// nothing) is tried again in an hour instead, so a broken promise is never missed.
    pub(super) async fn settle_panicked(
        &self,
        claimed: Reminder,
        why: &str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let loaded = self.policy.current();
        let why = why.to_owned();
        let res = self.store.write_durable(move |tx| {
            let policy = &loaded.policy;
            let Some(mut r) = tx.reminder(&claimed.invoice_id, &claimed.id)? else {
                return Ok((None, None));
            };
            if r.state != ReminderState::Claimed {
                // Its ending was written before the panic.
                return Ok((None, None));
            }
            let step = r.step_name.clone();
            r.last_error = Some(format!("processing panicked: {why}"));
            if matches!(r.track, Track::Deadline { .. }) {
                let at = now + DEADLINE_RETRY;
                tx.log(&line(
                    &r,
                    now,
                    AttemptOutcome::RetryScheduled,
                    format!("the deadline check panicked ({why}); checking again at {at}"),
                ))?;
                r.state = ReminderState::Scheduled;
                r.fire_at = at;
                tx.finish(&r)?;
                tx.schedule(&r)?;
                return Ok((Some(at), Some((AttemptOutcome::RetryScheduled, step))));
            }
            tx.log(&line(
                &r,
                now,
                AttemptOutcome::Failed,
                format!(
                    "processing this reminder panicked ({why}); recorded as failed, the chase goes on with the next step"
                ),
            ))?;
            // A message a provider accepted earlier (receipt-timeout fallback in progress)
            // stays the step's delivery.
            r.state = if r.awaiting.is_some() {
                ReminderState::Sent
            } else {
                ReminderState::Failed
            };
            r.awaiting = None;
            tx.finish(&r)?;
            let next = advance_past(tx, &r, policy, now)?;
            Ok::<_, TxError<std::convert::Infallible>>((next, Some((AttemptOutcome::Failed, step))))
        })
        .await?;
        let (scheduled, counted) = match res {
            Ok(s) => s,
            Err(never) => match never {},
        };
        if let Some((outcome, step)) = &counted {
            // The invoice may be gone and the segment unknown: counted as `none`.
            self.telemetry
                .reminder_outcome(*outcome, None, Some(step), "none", None);
        }
        if scheduled.is_some() {
            self.wake.notify_one();
        }
        Ok(())
    }
}
