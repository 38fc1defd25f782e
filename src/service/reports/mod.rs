//! Portfolio reports: the KPIs (`GET /v1/reports/kpis`) and which reminder works
//! (`GET /v1/reports/effectiveness`).
//!
//! One walk over the store ([`walk`]: every client, page by page, with its invoices, their
//! timelines and the client's own timeline) feeds accumulators that do the arithmetic as pure
//! functions over the records ([`kpis::KpiAccumulator`], [`effectiveness::EffectAccumulator`]),
//! so the figures are unit-tested on hand-made records and the walk stays in one place.
//!
//! Balances are reconstructed from each invoice's payments (`paid_at`), so a report "as of" a
//! past instant shows what was owed then: an invoice counts from its issue date (the start of
//! `issued_at` in the client's zone, else when plazo stored it), its balance at `t` is its
//! amount less the payments made up to `t`, a write-off takes it out of receivables from the
//! moment it was written off, and void invoices are left out of every figure. The amount is
//! the invoice's current one (a changed amount is not replayed).

pub mod effectiveness;
pub mod kpis;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::ServiceError;
use super::resegment::CLIENT_PAGE;
use crate::domain::{
    Attempt, Client, ClientId, ContactEvent, Currency, EscalationKind, Invoice, when,
};
use crate::policy::Policy;
use crate::schedule::{client_zone, segment_for};
use crate::store::Store;

pub use effectiveness::{EffectAccumulator, EffectRow, EffectivenessReport};
pub use kpis::{KpiAccumulator, KpiReport};

/// Length of the default report period: the 90 days before its end.
pub const DEFAULT_PERIOD_DAYS: i64 = 90;

/// Longest report period accepted (ten years).
pub const MAX_PERIOD_DAYS: i64 = 3660;

/// One invoice and what its timeline logged, with the segment it is reported under.
#[derive(Debug, Clone)]
pub struct InvoiceRecords {
    /// The invoice.
    pub invoice: Invoice,
    /// Its timeline, oldest first.
    pub timeline: Vec<Attempt>,
    /// The segment it is reported under: the one its chase follows, else the client's.
    pub segment: String,
}

/// One client and everything the reports read about it.
#[derive(Debug, Clone)]
pub struct ClientRecords {
    /// The client.
    pub client: Client,
    /// Its time zone (days overdue and issue dates are counted in it).
    pub zone: TimeZone,
    /// The segment the client belongs to (for its own timeline's events).
    pub segment: String,
    /// Its invoices, void ones left out.
    pub invoices: Vec<InvoiceRecords>,
    /// Its own timeline (inbound messages, opt-outs), oldest first.
    pub events: Vec<ContactEvent>,
}

/// Which part of the portfolio a report covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only invoices in this currency.
    pub currency: Option<Currency>,
    /// Only invoices reported under this segment.
    pub segment: Option<String>,
}

impl Filter {
    /// Whether `inv` (reported under `segment`) is covered.
    pub fn covers(&self, inv: &Invoice, segment: &str) -> bool {
        self.currency.is_none_or(|c| c == inv.currency)
            && self.segment.as_deref().is_none_or(|s| s == segment)
    }
}

/// A half-open period `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
}

impl Period {
    /// Whether `t` falls in the period.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }
    /// Its length in days (fractional).
    pub fn days(&self) -> f64 {
        self.to.duration_since(self.from).as_secs_f64() / 86_400.0
    }
}

/// The query parameters of the report endpoints, as given (all optional).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ReportQuery {
    /// The instant balances are shown at (`YYYY-MM-DD`: the end of that day, UTC; or RFC
    /// 3339); default now. KPIs only.
    pub as_of: Option<String>,
    /// ISO 4217 code: only invoices in that currency.
    pub currency: Option<String>,
    /// Only invoices reported under this segment.
    pub segment: Option<String>,
    /// Start of the period (`YYYY-MM-DD`: the start of that day, UTC; or RFC 3339); default 90
    /// days before its end.
    pub from: Option<String>,
    /// End of the period, exclusive (`YYYY-MM-DD`: the start of that day, UTC; or RFC 3339);
    /// default `as_of`.
    pub to: Option<String>,
}

/// A [`ReportQuery`] checked: the instant, the period and the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportParams {
    /// Balances are shown as of this instant.
    pub as_of: Timestamp,
    /// The period flows (invoiced, paid, messages...) are counted over.
    pub period: Period,
    /// What part of the portfolio.
    pub filter: Filter,
}

/// Parses a date (`YYYY-MM-DD`, read as midnight UTC, plus `day_shift` days) or an RFC 3339
/// instant, for the query parameter `field`.
fn parse_when(field: &str, s: &str, day_shift: i64) -> Result<Timestamp, ServiceError> {
    let s = s.trim();
    if s.len() == 10 {
        let d = when::parse_date(s).map_err(|e| ServiceError::invalid(field, e.to_string()))?;
        let t = d
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| ServiceError::invalid(field, e.to_string()))?;
        return t
            .checked_add(SignedDuration::from_hours(24 * day_shift))
            .map_err(|e| ServiceError::invalid(field, e.to_string()));
    }
    when::parse_instant(s).map_err(|e| {
        ServiceError::invalid(
            field,
            format!("{e}; give a date (2026-03-31) or an RFC 3339 instant (2026-03-31T12:00:00Z)"),
        )
    })
}

impl ReportQuery {
    /// Checks the query against `now`: `as_of` defaults to `now`, `to` to `as_of`, `from` to
    /// 90 days before `to`; `from` must come before `to`, `to` not after `as_of`, and the
    /// period be at most ten years long.
    pub fn params(&self, now: Timestamp) -> Result<ReportParams, ServiceError> {
        let as_of = match self.as_of.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_when("as_of", s, 1)?,
            None => now,
        };
        let to = match self.to.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_when("to", s, 0)?,
            None => as_of,
        };
        let from = match self.from.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_when("from", s, 0)?,
            None => to
                .checked_sub(SignedDuration::from_hours(24 * DEFAULT_PERIOD_DAYS))
                .map_err(|e| ServiceError::invalid("to", e.to_string()))?,
        };
        if from >= to {
            return Err(ServiceError::invalid(
                "from",
                format!("the period must start before it ends (from {from}, to {to})"),
            ));
        }
        if to > as_of {
            return Err(ServiceError::invalid(
                "to",
                format!(
                    "the period cannot end after as_of ({as_of}); move to back or as_of forward"
                ),
            ));
        }
        if to.duration_since(from) > SignedDuration::from_hours(24 * MAX_PERIOD_DAYS) {
            return Err(ServiceError::invalid(
                "from",
                format!("the period is longer than {MAX_PERIOD_DAYS} days; shorten it"),
            ));
        }
        let currency = match self.currency.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(c) => Some(
                Currency::parse(c).map_err(|e| ServiceError::invalid("currency", e.to_string()))?,
            ),
            None => None,
        };
        let segment = self
            .segment
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Ok(ReportParams {
            as_of,
            period: Period { from, to },
            filter: Filter { currency, segment },
        })
    }
}

/// Reads every client with its invoices (void ones left out) and timelines, page by page
/// ([`Store::client_ids_after`]), and hands each to `each`. The one place reports read the
/// store; call it from a blocking thread.
pub fn walk(
    store: &Store,
    policy: &Policy,
    mut each: impl FnMut(&ClientRecords),
) -> Result<(), ServiceError> {
    let mut after: Option<ClientId> = None;
    loop {
        let page = store.client_ids_after(after.as_ref(), CLIENT_PAGE)?;
        for id in &page {
            let Some(client) = store.client(id)? else {
                continue;
            };
            let zone = client_zone(policy, &client);
            let segment = segment_for(policy, &client).name.clone();
            let mut invoices = Vec::new();
            for iid in store.invoice_ids_of_client(id)? {
                let Some(invoice) = store.invoice(&iid)? else {
                    continue;
                };
                if invoice
                    .escalation
                    .as_ref()
                    .is_some_and(|e| e.kind == EscalationKind::Voided)
                {
                    continue;
                }
                let timeline = store.timeline(&iid)?;
                let inv_segment = invoice
                    .followed
                    .as_ref()
                    .map_or_else(|| segment.clone(), |f| f.segment.clone());
                invoices.push(InvoiceRecords {
                    invoice,
                    timeline,
                    segment: inv_segment,
                });
            }
            let events = store.client_timeline(id)?;
            each(&ClientRecords {
                client,
                zone,
                segment,
                invoices,
                events,
            });
        }
        if page.len() < CLIENT_PAGE {
            return Ok(());
        }
        after = page.last().cloned();
    }
}

/// `GET /v1/reports/kpis`: the KPIs of the portfolio for `query`, as of its `as_of` (default
/// `now`).
pub fn kpi_report(
    store: &Store,
    policy: &Policy,
    query: &ReportQuery,
    now: Timestamp,
) -> Result<KpiReport, ServiceError> {
    let params = query.params(now)?;
    let mut acc = KpiAccumulator::new(params.clone());
    walk(store, policy, |c| acc.add_client(c))?;
    Ok(acc.finish())
}

/// `GET /v1/reports/effectiveness`: which reminder works, over the period of `query` (`as_of`
/// is `now`).
pub fn effectiveness_report(
    store: &Store,
    policy: &Policy,
    query: &ReportQuery,
    now: Timestamp,
) -> Result<EffectivenessReport, ServiceError> {
    let params = query.params(now)?;
    let mut acc = EffectAccumulator::new(params.period, params.filter);
    walk(store, policy, |c| acc.add_client(c))?;
    Ok(acc.finish())
}

/// When `inv` starts counting as owed: the start of its issue date in `zone`, else when plazo
/// stored it.
pub fn issued_instant(inv: &Invoice, zone: &TimeZone) -> Timestamp {
    inv.issued_at
        .and_then(|d| d.to_zoned(zone.clone()).ok())
        .map_or(inv.created_at, |z| z.timestamp())
}

/// What was still owed on `inv` at `t`: its amount less the payments (net of refunds) made
/// up to `t`, within 0 and the amount.
pub fn balance_at(inv: &Invoice, t: Timestamp) -> rust_decimal::Decimal {
    let paid = inv
        .payments
        .iter()
        .filter(|p| p.paid_at <= t)
        .fold(rust_decimal::Decimal::ZERO, |acc, p| {
            acc.checked_add(p.amount).unwrap_or(acc)
        });
    inv.amount
        .checked_sub(paid)
        .unwrap_or(rust_decimal::Decimal::ZERO)
        .max(rust_decimal::Decimal::ZERO)
        .min(inv.amount)
}

/// The receivable `inv` was at `t`: its balance then, when it had been issued and not written
/// off by then (`None` otherwise, or when nothing was owed).
pub fn receivable_at(
    inv: &Invoice,
    zone: &TimeZone,
    t: Timestamp,
) -> Option<rust_decimal::Decimal> {
    if issued_instant(inv, zone) > t {
        return None;
    }
    if inv
        .escalation
        .as_ref()
        .is_some_and(|e| e.kind != EscalationKind::HandedOff && e.at <= t)
    {
        return None;
    }
    Some(balance_at(inv, t)).filter(|b| *b > rust_decimal::Decimal::ZERO)
}

/// When `inv` was paid in full: the `paid_at` of the payment (in date order) that brought the
/// money received to its amount, if any did.
pub fn paid_in_full_at(inv: &Invoice) -> Option<Timestamp> {
    let mut payments: Vec<_> = inv.payments.iter().collect();
    payments.sort_by_key(|p| p.paid_at);
    let mut paid = rust_decimal::Decimal::ZERO;
    for p in payments {
        paid = paid.checked_add(p.amount)?;
        if paid >= inv.amount && inv.amount > rust_decimal::Decimal::ZERO {
            return Some(p.paid_at);
        }
    }
    None
}

#[cfg(test)]
mod tests;
