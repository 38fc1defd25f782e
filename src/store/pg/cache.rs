//! [`ReadCache`]: the values of single keys this node has read or written, so a key read again
//! costs no round trip to PostgreSQL.
//!
//! Valid because only this node writes the table: the leader, fenced by its epoch (see
//! `leader.rs`), and every one of its writes goes through the same `PgKv`, which tells the
//! cache what it wrote once the transaction has committed. What might break that is handled by
//! dropping the cache for good ([`ReadCache::disable`]): a write whose outcome is unknown (an
//! error during the transaction or its commit), and leadership lost (another node writes now).
//!
//! A read that overlaps a write must not put a value in the cache: it may have read the value
//! from before that write, and would then shadow it. So a read fills the cache only when no
//! write was under way when it started and none started until it ended (a [`Ticket`]). The
//! committer's own reads never overlap its writes (it applies its batches itself), so they are
//! always kept; a reader on another thread during a write just goes to the database.
//!
//! A small prefix (the in-flight reminders) may be held whole ([`ReadCache::fill_whole`]): a key
//! under it that the cache does not hold is then known to be absent, with no round trip (the
//! planner asks whether each next step is in flight, and it never is yet).
//!
//! Bounded: at most [`CAPACITY`] keys; when full, the cache is emptied (whole prefixes
//! included) and refills from the keys read next (simple, and a burst's working set fits).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sled::IVec;

/// Most keys held (their values included, absent values too). With records of a few hundred
/// bytes, a few tens of megabytes at most.
pub(crate) const CAPACITY: usize = 65_536;

/// A key's value as cached: `None` when the key is known to be absent.
pub(crate) type Cached = Option<IVec>;

#[derive(Default)]
struct State {
    values: HashMap<Vec<u8>, Cached>,
    /// Writes started so far (a read's [`Ticket`] is the count when it started).
    writes_started: u64,
    /// Writes started and not yet ended.
    writing: u32,
    /// Set for good once a write's outcome is unknown or leadership is lost.
    disabled: bool,
    /// Prefixes held whole: every key under them is in `values`, or absent.
    whole: Vec<Vec<u8>>,
    /// Prefixes found too big to hold whole (not tried again until the cache is emptied).
    too_big: Vec<Vec<u8>>,
    /// Keys of the writes under way (how many writes each): their value is not known.
    unsettled: HashMap<Vec<u8>, u32>,
}

impl State {
    /// A ticket for a read starting now: none while a write is under way or once disabled.
    fn ticket(&self) -> Option<Ticket> {
        (self.writing == 0 && !self.disabled).then_some(Ticket(self.writes_started))
    }

    /// Whether a read made with `ticket` may still fill the cache: no write started since.
    fn fillable(&self, ticket: Ticket) -> bool {
        self.ticket() == Some(ticket)
    }

    /// Empties the cache (values and whole prefixes).
    fn clear(&mut self) {
        self.values.clear();
        self.whole.clear();
        self.too_big.clear();
    }
}

/// What a read looking up a key finds.
pub(crate) enum Lookup {
    /// The key's value (or its absence), as last read or written.
    Hit(Cached),
    /// Not cached: read the database, then [`ReadCache::fill`] with the ticket, if any.
    Miss(Option<Ticket>),
}

/// Allows a read to fill the cache, if no write started since it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

/// The cache of one table (see the module docs).
pub(crate) struct ReadCache {
    state: Mutex<State>,
    capacity: usize,
}

impl Default for ReadCache {
    fn default() -> Self {
        ReadCache::with_capacity(CAPACITY)
    }
}

impl ReadCache {
    /// An empty cache holding at most `capacity` keys.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        ReadCache {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached value of `key`, or a ticket to fill it with (none while a write is under way
    /// or once disabled).
    pub(crate) fn lookup(&self, key: &[u8]) -> Lookup {
        let st = self.lock();
        if let Some(v) = st.values.get(key) {
            return Lookup::Hit(v.clone());
        }
        if st.whole.iter().any(|p| key.starts_with(p)) && !st.unsettled.contains_key(key) {
            return Lookup::Hit(None);
        }
        Lookup::Miss(st.ticket())
    }

    /// Keeps `value`, read from the database for `key` with `ticket`, unless a write started
    /// since the ticket was issued.
    pub(crate) fn fill(&self, ticket: Ticket, key: &[u8], value: Cached) {
        self.fill_many(ticket, [(key, value)]);
    }

    /// [`ReadCache::fill`] for several keys read by one query.
    pub(crate) fn fill_many<'k>(
        &self,
        ticket: Ticket,
        values: impl IntoIterator<Item = (&'k [u8], Cached)>,
    ) {
        let mut st = self.lock();
        if !st.fillable(ticket) {
            return;
        }
        for (k, v) in values {
            self.put(&mut st, k.to_vec(), v);
        }
    }

    /// A ticket to fill the cache with values read from now on (none while a write is under
    /// way or once disabled).
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        self.lock().ticket()
    }

    /// Whether `key` is cached.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.lock().values.contains_key(key)
    }

    /// Whether it is worth reading every key under `prefix` ([`ReadCache::fill_whole`]): not
    /// held whole yet, nor found too big.
    pub(crate) fn wants_whole(&self, prefix: &[u8]) -> bool {
        let st = self.lock();
        !st.disabled && !st.whole.iter().chain(&st.too_big).any(|p| p == prefix)
    }

    /// Holds `prefix` whole: `entries` are every key under it, read with `ticket`; `None`
    /// (too many to hold) marks it too big. False when nothing was kept.
    pub(crate) fn fill_whole(
        &self,
        ticket: Ticket,
        prefix: &[u8],
        entries: Option<Vec<(IVec, IVec)>>,
    ) -> bool {
        let mut st = self.lock();
        if !st.fillable(ticket) {
            return false;
        }
        let Some(entries) = entries else {
            st.too_big.push(prefix.to_vec());
            return false;
        };
        if st.values.len() + entries.len() >= self.capacity {
            st.clear();
        }
        for (k, v) in entries {
            st.values.insert(k.to_vec(), Some(v));
        }
        st.whole.push(prefix.to_vec());
        true
    }

    fn put(&self, st: &mut State, key: Vec<u8>, value: Cached) {
        if st.values.len() >= self.capacity && !st.values.contains_key(&key) {
            st.clear();
        }
        st.values.insert(key, value);
    }

    /// Announces a write of `keys`: they leave the cache, and no read fills it until the
    /// write has ended ([`Write::committed`], or dropped: failed).
    pub(crate) fn write<'a>(&'a self, keys: impl IntoIterator<Item = &'a [u8]>) -> Write<'a> {
        let mut st = self.lock();
        st.writes_started += 1;
        st.writing += 1;
        let keys: Vec<Vec<u8>> = keys.into_iter().map(<[u8]>::to_vec).collect();
        for k in &keys {
            st.values.remove(k);
            *st.unsettled.entry(k.clone()).or_insert(0) += 1;
        }
        Write {
            cache: self,
            keys,
            ended: false,
        }
    }

    /// Drops every value and keeps nothing from now on (the table may change behind it).
    pub(crate) fn disable(&self) {
        let mut st = self.lock();
        st.disabled = true;
        st.clear();
    }

    /// Keys held (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().values.len()
    }
}

/// A write under way (see [`ReadCache::write`]). Dropped without [`Write::committed`]: its
/// outcome is unknown, and the cache is disabled.
pub(crate) struct Write<'a> {
    cache: &'a ReadCache,
    /// The keys written.
    keys: Vec<Vec<u8>>,
    ended: bool,
}

impl Write<'_> {
    /// The write has ended: its keys are settled again.
    fn end(&mut self, st: &mut State) {
        self.ended = true;
        st.writing = st.writing.saturating_sub(1);
        for k in &self.keys {
            if let Some(n) = st.unsettled.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.unsettled.remove(k);
                }
            }
        }
    }

    /// The write committed: these are the keys' values now (`None`: removed).
    pub(crate) fn committed<'k>(mut self, writes: impl IntoIterator<Item = (&'k [u8], Cached)>) {
        let cache = self.cache;
        let mut st = cache.lock();
        self.end(&mut st);
        if st.disabled {
            return;
        }
        for (k, v) in writes {
            self.cache.put(&mut st, k.to_vec(), v);
        }
    }
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let cache = self.cache;
        let mut st = cache.lock();
        self.end(&mut st);
        st.disabled = true;
        st.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Cached {
        Some(IVec::from(s.as_bytes()))
    }

    fn ticket(c: &ReadCache, key: &[u8]) -> Ticket {
        match c.lookup(key) {
            Lookup::Miss(Some(t)) => t,
            Lookup::Miss(None) => panic!("no ticket"),
            Lookup::Hit(_) => panic!("unexpected hit"),
        }
    }

    fn hit(c: &ReadCache, key: &[u8]) -> Option<Cached> {
        match c.lookup(key) {
            Lookup::Hit(v) => Some(v),
            Lookup::Miss(_) => None,
        }
    }

    #[test]
    fn a_read_value_and_an_absence_are_kept() {
        let c = ReadCache::default();
        let t = ticket(&c, b"a");
        c.fill(t, b"a", v("1"));
        let t = ticket(&c, b"b");
        c.fill(t, b"b", None);
        assert_eq!(hit(&c, b"a"), Some(v("1")));
        assert_eq!(hit(&c, b"b"), Some(None));
    }

    #[test]
    fn a_committed_write_is_what_the_next_read_sees() {
        let c = ReadCache::default();
        let t = ticket(&c, b"a");
        c.fill(t, b"a", v("old"));
        let w = c.write([&b"a"[..], &b"gone"[..]]);
        w.committed([(&b"a"[..], v("new")), (&b"gone"[..], None)]);
        assert_eq!(hit(&c, b"a"), Some(v("new")));
        assert_eq!(hit(&c, b"gone"), Some(None));
    }

    #[test]
    fn a_write_with_an_unknown_outcome_leaves_nothing_cached() {
        let c = ReadCache::default();
        let t = ticket(&c, b"a");
        c.fill(t, b"a", v("old"));
        let t = ticket(&c, b"other");
        c.fill(t, b"other", v("x"));
        drop(c.write([&b"a"[..]])); // failed: not committed
        assert_eq!(hit(&c, b"a"), None);
        assert_eq!(hit(&c, b"other"), None);
        // And nothing is kept any more: every read goes to the database.
        assert!(matches!(c.lookup(b"a"), Lookup::Miss(None)));
        c.write([&b"a"[..]]).committed([(&b"a"[..], v("new"))]);
        assert_eq!(hit(&c, b"a"), None);
    }

    #[test]
    fn a_read_overlapping_a_write_is_not_kept() {
        let c = ReadCache::default();
        // Started before the write, ended after it began: it may hold the old value.
        let t = ticket(&c, b"a");
        let w = c.write([&b"a"[..]]);
        c.fill(t, b"a", v("old"));
        assert_eq!(hit(&c, b"a"), None);
        // Started during the write: no ticket.
        assert!(matches!(c.lookup(b"a"), Lookup::Miss(None)));
        w.committed([(&b"a"[..], v("new"))]);
        assert_eq!(hit(&c, b"a"), Some(v("new")));
        // Started before, filled after the write ended: still refused.
        let t = ticket(&c, b"b");
        c.write([&b"b"[..]]).committed([(&b"b"[..], v("new"))]);
        c.fill(t, b"b", v("old"));
        assert_eq!(hit(&c, b"b"), Some(v("new")));
    }

    #[test]
    fn the_bound_holds() {
        let c = ReadCache::with_capacity(4);
        for i in 0..10u8 {
            let t = ticket(&c, &[i]);
            c.fill(t, &[i], v("x"));
            assert!(c.len() <= 4);
        }
        let writes: Vec<(Vec<u8>, Cached)> = (0..10u8).map(|i| (vec![i], v("y"))).collect();
        c.write([&[42u8][..]])
            .committed(writes.iter().map(|(k, v)| (k.as_slice(), v.clone())));
        assert!(c.len() <= 4);
        // The last key kept is readable.
        assert_eq!(hit(&c, &[9]), Some(v("y")));
    }

    #[test]
    fn a_prefix_held_whole_answers_for_its_absent_keys_until_emptied() {
        let c = ReadCache::with_capacity(8);
        assert!(c.wants_whole(b"p"));
        let t = c.ticket().unwrap();
        assert!(c.fill_whole(t, b"p", Some(vec![(IVec::from(b"p1"), IVec::from(b"one"))])));
        assert!(!c.wants_whole(b"p"));
        assert_eq!(hit(&c, b"p1"), Some(v("one")));
        assert_eq!(hit(&c, b"p2"), Some(None));
        assert_eq!(hit(&c, b"q2"), None);
        // A key being written under it is not known until the write ends.
        let w = c.write([&b"p2"[..]]);
        assert!(matches!(c.lookup(b"p2"), Lookup::Miss(None)));
        assert_eq!(hit(&c, b"p3"), Some(None));
        w.committed([(&b"p2"[..], v("two"))]);
        assert_eq!(hit(&c, b"p2"), Some(v("two")));
        // Emptied when full: the prefix is no longer held whole.
        for i in 0..10u8 {
            let t = ticket(&c, &[b'x', i]);
            c.fill(t, &[b'x', i], None);
        }
        assert_eq!(hit(&c, b"p3"), None);
        assert!(c.wants_whole(b"p"));
    }

    #[test]
    fn a_prefix_too_big_is_not_held_whole() {
        let c = ReadCache::default();
        let t = c.ticket().unwrap();
        assert!(!c.fill_whole(t, b"p", None));
        assert!(!c.wants_whole(b"p"));
        assert_eq!(hit(&c, b"p1"), None);
        // Nor is one read while a write was under way.
        let t = c.ticket().unwrap();
        c.write([&b"q1"[..]]).committed([(&b"q1"[..], v("x"))]);
        assert!(!c.fill_whole(t, b"q", Some(Vec::new())));
        assert_eq!(hit(&c, b"q2"), None);
    }

    #[test]
    fn a_disabled_cache_keeps_nothing() {
        let c = ReadCache::default();
        let t = ticket(&c, b"a");
        c.fill(t, b"a", v("1"));
        c.disable();
        assert_eq!(hit(&c, b"a"), None);
        assert!(matches!(c.lookup(b"a"), Lookup::Miss(None)));
    }
}
