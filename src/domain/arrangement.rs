//! What a debtor agreed to pay: a promise (one amount by one date) or a payment plan
//! (instalments with dates and amounts summing to the balance). While an arrangement is active
//! the invoice's regular cadence is paused and reminders come from the arrangement's own cadence,
//! anchored on each instalment's date. Payments are allocated to instalments oldest first.
//!
//! Plain data and pure bookkeeping; planning and storage live in `service::arrangements`.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::Due;

/// Promise or payment plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrangementKind {
    /// One amount by one date (`POST /v1/invoices/{id}/promises`).
    Promise,
    /// Several instalments summing to the balance (`POST /v1/invoices/{id}/plans`).
    Plan,
}

impl ArrangementKind {
    /// `promise` or `plan`, as written in the timeline and the API paths.
    pub fn as_str(self) -> &'static str {
        match self {
            ArrangementKind::Promise => "promise",
            ArrangementKind::Plan => "plan",
        }
    }
}

/// Where an arrangement is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrangementState {
    /// Running: the regular cadence waits.
    Active,
    /// Every instalment (or the promised amount) arrived, or the invoice was paid in full.
    Kept,
    /// An instalment was not paid by its date plus the grace period.
    Broken,
    /// Cancelled by ops, or by a change of the invoice amount (a plan).
    Cancelled,
}

/// Where one instalment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstalmentState {
    /// Not fully paid yet.
    Pending,
    /// Fully covered by the money received.
    Paid,
    /// Not paid by its date plus grace: the arrangement broke on it.
    Missed,
}

/// One amount due on one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instalment {
    /// When it is due: a date (paid by the end of that day in the client's zone) or an instant.
    pub due: Due,
    /// The amount due, in the invoice currency.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// How much of the money received since the arrangement began covers it (oldest first).
    #[serde(with = "rust_decimal::serde::str")]
    pub paid: Decimal,
    /// Pending, paid or missed.
    pub state: InstalmentState,
}

/// A promise to pay or a payment plan on one invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrangement {
    /// Number of the arrangement on its invoice, from 1.
    pub id: u32,
    /// Promise or plan.
    pub kind: ArrangementKind,
    /// Active, kept, broken or cancelled.
    pub state: ArrangementState,
    /// The instalments, in date order (one for a promise).
    pub instalments: Vec<Instalment>,
    /// Channel the debtor made it on (`phone`, `whatsapp`, `email`, `portal`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Free-form note from the collector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Money received on the invoice since the arrangement was made, net of refunds.
    #[serde(with = "rust_decimal::serde::str")]
    pub received: Decimal,
    /// Index of the instalment being chased: the first one not fully paid.
    pub current: u32,
    /// Last step of the arrangement cadence handled for the current instalment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u32>,
    /// When the arrangement was made.
    pub created_at: Timestamp,
    /// When it was kept, broken or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    /// Why it ended, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Broken only: last step of the broken-promise cadence handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken_cursor: Option<u32>,
    /// Broken only: true once the broken-promise cadence has run its course (or was
    /// interrupted by a payment), and the regular cadence has taken over again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub broken_done: bool,
}

/// What allocating money did to an arrangement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Nothing changed in which instalment is chased.
    Unchanged,
    /// The chased instalment moved (paid, or re-opened by a refund).
    Moved {
        /// Previous instalment index.
        from: u32,
        /// New instalment index.
        to: u32,
    },
    /// Every instalment is paid.
    Complete,
}

impl Arrangement {
    /// A new active arrangement.
    pub fn new(
        id: u32,
        kind: ArrangementKind,
        instalments: Vec<(Due, Decimal)>,
        channel: Option<String>,
        note: Option<String>,
        now: Timestamp,
    ) -> Self {
        Arrangement {
            id,
            kind,
            state: ArrangementState::Active,
            instalments: instalments
                .into_iter()
                .map(|(due, amount)| Instalment {
                    due,
                    amount,
                    paid: Decimal::ZERO,
                    state: InstalmentState::Pending,
                })
                .collect(),
            channel,
            note,
            received: Decimal::ZERO,
            current: 0,
            cursor: None,
            created_at: now,
            closed_at: None,
            outcome: None,
            broken_cursor: None,
            broken_done: false,
        }
    }

    /// Total of the instalments; `None` if it does not fit a decimal (never for a plan the
    /// API accepted: each amount and their sum are bounded by the invoice's maximum).
    pub fn total(&self) -> Option<Decimal> {
        self.instalments
            .iter()
            .try_fold(Decimal::ZERO, |acc, i| acc.checked_add(i.amount))
    }

    /// The instalment being chased, if any is left.
    pub fn current_instalment(&self) -> Option<&Instalment> {
        self.instalments.get(self.current as usize)
    }

    /// True while the regular cadence waits for it.
    pub fn is_active(&self) -> bool {
        self.state == ArrangementState::Active
    }

    /// Adds `delta` (negative for a refund) to the money received and allocates the total to
    /// the instalments oldest first. The chased instalment becomes the first one not fully
    /// covered; its step cursor restarts when it changes. The callers keep the money received
    /// within the currency's maximum; past the decimal range it saturates rather than panics.
    pub fn allocate(&mut self, delta: Decimal) -> Allocation {
        self.received = self.received.saturating_add(delta).max(Decimal::ZERO);
        let mut left = self.received;
        for inst in &mut self.instalments {
            let paid = left.min(inst.amount).max(Decimal::ZERO);
            // 0 <= paid <= left: cannot overflow.
            left = left.checked_sub(paid).unwrap_or(Decimal::ZERO);
            inst.paid = paid;
            inst.state = if paid >= inst.amount {
                InstalmentState::Paid
            } else if inst.state == InstalmentState::Missed {
                InstalmentState::Missed
            } else {
                InstalmentState::Pending
            };
        }
        let first_open = self
            .instalments
            .iter()
            .position(|i| i.state != InstalmentState::Paid)
            .map_or(self.instalments.len(), |p| p);
        let to = u32::try_from(first_open).unwrap_or(u32::MAX);
        if first_open == self.instalments.len() {
            self.current = to;
            self.cursor = None;
            return Allocation::Complete;
        }
        if to == self.current {
            return Allocation::Unchanged;
        }
        let from = self.current;
        self.current = to;
        self.cursor = None;
        Allocation::Moved { from, to }
    }

    /// Ends the arrangement in `state` with `outcome` as the reason.
    pub fn close(&mut self, state: ArrangementState, outcome: String, now: Timestamp) {
        self.state = state;
        self.closed_at = Some(now);
        self.outcome = Some(outcome);
    }

    /// Amount still owed on the chased instalment.
    pub fn outstanding(&self) -> Decimal {
        self.current_instalment()
            .and_then(|i| i.amount.checked_sub(i.paid))
            .unwrap_or(Decimal::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn plan(amounts: &[Decimal]) -> Arrangement {
        let due = Due::Date(jiff::civil::date(2026, 5, 1));
        Arrangement::new(
            1,
            ArrangementKind::Plan,
            amounts.iter().map(|a| (due, *a)).collect(),
            None,
            None,
            Timestamp::UNIX_EPOCH,
        )
    }

    #[test]
    fn money_is_allocated_oldest_instalment_first() {
        let mut a = plan(&[dec("100"), dec("100"), dec("50")]);
        assert_eq!(a.allocate(dec("60")), Allocation::Unchanged);
        assert_eq!(a.instalments[0].paid, dec("60"));
        assert_eq!(a.outstanding(), dec("40"));
        a.cursor = Some(1);
        assert_eq!(a.allocate(dec("90")), Allocation::Moved { from: 0, to: 1 });
        assert_eq!(a.cursor, None, "a new instalment starts its cadence afresh");
        assert_eq!(a.instalments[0].state, InstalmentState::Paid);
        assert_eq!(a.instalments[1].paid, dec("50"));
        assert_eq!(a.outstanding(), dec("50"));
        // One payment can cover several instalments.
        assert_eq!(a.allocate(dec("100")), Allocation::Complete);
        assert!(
            a.instalments
                .iter()
                .all(|i| i.state == InstalmentState::Paid)
        );
    }

    #[test]
    fn a_refund_moves_the_chase_back_to_the_instalment_it_uncovers() {
        let mut a = plan(&[dec("100"), dec("100")]);
        a.allocate(dec("150"));
        assert_eq!(a.current, 1);
        assert_eq!(a.allocate(dec("-80")), Allocation::Moved { from: 1, to: 0 });
        assert_eq!(a.instalments[0].paid, dec("70"));
        assert_eq!(a.instalments[1].paid, dec("0"));
        assert_eq!(a.instalments[0].state, InstalmentState::Pending);
        // Never below zero.
        a.allocate(dec("-1000"));
        assert_eq!(a.received, dec("0"));
    }

    #[test]
    fn a_missed_instalment_stays_missed_until_covered() {
        let mut a = plan(&[dec("100"), dec("100")]);
        a.instalments[0].state = InstalmentState::Missed;
        a.allocate(dec("10"));
        assert_eq!(a.instalments[0].state, InstalmentState::Missed);
        a.allocate(dec("90"));
        assert_eq!(a.instalments[0].state, InstalmentState::Paid);
    }

    #[test]
    fn totals_and_allocation_near_the_decimal_maximum_do_not_panic() {
        let mut a = plan(&[Decimal::MAX, Decimal::MAX]);
        assert_eq!(a.total(), None);
        a.allocate(Decimal::MAX);
        a.allocate(Decimal::MAX);
        assert_eq!(a.received, Decimal::MAX);
        a.allocate(Decimal::MIN);
        assert_eq!(a.received, Decimal::ZERO);
        assert_eq!(plan(&[dec("1"), dec("2")]).total(), Some(dec("3")));
    }
}
