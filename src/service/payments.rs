use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::invoices::after_money;
use super::provider_payments::{add_credit, apply_money, settling_discount};
use super::timeline::{event, not_found};
use super::{ServiceError, flatten};
use crate::domain::{Currency, InvoiceId, InvoiceStatus, Money, Payment};
use crate::policy::Policy;
use crate::store::{Store, abort};

/// Body of `POST /v1/invoices/{id}/payments`, and the payload of payment webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    /// Amount paid as a plain decimal string (at most 15 integer digits); absent means "the whole balance" (webhook `invoice.paid`).
    #[serde(default)]
    pub amount: Option<String>,
    /// ISO 4217 currency; must be the invoice's.
    pub currency: String,
    /// When the money was paid (RFC 3339, offset within ±23:59); now when absent.
    #[serde(default, deserialize_with = "crate::domain::when::opt_instant")]
    pub paid_at: Option<Timestamp>,
    /// Payment reference, 1 to 200 characters; a second payment with the same reference is a
    /// duplicate.
    pub reference: String,
}

/// What recording a payment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Applied; `balance` remains; `closed` when it reached zero.
    Applied {
        /// Remaining balance.
        balance: Decimal,
        /// Whether the invoice is now paid in full.
        closed: bool,
    },
    /// Already applied (same reference, or same webhook id): nothing changed.
    Duplicate,
}

/// Applies a payment to an invoice. Idempotent by `reference`, and by `webhook_id` when given
/// (the webhook id is remembered in the same transaction). A full payment closes the invoice
/// and cancels its pending reminder.
#[allow(clippy::too_many_arguments)]
pub fn record_payment(
    store: &Store,
    policy: &Policy,
    id: &InvoiceId,
    input: &PaymentInput,
    source: &str,
    webhook_id: Option<&str>,
    now: Timestamp,
) -> Result<PaymentOutcome, ServiceError> {
    let reference = input.reference.trim().to_owned();
    if reference.is_empty()
        || reference.chars().count() > 200
        || reference.chars().any(char::is_control)
    {
        return Err(ServiceError::invalid(
            "reference",
            "must be 1 to 200 characters, without control characters",
        ));
    }
    let currency = Currency::parse(&input.currency)
        .map_err(|e| ServiceError::invalid("currency", e.to_string()))?;
    let amount = match &input.amount {
        Some(a) => {
            let m = Money::parse(a, currency)
                .map_err(|e| ServiceError::invalid("amount", e.to_string()))?;
            if m.amount <= Decimal::ZERO {
                return Err(ServiceError::invalid("amount", "must be greater than zero"));
            }
            Some(m.amount)
        }
        None => None,
    };
    if input
        .paid_at
        .is_some_and(|t| t > now + jiff::SignedDuration::from_hours(24))
    {
        return Err(ServiceError::invalid(
            "paid_at",
            "is more than a day in the future",
        ));
    }
    flatten(store.transaction(|tx| {
        if let Some(wid) = webhook_id {
            if tx.webhook_seen(wid)? {
                return Ok(PaymentOutcome::Duplicate);
            }
        }
        let Some(mut inv) = tx.invoice(id)? else {
            return abort(not_found(id));
        };
        if inv.status == InvoiceStatus::Void {
            return abort(ServiceError::Conflict(format!(
                "invoice {id} is void; record the payment against the invoice that replaced it"
            )));
        }
        if inv.currency != currency {
            return abort(ServiceError::invalid(
                "currency",
                format!("payment is in {currency} but invoice {id} is in {}; convert it first", inv.currency),
            ));
        }
        if inv.payments.iter().any(|p| p.reference == reference) {
            if let Some(wid) = webhook_id {
                tx.mark_webhook(wid, now)?;
            }
            return Ok(PaymentOutcome::Duplicate);
        }
        let paid = amount.unwrap_or(inv.balance);
        let paid_at = input.paid_at.unwrap_or(now);
        let discount = settling_discount(tx, policy, &inv, paid, paid_at)?;
        let money = match apply_money(&inv, paid, discount) {
            Ok(m) => m,
            Err(e) => return abort(ServiceError::invalid("amount", e.to_string())),
        };
        if money.over > Decimal::ZERO && discount.is_none() {
            if let Err(e) = add_credit(tx, &inv, money.over, source, now)? {
                return abort(ServiceError::invalid("amount", e.to_string()));
            }
        }
        inv.balance = money.balance;
        inv.payments.push(Payment {
            amount: paid,
            paid_at,
            reference: reference.clone(),
            source: source.to_owned(),
            same_as: Vec::new(),
        });
        inv.updated_at = now;
        let over = money.over;
        tx.log(&event(
            &inv,
            now,
if let Some(disc) = discount {
                format!("payment {paid} {currency} ref {reference} via {source}; paid early: the {disc} discount settles the invoice")
            } else if over > Decimal::ZERO {
                format!("payment {paid} {currency} ref {reference} via {source}; overpaid by {over}, kept as a credit on the client; balance 0")
            } else {
                format!("payment {paid} {currency} ref {reference} via {source}; balance {}", inv.balance)
            },
        ))?;
        after_money(tx, policy, &mut inv, paid, now)?;
        if let Some(wid) = webhook_id {
            tx.mark_webhook(wid, now)?;
        }
        tx.put_invoice(&inv)?;
        Ok(PaymentOutcome::Applied { balance: inv.balance, closed: inv.balance.is_zero() })
    }))
}
