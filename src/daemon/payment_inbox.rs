//! The payments inbox processor: applies received provider events (persisted before they were
//! acknowledged) once each, fetching what a notification only names, retrying what failed for
//! a passing reason. Nothing received is lost to a crash: the queue is in the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, watch};

use crate::clock::SharedClock;
use crate::domain::InboxPayload;
use crate::payments::PaymentFetcher;
use crate::service::{
    ApplyOutcome, PolicyHandle, QueuedOutcome, ServiceError, apply_event, apply_queued,
    event_retry_delay, processing_failed,
};
use crate::store::Store;

/// Most events applied in one transaction: small enough that one batch does not hold the
/// writer long while webhook acknowledgements wait behind it (256 gave an ack p99 of 21 ms at
/// 64 in flight, 32 gives 16–19 ms; BENCHMARKS.md, issue 10).
const BATCH: usize = 32;

/// Most events looked at in one pass (the rest, if any, in the next pass right after).
const PASS_LIMIT: usize = 16 * BATCH;

/// Longest the processor sleeps without looking at the queue.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// Applies what the payment webhooks received.
pub struct PaymentInbox {
    /// The store (inbox, invoices).
    pub store: Store,
    /// The policy in force (a refund re-plans the chase).
    pub policy: PolicyHandle,
    /// Source of "now".
    pub clock: SharedClock,
    /// Woken by the webhook endpoints when something was received.
    pub wake: Arc<Notify>,
    /// Woken when applying an event scheduled a reminder (a refund re-opened an invoice).
    pub dispatch_wake: Arc<crate::dispatch::Wake>,
    /// Fetchers by provider (`mercadopago`), for notifications that only name a payment.
    pub fetchers: BTreeMap<String, Arc<dyn PaymentFetcher>>,
    /// The daemon's metrics (`plazo_payment_events_total`).
    pub telemetry: crate::telemetry::Telemetry,
}

/// The provider of the queued event `key` (`stripe:evt_…` → `stripe`).
fn provider_of(key: &str) -> &str {
    key.split_once(':').map_or("unknown", |(p, _)| p)
}

/// The state label of an applied event in `plazo_payment_events_total`.
fn state_label(o: &ApplyOutcome) -> &'static str {
    match o {
        ApplyOutcome::Applied { .. } => "applied",
        ApplyOutcome::Recorded => "recorded",
        ApplyOutcome::Unmatched => "unmatched",
        ApplyOutcome::Flagged(_) => "flagged",
        ApplyOutcome::Duplicate => "duplicate",
        ApplyOutcome::Deferred(_) => "deferred",
        ApplyOutcome::Failed(_) => "failed",
    }
}

impl PaymentInbox {
    /// Processes every queued event due now; returns how many were looked at. The test seam
    /// (drive it with a manual clock) and one pass of [`PaymentInbox::run`].
    pub async fn process_due_once(&self) -> usize {
        let now = self.clock.now();
        let store = self.store.clone();
        let due = match tokio::task::spawn_blocking(move || store.inbox_due(now, PASS_LIMIT)).await
        {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the payments inbox");
                return 0;
            }
            Err(e) => {
                tracing::error!(error = %e, "payments inbox task failed");
                return 0;
            }
        };
        let n = due.len();
        // Self-contained events (Stripe) go in batches, one transaction each; the rest
        // (fetches, unreadable events) one by one.
        let mut one_by_one = Vec::new();
        for chunk in due.chunks(BATCH) {
            let store = self.store.clone();
            let policy = self.policy.current();
            let keys = chunk.to_vec();
            let res = tokio::task::spawn_blocking(move || {
                apply_queued(&store, &policy.policy, &keys, now)
            })
            .await;
            match res {
                Ok(Ok(outcomes)) => {
                    for (key, outcome) in outcomes {
                        match outcome {
                            QueuedOutcome::Applied(o) => {
                                tracing::info!(event = %key, outcome = ?o, "payment event processed");
                                self.telemetry
                                    .payment_event(provider_of(&key), state_label(&o));
                                if matches!(o, ApplyOutcome::Applied { .. }) {
                                    self.dispatch_wake.notify_one();
                                }
                            }
                            QueuedOutcome::NeedsFetch => one_by_one.push(key),
                            QueuedOutcome::Skipped => {
                                if let Ok(Some(e)) = self.store.inbox_entry(&key) {
                                    if !e.state.is_final() {
                                        one_by_one.push(key);
                                    }
                                }
                            }
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot apply a batch of payment events; trying them one by one");
                    one_by_one.extend(chunk.iter().cloned());
                }
                Err(e) => {
                    // A panic while applying the batch: apply them one by one, so that only
                    // the event at fault is recorded as failed and the others go through.
                    tracing::error!(error = %e, "payments inbox task failed; trying the batch one by one");
                    one_by_one.extend(chunk.iter().cloned());
                }
            }
        }
        for key in one_by_one {
            if let Err(e) = self.process(&key, now).await {
                tracing::error!(event = %key, error = %e, "cannot process a payment event; it stays queued");
            }
        }
        // One flush for the pass: each event and its invoice change are one transaction, so a
        // crash before this point loses both together and the event is applied after restart.
        if n > 0 {
            if let Err(e) = self.store.durable().await {
                tracing::error!(error = %e, "cannot make applied payment events durable");
            }
        }
        n
    }

    /// Records that `key` could not be processed ([`processing_failed`]) and counts it:
    /// `retry` when it is tried again at `retry_at`, `failed` for good otherwise.
    async fn failed(
        &self,
        key: &str,
        msg: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        processing_failed(&self.store, key, msg, retry_at, now).await?;
        let state = if retry_at.is_some() {
            "retry"
        } else {
            "failed"
        };
        self.telemetry.payment_event(provider_of(key), state);
        Ok(())
    }

    async fn process(&self, key: &str, now: Timestamp) -> Result<(), ServiceError> {
        let Some(entry) = self.store.inbox_entry(key)? else {
            return Ok(());
        };
        let event = match &entry.payload {
            InboxPayload::Event { event } => (**event).clone(),
            InboxPayload::Unreadable { provider, error } => {
                let msg = format!("{provider} sent a signed event plazo cannot read: {error}");
                self.failed(key, &msg, None, now).await?;
                return Ok(());
            }
            InboxPayload::Fetch {
                provider,
                data_id,
                action,
            } => {
                let Some(fetcher) = self.fetchers.get(provider) else {
                    let msg = format!(
                        "no API access configured for {provider}; set its access token, then retry the event"
                    );
                    self.failed(key, &msg, None, now).await?;
                    return Ok(());
                };
                let event_type = action.clone().unwrap_or_else(|| "payment".to_owned());
                let event_id = key.split_once(':').map_or(key, |(_, id)| id);
                match fetcher.fetch(data_id, event_id, &event_type).await {
                    Ok(ev) => ev,
                    Err(f) => {
                        let retry_at = f.transient.then(|| {
                            let wait = event_retry_delay(entry.attempts + 1);
                            let asked = f
                                .retry_after
                                .and_then(|d| SignedDuration::try_from(d).ok())
                                .unwrap_or(SignedDuration::ZERO);
                            now + wait.max(asked)
                        });
                        tracing::warn!(event = %key, transient = f.transient, error = %f.message, "payment fetch failed");
                        self.failed(key, &f.message, retry_at, now).await?;
                        return Ok(());
                    }
                }
            }
        };
        let store = self.store.clone();
        let policy = self.policy.current();
        let k = key.to_owned();
        let res = tokio::task::spawn_blocking(move || {
            apply_event(&store, &policy.policy, &k, &event, now)
        })
        .await;
        let outcome = match res {
            Ok(Ok(outcome)) => outcome,
            // The store failed: a passing reason, tried again later (with a growing delay,
            // so a lasting failure does not spin the loop).
            Ok(Err(e @ ServiceError::Store(_))) => {
                let retry_at = now + event_retry_delay(entry.attempts + 1);
                let msg = format!("could not apply it: {e}; trying again at {retry_at}");
                // If the store cannot record the retry either, the entry stays queued.
                let _ = self.failed(key, &msg, Some(retry_at), now).await;
                return Err(e);
            }
            // Anything else will fail the same way every time: failed for good, with why.
            Ok(Err(e)) => {
                let msg = format!("cannot be applied: {e}");
                tracing::warn!(event = %key, reason = %msg, "payment event failed");
                self.failed(key, &msg, None, now).await?;
                return Ok(());
            }
            // A panic while applying it (a bug): failed with the reason, never retried forever.
            Err(e) => {
                let msg = format!("applying it failed unexpectedly ({e}); fix and retry it");
                tracing::error!(event = %key, reason = %msg, "payment event task panicked; marked failed");
                self.failed(key, &msg, None, now).await?;
                return Ok(());
            }
        };
        tracing::info!(event = %key, ?outcome, "payment event processed");
        self.telemetry
            .payment_event(provider_of(key), state_label(&outcome));
        // An invoice left open (a partial payment, a refund that re-opened it and re-planned
        // the chase) may have an earlier reminder; one closed may have queued its thank-you.
        if matches!(outcome, ApplyOutcome::Applied { .. }) {
            self.dispatch_wake.notify_one();
        }
        Ok(())
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.process_due_once().await;
            let now = self.clock.now();
            let wait = match self.store.inbox_next_due() {
                Ok(next) => next
                    .map(|at| {
                        Duration::try_from(at.duration_since(now))
                            .unwrap_or(Duration::ZERO)
                            .min(MAX_IDLE)
                    })
                    .unwrap_or(MAX_IDLE),
                Err(_) => Duration::from_secs(1),
            };
            // Something is due again already (a new arrival, or an entry that keeps failing):
            // a short pause keeps a stuck entry from spinning the loop.
            let wait = wait.max(Duration::from_millis(20));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
