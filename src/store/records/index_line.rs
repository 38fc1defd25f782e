//! The value of a client's invoice index entry ([`IndexLine`]): empty for entries written
//! before the index kept lines (read back as [`IndexLine::Unknown`]), else a version byte and
//! an optional [`StoredOpenLine`] (none: the invoice is settled).

use serde::{Deserialize, Serialize};

use super::prim::{BadField, StoredCurrency, StoredDecimal, StoredDue};
use super::{
    Record, RecordError, decode_body, encode_body, expect_version, invalid, split_version,
};
use crate::domain::{IndexLine, OpenLine};

/// [`OpenLine`] on disk, layout version 1 (same rules as every storage struct: never reorder
/// or remove fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredOpenLine {
    number: String,
    currency: StoredCurrency,
    balance: StoredDecimal,
    due_at: StoredDue,
    payment_url: Option<String>,
}

impl From<&OpenLine> for StoredOpenLine {
    fn from(l: &OpenLine) -> Self {
        StoredOpenLine {
            number: l.number.clone(),
            currency: l.currency.into(),
            balance: l.balance.into(),
            due_at: l.due_at.into(),
            payment_url: l.payment_url.clone(),
        }
    }
}

impl TryFrom<StoredOpenLine> for OpenLine {
    type Error = BadField;
    fn try_from(s: StoredOpenLine) -> Result<Self, BadField> {
        Ok(OpenLine {
            number: s.number,
            currency: s.currency.get("currency")?,
            balance: s.balance.get("balance")?,
            due_at: s.due_at.get("due_at")?,
            payment_url: s.payment_url,
        })
    }
}

impl Record for IndexLine {
    const KIND: &'static str = "client index line";
    const VERSION: u8 = 1;
    fn encode(&self) -> Result<Vec<u8>, RecordError> {
        match self {
            IndexLine::Unknown => Ok(Vec::new()),
            IndexLine::Settled => encode_body(Self::KIND, Self::VERSION, &None::<StoredOpenLine>),
            IndexLine::Open(l) => {
                encode_body(Self::KIND, Self::VERSION, &Some(StoredOpenLine::from(l)))
            }
        }
    }
    fn decode(raw: &[u8]) -> Result<Self, RecordError> {
        if raw.is_empty() {
            return Ok(IndexLine::Unknown);
        }
        let (version, body) = split_version(Self::KIND, raw)?;
        expect_version(Self::KIND, version, Self::VERSION)?;
        let stored: Option<StoredOpenLine> = decode_body(Self::KIND, version, body)?;
        match stored {
            None => Ok(IndexLine::Settled),
            Some(s) => OpenLine::try_from(s)
                .map(IndexLine::Open)
                .map_err(invalid(Self::KIND, version)),
        }
    }
}
