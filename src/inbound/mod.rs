//! Verifying and parsing what other systems push to us.
//!
//! - [`payment_event`]: the body of a Standard Webhooks payment event, as a payment to record.
//! - [`standard_webhooks`]: the Standard Webhooks (Svix) `v1` HMAC-SHA256 scheme, used both to
//!   sign what the webhook channel sends and to verify webhooks we receive.
//! - [`twilio`]: `X-Twilio-Signature` (HMAC-SHA1 over the URL and sorted form fields) and the
//!   status-callback and inbound-message forms.
//! - [`whatsapp`]: `X-Hub-Signature-256`, the `hub.verify_token` challenge, and the Cloud API
//!   webhook envelope (statuses and inbound messages).
//!
//! Each provider's mapping onto the service layer's inputs lives here too, so the HTTP
//! handlers only verify, parse, call the service and answer.

pub mod payment_event;
pub mod standard_webhooks;
pub mod twilio;
pub mod whatsapp;
