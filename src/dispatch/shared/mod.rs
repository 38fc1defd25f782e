//! Several nodes sending together (`[store] delivery = "shared"`, PostgreSQL only).
//!
//! The leader still decides everything about a reminder: it claims it, re-checks the invoice,
//! applies the contact rules and caps, renders the message and books its rate-limit slot, then
//! records the outcome and plans the next step; it alone writes the store. What it hands out is
//! the send itself: the rendered message goes into the database's `sends` queue
//! ([`SharedSends`]), every node (the leader too, standbys included) claims messages from it
//! with `FOR UPDATE SKIP LOCKED` and a lease, sends them through its own channel
//! ([`SendWorker`]), and writes the result back; the leader records it as if it had sent the
//! message itself, with the sending node's name on the timeline line.
//!
//! So a slow provider's latency, and the sending, spread over every node, and a node that dies
//! mid-send leaves only the messages it held in doubt: their leases run out and another node
//! settles them by `on_unknown`. If the leader dies, a standby takes over as before and settles
//! the reminders the old leader had in flight; the old leader's queued messages are never
//! claimed again.

mod queue;
mod wire;
mod worker;

pub use queue::SharedSends;
pub use wire::{Delivered, SendResult, decode_message, encode_message};
pub use worker::{SendWorker, WorkerOptions};
