//! [`TxFail`]: the store's own failures inside a transaction. Its own module so that the
//! typed trees (`typed.rs`) and the transaction (`tx.rs`) both use it without importing each
//! other.

use std::fmt;

use sled::transaction::UnabortableTransactionError;

/// A failure of the store itself inside a transaction: a conflict (the closure is retried), a
/// storage error, or a record that failed to decode or encode.
///
/// Every [`Tx`](super::Tx) method returns it; propagate it with `?` (it converts into [`TxError`](super::TxError)). It is
/// opaque on purpose: [`Store::transaction`](super::Store::transaction) turns it into the right
/// [`StoreError`](super::StoreError) or retries.
#[derive(Debug)]
pub struct TxFail(pub(crate) FailKind);

#[derive(Debug)]
pub(crate) enum FailKind {
    Conflict,
    Storage(sled::Error),
    Corrupt {
        tree: &'static str,
        key: String,
        reason: String,
    },
    Encode {
        tree: &'static str,
        key: String,
        reason: String,
    },
}

impl TxFail {
    pub(crate) fn corrupt(tree: &'static str, key: String, reason: String) -> Self {
        TxFail(FailKind::Corrupt { tree, key, reason })
    }
    pub(crate) fn encode(tree: &'static str, key: String, reason: String) -> Self {
        TxFail(FailKind::Encode { tree, key, reason })
    }
}

impl fmt::Display for TxFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            FailKind::Conflict => f.write_str("transaction conflict"),
            FailKind::Storage(e) => write!(f, "storage error in transaction: {e}"),
            FailKind::Corrupt { tree, key, reason } => {
                write!(f, "corrupt record in tree `{tree}` at key {key}: {reason}")
            }
            FailKind::Encode { tree, key, reason } => {
                write!(
                    f,
                    "cannot encode record for tree `{tree}` at key {key}: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for TxFail {}

impl From<UnabortableTransactionError> for TxFail {
    fn from(e: UnabortableTransactionError) -> Self {
        match e {
            UnabortableTransactionError::Conflict => TxFail(FailKind::Conflict),
            UnabortableTransactionError::Storage(e) => TxFail(FailKind::Storage(e)),
        }
    }
}

impl From<sled::Error> for TxFail {
    fn from(e: sled::Error) -> Self {
        TxFail(FailKind::Storage(e))
    }
}
