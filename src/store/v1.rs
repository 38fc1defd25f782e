//! Schema 1, the layout of releases before store v2: one sled tree per record kind, JSON values
//! (serde_json of the domain types). Kept only to migrate such a store (`migrate.rs`) and, in
//! tests, to write one exactly as those releases did.
//!
//! | tree          | key                                             | value                        |
//! |---------------|-------------------------------------------------|------------------------------|
//! | `meta`        | `schema_version`                                | u32 big-endian (1)           |
//! | `clients`     | client id                                       | `Client` (JSON)              |
//! | `invoices`    | invoice id                                      | `Invoice` (JSON)             |
//! | `reminders`   | reminder id (16 bytes)                          | `Reminder` (JSON)            |
//! | `due`         | fire time (8 bytes) ++ reminder id (16 bytes)   | empty                        |
//! | `inflight`    | reminder id                                     | empty                        |
//! | `log`         | invoice id ++ 0x00 ++ sequence (u64 big-endian) | `Attempt` (JSON)             |
//! | `log_by_time` | time (8 bytes) ++ sequence                      | the `log` key                |
//! | `webhooks`    | delivery id                                     | `Timestamp` (JSON)           |
//! | `contacts`    | normalised address                              | `Contact` (JSON)             |
//! | `messages`    | `provider:message-id`                           | `SentMessage` (JSON)         |
//! | `client_log`  | client id ++ 0x00 ++ sequence (u64 big-endian)  | `ContactEvent` (JSON)        |
//! | `inbox`       | `provider:event-id`                             | `InboxEntry` (JSON)          |
//! | `inbox_queue` | `provider:event-id`                             | next attempt, `Timestamp` (JSON) |
//! | `numbers`     | invoice number                                  | `InvoiceId` (JSON)           |
//!
//! Keys are the same bytes as schema 2's keys after the slot byte (`keys.rs`).

use serde::de::DeserializeOwned;

use super::slot;

/// The schema version of this layout.
pub(crate) const VERSION: u32 = 1;

/// What the values of a schema-1 record tree hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Client` JSON under a client id.
    Client,
    /// `Invoice` JSON under an invoice id.
    Invoice,
    /// `Reminder` JSON under a reminder id.
    Reminder,
    /// The due index: empty values under due keys.
    Due,
    /// The in-flight set: empty values under reminder ids.
    Inflight,
    /// `Attempt` JSON under log keys.
    Log,
    /// The time index of the log: log keys under time keys (not migrated).
    LogByTime,
    /// Processing time (`Timestamp` JSON) under delivery ids.
    Webhook,
    /// `Contact` JSON under addresses.
    Contact,
    /// `SentMessage` JSON under `provider:message-id`.
    Message,
    /// `ContactEvent` JSON under client log keys.
    ClientLog,
    /// `InboxEntry` JSON under `provider:event-id`.
    Inbox,
    /// Next attempt (`Timestamp` JSON) under `provider:event-id`.
    InboxQueue,
    /// `InvoiceId` JSON under invoice numbers.
    Number,
}

/// A schema-1 record tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tree {
    /// The sled tree's name.
    pub(crate) name: &'static str,
    /// What it holds.
    pub(crate) kind: Kind,
    /// The slot byte of its records in schema 2's keyspace; `None`: not migrated.
    pub(crate) slot: Option<u8>,
}

const fn tree(name: &'static str, kind: Kind, slot: Option<u8>) -> Tree {
    Tree { name, kind, slot }
}

/// Every record tree of schema 1 (all but `meta`), in schema 2's slot order.
pub(crate) const TREES: [Tree; 14] = [
    tree("clients", Kind::Client, Some(slot::CLIENTS)),
    tree("invoices", Kind::Invoice, Some(slot::INVOICES)),
    tree("reminders", Kind::Reminder, Some(slot::REMINDERS)),
    tree("due", Kind::Due, Some(slot::DUE)),
    tree("inflight", Kind::Inflight, Some(slot::INFLIGHT)),
    tree("log", Kind::Log, Some(slot::LOG)),
    // Schema 2 keeps hourly tallies (rebuilt from `log` by the migration) instead.
    tree("log_by_time", Kind::LogByTime, None),
    tree("webhooks", Kind::Webhook, Some(slot::WEBHOOKS)),
    tree("contacts", Kind::Contact, Some(slot::CONTACTS)),
    tree("messages", Kind::Message, Some(slot::MESSAGES)),
    tree("client_log", Kind::ClientLog, Some(slot::CLIENT_LOG)),
    tree("inbox", Kind::Inbox, Some(slot::INBOX)),
    tree("inbox_queue", Kind::InboxQueue, Some(slot::INBOX_QUEUE)),
    tree("numbers", Kind::Number, Some(slot::NUMBERS)),
];

/// Decodes a schema-1 JSON value.
pub(crate) fn decode_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, String> {
    serde_json::from_slice(raw).map_err(|e| format!("schema-1 JSON value does not decode: {e}"))
}

/// Checks the empty value of the index trees (`due`, `inflight`).
pub(crate) fn decode_empty(raw: &[u8]) -> Result<(), String> {
    if raw.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "expected an empty value, found {} bytes",
            raw.len()
        ))
    }
}

/// Decodes the schema version stored in `meta` (a big-endian u32).
pub(crate) fn decode_version(raw: &[u8]) -> Result<u32, String> {
    let b: [u8; 4] = raw
        .try_into()
        .map_err(|_| format!("expected 4 bytes, found {}", raw.len()))?;
    Ok(u32::from_be_bytes(b))
}

/// The records of [`sample`] (`v1_sample.rs`, shared with the fixture's generator).
#[cfg(test)]
pub(crate) mod sample {
    use std::collections::BTreeMap;

    use jiff::Timestamp;
    use jiff::civil::Date;
    use rust_decimal::Decimal;

    use crate::domain::*;
    use crate::payments::{InvoiceRefs, ProviderEvent, ProviderEventKind};

    include!("v1_sample.rs");
}

/// Writes a schema-1 store as the schema-1 releases did (tests).
#[cfg(test)]
pub(crate) mod write {
    use serde::Serialize;

    use super::super::keys::{ClientLogKey, DUE_LEN, DueKey, KeyCodec, LogKey, TimeKey};
    use super::sample::Sample;
    use super::{TREES, VERSION};
    use crate::domain::{Contact, ReminderState};

    /// Opens every schema-1 tree and writes `meta/schema_version` = 1, as `Store::open` of
    /// schema 1 did on a new directory.
    pub(crate) fn create(db: &sled::Db) {
        let meta = db.open_tree("meta").unwrap();
        for t in TREES {
            db.open_tree(t.name).unwrap();
        }
        meta.insert("schema_version", &VERSION.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }

    /// Writes `value` as JSON at `key` of tree `tree`.
    pub(crate) fn put<T: Serialize>(db: &sled::Db, tree: &str, key: &[u8], value: &T) {
        let json = serde_json::to_vec(value).unwrap();
        db.open_tree(tree).unwrap().insert(key, json).unwrap();
    }

    /// Writes raw bytes at `key` of tree `tree`.
    pub(crate) fn put_raw(db: &sled::Db, tree: &str, key: &[u8], value: &[u8]) {
        db.open_tree(tree).unwrap().insert(key, value).unwrap();
    }

    /// Writes the sample exactly as the fixture's generator does through the schema-1 store:
    /// one transaction writing everything, then a claim at `claim_at`.
    pub(crate) fn sample(db: &sled::Db, s: &Sample) {
        create(db);
        for c in &s.clients {
            put(db, "clients", &c.id.encode(), c);
        }
        for i in &s.invoices {
            put(db, "invoices", &i.id.encode(), i);
            put(db, "numbers", i.number.trim().as_bytes(), &i.id);
        }
        for r in s.scheduled.iter().chain([&s.claimed]) {
            put(db, "reminders", &r.id.encode(), r);
            let due = DueKey {
                at: r.fire_at,
                id: r.id,
                invoice: r.invoice_id.clone(),
            };
            put_raw(db, "due", &due.encode()[..DUE_LEN], &[]);
        }
        for a in &s.attempts {
            let seq = db.generate_id().unwrap();
            let key = LogKey {
                invoice: a.invoice_id.clone(),
                seq,
            };
            put(db, "log", &key.encode(), a);
            let by_time = TimeKey { at: a.at, seq };
            put_raw(db, "log_by_time", &by_time.encode(), &key.encode());
        }
        for (id, at) in &s.webhooks {
            put(db, "webhooks", id.as_bytes(), at);
        }
        for c in &s.contacts {
            put(db, "contacts", Contact::normalize(&c.address).as_bytes(), c);
        }
        for m in &s.messages {
            let key = format!("{}:{}", m.provider, m.provider_message_id);
            put(db, "messages", key.as_bytes(), m);
        }
        for e in &s.events {
            let key = ClientLogKey {
                client: e.client_id.clone(),
                seq: db.generate_id().unwrap(),
            };
            put(db, "client_log", &key.encode(), e);
        }
        for e in &s.inbox {
            put(db, "inbox", e.key.as_bytes(), e);
            if !e.state.is_final() {
                put(db, "inbox_queue", e.key.as_bytes(), &e.next_attempt_at);
            }
        }
        // The claim: out of the due index, `Claimed`, into the in-flight set.
        let r = &s.claimed;
        let due = DueKey {
            at: r.fire_at,
            id: r.id,
            invoice: r.invoice_id.clone(),
        };
        db.open_tree("due")
            .unwrap()
            .remove(&due.encode()[..DUE_LEN])
            .unwrap();
        let mut claimed = r.clone();
        claimed.state = ReminderState::Claimed;
        put(db, "reminders", &r.id.encode(), &claimed);
        put_raw(db, "inflight", &r.id.encode(), &[]);
        db.flush().unwrap();
    }
}
