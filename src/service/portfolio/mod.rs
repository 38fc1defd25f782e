//! The portfolio read API: invoices, clients and planned reminders listed with filters, in
//! pages (keyset pagination in a stable order), for `GET /v1/invoices`, `GET /v1/clients` and
//! `GET /v1/reminders`.
//!
//! Pages follow the store's own order (invoice and client ids in byte order; reminders by
//! firing time), so a walk never lists a record twice and sees every record that exists for
//! the whole walk, also while writes go on. A filtered page reads at most
//! [`SCAN_BUDGET`] records: when few records match, a page may hold fewer than `limit` items
//! (even none) and still carry a `next_cursor`; the walk is over only when `next_cursor` is
//! absent.

mod clients;
mod cursor;
mod invoices;
mod reminders;

pub use clients::{ClientListItem, ClientQuery, list_clients};
pub use invoices::{InvoiceListItem, InvoiceQuery, list_invoices};
pub use reminders::{ReminderListItem, ReminderQuery, list_reminders};

use std::collections::HashMap;

use super::ServiceError;
use crate::domain::{Client, ClientId};
use crate::store::Store;

/// Most records one page reads before it answers (with a cursor to go on from).
pub const SCAN_BUDGET: usize = 5_000;
/// Page size when `limit` is absent.
pub const DEFAULT_PAGE: usize = 100;
/// Largest page.
pub const MAX_PAGE: usize = 1_000;

/// One page of a listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// The page size asked for: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
fn page_size(limit: Option<&str>) -> Result<usize, ServiceError> {
    match limit.map(str::trim) {
        None | Some("") => Ok(DEFAULT_PAGE),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ServiceError::invalid(
                "limit",
                format!("must be a whole number from 1 to {MAX_PAGE}"),
            )),
        },
    }
}

/// A trimmed, non-empty query value.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// At most 64 characters of `s`, for error messages.
fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The clients a page has read, each read once.
#[derive(Default)]
struct ClientCache(HashMap<ClientId, Option<Client>>);

impl ClientCache {
    /// Client `id`, read from `store` the first time it is asked for.
    fn get(&mut self, store: &Store, id: &ClientId) -> Result<Option<&Client>, ServiceError> {
        if !self.0.contains_key(id) {
            let c = store.client(id)?;
            self.0.insert(id.clone(), c);
        }
        Ok(self.0.get(id).and_then(Option::as_ref))
    }
}
