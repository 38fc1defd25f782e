//! Round trips of every record kind (every optional field set and unset, every enum variant),
//! the version byte, pinned layouts, validation on decode, and decoding garbage without panics.

use std::collections::BTreeMap;
use std::fmt::Debug;

use jiff::Timestamp;
use jiff::civil::Date;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::option::of as opt;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde::Serialize;

use super::*;
use crate::domain::{
    Arrangement, ArrangementKind, ArrangementState, AttemptOutcome, AwaitingReceipt, ClientId,
    ContactEventKind, Credit, Currency, DeliveryState, Due, InboxPayload, InboxState, Instalment,
    InstalmentState, InvoiceStatus, OptOut, Pause, Payment, ReminderId, ReminderState, Track,
    Unreachable,
};
use crate::payments::{InvoiceRefs, ProviderEvent, ProviderEventKind};

// ---------------------------------------------------------------------------------------------
// Every variant of every enum a record holds.

const INVOICE_STATUSES: [InvoiceStatus; 5] = [
    InvoiceStatus::Open,
    InvoiceStatus::Paid,
    InvoiceStatus::HandedOff,
    InvoiceStatus::WrittenOff,
    InvoiceStatus::Void,
];
const ARRANGEMENT_KINDS: [ArrangementKind; 2] = [ArrangementKind::Promise, ArrangementKind::Plan];
const ARRANGEMENT_STATES: [ArrangementState; 4] = [
    ArrangementState::Active,
    ArrangementState::Kept,
    ArrangementState::Broken,
    ArrangementState::Cancelled,
];
const INSTALMENT_STATES: [InstalmentState; 3] = [
    InstalmentState::Pending,
    InstalmentState::Paid,
    InstalmentState::Missed,
];
const REMINDER_STATES: [ReminderState; 9] = [
    ReminderState::Scheduled,
    ReminderState::Claimed,
    ReminderState::AwaitingReceipt,
    ReminderState::Sent,
    ReminderState::Failed,
    ReminderState::Skipped,
    ReminderState::Cancelled,
    ReminderState::Unknown,
    ReminderState::Checked,
];
const TRACKS: [Track; 5] = [
    Track::Cadence,
    Track::Instalment {
        arrangement: 2,
        instalment: 3,
    },
    Track::Deadline {
        arrangement: 4,
        instalment: u32::MAX,
    },
    Track::Broken { arrangement: 5 },
    Track::ThankYou,
];
const OUTCOMES: [AttemptOutcome; 10] = [
    AttemptOutcome::Sent,
    AttemptOutcome::RetryScheduled,
    AttemptOutcome::Failed,
    AttemptOutcome::Skipped,
    AttemptOutcome::Cancelled,
    AttemptOutcome::Deferred,
    AttemptOutcome::Unknown,
    AttemptOutcome::Event,
    AttemptOutcome::Receipt,
    AttemptOutcome::Note,
];
const DELIVERY_STATES: [DeliveryState; 6] = [
    DeliveryState::Accepted,
    DeliveryState::Sent,
    DeliveryState::Delivered,
    DeliveryState::Read,
    DeliveryState::Undelivered,
    DeliveryState::Failed,
];
const CONTACT_EVENT_KINDS: [ContactEventKind; 5] = [
    ContactEventKind::Inbound,
    ContactEventKind::OptOut,
    ContactEventKind::OptIn,
    ContactEventKind::Unreachable,
    ContactEventKind::Note,
];
const INBOX_STATES: [InboxState; 5] = [
    InboxState::Received,
    InboxState::Applied,
    InboxState::Unmatched,
    InboxState::Flagged,
    InboxState::Failed,
];
const EVENT_KINDS: [ProviderEventKind; 4] = [
    ProviderEventKind::Paid,
    ProviderEventKind::Refunded,
    ProviderEventKind::Pending,
    ProviderEventKind::Ignored,
];

// ---------------------------------------------------------------------------------------------
// Hand-built values: `full_*` sets every optional field (and fills every list and map),
// `bare_*` leaves them all unset.

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn cid(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

fn iid(s: &str) -> InvoiceId {
    InvoiceId::new(s).unwrap()
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn full_client() -> Client {
    Client {
        id: cid("c-1"),
        name: s("María Pérez"),
        email: Some(s("maria@example.co")),
        phone: Some(s("+573001234567")),
        whatsapp: Some(s("+573007654321")),
        locale: Some(s("es-CO")),
        timezone: Some(s("America/Bogota")),
        country: Some(s("CO")),
        subdivision: Some(s("CO-ANT")),
        blocked_times: vec![crate::domain::BlockedTime {
            days: s("mon-fri"),
            from: s("12:00"),
            to: s("14:00"),
        }],
        segment: Some(s("vip")),
        preferred_channels: vec![s("whatsapp"), s("email")],
        tags: vec![s("vip"), s("retail")],
        credits: BTreeMap::from([
            (
                s("COP"),
                Credit {
                    amount: dec("1500.50"),
                    sources: vec![s("overpayment of inv-1 via stripe:in_1")],
                },
            ),
            (
                s("USD"),
                Credit {
                    amount: dec("0.10"),
                    sources: vec![],
                },
            ),
        ]),
        broken_promises: 3,
        facts: crate::domain::FactsLedger {
            paid: vec![crate::domain::PaidInvoice {
                invoice_id: iid("inv-0"),
                closed_at: ts("2026-02-20T10:00:00Z"),
                days_late: 12,
                amount: dec("250000.00"),
                currency: crate::domain::Currency::parse("COP").unwrap(),
            }],
            paid_count: 1,
            promises_kept: 2,
            last_payment_at: Some(ts("2026-02-20T10:00:00Z")),
            last_inbound_at: Some(ts("2026-02-21T09:00:00Z")),
        },
        created_at: ts("2026-03-01T12:00:00.123456789Z"),
        updated_at: ts("2026-03-02T08:30:00Z"),
    }
}

fn bare_client() -> Client {
    Client {
        id: cid("c"),
        name: String::new(),
        email: None,
        phone: None,
        whatsapp: None,
        locale: None,
        timezone: None,
        country: None,
        subdivision: None,
        blocked_times: Vec::new(),
        segment: None,
        preferred_channels: vec![],
        tags: vec![],
        credits: BTreeMap::new(),
        broken_promises: 0,
        facts: Default::default(),
        created_at: Timestamp::UNIX_EPOCH,
        updated_at: Timestamp::UNIX_EPOCH,
    }
}

fn full_arrangement() -> Arrangement {
    Arrangement {
        id: 1,
        kind: ArrangementKind::Plan,
        state: ArrangementState::Broken,
        instalments: vec![
            Instalment {
                due: Due::Date(Date::constant(2026, 4, 1)),
                amount: dec("600000.00"),
                paid: dec("600000.00"),
                state: InstalmentState::Paid,
            },
            Instalment {
                due: Due::Instant(ts("2026-05-01T17:00:00Z")),
                amount: dec("650000.00"),
                paid: dec("0"),
                state: InstalmentState::Missed,
            },
        ],
        channel: Some(s("phone")),
        note: Some(s("two halves")),
        received: dec("600000.00"),
        current: 1,
        cursor: Some(2),
        created_at: ts("2026-03-20T10:00:00Z"),
        closed_at: Some(ts("2026-05-04T00:00:00Z")),
        outcome: Some(s("instalment 2 missed")),
        broken_cursor: Some(0),
        broken_done: true,
    }
}

fn full_invoice() -> Invoice {
    Invoice {
        id: iid("INV-1001"),
        client_id: cid("c-1"),
        number: s("FV-1001"),
        currency: Currency::parse("COP").unwrap(),
        amount: dec("1250000.00"),
        balance: dec("650000.00"),
        issued_at: Some(Date::constant(2026, 2, 13)),
        due_at: Due::Date(Date::constant(2026, 3, 15)),
        payment_url: Some(s("https://pay.example.co/FV-1001")),
        metadata: BTreeMap::from([(s("erp"), s("sap")), (s("branch"), s("norte"))]),
        status: InvoiceStatus::Open,
        payments: vec![Payment {
            amount: dec("600000.00"),
            paid_at: ts("2026-04-01T15:04:05.5Z"),
            reference: s("stripe:in_1"),
            source: s("webhook:stripe"),
            same_as: vec![s("stripe:pi_1"), s("stripe:ch_1")],
        }],
        pause: Some(Pause {
            reason: s("dispute"),
            until: Some(ts("2026-06-01T00:00:00Z")),
            since: ts("2026-05-10T09:00:00Z"),
        }),
        generation: 2,
        cursor: Some(4),
        pending: Some(ReminderId::derive(&iid("INV-1001"), 2, 5)),
        arrangements: vec![full_arrangement()],
        created_at: ts("2026-02-13T12:00:00.000001Z"),
        updated_at: ts("2026-05-10T09:00:00Z"),
        closed_at: Some(ts("2026-06-10T00:00:00Z")),
        followed: Some(crate::domain::Followed {
            segment: s("late_payers"),
            cadence: s("firm"),
        }),
        escalation: Some(crate::domain::Escalation {
            kind: crate::domain::EscalationKind::HandedOff,
            partner: Some(s("cobranzas_norte")),
            reason: Some(s("90 days overdue")),
            at: ts("2026-06-01T12:00:00Z"),
            balance: dec("650000.00"),
            recovered: dec("100000.00"),
        }),
        exhausted: Some(2),
    }
}

fn bare_arrangement() -> Arrangement {
    Arrangement {
        id: 0,
        kind: ArrangementKind::Promise,
        state: ArrangementState::Active,
        instalments: vec![],
        channel: None,
        note: None,
        received: Decimal::ZERO,
        current: 0,
        cursor: None,
        created_at: Timestamp::UNIX_EPOCH,
        closed_at: None,
        outcome: None,
        broken_cursor: None,
        broken_done: false,
    }
}

fn bare_invoice() -> Invoice {
    Invoice {
        id: iid("i"),
        client_id: cid("c"),
        number: String::new(),
        currency: Currency::parse("CLP").unwrap(),
        amount: Decimal::ZERO,
        balance: Decimal::ZERO,
        issued_at: None,
        due_at: Due::Instant(Timestamp::UNIX_EPOCH),
        payment_url: None,
        metadata: BTreeMap::new(),
        status: InvoiceStatus::Paid,
        payments: vec![],
        pause: Some(Pause {
            reason: String::new(),
            until: None,
            since: Timestamp::UNIX_EPOCH,
        }),
        generation: 0,
        cursor: None,
        pending: None,
        arrangements: vec![bare_arrangement()],
        created_at: Timestamp::UNIX_EPOCH,
        updated_at: Timestamp::UNIX_EPOCH,
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    }
}

fn full_reminder() -> Reminder {
    let invoice_id = iid("INV-1001");
    Reminder {
        id: ReminderId::derive(&invoice_id, 2, 5),
        invoice_id,
        client_id: cid("c-1"),
        generation: 2,
        track: Track::Instalment {
            arrangement: 1,
            instalment: 1,
        },
        step_index: 5,
        step_name: s("final_notice"),
        cadence: s("default"),
        planned_at: ts("2026-03-20T14:00:00Z"),
        fire_at: ts("2026-03-20T14:05:00.000000123Z"),
        state: ReminderState::AwaitingReceipt,
        attempts: 2,
        channel_index: 1,
        last_error: Some(s("smtp 451: try later")),
        awaiting: Some(AwaitingReceipt {
            provider: s("twilio"),
            provider_message_id: s("SM0123456789abcdef"),
            kind: s("sms"),
            channel_index: 1,
            since: ts("2026-03-20T14:05:01Z"),
        }),
        rate_slot: Some(ts("2026-03-20T14:05:00Z")),
    }
}

fn bare_reminder() -> Reminder {
    Reminder {
        id: ReminderId::from_bytes([0; 16]),
        invoice_id: iid("i"),
        client_id: cid("c"),
        generation: 0,
        track: Track::Cadence,
        step_index: 0,
        step_name: String::new(),
        cadence: String::new(),
        planned_at: Timestamp::MIN,
        fire_at: Timestamp::MAX,
        state: ReminderState::Scheduled,
        attempts: 0,
        channel_index: 0,
        last_error: None,
        awaiting: None,
        rate_slot: None,
    }
}

fn full_attempt() -> Attempt {
    Attempt {
        at: ts("2026-03-20T14:05:00.987654321Z"),
        invoice_id: iid("INV-1001"),
        reminder_id: Some(ReminderId::derive(&iid("INV-1001"), 2, 5)),
        step: Some(s("final_notice")),
        channel: Some(s("sms")),
        recipient: Some(s("+573001234567")),
        outcome: AttemptOutcome::Receipt,
        provider_message_id: Some(s("SM0123456789abcdef")),
        delivery: Some(DeliveryState::Delivered),
        detail: Some(s("delivered to the handset")),
    }
}

fn bare_attempt() -> Attempt {
    Attempt {
        at: Timestamp::UNIX_EPOCH,
        invoice_id: iid("i"),
        reminder_id: None,
        step: None,
        channel: None,
        recipient: None,
        outcome: AttemptOutcome::Event,
        provider_message_id: None,
        delivery: None,
        detail: None,
    }
}

fn full_contact() -> Contact {
    Contact {
        address: s("+573001234567"),
        opt_outs: BTreeMap::from([(
            s("sms"),
            OptOut {
                at: ts("2026-03-01T10:00:00Z"),
                source: s("keyword BAJA via sms"),
            },
        )]),
        unreachable: BTreeMap::from([(
            s("whatsapp"),
            Unreachable {
                at: ts("2026-03-02T10:00:00Z"),
                reason: s("whatsapp error 131026"),
            },
        )]),
        last_inbound: BTreeMap::from([
            (s("sms"), ts("2026-03-03T10:00:00.5Z")),
            (s("whatsapp"), ts("2026-03-04T10:00:00Z")),
        ]),
        clients: [cid("c-1"), cid("c-2")].into_iter().collect(),
    }
}

fn bare_contact() -> Contact {
    Contact::new("")
}

fn full_sent_message() -> SentMessage {
    SentMessage {
        provider: s("twilio"),
        provider_message_id: s("SM0123456789abcdef"),
        reminder_id: ReminderId::derive(&iid("INV-1001"), 2, 5),
        invoice_id: iid("INV-1001"),
        client_id: cid("c-1"),
        step: s("final_notice"),
        kind: s("sms"),
        channel_index: 1,
        recipient: s("+573001234567"),
        state: DeliveryState::Undelivered,
        sent_at: ts("2026-03-20T14:05:00Z"),
        updated_at: ts("2026-03-20T14:06:00.25Z"),
        error: Some(s("30003: unreachable handset")),
    }
}

fn bare_sent_message() -> SentMessage {
    SentMessage {
        error: None,
        state: DeliveryState::Accepted,
        ..full_sent_message()
    }
}

fn full_contact_event() -> ContactEvent {
    ContactEvent {
        at: ts("2026-03-21T09:00:00Z"),
        client_id: cid("c-1"),
        event: ContactEventKind::Inbound,
        channel: s("whatsapp"),
        address: s("+573001234567"),
        text: Some(s("ya pagué 🙏\nmañana envío el soporte")),
        provider_message_id: Some(s("wamid.HBgL")),
        detail: Some(s("window opened")),
    }
}

fn bare_contact_event() -> ContactEvent {
    ContactEvent {
        text: None,
        provider_message_id: None,
        detail: None,
        event: ContactEventKind::OptIn,
        ..full_contact_event()
    }
}

fn full_event() -> ProviderEvent {
    ProviderEvent {
        provider: s("stripe"),
        event_id: s("evt_1"),
        event_type: s("invoice.paid"),
        kind: ProviderEventKind::Refunded,
        object_id: s("in_1"),
        amount: Some(dec("1250.00")),
        currency: Some(s("USD")),
        refs: InvoiceRefs {
            metadata: Some(s("INV-1001")),
            client_reference_id: Some(s("cr-1")),
            external_reference: Some(s("ext-1")),
            number: Some(s("FV-1001")),
        },
        occurred_at: Some(ts("2026-04-01T15:04:05Z")),
        same_payment: vec![s("pi_1"), s("ch_1")],
        note: Some(s("refund")),
    }
}

fn bare_event() -> ProviderEvent {
    ProviderEvent {
        provider: String::new(),
        event_id: String::new(),
        event_type: String::new(),
        kind: ProviderEventKind::Ignored,
        object_id: String::new(),
        amount: None,
        currency: None,
        refs: InvoiceRefs::default(),
        occurred_at: None,
        same_payment: vec![],
        note: None,
    }
}

fn full_inbox_entry() -> InboxEntry {
    InboxEntry {
        key: s("stripe:evt_1"),
        payload: InboxPayload::Event {
            event: Box::new(full_event()),
        },
        received_at: ts("2026-04-01T15:04:06Z"),
        state: InboxState::Flagged,
        attempts: 3,
        next_attempt_at: ts("2026-04-01T15:09:06Z"),
        event: Some(full_event()),
        invoice_id: Some(iid("INV-1001")),
        detail: Some(s("currency mismatch: USD vs COP")),
        updated_at: ts("2026-04-01T15:04:07Z"),
    }
}

fn bare_inbox_entry() -> InboxEntry {
    InboxEntry {
        key: String::new(),
        payload: InboxPayload::Event {
            event: Box::new(bare_event()),
        },
        received_at: Timestamp::UNIX_EPOCH,
        state: InboxState::Received,
        attempts: 0,
        next_attempt_at: Timestamp::UNIX_EPOCH,
        event: None,
        invoice_id: None,
        detail: None,
        updated_at: Timestamp::UNIX_EPOCH,
    }
}

fn inbox_payloads() -> Vec<InboxPayload> {
    vec![
        InboxPayload::Event {
            event: Box::new(full_event()),
        },
        InboxPayload::Fetch {
            provider: s("mercadopago"),
            data_id: s("123456"),
            action: Some(s("payment.updated")),
        },
        InboxPayload::Fetch {
            provider: s("mercadopago"),
            data_id: s("123456"),
            action: None,
        },
        InboxPayload::Unreadable {
            provider: s("stripe"),
            error: s("missing field `id`"),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Checks shared by every kind.

/// Encodes `v`, checks the version byte, decodes it back and checks it is the same value,
/// decimals' scales included (the JSON forms are compared too: `10.00` and `10.0` are equal
/// decimals but different records). Returns the encoding.
fn round_trip<T: Record + PartialEq + Debug + Serialize>(v: &T) -> Vec<u8> {
    let bytes = v.encode().unwrap();
    assert_eq!(
        bytes.first(),
        Some(&T::VERSION),
        "{} records start with their version byte",
        T::KIND
    );
    let back = T::decode(&bytes).unwrap_or_else(|e| panic!("{e}: {v:?}"));
    assert_eq!(&back, v);
    assert_eq!(
        serde_json::to_string(&back).unwrap(),
        serde_json::to_string(v).unwrap()
    );
    bytes
}

/// Unknown versions, emptiness, truncation and trailing bytes are refused, naming the kind.
fn refuses_damage<T: Record + Debug>(v: &T) {
    let bytes = v.encode().unwrap();
    for version in [0u8, T::VERSION + 1, 255] {
        let mut other = bytes.clone();
        other[0] = version;
        let err = T::decode(&other).unwrap_err();
        assert_eq!(
            err,
            RecordError::UnknownVersion {
                kind: T::KIND,
                found: version,
                expected: T::VERSION
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains(T::KIND)
                && msg.contains(&format!("version {version}"))
                && msg.contains(&format!("version {}", T::VERSION)),
            "{msg}"
        );
    }
    assert_eq!(
        T::decode(&[]).unwrap_err(),
        RecordError::Empty { kind: T::KIND }
    );
    for len in 1..bytes.len() {
        let err = T::decode(&bytes[..len]).unwrap_err();
        assert!(
            matches!(err, RecordError::Malformed { kind, version, .. } if kind == T::KIND && version == T::VERSION),
            "a {} record cut to {len} of {} bytes: {err:?}",
            T::KIND,
            bytes.len()
        );
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0, 0]);
    assert_eq!(
        T::decode(&longer).unwrap_err(),
        RecordError::TrailingBytes {
            kind: T::KIND,
            version: T::VERSION,
            count: 2
        }
    );
}

/// Decodes `raw` as every kind; only a panic can fail.
fn decode_as_every_kind(raw: &[u8]) {
    let _ = Client::decode(raw);
    let _ = Invoice::decode(raw);
    let _ = Reminder::decode(raw);
    let _ = Attempt::decode(raw);
    let _ = Contact::decode(raw);
    let _ = SentMessage::decode(raw);
    let _ = ContactEvent::decode(raw);
    let _ = InboxEntry::decode(raw);
    let _ = Timestamp::decode(raw);
    let _ = InvoiceId::decode(raw);
}

/// The encodings of every `full_*` value, as seeds for mutation.
fn full_encodings() -> Vec<Vec<u8>> {
    vec![
        full_client().encode().unwrap(),
        full_invoice().encode().unwrap(),
        full_reminder().encode().unwrap(),
        full_attempt().encode().unwrap(),
        full_contact().encode().unwrap(),
        full_sent_message().encode().unwrap(),
        full_contact_event().encode().unwrap(),
        full_inbox_entry().encode().unwrap(),
        ts("2026-03-01T12:00:00.123456789Z").encode().unwrap(),
        iid("INV-1001").encode().unwrap(),
    ]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Deterministic tests.

#[test]
fn every_kind_round_trips_with_every_optional_field_set_and_unset() {
    round_trip(&full_client());
    round_trip(&bare_client());
    round_trip(&full_invoice());
    round_trip(&bare_invoice());
    let mut no_pause = bare_invoice();
    no_pause.pause = None;
    no_pause.arrangements.clear();
    round_trip(&no_pause);
    round_trip(&full_reminder());
    round_trip(&bare_reminder());
    round_trip(&full_attempt());
    round_trip(&bare_attempt());
    round_trip(&full_contact());
    round_trip(&bare_contact());
    round_trip(&full_sent_message());
    round_trip(&bare_sent_message());
    round_trip(&full_contact_event());
    round_trip(&bare_contact_event());
    round_trip(&full_inbox_entry());
    round_trip(&bare_inbox_entry());
    for t in [
        Timestamp::MIN,
        Timestamp::MAX,
        Timestamp::UNIX_EPOCH,
        ts("1900-01-01T00:00:00.000000001Z"),
        ts("2999-12-31T23:59:59.999999999Z"),
    ] {
        round_trip(&t);
    }
    round_trip(&iid("INV-1001"));
    round_trip(&iid(&"x".repeat(128)));
}

#[test]
fn every_enum_variant_round_trips() {
    for status in INVOICE_STATUSES {
        round_trip(&Invoice {
            status,
            ..full_invoice()
        });
    }
    for kind in [
        crate::domain::EscalationKind::HandedOff,
        crate::domain::EscalationKind::WrittenOff,
        crate::domain::EscalationKind::Voided,
    ] {
        let mut inv = full_invoice();
        if let Some(e) = inv.escalation.as_mut() {
            e.kind = kind;
        }
        round_trip(&inv);
    }
    for kind in ARRANGEMENT_KINDS {
        for state in ARRANGEMENT_STATES {
            for inst in INSTALMENT_STATES {
                let mut inv = full_invoice();
                inv.arrangements[0].kind = kind;
                inv.arrangements[0].state = state;
                inv.arrangements[0].instalments[0].state = inst;
                round_trip(&inv);
            }
        }
    }
    for due in [
        Due::Date(Date::constant(1900, 1, 1)),
        Due::Date(Date::constant(2999, 12, 31)),
        Due::Date(Date::MIN),
        Due::Date(Date::MAX),
        Due::Instant(ts("2026-03-15T17:00:00.5Z")),
        Due::Instant(Timestamp::MIN),
    ] {
        round_trip(&Invoice {
            due_at: due,
            ..full_invoice()
        });
    }
    for currency in Currency::all() {
        round_trip(&Invoice {
            currency,
            ..full_invoice()
        });
    }
    for state in REMINDER_STATES {
        for track in TRACKS {
            round_trip(&Reminder {
                state,
                track,
                ..full_reminder()
            });
        }
    }
    for outcome in OUTCOMES {
        for delivery in DELIVERY_STATES.map(Some).into_iter().chain([None]) {
            round_trip(&Attempt {
                outcome,
                delivery,
                ..full_attempt()
            });
        }
    }
    for state in DELIVERY_STATES {
        round_trip(&SentMessage {
            state,
            ..full_sent_message()
        });
    }
    for event in CONTACT_EVENT_KINDS {
        round_trip(&ContactEvent {
            event,
            ..full_contact_event()
        });
    }
    for state in INBOX_STATES {
        for payload in inbox_payloads() {
            round_trip(&InboxEntry {
                state,
                payload,
                ..full_inbox_entry()
            });
        }
    }
    for kind in EVENT_KINDS {
        round_trip(&InboxEntry {
            event: Some(ProviderEvent {
                kind,
                ..full_event()
            }),
            ..full_inbox_entry()
        });
    }
}

#[test]
fn decimals_keep_their_scale_and_sign_exactly() {
    let mut negative_zero = Decimal::new(0, 2);
    negative_zero.set_sign_negative(true);
    for d in [
        dec("10.00"),
        dec("10.0"),
        dec("10"),
        dec("0.000"),
        negative_zero,
        dec("-1.5"),
        Decimal::MAX,
        Decimal::MIN,
        Decimal::new(1, 28),
        dec("999999999999999.99"),
    ] {
        let inv = Invoice {
            amount: d,
            balance: d,
            ..full_invoice()
        };
        let back = Invoice::decode(&inv.encode().unwrap()).unwrap();
        assert_eq!(back.amount.serialize(), d.serialize(), "{d}");
        assert_eq!(back.balance.serialize(), d.serialize(), "{d}");
    }
}

#[test]
fn every_kind_refuses_unknown_versions_truncation_and_trailing_bytes() {
    refuses_damage(&full_client());
    refuses_damage(&full_invoice());
    refuses_damage(&full_reminder());
    refuses_damage(&full_attempt());
    refuses_damage(&full_contact());
    refuses_damage(&full_sent_message());
    refuses_damage(&full_contact_event());
    refuses_damage(&full_inbox_entry());
    refuses_damage(&ts("2026-03-01T12:00:00Z"));
    refuses_damage(&iid("INV-1001"));
}

/// Swaps the first occurrence of `from` in `raw` for `to` (same length).
fn replace(raw: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = raw
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut out = raw.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

#[test]
fn values_the_domain_refuses_are_decode_errors_naming_the_field() {
    let inv = full_invoice().encode().unwrap();
    let err = Invoice::decode(&replace(&inv, b"COP", b"XYZ")).unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::Invalid {
                kind: "invoice",
                version: 2,
                field: "currency",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("XYZ"), "{err}");
    let err = Invoice::decode(&replace(&inv, b"INV-1001", b"INV/1001")).unwrap_err();
    assert!(
        matches!(err, RecordError::Invalid { field: "id", .. }),
        "{err:?}"
    );
    let rem = full_reminder().encode().unwrap();
    let err = Reminder::decode(&replace(&rem, b"c-1", b"c 1")).unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::Invalid {
                kind: "reminder",
                field: "client_id",
                ..
            }
        ),
        "{err:?}"
    );
    let contact = full_contact().encode().unwrap();
    let err = Contact::decode(&replace(&contact, b"c-2", b"c\n2")).unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::Invalid {
                field: "clients",
                ..
            }
        ),
        "{err:?}"
    );
    let id = iid("INV-1").encode().unwrap();
    assert!(matches!(
        InvoiceId::decode(&replace(&id, b"INV-1", b"INV 1")),
        Err(RecordError::Invalid {
            kind: "invoice id",
            ..
        })
    ));
    // An instant past jiff's range: version 1, then a zig-zag varint far too large.
    let mut far = vec![1u8];
    far.extend(postcard::to_stdvec(&(i128::MAX / 2)).unwrap());
    assert!(matches!(
        Timestamp::decode(&far),
        Err(RecordError::Invalid {
            kind: "timestamp",
            field: "instant",
            ..
        })
    ));
    // Not UTF-8 where a string is expected.
    let err = Invoice::decode(&replace(&inv, b"FV-1001", b"FV-\xff001")).unwrap_err();
    assert!(matches!(err, RecordError::Malformed { .. }), "{err:?}");
}

/// Clients written before subdivisions (layout version 2) read back with none, facts kept.
#[test]
fn version_2_clients_still_decode() {
    let client = Client::decode(&unhex(GOLDEN_CLIENT_V2)).unwrap();
    assert_eq!(
        client,
        Client {
            subdivision: None,
            blocked_times: Vec::new(),
            ..full_client()
        }
    );
}

/// Records written by the builds before client facts and segment tracking (client and
/// invoice layout version 1) still read back: the client with an empty facts ledger, the
/// invoice following no recorded segment.
#[test]
fn version_1_clients_and_invoices_still_decode() {
    let client = Client::decode(&unhex(GOLDEN_CLIENT)).unwrap();
    let expected = Client {
        facts: Default::default(),
        subdivision: None,
        blocked_times: Vec::new(),
        ..full_client()
    };
    assert_eq!(client, expected);
    let invoice = Invoice::decode(&unhex(GOLDEN_INVOICE)).unwrap();
    let expected = Invoice {
        followed: None,
        escalation: None,
        exhausted: None,
        ..full_invoice()
    };
    assert_eq!(invoice, expected);
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The byte layout of the current versions, pinned: if one of these changes, a field or variant was
/// added, removed or moved without a new version byte, and records already on disk would no
/// longer read back. Bump the kind's version instead (see the module docs).
#[test]
fn current_layouts_are_pinned() {
    let pinned: [(&str, Vec<u8>, &str); 10] = [
        ("client", full_client().encode().unwrap(), GOLDEN_CLIENT_V3),
        (
            "invoice",
            full_invoice().encode().unwrap(),
            GOLDEN_INVOICE_V2,
        ),
        (
            "reminder",
            full_reminder().encode().unwrap(),
            GOLDEN_REMINDER,
        ),
        ("attempt", full_attempt().encode().unwrap(), GOLDEN_ATTEMPT),
        ("contact", full_contact().encode().unwrap(), GOLDEN_CONTACT),
        (
            "sent message",
            full_sent_message().encode().unwrap(),
            GOLDEN_SENT_MESSAGE,
        ),
        (
            "contact event",
            full_contact_event().encode().unwrap(),
            GOLDEN_CONTACT_EVENT,
        ),
        (
            "inbox entry",
            full_inbox_entry().encode().unwrap(),
            GOLDEN_INBOX_ENTRY,
        ),
        (
            "timestamp",
            ts("2026-03-01T12:00:00.123456789Z").encode().unwrap(),
            GOLDEN_TIMESTAMP,
        ),
        (
            "invoice id",
            iid("INV-1001").encode().unwrap(),
            GOLDEN_INVOICE_ID,
        ),
    ];
    let changed: Vec<String> = pinned
        .iter()
        .filter(|(_, bytes, golden)| hex(bytes) != *golden)
        .map(|(kind, bytes, _)| format!("{kind}: {}", hex(bytes)))
        .collect();
    assert!(
        changed.is_empty(),
        "these layouts changed (their bytes now):\n{}",
        changed.join("\n")
    );
}

const GOLDEN_CLIENT_V3: &str = "0303632d310d4d6172c3ad612050c3a972657a01106d61726961406578616d706c652e636f010d2b353733303031323334353637010d2b353733303037363534333231010565732d434f010e416d65726963612f426f676f74610102434f01037669700208776861747361707005656d61696c02037669700672657461696c0203434f50a294090201246f7665727061796d656e74206f6620696e762d3120766961207374726970653a696e5f31035553440a020003aab492b3b7f6da983180c0faa993befc98310105696e762d308080f2e98685f695310cc0f0f50b02434f500102018080f2e98685f69531018080a5f3d2d89b96310106434f2d414e5401076d6f6e2d6672690531323a30300531343a3030";
const GOLDEN_CLIENT_V2: &str = "0203632d310d4d6172c3ad612050c3a972657a01106d61726961406578616d706c652e636f010d2b353733303031323334353637010d2b353733303037363534333231010565732d434f010e416d65726963612f426f676f74610102434f01037669700208776861747361707005656d61696c02037669700672657461696c0203434f50a294090201246f7665727061796d656e74206f6620696e762d3120766961207374726970653a696e5f31035553440a020003aab492b3b7f6da983180c0faa993befc98310105696e762d308080f2e98685f695310cc0f0f50b02434f500102018080f2e98685f69531018080a5f3d2d89b9631";
const GOLDEN_INVOICE_V2: &str = "0208494e562d3130303103632d310746562d31303031434f50c0b2cd3b02c0a4ff1e0201d41f020d00d41f030f011e68747470733a2f2f7061792e6578616d706c652e636f2f46562d3130303102066272616e6368056e6f72746503657270037361700001808ece1c0280dc90f8e0f8a1a2310b7374726970653a696e5f310e776562686f6f6b3a737472697065020b7374726970653a70695f310b7374726970653a63685f3101076469737075746501808098b9f4fce5b4318080b5d4dba994ae310201040189abbdf06cca8d309e8e926d750790c3010101020200d41f0401808ece1c02808ece1c0201018080a5f4e8e7bfab31c0a4ff1e02000002010570686f6e65010a74776f2068616c766573808ece1c02010102808092b48395c29e31018080f8eef7ec99ac310113696e7374616c6d656e742032206d6973736564010001d08fb4ee93a4e693318080b5d4dba994ae31018080d0f597cbc7b731010b6c6174655f706179657273046669726d0100010f636f6272616e7a61735f6e6f727465010f39302064617973206f7665726475658080d4c3bdcff9b431c0a4ff1e0280ade204020102";
const GOLDEN_CLIENT: &str = "0103632d310d4d6172c3ad612050c3a972657a01106d61726961406578616d706c652e636f010d2b353733303031323334353637010d2b353733303037363534333231010565732d434f010e416d65726963612f426f676f74610102434f01037669700208776861747361707005656d61696c02037669700672657461696c0203434f50a294090201246f7665727061796d656e74206f6620696e762d3120766961207374726970653a696e5f31035553440a020003aab492b3b7f6da983180c0faa993befc9831";
const GOLDEN_INVOICE: &str = "0108494e562d3130303103632d310746562d31303031434f50c0b2cd3b02c0a4ff1e0201d41f020d00d41f030f011e68747470733a2f2f7061792e6578616d706c652e636f2f46562d3130303102066272616e6368056e6f72746503657270037361700001808ece1c0280dc90f8e0f8a1a2310b7374726970653a696e5f310e776562686f6f6b3a737472697065020b7374726970653a70695f310b7374726970653a63685f3101076469737075746501808098b9f4fce5b4318080b5d4dba994ae310201040189abbdf06cca8d309e8e926d750790c3010101020200d41f0401808ece1c02808ece1c0201018080a5f4e8e7bfab31c0a4ff1e02000002010570686f6e65010a74776f2068616c766573808ece1c02010102808092b48395c29e31018080f8eef7ec99ac310113696e7374616c6d656e742032206d6973736564010001d08fb4ee93a4e693318080b5d4dba994ae31018080d0f597cbc7b731";
const GOLDEN_REMINDER: &str = "0189abbdf06cca8d309e8e926d750790c308494e562d3130303103632d3102010101050c66696e616c5f6e6f746963650764656661756c748080a6e29bdbc89e31f6e1cbf8d6ecc89e310202010113736d7470203435313a20747279206c6174657201067477696c696f12534d3031323334353637383961626364656603736d73018088a2b2deecc89e310180e0cbf8d6ecc89e31";
const GOLDEN_ATTEMPT: &str = "01e282bfa6deecc89e3108494e562d313030310189abbdf06cca8d309e8e926d750790c3010c66696e616c5f6e6f746963650103736d73010d2b353733303031323334353637080112534d303132333435363738396162636465660102011864656c69766572656420746f207468652068616e64736574";
const GOLDEN_CONTACT: &str = "010d2b3537333030313233343536370103736d738080aaa6aad3d79831146b6579776f72642042414a412076696120736d73010877686174736170708080a2bbbcf8fe9831157768617473617070206572726f72203133313032360203736d73809485add29da69931087768617473617070808092e5e0c2cd99310203632d3103632d32";
const GOLDEN_SENT_MESSAGE: &str = "01067477696c696f12534d3031323334353637383961626364656689abbdf06cca8d309e8e926d750790c308494e562d3130303103632d310c66696e616c5f6e6f7469636503736d73010d2b3537333030313233343536370480e0cbf8d6ecc89e31808abceb97f0c89e31011a33303030333a20756e726561636861626c652068616e64736574";
const GOLDEN_CONTACT_EVENT: &str = "018080c5bdcfe8e79e3103632d31000877686174736170700d2b353733303031323334353637012879612070616775c3a920f09f998f0a6d61c3b1616e6120656e76c3ad6f20656c20736f706f727465010a77616d69642e4842674c010d77696e646f77206f70656e6564";
const GOLDEN_INBOX_ENTRY: &str = "010c7374726970653a6576745f310006737472697065056576745f310c696e766f6963652e706169640104696e5f3101c8d0070201035553440108494e562d31303031010463722d3101056578742d31010746562d313030310180c8a59bddf8a1a231020470695f310463685f310106726566756e6480f0fbd4e4f8a1a231030380d0a1eb9f8aa2a2310106737472697065056576745f310c696e766f6963652e706169640104696e5f3101c8d0070201035553440108494e562d31303031010463722d3101056578742d31010746562d313030310180c8a59bddf8a1a231020470695f310463685f310106726566756e640108494e562d31303031011d63757272656e6379206d69736d617463683a2055534420767320434f508098d28eecf8a1a231";
const GOLDEN_TIMESTAMP: &str = "01aab492b3b7f6da9831";
const GOLDEN_INVOICE_ID: &str = "0108494e562d31303031";

/// Prints the encoded size of typical records next to their JSON size (the store's format
/// before). Run by hand: `cargo test --lib store::records -- --ignored --nocapture`.
#[test]
#[ignore = "prints record sizes; nothing to check"]
fn print_record_sizes() {
    fn row<T: Record + Serialize>(what: &str, v: &T) {
        let bin = v.encode().unwrap().len();
        let json = serde_json::to_vec(v).unwrap().len();
        eprintln!(
            "{what:<34} binary {bin:>4} B   json {json:>4} B   ({:.0} %)",
            100.0 * bin as f64 / json as f64
        );
    }
    let now = ts("2026-03-01T12:00:00.123456789Z");
    let invoice = Invoice {
        id: iid("INV-1001"),
        client_id: cid("c-1001"),
        number: s("FV-1001"),
        currency: Currency::parse("COP").unwrap(),
        amount: dec("1250000.00"),
        balance: dec("1250000.00"),
        issued_at: Some(Date::constant(2026, 2, 13)),
        due_at: Due::Date(Date::constant(2026, 3, 15)),
        payment_url: Some(s("https://pay.example.co/i/FV-1001")),
        metadata: BTreeMap::new(),
        status: InvoiceStatus::Open,
        payments: vec![],
        pause: None,
        generation: 0,
        cursor: Some(1),
        pending: Some(ReminderId::derive(&iid("INV-1001"), 0, 2)),
        arrangements: vec![],
        created_at: now,
        updated_at: now,
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    };
    row("invoice (typical, open)", &invoice);
    row("invoice (full fixture)", &full_invoice());
    let reminder = Reminder {
        id: ReminderId::derive(&iid("INV-1001"), 0, 2),
        invoice_id: iid("INV-1001"),
        client_id: cid("c-1001"),
        generation: 0,
        track: Track::Cadence,
        step_index: 2,
        step_name: s("due_today"),
        cadence: s("default"),
        planned_at: now,
        fire_at: now,
        state: ReminderState::Scheduled,
        attempts: 0,
        channel_index: 0,
        last_error: None,
        awaiting: None,
        rate_slot: None,
    };
    row("reminder (typical, scheduled)", &reminder);
    row("reminder (full fixture)", &full_reminder());
    let attempt = Attempt {
        at: now,
        invoice_id: iid("INV-1001"),
        reminder_id: Some(reminder.id),
        step: Some(s("due_today")),
        channel: Some(s("email")),
        recipient: Some(s("ana@example.com")),
        outcome: AttemptOutcome::Sent,
        provider_message_id: Some(s("<20260301120000.1234@plazo>")),
        delivery: None,
        detail: None,
    };
    row("attempt (typical, sent)", &attempt);
    row("attempt (full fixture)", &full_attempt());
    let client = Client {
        id: cid("c-1001"),
        name: s("Ana Gómez"),
        email: Some(s("ana@example.com")),
        phone: Some(s("+573001234567")),
        whatsapp: None,
        locale: Some(s("es-CO")),
        timezone: Some(s("America/Bogota")),
        country: Some(s("CO")),
        subdivision: None,
        blocked_times: Vec::new(),
        segment: None,
        preferred_channels: vec![s("email")],
        tags: vec![],
        credits: BTreeMap::new(),
        broken_promises: 0,
        facts: Default::default(),
        created_at: now,
        updated_at: now,
    };
    row("client (typical)", &client);
    row("client (full fixture)", &full_client());
}

// ---------------------------------------------------------------------------------------------
// Strategies, for generated values.

fn time() -> impl Strategy<Value = Timestamp> {
    let (min, max) = (
        Timestamp::MIN.as_nanosecond(),
        Timestamp::MAX.as_nanosecond(),
    );
    prop_oneof![
        // Present-day instants, with nanoseconds.
        1_500_000_000_000_000_000i128..2_100_000_000_000_000_000i128,
        min..=max,
        Just(min),
        Just(max),
    ]
    .prop_map(|n| Timestamp::from_nanosecond(n).unwrap())
}

fn date() -> impl Strategy<Value = Date> {
    (-9999i16..=9999, 1i8..=12, 1i8..=31)
        .prop_filter_map("a real date", |(y, m, d)| Date::new(y, m, d).ok())
}

fn due() -> impl Strategy<Value = Due> {
    prop_oneof![date().prop_map(Due::Date), time().prop_map(Due::Instant)]
}

fn decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (0i64..100_000_000_000_000_000, 0u32..=2).prop_map(|(m, s)| Decimal::new(m, s)),
        (0u128..(1u128 << 96), 0u32..=28, any::<bool>()).prop_map(|(m, s, neg)| {
            let mut d = Decimal::try_from_i128_with_scale(m as i128, s).unwrap();
            d.set_sign_negative(neg);
            d
        }),
    ]
}

/// Any text, control characters and all.
fn text() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..6).prop_map(String::from_iter)
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..3)
}

fn id_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,16}"
}

fn client_id() -> impl Strategy<Value = ClientId> {
    id_text().prop_map(|s| ClientId::new(s).unwrap())
}

fn invoice_id() -> impl Strategy<Value = InvoiceId> {
    id_text().prop_map(|s| InvoiceId::new(s).unwrap())
}

fn reminder_id() -> impl Strategy<Value = ReminderId> {
    any::<[u8; 16]>().prop_map(ReminderId::from_bytes)
}

fn one_of<T: Clone + Debug + 'static, const N: usize>(all: [T; N]) -> impl Strategy<Value = T> {
    proptest::sample::select(all.to_vec())
}

fn track() -> impl Strategy<Value = Track> {
    prop_oneof![
        Just(Track::Cadence),
        (any::<u32>(), any::<u32>()).prop_map(|(arrangement, instalment)| Track::Instalment {
            arrangement,
            instalment
        }),
        (any::<u32>(), any::<u32>()).prop_map(|(arrangement, instalment)| Track::Deadline {
            arrangement,
            instalment
        }),
        any::<u32>().prop_map(|arrangement| Track::Broken { arrangement }),
        Just(Track::ThankYou),
    ]
}

fn client() -> impl Strategy<Value = Client> {
    (
        (
            client_id(),
            text(),
            opt(text()),
            opt(text()),
            opt(text()),
            opt(text()),
            opt(text()),
            opt(text()),
        ),
        (
            opt(text()),
            texts(),
            texts(),
            btree_map(
                text(),
                (decimal(), texts()).prop_map(|(amount, sources)| Credit { amount, sources }),
                0..3,
            ),
            any::<u32>(),
            time(),
            time(),
        ),
    )
        .prop_map(
            |(
                (id, name, email, phone, whatsapp, locale, timezone, country),
                (
                    segment,
                    preferred_channels,
                    tags,
                    credits,
                    broken_promises,
                    created_at,
                    updated_at,
                ),
            )| Client {
                id,
                name,
                email,
                phone,
                whatsapp,
                locale,
                timezone,
                // Any optional text round-trips; the subdivision reuses the country's.
                subdivision: country.clone(),
                blocked_times: Vec::new(),
                country,
                segment,
                preferred_channels,
                tags,
                credits,
                broken_promises,
                facts: Default::default(),
                created_at,
                updated_at,
            },
        )
}

fn payment() -> impl Strategy<Value = Payment> {
    (decimal(), time(), text(), text(), texts()).prop_map(
        |(amount, paid_at, reference, source, same_as)| Payment {
            amount,
            paid_at,
            reference,
            source,
            same_as,
        },
    )
}

fn pause() -> impl Strategy<Value = Pause> {
    (text(), opt(time()), time()).prop_map(|(reason, until, since)| Pause {
        reason,
        until,
        since,
    })
}

fn instalment() -> impl Strategy<Value = Instalment> {
    (due(), decimal(), decimal(), one_of(INSTALMENT_STATES)).prop_map(
        |(due, amount, paid, state)| Instalment {
            due,
            amount,
            paid,
            state,
        },
    )
}

fn arrangement() -> impl Strategy<Value = Arrangement> {
    (
        (
            any::<u32>(),
            one_of(ARRANGEMENT_KINDS),
            one_of(ARRANGEMENT_STATES),
            vec(instalment(), 0..3),
            opt(text()),
            opt(text()),
            decimal(),
        ),
        (
            any::<u32>(),
            opt(any::<u32>()),
            time(),
            opt(time()),
            opt(text()),
            opt(any::<u32>()),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (id, kind, state, instalments, channel, note, received),
                (current, cursor, created_at, closed_at, outcome, broken_cursor, broken_done),
            )| Arrangement {
                id,
                kind,
                state,
                instalments,
                channel,
                note,
                received,
                current,
                cursor,
                created_at,
                closed_at,
                outcome,
                broken_cursor,
                broken_done,
            },
        )
}

fn invoice() -> impl Strategy<Value = Invoice> {
    (
        (
            invoice_id(),
            client_id(),
            text(),
            proptest::sample::select(Currency::all().collect::<Vec<_>>()),
            decimal(),
            decimal(),
            opt(date()),
            due(),
            opt(text()),
            btree_map(text(), text(), 0..3),
        ),
        (
            one_of(INVOICE_STATUSES),
            vec(payment(), 0..3),
            opt(pause()),
            any::<u32>(),
            opt(any::<u32>()),
            opt(reminder_id()),
            vec(arrangement(), 0..3),
            time(),
            time(),
            opt(time()),
        ),
    )
        .prop_map(
            |(
                (
                    id,
                    client_id,
                    number,
                    currency,
                    amount,
                    balance,
                    issued_at,
                    due_at,
                    payment_url,
                    metadata,
                ),
                (
                    status,
                    payments,
                    pause,
                    generation,
                    cursor,
                    pending,
                    arrangements,
                    created_at,
                    updated_at,
                    closed_at,
                ),
            )| Invoice {
                id,
                client_id,
                number,
                currency,
                amount,
                balance,
                issued_at,
                due_at,
                payment_url,
                metadata,
                status,
                payments,
                pause,
                generation,
                cursor,
                pending,
                arrangements,
                created_at,
                updated_at,
                // The segment followed comes from the generation, so both shapes occur.
                followed: (generation % 2 == 1).then(|| crate::domain::Followed {
                    segment: format!("seg-{generation}"),
                    cadence: "standard".to_owned(),
                }),
                // Likewise for the escalation and the exhausted generation.
                escalation: (generation % 3 == 1).then(|| crate::domain::Escalation {
                    kind: crate::domain::EscalationKind::WrittenOff,
                    partner: None,
                    reason: Some(format!("r{generation}")),
                    at: created_at,
                    balance: balance.abs(),
                    recovered: Decimal::ZERO,
                }),
                exhausted: (generation % 5 == 0).then_some(generation),
                closed_at,
            },
        )
}

fn awaiting() -> impl Strategy<Value = AwaitingReceipt> {
    (text(), text(), text(), any::<u32>(), time()).prop_map(
        |(provider, provider_message_id, kind, channel_index, since)| AwaitingReceipt {
            provider,
            provider_message_id,
            kind,
            channel_index,
            since,
        },
    )
}

fn reminder() -> impl Strategy<Value = Reminder> {
    (
        (
            reminder_id(),
            invoice_id(),
            client_id(),
            any::<u32>(),
            track(),
            any::<u32>(),
            text(),
            text(),
        ),
        (
            time(),
            time(),
            one_of(REMINDER_STATES),
            any::<u32>(),
            any::<u32>(),
            opt(text()),
            opt(awaiting()),
            opt(time()),
        ),
    )
        .prop_map(
            |(
                (id, invoice_id, client_id, generation, track, step_index, step_name, cadence),
                (
                    planned_at,
                    fire_at,
                    state,
                    attempts,
                    channel_index,
                    last_error,
                    awaiting,
                    rate_slot,
                ),
            )| Reminder {
                id,
                invoice_id,
                client_id,
                generation,
                track,
                step_index,
                step_name,
                cadence,
                planned_at,
                fire_at,
                state,
                attempts,
                channel_index,
                last_error,
                awaiting,
                rate_slot,
            },
        )
}

fn attempt() -> impl Strategy<Value = Attempt> {
    (
        time(),
        invoice_id(),
        opt(reminder_id()),
        opt(text()),
        opt(text()),
        opt(text()),
        one_of(OUTCOMES),
        opt(text()),
        opt(one_of(DELIVERY_STATES)),
        opt(text()),
    )
        .prop_map(
            |(
                at,
                invoice_id,
                reminder_id,
                step,
                channel,
                recipient,
                outcome,
                provider_message_id,
                delivery,
                detail,
            )| Attempt {
                at,
                invoice_id,
                reminder_id,
                step,
                channel,
                recipient,
                outcome,
                provider_message_id,
                delivery,
                detail,
            },
        )
}

fn contact() -> impl Strategy<Value = Contact> {
    (
        text(),
        btree_map(
            text(),
            (time(), text()).prop_map(|(at, source)| OptOut { at, source }),
            0..3,
        ),
        btree_map(
            text(),
            (time(), text()).prop_map(|(at, reason)| Unreachable { at, reason }),
            0..3,
        ),
        btree_map(text(), time(), 0..3),
        btree_set(client_id(), 0..3),
    )
        .prop_map(
            |(address, opt_outs, unreachable, last_inbound, clients)| Contact {
                address,
                opt_outs,
                unreachable,
                last_inbound,
                clients,
            },
        )
}

fn sent_message() -> impl Strategy<Value = SentMessage> {
    (
        (
            text(),
            text(),
            reminder_id(),
            invoice_id(),
            client_id(),
            text(),
            text(),
        ),
        (
            any::<u32>(),
            text(),
            one_of(DELIVERY_STATES),
            time(),
            time(),
            opt(text()),
        ),
    )
        .prop_map(
            |(
                (provider, provider_message_id, reminder_id, invoice_id, client_id, step, kind),
                (channel_index, recipient, state, sent_at, updated_at, error),
            )| SentMessage {
                provider,
                provider_message_id,
                reminder_id,
                invoice_id,
                client_id,
                step,
                kind,
                channel_index,
                recipient,
                state,
                sent_at,
                updated_at,
                error,
            },
        )
}

fn contact_event() -> impl Strategy<Value = ContactEvent> {
    (
        time(),
        client_id(),
        one_of(CONTACT_EVENT_KINDS),
        text(),
        text(),
        opt(text()),
        opt(text()),
        opt(text()),
    )
        .prop_map(
            |(at, client_id, event, channel, address, text, provider_message_id, detail)| {
                ContactEvent {
                    at,
                    client_id,
                    event,
                    channel,
                    address,
                    text,
                    provider_message_id,
                    detail,
                }
            },
        )
}

fn provider_event() -> impl Strategy<Value = ProviderEvent> {
    (
        (
            text(),
            text(),
            text(),
            one_of(EVENT_KINDS),
            text(),
            opt(decimal()),
        ),
        (
            opt(text()),
            (opt(text()), opt(text()), opt(text()), opt(text())),
            opt(time()),
            texts(),
            opt(text()),
        ),
    )
        .prop_map(
            |(
                (provider, event_id, event_type, kind, object_id, amount),
                (
                    currency,
                    (metadata, client_reference_id, external_reference, number),
                    occurred_at,
                    same_payment,
                    note,
                ),
            )| ProviderEvent {
                provider,
                event_id,
                event_type,
                kind,
                object_id,
                amount,
                currency,
                refs: InvoiceRefs {
                    metadata,
                    client_reference_id,
                    external_reference,
                    number,
                },
                occurred_at,
                same_payment,
                note,
            },
        )
}

fn inbox_payload() -> impl Strategy<Value = InboxPayload> {
    prop_oneof![
        provider_event().prop_map(|e| InboxPayload::Event { event: Box::new(e) }),
        (text(), text(), opt(text())).prop_map(|(provider, data_id, action)| {
            InboxPayload::Fetch {
                provider,
                data_id,
                action,
            }
        }),
        (text(), text()).prop_map(|(provider, error)| InboxPayload::Unreadable { provider, error }),
    ]
}

fn inbox_entry() -> impl Strategy<Value = InboxEntry> {
    (
        text(),
        inbox_payload(),
        time(),
        one_of(INBOX_STATES),
        any::<u32>(),
        time(),
        opt(provider_event()),
        opt(invoice_id()),
        opt(text()),
        time(),
    )
        .prop_map(
            |(
                key,
                payload,
                received_at,
                state,
                attempts,
                next_attempt_at,
                event,
                invoice_id,
                detail,
                updated_at,
            )| InboxEntry {
                key,
                payload,
                received_at,
                state,
                attempts,
                next_attempt_at,
                event,
                invoice_id,
                detail,
                updated_at,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Generated tests.

proptest! {
    /// The client index line of any invoice decodes back to itself, and is damage-checked.
    #[test]
    fn generated_index_lines_round_trip(v in invoice()) {
        let line = crate::domain::IndexLine::of(&v);
        let bytes = line.encode().unwrap();
        prop_assert_eq!(bytes.first(), Some(&<crate::domain::IndexLine as Record>::VERSION));
        prop_assert_eq!(crate::domain::IndexLine::decode(&bytes).unwrap(), line.clone());
        // Unlike other kinds, empty is not damage (an entry from before lines): only unknown
        // versions, cut bodies and trailing bytes are refused.
        let mut other = bytes.clone();
        other[0] = 2;
        let is_unknown_version = matches!(
            crate::domain::IndexLine::decode(&other),
            Err(RecordError::UnknownVersion { found: 2, .. })
        );
        prop_assert!(is_unknown_version);
        for len in 1..bytes.len() {
            prop_assert!(crate::domain::IndexLine::decode(&bytes[..len]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let is_trailing = matches!(
            crate::domain::IndexLine::decode(&longer),
            Err(RecordError::TrailingBytes { count: 1, .. })
        );
        prop_assert!(is_trailing);
    }

    #[test]
    fn generated_clients_round_trip(v in client()) { round_trip(&v); }

    #[test]
    fn generated_invoices_round_trip(v in invoice()) { round_trip(&v); }

    #[test]
    fn generated_reminders_round_trip(v in reminder()) { round_trip(&v); }

    #[test]
    fn generated_attempts_round_trip(v in attempt()) { round_trip(&v); }

    #[test]
    fn generated_contacts_round_trip(v in contact()) { round_trip(&v); }

    #[test]
    fn generated_sent_messages_round_trip(v in sent_message()) { round_trip(&v); }

    #[test]
    fn generated_contact_events_round_trip(v in contact_event()) { round_trip(&v); }

    #[test]
    fn generated_inbox_entries_round_trip(v in inbox_entry()) { round_trip(&v); }

    #[test]
    fn generated_instants_and_ids_round_trip(t in time(), id in invoice_id()) {
        round_trip(&t);
        round_trip(&id);
    }

    #[test]
    fn generated_decimals_round_trip_bit_for_bit(d in decimal()) {
        let inv = Invoice { amount: d, ..full_invoice() };
        let back = Invoice::decode(&inv.encode().unwrap()).unwrap();
        prop_assert_eq!(back.amount.serialize(), d.serialize());
    }

    /// Arbitrary bytes, bare or behind a valid version byte: an error or a value, never a
    /// panic.
    #[test]
    fn arbitrary_bytes_never_panic(raw in vec(any::<u8>(), 0..300)) {
        decode_as_every_kind(&raw);
        let mut versioned = vec![1u8];
        versioned.extend_from_slice(&raw);
        decode_as_every_kind(&versioned);
    }

    /// Valid records with bytes overwritten, inserted or removed: an error or a value, never
    /// a panic. (Random bytes rarely get past the first fields; these reach the deep ones.)
    #[test]
    fn damaged_records_never_panic(
        edits in vec((any::<proptest::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        for mut raw in full_encodings() {
            for (at, byte, how) in &edits {
                let i = at.index(raw.len());
                match how {
                    0 => raw[i] = *byte,
                    1 => raw.insert(i, *byte),
                    _ => { raw.remove(i); }
                }
                if raw.is_empty() {
                    break;
                }
            }
            decode_as_every_kind(&raw);
        }
    }
}

/// An index entry written before entries carried lines (an empty value) reads as
/// [`IndexLine::Unknown`](crate::domain::IndexLine::Unknown), and encodes back to nothing; an
/// open invoice has an open line with its statement fields, a paid one a settled line.
#[test]
fn index_lines_of_old_entries_are_unknown_and_lines_follow_the_invoice() {
    use crate::domain::{IndexLine, InvoiceStatus};
    assert_eq!(IndexLine::decode(&[]).unwrap(), IndexLine::Unknown);
    assert_eq!(IndexLine::Unknown.encode().unwrap(), Vec::<u8>::new());
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut inv = proptest::strategy::ValueTree::current(&invoice().new_tree(&mut runner).unwrap());
    inv.status = InvoiceStatus::Open;
    inv.balance = Decimal::new(125_000_050, 2);
    match IndexLine::of(&inv) {
        IndexLine::Open(l) => {
            assert_eq!(
                (
                    l.number.as_str(),
                    l.currency,
                    l.balance,
                    l.due_at,
                    l.payment_url.as_ref()
                ),
                (
                    inv.number.as_str(),
                    inv.currency,
                    inv.balance,
                    inv.due_at,
                    inv.payment_url.as_ref()
                )
            );
        }
        other => panic!("an open invoice with a balance: {other:?}"),
    }
    inv.balance = Decimal::ZERO;
    assert_eq!(IndexLine::of(&inv), IndexLine::Settled);
    inv.balance = Decimal::ONE;
    inv.status = InvoiceStatus::Paid;
    assert_eq!(IndexLine::of(&inv), IndexLine::Settled);
    assert_eq!(
        IndexLine::decode(&IndexLine::Settled.encode().unwrap()).unwrap(),
        IndexLine::Settled
    );
}
