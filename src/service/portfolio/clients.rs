//! `GET /v1/clients`: clients with filters, in client id order, each with its open invoices'
//! count, balance per currency and the segments chasing them.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Page, SCAN_BUDGET, cursor, given, page_size};
use crate::domain::{Client, ClientId};
use crate::policy::Policy;
use crate::schedule::{segment_followed, segment_for};
use crate::service::ServiceError;
use crate::store::Store;

const KIND: &str = "clients";

/// Query of `GET /v1/clients`; every field optional, all given filters must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientQuery {
    /// Only clients in this segment: their own (explicit, by tag, or the default), or the one
    /// chasing any of their open invoices (segment rules choose per invoice).
    #[serde(default)]
    pub segment: Option<String>,
    /// Only clients with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(default)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One client in a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientListItem {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its own segment: explicit, else the first tag naming one, else the policy default.
    pub segment: String,
    /// Segments chasing its open invoices (segment rules choose per invoice), sorted.
    pub open_segments: Vec<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its country, if known.
    pub country: Option<String>,
    /// How many invoices it has open (or handed off) with a balance.
    pub open_invoices: u32,
    /// What it owes, per currency.
    pub balance: BTreeMap<String, String>,
}

/// Lists the clients matching `q`, a page at a time.
pub fn list_clients(
    store: &Store,
    policy: &Policy,
    q: &ClientQuery,
) -> Result<Page<ClientListItem>, ServiceError> {
    let limit = page_size(q.limit.as_deref())?;
    let segment = given(&q.segment);
    let tag = given(&q.tag);
    let mut last = given(&q.cursor)
        .map(|c| cursor::decode_id(KIND, c, ClientId::new))
        .transpose()?;
    let mut items = Vec::new();
    let mut read = 0usize;
    let exhausted = 'walk: loop {
        let batch = store.client_ids_after(last.as_ref(), 256)?;
        if batch.is_empty() {
            break true;
        }
        for id in batch {
            if items.len() >= limit || read >= SCAN_BUDGET {
                break 'walk false;
            }
            read += 1;
            last = Some(id.clone());
            let Some(client) = store.client(&id)? else {
                continue;
            };
            if tag.is_some_and(|t| !client.tags.iter().any(|c| c == t)) {
                continue;
            }
            let (it, reads) = summary(store, policy, &client)?;
            read += reads;
            if segment.is_some_and(|s| it.segment != s && !it.open_segments.iter().any(|o| o == s))
            {
                continue;
            }
            items.push(it);
        }
    };
    let more = !exhausted && !store.client_ids_after(last.as_ref(), 1)?.is_empty();
    let next_cursor = if more {
        last.map(|id| cursor::encode(KIND, id.as_str().as_bytes()))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// The listing item of `client` and how many invoices it read.
fn summary(
    store: &Store,
    policy: &Policy,
    client: &Client,
) -> Result<(ClientListItem, usize), ServiceError> {
    let ids = store.open_invoice_ids_of(&client.id)?;
    let reads = ids.len();
    let mut open_segments: Vec<String> = Vec::new();
    let mut sums: BTreeMap<String, (crate::domain::Currency, Decimal)> = BTreeMap::new();
    let mut open = 0u32;
    for id in ids {
        let Some(inv) = store.invoice(&id)? else {
            continue;
        };
        if inv.balance <= Decimal::ZERO {
            continue;
        }
        open = open.saturating_add(1);
        let seg = segment_followed(policy, client, &inv).name.clone();
        if !open_segments.contains(&seg) {
            open_segments.push(seg);
        }
        let entry = sums
            .entry(inv.currency.code().to_owned())
            .or_insert((inv.currency, Decimal::ZERO));
        entry.1 = inv
            .currency
            .add(
                "balance of the client's open invoices",
                entry.1,
                inv.balance,
            )
            .map_err(|e| ServiceError::invalid("balance", e.to_string()))?;
    }
    open_segments.sort();
    Ok((
        ClientListItem {
            id: client.id.to_string(),
            name: client.name.clone(),
            segment: segment_for(policy, client).name.clone(),
            open_segments,
            tags: client.tags.clone(),
            country: client.country.clone(),
            open_invoices: open,
            balance: sums
                .into_iter()
                .map(|(code, (cur, sum))| (code, cur.show(sum)))
                .collect(),
        },
        reads,
    ))
}
