//! WhatsApp Business Cloud API (filled in by the WhatsApp adapter work).
