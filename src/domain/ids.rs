use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why an identifier was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// The identifier was empty.
    #[error("{kind} id must not be empty")]
    Empty {
        /// Which kind of id.
        kind: &'static str,
    },
    /// The identifier was longer than 128 bytes.
    #[error("{kind} id is {len} bytes long; the maximum is 128")]
    TooLong {
        /// Which kind of id.
        kind: &'static str,
        /// Its length.
        len: usize,
    },
    /// The identifier contained a character outside `[A-Za-z0-9._:-]`.
    #[error("{kind} id {id:?} contains {ch:?}; use only letters, digits, '.', '_', ':' and '-'")]
    BadChar {
        /// Which kind of id.
        kind: &'static str,
        /// The id.
        id: String,
        /// The offending character.
        ch: char,
    },
}

fn validate(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > 128 {
        return Err(IdError::TooLong { kind, len: s.len() });
    }
    if let Some(ch) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(IdError::BadChar {
            kind,
            id: s.to_owned(),
            ch,
        });
    }
    Ok(())
}

macro_rules! string_id {
    ($name:ident, $kind:literal, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Chosen by the system that pushes the data (ERP, billing); 1–128 characters from
        /// `[A-Za-z0-9._:-]`, so it is safe in URLs, file names and store keys.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate($kind, &s)?;
                Ok(Self(s))
            }
            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(ClientId, "client", "Identifier of a client (debtor).");
string_id!(InvoiceId, "invoice", "Identifier of an invoice.");

/// Identifier of one planned reminder: deterministic from (invoice, plan generation, step index),
/// so planning the same step twice yields the same id and cannot produce a second message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReminderId(pub uuid::Uuid);

impl ReminderId {
    /// The id of step `step` of generation `generation` of `invoice`'s plan.
    pub fn derive(invoice: &InvoiceId, generation: u32, step: u32) -> Self {
        let mut h = Sha256::new();
        h.update(b"plazo-reminder\0");
        h.update(invoice.as_str().as_bytes());
        h.update([0]);
        h.update(generation.to_be_bytes());
        h.update(step.to_be_bytes());
        let digest = h.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        ReminderId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
    /// The id of step `step` of `track` (see [`crate::domain::Track`]). The regular cadence
    /// keeps [`ReminderId::derive`]; a promise or plan step is named by its arrangement,
    /// instalment and step and not by the generation, so a due-date change never sends an
    /// arrangement step twice.
    pub fn for_track(
        invoice: &InvoiceId,
        generation: u32,
        track: &crate::domain::Track,
        step: u32,
    ) -> Self {
        use crate::domain::Track;
        let (tag, arrangement, instalment, step) = match *track {
            Track::Cadence => return Self::derive(invoice, generation, step),
            Track::Instalment {
                arrangement,
                instalment,
            } => (1u8, arrangement, instalment, step),
            Track::Deadline {
                arrangement,
                instalment,
            } => (2u8, arrangement, instalment, u32::MAX),
            Track::Broken { arrangement } => (3u8, arrangement, 0, step),
            // One per invoice, whatever the generation: never thanked twice.
            Track::ThankYou => (4u8, 0, 0, 0),
        };
        let mut h = Sha256::new();
        h.update(b"plazo-arrangement\0");
        h.update(invoice.as_str().as_bytes());
        h.update([0, tag]);
        h.update(arrangement.to_be_bytes());
        h.update(instalment.to_be_bytes());
        h.update(step.to_be_bytes());
        let digest = h.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        ReminderId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
    /// The 16 bytes used in store keys.
    pub fn to_bytes(self) -> [u8; 16] {
        *self.0.as_bytes()
    }
    /// Rebuilds an id from store-key bytes.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        ReminderId(uuid::Uuid::from_bytes(b))
    }
}

impl fmt::Display for ReminderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_bad_input() {
        assert!(ClientId::new("c-1").is_ok());
        assert_eq!(ClientId::new(""), Err(IdError::Empty { kind: "client" }));
        assert!(matches!(
            InvoiceId::new("a/b"),
            Err(IdError::BadChar { ch: '/', .. })
        ));
        assert!(matches!(
            InvoiceId::new("x".repeat(129)),
            Err(IdError::TooLong { len: 129, .. })
        ));
        let err: Result<ClientId, _> = serde_json::from_str("\"a b\"");
        assert!(err.is_err());
    }

    #[test]
    fn reminder_ids_are_deterministic_and_distinct() {
        let inv = InvoiceId::new("INV-1").unwrap();
        let a = ReminderId::derive(&inv, 0, 1);
        assert_eq!(a, ReminderId::derive(&inv, 0, 1));
        assert_ne!(a, ReminderId::derive(&inv, 0, 2));
        assert_ne!(a, ReminderId::derive(&inv, 1, 1));
        assert_ne!(
            a,
            ReminderId::derive(&InvoiceId::new("INV-2").unwrap(), 0, 1)
        );
        assert_eq!(ReminderId::from_bytes(a.to_bytes()), a);
    }
}
