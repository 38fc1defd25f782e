//! Events out: what plazo tells the ERP/CRM (and partners) about the changes it makes, kept in
//! a durable outbox in the same write as the change, then delivered as signed webhooks.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Why an event id or destination was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventIdError {
    /// Not `evt_` followed by 32 lower-case hex digits.
    #[error("{0:?} is not an event id (evt_ followed by 32 hex digits)")]
    Malformed(String),
    /// A destination that is neither `events` nor `partner:NAME`.
    #[error("{0:?} is not an event destination (events, or partner:NAME)")]
    BadDestination(String),
}

const SIGN_BIT: u64 = 1 << 63;

/// The id of an outbound event, sent as its `webhook-id` on every attempt.
///
/// `evt_` then 32 hex digits: the event's creation instant (microseconds, ordered even before
/// 1970) and a store-wide sequence number, so ids never repeat in a store and sort in the
/// order events were created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId([u8; 16]);

impl EventId {
    /// The id of an event created at `at`, numbered `seq` (a store-wide sequence).
    pub fn new(at: Timestamp, seq: u64) -> Self {
        let micros = i64::try_from(at.as_nanosecond().div_euclid(1000)).unwrap_or(i64::MAX);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&((micros as u64) ^ SIGN_BIT).to_be_bytes());
        b[8..].copy_from_slice(&seq.to_be_bytes());
        EventId(b)
    }

    /// Parses `evt_<32 hex digits>`.
    pub fn parse(s: &str) -> Result<Self, EventIdError> {
        let bad = || EventIdError::Malformed(s.chars().take(64).collect());
        let hex_part = s.strip_prefix("evt_").ok_or_else(bad)?;
        if hex_part.len() != 32 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let raw = hex::decode(hex_part).map_err(|_| bad())?;
        let bytes: [u8; 16] = raw.try_into().map_err(|_| bad())?;
        Ok(EventId(bytes))
    }

    /// The 16 bytes (creation instant, then sequence; both big-endian).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// Rebuilds an id from [`EventId::to_bytes`].
    pub fn from_bytes(b: [u8; 16]) -> Self {
        EventId(b)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "evt_{}", hex::encode(self.0))
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for EventId {
    type Error = EventIdError;
    fn try_from(s: String) -> Result<Self, EventIdError> {
        EventId::parse(&s)
    }
}

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Destination {
    /// The `[events]` endpoint (the ERP/CRM).
    Events,
    /// A partner's endpoint (`[events.partners.NAME]`): hand-offs to that partner.
    Partner(String),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Events => f.write_str("events"),
            Destination::Partner(p) => write!(f, "partner:{p}"),
        }
    }
}

impl From<Destination> for String {
    fn from(d: Destination) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for Destination {
    type Error = EventIdError;
    fn try_from(s: String) -> Result<Self, EventIdError> {
        match s.as_str() {
            "events" => Ok(Destination::Events),
            _ => match s.strip_prefix("partner:") {
                Some(p) if !p.is_empty() => Ok(Destination::Partner(p.to_owned())),
                _ => Err(EventIdError::BadDestination(s)),
            },
        }
    }
}

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Waiting for its next attempt (due at `next_at`).
    Pending,
    /// The endpoint answered 2xx: done.
    Delivered,
    /// Every attempt failed; waits for `POST /v1/events/{id}/retry`.
    Failed,
}

impl EventState {
    /// The state's name in the API (`pending`, `delivered`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Delivered => "delivered",
            EventState::Failed => "failed",
        }
    }

    /// Parses a state's API name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            EventState::Pending,
            EventState::Delivered,
            EventState::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundEvent {
    /// Its id, sent as `webhook-id` on every attempt.
    pub id: EventId,
    /// Its type (`invoice.paid`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it goes.
    pub destination: Destination,
    /// The JSON body sent, byte for byte the same on every attempt.
    pub payload: String,
    /// When the change it reports was made.
    pub created_at: Timestamp,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (state `pending`).
    pub next_at: Timestamp,
    /// Where it is.
    pub state: EventState,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When it last changed (an attempt, a retry).
    pub updated_at: Timestamp,
}

impl OutboundEvent {
    /// A new pending event, due at once.
    pub fn new(
        id: EventId,
        kind: impl Into<String>,
        destination: Destination,
        payload: String,
        now: Timestamp,
    ) -> Self {
        OutboundEvent {
            id,
            kind: kind.into(),
            destination,
            payload,
            created_at: now,
            attempts: 0,
            next_at: now,
            state: EventState::Pending,
            last_error: None,
            updated_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_creation_then_sequence() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let a = EventId::new(t("1969-12-31T23:59:59Z"), 7);
        let b = EventId::new(t("2026-03-01T12:00:00Z"), 1);
        let c = EventId::new(t("2026-03-01T12:00:00Z"), 2);
        assert!(a < b && b < c);
        for id in [a, b, c] {
            let s = id.to_string();
            assert_eq!(s.len(), 36);
            assert_eq!(EventId::parse(&s).unwrap(), id);
            assert_eq!(EventId::from_bytes(id.to_bytes()), id);
        }
        for bad in [
            "",
            "evt_",
            "evt_zz",
            "msg_00",
            &b.to_string().to_uppercase(),
        ] {
            assert!(EventId::parse(bad).is_err(), "{bad}");
        }
        assert!(EventId::parse(&format!("{b}0")).is_err());
    }

    #[test]
    fn destinations_and_states_have_their_api_names() {
        for d in [Destination::Events, Destination::Partner("cobra".into())] {
            assert_eq!(Destination::try_from(d.to_string()).unwrap(), d);
        }
        assert!(Destination::try_from("partner:".to_owned()).is_err());
        assert!(Destination::try_from("crm".to_owned()).is_err());
        for s in ["pending", "delivered", "failed"] {
            assert_eq!(EventState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(EventState::parse("sent"), None);
    }
}
