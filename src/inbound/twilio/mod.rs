//! Twilio webhooks: `X-Twilio-Signature`, the status-callback form and the inbound-message form.
//!
//! Twilio POSTs `application/x-www-form-urlencoded` forms. A handler should:
//!
//! 1. [`parse_form`] the raw body (every field, duplicates kept, in order);
//! 2. [`verify`] the `X-Twilio-Signature` header against the URL Twilio called (the daemon's
//!    `public_url` + the route path + any query string) and *all* the fields received;
//! 3. read the fields it needs with [`StatusCallback::from_params`] (delivery reports sent to
//!    [`STATUS_CALLBACK_PATH`]) or [`InboundMessage::from_params`] (replies, STOP/START);
//! 4. answer 200; for inbound messages with [`TWIML_EMPTY`] as `text/xml` so Twilio sends no
//!    auto-reply of ours.
//!
//! Webhooks with a JSON body carry `bodySHA256` in their URL instead: use [`verify_json`].
//! The signing key is always the account's auth token (not an API key secret).

mod forms;
#[cfg(test)]
mod fuzz_tests;
mod mapping;
mod signature;

pub use mapping::{delivery_report, error_text, inbound_input};

pub use forms::{
    InboundMessage, StatusCallback, TwilioKeyword, TwilioParseError, delivery_state, parse_form,
};
pub use signature::{
    SIGNATURE_HEADER, TwilioSignatureError, expected_signature, verify, verify_json,
};

/// Path of the delivery-report endpoint, appended to `public_url` for `StatusCallback`.
pub const STATUS_CALLBACK_PATH: &str = "/webhooks/twilio/status";

/// Path of the incoming-message endpoint (set it as the number's or Messaging Service's
/// "A message comes in" webhook: `{public_url}/webhooks/twilio/inbound`).
pub const INBOUND_PATH: &str = "/webhooks/twilio/inbound";

/// TwiML that makes Twilio send nothing back to the person who wrote.
pub const TWIML_EMPTY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

/// `Content-Type` of a TwiML answer.
pub const TWIML_CONTENT_TYPE: &str = "text/xml; charset=utf-8";
