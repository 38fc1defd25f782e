//! Property tests: hostile Twilio webhook bodies and headers (random bytes, broken percent
//! escapes, CR/LF/NUL, RTL marks, 10k-character values) never panic, and anything not signed
//! with the auth token, or missing what the handler needs, is an error value.

use proptest::prelude::*;

use super::*;

const TOKEN: &str = "f00dfacef00dfacef00dfacef00dface";
const URL: &str = "https://plazo.example.co/webhooks/twilio/status";

/// Strings an attacker would try: control characters, bidi marks, `&`/`=`/`%`, long runs.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\r\\n\\x00&=%+ ]{0,16}",
        "[a-zA-Z0-9\u{202e}\u{200f}\u{feff}\\x00\\r\\n%&=+]{0,64}",
        (0usize..3, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n * 5_000)),
    ]
}

fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("MessageSid".to_owned()),
        Just("SmsSid".to_owned()),
        Just("MessageStatus".to_owned()),
        Just("SmsStatus".to_owned()),
        Just("ErrorCode".to_owned()),
        Just("From".to_owned()),
        Just("To".to_owned()),
        Just("Body".to_owned()),
        Just("OptOutType".to_owned()),
        hostile(),
    ];
    prop::collection::vec((name, hostile()), 0..12)
}

fn encode(params: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any body: no panic; what parses is exactly what the body says, nothing invented.
    #[test]
    fn any_body_parses_or_is_an_error(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(fields) = parse_form(&body) {
            let pieces = body.split(|b| *b == b'&').filter(|p| !p.is_empty()).count();
            prop_assert_eq!(fields.len(), pieces);
        }
    }

    /// Every form survives encoding: names and values come back byte for byte.
    #[test]
    fn encoded_forms_round_trip(p in params()) {
        prop_assert_eq!(parse_form(encode(&p).as_bytes()).unwrap(), p);
    }

    /// A percent escape that decodes to invalid UTF-8 is refused, never replaced.
    #[test]
    fn invalid_utf8_is_an_error(name in "[A-Za-z]{1,8}", byte in 0x80u8..=0xff) {
        let body = format!("{name}=%{byte:02X}");
        let is_not_utf8 = matches!(parse_form(body.as_bytes()), Err(TwilioParseError::NotUtf8 { .. }));
        prop_assert!(is_not_utf8);
    }

    /// Status callbacks and inbound messages from any fields: an error when a required field
    /// is missing or the status unknown, otherwise the fields as sent (trimmed).
    #[test]
    fn any_fields_read_or_error(p in params()) {
        let first = |names: &[&str]| names.iter().find_map(|n| {
            p.iter().find(|(k, v)| k == n && !v.trim().is_empty()).map(|(_, v)| v.trim().to_owned())
        });
        match StatusCallback::from_params(&p) {
            Ok(s) => {
                prop_assert_eq!(Some(s.message_sid), first(&["MessageSid", "SmsSid"]));
                prop_assert_eq!(Some(s.raw_status.clone()), first(&["MessageStatus", "SmsStatus"]));
                prop_assert_eq!(delivery_state(&s.raw_status), Some(s.status));
            }
            Err(TwilioParseError::MissingField(_)) => {
                prop_assert!(first(&["MessageSid", "SmsSid"]).is_none()
                    || first(&["MessageStatus", "SmsStatus"]).is_none());
            }
            Err(TwilioParseError::UnknownStatus(st)) => prop_assert!(delivery_state(&st).is_none()),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
        match InboundMessage::from_params(&p) {
            Ok(m) => {
                prop_assert_eq!(Some(m.from.clone()), first(&["From"]));
                let _ = m.keyword();
            }
            Err(e) => prop_assert!(matches!(e, TwilioParseError::MissingField(_)), "{e}"),
        }
    }

    /// Any `X-Twilio-Signature` other than the real one is refused, for forms and JSON.
    #[test]
    fn forged_signatures_are_refused(p in params(), header in hostile(), body in hostile()) {
        let real = expected_signature(TOKEN, URL, &p);
        prop_assume!(header.trim() != real);
        prop_assert!(verify(TOKEN, URL, &p, Some(&header)).is_err());
        prop_assert!(verify(TOKEN, URL, &p, None).is_err());
        prop_assert!(verify("", URL, &p, Some(&real)).is_err());
        let url = format!("{URL}?bodySHA256={}", encode(&[("x".into(), header.clone())]));
        prop_assert!(verify_json(TOKEN, &url, body.as_bytes(), Some(&header)).is_err());
    }

    /// The real signature over any fields verifies; changing one value breaks it.
    #[test]
    fn signature_covers_every_field(mut p in params(), extra in hostile()) {
        prop_assume!(!p.is_empty());
        let real = expected_signature(TOKEN, URL, &p);
        prop_assert!(verify(TOKEN, URL, &p, Some(&real)).is_ok());
        let last = p.len() - 1;
        let changed = format!("{}{}", p[last].1, if extra.is_empty() { "x" } else { &extra });
        p[last].1 = changed;
        prop_assert!(verify(TOKEN, URL, &p, Some(&real)).is_err());
    }
}
