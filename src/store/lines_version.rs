//! A version per client's invoice-index lines, so that a reader can cache what it read of a
//! client's index (the dispatcher's statements) and know when the cache is stale without
//! reading the index again.
//!
//! The writer bumps the version of every client whose index entries a batch wrote, *after*
//! the batch is applied. A reader takes the version *before* it reads the lines: lines it
//! caches are never older than the version it caches them under, so a cache entry whose
//! version is still current is up to date. Versions are striped (a client hashes to one of
//! [`STRIPES`] counters): two clients sharing a stripe only cost each other a re-read. They
//! are process-wide and only grow, so a store opened again never repeats a version.

use std::sync::atomic::{AtomicU64, Ordering};

use super::slot;
use crate::domain::ClientId;

/// Number of version counters.
pub(crate) const STRIPES: usize = 4096;

static VERSIONS: [AtomicU64; STRIPES] = [const { AtomicU64::new(0) }; STRIPES];

/// The stripe of a client id's bytes (FNV-1a).
fn stripe(client: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in client {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % STRIPES as u64) as usize
}

/// The current version of `client`'s index lines.
pub(crate) fn current(client: &ClientId) -> u64 {
    VERSIONS[stripe(client.as_str().as_bytes())].load(Ordering::Acquire)
}

/// Bumps the version of every client whose index entry is among `keys` (full keyspace keys:
/// slot byte, client id, 0x00, invoice id). Call it once the batch holding them is applied.
pub(crate) fn bump_written<'a>(keys: impl Iterator<Item = &'a [u8]>) {
    for key in keys {
        let Some((&slot, rest)) = key.split_first() else {
            continue;
        };
        if slot != slot::CLIENT_INVOICES {
            continue;
        }
        let client = rest.split(|b| *b == 0).next().unwrap_or_default();
        VERSIONS[stripe(client)].fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(client: &str, invoice: &str) -> Vec<u8> {
        let mut k = vec![slot::CLIENT_INVOICES];
        k.extend_from_slice(client.as_bytes());
        k.push(0);
        k.extend_from_slice(invoice.as_bytes());
        k
    }

    #[test]
    fn a_write_to_a_clients_index_bumps_its_version_and_other_slots_do_not() {
        let c = ClientId::new("lines-version-client-a").unwrap();
        let before = current(&c);
        let other_slot = {
            let mut k = key("lines-version-client-a", "INV-1");
            k[0] = slot::INVOICES;
            k
        };
        bump_written([other_slot.as_slice()].into_iter());
        assert_eq!(
            current(&c),
            before,
            "an invoice record is not an index entry"
        );
        let k = key("lines-version-client-a", "INV-1");
        bump_written([k.as_slice()].into_iter());
        assert!(current(&c) > before);
        assert_eq!(
            stripe(b"lines-version-client-a"),
            stripe(c.as_str().as_bytes())
        );
    }
}
