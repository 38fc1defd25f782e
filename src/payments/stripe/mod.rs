//! Stripe webhooks: [`verify`] the `Stripe-Signature` header on the raw body, then
//! [`parse_event`] the body into a [`ProviderEvent`](super::ProviderEvent).
//!
//! Verification keys HMAC-SHA256 with the whole `whsec_…` secret and accepts any matching `v1`
//! signature whose timestamp is at most the tolerance old (past only, as in the SDKs; see
//! [`MAX_FUTURE_SKEW`] for the future). Parsing maps the events that move money on our
//! invoices (`invoice.paid`, `payment_intent.succeeded`, Checkout Session completion,
//! `charge.refunded`) to `Paid` / `Pending` / `Refunded`, with Stripe's integer minor-unit
//! amounts converted to decimal major units; everything else is `Ignored` with a note.
//!
//! Stripe retries and reorders deliveries: dedupe on the event id.

mod parse;
mod signature;

pub use parse::{PROVIDER, StripeParseError, THIN_EVENT_OBJECT, parse_event};
pub use signature::{
    DEFAULT_TOLERANCE, MAX_FUTURE_SKEW, SIGNATURE_HEADER, StripeSignatureError, sign_header, verify,
};

#[cfg(test)]
mod tests;
