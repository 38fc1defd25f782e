//! Every node's side of the shared queue: [`SendWorker`] claims queued messages for the
//! channels this node routes, sends each through the node's own channel, and writes the result
//! back for the leader.
//!
//! One thread owns the node's queue connection. It claims as many messages as it has free
//! slots (`[dispatch] concurrency`), sends each on a task of the node's runtime, writes the
//! results as they come (many per statement), and renews its leases every third of the lease
//! while any send is out. It sleeps on the `plazo_sends` notification, or `poll` at most.
//!
//! A message claimed before, whose lease ran out, is in doubt: the node that held it died or
//! hung, maybe after the channel accepted it. It is settled by `[dispatch] on_unknown`, as a
//! reminder found in flight at start is: `skip` writes an `unknown` result and sends nothing,
//! `resend` sends it again. A thank-you is never sent again, whatever the setting.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use futures::FutureExt as _;

use super::queue::next_pause;
use super::wire::{SendResult, decode_message};
use crate::channels::{ChannelError, SharedChannel};
use crate::config::OnUnknown;
use crate::dispatch::ChannelRoutes;
use crate::dispatch::timeline::{count_panic, panic_text};
use crate::policy::terms::ThankYou;
use crate::store::{ClaimedSend, SendQueue, SendQueueError};
use crate::telemetry::Telemetry;

/// How long the thread waits for a notification before it looks at finished sends again, while
/// some are out.
const BUSY_WAIT: Duration = Duration::from_millis(1);

/// How a node's worker runs.
#[derive(Clone)]
pub struct WorkerOptions {
    /// The PostgreSQL URL.
    pub url: String,
    /// This node's name (claims carry it).
    pub node: String,
    /// How long a claim lasts without renewal (`[store] send_lease_ms`).
    pub lease: Duration,
    /// Longest sleep between looks at the queue when no notification comes.
    pub poll: Duration,
    /// Most messages this node sends at once.
    pub concurrency: usize,
    /// What to do with a message whose previous node's lease ran out.
    pub on_unknown: OnUnknown,
    /// Longest a stopping worker waits for its sends in flight.
    pub drain: Duration,
}

/// A running worker (see the module docs).
pub struct SendWorker {
    stop: Arc<AtomicBool>,
    thread: crate::threads::JoinOnce,
}

impl SendWorker {
    /// Connects (blocking: call it off the async workers) and starts claiming messages for the
    /// channels of `routes`; sends run on `runtime`.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached, or is from a newer plazo.
    pub fn start(
        opts: WorkerOptions,
        routes: ChannelRoutes,
        runtime: tokio::runtime::Handle,
        telemetry: Telemetry,
    ) -> Result<SendWorker, SendQueueError> {
        let queue = SendQueue::connect(
            &opts.url,
            &opts.node,
            Some(crate::store::SENDS_QUEUED_CHANNEL),
        )?;
        let mut channels: Vec<SharedChannel> = Vec::new();
        for kind in routes.kinds() {
            if let Some(c) = routes.get(kind) {
                if !channels.iter().any(|k| k.name() == c.name()) {
                    channels.push(Arc::clone(c));
                }
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = WorkerThread {
            queue,
            opts,
            channels,
            runtime,
            telemetry,
            stop: Arc::clone(&stop),
        };
        let handle = std::thread::Builder::new()
            .name("plazo-send-worker".into())
            .spawn(move || thread.run())
            .map_err(|e| SendQueueError::Connect(format!("cannot start the worker thread: {e}")))?;
        Ok(SendWorker {
            stop,
            thread: crate::threads::JoinOnce::new(handle),
        })
    }

    /// Stops claiming, waits (up to the drain time) for the sends in flight and writes their
    /// results. Blocking.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join();
    }
}

impl Drop for SendWorker {
    /// Stops as [`SendWorker::stop`] does, waiting for the sends in flight (a standby's `plazo
    /// serve` stopped while it waits to lead drops its worker so).
    fn drop(&mut self) {
        self.stop();
    }
}

/// What this node's worker did, logged when it stops.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    failed: u64,
    unknown: u64,
}

impl Tally {
    fn count(&mut self, result: &SendResult) {
        match result {
            SendResult::Sent { .. } => self.sent += 1,
            SendResult::Transient { .. } | SendResult::Permanent { .. } => self.failed += 1,
            SendResult::Unknown { .. } => self.unknown += 1,
        }
    }
}

struct WorkerThread {
    queue: SendQueue,
    opts: WorkerOptions,
    channels: Vec<SharedChannel>,
    runtime: tokio::runtime::Handle,
    telemetry: Telemetry,
    stop: Arc<AtomicBool>,
}

impl WorkerThread {
    fn run(mut self) {
        let names: Vec<String> = self.channels.iter().map(|c| c.name().to_owned()).collect();
        tracing::info!(node = %self.opts.node, channels = ?names, "sending messages from the shared queue");
        let (done_tx, done_rx) = mpsc::channel::<(i64, i64, SendResult)>();
        let mut tally = Tally::default();
        let mut in_flight = 0usize;
        let mut finished: Vec<(i64, i64, String)> = Vec::new();
        let mut pause = Duration::ZERO;
        let mut last_renew = crate::clock::monotonic_now();
        let mut stopping_since: Option<Instant> = None;
        let renew_every = self.opts.lease / 3;
        let mut maybe_queued = true;
        let mut last_look = crate::clock::monotonic_now();
        loop {
            while let Ok((epoch, seq, result)) = done_rx.try_recv() {
                tally.count(&result);
                finished.push((epoch, seq, result.encode()));
                in_flight = in_flight.saturating_sub(1);
            }
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
            if !finished.is_empty() {
                match self.queue.complete(&finished) {
                    Ok(n) => {
                        if n < finished.len() {
                            tracing::warn!(
                                node = %self.opts.node, lost = finished.len() - n,
                                "results of sends whose lease ran out before they were written: another node settled those messages in doubt"
                            );
                        }
                        finished.clear();
                        pause = Duration::ZERO;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, results = finished.len(), "cannot write send results to the queue; trying again");
                        pause = next_pause(pause);
                        continue;
                    }
                }
            }
            if in_flight > 0 && crate::clock::elapsed_since(last_renew) >= renew_every {
                last_renew = crate::clock::monotonic_now();
                if let Err(e) = self.queue.renew(self.opts.lease) {
                    tracing::error!(error = %e, "cannot renew the leases of this node's sends");
                }
            }
            if self.stop.load(Ordering::SeqCst) {
                let since = *stopping_since.get_or_insert_with(crate::clock::monotonic_now);
                if in_flight == 0 && finished.is_empty() {
                    break;
                }
                if crate::clock::elapsed_since(since) >= self.opts.drain {
                    tracing::warn!(
                        in_flight,
                        "stopped with sends still out; their messages are settled in doubt once their lease runs out"
                    );
                    break;
                }
                match done_rx.recv_timeout(Duration::from_millis(10)) {
                    Ok((epoch, seq, result)) => {
                        tally.count(&result);
                        finished.push((epoch, seq, result.encode()));
                        in_flight = in_flight.saturating_sub(1);
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
                }
                continue;
            }
            // Look only when messages may be waiting (a notification came, or the last look
            // filled every free slot), or every `poll` (a lost notification, a lease run out).
            let free = self.opts.concurrency.saturating_sub(in_flight);
            let look_expired = crate::clock::elapsed_since(last_look) >= self.opts.poll;
            if free > 0 && (maybe_queued || look_expired) {
                if look_expired {
                    last_look = crate::clock::monotonic_now();
                }
                match self
                    .queue
                    .claim(&names, self.opts.lease, free, look_expired)
                {
                    Ok(claimed) => {
                        maybe_queued = claimed.len() == free;
                        if !claimed.is_empty() {
                            if in_flight == 0 {
                                last_renew = crate::clock::monotonic_now();
                            }
                            self.telemetry.sends_claimed(claimed.len() as u64);
                        }
                        for c in claimed {
                            in_flight += 1;
                            self.spawn_send(c, done_tx.clone());
                        }
                        pause = Duration::ZERO;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot claim messages from the send queue");
                        pause = next_pause(pause);
                        continue;
                    }
                }
                if maybe_queued {
                    // More may be waiting: look again at once.
                    continue;
                }
            }
            let wait = if in_flight > 0 {
                BUSY_WAIT
            } else {
                self.opts.poll
            };
            match self.queue.wait(wait) {
                Ok(notified) => maybe_queued |= !notified.is_empty(),
                Err(e) => {
                    tracing::warn!(error = %e, "the send queue's connection broke; reconnecting");
                    pause = next_pause(pause);
                    maybe_queued = true;
                }
            }
        }
        tracing::info!(
            node = %self.opts.node, sent = tally.sent, failed = tally.failed, unknown = tally.unknown,
            "stopped sending from the shared queue"
        );
    }

    fn spawn_send(&self, claimed: ClaimedSend, done: mpsc::Sender<(i64, i64, SendResult)>) {
        let channel = self
            .channels
            .iter()
            .find(|c| c.name() == claimed.channel)
            .cloned();
        let node = self.opts.node.clone();
        let on_unknown = self.opts.on_unknown;
        let telemetry = self.telemetry.clone();
        self.runtime.spawn(async move {
            let (epoch, seq) = (claimed.epoch, claimed.seq);
            let result = send_one(claimed, channel, &node, on_unknown, &telemetry).await;
            let _ = done.send((epoch, seq, result));
        });
    }
}

/// Sends one claimed message (or settles it in doubt) and says how it went.
async fn send_one(
    claimed: ClaimedSend,
    channel: Option<SharedChannel>,
    node: &str,
    on_unknown: OnUnknown,
    telemetry: &Telemetry,
) -> SendResult {
    let failed = |message: String| SendResult::Permanent {
        node: node.to_owned(),
        message,
        scope: crate::channels::FailureScope::Message,
    };
    let msg = match decode_message(&claimed.payload) {
        Ok(m) => m,
        Err(e) => {
            return failed(format!(
                "the queued message cannot be read ({e}); do all nodes run the same plazo version?"
            ));
        }
    };
    let Some(channel) = channel else {
        // Claims are only made for this node's channels; a reload cannot change them.
        return failed(format!(
            "node {node} has no channel named {:?}; every node must route the same channels",
            claimed.channel
        ));
    };
    if let Some(previous) = &claimed.previous {
        telemetry.send_lease_expired();
        telemetry.in_doubt_settled(1);
        let skip = on_unknown == OnUnknown::Skip || msg.step == ThankYou::STEP;
        tracing::warn!(
            reminder = %msg.reminder_id, invoice = %msg.invoice_id, previous = %previous, resend = !skip,
            "a queued message's lease ran out on another node: it may or may not have been delivered"
        );
        if skip {
            return SendResult::Unknown {
                node: node.to_owned(),
                detail: format!(
                    "node {previous} claimed it and its lease ran out (the node died or hung): it may or may not have been delivered; not resent (dispatch.on_unknown = skip)"
                ),
            };
        }
    }
    let outcome = AssertUnwindSafe(async { channel.send(&msg).await })
        .catch_unwind()
        .await;
    match outcome {
        Ok(o) => SendResult::of(node, o),
        Err(panic) => {
            count_panic();
            let why = panic_text(panic.as_ref());
            tracing::error!(
                reminder = %msg.reminder_id, channel = channel.name(), panic = %why,
                "ALERT: a channel panicked while sending a queued message; recorded as failed"
            );
            SendResult::of(
                node,
                Err(ChannelError::permanent(format!(
                    "{} via {}: the channel panicked while sending ({why}); recorded as failed",
                    msg.kind,
                    channel.name()
                ))),
            )
        }
    }
}
