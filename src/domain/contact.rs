//! What plazo knows about addresses (phone numbers, email addresses) independently of clients:
//! opt-outs, channels that cannot reach them, when the debtor last wrote to us, and what
//! providers report about each message sent.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{ClientId, DeliveryState, InvoiceId, ReminderId};

/// One address (an E.164 phone number or a lower-cased email address) and its state per
/// channel kind. Kept even when no client uses the address any more, so an opt-out survives a
/// client being re-imported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The address: `+573001234567` or `ana@example.co`.
    pub address: String,
    /// Opt-outs by channel kind (`sms`, `whatsapp`, `email`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub opt_outs: BTreeMap<String, OptOut>,
    /// Channel kinds that cannot reach this address (not a WhatsApp user, invalid number...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unreachable: BTreeMap<String, Unreachable>,
    /// When the debtor last wrote to us, by channel kind; WhatsApp's 24-hour customer-service
    /// window runs from `last_inbound["whatsapp"]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_inbound: BTreeMap<String, Timestamp>,
    /// Clients whose records carry this address.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub clients: BTreeSet<ClientId>,
}

/// How long WhatsApp's customer-service window stays open after the debtor's last message.
pub const WHATSAPP_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

impl Contact {
    /// An empty record for `address`.
    pub fn new(address: impl Into<String>) -> Self {
        Contact {
            address: address.into(),
            ..Contact::default()
        }
    }

    /// The key under which `address` is stored: email addresses are lower-cased and trimmed,
    /// phone numbers (already E.164) are kept as they are.
    pub fn normalize(address: &str) -> String {
        let a = address.trim();
        if a.contains('@') {
            a.to_lowercase()
        } else {
            a.to_owned()
        }
    }

    /// Why channel `kind` must not be used for this address, if it must not.
    pub fn blocked(&self, kind: &str) -> Option<String> {
        if let Some(o) = self.opt_outs.get(kind) {
            return Some(format!(
                "{} opted out of {kind} on {} ({})",
                self.address, o.at, o.source
            ));
        }
        self.unreachable.get(kind).map(|u| {
            format!(
                "{kind} cannot reach {} (since {}: {})",
                self.address, u.at, u.reason
            )
        })
    }

    /// True while the WhatsApp customer-service window is open at `now`.
    pub fn whatsapp_window_open(&self, now: Timestamp) -> bool {
        self.last_inbound
            .get("whatsapp")
            .is_some_and(|t| *t <= now && now.duration_since(*t) < WHATSAPP_WINDOW)
    }
}

/// An opt-out from one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOut {
    /// When it was recorded.
    pub at: Timestamp,
    /// How: `keyword BAJA via sms`, `one-click unsubscribe`, `twilio error 21610`, `api`.
    pub source: String,
}

/// A channel that cannot reach an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    /// When it was learnt.
    pub at: Timestamp,
    /// The provider's reason (`whatsapp error 131026: message undeliverable`).
    pub reason: String,
}

/// A message a provider accepted and reports on (status callbacks), by provider message id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Adapter that sent it (`twilio`, `whatsapp`).
    pub provider: String,
    /// The provider's id (Twilio `SM…` sid, WhatsApp `wamid.…`).
    pub provider_message_id: String,
    /// The reminder it carried.
    pub reminder_id: ReminderId,
    /// The invoice chased.
    pub invoice_id: InvoiceId,
    /// The debtor.
    pub client_id: ClientId,
    /// Step name.
    pub step: String,
    /// Channel kind (`sms`, `whatsapp`).
    pub kind: String,
    /// Position of that channel in the step's chain.
    pub channel_index: u32,
    /// Where it went.
    pub recipient: String,
    /// Latest delivery state reported (monotonic).
    pub state: DeliveryState,
    /// When the provider accepted it.
    pub sent_at: Timestamp,
    /// When the state last changed.
    pub updated_at: Timestamp,
    /// The provider's error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What happened on a client's own timeline (not about one invoice): messages the debtor sent
/// us, opt-outs and opt-ins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEvent {
    /// When it happened.
    pub at: Timestamp,
    /// The client.
    pub client_id: ClientId,
    /// What kind of event.
    pub event: ContactEventKind,
    /// Channel kind (`sms`, `whatsapp`, `email`).
    pub channel: String,
    /// The address involved.
    pub address: String,
    /// The debtor's message text, for inbound messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Provider message id, for inbound messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// Explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Kinds of [`ContactEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactEventKind {
    /// The debtor wrote to us.
    Inbound,
    /// The address was opted out of a channel.
    OptOut,
    /// The address opted back in.
    OptIn,
    /// A channel was found unable to reach the address.
    Unreachable,
    /// A note written by a person (`POST /v1/clients/{id}/notes`); `text` holds it and
    /// `detail` who wrote it.
    Note,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapp_window_is_24_hours_from_the_last_inbound_message() {
        let t0: Timestamp = "2026-03-01T10:00:00Z".parse().unwrap();
        let mut c = Contact::new("+573001234567");
        assert!(!c.whatsapp_window_open(t0));
        c.last_inbound.insert("whatsapp".into(), t0);
        assert!(c.whatsapp_window_open(t0));
        assert!(c.whatsapp_window_open(t0 + jiff::SignedDuration::from_secs(86_399)));
        assert!(!c.whatsapp_window_open(t0 + jiff::SignedDuration::from_hours(24)));
        // An SMS does not open the WhatsApp window.
        let mut s = Contact::new("+573001234567");
        s.last_inbound.insert("sms".into(), t0);
        assert!(!s.whatsapp_window_open(t0));
    }

    #[test]
    fn blocked_names_the_reason() {
        let t0: Timestamp = "2026-03-01T10:00:00Z".parse().unwrap();
        let mut c = Contact::new("+573001234567");
        assert_eq!(c.blocked("sms"), None);
        c.opt_outs.insert(
            "sms".into(),
            OptOut {
                at: t0,
                source: "keyword BAJA via sms".into(),
            },
        );
        c.unreachable.insert(
            "whatsapp".into(),
            Unreachable {
                at: t0,
                reason: "whatsapp error 131026".into(),
            },
        );
        assert!(c.blocked("sms").unwrap().contains("opted out of sms"));
        assert!(c.blocked("whatsapp").unwrap().contains("131026"));
        assert_eq!(c.blocked("email"), None);
    }

    #[test]
    fn emails_are_case_folded_phones_kept() {
        assert_eq!(Contact::normalize(" Ana@Example.CO "), "ana@example.co");
        assert_eq!(Contact::normalize("+573001234567"), "+573001234567");
    }
}
