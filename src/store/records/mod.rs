//! Compact binary records: how each domain value is laid out on disk.
//!
//! # Layout rules
//!
//! Every stored value is one **version byte** followed by a [postcard] body:
//!
//! ```text
//! [version: u8] [postcard(StoredX)]
//! ```
//!
//! - The body is a *storage struct* (`StoredInvoice`, `StoredReminder`...), separate from the
//!   API's JSON shape. The domain types carry `skip_serializing_if`, internally tagged enums
//!   (`Track`, `InboxPayload`), decimals as strings and instants as RFC 3339 text: right for
//!   JSON, but they break (or silently corrupt) a format that is not self-describing, and they
//!   are large. The API may reshape its JSON freely; the disk layout changes only with a new
//!   version byte. Storage structs use only plain fields, `Option`, `Vec`, `BTreeMap` and
//!   externally tagged enums (no `skip_serializing_if`, `flatten`, untagged or internally
//!   tagged enums, nothing that needs `deserialize_any`), so postcard reads back exactly what
//!   it wrote.
//! - Postcard writes fields in declaration order, with no names: **a field's position is its
//!   identity**. Never reorder, remove or insert fields, or enum variants, of a storage struct
//!   whose version has been released. Nested storage structs (`StoredPayment`,
//!   `StoredArrangement`, `StoredDeliveryState`...) are part of the layout of every record
//!   that embeds them: changing one means a new version of each of those records.
//! - Compact primitives ([`prim`]): instants as nanoseconds since the Unix epoch (a zig-zag
//!   varint, exact to the nanosecond jiff keeps), dates as (year, month, day), decimals as
//!   (magnitude, scale and sign) so scale and sign survive exactly, uuids as 16 raw bytes,
//!   currencies as their 3-letter code, enums as a varint variant index.
//! - Decoding validates what the domain validates at construction (ids, currencies, dates,
//!   decimal ranges): a failure is a [`RecordError`], never a panic. Trailing bytes and unknown
//!   versions are refused.
//!
//! # Adding a field (or changing a layout)
//!
//! 1. Keep the current storage struct as it is, renamed with its version (`StoredInvoiceV1`).
//! 2. Write the new struct and bump the kind's `VERSION` (encode always writes the newest).
//! 3. In the kind's `decode`, match on the version byte: the newest decodes directly; each
//!    older one decodes its own struct and converts (`From<StoredInvoiceV1> for
//!    StoredInvoice`, filling the new field with its default).
//! 4. Pin the new layout with a golden test (see `tests.rs`), keeping the old golden bytes as a
//!    decode test of the old version.
//!
//! A record written by a newer build (a higher version byte) is refused with
//! [`RecordError::UnknownVersion`], naming the kind and both versions.
//!
//! [postcard]: https://docs.rs/postcard

mod attempt;
mod client;
mod contact;
mod event;
mod inbox;
mod index_line;
mod invoice;
mod invoice_record;
mod prim;
mod reminder;
mod task;

#[cfg(test)]
mod tests;

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::{
    Attempt, Client, Contact, ContactEvent, InboxEntry, Invoice, InvoiceId, OutboundEvent,
    Reminder, SentMessage, Task,
};

pub(crate) use attempt::StoredAttempt;
pub(crate) use client::StoredClient;
pub(crate) use contact::{StoredContact, StoredContactEvent, StoredSentMessage};
pub(crate) use event::StoredEvent;
pub(crate) use inbox::StoredInboxEntry;
pub(crate) use invoice::StoredInvoice;
pub(crate) use invoice_record::InvoiceRecord;
use invoice_record::StoredInvoiceRecord;
pub(crate) use prim::{BadField, StoredTime};
pub(crate) use reminder::StoredReminder;
pub(crate) use task::StoredTask;

/// Why a record could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordError {
    /// The value was empty: not even a version byte.
    #[error("empty {kind} record: expected a version byte and a body")]
    Empty {
        /// The record kind (`invoice`).
        kind: &'static str,
    },
    /// The version byte names a layout this build does not know (written by a newer plazo, or
    /// not a record at all).
    #[error(
        "{kind} record has layout version {found}, but this build reads version {expected}; it was written by a newer plazo (or is not a {kind} record)"
    )]
    UnknownVersion {
        /// The record kind.
        kind: &'static str,
        /// The version byte found.
        found: u8,
        /// The version this build reads and writes.
        expected: u8,
    },
    /// The body is not a valid postcard encoding of the storage struct.
    #[error("{kind} record (version {version}) is malformed: {reason}")]
    Malformed {
        /// The record kind.
        kind: &'static str,
        /// Its version byte.
        version: u8,
        /// Postcard's explanation.
        reason: String,
    },
    /// Bytes were left after the body.
    #[error("{kind} record (version {version}) has {count} unexpected bytes after its end")]
    TrailingBytes {
        /// The record kind.
        kind: &'static str,
        /// Its version byte.
        version: u8,
        /// How many bytes were left.
        count: usize,
    },
    /// The body decoded, but a field fails the domain's validation.
    #[error("{kind} record (version {version}) has an invalid {field}: {reason}")]
    Invalid {
        /// The record kind.
        kind: &'static str,
        /// Its version byte.
        version: u8,
        /// The field (`payments.amount`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The value could not be encoded.
    #[error("{kind} record could not be encoded: {reason}")]
    Encode {
        /// The record kind.
        kind: &'static str,
        /// Postcard's explanation.
        reason: String,
    },
}

/// A domain value the store keeps, with its binary layout.
pub(crate) trait Record: Sized {
    /// The record kind, named in errors (`invoice`).
    const KIND: &'static str;
    /// The layout version written by [`Record::encode`] (the first byte).
    const VERSION: u8;
    /// The value as bytes: the version byte, then the postcard body.
    fn encode(&self) -> Result<Vec<u8>, RecordError>;
    /// Rebuilds the value, refusing unknown versions, malformed bodies, trailing bytes and
    /// values the domain would not accept. Never panics, whatever the input.
    fn decode(raw: &[u8]) -> Result<Self, RecordError>;
}

/// Writes `version` then the postcard body of `stored`.
fn encode_body<S: Serialize>(
    kind: &'static str,
    version: u8,
    stored: &S,
) -> Result<Vec<u8>, RecordError> {
    postcard::to_extend(stored, vec![version]).map_err(|e| RecordError::Encode {
        kind,
        reason: e.to_string(),
    })
}

/// Splits off the version byte.
fn split_version<'a>(kind: &'static str, raw: &'a [u8]) -> Result<(u8, &'a [u8]), RecordError> {
    match raw.split_first() {
        Some((v, body)) => Ok((*v, body)),
        None => Err(RecordError::Empty { kind }),
    }
}

/// Decodes the whole of `body` as `S` (a body of layout `version`), refusing trailing bytes.
fn decode_body<S: DeserializeOwned>(
    kind: &'static str,
    version: u8,
    body: &[u8],
) -> Result<S, RecordError> {
    let (stored, rest) =
        postcard::take_from_bytes::<S>(body).map_err(|e| RecordError::Malformed {
            kind,
            version,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(RecordError::TrailingBytes {
            kind,
            version,
            count: rest.len(),
        });
    }
    Ok(stored)
}

/// Refuses a layout version other than the only one a kind has.
fn expect_version(kind: &'static str, found: u8, expected: u8) -> Result<(), RecordError> {
    if found == expected {
        Ok(())
    } else {
        Err(RecordError::UnknownVersion {
            kind,
            found,
            expected,
        })
    }
}

/// Turns a field's validation failure into a [`RecordError`].
fn invalid(kind: &'static str, version: u8) -> impl FnOnce(BadField) -> RecordError {
    move |b| RecordError::Invalid {
        kind,
        version,
        field: b.field,
        reason: b.reason,
    }
}

/// Implements [`Record`] for domain types whose only layout so far is version 1, stored as
/// `$stored` (which has `From<&$domain>` and `$domain: TryFrom<$stored, Error = BadField>`).
/// When a kind gets a version 2, replace its line by a hand-written impl (see the module docs).
macro_rules! record_v1 {
    ($($domain:ty => $stored:ty, $kind:literal;)*) => {$(
        impl Record for $domain {
            const KIND: &'static str = $kind;
            const VERSION: u8 = 1;
            fn encode(&self) -> Result<Vec<u8>, RecordError> {
                encode_body(Self::KIND, Self::VERSION, &<$stored>::from(self))
            }
            fn decode(raw: &[u8]) -> Result<Self, RecordError> {
                let (version, body) = split_version(Self::KIND, raw)?;
                expect_version(Self::KIND, version, Self::VERSION)?;
                let stored: $stored = decode_body(Self::KIND, version, body)?;
                <$domain>::try_from(stored).map_err(invalid(Self::KIND, version))
            }
        }
    )*};
}

/// Implements [`Record`] for a kind at layout version 2 (`$v2`), reading version 1 (`$v1`)
/// too through `From<$v1> for $v2`.
macro_rules! record_v2 {
    ($($domain:ty => $v1:ty, $v2:ty, $kind:literal;)*) => {$(
        impl Record for $domain {
            const KIND: &'static str = $kind;
            const VERSION: u8 = 2;
            fn encode(&self) -> Result<Vec<u8>, RecordError> {
                encode_body(Self::KIND, Self::VERSION, &<$v2>::from(self))
            }
            fn decode(raw: &[u8]) -> Result<Self, RecordError> {
                let (version, body) = split_version(Self::KIND, raw)?;
                let stored: $v2 = match version {
                    1 => decode_body::<$v1>(Self::KIND, version, body)?.into(),
                    2 => decode_body(Self::KIND, version, body)?,
                    _ => {
                        return Err(RecordError::UnknownVersion {
                            kind: Self::KIND,
                            found: version,
                            expected: Self::VERSION,
                        });
                    }
                };
                <$domain>::try_from(stored).map_err(invalid(Self::KIND, version))
            }
        }
    )*};
}

impl Record for Client {
    const KIND: &'static str = "client";
    const VERSION: u8 = 3;
    fn encode(&self) -> Result<Vec<u8>, RecordError> {
        encode_body(
            Self::KIND,
            Self::VERSION,
            &client::StoredClientV3::from(self),
        )
    }
    fn decode(raw: &[u8]) -> Result<Self, RecordError> {
        let (version, body) = split_version(Self::KIND, raw)?;
        let stored: client::StoredClientV3 = match version {
            1 => client::StoredClientV2::from(decode_body::<StoredClient>(
                Self::KIND,
                version,
                body,
            )?)
            .into(),
            2 => decode_body::<client::StoredClientV2>(Self::KIND, version, body)?.into(),
            3 => decode_body(Self::KIND, version, body)?,
            _ => {
                return Err(RecordError::UnknownVersion {
                    kind: Self::KIND,
                    found: version,
                    expected: Self::VERSION,
                });
            }
        };
        Client::try_from(stored).map_err(invalid(Self::KIND, version))
    }
}

record_v2! {
    Invoice => StoredInvoice, invoice::StoredInvoiceV2, "invoice";
    InvoiceRecord => StoredInvoiceRecord, invoice_record::StoredInvoiceRecordV2, "invoice record";
}

record_v1! {
    Reminder => StoredReminder, "reminder";
    Attempt => StoredAttempt, "attempt";
    Contact => StoredContact, "contact";
    SentMessage => StoredSentMessage, "sent message";
    ContactEvent => StoredContactEvent, "contact event";
    InboxEntry => StoredInboxEntry, "inbox entry";
    Timestamp => StoredTime, "timestamp";
    InvoiceId => prim::StoredInvoiceId, "invoice id";
    OutboundEvent => StoredEvent, "event";
    Task => StoredTask, "task";
}
