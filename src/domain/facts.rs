//! Client facts: how a client pays, kept by plazo from its own data.
//!
//! Two parts:
//! - [`FactsLedger`], kept on the client record and changed by the events that change it (an
//!   invoice paid in full or re-opened by a refund, a payment received, a promise kept, an
//!   inbound message); promises broken are counted by [`Client::broken_promises`]. Each
//!   change is O(1) or O(window): nothing scans the client's invoices.
//! - [`BehaviourFacts`], derived from the ledger for a window of the last N paid invoices
//!   (`[facts] last_paid` in the policy): what segment rules (`when`) read as `client.facts`
//!   and what `GET /v1/clients/{id}` shows under `facts`, beside the portfolio figures
//!   computed when read ([`PortfolioFacts`]).
//!
//! [`FactsLedger::recompute`] derives the same ledger from the client's invoices, so the
//! incremental upkeep can be checked against the history (a property test does).

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{ArrangementState, Client, Currency, Due, Invoice, InvoiceId, InvoiceStatus};

/// Most paid invoices the ledger keeps (the oldest leave first). `[facts] last_paid` may not
/// exceed it.
pub const PAID_HISTORY_CAP: usize = 100;

/// Default of `[facts] last_paid`: the averages and shares are over the last 12 invoices paid.
pub const DEFAULT_LAST_PAID: u32 = 12;

/// One invoice the client paid in full, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidInvoice {
    /// The invoice.
    pub invoice_id: InvoiceId,
    /// When its balance reached zero.
    pub closed_at: Timestamp,
    /// Whole days between the due date and the day it was paid, in the client's zone (0 when
    /// paid on time or early).
    pub days_late: u32,
    /// Its original amount.
    pub amount: Decimal,
    /// Its currency.
    pub currency: Currency,
}

/// What plazo keeps on a client to derive its [`BehaviourFacts`]. Changed only by plazo, never
/// taken from an API body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FactsLedger {
    /// Invoices paid in full, ordered by when they were paid (then by id), at most
    /// [`PAID_HISTORY_CAP`] of them (the most recent).
    pub paid: Vec<PaidInvoice>,
    /// How many of the client's invoices are paid in full now (an invoice re-opened by a
    /// refund no longer counts).
    pub paid_count: u32,
    /// Promises and payment plans the client kept.
    pub promises_kept: u32,
    /// When the latest payment received was made.
    pub last_payment_at: Option<Timestamp>,
    /// When the client last wrote to plazo (an SMS or WhatsApp reply).
    pub last_inbound_at: Option<Timestamp>,
}

impl FactsLedger {
    /// An invoice was paid in full.
    pub fn record_paid(&mut self, entry: PaidInvoice) {
        if self.remove(&entry.invoice_id) {
            // Already counted (a defensive case: an invoice is closed once per opening).
            self.paid_count = self.paid_count.saturating_sub(1);
        }
        let at = self.paid.partition_point(|p| {
            (p.closed_at, &p.invoice_id) <= (entry.closed_at, &entry.invoice_id)
        });
        self.paid.insert(at, entry);
        self.paid_count = self.paid_count.saturating_add(1);
        let excess = self.paid.len().saturating_sub(PAID_HISTORY_CAP);
        self.paid.drain(..excess);
    }

    /// An invoice still paid in full changed what the ledger keeps of it (its amount, its due
    /// date): its entry, if still kept, is replaced. Its place and the count do not change.
    pub fn refresh_paid(&mut self, entry: PaidInvoice) {
        if let Some(kept) = self
            .paid
            .iter_mut()
            .find(|p| p.invoice_id == entry.invoice_id)
        {
            *kept = entry;
        }
    }

    /// An invoice paid in full was re-opened (a refund): it no longer counts as paid.
    pub fn record_reopened(&mut self, invoice: &InvoiceId) {
        self.remove(invoice);
        self.paid_count = self.paid_count.saturating_sub(1);
    }

    /// A payment made at `at` was received.
    pub fn record_payment(&mut self, at: Timestamp) {
        self.last_payment_at = Some(self.last_payment_at.map_or(at, |l| l.max(at)));
    }

    /// A promise or payment plan was kept.
    pub fn record_promise_kept(&mut self) {
        self.promises_kept = self.promises_kept.saturating_add(1);
    }

    /// The client wrote to plazo at `at`.
    pub fn record_inbound(&mut self, at: Timestamp) {
        self.last_inbound_at = Some(self.last_inbound_at.map_or(at, |l| l.max(at)));
    }

    /// Brings the ledger up to date after `inv` changed from the state `before` recorded
    /// ([`FactsMark::of`]): a payment received at `payment_at` (none for a refund), an
    /// invoice paid in full or re-opened, arrangements kept. Days late are read in `zone`.
    /// Returns whether anything changed.
    pub fn update(
        &mut self,
        before: FactsMark,
        inv: &Invoice,
        payment_at: Option<Timestamp>,
        zone: &TimeZone,
    ) -> bool {
        let old = self.clone();
        if let Some(at) = payment_at {
            self.record_payment(at);
        }
        let kept = kept_count(inv);
        for _ in before.kept..kept {
            self.record_promise_kept();
        }
        match (before.was_paid, inv.status, inv.closed_at) {
            (false, InvoiceStatus::Paid, Some(closed)) => {
                self.record_paid(paid_entry(inv, closed, zone));
            }
            // Still paid, but its amount or due date changed (an invoice update).
            (true, InvoiceStatus::Paid, Some(closed)) => {
                self.refresh_paid(paid_entry(inv, closed, zone));
            }
            // Re-opened by a refund or a higher amount: back to open, or back to its partner
            // or to written off; no longer paid in every case.
            (true, status, _) if status != InvoiceStatus::Paid => self.record_reopened(&inv.id),
            _ => {}
        }
        *self != old
    }

    fn remove(&mut self, invoice: &InvoiceId) -> bool {
        let before = self.paid.len();
        self.paid.retain(|p| p.invoice_id != *invoice);
        self.paid.len() != before
    }

    /// The ledger as derived from the client's `invoices` (their current state), with days
    /// late read in `zone` and `last_inbound_at` as given (inbound messages are not on
    /// invoices). Equal to the incrementally kept ledger while the client has no more than
    /// [`PAID_HISTORY_CAP`] paid invoices and its zone has not changed.
    pub fn recompute(
        invoices: &[Invoice],
        zone: &TimeZone,
        last_inbound_at: Option<Timestamp>,
    ) -> FactsLedger {
        let mut ledger = FactsLedger {
            last_inbound_at,
            ..FactsLedger::default()
        };
        for inv in invoices {
            if let (InvoiceStatus::Paid, Some(closed)) = (inv.status, inv.closed_at) {
                ledger.record_paid(paid_entry(inv, closed, zone));
            }
            for p in inv.payments.iter().filter(|p| p.amount > Decimal::ZERO) {
                ledger.record_payment(p.paid_at);
            }
            let kept = kept_count(inv);
            ledger.promises_kept = ledger
                .promises_kept
                .saturating_add(u32::try_from(kept).unwrap_or(u32::MAX));
        }
        ledger
    }

    /// The facts over the last `last_paid` paid invoices, as of `now`, for a client with
    /// `broken_promises` broken promises.
    pub fn facts(&self, last_paid: u32, broken_promises: u32, now: Timestamp) -> BehaviourFacts {
        let window = self
            .paid
            .iter()
            .rev()
            .take(last_paid as usize)
            .collect::<Vec<_>>();
        let n = window.len();
        let late = window.iter().filter(|p| p.days_late > 0).count();
        let days: u64 = window.iter().map(|p| u64::from(p.days_late)).sum();
        let mut tickets: BTreeMap<String, (Decimal, u32)> = BTreeMap::new();
        for p in &window {
            let t = tickets
                .entry(p.currency.code().to_owned())
                .or_insert((Decimal::ZERO, 0));
            // Amounts are bounded by the currency's maximum; a sum that still overflows keeps
            // the part that fits rather than failing.
            if let Some(sum) = t.0.checked_add(p.amount) {
                t.0 = sum;
                t.1 += 1;
            }
        }
        BehaviourFacts {
            paid_invoices: self.paid_count,
            considered: u32::try_from(n).unwrap_or(u32::MAX),
            paid_late: u32::try_from(late).unwrap_or(u32::MAX),
            paid_late_share: ratio(late as f64, n),
            avg_days_late: ratio(days as f64, n),
            max_days_late: window.iter().map(|p| p.days_late).max().unwrap_or(0),
            avg_ticket: tickets
                .into_iter()
                .filter(|(_, (_, count))| *count > 0)
                .filter_map(|(code, (sum, count))| {
                    sum.checked_div(Decimal::from(count))
                        .map(|avg| (code, avg.round_dp(2).normalize()))
                })
                .collect(),
            promises_kept: self.promises_kept,
            broken_promises,
            last_payment_at: self.last_payment_at,
            days_since_last_payment: self.last_payment_at.map(|at| whole_days(at, now)),
            last_inbound_at: self.last_inbound_at,
        }
    }
}

/// What [`FactsLedger::update`] compares an invoice's new state with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactsMark {
    was_paid: bool,
    kept: usize,
}

impl FactsMark {
    /// The parts of `inv` the ledger follows, before a change.
    pub fn of(inv: &Invoice) -> FactsMark {
        FactsMark {
            was_paid: inv.status == InvoiceStatus::Paid,
            kept: kept_count(inv),
        }
    }
}

/// Arrangements of `inv` that were kept.
fn kept_count(inv: &Invoice) -> usize {
    inv.arrangements
        .iter()
        .filter(|a| a.state == ArrangementState::Kept)
        .count()
}

/// `part / n` rounded to two decimals; 0 when `n` is 0.
fn ratio(part: f64, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    (part / n as f64 * 100.0).round() / 100.0
}

/// Whole days from `from` to `to` (0 when `to` is earlier).
fn whole_days(from: Timestamp, to: Timestamp) -> i64 {
    (to.as_second() - from.as_second()).max(0) / 86_400
}

/// The ledger entry of `inv`, closed as paid in full at `closed_at`, with its days late read
/// in `zone`. Lateness counts to when the money was paid (the latest payment's `paid_at`, as
/// the provider or the API reported it), not to when plazo recorded it: a payment made on
/// time and reported a week later is on time.
pub fn paid_entry(inv: &Invoice, closed_at: Timestamp, zone: &TimeZone) -> PaidInvoice {
    let settled = inv
        .payments
        .iter()
        .filter(|p| p.amount > Decimal::ZERO)
        .map(|p| p.paid_at)
        .max()
        .map_or(closed_at, |paid| paid.min(closed_at));
    PaidInvoice {
        invoice_id: inv.id.clone(),
        closed_at,
        days_late: days_late(&inv.due_at, settled, zone),
        amount: inv.amount,
        currency: inv.currency,
    }
}

/// Whole calendar days, in `zone`, from the due date to the day of `at`; 0 when `at` is on or
/// before the due date.
pub fn days_late(due: &Due, at: Timestamp, zone: &TimeZone) -> u32 {
    let due_date = match due {
        Due::Date(d) => *d,
        Due::Instant(i) => i.to_zoned(zone.clone()).date(),
    };
    let paid_date = at.to_zoned(zone.clone()).date();
    match due_date.until(paid_date) {
        Ok(span) => u32::try_from(span.get_days().max(0)).unwrap_or(u32::MAX),
        Err(_) => 0,
    }
}

/// How a client pays: derived from its [`FactsLedger`]. Segment rules read these as
/// `client.facts.NAME`; `GET /v1/clients/{id}` shows them under `facts`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BehaviourFacts {
    /// Invoices of the client paid in full (all of them, not only the window).
    pub paid_invoices: u32,
    /// How many recent paid invoices the figures below are over (at most `[facts] last_paid`).
    pub considered: u32,
    /// Of those, how many were paid after their due date.
    pub paid_late: u32,
    /// `paid_late / considered`, from 0 to 1 (0 with no paid invoice).
    pub paid_late_share: f64,
    /// Average days late over those invoices (on-time ones count as 0).
    pub avg_days_late: f64,
    /// Most days late among them.
    pub max_days_late: u32,
    /// Average original amount of those invoices, by currency (decimal strings with the
    /// currency's minor units in the API).
    #[serde(serialize_with = "decimal_map")]
    pub avg_ticket: BTreeMap<String, Decimal>,
    /// Promises and payment plans kept.
    pub promises_kept: u32,
    /// Promises and plan instalments broken (not paid by their date plus grace).
    pub broken_promises: u32,
    /// When the latest payment was made.
    pub last_payment_at: Option<Timestamp>,
    /// Whole days since then.
    pub days_since_last_payment: Option<i64>,
    /// When the client last wrote (an SMS or WhatsApp reply).
    pub last_inbound_at: Option<Timestamp>,
}

fn decimal_map<S: serde::Serializer>(
    map: &BTreeMap<String, Decimal>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(map.len()))?;
    for (code, amount) in map {
        // Shown with the currency's minor units ("1750000.50 COP"), rounded half away from
        // zero (an average can have more decimals).
        let shown = match super::Currency::parse(code) {
            Ok(currency) => currency.show(*amount),
            Err(_) => amount.to_string(),
        };
        m.serialize_entry(code, &shown)?;
    }
    m.end()
}

/// The client's open invoices, summed when read (`GET /v1/clients/{id}`); not available to
/// segment rules, which see one invoice at a time (`invoice.*`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PortfolioFacts {
    /// Open invoices.
    pub open_invoices: u32,
    /// Balance still owed, by currency.
    #[serde(serialize_with = "decimal_map")]
    pub open_balance: BTreeMap<String, Decimal>,
    /// Days overdue of the oldest open invoice past its due date (0 when none is overdue).
    pub oldest_days_overdue: u32,
    /// When the latest message was sent to the client (any invoice, any channel).
    pub last_contact_at: Option<Timestamp>,
}

impl PortfolioFacts {
    /// Adds open invoice `inv` as of `now`, read in `zone`. The balance sum is checked: a sum
    /// past the decimal range keeps the largest value that fits.
    pub fn add_open(&mut self, inv: &Invoice, zone: &TimeZone, now: Timestamp) {
        if inv.status != InvoiceStatus::Open {
            return;
        }
        self.open_invoices = self.open_invoices.saturating_add(1);
        let sum = self
            .open_balance
            .entry(inv.currency.code().to_owned())
            .or_insert(Decimal::ZERO);
        *sum = sum.checked_add(inv.balance).unwrap_or(Decimal::MAX);
        self.oldest_days_overdue = self
            .oldest_days_overdue
            .max(days_late(&inv.due_at, now, zone));
    }

    /// Notes a message sent at `at`.
    pub fn add_contact(&mut self, at: Timestamp) {
        self.last_contact_at = Some(self.last_contact_at.map_or(at, |l| l.max(at)));
    }
}

/// The facts `GET /v1/clients/{id}` shows: behaviour and portfolio side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientFacts {
    /// From the ledger.
    #[serde(flatten)]
    pub behaviour: BehaviourFacts,
    /// From the open invoices.
    #[serde(flatten)]
    pub portfolio: PortfolioFacts,
}

/// The behaviour facts of `client` under a policy window of `last_paid` invoices.
pub fn behaviour_of(client: &Client, last_paid: u32, now: Timestamp) -> BehaviourFacts {
    client.facts.facts(last_paid, client.broken_promises, now)
}

#[cfg(test)]
mod tests;
