//! Stripe webhooks (filled in by the Stripe work).
