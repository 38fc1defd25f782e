//! Payment providers: what their webhooks say, in one shape plazo applies.
//!
//! - [`event`]: [`ProviderEvent`], a provider's notification normalised (paid, refunded,
//!   pending...), with every reference that can lead to our invoice.
//! - [`stripe`]: `Stripe-Signature` and Stripe event parsing.
//! - [`mercadopago`]: `x-signature`, the notification, and the `GET /v1/payments/{id}` fetch
//!   that tells what really happened.

pub mod event;
pub mod mercadopago;
pub mod stripe;

pub use event::{InvoiceRefs, ProviderEvent, ProviderEventKind};
