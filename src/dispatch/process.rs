//! One reminder, from claimed to recorded: re-checks, the receipt-timeout fallback, the walk
//! along the channel chain (each channel tried in `attempt.rs`) and the one transaction
//! that records the outcome and plans the next step.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt as _;
use jiff::{SignedDuration, Timestamp};

use super::attempt::Tried;
use super::timeline::{count_panic, line, panic_text};
use super::{Dispatcher, channel_chain, recipient};
use crate::compliance::caps;
use crate::compliance::rules::{ContactRules, local_time, show_lateness};
use crate::domain::{
    Attempt, AttemptOutcome, AwaitingReceipt, Client, Invoice, InvoiceStatus, Reminder,
    ReminderState, SentMessage, Track,
};
use crate::policy::terms::ThankYou;
use crate::policy::{LoadedPolicy, Offset, Step, StepAction};
use crate::schedule::{client_zone, segment_followed};
use crate::service::{
    ContactChange, DeadlineOutcome, advance_past, apply_contact_change, deadline_reached,
    run_step_action,
};
use crate::store::{StoreError, TxError};

/// How a processed reminder ends.
enum Ending {
    /// Done with this step (sent, failed or skipped): advance the cursor and plan the next step.
    Advance(ReminderState),
    /// Put back in the due index at `at` (retry, window, pause), same reminder.
    Reschedule(Timestamp),
    /// Stale or cancelled: drop it, do not touch the plan.
    Drop(ReminderState),
    /// Sent on a channel that reports delivery: wait for the receipt (or the timeout at `at`)
    /// before the step is done.
    AwaitReceipt(Timestamp, AwaitingReceipt),
}

/// Writes that go with a reminder's ending, in the same transaction.
#[derive(Default)]
struct Effects {
    /// Address changes (opt-outs, unreachable channels) learnt from provider errors.
    contacts: Vec<(String, ContactChange)>,
    /// A message the provider will report on, indexed by its id.
    sent: Option<SentMessage>,
    /// A step that sends nothing but takes the invoice out of the chase (hand-off,
    /// write-off), run before the step is recorded as handled.
    action: Option<StepAction>,
}

/// The step a thank-you is sent as: the policy's template and channels, `step.name`
/// `thank_you`, `step.tone` `thanks`.
fn thank_you_step(t: &ThankYou) -> Step {
    Step {
        name: ThankYou::STEP.to_owned(),
        offset: Offset::Days(0),
        at: None,
        channels: t.channels.clone(),
        template: t.template.clone(),
        tone: ThankYou::TONE.to_owned(),
        whatsapp: None,
        action: StepAction::Remind,
        max_late: None,
    }
}

/// The segment label of an outcome whose invoice or client is gone.
const NO_SEGMENT: &str = "none";

/// First wait before recording an outcome again after the store failed to write.
const RECORD_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest wait between tries to record an outcome while the store cannot write.
const RECORD_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

impl Dispatcher {
    /// Processes one claimed reminder. Never panics; store errors are logged and the reminder
    /// is left in flight (found at next start).
    ///
    /// A panic anywhere in the processing is caught: the reminder, if still claimed, is
    /// recorded as failed with the panic's message and the chase moves on to its next step
    /// (see `panicked.rs`), and `plazo_send_task_panics_total` rises.
    pub(crate) async fn process(&self, reminder: Reminder) {
        let id = reminder.id;
        let claimed = reminder.clone();
        match AssertUnwindSafe(self.process_inner(reminder))
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(reminder = %id, error = %e, "cannot record the outcome of a reminder");
            }
            Err(panic) => {
                count_panic();
                let why = panic_text(panic.as_ref());
                tracing::error!(
                    reminder = %id, invoice = %claimed.invoice_id, panic = %why,
                    "ALERT: processing a reminder panicked; recording it as failed"
                );
                if let Err(e) = self.settle_panicked(claimed, &why).await {
                    tracing::error!(reminder = %id, error = %e, "cannot record a reminder whose processing panicked; it stays in flight");
                }
            }
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
                    &loaded,
                    NO_SEGMENT,
                    r,
                    Ending::Drop(ReminderState::Cancelled),
                    Vec::new(),
                    now,
                )
                .await;
        };
        // The segment label of this reminder's outcome lines (`plazo_reminders_total`).
        let seg = segment_followed(policy, &client, &invoice).name.clone();
        let step = if r.track == Track::ThankYou {
            // Not part of the chase: sent while the invoice stays paid, pause or not.
            if invoice.status != InvoiceStatus::Paid {
                return self
                    .end_with(
                        &loaded,
                        &seg,
                        r,
                        Ending::Drop(ReminderState::Cancelled),
                        AttemptOutcome::Cancelled,
                        format!(
                            "invoice is {} now, no longer paid; the thank-you is not sent",
                            invoice.status
                        ),
                        now,
                    )
                    .await;
            }
            match &policy.terms.thank_you {
                Some(t) => thank_you_step(t),
                None => {
                    return self
                        .end_with(
                            &loaded,
                            &seg,
                            r,
                            Ending::Advance(ReminderState::Skipped),
                            AttemptOutcome::Skipped,
                            "the policy no longer has [payments] thank_you; not sent",
                            now,
                        )
                        .await;
                }
            }
        } else {
            if invoice.generation != r.generation || invoice.pending != Some(r.id) {
                return self
                    .record(
                        &loaded,
                        &seg,
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
                        // A booked rate-limit slot is only good at its time; book again then.
                        r.rate_slot = None;
                        return self
                            .end_with(
                                &loaded,
                                &seg,
                                r,
                                Ending::Reschedule(until),
                                AttemptOutcome::Deferred,
                                format!("chase paused until {until}"),
                                now,
                            )
                            .await;
                    }
                    None => {
                        return self
                            .end_with(
                                &loaded,
                                &seg,
                                r,
                                Ending::Drop(ReminderState::Cancelled),
                                AttemptOutcome::Cancelled,
                                "chase paused",
                                now,
                            )
                            .await;
                    }
                    Some(_) => {}
                }
            }
            if !invoice.is_chaseable(now) {
                return self
                    .end_with(
                        &loaded,
                        &seg,
                        r,
                        Ending::Drop(ReminderState::Cancelled),
                        AttemptOutcome::Cancelled,
                        "invoice no longer open",
                        now,
                    )
                    .await;
            }
            if matches!(r.track, Track::Deadline { .. }) {
                return self.check_deadline(&loaded, r, now).await;
            }
            if r.track != invoice.agenda() {
                // Left in flight when a promise or plan was made, kept or broken: that schedule
                // has taken over. A message already accepted stays the step's delivery.
                let state = if r.awaiting.is_some() {
                    ReminderState::Sent
                } else {
                    ReminderState::Skipped
                };
                return self
                    .end_with(&loaded, &seg, r, Ending::Advance(state), AttemptOutcome::Skipped, "the chase follows another schedule now (a promise or plan was made, kept or broken meanwhile); not sent", now)
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
                let why = format!(
                    "step {} ({}) of cadence {} is no longer in the policy at that position",
                    r.step_index, r.step_name, r.cadence
                );
                let ending = Ending::Advance(ReminderState::Skipped);
                return self
                    .end_with(&loaded, &seg, r, ending, AttemptOutcome::Skipped, why, now)
                    .await;
            };
            if step.action != StepAction::Remind {
                // Not a message: no contact window, no channel. Done in the write that records it.
                let effects = Effects {
                    action: Some(step.action.clone()),
                    ..Effects::default()
                };
                return self
                    .record_with(
                        &loaded,
                        &seg,
                        r,
                        Ending::Advance(ReminderState::Checked),
                        Vec::new(),
                        effects,
                        now,
                    )
                    .await;
            }
            step
        };
        let zone = client_zone(policy, &client);
        let segment = segment_followed(policy, &client, &invoice);
        let rules = ContactRules::for_client(policy, &client, segment);
        let local_now = now.to_zoned(zone.clone());
        if let (None, Some(max)) = (&r.awaiting, step.max_late) {
            if r.planned_at.checked_add(max).is_ok_and(|limit| now > limit) {
                // Held back too long (the daemon was down, holidays, caps): what it says
                // ("due today") is no longer true. The next step goes on.
                let why = format!(
                    "not sent: it was due {}, more than its max_late ({}) ago",
                    local_time(&r.planned_at.to_zoned(zone.clone())),
                    show_lateness(max)
                );
                let ending = Ending::Advance(ReminderState::Skipped);
                return self
                    .end_with(&loaded, &seg, r, ending, AttemptOutcome::Skipped, why, now)
                    .await;
            }
        }
        if rules.week().is_never() {
            // The window and the presets never overlap: waiting would never end.
            return self
                    .end_with(&loaded, &seg, r, Ending::Advance(ReminderState::Skipped), AttemptOutcome::Skipped, format!(
                    "no hour is ever open for this client: the window and the presets {} never overlap; widen the window or change the preset",
                    rules.presets().join(", ")
                ), now)
                    .await;
        }
        if let Some(closed) = rules.closed(&local_now) {
            let at = rules.next_allowed(local_now);
            // A booked rate-limit slot is only good at its time: honouring it hours later would
            // let every message held back by the window go at once, past the limiter.
            r.rate_slot = None;
            return self
                .end_with(
                    &loaded,
                    &seg,
                    r,
                    Ending::Reschedule(at.timestamp()),
                    AttemptOutcome::Deferred,
                    format!("deferred: {closed}; next {}", local_time(&at)),
                    now,
                )
                .await;
        }
        let mut lines = Vec::new();
        let mut effects = Effects::default();
        let chain = channel_chain(&step.channels, &client.preferred_channels);
        // A receipt timeout fired: the message sent on the previous channel was never confirmed.
        // It was accepted, though: if no later channel delivers, it stays the step's delivery.
        let mut accepted_on: Option<String> = None;
        if let Some(aw) = r.awaiting.take() {
            accepted_on = Some(aw.kind.clone());
            let timeout = policy
                .channels
                .get(&aw.kind)
                .and_then(|c| c.receipt_timeout)
                .map_or_else(|| "the receipt timeout".to_owned(), |d| format!("{d:#}"));
            let mut l = line(
                &r,
                now,
                AttemptOutcome::Failed,
                format!(
                    "no delivery receipt for {} message {} within {timeout}; trying the next channel",
                    aw.kind, aw.provider_message_id
                ),
            );
            l.channel = Some(aw.kind.clone());
            l.provider_message_id = Some(aw.provider_message_id.clone());
            lines.push(l);
            r.channel_index = aw.channel_index + 1;
            r.attempts = 0;
            r.rate_slot = None;
            if r.channel_index as usize >= chain.len() {
                lines.push(line(
                    &r,
                    now,
                    AttemptOutcome::Skipped,
                    format!(
                        "no other channel in [{}] to try; the {} message stays the step's delivery",
                        chain.join(", "),
                        aw.kind
                    ),
                ));
                return self
                    .record_with(
                        &loaded,
                        &seg,
                        r,
                        Ending::Advance(ReminderState::Sent),
                        lines,
                        effects,
                        now,
                    )
                    .await;
            }
        }
        // Caps count the contacts already recorded, so the client's reminders take turns from
        // here until this one is recorded.
        let grouped = r.track != Track::ThankYou
            && (segment.group_by_client
                || policy
                    .cadences
                    .get(&r.cadence)
                    .is_some_and(|c| c.group_by_client));
        let mut _turn = None;
        if grouped || !rules.caps().is_empty() {
            _turn = Some(self.turns.take(&client.id).await);
        }
        if grouped && accepted_on.is_none() {
            if let Some(sent) = self.grouped_message_today(&client, &invoice, &zone, now)? {
                // Today's message to this client already listed this invoice: it counts as
                // this step's message, once.
                let mut l = line(
                    &r,
                    now,
                    AttemptOutcome::Sent,
                    format!(
                        "{} sent for {} at {}",
                        caps::GROUPED,
                        sent.invoice_id,
                        local_time(&sent.at.to_zoned(zone.clone()))
                    ),
                );
                l.channel = sent.channel;
                l.recipient = sent.recipient;
                l.provider_message_id = sent.provider_message_id;
                lines.push(l);
                return self
                    .record_with(
                        &loaded,
                        &seg,
                        r,
                        Ending::Advance(ReminderState::Sent),
                        lines,
                        effects,
                        now,
                    )
                    .await;
            }
        }
        if !rules.caps().is_empty() {
            if let Some(kind) = chain.get(r.channel_index as usize) {
                if let Some((held, until)) =
                    self.caps_hold(&rules, &client, &invoice, kind, &zone, now)?
                {
                    let at = rules.next_allowed(until.to_zoned(zone.clone()));
                    r.rate_slot = None;
                    lines.push(line(
                        &r,
                        now,
                        AttemptOutcome::Deferred,
                        format!("deferred: {held}; next {}", local_time(&at)),
                    ));
                    return self
                        .record_with(
                            &loaded,
                            &seg,
                            r,
                            Ending::Reschedule(at.timestamp()),
                            lines,
                            effects,
                            now,
                        )
                        .await;
                }
            }
        }
        let statement = self.statement(&invoice, &zone);
        let mut idx = r.channel_index as usize;
        while idx < chain.len() {
            let kind = &chain[idx];
            match self
                .try_channel(
                    &loaded, &r, idx, &invoice, &client, &step, kind, &zone, &statement, now,
                )
                .await
            {
                Tried::Sent(l, sent) => {
                    lines.push(l);
                    r.channel_index = idx as u32;
                    r.rate_slot = None;
                    let timeout = policy.channels.get(kind).and_then(|c| c.receipt_timeout);
                    let ending = match (&sent, timeout) {
                        // Wait for the receipt only when another channel could be tried: one
                        // routed, for which the client has an address.
                        (Some(m), Some(t))
                            if chain[idx + 1..].iter().any(|k| {
                                self.routes.get(k).is_some() && recipient(k, &client).is_some()
                            }) =>
                        {
                            Ending::AwaitReceipt(
                                now + t,
                                AwaitingReceipt {
                                    provider: m.provider.clone(),
                                    provider_message_id: m.provider_message_id.clone(),
                                    kind: kind.clone(),
                                    channel_index: idx as u32,
                                    since: now,
                                },
                            )
                        }
                        _ => Ending::Advance(ReminderState::Sent),
                    };
                    effects.sent = sent;
                    return self
                        .record_with(&loaded, &seg, r, ending, lines, effects, now)
                        .await;
                }
                Tried::Wait(l, slot, fire_at) => {
                    lines.push(l);
                    r.channel_index = idx as u32;
                    r.rate_slot = Some(slot);
                    return self
                        .record_with(
                            &loaded,
                            &seg,
                            r,
                            Ending::Reschedule(fire_at),
                            lines,
                            effects,
                            now,
                        )
                        .await;
                }
                Tried::Retry(mut l, delay) => {
                    r.attempts += 1;
                    r.rate_slot = None;
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
                            .record_with(
                                &loaded,
                                &seg,
                                r,
                                Ending::Reschedule(at),
                                lines,
                                effects,
                                now,
                            )
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
                Tried::Unknown(l) => {
                    lines.push(l);
                    r.channel_index = idx as u32;
                    r.attempts = 0;
                    r.rate_slot = None;
                    return self
                        .record_with(
                            &loaded,
                            &seg,
                            r,
                            Ending::Advance(ReminderState::Unknown),
                            lines,
                            effects,
                            now,
                        )
                        .await;
                }
                Tried::Failed(l, change) => {
                    r.last_error = l.detail.clone();
                    if let (Some(change), Some(to)) = (change, &l.recipient) {
                        effects.contacts.push((to.clone(), change));
                    }
                    lines.push(l);
                    r.attempts = 0;
                    r.rate_slot = None;
                }
            }
            idx += 1;
            r.channel_index = idx as u32;
        }
        let state = match accepted_on {
            Some(kind) => {
                lines.push(line(
                    &r,
                    now,
                    AttemptOutcome::Skipped,
                    format!(
                        "no later channel of [{}] could be used; the {kind} message the provider accepted stays the step's delivery",
                        chain.join(", ")
                    ),
                ));
                ReminderState::Sent
            }
            None => {
                lines.push(line(
                    &r,
                    now,
                    AttemptOutcome::Failed,
                    format!("no channel of [{}] delivered this step", chain.join(", ")),
                ));
                ReminderState::Failed
            }
        };
        self.record_with(
            &loaded,
            &seg,
            r,
            Ending::Advance(state),
            lines,
            effects,
            now,
        )
        .await
    }

    /// Runs a promise or instalment deadline check (not a message) and records it, in one
    /// transaction: a broken arrangement starts the broken-promise cadence.
    async fn check_deadline(
        &self,
        loaded: &Arc<LoadedPolicy>,
        r: Reminder,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let commit = || {
            let (mut r, loaded, store) = (r.clone(), loaded.clone(), self.store.clone());
            async move {
                store
                    .write_durable(move |tx| {
                        let (outcome, next) = deadline_reached(tx, &r, &loaded.policy, now)?;
                        r.state = match outcome {
                            DeadlineOutcome::Broken => ReminderState::Checked,
                            DeadlineOutcome::Moot => ReminderState::Cancelled,
                        };
                        tx.finish(&r)?;
                        Ok::<_, TxError<std::convert::Infallible>>(next)
                    })
                    .await
            }
        };
        self.commit_outcome(&r, commit).await
    }

    /// [`Self::record_with`] without side effects.
    /// Ends `r` as `ending` with one timeline line (`outcome`, `detail`) saying why.
    #[allow(clippy::too_many_arguments)]
    async fn end_with(
        &self,
        loaded: &Arc<LoadedPolicy>,
        seg: &str,
        r: Reminder,
        ending: Ending,
        outcome: AttemptOutcome,
        detail: impl Into<String>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let l = line(&r, now, outcome, detail);
        self.record(loaded, seg, r, ending, vec![l], now).await
    }

    async fn record(
        &self,
        loaded: &Arc<LoadedPolicy>,
        seg: &str,
        r: Reminder,
        ending: Ending,
        lines: Vec<Attempt>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.record_with(loaded, seg, r, ending, lines, Effects::default(), now)
            .await
    }

    /// Writes the reminder's ending, its log lines, its effects and the next step in one
    /// transaction, then makes it durable; once it is, counts each line in
    /// `plazo_reminders_total` under segment `seg` (and a send's lateness). The one place the
    /// dispatcher's outcome lines are recorded (a panicked reminder's in `panicked.rs`).
    #[allow(clippy::too_many_arguments)]
    async fn record_with(
        &self,
        loaded: &Arc<LoadedPolicy>,
        seg: &str,
        mut r: Reminder,
        ending: Ending,
        lines: Vec<Attempt>,
        effects: Effects,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (schedule_at, advance) = match &ending {
            Ending::Reschedule(at) => {
                // A receipt timeout held back (contact window, pause) is still waiting for its
                // receipt: a delivered or failed report arriving meanwhile must settle it.
                r.state = if r.awaiting.is_some() {
                    ReminderState::AwaitingReceipt
                } else {
                    ReminderState::Scheduled
                };
                (Some(*at), false)
            }
            Ending::AwaitReceipt(at, aw) => {
                r.state = ReminderState::AwaitingReceipt;
                r.awaiting = Some(aw.clone());
                (Some(*at), false)
            }
            Ending::Advance(s) => {
                r.state = *s;
                (None, true)
            }
            Ending::Drop(s) => {
                r.state = *s;
                (None, false)
            }
        };
        let counted: Vec<_> = lines
            .iter()
            .map(|l| (l.outcome, l.channel.clone(), l.step.clone()))
            .collect();
        let planned_at = r.planned_at;
        let (lines, effects) = (Arc::new(lines), Arc::new(effects));
        let commit = || {
            let (mut r, lines, effects, loaded, store) = (
                r.clone(),
                lines.clone(),
                effects.clone(),
                loaded.clone(),
                self.store.clone(),
            );
            async move {
                store
                    .write_durable(move |tx| {
                        let policy = &loaded.policy;
                        if let Some(at) = schedule_at {
                            r.fire_at = at;
                        }
                        tx.finish(&r)?;
                        if schedule_at.is_some() {
                            tx.schedule(&r)?;
                        }
                        for l in lines.iter() {
                            tx.log(l)?;
                        }
                        for (address, change) in &effects.contacts {
                            apply_contact_change(tx, address, change, now)?;
                        }
                        if let Some(m) = &effects.sent {
                            tx.put_sent_message(m)?;
                        }
                        if let Some(action) = &effects.action {
                            run_step_action(tx, &r, action, policy, now)?;
                        }
                        let next = if advance {
                            advance_past(tx, &r, policy, now)?
                        } else {
                            if schedule_at.is_none() {
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
                        Ok::<_, TxError<std::convert::Infallible>>(next.or(schedule_at))
                    })
                    .await
            }
        };
        self.commit_outcome(&r, commit).await?;
        let late = now.duration_since(planned_at).as_secs_f64();
        for (outcome, channel, step) in &counted {
            self.telemetry.reminder_outcome(
                *outcome,
                channel.as_deref(),
                step.as_deref(),
                seg,
                Some(late),
            );
        }
        Ok(())
    }
}

impl Dispatcher {
    /// Commits a reminder's outcome (`commit` runs one transaction) and makes it durable.
    ///
    /// By then a message may have gone out, so its outcome must be recorded, not left in flight
    /// until the next restart: a write that fails because the store cannot write (disk full,
    /// an I/O error) is tried again, with backoff, once the store has reopened itself. Other
    /// errors (a corrupt record) are returned at once.
    ///
    /// `commit` runs the transaction on the store's writer with [`Store::write_durable`], so it
    /// answers once the outcome is on disk. It answers when the next step of the invoice is
    /// due, if one was scheduled: the dispatcher is then woken.
    async fn commit_outcome<F>(
        &self,
        r: &Reminder,
        commit: impl Fn() -> F,
    ) -> Result<(), StoreError>
    where
        F: std::future::Future<
                Output = Result<Result<Option<Timestamp>, std::convert::Infallible>, StoreError>,
            >,
    {
        let mut wait = RECORD_RETRY_FIRST;
        loop {
            // `commit` answers once the outcome is on disk (`Store::write_durable`).
            let attempt = match commit().await {
                Ok(Ok(s)) => Ok(s),
                Ok(Err(never)) => match never {},
                Err(e) => Err(e),
            };
            match attempt {
                Ok(scheduled) => {
                    if scheduled.is_some() {
                        self.wake.notify_one();
                    }
                    return Ok(());
                }
                Err(e) if e.is_temporary() => {
                    tracing::warn!(
                        reminder = %r.id, error = %e, retry_in_ms = wait.as_millis() as u64,
                        "cannot record the outcome of a reminder yet; trying again once the store can write"
                    );
                    // Wait until the store has reopened itself and writes again.
                    loop {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(RECORD_RETRY_MAX);
                        if self.store.health().is_ok() {
                            break;
                        }
                    }
                    // The store has reopened from disk: if the reminder is no longer claimed
                    // there, the change was made durable after all and there is nothing to redo.
                    if let Ok(Some(stored)) = self.store.reminder(&r.invoice_id, &r.id) {
                        if stored.state != ReminderState::Claimed {
                            self.wake.notify_one();
                            return Ok(());
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Dispatcher {
    /// The caps of `rules` that hold back a contact on `kind` about `invoice` now: the first
    /// one (for the timeline) and the latest instant any of them frees, counted over the
    /// contacts on every invoice of the client in the last [`caps::HISTORY_DAYS`] days.
    fn caps_hold(
        &self,
        rules: &ContactRules,
        client: &Client,
        invoice: &Invoice,
        kind: &str,
        zone: &jiff::tz::TimeZone,
        now: Timestamp,
    ) -> Result<Option<(caps::Held, Timestamp)>, StoreError> {
        let contacts = caps::recent_contacts(&self.store, &client.id, now)?;
        let debtor = caps::Debtor {
            contacts: &contacts,
            last_inbound: client.facts.last_inbound_at,
            zone,
        };
        let held = caps::check(rules.caps(), debtor, kind, &invoice.id, now);
        let until = held.iter().map(|h| h.until).max();
        Ok(held.into_iter().next().zip(until))
    }

    /// The message sent today (the client's local day) about another invoice of `client`
    /// that listed `invoice` in its statement (sent after `invoice` was created, and not
    /// itself a grouped inclusion), if any.
    fn grouped_message_today(
        &self,
        client: &Client,
        invoice: &Invoice,
        zone: &jiff::tz::TimeZone,
        now: Timestamp,
    ) -> Result<Option<Attempt>, StoreError> {
        let today = now.to_zoned(zone.clone()).date();
        for id in self.store.invoice_ids_of_client(&client.id)? {
            if id == invoice.id {
                continue;
            }
            let timeline = self.store.timeline(&id)?;
            let found = timeline
                .iter()
                .rev()
                .take_while(|l| l.at.to_zoned(zone.clone()).date() >= today)
                .find(|l| {
                    l.outcome == AttemptOutcome::Sent
                        && l.at <= now
                        && l.at >= invoice.created_at
                        && l.channel.is_some()
                        && !caps::is_grouped_inclusion(l)
                });
            if let Some(l) = found {
                return Ok(Some(l.clone()));
            }
        }
        Ok(None)
    }
}
