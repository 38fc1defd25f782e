//! The dispatcher: one timer loop over the due index. It sleeps until the earliest due entry
//! (or until woken because an earlier one arrived), claims what is due in one command, and
//! hands the claimed batch to a task that waits until the claim is durable (group commit; the
//! loop claims the next batch meanwhile), then sends with bounded concurrency (one channel
//! attempt in `attempt.rs`, the walk along the chain and the recording in `process.rs`):
//! re-check → render → send → record → plan the next step. A message's statement (the
//! client's other open invoices) comes from the client's invoice index through
//! [`statements::StatementCache`], read once per client while it has not changed.

mod attempt;
mod backoff;
mod panicked;
mod process;
mod recovery;
mod route;
pub mod shared;
pub mod statements;
pub(crate) mod timeline;
mod turns;
mod wake;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use attempt::STATEMENT_MAX_INVOICES;
pub use backoff::{jitter, retry_delay};
pub use recovery::{recover_in_flight, recover_in_flight_knowing};
pub use route::{ChannelRoutes, channel_chain, recipient};
pub use timeline::send_task_panics;
pub use turns::ClientTurns;
pub use wake::Wake;

use crate::clock::SharedClock;
use crate::config::DispatchConfig;
use crate::domain::Reminder;
use crate::service::PolicyHandle;
use crate::store::{Store, StoreError};

/// Why a claim could not be made (durable).
enum ClaimError {
    /// The claim transaction failed.
    Claim(StoreError),
    /// The claim could not be flushed to disk.
    Durable(StoreError),
}

/// Longest the loop sleeps without looking at the due index again.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// Everything a dispatch needs; shared by the loop and its send tasks.
pub struct Dispatcher {
    /// The store.
    pub store: Store,
    /// The policy in force.
    pub policy: PolicyHandle,
    /// Channels by kind.
    pub routes: ChannelRoutes,
    /// Source of "now".
    pub clock: SharedClock,
    /// Tuning.
    pub config: DispatchConfig,
    /// Woken when a reminder is scheduled, so the loop re-reads the earliest due time.
    pub wake: Arc<Wake>,
    /// Makes one-click unsubscribe links for email; none when the deployment has no key.
    pub unsubscribe: Option<Arc<crate::unsubscribe::UnsubscribeLinks>>,
    /// One send at a time per client where contact caps apply.
    pub turns: Arc<ClientTurns>,
    /// Each client's statement lines as last read, while still current.
    pub statements: Arc<statements::StatementCache>,
    /// The daemon's metrics (outcomes by channel, step and segment; lateness of sends).
    pub telemetry: crate::telemetry::Telemetry,
    /// The shared send queue, when every node sends (`[store] delivery = "shared"` on
    /// PostgreSQL): messages go through it instead of straight to the channel.
    pub shared: Option<Arc<shared::SharedSends>>,
}

impl Dispatcher {
    /// Claims up to `limit` reminders due at `clock.now()` (earliest first) and makes the claim
    /// durable before returning them: a crash after this point finds them in flight and never
    /// sends them twice. The claim path of [`Dispatcher::dispatch_due_once`]; the loop of
    /// [`Dispatcher::run`] claims with [`Dispatcher::claim`] and lets each batch's task wait
    /// for the flush.
    async fn claim_durable(&self, limit: usize) -> Result<Vec<Reminder>, ClaimError> {
        let claimed = self.claim(limit).await?;
        if !claimed.is_empty() {
            self.store.durable().await.map_err(ClaimError::Durable)?;
        }
        Ok(claimed)
    }

    /// Claims up to `limit` reminders due at `clock.now()`, earliest first; not durable yet.
    async fn claim(&self, limit: usize) -> Result<Vec<Reminder>, ClaimError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_due_async(now, limit)
            .await
            .map_err(ClaimError::Claim)?;
        if !claimed.is_empty() {
            self.telemetry.claimed(claimed.len() as u64);
        }
        Ok(claimed)
    }

    /// Waits until the claim of `claimed` is on disk, then processes each reminder on its own
    /// task, holding one of `permits` each. When the claim cannot be made durable nothing is
    /// sent: the reminders stay in flight and are resolved at the next start like any
    /// reminder in doubt.
    async fn send_claimed(
        self: Arc<Self>,
        claimed: Vec<Reminder>,
        permits: Vec<tokio::sync::OwnedSemaphorePermit>,
    ) {
        if let Err(e) = self.store.durable().await {
            tracing::error!(
                error = %e,
                reminders = claimed.len(),
                "cannot make claims durable; not sending them"
            );
            return;
        }
        let mut sends = JoinSet::new();
        for (reminder, permit) in claimed.into_iter().zip(permits) {
            let me = Arc::clone(&self);
            sends.spawn(async move {
                me.process(reminder).await;
                drop(permit);
            });
        }
        while let Some(done) = sends.join_next().await {
            task_ended(done);
        }
    }

    /// One pass of the loop without the timer: claims what is due at `clock.now()` (at most
    /// `dispatch.batch`), makes the claim durable, and processes each reminder in turn (re-check,
    /// render, send, record, plan the next step). Returns how many reminders were processed.
    /// Drives the dispatcher deterministically under a manual clock (tests, simulations).
    ///
    /// # Errors
    ///
    /// When the claim cannot be made or made durable (nothing was sent).
    pub async fn dispatch_due_once(&self) -> Result<usize, StoreError> {
        let claimed = match self.claim_durable(self.config.batch).await {
            Ok(c) => c,
            Err(ClaimError::Claim(e) | ClaimError::Durable(e)) => return Err(e),
        };
        let n = claimed.len();
        for r in claimed {
            self.process(r).await;
        }
        Ok(n)
    }

    /// Runs until `shutdown` turns true, then waits up to `drain_timeout_secs` for in-flight
    /// sends. Returns how many sends were still running when the drain timed out.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) -> usize {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let mut tasks = JoinSet::new();
        // Under a systemd watchdog, the loop turns at least twice per period and pings on each
        // turn: a loop that stops turning is restarted.
        let max_idle = crate::systemd::watchdog_interval().map_or(MAX_IDLE, |w| w.min(MAX_IDLE));
        loop {
            crate::systemd::watchdog_tick();
            while let Some(done) = tasks.try_join_next() {
                task_ended(done);
            }
            if *shutdown.borrow() {
                break;
            }
            // Claim only what can start now, so a crash leaves few reminders in doubt.
            let first = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.changed() => break,
            };
            let room = (permits.available_permits() + 1).min(self.config.batch);
            let claimed = match self.claim(room).await {
                Ok(c) => c,
                Err(ClaimError::Claim(e) | ClaimError::Durable(e)) => {
                    tracing::error!(error = %e, "cannot claim due reminders; retrying in 1 s");
                    drop(first);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                drop(first);
                let wait = match self.store.next_due() {
                    Ok(Some(t)) => {
                        let d = t.duration_since(self.clock.now());
                        Duration::try_from(d)
                            .unwrap_or(Duration::ZERO)
                            .min(max_idle)
                    }
                    Ok(None) => max_idle,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the due index");
                        Duration::from_secs(1)
                    }
                };
                if wait.is_zero() {
                    continue;
                }
                let until = self.clock.now().checked_add(wait).unwrap_or(Timestamp::MAX);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.wait(until) => {}
                    _ = shutdown.changed() => {}
                }
                self.wake.awake();
                continue;
            }
            // The claim is applied; its flush is awaited by the batch's own task, so the loop
            // claims again while it is written (a reminder is still never sent before its
            // claim is on disk).
            let mut permits_held = vec![first];
            while permits_held.len() < claimed.len() {
                match Arc::clone(&permits).acquire_owned().await {
                    Ok(p) => permits_held.push(p),
                    Err(_) => break,
                }
            }
            let me = Arc::clone(&self);
            tasks.spawn(async move { me.send_claimed(claimed, permits_held).await });
        }
        let drain = Duration::from_secs(self.config.drain_timeout_secs);
        // Each claimed reminder holds a permit until it is processed.
        let held = || self.config.concurrency - permits.available_permits();
        let in_flight = held();
        if in_flight > 0 {
            tracing::info!(in_flight, "draining in-flight sends");
        }
        let drained = tokio::time::timeout(drain, async {
            while let Some(r) = tasks.join_next().await {
                task_ended(r);
            }
        })
        .await;
        match drained {
            Ok(()) => 0,
            Err(_) => {
                let left = held();
                tracing::warn!(
                    left,
                    "drain timed out; these reminders will be found in flight at next start"
                );
                tasks.abort_all();
                left
            }
        }
    }
}

/// Logs a send task that ended abnormally. [`Dispatcher::process`] catches panics itself, so a
/// panic here escaped it (e.g. while dropping); it is counted all the same.
fn task_ended(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            timeline::count_panic();
        }
        tracing::error!(error = %e, "ALERT: dispatch task ended abnormally");
    }
}
