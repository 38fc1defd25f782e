//! Whether a store's outbox records outbound events, and which: set once on a [`Store`] by
//! the daemon (from `[events]`), read by every command through [`Tx::events`].
//!
//! [`Store`]: super::Store
//! [`Tx::events`]: super::Tx::events

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

/// Which outbound events the outbox records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRouting {
    /// Only these types go to the `[events]` endpoint; `None`: every type.
    pub types: Option<BTreeSet<String>>,
    /// Partners with an endpoint of their own (`[events.partners.NAME]`): a hand-off to one
    /// of them is also sent there, whatever `types` says.
    pub partners: BTreeSet<String>,
}

impl EventRouting {
    /// Whether an event of type `kind` goes to the `[events]` endpoint.
    pub fn wants(&self, kind: &str) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(kind))
    }

    /// Whether `partner` has an endpoint of its own.
    pub fn reaches_partner(&self, partner: &str) -> bool {
        self.partners.contains(partner)
    }
}

/// What every clone of a store shares about its outbox: the routing once set, and the signal
/// that a command wrote an event due now.
#[derive(Debug, Default)]
pub(crate) struct EventsSwitch {
    pub(crate) routing: OnceLock<Arc<EventRouting>>,
    pub(crate) written: tokio::sync::Notify,
}
