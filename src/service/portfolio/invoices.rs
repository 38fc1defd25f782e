//! `GET /v1/invoices`: invoices with filters, in invoice id order.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::{ClientCache, Page, SCAN_BUDGET, cursor, given, page_size, shown};
use crate::domain::{Client, ClientId, Due, Invoice, InvoiceId, InvoiceStatus, days_late};
use crate::policy::Policy;
use crate::schedule::{client_zone, segment_followed};
use crate::service::ServiceError;
use crate::store::Store;

const KIND: &str = "invoices";

/// Query of `GET /v1/invoices`; every field optional, all given filters must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceQuery {
    /// `open`, `paid`, `handed_off`, `written_off`, `void`, or `all` (the default).
    #[serde(default)]
    pub status: Option<String>,
    /// Only the invoices of this client (reads that client's invoices only).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Only invoices chased by this segment (the one recorded on the invoice, else the
    /// client's).
    #[serde(default)]
    pub segment: Option<String>,
    /// Only invoices in this ISO 4217 currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// Only invoices with a balance at least this many days past due (in the client's time
    /// zone), open or handed off.
    #[serde(default)]
    pub overdue_min_days: Option<String>,
    /// Only invoices due before this date (`YYYY-MM-DD`, compared with the due date in the
    /// client's zone) or instant (RFC 3339).
    #[serde(default)]
    pub due_before: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(default)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One invoice in a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoiceListItem {
    /// Its id.
    pub id: String,
    /// The debtor.
    pub client_id: String,
    /// Its number.
    pub number: String,
    /// Its currency.
    pub currency: String,
    /// What it was for.
    pub amount: String,
    /// What is still owed.
    pub balance: String,
    /// When it is (was) due, as given.
    pub due_at: String,
    /// `open`, `paid`, `handed_off`, `written_off` or `void`.
    pub status: InvoiceStatus,
    /// The segment chasing it.
    pub segment: String,
    /// Days past due now in the client's zone (0 when not yet due or nothing is owed).
    pub days_overdue: u32,
    /// Whether the chase is paused.
    pub paused: bool,
    /// When its next reminder is planned, if one is.
    pub next_reminder_at: Option<Timestamp>,
}

/// The checked filters of a query.
struct Filter {
    status: Option<InvoiceStatus>,
    client: Option<ClientId>,
    segment: Option<String>,
    currency: Option<String>,
    overdue_min_days: Option<u32>,
    due_before: Option<Due>,
}

fn parse_status(s: &str) -> Result<Option<InvoiceStatus>, ServiceError> {
    Ok(Some(match s {
        "all" => return Ok(None),
        "open" => InvoiceStatus::Open,
        "paid" => InvoiceStatus::Paid,
        "handed_off" => InvoiceStatus::HandedOff,
        "written_off" => InvoiceStatus::WrittenOff,
        "void" => InvoiceStatus::Void,
        other => {
            return Err(ServiceError::invalid(
                "status",
                format!(
                    "{:?} is not an invoice status; use open, paid, handed_off, written_off, void or all",
                    shown(other)
                ),
            ));
        }
    }))
}

fn filter(q: &InvoiceQuery) -> Result<Filter, ServiceError> {
    let status = match given(&q.status) {
        None => None,
        Some(s) => parse_status(s)?,
    };
    let client = given(&q.client_id)
        .map(|c| ClientId::new(c).map_err(|e| ServiceError::invalid("client_id", e.to_string())))
        .transpose()?;
    let currency = given(&q.currency)
        .map(|c| {
            crate::domain::Currency::parse(c)
                .map(|cur| cur.code().to_owned())
                .map_err(|e| ServiceError::invalid("currency", e.to_string()))
        })
        .transpose()?;
    let overdue_min_days = given(&q.overdue_min_days)
        .map(|d| {
            d.parse::<u32>()
                .ok()
                .filter(|d| *d <= 36_500)
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "overdue_min_days",
                        format!(
                            "{:?} is not a whole number of days from 0 to 36500",
                            shown(d)
                        ),
                    )
                })
        })
        .transpose()?;
    let due_before = given(&q.due_before)
        .map(|d| {
            // The API's strict grammar (offset within ±23:59, years 1900-2999), as for bodies.
            crate::domain::when::parse_due(d).map_err(|e| {
                ServiceError::invalid(
                    "due_before",
                    format!("{e}; write a date like 2026-03-15 or an RFC 3339 instant (+ as %2B in a URL)"),
                )
            })
        })
        .transpose()?;
    Ok(Filter {
        status,
        client,
        segment: given(&q.segment).map(str::to_owned),
        currency,
        overdue_min_days,
        due_before,
    })
}

/// Whether `due` falls before `limit`: dates compare as dates in `zone`; an instant limit
/// compares with the start of a due date in `zone`.
fn due_is_before(due: &Due, limit: &Due, zone: &TimeZone) -> bool {
    match (due, limit) {
        (Due::Date(d), Due::Date(l)) => d < l,
        (Due::Instant(t), Due::Date(l)) => t.to_zoned(zone.clone()).date() < *l,
        (Due::Instant(t), Due::Instant(l)) => t < l,
        (Due::Date(d), Due::Instant(l)) => d
            .to_zoned(zone.clone())
            .map(|z| z.timestamp() < *l)
            .unwrap_or(false),
    }
}

/// Lists the invoices matching `q` as of `now`, a page at a time.
pub fn list_invoices(
    store: &Store,
    policy: &Policy,
    q: &InvoiceQuery,
    now: Timestamp,
) -> Result<Page<InvoiceListItem>, ServiceError> {
    let f = filter(q)?;
    let limit = page_size(q.limit.as_deref())?;
    let after = given(&q.cursor)
        .map(|c| cursor::decode_id(KIND, c, InvoiceId::new))
        .transpose()?;
    let mut clients = ClientCache::default();
    let mut items = Vec::new();
    let mut read = 0usize;
    let mut last: Option<InvoiceId> = after;
    // With client_id: that client's invoice index, in the same id order.
    let of_client = match &f.client {
        Some(c) => Some(store.invoice_ids_of_client(c)?),
        None => None,
    };
    let next_batch = |last: Option<&InvoiceId>, n: usize| -> Result<Vec<InvoiceId>, ServiceError> {
        Ok(match &of_client {
            Some(ids) => ids
                .iter()
                .filter(|id| last.is_none_or(|l| id.as_str() > l.as_str()))
                .take(n)
                .cloned()
                .collect(),
            None => store.invoice_ids_after(last, n)?,
        })
    };
    let exhausted = 'walk: loop {
        let batch = next_batch(last.as_ref(), 256)?;
        if batch.is_empty() {
            break true;
        }
        for id in batch {
            if items.len() >= limit || read >= SCAN_BUDGET {
                break 'walk false;
            }
            read += 1;
            last = Some(id.clone());
            let Some(inv) = store.invoice(&id)? else {
                continue;
            };
            if let Some(item) = matching(store, policy, &f, &inv, &mut clients, now)? {
                items.push(item);
            }
        }
    };
    // The walk is over when nothing follows the last id read.
    let more = !exhausted && !next_batch(last.as_ref(), 1)?.is_empty();
    let next_cursor = if more {
        last.map(|id| cursor::encode(KIND, id.as_str().as_bytes()))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// `inv` as a listing item when it passes every filter.
fn matching(
    store: &Store,
    policy: &Policy,
    f: &Filter,
    inv: &Invoice,
    clients: &mut ClientCache,
    now: Timestamp,
) -> Result<Option<InvoiceListItem>, ServiceError> {
    if f.status.is_some_and(|s| s != inv.status)
        || f.client.as_ref().is_some_and(|c| *c != inv.client_id)
        || f.currency
            .as_deref()
            .is_some_and(|c| c != inv.currency.code())
    {
        return Ok(None);
    }
    // An invoice whose client record is gone is listed with the policy's defaults.
    let client = clients.get(store, &inv.client_id)?;
    item(store, policy, client, inv, f, now)
}

fn item(
    store: &Store,
    policy: &Policy,
    client: Option<&Client>,
    inv: &Invoice,
    f: &Filter,
    now: Timestamp,
) -> Result<Option<InvoiceListItem>, ServiceError> {
    let zone = client.map_or_else(
        || policy.defaults.timezone.clone(),
        |c| client_zone(policy, c),
    );
    let segment = match (&inv.followed, client) {
        (Some(fw), _) if policy.segments.contains_key(&fw.segment) => fw.segment.clone(),
        (_, Some(c)) => segment_followed(policy, c, inv).name.clone(),
        (Some(fw), None) => fw.segment.clone(),
        (None, None) => policy.default_segment.clone(),
    };
    if f.segment.as_deref().is_some_and(|s| s != segment) {
        return Ok(None);
    }
    let owed = matches!(inv.status, InvoiceStatus::Open | InvoiceStatus::HandedOff)
        && inv.balance > rust_decimal::Decimal::ZERO;
    let days_overdue = if owed {
        days_late(&inv.due_at, now, &zone)
    } else {
        0
    };
    if let Some(min) = f.overdue_min_days {
        if !owed || !is_due(&inv.due_at, now, &zone) || days_overdue < min {
            return Ok(None);
        }
    }
    if let Some(limit) = &f.due_before {
        if !due_is_before(&inv.due_at, limit, &zone) {
            return Ok(None);
        }
    }
    let next_reminder_at = match inv.pending {
        Some(rid) => store.reminder(&inv.id, &rid)?.map(|r| r.fire_at),
        None => None,
    };
    Ok(Some(InvoiceListItem {
        id: inv.id.to_string(),
        client_id: inv.client_id.to_string(),
        number: inv.number.clone(),
        currency: inv.currency.code().to_owned(),
        amount: inv.currency.show(inv.amount),
        balance: inv.currency.show(inv.balance),
        due_at: inv.due_at.to_string(),
        status: inv.status,
        segment,
        days_overdue,
        paused: inv.pause.is_some(),
        next_reminder_at,
    }))
}

/// Whether the due date (or instant) has come at `now` in `zone`.
fn is_due(due: &Due, now: Timestamp, zone: &TimeZone) -> bool {
    match due {
        Due::Date(d) => now.to_zoned(zone.clone()).date() >= *d,
        Due::Instant(t) => now >= *t,
    }
}
