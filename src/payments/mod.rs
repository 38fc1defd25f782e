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

use std::time::Duration;

use futures::future::BoxFuture;

/// Why fetching a payment from a provider's API failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    /// Worth retrying later (timeouts, 5xx, 429).
    pub transient: bool,
    /// What went wrong (never a credential).
    pub message: String,
    /// How long the provider asked us to wait, if it said.
    pub retry_after: Option<Duration>,
}

/// Turns a notification that only names a payment into the event it stands for, by asking the
/// provider's API (Mercado Pago: `GET /v1/payments/{id}`).
pub trait PaymentFetcher: Send + Sync + 'static {
    /// Fetches payment `data_id` and describes it as event `event_id` of type `event_type`.
    fn fetch<'a>(
        &'a self,
        data_id: &'a str,
        event_id: &'a str,
        event_type: &'a str,
    ) -> BoxFuture<'a, Result<ProviderEvent, FetchFailure>>;
}
