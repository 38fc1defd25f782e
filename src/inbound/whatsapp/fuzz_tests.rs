//! Property tests: hostile WhatsApp webhook bodies and headers (random bytes, random JSON,
//! envelopes with hostile values, CR/LF/NUL, RTL marks, 10k-character strings) never panic; a
//! body that is not a WhatsApp envelope, or a signature that is not the app secret's, is an
//! error value, and an item that cannot be understood becomes `Unknown`, never a made-up event.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\r\\n\\x00\"\\\\{}\\[\\] ]{0,16}",
        "[a-zA-Z0-9\u{202e}\u{200f}\u{feff}\\x00\\r\\n]{0,64}",
        (0usize..3, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n * 5_000)),
    ]
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        hostile().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(hostile(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A status or message item: the real field names with hostile or random values.
fn item() -> impl Strategy<Value = Value> {
    let ts = prop_oneof![
        any::<i64>().prop_map(|n| json!(n.to_string())),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        any_json(),
    ];
    let status = prop_oneof![
        Just(json!("sent")),
        Just(json!("delivered")),
        Just(json!("read")),
        Just(json!("failed")),
        any_json(),
    ];
    (hostile(), status, ts, hostile(), any_json(), any_json()).prop_map(
        |(id, status, timestamp, from, errors, text)| {
            json!({
                "id": id, "status": status, "timestamp": timestamp, "recipient_id": from,
                "from": from, "type": "text", "text": text, "errors": errors,
            })
        },
    )
}

fn envelope(statuses: Vec<Value>, messages: Vec<Value>, contacts: Value) -> Value {
    json!({"object": OBJECT, "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": "123"},
        "statuses": statuses, "messages": messages, "contacts": contacts,
    }}]}]})
}

fn sign(body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random bytes: an error (not JSON, not an envelope) or events, never a panic.
    #[test]
    fn any_body_is_events_or_an_error(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        if serde_json::from_slice::<Value>(&body).is_err() {
            prop_assert!(matches!(parse_webhook(&body), Err(WhatsAppParseError::Json(_))));
        }
    }

    /// Random JSON: never a panic; another product's envelope is refused.
    #[test]
    fn any_json_is_events_or_an_error(v in any_json(), object in hostile()) {
        let _ = parse_webhook(v.to_string().as_bytes());
        let other = json!({"object": object, "entry": []});
        let r = parse_webhook(other.to_string().as_bytes());
        if object == OBJECT {
            prop_assert_eq!(r, Ok(vec![]));
        } else {
            prop_assert!(matches!(r, Err(WhatsAppParseError::WrongObject(_))));
        }
    }

    /// Hostile statuses and messages in a real envelope: one event per item, each either what
    /// the item says or `Unknown`.
    #[test]
    fn hostile_items_become_events_or_unknown(
        statuses in prop::collection::vec(item(), 0..4),
        messages in prop::collection::vec(item(), 0..4),
        contacts in any_json(),
    ) {
        let contacts = if contacts.is_array() { contacts } else { json!([]) };
        let n = statuses.len() + messages.len();
        let body = envelope(statuses.clone(), messages.clone(), contacts).to_string();
        let events = parse_webhook(body.as_bytes()).unwrap();
        prop_assert_eq!(events.len(), n);
        for (e, raw) in events.iter().zip(statuses.iter().chain(messages.iter())) {
            match e {
                WhatsAppEvent::Status(s) => {
                    prop_assert_eq!(Some(s.wamid.as_str()), raw["id"].as_str());
                    prop_assert_eq!(Some(s.raw_status.as_str()), raw["status"].as_str());
                }
                WhatsAppEvent::Message(m) => {
                    prop_assert_eq!(Some(m.wamid.as_str()), raw["id"].as_str());
                    prop_assert_eq!(Some(m.from.as_str()), raw["from"].as_str());
                }
                WhatsAppEvent::Unknown(u) => {
                    prop_assert_eq!(u.wamid.as_deref(), raw["id"].as_str());
                }
            }
        }
    }

    /// Any `X-Hub-Signature-256` but the app secret's is refused; the real one verifies, and
    /// any change to the body breaks it.
    #[test]
    fn forged_signatures_are_refused(
        body in prop::collection::vec(any::<u8>(), 0..512),
        header in hostile(),
        flip in any::<prop::sample::Index>(),
    ) {
        let real = sign(&body);
        prop_assume!(!header.trim().eq_ignore_ascii_case(&real));
        prop_assert!(verify_signature(SECRET, &body, Some(&header)).is_err());
        prop_assert!(verify_signature(SECRET, &body, None).is_err());
        prop_assert!(verify_signature(b"", &body, Some(&real)).is_err());
        prop_assert!(verify_signature(SECRET, &body, Some(&real)).is_ok());
        if !body.is_empty() {
            let mut changed = body.clone();
            let i = flip.index(changed.len());
            changed[i] ^= 0x01;
            prop_assert_eq!(
                verify_signature(SECRET, &changed, Some(&real)),
                Err(WhatsAppSignatureError::Mismatch)
            );
        }
    }

    /// The subscription handshake echoes the challenge only for our token.
    #[test]
    fn challenge_needs_our_token(
        mode in prop::option::of(hostile()),
        token in prop::option::of(hostile()),
        challenge in prop::option::of(hostile()),
    ) {
        let ours = "verify-me-0123";
        let r = verify_challenge(mode.as_deref(), token.as_deref(), challenge.as_deref(), ours);
        if mode.as_deref() != Some("subscribe") || token.as_deref() != Some(ours) {
            prop_assert_eq!(r, None);
        }
        prop_assert_eq!(verify_challenge(Some("subscribe"), Some(""), challenge.as_deref(), ""), None);
    }
}
