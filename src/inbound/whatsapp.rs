//! WhatsApp inbound webhooks (filled in by the WhatsApp adapter work).
