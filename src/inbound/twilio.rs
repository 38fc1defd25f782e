//! Twilio inbound webhooks (filled in by the Twilio adapter work).
