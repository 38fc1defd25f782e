//! The writer's layered view: what a command reads through and writes into ([`Ctx`]), over
//! the pending writes of a command, of the batch being built and of the batch being applied
//! ([`Overlay`]), then the keyspace. Below the writer and every transaction type that reads
//! through it (`sled_tx`, `typed`); it imports neither.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sled::IVec;

use super::fail::TxFail;
use super::kv::Kv;
use super::slot;

/// Pending writes keyed by `slot ++ key` (the slot is the logical tree's number): the new
/// value, or `None` for a removal.
#[derive(Default)]
pub(crate) struct Overlay {
    pub(super) writes: HashMap<Vec<u8>, Option<IVec>>,
    /// The keys of `writes` in a slot of `slot::SCANNED`, in key order (for prefix reads).
    ordered: BTreeSet<Vec<u8>>,
}

impl Overlay {
    /// An empty overlay with room for `n` writes.
    pub(super) fn with_capacity(n: usize) -> Self {
        Overlay {
            writes: HashMap::with_capacity(n),
            ordered: BTreeSet::new(),
        }
    }

    fn lookup(&self, full: &[u8]) -> Option<&Option<IVec>> {
        self.writes.get(full)
    }

    /// Writes `value` (`None`: a removal) at `full` (`slot ++ key`).
    pub(super) fn insert(&mut self, full: Vec<u8>, value: Option<IVec>) {
        if is_scanned(&full) {
            self.ordered.insert(full.clone());
        }
        self.writes.insert(full, value);
    }

    pub(super) fn merge(&mut self, other: Overlay) {
        self.writes.extend(other.writes);
        self.ordered.extend(other.ordered);
    }

    /// The writes whose key (`slot ++ key`) starts with `prefix`, in key order when its slot
    /// is scanned (in any order otherwise: every write is looked at).
    fn scan<'s>(
        &'s self,
        prefix: &'s [u8],
    ) -> Box<dyn Iterator<Item = (&'s Vec<u8>, &'s Option<IVec>)> + 's> {
        if is_scanned(prefix) {
            Box::new(
                self.ordered
                    .range::<[u8], _>((
                        std::ops::Bound::Included(prefix),
                        std::ops::Bound::Unbounded,
                    ))
                    .take_while(move |k| k.starts_with(prefix))
                    .filter_map(move |k| self.writes.get_key_value(k)),
            )
        } else {
            Box::new(
                self.writes
                    .iter()
                    .filter(move |(k, _)| k.starts_with(prefix)),
            )
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Number of keys written (inserted or removed).
    pub(crate) fn len(&self) -> usize {
        self.writes.len()
    }

    /// Bytes of keys and values written.
    pub(super) fn bytes(&self) -> usize {
        self.writes
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
            .sum()
    }
}

/// Whether `full` (`slot ++ key`, or a prefix of one) is in a slot read by prefix.
fn is_scanned(full: &[u8]) -> bool {
    full.first().is_some_and(|s| slot::SCANNED.contains(s))
}

/// `slot ++ key`.
fn full_key(slot: u8, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(slot);
    k.extend_from_slice(key);
    k
}

/// What a command reads through and writes into.
pub(crate) struct Ctx<'a> {
    /// The command's own writes.
    pub(super) local: std::cell::RefCell<Overlay>,
    /// The command's counter increments (`slot ++ key` → amount), added up per batch.
    pub(super) counts: std::cell::RefCell<Counts>,
    /// Earlier commands of the batch being built.
    pub(super) building: &'a Overlay,
    /// The batch being applied, if any.
    pub(super) applying: Option<&'a Overlay>,
    /// The keyspace: every record, under `slot ++ key`.
    pub(super) keyspace: &'a dyn Kv,
}

impl Ctx<'_> {
    /// The value at `key` of tree `slot`, as this command sees it.
    pub(crate) fn get(&self, slot: u8, key: &[u8]) -> Result<Option<IVec>, TxFail> {
        let full = full_key(slot, key);
        if let Some(v) = self.local.borrow().lookup(&full) {
            return Ok(v.clone());
        }
        if let Some(v) = self.building.lookup(&full) {
            return Ok(v.clone());
        }
        if let Some(v) = self.applying.and_then(|a| a.lookup(&full)) {
            return Ok(v.clone());
        }
        Ok(self.keyspace.get(&full)?)
    }

    /// The entries of tree `slot` whose key starts with `prefix`, as this command sees them,
    /// in key order: the database's, overridden by the batch being applied, then by the batch
    /// being built, then by the command's own writes (a removal there hides the entry). Keys
    /// are returned without the slot byte.
    ///
    /// Meant for the slots of `slot::SCANNED`, whose pending writes are kept in key order; on
    /// another slot it is still right, but looks at every pending write.
    pub(crate) fn scan_prefix(
        &self,
        slot: u8,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, IVec)>, TxFail> {
        let full = full_key(slot, prefix);
        let mut seen: BTreeMap<Vec<u8>, Option<IVec>> = BTreeMap::new();
        for entry in self.keyspace.scan_prefix(&full, false) {
            let (k, v) = entry?;
            seen.insert(k.to_vec(), Some(v));
        }
        let local = self.local.borrow();
        let layers = self.applying.into_iter().chain([self.building, &*local]);
        for layer in layers {
            for (k, v) in layer.scan(&full) {
                seen.insert(k.clone(), v.clone());
            }
        }
        Ok(seen
            .into_iter()
            .filter_map(|(k, v)| Some((k.get(1..)?.to_vec(), v?)))
            .collect())
    }

    /// Writes `value` (or removes, with `None`) at `key` of tree `slot`.
    pub(crate) fn put(&self, slot: u8, key: &[u8], value: Option<Vec<u8>>) {
        self.local
            .borrow_mut()
            .insert(full_key(slot, key), value.map(IVec::from));
    }

    /// Adds one to the counter at `key` of tree `slot` (a big-endian u64, see
    /// [`Store::tallies`](super::Store::tallies)). Counters are not readable in a command: the
    /// increments of a whole batch are added up and each counter is written once per batch.
    pub(crate) fn count(&self, slot: u8, key: &[u8]) {
        let mut counts = self.counts.borrow_mut();
        let n = counts.entry(full_key(slot, key)).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// A store-wide monotonic id (sled's `generate_id`).
    pub(crate) fn generate_id(&self) -> Result<u64, TxFail> {
        Ok(self.keyspace.generate_id()?)
    }

    /// Whether [`Ctx::prefetch`] does anything on this keyspace (see [`Kv::prefetches`]).
    pub(crate) fn prefetches(&self) -> bool {
        self.keyspace.prefetches()
    }

    /// Hints that keys `(slot, key)` are about to be read (see [`Kv::prefetch`]): those not
    /// found in a pending layer are read from the keyspace at once.
    pub(crate) fn prefetch(
        &self,
        keys: impl IntoIterator<Item = (u8, Vec<u8>)>,
    ) -> Result<(), TxFail> {
        let local = self.local.borrow();
        let pending = |full: &[u8]| {
            local.lookup(full).is_some()
                || self.building.lookup(full).is_some()
                || self.applying.is_some_and(|a| a.lookup(full).is_some())
        };
        let wanted: Vec<Vec<u8>> = keys
            .into_iter()
            .map(|(slot, key)| full_key(slot, &key))
            .filter(|full| !pending(full))
            .collect();
        drop(local);
        if wanted.is_empty() {
            return Ok(());
        }
        Ok(self.keyspace.prefetch(&wanted)?)
    }
}

/// Counter increments: `slot ++ key` → amount to add.
pub(super) type Counts = std::collections::BTreeMap<Vec<u8>, u64>;

/// Adds `from` into `into`.
pub(super) fn add_counts(into: &mut Counts, from: Counts) {
    for (k, n) in from {
        let total = into.entry(k).or_insert(0);
        *total = total.saturating_add(n);
    }
}

#[cfg(test)]
mod tests;
