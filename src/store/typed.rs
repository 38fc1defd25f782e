//! Typed trees: a sled tree bound to one key type and one value type, so a tree cannot be read
//! with the wrong type, and every decode failure becomes [`StoreError::Corrupt`].

use std::marker::PhantomData;
use std::ops::RangeBounds;

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::fail::TxFail;
use super::keys::{KeyCodec, describe_raw};
use super::writer::Ctx;
use crate::domain::{
    Attempt, Client, Contact, ContactEvent, InboxEntry, Invoice, InvoiceId, Reminder, SentMessage,
};

/// A value that can be stored in a tree.
pub(crate) trait ValueCodec: Sized {
    /// The value as bytes.
    fn encode(&self) -> Result<Vec<u8>, String>;
    /// Rebuilds the value, explaining what is wrong when it cannot.
    fn decode(raw: &[u8]) -> Result<Self, String>;
}

fn json_encode<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(v).map_err(|e| e.to_string())
}

fn json_decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, String> {
    serde_json::from_slice(raw).map_err(|e| e.to_string())
}

macro_rules! json_value {
    ($($t:ty),*) => {$(
        impl ValueCodec for $t {
            fn encode(&self) -> Result<Vec<u8>, String> {
                json_encode(self)
            }
            fn decode(raw: &[u8]) -> Result<Self, String> {
                json_decode(raw)
            }
        }
    )*};
}

json_value!(
    Client,
    Invoice,
    Reminder,
    Attempt,
    Timestamp,
    Contact,
    SentMessage,
    ContactEvent,
    InboxEntry,
    InvoiceId
);

/// The empty value of index trees (`due`, `inflight`).
impl ValueCodec for () {
    fn encode(&self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        if raw.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "expected an empty value, found {} bytes",
                raw.len()
            ))
        }
    }
}

/// The schema version in `meta`: a big-endian u32.
impl ValueCodec for u32 {
    fn encode(&self) -> Result<Vec<u8>, String> {
        Ok(self.to_be_bytes().to_vec())
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        let b: [u8; 4] = raw
            .try_into()
            .map_err(|_| format!("expected 4 bytes, found {}", raw.len()))?;
        Ok(u32::from_be_bytes(b))
    }
}

/// Index entries whose value is the key of another tree.
impl ValueCodec for super::keys::LogKey {
    fn encode(&self) -> Result<Vec<u8>, String> {
        Ok(KeyCodec::encode(self))
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        <Self as KeyCodec>::decode(raw)
    }
}

/// Marks a tree's key and value types (without owning either).
type Types<K, V> = PhantomData<fn(K, V) -> (K, V)>;

/// A sled tree holding keys `K` and values `V`.
pub(crate) struct TypedTree<K, V> {
    tree: sled::Tree,
    name: &'static str,
    _types: Types<K, V>,
}

impl<K, V> Clone for TypedTree<K, V> {
    fn clone(&self) -> Self {
        TypedTree {
            tree: self.tree.clone(),
            name: self.name,
            _types: PhantomData,
        }
    }
}

pub(crate) fn corrupt(tree: &'static str, key: String, reason: String) -> StoreError {
    StoreError::Corrupt { tree, key, reason }
}

impl<K: KeyCodec, V: ValueCodec> TypedTree<K, V> {
    /// Opens (or creates) tree `name`.
    pub(crate) fn open(db: &sled::Db, name: &'static str) -> Result<Self, StoreError> {
        let tree = db.open_tree(name).map_err(|source| StoreError::Storage {
            op: "open tree",
            source,
        })?;
        Ok(TypedTree {
            tree,
            name,
            _types: PhantomData,
        })
    }

    /// The tree's name.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The underlying sled tree (for transactions and raw maintenance).
    pub(crate) fn raw(&self) -> &sled::Tree {
        &self.tree
    }

    /// Decodes one raw entry.
    pub(crate) fn decode_entry(&self, k: &[u8], v: &[u8]) -> Result<(K, V), StoreError> {
        let key = K::decode(k).map_err(|r| corrupt(self.name, describe_raw(k), r))?;
        let value = V::decode(v).map_err(|r| corrupt(self.name, key.describe(), r))?;
        Ok((key, value))
    }

    /// The value at `key`.
    pub(crate) fn get(&self, key: &K, op: &'static str) -> Result<Option<V>, StoreError> {
        match self
            .tree
            .get(key.encode())
            .map_err(|source| StoreError::Storage { op, source })?
        {
            None => Ok(None),
            Some(raw) => V::decode(&raw)
                .map(Some)
                .map_err(|r| corrupt(self.name, key.describe(), r)),
        }
    }

    /// Writes `value` at `key` outside any transaction.
    pub(crate) fn insert(&self, key: &K, value: &V, op: &'static str) -> Result<(), StoreError> {
        let bytes = value.encode().map_err(|reason| StoreError::Encode {
            tree: self.name,
            key: key.describe(),
            reason,
        })?;
        self.tree
            .insert(key.encode(), bytes)
            .map_err(|source| StoreError::Storage { op, source })?;
        Ok(())
    }

    /// The first entry in key order.
    pub(crate) fn first(&self, op: &'static str) -> Result<Option<(K, V)>, StoreError> {
        match self
            .tree
            .first()
            .map_err(|source| StoreError::Storage { op, source })?
        {
            None => Ok(None),
            Some((k, v)) => self.decode_entry(&k, &v).map(Some),
        }
    }

    /// Entries whose encoded key falls in `range`, in key order; decode failures are errors.
    pub(crate) fn range<R>(
        &self,
        range: R,
        op: &'static str,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + '_
    where
        R: RangeBounds<Vec<u8>>,
    {
        self.decode_iter(self.tree.range(range), op)
    }

    /// Entries whose encoded key starts with `prefix`, in key order.
    pub(crate) fn scan_prefix(
        &self,
        prefix: Vec<u8>,
        op: &'static str,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + '_ {
        self.decode_iter(self.tree.scan_prefix(prefix), op)
    }

    /// Every entry, in key order.
    pub(crate) fn iter(
        &self,
        op: &'static str,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + '_ {
        self.decode_iter(self.tree.iter(), op)
    }

    fn decode_iter(
        &self,
        it: sled::Iter,
        op: &'static str,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + '_ {
        it.map(move |entry| {
            let (k, v) = entry.map_err(|source| StoreError::Storage { op, source })?;
            self.decode_entry(&k, &v)
        })
    }

    /// Number of entries (a scan: O(n)).
    pub(crate) fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the tree holds no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

/// A typed view of one tree inside a writer command: reads see the command's own writes and
/// the batch's, writes go to the command's overlay (see `writer.rs`).
pub(crate) struct TxTree<'a, K, V> {
    ctx: &'a Ctx<'a>,
    slot: u8,
    name: &'static str,
    _types: Types<K, V>,
}

impl<'a, K: KeyCodec, V: ValueCodec> TxTree<'a, K, V> {
    /// The view of tree number `slot` (named `name` in errors) through `ctx`.
    pub(crate) fn new(ctx: &'a Ctx<'a>, slot: u8, name: &'static str) -> Self {
        TxTree {
            ctx,
            slot,
            name,
            _types: PhantomData,
        }
    }

    /// The value at `key`, as seen by this command.
    pub(crate) fn get(&self, key: &K) -> Result<Option<V>, TxFail> {
        match self.ctx.get(self.slot, &key.encode())? {
            None => Ok(None),
            Some(raw) => V::decode(&raw)
                .map(Some)
                .map_err(|r| TxFail::corrupt(self.name, key.describe(), r)),
        }
    }

    /// Whether `key` is present, without decoding its value.
    pub(crate) fn contains(&self, key: &K) -> Result<bool, TxFail> {
        Ok(self.ctx.get(self.slot, &key.encode())?.is_some())
    }

    /// Writes `value` at `key`.
    pub(crate) fn insert(&self, key: &K, value: &V) -> Result<(), TxFail> {
        let bytes = value
            .encode()
            .map_err(|r| TxFail::encode(self.name, key.describe(), r))?;
        self.ctx.put(self.slot, &key.encode(), Some(bytes));
        Ok(())
    }

    /// Removes `key`; true if it was present (nothing is written when it was not).
    pub(crate) fn remove(&self, key: &K) -> Result<bool, TxFail> {
        let raw = key.encode();
        let present = self.ctx.get(self.slot, &raw)?.is_some();
        if present {
            self.ctx.put(self.slot, &raw, None);
        }
        Ok(present)
    }

    /// A store-wide monotonic id (sled's `generate_id`).
    pub(crate) fn generate_id(&self) -> Result<u64, TxFail> {
        self.ctx.generate_id()
    }
}
