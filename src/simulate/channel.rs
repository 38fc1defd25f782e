//! The channel every route points at during a simulation: it accepts every message and
//! records what went out, when (the simulated clock), to whom, on which step and channel, and
//! which segment was chasing the invoice at that moment.

use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use jiff::Timestamp;

use crate::channels::{Channel, ChannelError, Outbound, Receipt};
use crate::clock::Clock;
use crate::store::Store;

/// One message the simulation sent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SimMessage {
    /// When it went out (UTC).
    pub at: Timestamp,
    /// The debtor.
    pub client_id: String,
    /// The invoice (the first one of a grouped message).
    pub invoice_id: String,
    /// The step's name.
    pub step: String,
    /// The channel kind.
    pub channel: String,
    /// The segment chasing the invoice when it went out.
    pub segment: String,
}

/// A recording channel for one kind.
pub(super) struct SimChannel {
    name: String,
    clock: Arc<dyn Clock>,
    store: Store,
    sent: Arc<Mutex<Vec<SimMessage>>>,
}

impl SimChannel {
    pub(super) fn new(
        kind: &str,
        clock: Arc<dyn Clock>,
        store: Store,
        sent: Arc<Mutex<Vec<SimMessage>>>,
    ) -> Self {
        SimChannel {
            name: format!("simulated-{kind}"),
            clock,
            store,
            sent,
        }
    }
}

impl Channel for SimChannel {
    fn name(&self) -> &str {
        &self.name
    }
    fn adapter(&self) -> &'static str {
        "simulation"
    }
    fn send<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>> {
        Box::pin(async move {
            // A read of the scratch store (not the live one): which segment chases the invoice.
            let segment = match self.store.invoice(&msg.invoice_id) {
                Ok(Some(inv)) => inv.followed.map(|f| f.segment).unwrap_or_default(),
                _ => String::new(),
            };
            let m = SimMessage {
                at: self.clock.now(),
                client_id: msg.client_id.to_string(),
                invoice_id: msg.invoice_id.to_string(),
                step: msg.step.clone(),
                channel: msg.kind.clone(),
                segment,
            };
            let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
            sent.push(m);
            Ok(Receipt {
                provider_message_id: Some(format!("sim-{}", sent.len())),
                note: None,
            })
        })
    }
}
