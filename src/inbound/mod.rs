//! Verifying and parsing what other systems push to us.
//!
//! - [`standard_webhooks`]: the Standard Webhooks (Svix) `v1` HMAC-SHA256 scheme, used both to
//!   sign what the webhook channel sends and to verify webhooks we receive.
//! - [`twilio`]: `X-Twilio-Signature` (HMAC-SHA1 over the URL and sorted form fields) and the
//!   status-callback and inbound-message forms.
//! - [`whatsapp`]: `X-Hub-Signature-256`, the `hub.verify_token` challenge, and the Cloud API
//!   webhook envelope (statuses and inbound messages).

pub mod standard_webhooks;
pub mod twilio;
pub mod whatsapp;
