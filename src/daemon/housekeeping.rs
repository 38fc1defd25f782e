//! Cron-scheduled housekeeping (UTC): pruning remembered webhook ids, the daily digest and
//! the daily re-evaluation of segment rules. Uses tokio-cron-scheduler for fixed UTC
//! schedules only (its timezone jobs drift at DST).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::SignedDuration;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::DaemonError;
use crate::clock::SharedClock;
use crate::config::DaemonConfig;
use crate::service::{PolicyHandle, backfill_facts_once, resegment_all_until};
use crate::store::{Store, Tally};

/// The running scheduler.
pub struct Housekeeping {
    sched: JobScheduler,
    /// Set by [`Housekeeping::stop`]: a re-evaluation pass stops before its next client.
    stopping: Arc<AtomicBool>,
    /// Held by a re-evaluation pass while it runs (one at a time; stop waits for it).
    resegmenting: Arc<tokio::sync::Mutex<()>>,
}

impl Housekeeping {
    /// Stops the scheduler, and waits for a re-evaluation pass still running to stop between
    /// two clients (it leaves no client half moved), so the store can be closed after it.
    pub async fn stop(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Err(e) = self.sched.shutdown().await {
            tracing::warn!(error = %e, "housekeeping scheduler did not stop cleanly");
        }
        drop(self.resegmenting.lock().await);
    }
}

/// The one-time facts backfill ([`backfill_facts_once`]), running in the background.
pub struct Backfill {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Backfill {
    /// Starts the facts backfill on a blocking thread, unless this data directory has had
    /// it already (the store's marker says so); readiness does not wait for it. Uses the
    /// policy in force now and the time now.
    pub fn start(store: Store, policy: &PolicyHandle, clock: &SharedClock) -> Backfill {
        let stop = Arc::new(AtomicBool::new(false));
        let policy = policy.current();
        let now = clock.now();
        let stopping = stop.clone();
        let task = tokio::task::spawn_blocking(move || {
            match backfill_facts_once(&store, &policy.policy, now, &stopping) {
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "facts backfill failed; it runs again at the next start")
                }
            }
        });
        Backfill { stop, task }
    }

    /// Asks the backfill to stop before its next client and waits until it has (a pass
    /// stopped early runs again at the next start).
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "facts backfill task failed");
        }
    }
}

/// Counts of a digest period.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Digest {
    /// Messages accepted by a channel.
    pub sent: usize,
    /// Channel attempts that failed for good.
    pub failed: usize,
    /// Attempts scheduled for retry.
    pub retried: usize,
    /// Reminders moved by the contact window or a pause.
    pub deferred: usize,
    /// Steps skipped (catch-up, no address).
    pub skipped: usize,
    /// Reminders in doubt after a crash.
    pub unknown: usize,
    /// Receipts saying a message was delivered (or read).
    pub delivered: usize,
    /// Receipts saying a message could not be delivered.
    pub undelivered: usize,
}

/// Tallies the communication log of the UTC hours from the one holding `from` up to `to`
/// (hourly counters: the digest is exact to the hour).
pub fn digest(
    store: &Store,
    from: jiff::Timestamp,
    to: jiff::Timestamp,
) -> Result<Digest, crate::store::StoreError> {
    let t = store.tallies(from, to)?;
    let n = |k: Tally| usize::try_from(t.get(k)).unwrap_or(usize::MAX);
    Ok(Digest {
        sent: n(Tally::Sent),
        failed: n(Tally::Failed),
        retried: n(Tally::Retried),
        deferred: n(Tally::Deferred),
        skipped: n(Tally::Skipped),
        unknown: n(Tally::Unknown),
        delivered: n(Tally::Delivered),
        undelivered: n(Tally::Undelivered),
    })
}

/// Starts the jobs named in `[housekeeping]`; the re-evaluation of segments uses the policy
/// in force when it runs.
pub async fn start(
    config: &DaemonConfig,
    store: Store,
    clock: SharedClock,
    policy: PolicyHandle,
) -> Result<Housekeeping, DaemonError> {
    let err = |e: tokio_cron_scheduler::JobSchedulerError| DaemonError::Housekeeping(e.to_string());
    let sched = JobScheduler::new().await.map_err(err)?;
    let retention =
        SignedDuration::from_hours(24 * i64::from(config.payment_webhooks.retention_days));
    {
        let store = store.clone();
        let clock = clock.clone();
        let job = Job::new_async(config.housekeeping.prune_webhooks.as_str(), move |_, _| {
            let store = store.clone();
            let cutoff = clock.now() - retention;
            Box::pin(async move {
                match tokio::task::spawn_blocking(move || store.prune_webhooks(cutoff)).await {
                    Ok(Ok(n)) => tracing::info!(pruned = n, "pruned remembered webhook ids"),
                    Ok(Err(e)) => tracing::error!(error = %e, "pruning webhook ids failed"),
                    Err(e) => tracing::error!(error = %e, "pruning task failed"),
                }
            })
        })
        .map_err(|e| {
            DaemonError::Housekeeping(format!(
                "prune_webhooks {:?}: {e}",
                config.housekeeping.prune_webhooks
            ))
        })?;
        sched.add(job).await.map_err(err)?;
    }
    let stopping = Arc::new(AtomicBool::new(false));
    let resegmenting = Arc::new(tokio::sync::Mutex::new(()));
    {
        let store = store.clone();
        let clock = clock.clone();
        let stopping = stopping.clone();
        let running = resegmenting.clone();
        let job = Job::new_async(config.housekeeping.resegment.as_str(), move |_, _| {
            let store = store.clone();
            let policy = policy.current();
            let stopping = stopping.clone();
            let running = running.clone();
            let now = clock.now();
            Box::pin(async move {
                let Ok(guard) = running.try_lock_owned() else {
                    tracing::warn!(
                        "the previous segment re-evaluation is still running; skipped this one"
                    );
                    return;
                };
                let pass = tokio::task::spawn_blocking(move || {
                    let _guard = guard;
                    resegment_all_until(&store, &policy.policy, now, &stopping)
                });
                match pass.await {
                    Ok(Ok(r)) => tracing::info!(
                        clients = r.clients,
                        clients_changed = r.clients_changed,
                        invoices_moved = r.invoices_moved,
                        invoices_written_off = r.invoices_written_off,
                        completed = r.completed,
                        "daily pass: re-evaluated segment rules and write-offs by age"
                    ),
                    Ok(Err(e)) => tracing::error!(error = %e, "re-evaluating segment rules failed"),
                    Err(e) => tracing::error!(error = %e, "segment re-evaluation task failed"),
                }
            })
        })
        .map_err(|e| {
            DaemonError::Housekeeping(format!(
                "resegment {:?}: {e}",
                config.housekeeping.resegment
            ))
        })?;
        sched.add(job).await.map_err(err)?;
    }
    {
        let job = Job::new_async(config.housekeeping.daily_digest.as_str(), move |_, _| {
            let store = store.clone();
            let to = clock.now();
            let from = to - SignedDuration::from_hours(24);
            Box::pin(async move {
                match tokio::task::spawn_blocking(move || digest(&store, from, to)).await {
                    Ok(Ok(d)) => tracing::info!(
                        %from, %to, sent = d.sent, failed = d.failed, retried = d.retried,
                        deferred = d.deferred, skipped = d.skipped, unknown = d.unknown, delivered = d.delivered, undelivered = d.undelivered,
                        "daily digest"
                    ),
                    Ok(Err(e)) => tracing::error!(error = %e, "daily digest failed"),
                    Err(e) => tracing::error!(error = %e, "digest task failed"),
                }
            })
        })
        .map_err(|e| {
            DaemonError::Housekeeping(format!(
                "daily_digest {:?}: {e}",
                config.housekeeping.daily_digest
            ))
        })?;
        sched.add(job).await.map_err(err)?;
    }
    sched.start().await.map_err(err)?;
    Ok(Housekeeping {
        sched,
        stopping,
        resegmenting,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Attempt, AttemptOutcome, DeliveryState, InvoiceId};
    use crate::store::{StoreOptions, TxError};

    fn line(at: jiff::Timestamp, outcome: AttemptOutcome) -> Attempt {
        Attempt {
            at,
            invoice_id: InvoiceId::new("inv-1").unwrap(),
            reminder_id: None,
            step: None,
            channel: None,
            recipient: None,
            outcome,
            provider_message_id: None,
            delivery: None,
            detail: None,
        }
    }

    fn receipt(at: jiff::Timestamp, state: DeliveryState) -> Attempt {
        Attempt {
            delivery: Some(state),
            ..line(at, AttemptOutcome::Receipt)
        }
    }

    #[test]
    fn digest_counts_only_the_period() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let t: jiff::Timestamp = "2026-03-10T07:00:00Z".parse().unwrap();
        let h = |n: i64| t - SignedDuration::from_hours(n);
        let lines = [
            line(h(30), AttemptOutcome::Sent), // before the period
            line(h(20), AttemptOutcome::Sent),
            line(h(10), AttemptOutcome::Sent),
            line(h(9), AttemptOutcome::Failed),
            line(h(8), AttemptOutcome::RetryScheduled),
            line(h(7), AttemptOutcome::Deferred),
            line(h(6), AttemptOutcome::Skipped),
            line(h(5), AttemptOutcome::Unknown),
            line(h(4), AttemptOutcome::Event),
            receipt(h(3), DeliveryState::Delivered),
            receipt(h(3), DeliveryState::Read),
            receipt(h(2), DeliveryState::Undelivered),
            receipt(h(2), DeliveryState::Sent),
            line(t, AttemptOutcome::Sent), // the end is excluded
        ];
        store
            .transaction(|tx| {
                for l in &lines {
                    tx.log(l)?;
                }
                Ok::<_, TxError<()>>(())
            })
            .unwrap()
            .unwrap();
        let d = digest(&store, h(24), t).unwrap();
        assert_eq!(
            d,
            Digest {
                sent: 2,
                failed: 1,
                retried: 1,
                deferred: 1,
                skipped: 1,
                unknown: 1,
                delivered: 2,
                undelivered: 1,
            }
        );
    }
}
