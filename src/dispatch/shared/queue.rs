//! The leader's side of the shared queue: [`SharedSends::deliver`] puts a rendered message in
//! the `sends` table and waits for the result a node writes back.
//!
//! One thread owns the leader's queue connection: it inserts the messages handed to it (many
//! per statement), and hands each result to its waiter as it arrives in a `plazo_sends_done`
//! notification. Results notified while the connection was down are lost: after a reconnect
//! the thread asks which of its messages' rows are gone, and records those as in doubt. An insert whose outcome is unknown (the connection broke during
//! it) is never guessed: the thread asks the database which of its rows exist, waits for those
//! and fails the others as transient (the reminder is tried again later), so a message is never
//! both queued and retried.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::wire::{Delivered, SendResult, encode_message};
use crate::channels::{ChannelError, Outbound};
use crate::domain::ReminderId;
use crate::store::{SendQueue, SendQueueError, parse_send_result};

/// How long the thread waits for a result notification before it looks for new messages again,
/// while some are out.
const BUSY_WAIT: Duration = Duration::from_millis(1);

/// How long, after its connection came back, the thread waits for the results of messages
/// finished just before it looked which rows are gone.
const RESYNC_WAIT: Duration = Duration::from_millis(200);

/// What a queued message whose result was lost to a broken connection is recorded as.
const LOST: &str = "a node finished it, but its result was lost when the leader's connection to the database broke: it may or may not have been delivered";

/// Longest pause between tries while the database cannot be reached.
const MAX_PAUSE: Duration = Duration::from_secs(5);

type Waiters = Arc<Mutex<HashMap<i64, oneshot::Sender<Delivered>>>>;

/// A message handed to the queue thread.
struct Submission {
    seq: i64,
    channel: String,
    payload: Vec<u8>,
}

/// The leader's handle on the shared queue (see the module docs).
pub struct SharedSends {
    epoch: i64,
    next_seq: AtomicI64,
    submit: Mutex<Option<mpsc::Sender<Submission>>>,
    waiters: Waiters,
    stop: Arc<AtomicBool>,
    thread: crate::threads::JoinOnce,
}

impl std::fmt::Debug for SharedSends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSends")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl SharedSends {
    /// Connects the leader's queue connection (blocking: call it off the async workers),
    /// listening for results.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached.
    pub fn connect(url: &str, node: &str) -> Result<SendQueue, SendQueueError> {
        SendQueue::connect(url, node, Some(crate::store::SENDS_DONE_CHANNEL))
    }

    /// The reminders whose messages earlier leaders (any epoch but `epoch`) queued and no node
    /// claimed: never sent (see [`crate::dispatch::recover_in_flight_knowing`]). A payload
    /// this build cannot read is left out: its reminder stays in doubt.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub fn never_sent(
        queue: &mut SendQueue,
        epoch: i64,
    ) -> Result<HashSet<ReminderId>, SendQueueError> {
        Ok(queue
            .unclaimed_of_other_epochs(epoch)?
            .iter()
            .filter_map(|p| super::wire::decode_message(p).ok())
            .map(|m| m.reminder_id)
            .collect())
    }

    /// Starts the queue thread on `queue` ([`SharedSends::connect`]) as the leader of `epoch`
    /// (blocking), after deleting what earlier leaders left in the queue (their reminders in
    /// flight were settled by this leader's recovery). `poll` bounds how long the thread waits
    /// between looks when nothing comes.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached.
    pub fn start(
        mut queue: SendQueue,
        epoch: i64,
        poll: Duration,
    ) -> Result<Arc<SharedSends>, SendQueueError> {
        let cleared = queue.clear_other_epochs(epoch)?;
        if cleared > 0 {
            tracing::warn!(
                rows = cleared,
                "deleted messages earlier leaders left in the send queue (their reminders were settled in doubt)"
            );
        }
        let (tx, rx) = mpsc::channel();
        let waiters: Waiters = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let run = QueueThread {
            queue,
            epoch,
            poll,
            rx,
            waiters: Arc::clone(&waiters),
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name("plazo-sends".into())
            .spawn(move || run.run())
            .map_err(|e| SendQueueError::Connect(format!("cannot start the queue thread: {e}")))?;
        Ok(Arc::new(SharedSends {
            epoch,
            next_seq: AtomicI64::new(1),
            submit: Mutex::new(Some(tx)),
            waiters,
            stop,
            thread: crate::threads::JoinOnce::new(thread),
        }))
    }

    /// The epoch this leader queues under.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Queues `msg` for channel `channel` (its configured name) and waits for a node's result.
    pub async fn deliver(&self, channel: &str, msg: &Outbound) -> Delivered {
        let payload = match encode_message(msg) {
            Ok(p) => p,
            Err(e) => {
                return Delivered::Done(Err(ChannelError::permanent(format!(
                    "cannot encode the message for the send queue: {e}"
                ))));
            }
        };
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(seq, tx);
        let sent = self
            .submit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|s| {
                s.send(Submission {
                    seq,
                    channel: channel.to_owned(),
                    payload,
                })
                .is_ok()
            });
        if !sent {
            self.waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&seq);
            return Delivered::Done(Err(ChannelError::transient(
                "the send queue is stopped; the message was not queued",
            )));
        }
        rx.await.unwrap_or_else(|_| {
            // The thread stopped with the message queued: a node may still send it.
            Delivered::Unknown(
                "the leader stopped waiting for this queued message's result; it may or may not have been delivered".into(),
            )
        })
    }

    /// Stops the queue thread (after the dispatcher has drained: messages still out are then
    /// in doubt, as after a crash).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        drop(
            self.submit
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        self.thread.join();
    }
}

impl Drop for SharedSends {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct QueueThread {
    queue: SendQueue,
    epoch: i64,
    poll: Duration,
    rx: mpsc::Receiver<Submission>,
    waiters: Waiters,
    stop: Arc<AtomicBool>,
}

impl QueueThread {
    fn outstanding(&self) -> usize {
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn answer(&self, seq: i64, delivered: Delivered) {
        let waiter = self
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&seq);
        if let Some(w) = waiter {
            let _ = w.send(delivered);
        }
    }

    /// Answers the waiters of this epoch's results in `payloads` (notifications).
    fn take_results(&self, payloads: &[String]) {
        for p in payloads {
            match parse_send_result(p) {
                Some((epoch, seq, result)) if epoch == self.epoch => {
                    self.answer(seq, SendResult::decode(result).delivered());
                }
                Some(_) => {}
                None => {
                    tracing::warn!(payload = %p, "a send result notification that is not plazo's")
                }
            }
        }
    }

    fn run(mut self) {
        let mut pending: Vec<Submission> = Vec::new();
        // Submissions whose insert failed: queued or not, the database will say.
        let mut uncertain: Vec<(Submission, String)> = Vec::new();
        let mut pause = Duration::ZERO;
        let mut connections = self.queue.connections();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            if pending.is_empty() && uncertain.is_empty() && self.outstanding() == 0 {
                match self.rx.recv_timeout(self.poll) {
                    Ok(s) => pending.push(s),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            while let Ok(s) = self.rx.try_recv() {
                pending.push(s);
            }
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
            if !uncertain.is_empty() {
                let seqs: Vec<i64> = uncertain.iter().map(|(s, _)| s.seq).collect();
                match self.queue.existing(self.epoch, &seqs) {
                    Ok(present) => {
                        for (s, why) in uncertain.drain(..) {
                            if !present.contains(&s.seq) {
                                self.answer(
                                    s.seq,
                                    Delivered::Done(Err(ChannelError::transient(format!(
                                        "the message could not be queued for the nodes: {why}"
                                    )))),
                                );
                            }
                        }
                        pause = Duration::ZERO;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, messages = uncertain.len(), "cannot tell whether messages were queued; asking again");
                        pause = next_pause(pause);
                        continue;
                    }
                }
            }
            if !pending.is_empty() {
                let rows: Vec<(i64, String, Vec<u8>)> = pending
                    .iter()
                    .map(|s| (s.seq, s.channel.clone(), s.payload.clone()))
                    .collect();
                match self.queue.enqueue(self.epoch, &rows) {
                    Ok(()) => {
                        pending.clear();
                        pause = Duration::ZERO;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, messages = rows.len(), "cannot queue messages for the nodes");
                        let why = e.to_string();
                        uncertain.extend(pending.drain(..).map(|s| (s, why.clone())));
                        pause = next_pause(pause);
                        continue;
                    }
                }
            }
            match self.queue.wait(BUSY_WAIT) {
                Ok(payloads) => self.take_results(&payloads),
                Err(e) => {
                    tracing::warn!(error = %e, "the send queue's connection broke; reconnecting");
                    pause = next_pause(pause);
                }
            }
            if self.queue.connections() != connections {
                // Results notified while no connection listened are lost: a queued message
                // whose row is gone now was finished by a node, with a result nobody heard.
                let unsure: Vec<i64> = {
                    let waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
                    waiters
                        .keys()
                        .copied()
                        .filter(|seq| {
                            !pending.iter().any(|p| p.seq == *seq)
                                && !uncertain.iter().any(|(u, _)| u.seq == *seq)
                        })
                        .collect()
                };
                match self.queue.existing(self.epoch, &unsure) {
                    Ok(present) => {
                        connections = self.queue.connections();
                        // Results of rows finished just before that look arrive now.
                        if let Ok(payloads) = self.queue.wait(RESYNC_WAIT) {
                            self.take_results(&payloads);
                        }
                        for seq in unsure.iter().filter(|seq| !present.contains(seq)) {
                            self.answer(*seq, Delivered::Unknown(LOST.into()));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot look for the queued messages whose results may be lost");
                        pause = next_pause(pause);
                    }
                }
            }
        }
        // Waiters left are dropped with the map's senders: each reads "in doubt".
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The next pause while the database fails: 100 ms, doubling up to [`MAX_PAUSE`].
pub(super) fn next_pause(pause: Duration) -> Duration {
    if pause.is_zero() {
        Duration::from_millis(100)
    } else {
        pause.saturating_mul(2).min(MAX_PAUSE)
    }
}
