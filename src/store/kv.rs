//! [`Kv`]: the ordered key-value space the typed trees and the writer read and write, so one
//! writer and one set of typed trees run on sled (a tree) and on PostgreSQL (a table of
//! `bytea` keys, ordered bytewise like sled).
//!
//! Errors are reported as `sled::Error` (PostgreSQL errors wrapped as I/O errors) so that the
//! store's error type stays as it is.

use std::ops::Bound;

use sled::IVec;

/// One entry read from a [`Kv`].
pub(crate) type KvEntry = Result<(IVec, IVec), sled::Error>;

/// Entries of a [`Kv`] in key order (or reverse key order).
pub(crate) type KvIter<'a> = Box<dyn Iterator<Item = KvEntry> + 'a>;

/// An ordered key-value space: keys and values are bytes, keys ordered bytewise.
pub(crate) trait Kv: Send + Sync + 'static {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, sled::Error>;
    /// Entries with keys in `lo..hi`, in key order (`rev`: reverse key order).
    fn range(&self, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>, rev: bool) -> KvIter<'_>;
    /// Entries whose key starts with `prefix`, in key order (`rev`: reverse key order).
    fn scan_prefix(&self, prefix: &[u8], rev: bool) -> KvIter<'_> {
        self.range(Bound::Included(prefix.to_vec()), prefix_end(prefix), rev)
    }
    /// Hints that `keys` are about to be read one by one ([`Kv::get`]): a backend where each
    /// read is a round trip (PostgreSQL) reads them all at once. No effect on what reads see.
    fn prefetch(&self, keys: &[Vec<u8>]) -> Result<(), sled::Error> {
        let _ = keys;
        Ok(())
    }
    /// Whether [`Kv::prefetch`] does anything: callers skip building the key list when not
    /// (sled, whose reads are in memory).
    fn prefetches(&self) -> bool {
        false
    }
    /// Writes `value` at `key` outside the writer (metadata, probes, tests).
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), sled::Error>;
    /// Removes `key` outside the writer (tests).
    #[cfg(test)]
    fn remove(&self, key: &[u8]) -> Result<(), sled::Error>;
    /// Applies `writes` (a value, or `None` for a removal; in any order, one write per key)
    /// atomically: all or nothing.
    fn apply(&self, writes: &[(&[u8], Option<&[u8]>)]) -> Result<(), sled::Error>;
    /// A number greater than every one it returned before, also across restarts.
    fn generate_id(&self) -> Result<u64, sled::Error>;
    /// Makes every applied write durable (a no-op where applying is already durable).
    fn flush(&self) -> Result<(), sled::Error>;
    /// Bytes used on disk by the whole database.
    fn size_on_disk(&self) -> Result<u64, sled::Error>;
}

/// The first key after every key starting with `prefix` (`Unbounded` when there is none).
pub(crate) fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

/// A sled tree of a sled database.
pub(crate) struct SledKv {
    pub(crate) tree: sled::Tree,
    pub(crate) db: sled::Db,
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, sled::Error> {
        self.tree.get(key)
    }
    fn range(&self, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>, rev: bool) -> KvIter<'_> {
        let it = self.tree.range::<Vec<u8>, _>((lo, hi));
        if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }
    fn scan_prefix(&self, prefix: &[u8], rev: bool) -> KvIter<'_> {
        let it = self.tree.scan_prefix(prefix);
        if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), sled::Error> {
        self.tree.insert(key, value).map(|_| ())
    }
    #[cfg(test)]
    fn remove(&self, key: &[u8]) -> Result<(), sled::Error> {
        self.tree.remove(key).map(|_| ())
    }
    fn apply(&self, writes: &[(&[u8], Option<&[u8]>)]) -> Result<(), sled::Error> {
        let mut b = sled::Batch::default();
        for (key, value) in writes {
            match value {
                Some(v) => b.insert(*key, *v),
                None => b.remove(*key),
            }
        }
        self.tree.apply_batch(b)
    }
    fn generate_id(&self) -> Result<u64, sled::Error> {
        self.db.generate_id()
    }
    fn flush(&self) -> Result<(), sled::Error> {
        self.db.flush().map(|_| ())
    }
    fn size_on_disk(&self) -> Result<u64, sled::Error> {
        self.db.size_on_disk()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(&[3]), Bound::Excluded(vec![4]));
        assert_eq!(prefix_end(&[3, 0xff]), Bound::Excluded(vec![4]));
        assert_eq!(prefix_end(&[0xff, 0xff]), Bound::Unbounded);
        assert_eq!(prefix_end(&[]), Bound::Unbounded);
    }
}
