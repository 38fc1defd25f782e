//! [`StatementCache`]: each client's invoice-index lines as the dispatcher last read them,
//! kept while the store says they have not changed ([`Store::client_lines_version`]). In a
//! burst a client's reminders go out one after the other, and each message's statement lists
//! the same other invoices: one read of the index serves them all, and a payment, a new
//! invoice or any change to what a statement shows makes the next message read it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::{ClientId, IndexLine, InvoiceId};
use crate::store::{Store, StoreError};

/// Clients kept at most; the cache starts over when full.
const MAX_CLIENTS: usize = 8192;

/// A client's lines, or `None` when it has more invoices than a statement reads.
pub type Lines = Option<Arc<Vec<(InvoiceId, IndexLine)>>>;

/// See the module docs.
#[derive(Default)]
pub struct StatementCache {
    entries: Mutex<HashMap<ClientId, (u64, Lines)>>,
}

impl StatementCache {
    /// The lines of `client` (at most `max` invoices, else `None`), from the cache while their
    /// version is current, else read from the store and kept.
    pub fn lines(&self, store: &Store, client: &ClientId, max: usize) -> Result<Lines, StoreError> {
        // The version first: lines read after it are at least as new as it says.
        let version = store.client_lines_version(client);
        if let Some((v, lines)) = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(client)
        {
            if *v == version {
                return Ok(lines.clone());
            }
        }
        let lines = store
            .invoice_lines_of_client_within(client, max)?
            .map(Arc::new);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_CLIENTS && !entries.contains_key(client) {
            entries.clear();
        }
        entries.insert(client.clone(), (version, lines.clone()));
        Ok(lines)
    }
}
