//! A payment provider's notification, normalised.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What a provider event means for an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderEventKind {
    /// Money arrived: apply `amount` (in major units of `currency`).
    Paid,
    /// Money went back (refund, charge-back): re-open the balance by `amount`.
    Refunded,
    /// Nothing to apply yet (e.g. a Checkout session paid by a delayed method, a payment
    /// `in_process`): recorded, not applied.
    Pending,
    /// An event type plazo does not act on: recorded and acknowledged.
    Ignored,
}

/// Every reference in the event that may identify our invoice, tried in this order: metadata
/// (the configured key), `client_reference_id`, `external_reference`, the invoice number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRefs {
    /// `metadata[<configured key>]` (Stripe objects; Mercado Pago `metadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Checkout Session `client_reference_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_reference_id: Option<String>,
    /// Mercado Pago `external_reference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_reference: Option<String>,
    /// The provider invoice's human number (Stripe `number`), matched against ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

/// A provider notification, normalised. Built by [`super::stripe`] and
/// [`super::mercadopago`]; applied by the payments inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEvent {
    /// `stripe` or `mercadopago`.
    pub provider: String,
    /// The provider's event id (Stripe `evt_…`; Mercado Pago `{data.id}:{x-request-id}`):
    /// an event is applied once per id.
    pub event_id: String,
    /// The provider's event type (`invoice.paid`, `payment.updated`...).
    pub event_type: String,
    /// What it means.
    pub kind: ProviderEventKind,
    /// The provider object the money is about (`in_…`, `pi_…`, `cs_…`, `ch_…`, a Mercado Pago
    /// payment id): the payment reference, so the same money is never applied twice through
    /// two events about it.
    pub object_id: String,
    /// Amount paid or refunded, in major units (`1250.00`), when the event says.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub amount: Option<Decimal>,
    /// ISO 4217 code, upper-case, when the event says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// References to our invoice.
    pub refs: InvoiceRefs,
    /// When the provider says it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    /// Other provider ids of the same money (Stripe: the payment intent and charge behind an
    /// invoice, the invoice and charge behind a payment intent), so that one payment reported
    /// by two events (`invoice.paid` and `payment_intent.succeeded`) is applied once, whichever
    /// comes first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same_payment: Vec<String>,
    /// Why the event is `Pending` or `Ignored`, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
