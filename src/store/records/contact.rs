//! Address records: contacts (opt-outs, reachability, inbound windows), sent messages awaiting
//! receipts, and the client timeline's contact events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::attempt::StoredDeliveryState;
use super::prim::{BadField, StoredTime, client_id, invoice_id};
use crate::domain::{
    Contact, ContactEvent, ContactEventKind, OptOut, ReminderId, SentMessage, Unreachable,
};

/// [`Contact`] on disk, layout version 1: one byte of version, then these fields in this
/// order (postcard, no field names). Separate from the API's JSON shape so either can change
/// without the other; a new field means a new version byte and a conversion from this one (see
/// the module docs). Never reorder or remove fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredContact {
    address: String,
    /// By channel kind.
    opt_outs: BTreeMap<String, StoredOptOut>,
    /// By channel kind.
    unreachable: BTreeMap<String, StoredUnreachable>,
    /// By channel kind.
    last_inbound: BTreeMap<String, StoredTime>,
    /// Client ids, in order.
    clients: Vec<String>,
}

/// [`OptOut`] on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredOptOut {
    at: StoredTime,
    source: String,
}

/// [`Unreachable`] on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredUnreachable {
    at: StoredTime,
    reason: String,
}

/// [`SentMessage`] on disk, layout version 1 (same rules as [`StoredContact`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredSentMessage {
    provider: String,
    provider_message_id: String,
    /// The reminder's uuid.
    reminder_id: [u8; 16],
    invoice_id: String,
    client_id: String,
    step: String,
    kind: String,
    channel_index: u32,
    recipient: String,
    state: StoredDeliveryState,
    sent_at: StoredTime,
    updated_at: StoredTime,
    error: Option<String>,
}

/// [`ContactEvent`] on disk, layout version 1 (same rules as [`StoredContact`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredContactEvent {
    at: StoredTime,
    client_id: String,
    event: StoredContactEventKind,
    channel: String,
    address: String,
    text: Option<String>,
    provider_message_id: Option<String>,
    detail: Option<String>,
}

/// [`ContactEventKind`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredContactEventKind {
    Inbound,
    OptOut,
    OptIn,
    Unreachable,
    Note,
}

impl From<&Contact> for StoredContact {
    fn from(c: &Contact) -> Self {
        StoredContact {
            address: c.address.clone(),
            opt_outs: c
                .opt_outs
                .iter()
                .map(|(k, o)| {
                    (
                        k.clone(),
                        StoredOptOut {
                            at: o.at.into(),
                            source: o.source.clone(),
                        },
                    )
                })
                .collect(),
            unreachable: c
                .unreachable
                .iter()
                .map(|(k, u)| {
                    (
                        k.clone(),
                        StoredUnreachable {
                            at: u.at.into(),
                            reason: u.reason.clone(),
                        },
                    )
                })
                .collect(),
            last_inbound: c
                .last_inbound
                .iter()
                .map(|(k, t)| (k.clone(), StoredTime::from(t)))
                .collect(),
            clients: c.clients.iter().map(|id| id.as_str().to_owned()).collect(),
        }
    }
}

impl TryFrom<StoredContact> for Contact {
    type Error = BadField;
    fn try_from(s: StoredContact) -> Result<Self, BadField> {
        Ok(Contact {
            address: s.address,
            opt_outs: s
                .opt_outs
                .into_iter()
                .map(|(k, o)| {
                    Ok((
                        k,
                        OptOut {
                            at: o.at.get("opt_outs.at")?,
                            source: o.source,
                        },
                    ))
                })
                .collect::<Result<_, BadField>>()?,
            unreachable: s
                .unreachable
                .into_iter()
                .map(|(k, u)| {
                    Ok((
                        k,
                        Unreachable {
                            at: u.at.get("unreachable.at")?,
                            reason: u.reason,
                        },
                    ))
                })
                .collect::<Result<_, BadField>>()?,
            last_inbound: s
                .last_inbound
                .into_iter()
                .map(|(k, t)| Ok((k, t.get("last_inbound")?)))
                .collect::<Result<_, BadField>>()?,
            clients: s
                .clients
                .into_iter()
                .map(|id| client_id(id, "clients"))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl From<&SentMessage> for StoredSentMessage {
    fn from(m: &SentMessage) -> Self {
        StoredSentMessage {
            provider: m.provider.clone(),
            provider_message_id: m.provider_message_id.clone(),
            reminder_id: m.reminder_id.to_bytes(),
            invoice_id: m.invoice_id.as_str().to_owned(),
            client_id: m.client_id.as_str().to_owned(),
            step: m.step.clone(),
            kind: m.kind.clone(),
            channel_index: m.channel_index,
            recipient: m.recipient.clone(),
            state: m.state.into(),
            sent_at: m.sent_at.into(),
            updated_at: m.updated_at.into(),
            error: m.error.clone(),
        }
    }
}

impl TryFrom<StoredSentMessage> for SentMessage {
    type Error = BadField;
    fn try_from(s: StoredSentMessage) -> Result<Self, BadField> {
        Ok(SentMessage {
            provider: s.provider,
            provider_message_id: s.provider_message_id,
            reminder_id: ReminderId::from_bytes(s.reminder_id),
            invoice_id: invoice_id(s.invoice_id, "invoice_id")?,
            client_id: client_id(s.client_id, "client_id")?,
            step: s.step,
            kind: s.kind,
            channel_index: s.channel_index,
            recipient: s.recipient,
            state: s.state.into(),
            sent_at: s.sent_at.get("sent_at")?,
            updated_at: s.updated_at.get("updated_at")?,
            error: s.error,
        })
    }
}

impl From<ContactEventKind> for StoredContactEventKind {
    fn from(k: ContactEventKind) -> Self {
        match k {
            ContactEventKind::Inbound => StoredContactEventKind::Inbound,
            ContactEventKind::OptOut => StoredContactEventKind::OptOut,
            ContactEventKind::OptIn => StoredContactEventKind::OptIn,
            ContactEventKind::Unreachable => StoredContactEventKind::Unreachable,
            ContactEventKind::Note => StoredContactEventKind::Note,
        }
    }
}

impl From<StoredContactEventKind> for ContactEventKind {
    fn from(k: StoredContactEventKind) -> Self {
        match k {
            StoredContactEventKind::Inbound => ContactEventKind::Inbound,
            StoredContactEventKind::OptOut => ContactEventKind::OptOut,
            StoredContactEventKind::OptIn => ContactEventKind::OptIn,
            StoredContactEventKind::Unreachable => ContactEventKind::Unreachable,
            StoredContactEventKind::Note => ContactEventKind::Note,
        }
    }
}

impl From<&ContactEvent> for StoredContactEvent {
    fn from(e: &ContactEvent) -> Self {
        StoredContactEvent {
            at: e.at.into(),
            client_id: e.client_id.as_str().to_owned(),
            event: e.event.into(),
            channel: e.channel.clone(),
            address: e.address.clone(),
            text: e.text.clone(),
            provider_message_id: e.provider_message_id.clone(),
            detail: e.detail.clone(),
        }
    }
}

impl TryFrom<StoredContactEvent> for ContactEvent {
    type Error = BadField;
    fn try_from(s: StoredContactEvent) -> Result<Self, BadField> {
        Ok(ContactEvent {
            at: s.at.get("at")?,
            client_id: client_id(s.client_id, "client_id")?,
            event: s.event.into(),
            channel: s.channel,
            address: s.address,
            text: s.text,
            provider_message_id: s.provider_message_id,
            detail: s.detail,
        })
    }
}
