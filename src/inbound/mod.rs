//! Verifying what other systems push to us: signature schemes for inbound webhooks.
//!
//! - [`standard_webhooks`]: the Standard Webhooks (Svix) `v1` HMAC-SHA256 scheme, used both to
//!   sign what the webhook channel sends and to verify webhooks we receive.

pub mod standard_webhooks;
