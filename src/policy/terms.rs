//! Payment terms a policy offers and charges: a payment link pattern, an early-payment discount
//! and informational late charges (flat fee per overdue step, daily interest, a cap). Pure
//! functions over an invoice; the balance itself is never changed by them.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::domain::{Due, Invoice};

/// `[payments]` of the policy, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentTerms {
    /// Template of the payment link used when an invoice has no `payment_url`.
    pub link: Option<String>,
    /// Discount for paying early.
    pub early_discount: Option<EarlyDiscount>,
    /// Informational charges once overdue.
    pub late_charges: Option<LateCharges>,
    /// What the regular cadence counts from after a partial payment.
    pub anchor: CadenceAnchor,
    /// The message sent once an invoice is paid in full; `None`: no thank-you.
    pub thank_you: Option<ThankYou>,
}

/// `[payments] thank_you`: one message after an invoice is paid in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThankYou {
    /// Template name (`thank_you`); it exists for the default locale with every part each
    /// channel needs.
    pub template: String,
    /// Channel kinds to try, in order, until one delivers.
    pub channels: Vec<String>,
}

impl ThankYou {
    /// Name of the step on the timeline and in `step.name`.
    pub const STEP: &'static str = "thank_you";
    /// `step.tone` of the thank-you.
    pub const TONE: &'static str = "thanks";
}

/// `[payments] cadence_anchor`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CadenceAnchor {
    /// Steps stay where the original due date puts them.
    #[default]
    DueDate,
    /// Steps not yet sent move later by the days between the due date and the last payment.
    LastPayment,
}

/// "`percent` % off if paid at least `days_before_due` days before the due date".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlyDiscount {
    /// Discount in percent (`2` = 2 %).
    pub percent: Decimal,
    /// How many days before the due date the payment must arrive (inclusive).
    pub days_before_due: u32,
}

/// Charges shown to overdue debtors; never added to the balance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LateCharges {
    /// Flat fee per overdue step reached, in the invoice's currency.
    pub fee_per_step: Option<Decimal>,
    /// Yearly interest in percent, accrued daily (`/365`) on the balance after the due date.
    pub yearly_interest_percent: Option<Decimal>,
    /// Cap of fees plus interest, in percent of the balance (some jurisdictions cap them).
    pub cap_percent: Option<Decimal>,
}

/// An offer open now: pay `amount` by `pay_by` and the invoice is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscountOffer {
    /// Discount in percent.
    pub percent: Decimal,
    /// The discounted amount that settles the invoice.
    pub amount: Decimal,
    /// Last local date on which paying `amount` settles it.
    pub pay_by: Date,
}

/// Charges accrued on an overdue invoice (informational).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargesDue {
    /// Flat fees.
    pub late_fees: Decimal,
    /// Interest.
    pub interest: Decimal,
    /// Balance plus fees plus interest.
    pub total_due: Decimal,
}

fn due_date(due: Due, zone: &TimeZone) -> Date {
    match due {
        Due::Date(d) => d,
        Due::Instant(t) => t.to_zoned(zone.clone()).date(),
    }
}

fn round(amount: Decimal, inv: &Invoice) -> Decimal {
    amount.round_dp_with_strategy(
        inv.currency.minor_units(),
        RoundingStrategy::MidpointAwayFromZero,
    )
}

/// The early-payment offer open at `at` (local date in `zone`), if any (none when the arithmetic
/// would leave the decimal range: never for a bounded balance and percent).
pub fn discount_offer(
    terms: &PaymentTerms,
    inv: &Invoice,
    zone: &TimeZone,
    at: Timestamp,
) -> Option<DiscountOffer> {
    let d = terms.early_discount?;
    if inv.balance <= Decimal::ZERO {
        return None;
    }
    let pay_by = due_date(inv.due_at, zone)
        .checked_sub(jiff::Span::new().days(i64::from(d.days_before_due)))
        .ok()?;
    if at.to_zoned(zone.clone()).date() > pay_by {
        return None;
    }
    let factor = Decimal::ONE.checked_sub(d.percent.checked_div(Decimal::ONE_HUNDRED)?)?;
    let amount = round(inv.balance.checked_mul(factor)?, inv);
    Some(DiscountOffer {
        percent: d.percent,
        amount: inv.currency.bounded("discounted amount", amount).ok()?,
        pay_by,
    })
}

/// True when a payment of `amount` made at `paid_at` settles `inv` through the early-payment
/// discount.
pub fn settles_with_discount(
    terms: &PaymentTerms,
    inv: &Invoice,
    amount: Decimal,
    zone: &TimeZone,
    paid_at: Timestamp,
) -> Option<DiscountOffer> {
    discount_offer(terms, inv, zone, paid_at).filter(|o| amount >= o.amount && amount < inv.balance)
}

/// Late charges at `now` for an invoice that has reached `overdue_steps` overdue steps. `None`
/// when nothing is due, or when a figure would pass the currency's maximum
/// ([`crate::domain::Currency::max_amount`]): then no charges are shown rather than a wrong
/// number or a panic.
pub fn charges_due(
    terms: &PaymentTerms,
    inv: &Invoice,
    overdue_steps: u32,
    zone: &TimeZone,
    now: Timestamp,
) -> Option<ChargesDue> {
    let c = terms.late_charges?;
    let today = now.to_zoned(zone.clone()).date();
    let due = due_date(inv.due_at, zone);
    let days = due.until(today).ok()?.get_days();
    if days <= 0 || inv.balance <= Decimal::ZERO {
        return None;
    }
    let cur = inv.currency;
    let bounded = |what, d: Decimal| cur.bounded(what, round(d, inv)).ok();
    let fees = c
        .fee_per_step
        .unwrap_or_default()
        .checked_mul(Decimal::from(overdue_steps))?;
    let interest = match c.yearly_interest_percent {
        None => Decimal::ZERO,
        Some(r) => inv
            .balance
            .checked_mul(r)?
            .checked_div(Decimal::ONE_HUNDRED)?
            .checked_mul(Decimal::from(days))?
            .checked_div(Decimal::from(365))?,
    };
    let (mut fees, mut interest) = (bounded("late fees", fees)?, bounded("interest", interest)?);
    if let Some(cap) = c.cap_percent {
        let max = bounded(
            "cap",
            inv.balance
                .checked_mul(cap)?
                .checked_div(Decimal::ONE_HUNDRED)?,
        )?;
        if cur.add("late charges", fees, interest).ok()? > max {
            // Fees first, then interest, up to the cap.
            fees = fees.min(max);
            interest = max.checked_sub(fees)?.max(Decimal::ZERO).min(interest);
        }
    }
    let charges = cur.add("late charges", fees, interest).ok()?;
    Some(ChargesDue {
        late_fees: fees,
        interest,
        total_due: cur.add("total due", inv.balance, charges).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ClientId, Currency, InvoiceId, InvoiceStatus};

    fn inv(balance: &str, due: &str) -> Invoice {
        let now = Timestamp::UNIX_EPOCH;
        Invoice {
            id: InvoiceId::new("inv-1").unwrap(),
            client_id: ClientId::new("c-1").unwrap(),
            number: "FV-1".into(),
            currency: Currency::parse("COP").unwrap(),
            amount: balance.parse().unwrap(),
            balance: balance.parse().unwrap(),
            issued_at: None,
            due_at: Due::parse(due).unwrap(),
            payment_url: None,
            metadata: Default::default(),
            status: InvoiceStatus::Open,
            payments: Vec::new(),
            pause: None,
            generation: 0,
            cursor: None,
            pending: None,
            arrangements: Vec::new(),
            created_at: now,
            updated_at: now,
            closed_at: None,
            followed: None,
            escalation: None,
            exhausted: None,
        }
    }

    fn bogota() -> TimeZone {
        TimeZone::get("America/Bogota").unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn terms() -> PaymentTerms {
        PaymentTerms {
            link: None,
            early_discount: Some(EarlyDiscount {
                percent: "2".parse().unwrap(),
                days_before_due: 10,
            }),
            late_charges: Some(LateCharges {
                fee_per_step: Some("15000".parse().unwrap()),
                yearly_interest_percent: Some("24".parse().unwrap()),
                cap_percent: None,
            }),
            anchor: Default::default(),
            thank_you: None,
        }
    }

    #[test]
    fn discount_is_open_until_the_local_pay_by_date_inclusive() {
        let i = inv("1250000", "2026-03-31");
        // Pay by 2026-03-21 (local, UTC-5): 23:59 local on the 21st is 04:59Z on the 22nd.
        let o = discount_offer(&terms(), &i, &bogota(), at("2026-03-22T04:59:00Z")).unwrap();
        assert_eq!(o.amount, "1225000".parse::<Decimal>().unwrap());
        assert_eq!(o.pay_by.to_string(), "2026-03-21");
        assert_eq!(
            discount_offer(&terms(), &i, &bogota(), at("2026-03-22T05:00:00Z")),
            None
        );
        // Exactly the discounted amount settles; less does not; the full amount is just a payment.
        let pay = |a: &str, t: &str| {
            settles_with_discount(&terms(), &i, a.parse().unwrap(), &bogota(), at(t))
        };
        assert!(pay("1225000", "2026-03-20T15:00:00Z").is_some());
        assert!(pay("1224999", "2026-03-20T15:00:00Z").is_none());
        assert!(pay("1225000", "2026-03-25T15:00:00Z").is_none(), "too late");
        assert!(pay("1250000", "2026-03-20T15:00:00Z").is_none());
    }

    #[test]
    fn charges_accrue_daily_after_due_and_respect_the_cap() {
        let i = inv("1000000", "2026-03-01");
        assert_eq!(
            charges_due(&terms(), &i, 0, &bogota(), at("2026-03-01T15:00:00Z")),
            None
        );
        // 10 days late, 2 overdue steps: fees 30,000; interest 1,000,000 × 24 % × 10/365.
        let c = charges_due(&terms(), &i, 2, &bogota(), at("2026-03-11T15:00:00Z")).unwrap();
        assert_eq!(c.late_fees, "30000".parse::<Decimal>().unwrap());
        assert_eq!(c.interest, "6575.34".parse::<Decimal>().unwrap());
        assert_eq!(c.total_due, "1036575.34".parse::<Decimal>().unwrap());
        // Capped at 3 % of the balance: fees first, then interest.
        let mut t = terms();
        if let Some(lc) = t.late_charges.as_mut() {
            lc.cap_percent = Some("3".parse().unwrap());
        }
        let c = charges_due(&t, &i, 2, &bogota(), at("2026-03-11T15:00:00Z")).unwrap();
        assert_eq!(
            c.late_fees + c.interest,
            "30000".parse::<Decimal>().unwrap()
        );
        assert_eq!(c.interest, Decimal::ZERO);
        // A zero-decimal currency rounds to whole units.
        let mut clp = inv("100000", "2026-03-01");
        clp.currency = Currency::parse("CLP").unwrap();
        let c = charges_due(&terms(), &clp, 0, &bogota(), at("2026-03-11T15:00:00Z")).unwrap();
        assert_eq!(c.interest, "658".parse::<Decimal>().unwrap());
    }

    /// Issue 9 item 3: late charges on a huge overdue invoice overflowed and panicked the
    /// dispatcher. Now they are left out (no figure, no panic).
    #[test]
    fn late_charges_on_a_huge_overdue_invoice_do_not_panic() {
        let mut t = terms();
        if let Some(lc) = t.late_charges.as_mut() {
            lc.fee_per_step = Some(Decimal::MAX);
            lc.yearly_interest_percent = Some("1000000".parse().unwrap());
            lc.cap_percent = Some("1000000".parse().unwrap());
        }
        let mut i = inv("1000000", "2000-01-01");
        i.balance = Decimal::MAX;
        let now = at("2026-03-11T15:00:00Z");
        assert_eq!(charges_due(&t, &i, u32::MAX, &bogota(), now), None);
        assert_eq!(charges_due(&terms(), &i, 3, &bogota(), now), None);
        // A total due past the maximum is not shown; a large one within it is.
        i.balance = "999999999999999.99".parse().unwrap();
        assert_eq!(
            charges_due(&terms(), &i, 3, &bogota(), at("2000-01-31T15:00:00Z")),
            None
        );
        i.balance = "100000000000000".parse().unwrap();
        let c = charges_due(&terms(), &i, 3, &bogota(), at("2000-01-31T15:00:00Z")).unwrap();
        assert!(c.total_due <= i.currency.max_amount());
        let mut d = terms();
        if let Some(ed) = d.early_discount.as_mut() {
            ed.percent = Decimal::MAX;
        }
        i.due_at = Due::parse("2099-01-01").unwrap();
        i.balance = Decimal::MAX;
        assert_eq!(discount_offer(&d, &i, &bogota(), now), None);
    }
}
