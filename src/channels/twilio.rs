//! SMS through Twilio's Messages API (filled in by the Twilio adapter work).
