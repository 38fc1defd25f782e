//! Tests of the WhatsApp webhook signature, handshake and parsing.

use super::*;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/signature_test_vectors.json"
);
const STATUSES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/whatsapp_webhook_statuses_pywa.json"
);
const INBOUND_TEXT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/whatsapp_webhook_inbound_text_pywa.json"
);

fn fixture(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[derive(Deserialize)]
struct Vector {
    app_secret: String,
    raw_body: String,
    expected_hex: String,
    header: String,
}

fn vector() -> Vector {
    let mut all = fixture(VECTORS);
    let mut vs: Vec<Vector> =
        serde_json::from_value(all["whatsapp_x_hub_signature_256"].take()).unwrap();
    assert_eq!(vs.len(), 1);
    vs.remove(0)
}

fn one(body: &serde_json::Value) -> WhatsAppEvent {
    let mut events = parse_webhook(body.to_string().as_bytes()).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

fn status(body: &serde_json::Value) -> StatusEvent {
    match one(body) {
        WhatsAppEvent::Status(s) => s,
        other => panic!("expected a status, got {other:?}"),
    }
}

fn ts(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(secs).unwrap()
}

#[test]
fn official_signature_vector_verifies() {
    let v = vector();
    assert_eq!(v.header, format!("sha256={}", v.expected_hex));
    verify_signature(
        v.app_secret.as_bytes(),
        v.raw_body.as_bytes(),
        Some(&v.header),
    )
    .unwrap();
    // Uppercase hex, and surrounding whitespace, are accepted too.
    let upper = format!("sha256={}", v.expected_hex.to_uppercase());
    verify_signature(v.app_secret.as_bytes(), v.raw_body.as_bytes(), Some(&upper)).unwrap();
    let spaced = format!(" {} ", v.header);
    verify_signature(
        v.app_secret.as_bytes(),
        v.raw_body.as_bytes(),
        Some(&spaced),
    )
    .unwrap();
}

#[test]
fn tampered_body_and_wrong_secret_are_rejected() {
    let v = vector();
    let secret = v.app_secret.as_bytes();
    assert_eq!(
        verify_signature(secret, b"test ", Some(&v.header)),
        Err(WhatsAppSignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(secret, b"Test", Some(&v.header)),
        Err(WhatsAppSignatureError::Mismatch)
    );
    let err =
        verify_signature(b"OTHER_APP_SECRET", v.raw_body.as_bytes(), Some(&v.header)).unwrap_err();
    assert_eq!(err, WhatsAppSignatureError::Mismatch);
    assert!(err.to_string().contains("wrong app secret"), "{err}");
    // Last hex digit changed.
    let mut bad = v.header.clone();
    bad.pop();
    bad.push('0');
    assert_eq!(
        verify_signature(secret, v.raw_body.as_bytes(), Some(&bad)),
        Err(WhatsAppSignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(b"", v.raw_body.as_bytes(), Some(&v.header)),
        Err(WhatsAppSignatureError::EmptySecret)
    );
}

#[test]
fn missing_and_malformed_headers_are_distinct_errors() {
    let v = vector();
    let secret = v.app_secret.as_bytes();
    let body = v.raw_body.as_bytes();
    assert_eq!(
        verify_signature(secret, body, None),
        Err(WhatsAppSignatureError::MissingHeader)
    );
    assert_eq!(
        verify_signature(secret, body, Some("  ")),
        Err(WhatsAppSignatureError::MissingHeader)
    );
    // The bare hex without `sha256=`.
    let err = verify_signature(secret, body, Some(&v.expected_hex)).unwrap_err();
    assert!(matches!(err, WhatsAppSignatureError::Malformed(_)), "{err}");
    assert!(err.to_string().contains("sha256="), "{err}");
    let err = verify_signature(secret, body, Some("sha1=abc")).unwrap_err();
    assert!(matches!(err, WhatsAppSignatureError::Malformed(_)), "{err}");
    // Right length, not hex.
    let err =
        verify_signature(secret, body, Some(&format!("sha256={}", "zz".repeat(32)))).unwrap_err();
    assert_eq!(
        err,
        WhatsAppSignatureError::Malformed("the part after \"sha256=\" is not hexadecimal")
    );
    // Hex, wrong length.
    let err = verify_signature(secret, body, Some("sha256=0c61947b")).unwrap_err();
    assert!(err.to_string().contains("64 hex digits"), "{err}");
    // Multi-byte characters where the prefix would be do not panic.
    let err = verify_signature(secret, body, Some("ñññññññ")).unwrap_err();
    assert!(matches!(err, WhatsAppSignatureError::Malformed(_)), "{err}");
}

#[test]
fn challenge_is_echoed_only_for_the_right_token_and_mode() {
    let tok = "plazo-verify-7f3a";
    assert_eq!(
        verify_challenge(Some("subscribe"), Some(tok), Some("1158201444"), tok),
        Some("1158201444".to_owned())
    );
    assert_eq!(
        verify_challenge(Some("subscribe"), Some("plazo-verify-7f3b"), Some("1"), tok),
        None
    );
    assert_eq!(
        verify_challenge(Some("subscribe"), Some("plazo"), Some("1"), tok),
        None
    );
    assert_eq!(
        verify_challenge(Some("subscribe"), None, Some("1"), tok),
        None
    );
    assert_eq!(
        verify_challenge(Some("unsubscribe"), Some(tok), Some("1"), tok),
        None
    );
    assert_eq!(verify_challenge(None, Some(tok), Some("1"), tok), None);
    assert_eq!(
        verify_challenge(Some("subscribe"), Some(tok), None, tok),
        None
    );
    assert_eq!(
        verify_challenge(Some("subscribe"), Some(tok), Some(""), tok),
        None
    );
    // An unconfigured (empty) token never matches, not even an empty one.
    assert_eq!(
        verify_challenge(Some("subscribe"), Some(""), Some("1"), ""),
        None
    );
}

#[test]
fn pywa_status_fixtures_parse() {
    let all = fixture(STATUSES);
    for (key, state, at) in [
        ("sent", DeliveryState::Sent, 1698266945),
        ("delivered", DeliveryState::Delivered, 1698266945),
        ("read", DeliveryState::Read, 1689380458),
        ("played", DeliveryState::Read, 1689380458),
        ("failed", DeliveryState::Failed, 1689380458),
    ] {
        let s = status(&all[key]);
        assert_eq!(s.wamid, "wamid.xyzxyz", "{key}");
        assert_eq!(s.status, state, "{key}");
        assert_eq!(s.raw_status, key);
        assert_eq!(s.at, ts(at), "{key}");
        assert_eq!(s.recipient_id, "972987654321");
        assert_eq!(s.phone_number_id.as_deref(), Some("1122334455667"));
        assert_eq!(s.callback_data, None);
        if key == "failed" {
            assert_eq!(
                s.errors,
                vec![WaError {
                    code: 130472,
                    title: "User's number is part of an experiment".to_owned(),
                    message: Some("User's number is part of an experiment".to_owned()),
                    details: Some(
                        "Failed to send message because this user's phone number is part \
                         of an experiment"
                            .to_owned()
                    ),
                }]
            );
        } else {
            assert!(s.errors.is_empty(), "{key}");
        }
    }

    let s = status(&all["with_tracker"]);
    assert_eq!(s.callback_data.as_deref(), Some("some data"));
    assert_eq!(s.status, DeliveryState::Sent);

    // Group statuses carry placeholders but the same shape.
    let s = status(&all["group"]);
    assert_eq!(s.status, DeliveryState::Read);
    assert_eq!(s.recipient_id, "fowefinoewcnw");
}

#[test]
fn pywa_inbound_text_fixture_parses() {
    let all = fixture(INBOUND_TEXT);
    let WhatsAppEvent::Message(m) = one(&all["text"]) else {
        panic!("expected a message");
    };
    assert_eq!(
        m,
        InboundMessage {
            wamid: "wamid.xyzxyz".to_owned(),
            from: "972987654321".to_owned(),
            at: ts(1697043223),
            kind: "text".to_owned(),
            text: Some("Body Text".to_owned()),
            profile_name: Some("Test Name".to_owned()),
            reply_to: None,
            phone_number_id: Some("1122334455667".to_owned()),
        }
    );
}

#[test]
fn malformed_bodies_are_errors() {
    assert!(matches!(
        parse_webhook(b"{\"object\":"),
        Err(WhatsAppParseError::Json(_))
    ));
    assert!(matches!(
        parse_webhook(b""),
        Err(WhatsAppParseError::Json(_))
    ));
    assert!(matches!(
        parse_webhook(b"[1,2]"),
        Err(WhatsAppParseError::Shape(_))
    ));
    assert!(matches!(
        parse_webhook(b"{\"object\":\"whatsapp_business_account\"}"),
        Err(WhatsAppParseError::Shape(_))
    ));
    let err = parse_webhook(b"{\"object\":\"page\",\"entry\":[]}").unwrap_err();
    assert_eq!(err, WhatsAppParseError::WrongObject("page".to_owned()));
    let err = parse_webhook(
        br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":{}}}]}]}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("entry[0].changes[0].value"),
        "{err}"
    );
}

#[test]
fn envelope_with_statuses_and_messages() {
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "5467539754836534",
            "changes": [
                {"field": "message_template_status_update", "value": {"event": "APPROVED"}},
                {"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "573001112233", "phone_number_id": "106540352242922"},
                    "contacts": [
                        {"profile": {"name": "Otra"}, "wa_id": "573009998877"},
                        {"profile": {"name": "Ana Muñoz"}, "wa_id": "573001234567"}
                    ],
                    "statuses": [
                        {"id": "wamid.A", "status": "delivered", "timestamp": "1767225600",
                         "recipient_id": "573001234567", "biz_opaque_callback_data": "rem_1"},
                        {"id": "wamid.B", "status": "failed", "timestamp": 1767225601,
                         "recipient_id": "573001234567",
                         "errors": [{"code": 131047, "title": "Re-engagement message"}]},
                        {"id": "wamid.C", "status": "deleted", "timestamp": "1767225602",
                         "recipient_id": "573001234567"},
                        {"id": "wamid.D", "status": "sent", "timestamp": "yesterday",
                         "recipient_id": "573001234567"},
                        {"status": "sent"}
                    ],
                    "messages": [
                        {"from": "573001234567", "id": "wamid.M1", "timestamp": "1767225700",
                         "type": "button", "button": {"text": "Ya pagué", "payload": "paid"},
                         "context": {"from": "573001112233", "id": "wamid.A"}},
                        {"from": "573001234567", "id": "wamid.M2", "timestamp": "1767225701",
                         "type": "interactive",
                         "interactive": {"type": "list_reply", "list_reply": {"id": "x", "title": "Pagar mañana"}}},
                        {"from": "573001234567", "id": "wamid.M3", "timestamp": "1767225702",
                         "type": "image", "image": {"id": "media-1", "mime_type": "image/jpeg"}}
                    ]
                }}
            ]
        }]
    });
    let events = parse_webhook(body.to_string().as_bytes()).unwrap();
    assert_eq!(events.len(), 8, "{events:#?}");
    let WhatsAppEvent::Status(a) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(
        (a.wamid.as_str(), a.status, a.callback_data.as_deref()),
        ("wamid.A", DeliveryState::Delivered, Some("rem_1"))
    );
    assert_eq!(a.phone_number_id.as_deref(), Some("106540352242922"));
    let WhatsAppEvent::Status(b) = &events[1] else {
        panic!("{:?}", events[1])
    };
    assert_eq!(b.at, ts(1767225601));
    assert_eq!(b.errors[0].code, 131047);
    assert_eq!(b.errors[0].title, "Re-engagement message");
    assert_eq!(b.errors[0].details, None);
    let WhatsAppEvent::Unknown(c) = &events[2] else {
        panic!("{:?}", events[2])
    };
    assert_eq!(c.wamid.as_deref(), Some("wamid.C"));
    assert!(c.reason.contains("deleted"), "{c:?}");
    let WhatsAppEvent::Unknown(d) = &events[3] else {
        panic!("{:?}", events[3])
    };
    assert!(d.reason.contains("yesterday"), "{d:?}");
    let WhatsAppEvent::Unknown(e) = &events[4] else {
        panic!("{:?}", events[4])
    };
    assert_eq!((e.item, e.wamid.as_deref()), ("status", None));

    let WhatsAppEvent::Message(m1) = &events[5] else {
        panic!("{:?}", events[5])
    };
    assert_eq!(m1.kind, "button");
    assert_eq!(m1.text.as_deref(), Some("Ya pagué"));
    assert_eq!(m1.profile_name.as_deref(), Some("Ana Muñoz"));
    assert_eq!(m1.reply_to.as_deref(), Some("wamid.A"));
    let WhatsAppEvent::Message(m2) = &events[6] else {
        panic!("{:?}", events[6])
    };
    assert_eq!(m2.text.as_deref(), Some("Pagar mañana"));
    let WhatsAppEvent::Message(m3) = &events[7] else {
        panic!("{:?}", events[7])
    };
    assert_eq!((m3.kind.as_str(), m3.text.as_deref()), ("image", None));
    assert_eq!(m3.at, ts(1767225702));
}

#[test]
fn escaped_unicode_body_verifies_as_received() {
    // Meta signs the escaped form; verifying the raw bytes works, re-serialising does not.
    let raw = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"1","id":"wamid.U","timestamp":"1","type":"text","text":{"body":"\u00e4"}}]}}]}]}"#;
    let mut mac = HmacSha256::new_from_slice(b"s3cret").unwrap();
    mac.update(raw);
    let header = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    verify_signature(b"s3cret", raw, Some(&header)).unwrap();
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(raw).unwrap()).unwrap();
    assert_eq!(
        verify_signature(b"s3cret", &reserialised, Some(&header)),
        Err(WhatsAppSignatureError::Mismatch)
    );
    let WhatsAppEvent::Message(m) = &parse_webhook(raw).unwrap()[0] else {
        panic!()
    };
    assert_eq!(m.text.as_deref(), Some("ä"));
}
