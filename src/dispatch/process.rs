//! One reminder, from claimed to recorded.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{Dispatcher, channel_chain, jitter, recipient, retry_delay};
use crate::channels::Outbound;
use crate::domain::{Attempt, AttemptOutcome, Client, Invoice, Reminder, ReminderState};
use crate::policy::{LoadedPolicy, Policy, Step};
use crate::schedule::{client_zone, is_allowed, next_allowed, segment_for};
use crate::service::advance_past;
use crate::store::{StoreError, TxError};
use crate::templates::context::{StepInfo, message_context};

/// How a processed reminder ends.
enum Ending {
    /// Done with this step (sent, failed or skipped): advance the cursor and plan the next step.
    Advance(ReminderState),
    /// Put back in the due index at `at` (retry, window, pause), same reminder.
    Reschedule(Timestamp),
    /// Stale or cancelled: drop it, do not touch the plan.
    Drop(ReminderState),
}

fn line(
    r: &Reminder,
    now: Timestamp,
    outcome: AttemptOutcome,
    detail: impl Into<String>,
) -> Attempt {
    Attempt {
        at: now,
        invoice_id: r.invoice_id.clone(),
        reminder_id: Some(r.id),
        step: Some(r.step_name.clone()),
        channel: None,
        recipient: None,
        outcome,
        provider_message_id: None,
        delivery: None,
        detail: Some(detail.into()),
    }
}

impl Dispatcher {
    /// Processes one claimed reminder. Never panics; store errors are logged and the reminder
    /// is left in flight (found at next start).
    pub(crate) async fn process(&self, reminder: Reminder) {
        let id = reminder.id;
        if let Err(e) = self.process_inner(reminder).await {
            tracing::error!(reminder = %id, error = %e, "cannot record the outcome of a reminder");
        }
    }

    async fn process_inner(&self, mut r: Reminder) -> Result<(), StoreError> {
        let now = self.clock.now();
        // One policy snapshot for the whole reminder, even if a reload happens meanwhile.
        let loaded = self.policy.current();
        let policy = &loaded.policy;
        let invoice = self.store.invoice(&r.invoice_id)?;
        let client = self.store.client(&r.client_id)?;
        let (Some(invoice), Some(client)) = (invoice, client) else {
            return self
                .record(
                    policy,
                    r,
                    Ending::Drop(ReminderState::Cancelled),
                    Vec::new(),
                    now,
                )
                .await;
        };
        if invoice.generation != r.generation || invoice.pending != Some(r.id) {
            return self
                .record(
                    policy,
                    r,
                    Ending::Drop(ReminderState::Cancelled),
                    Vec::new(),
                    now,
                )
                .await;
        }
        if let Some(pause) = &invoice.pause {
            match pause.until {
                Some(until) if until > now => {
                    let l = line(
                        &r,
                        now,
                        AttemptOutcome::Deferred,
                        format!("chase paused until {until}"),
                    );
                    return self
                        .record(policy, r, Ending::Reschedule(until), vec![l], now)
                        .await;
                }
                None => {
                    let l = line(&r, now, AttemptOutcome::Cancelled, "chase paused");
                    return self
                        .record(
                            policy,
                            r,
                            Ending::Drop(ReminderState::Cancelled),
                            vec![l],
                            now,
                        )
                        .await;
                }
                Some(_) => {}
            }
        }
        if !invoice.is_chaseable(now) {
            let l = line(&r, now, AttemptOutcome::Cancelled, "invoice no longer open");
            return self
                .record(
                    policy,
                    r,
                    Ending::Drop(ReminderState::Cancelled),
                    vec![l],
                    now,
                )
                .await;
        }
        let Some(step) = policy
            .cadences
            .get(&r.cadence)
            .and_then(|c| c.steps.get(r.step_index as usize))
            // A reloaded policy may have reordered the cadence: never send a different step.
            .filter(|s| s.name == r.step_name)
            .cloned()
        else {
            let l = line(
                &r,
                now,
                AttemptOutcome::Skipped,
                format!(
                    "step {} ({}) of cadence {} is no longer in the policy at that position",
                    r.step_index, r.step_name, r.cadence
                ),
            );
            return self
                .record(
                    policy,
                    r,
                    Ending::Advance(ReminderState::Skipped),
                    vec![l],
                    now,
                )
                .await;
        };
        let zone = client_zone(policy, &client);
        let segment = segment_for(policy, &client);
        let window = segment.window.as_ref().unwrap_or(&policy.defaults.window);
        let local_now = now.to_zoned(zone.clone());
        if !is_allowed(&local_now, window) {
            let at = next_allowed(local_now, window);
            let l = line(
                &r,
                now,
                AttemptOutcome::Deferred,
                format!("outside the contact window; moved to {at}"),
            );
            return self
                .record(policy, r, Ending::Reschedule(at.timestamp()), vec![l], now)
                .await;
        }
        let mut lines = Vec::new();
        let chain = channel_chain(&step.channels, &client.preferred_channels);
        let mut idx = r.channel_index as usize;
        while idx < chain.len() {
            let kind = &chain[idx];
            match self
                .try_channel(&loaded, &r, &invoice, &client, &step, kind, &zone, now)
                .await
            {
                Tried::Sent(l) => {
                    lines.push(l);
                    r.channel_index = idx as u32;
                    return self
                        .record(policy, r, Ending::Advance(ReminderState::Sent), lines, now)
                        .await;
                }
                Tried::Retry(mut l, delay) => {
                    r.attempts += 1;
                    if r.attempts < self.config.max_attempts {
                        let at = now
                            + SignedDuration::try_from(delay)
                                .unwrap_or(SignedDuration::from_hours(1));
                        if let Some(d) = &mut l.detail {
                            d.push_str(&format!("; retry {} at {at}", r.attempts));
                        }
                        r.channel_index = idx as u32;
                        r.last_error = l.detail.clone();
                        lines.push(l);
                        return self
                            .record(policy, r, Ending::Reschedule(at), lines, now)
                            .await;
                    }
                    l.outcome = AttemptOutcome::Failed;
                    if let Some(d) = &mut l.detail {
                        d.push_str(&format!("; gave up after {} attempts", r.attempts));
                    }
                    r.last_error = l.detail.clone();
                    lines.push(l);
                    r.attempts = 0;
                }
                Tried::Failed(l) => {
                    r.last_error = l.detail.clone();
                    lines.push(l);
                    r.attempts = 0;
                }
            }
            idx += 1;
            r.channel_index = idx as u32;
        }
        lines.push(line(
            &r,
            now,
            AttemptOutcome::Failed,
            format!("no channel of [{}] delivered this step", chain.join(", ")),
        ));
        self.record(
            policy,
            r,
            Ending::Advance(ReminderState::Failed),
            lines,
            now,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_channel(
        &self,
        loaded: &LoadedPolicy,
        r: &Reminder,
        invoice: &Invoice,
        client: &Client,
        step: &Step,
        kind: &str,
        zone: &jiff::tz::TimeZone,
        now: Timestamp,
    ) -> Tried {
        let mut l = line(r, now, AttemptOutcome::Failed, "");
        l.channel = Some(kind.to_owned());
        let Some(to) = recipient(kind, client) else {
            l.outcome = AttemptOutcome::Skipped;
            l.detail = Some(format!("client has no {kind} address"));
            return Tried::Failed(l);
        };
        l.recipient = Some(to.clone());
        let Some(channel) = self.routes.get(kind) else {
            l.outcome = AttemptOutcome::Skipped;
            l.detail = Some(format!(
                "no channel is routed for {kind}; add it under [routes] in the daemon config"
            ));
            return Tried::Failed(l);
        };
        let policy = &loaded.policy;
        let locale = client
            .locale
            .clone()
            .unwrap_or_else(|| policy.defaults.locale.clone());
        let info = StepInfo {
            name: step.name.clone(),
            tone: step.tone.clone(),
            index: r.step_index,
        };
        let ctx = message_context(client, invoice, &policy.company, &info, &locale, zone, now);
        let rendered = match loaded.templates.render(&step.template, &locale, kind, &ctx) {
            Ok(x) => x,
            Err(e) => {
                l.detail = Some(format!(
                    "template {:?} failed to render: {e}",
                    step.template
                ));
                return Tried::Failed(l);
            }
        };
        let msg = Outbound {
            reminder_id: r.id,
            invoice_id: r.invoice_id.clone(),
            client_id: r.client_id.clone(),
            kind: kind.to_owned(),
            to,
            to_name: client.name.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            step: step.name.clone(),
            tone: step.tone.clone(),
            locale: rendered.locale,
            unsubscribe_url: None,
            whatsapp: None,
        };
        match channel.send(&msg).await {
            Ok(receipt) => {
                l.outcome = AttemptOutcome::Sent;
                l.provider_message_id = receipt.provider_message_id;
                l.detail = Some(format!("sent via {}", channel.name()));
                Tried::Sent(l)
            }
            Err(e) if e.is_transient() => {
                let delay = retry_delay(
                    r.attempts + 1,
                    Duration::from_secs(self.config.backoff_base_secs),
                    Duration::from_secs(self.config.backoff_max_secs),
                    jitter(),
                    e.retry_after(),
                );
                l.outcome = AttemptOutcome::RetryScheduled;
                l.detail = Some(format!("{} via {}: {e}", kind, channel.name()));
                Tried::Retry(l, delay)
            }
            Err(e) => {
                l.detail = Some(format!("{} via {}: {e}", kind, channel.name()));
                Tried::Failed(l)
            }
        }
    }

    /// Writes the reminder's ending, its log lines and the next step in one transaction, then
    /// makes it durable.
    async fn record(
        &self,
        policy: &Policy,
        mut r: Reminder,
        ending: Ending,
        lines: Vec<Attempt>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        match ending {
            Ending::Reschedule(_) => r.state = ReminderState::Scheduled,
            Ending::Advance(s) | Ending::Drop(s) => r.state = s,
        }
        let reschedule_at = match ending {
            Ending::Reschedule(at) => Some(at),
            _ => None,
        };
        let advance = matches!(ending, Ending::Advance(_));
        let res = self.store.transaction(|tx| {
            let mut r = r.clone();
            if let Some(at) = reschedule_at {
                r.fire_at = at;
            }
            tx.finish(&r)?;
            if reschedule_at.is_some() {
                tx.schedule(&r)?;
            }
            for l in &lines {
                tx.log(l)?;
            }
            let next = if advance {
                advance_past(tx, &r, policy, now)?
            } else {
                if reschedule_at.is_none() {
                    // Dropped: release the invoice's pending slot if it still names this one.
                    if let Some(mut inv) = tx.invoice(&r.invoice_id)? {
                        if inv.generation == r.generation && inv.pending == Some(r.id) {
                            inv.pending = None;
                            tx.put_invoice(&inv)?;
                        }
                    }
                }
                None
            };
            Ok::<_, TxError<std::convert::Infallible>>(next.or(reschedule_at))
        })?;
        let scheduled = match res {
            Ok(s) => s,
            Err(never) => match never {},
        };
        self.store.durable().await?;
        if scheduled.is_some() {
            self.wake.notify_one();
        }
        Ok(())
    }
}

enum Tried {
    Sent(Attempt),
    Retry(Attempt, Duration),
    Failed(Attempt),
}
