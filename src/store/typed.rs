//! Typed trees: a sled tree bound to one key type and one value type, so a tree cannot be read
//! with the wrong type, and every decode failure becomes [`StoreError::Corrupt`].

use std::marker::PhantomData;
use std::sync::Arc;

use jiff::Timestamp;

use super::StoreError;
use super::fail::TxFail;
use super::keys::{KeyCodec, describe_raw};
use super::kv::{Kv, KvIter, SledKv};
use super::overlay::Ctx;
use super::records::{InvoiceRecord, Record};
use crate::domain::{
    Attempt, Client, Contact, ContactEvent, InboxEntry, IndexLine, Invoice, InvoiceId,
    OutboundEvent, Reminder, SentMessage, Task,
};

/// A value that can be stored in a tree.
pub(crate) trait ValueCodec: Sized {
    /// The value as bytes.
    fn encode(&self) -> Result<Vec<u8>, String>;
    /// Rebuilds the value, explaining what is wrong when it cannot.
    fn decode(raw: &[u8]) -> Result<Self, String>;
}

/// Domain records: compact binary with a version byte (see `records`).
macro_rules! record_value {
    ($($t:ty),*) => {$(
        impl ValueCodec for $t {
            fn encode(&self) -> Result<Vec<u8>, String> {
                Record::encode(self).map_err(|e| e.to_string())
            }
            fn decode(raw: &[u8]) -> Result<Self, String> {
                <$t as Record>::decode(raw).map_err(|e| e.to_string())
            }
        }
    )*};
}

record_value!(
    Client,
    Invoice,
    InvoiceRecord,
    Reminder,
    Attempt,
    Timestamp,
    Contact,
    SentMessage,
    ContactEvent,
    InboxEntry,
    InvoiceId,
    OutboundEvent,
    Task,
    IndexLine
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

/// Raw bytes, stored as they are (the values of the store's own metadata markers).
impl ValueCodec for Vec<u8> {
    fn encode(&self) -> Result<Vec<u8>, String> {
        Ok(self.clone())
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        Ok(raw.to_vec())
    }
}

/// Tally counters: a big-endian u64.
impl ValueCodec for u64 {
    fn encode(&self) -> Result<Vec<u8>, String> {
        Ok(self.to_be_bytes().to_vec())
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        let b: [u8; 8] = raw
            .try_into()
            .map_err(|_| format!("expected 8 bytes, found {}", raw.len()))?;
        Ok(u64::from_be_bytes(b))
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

/// One logical tree: the keys of the store's keyspace that start with one slot byte, holding
/// keys `K` and values `V` (the `meta` tree is a sled tree of its own, with no slot byte).
pub(crate) struct TypedTree<K, V> {
    tree: Arc<dyn Kv>,
    /// The slot byte every key of this logical tree starts with; `None` for a tree of its own.
    slot: Option<u8>,
    name: &'static str,
    _types: Types<K, V>,
}

impl<K, V> Clone for TypedTree<K, V> {
    fn clone(&self) -> Self {
        TypedTree {
            tree: self.tree.clone(),
            slot: self.slot,
            name: self.name,
            _types: PhantomData,
        }
    }
}

pub(crate) fn corrupt(tree: &'static str, key: String, reason: String) -> StoreError {
    StoreError::Corrupt { tree, key, reason }
}

impl<K: KeyCodec, V: ValueCodec> TypedTree<K, V> {
    /// Opens (or creates) sled tree `name`, used whole.
    pub(crate) fn open(db: &sled::Db, name: &'static str) -> Result<Self, StoreError> {
        let tree = db.open_tree(name).map_err(|source| StoreError::Storage {
            op: "open tree",
            source,
        })?;
        Ok(Self::whole(
            Arc::new(SledKv {
                tree,
                db: db.clone(),
            }),
            name,
        ))
    }

    /// The key-value space `kv`, used whole, as tree `name`.
    pub(crate) fn whole(kv: Arc<dyn Kv>, name: &'static str) -> Self {
        TypedTree {
            tree: kv,
            slot: None,
            name,
            _types: PhantomData,
        }
    }

    /// The logical tree `name`: the keys of `keyspace` that start with `slot`.
    pub(crate) fn in_keyspace(keyspace: &Arc<dyn Kv>, slot: u8, name: &'static str) -> Self {
        TypedTree {
            tree: keyspace.clone(),
            slot: Some(slot),
            name,
            _types: PhantomData,
        }
    }

    /// The tree's name.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The stored key of `key` (slot byte first).
    fn full(&self, key: &[u8]) -> Vec<u8> {
        match self.slot {
            Some(slot) => {
                let mut k = Vec::with_capacity(key.len() + 1);
                k.push(slot);
                k.extend_from_slice(key);
                k
            }
            None => key.to_vec(),
        }
    }

    /// Decodes one raw entry (its key without the slot byte).
    pub(crate) fn decode_entry(&self, k: &[u8], v: &[u8]) -> Result<(K, V), StoreError> {
        let key = K::decode(k).map_err(|r| corrupt(self.name, describe_raw(k), r))?;
        let value = V::decode(v).map_err(|r| corrupt(self.name, key.describe(), r))?;
        Ok((key, value))
    }

    /// The value at `key`.
    pub(crate) fn get(&self, key: &K, op: &'static str) -> Result<Option<V>, StoreError> {
        match self
            .tree
            .get(&self.full(&key.encode()))
            .map_err(|source| StoreError::Storage { op, source })?
        {
            None => Ok(None),
            Some(raw) => V::decode(&raw)
                .map(Some)
                .map_err(|r| corrupt(self.name, key.describe(), r)),
        }
    }

    /// Writes `value` at `key` outside the writer (schema version and probes in `meta` only).
    pub(crate) fn insert(&self, key: &K, value: &V, op: &'static str) -> Result<(), StoreError> {
        let bytes = value.encode().map_err(|reason| StoreError::Encode {
            tree: self.name,
            key: key.describe(),
            reason,
        })?;
        self.tree
            .insert(&self.full(&key.encode()), &bytes)
            .map_err(|source| StoreError::Storage { op, source })?;
        Ok(())
    }

    /// The first entry in key order.
    pub(crate) fn first(&self, op: &'static str) -> Result<Option<(K, V)>, StoreError> {
        self.iter(op).next().transpose()
    }

    /// Entries whose encoded key (without the slot byte) falls in `lo..hi`, in key order.
    pub(crate) fn range(
        &self,
        lo: std::ops::Bound<Vec<u8>>,
        hi: std::ops::Bound<Vec<u8>>,
        op: &'static str,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + '_ {
        use std::ops::Bound;
        let lo = match lo {
            Bound::Included(k) => Bound::Included(self.full(&k)),
            Bound::Excluded(k) => Bound::Excluded(self.full(&k)),
            Bound::Unbounded => Bound::Included(self.full(&[])),
        };
        let hi = match hi {
            Bound::Included(k) => Bound::Included(self.full(&k)),
            Bound::Excluded(k) => Bound::Excluded(self.full(&k)),
            Bound::Unbounded => match self.slot {
                Some(slot) if slot < u8::MAX => Bound::Excluded(vec![slot + 1]),
                _ => Bound::Unbounded,
            },
        };
        self.decode_iter(self.tree.range(lo, hi, false), op)
    }

    /// Up to `limit` keys after `after` (exclusive; `None`: from the first), in key order,
    /// without reading or decoding their values.
    pub(crate) fn keys_after(
        &self,
        after: Option<&K>,
        limit: usize,
        op: &'static str,
    ) -> Result<Vec<K>, StoreError> {
        use std::ops::Bound;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lo = match after {
            Some(k) => Bound::Excluded(self.full(&k.encode())),
            None => Bound::Included(self.full(&[])),
        };
        let hi = match self.slot {
            Some(slot) if slot < u8::MAX => Bound::Excluded(vec![slot + 1]),
            _ => Bound::Unbounded,
        };
        let skip = usize::from(self.slot.is_some());
        self.tree
            .range(lo, hi, false)
            .take(limit)
            .map(|e| {
                let (k, _) = e.map_err(|source| StoreError::Storage { op, source })?;
                let raw = k.get(skip..).unwrap_or_default();
                K::decode(raw).map_err(|r| corrupt(self.name, describe_raw(raw), r))
            })
            .collect()
    }

    /// Up to `limit` entries whose encoded key starts with `prefix`, in key order, as raw
    /// bytes (each key without the slot byte): for callers that decide from the count whether
    /// to decode them at all.
    pub(crate) fn scan_prefix_raw(
        &self,
        prefix: Vec<u8>,
        limit: usize,
        op: &'static str,
    ) -> Result<Vec<(Vec<u8>, sled::IVec)>, StoreError> {
        let skip = usize::from(self.slot.is_some());
        self.tree
            .scan_prefix(&self.full(&prefix), false)
            .take(limit)
            .map(|e| {
                let (k, v) = e.map_err(|source| StoreError::Storage { op, source })?;
                Ok((k.get(skip..).unwrap_or_default().to_vec(), v))
            })
            .collect()
    }

    /// Entries whose encoded key starts with `prefix`, in key order.
    pub(crate) fn scan_prefix(
        &self,
        prefix: Vec<u8>,
        op: &'static str,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + '_ {
        self.decode_iter(self.tree.scan_prefix(&self.full(&prefix), false), op)
    }

    /// Every entry, in key order.
    pub(crate) fn iter(
        &self,
        op: &'static str,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + '_ {
        self.scan_prefix(Vec::new(), op)
    }

    /// Entries whose encoded key starts with `prefix`, in reverse key order (newest first for
    /// time-ordered keys).
    pub(crate) fn scan_prefix_rev(
        &self,
        prefix: Vec<u8>,
        op: &'static str,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + '_ {
        let skip = usize::from(self.slot.is_some());
        self.tree
            .scan_prefix(&self.full(&prefix), true)
            .map(move |entry| {
                let (k, v) = entry.map_err(|source| StoreError::Storage { op, source })?;
                self.decode_entry(k.get(skip..).unwrap_or_default(), &v)
            })
    }

    fn decode_iter<'s>(
        &'s self,
        it: KvIter<'s>,
        op: &'static str,
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + 's {
        let skip = usize::from(self.slot.is_some());
        it.map(move |entry| {
            let (k, v) = entry.map_err(|source| StoreError::Storage { op, source })?;
            self.decode_entry(k.get(skip..).unwrap_or_default(), &v)
        })
    }

    /// Writes raw bytes at raw `key` (tests: corrupt records on purpose).
    #[cfg(test)]
    pub(crate) fn raw_insert(&self, key: impl AsRef<[u8]>, value: &[u8]) {
        self.tree
            .insert(&self.full(key.as_ref()), value)
            .expect("raw insert");
    }

    /// Removes raw `key` (tests).
    #[cfg(test)]
    pub(crate) fn raw_remove(&self, key: impl AsRef<[u8]>) {
        self.tree
            .remove(&self.full(key.as_ref()))
            .expect("raw remove");
    }

    /// The first raw key, without the slot byte (tests).
    #[cfg(test)]
    pub(crate) fn raw_first_key(&self) -> Option<Vec<u8>> {
        let skip = usize::from(self.slot.is_some());
        self.tree
            .scan_prefix(&self.full(&[]), false)
            .next()
            .map(|e| {
                e.expect("raw scan")
                    .0
                    .get(skip..)
                    .unwrap_or_default()
                    .to_vec()
            })
    }

    /// Number of entries (a scan: O(n)).
    pub(crate) fn len(&self) -> usize {
        self.tree.scan_prefix(&self.full(&[]), false).count()
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

    /// The entries whose encoded key starts with `prefix`, in key order, as seen by this
    /// command: the database merged with the pending writes of the batch and the command's own
    /// (an entry removed there is left out).
    pub(crate) fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(K, V)>, TxFail> {
        self.ctx
            .scan_prefix(self.slot, prefix)?
            .into_iter()
            .map(|(k, v)| {
                let key =
                    K::decode(&k).map_err(|r| TxFail::corrupt(self.name, describe_raw(&k), r))?;
                let value =
                    V::decode(&v).map_err(|r| TxFail::corrupt(self.name, key.describe(), r))?;
                Ok((key, value))
            })
            .collect()
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

    /// The encoded key `key` of this tree, for [`Ctx::prefetch`].
    pub(crate) fn prefetch_key(&self, key: &K) -> (u8, Vec<u8>) {
        (self.slot, key.encode())
    }
}
