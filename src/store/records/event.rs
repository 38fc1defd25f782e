//! The outbound event record (the events outbox).

use serde::{Deserialize, Serialize};

use super::prim::{BadField, StoredTime};
use crate::domain::{Destination, EventId, EventState, OutboundEvent};

/// [`OutboundEvent`] on disk, layout version 1: one byte of version, then these fields in
/// this order (postcard, no field names). Never reorder or remove fields, nor variants of the
/// enums it uses; a new field means a new version byte (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredEvent {
    /// The id's 16 bytes (creation instant, sequence).
    id: [u8; 16],
    kind: String,
    destination: StoredDestination,
    /// The JSON body, as sent.
    payload: String,
    created_at: StoredTime,
    attempts: u32,
    next_at: StoredTime,
    state: StoredEventState,
    last_error: Option<String>,
    updated_at: StoredTime,
}

/// [`Destination`] on disk (variant index, then the partner's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredDestination {
    Events,
    Partner(String),
}

/// [`EventState`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredEventState {
    Pending,
    Delivered,
    Failed,
}

impl From<&OutboundEvent> for StoredEvent {
    fn from(e: &OutboundEvent) -> Self {
        StoredEvent {
            id: e.id.to_bytes(),
            kind: e.kind.clone(),
            destination: match &e.destination {
                Destination::Events => StoredDestination::Events,
                Destination::Partner(p) => StoredDestination::Partner(p.clone()),
            },
            payload: e.payload.clone(),
            created_at: e.created_at.into(),
            attempts: e.attempts,
            next_at: e.next_at.into(),
            state: match e.state {
                EventState::Pending => StoredEventState::Pending,
                EventState::Delivered => StoredEventState::Delivered,
                EventState::Failed => StoredEventState::Failed,
            },
            last_error: e.last_error.clone(),
            updated_at: e.updated_at.into(),
        }
    }
}

impl TryFrom<StoredEvent> for OutboundEvent {
    type Error = BadField;
    fn try_from(s: StoredEvent) -> Result<Self, BadField> {
        if s.kind.is_empty() {
            return Err(BadField::new("kind", "the event type is empty"));
        }
        Ok(OutboundEvent {
            id: EventId::from_bytes(s.id),
            kind: s.kind,
            destination: match s.destination {
                StoredDestination::Events => Destination::Events,
                StoredDestination::Partner(p) if !p.is_empty() => Destination::Partner(p),
                StoredDestination::Partner(_) => {
                    return Err(BadField::new("destination", "the partner's name is empty"));
                }
            },
            payload: s.payload,
            created_at: s.created_at.get("created_at")?,
            attempts: s.attempts,
            next_at: s.next_at.get("next_at")?,
            state: match s.state {
                StoredEventState::Pending => EventState::Pending,
                StoredEventState::Delivered => EventState::Delivered,
                StoredEventState::Failed => EventState::Failed,
            },
            last_error: s.last_error,
            updated_at: s.updated_at.get("updated_at")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use proptest::prelude::*;

    use super::super::{Record, RecordError};
    use crate::domain::{Destination, EventId, EventState, OutboundEvent};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn full() -> OutboundEvent {
        OutboundEvent {
            id: EventId::new(ts("2026-03-01T12:00:00.123456Z"), 42),
            kind: "invoice.handed_off".into(),
            destination: Destination::Partner("cobranzas_sa".into()),
            payload: r#"{"type":"invoice.handed_off","data":{"amount":"1250000.00"}}"#.into(),
            created_at: ts("2026-03-01T12:00:00.123456789Z"),
            attempts: 3,
            next_at: ts("2026-03-01T12:05:00Z"),
            state: EventState::Failed,
            last_error: Some("endpoint answered 500 Internal Server Error".into()),
            updated_at: ts("2026-03-01T12:04:00Z"),
        }
    }

    fn bare() -> OutboundEvent {
        OutboundEvent::new(
            EventId::new(ts("1969-07-20T20:17:40Z"), 0),
            "invoice.paid",
            Destination::Events,
            "{}".into(),
            ts("1969-07-20T20:17:40Z"),
        )
    }

    /// The layout of version 1, pinned: if this changes, records already on disk would no
    /// longer read back; bump the version instead (see the module docs).
    const GOLDEN_EVENT: &str = "0180064bf535b0f240000000000000002a12696e766f6963652e68616e6465645f6f6666010c636f6272616e7a61735f73613c7b2274797065223a22696e766f6963652e68616e6465645f6f6666222c2264617461223a7b22616d6f756e74223a22313235303030302e3030227d7daab492b3b7f6da98310380e0d9d3f187db983102012b656e64706f696e7420616e7377657265642035303020496e7465726e616c20536572766572204572726f7280809fcfb284db9831";

    #[test]
    fn events_round_trip_and_their_layout_is_pinned() {
        for e in [full(), bare()] {
            let bytes = e.encode().unwrap();
            assert_eq!(bytes[0], OutboundEvent::VERSION);
            assert_eq!(OutboundEvent::decode(&bytes).unwrap(), e);
        }
        assert_eq!(hex::encode(full().encode().unwrap()), GOLDEN_EVENT);
    }

    #[test]
    fn damaged_event_records_are_refused_naming_the_kind() {
        let bytes = full().encode().unwrap();
        let mut newer = bytes.clone();
        newer[0] = 2;
        assert_eq!(
            OutboundEvent::decode(&newer).unwrap_err(),
            RecordError::UnknownVersion {
                kind: "event",
                found: 2,
                expected: 1
            }
        );
        assert_eq!(
            OutboundEvent::decode(&[]).unwrap_err(),
            RecordError::Empty { kind: "event" }
        );
        for len in 1..bytes.len() {
            assert!(matches!(
                OutboundEvent::decode(&bytes[..len]),
                Err(RecordError::Malformed { kind: "event", .. })
            ));
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(matches!(
            OutboundEvent::decode(&longer),
            Err(RecordError::TrailingBytes { count: 1, .. })
        ));
        let mut empty_kind = bare();
        empty_kind.kind.clear();
        assert!(matches!(
            OutboundEvent::decode(&empty_kind.encode().unwrap()),
            Err(RecordError::Invalid { field: "kind", .. })
        ));
    }

    proptest! {
        #[test]
        fn generated_events_round_trip(
            micros in -2_000_000_000_000_000i64..4_000_000_000_000_000,
            seq in any::<u64>(),
            kind in "[a-z_.]{1,30}",
            partner in proptest::option::of("[a-z0-9_]{1,20}"),
            payload in "\\PC{0,200}",
            attempts in any::<u32>(),
            state in 0u8..3,
            last_error in proptest::option::of("\\PC{0,100}"),
        ) {
            let at = Timestamp::from_microsecond(micros).unwrap();
            let e = OutboundEvent {
                id: EventId::new(at, seq),
                kind,
                destination: partner.map_or(Destination::Events, Destination::Partner),
                payload,
                created_at: at,
                attempts,
                next_at: at,
                state: [EventState::Pending, EventState::Delivered, EventState::Failed][usize::from(state)],
                last_error,
                updated_at: at,
            };
            prop_assert_eq!(OutboundEvent::decode(&e.encode().unwrap()).unwrap(), e);
        }

        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = OutboundEvent::decode(&raw);
        }
    }
}
