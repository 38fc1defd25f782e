//! WhatsApp Business Cloud API webhooks: the `X-Hub-Signature-256` check, the `hub.challenge`
//! subscription handshake, and the event envelope (message statuses and inbound messages).
//!
//! - [`verify_signature`]: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(raw body, app secret)>`.
//!   Always verify the **raw bytes** as received: Meta signs its escaped-Unicode form
//!   (`\u00e4`), so a re-serialised body never matches.
//! - [`verify_challenge`]: `GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..`;
//!   answer 200 with the returned challenge as the body, or 403 on `None`.
//! - [`parse_webhook`]: the `whatsapp_business_account` envelope into [`WhatsAppEvent`]s.
//!
//! Meta redelivers failed webhooks for up to 7 days and duplicates happen: deduplicate on
//! `(wamid, status)` and answer 200 quickly.

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::DeliveryState;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the signature of an event delivery.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// `object` of every WhatsApp Business Account webhook.
pub const OBJECT: &str = "whatsapp_business_account";
/// Prefix of the signature header value.
const SIGNATURE_PREFIX: &str = "sha256=";

/// Why a webhook signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhatsAppSignatureError {
    /// The `X-Hub-Signature-256` header is absent or empty.
    #[error("missing header X-Hub-Signature-256 (is the request really from Meta?)")]
    MissingHeader,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("malformed X-Hub-Signature-256 header: {0}")]
    Malformed(&'static str),
    /// The signature does not match the body.
    #[error(
        "X-Hub-Signature-256 does not match the body (wrong app secret, or the body was altered \
         or re-serialised before verification)"
    )]
    Mismatch,
    /// The configured app secret is empty, which would let anyone forge signatures.
    #[error("the WhatsApp app secret is empty; configure the App Secret from the Meta app dashboard")]
    EmptySecret,
}

/// Checks `X-Hub-Signature-256` (`header`, `None` when absent) against the raw request body.
///
/// The expected value is `sha256=` followed by the hex HMAC-SHA256 of `raw_body` keyed with
/// the app secret. Meta sends lowercase hex; uppercase is accepted too. The comparison is
/// constant-time.
pub fn verify_signature(
    app_secret: &[u8],
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), WhatsAppSignatureError> {
    if app_secret.is_empty() {
        return Err(WhatsAppSignatureError::EmptySecret);
    }
    let value = header
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(WhatsAppSignatureError::MissingHeader)?;
    let hex_part = value
        .get(..SIGNATURE_PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(SIGNATURE_PREFIX))
        .and_then(|_| value.get(SIGNATURE_PREFIX.len()..))
        .ok_or(WhatsAppSignatureError::Malformed(
            "it must start with \"sha256=\"",
        ))?;
    if hex_part.len() != 64 {
        return Err(WhatsAppSignatureError::Malformed(
            "expected 64 hex digits after \"sha256=\"",
        ));
    }
    let given = hex::decode(hex_part).map_err(|_| {
        WhatsAppSignatureError::Malformed("the part after \"sha256=\" is not hexadecimal")
    })?;
    let mut mac = match HmacSha256::new_from_slice(app_secret) {
        Ok(m) => m,
        // HMAC takes keys of any length; this branch cannot be reached.
        Err(_) => return Err(WhatsAppSignatureError::EmptySecret),
    };
    mac.update(raw_body);
    let expected = mac.finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(&given)) {
        Ok(())
    } else {
        Err(WhatsAppSignatureError::Mismatch)
    }
}

/// Answers Meta's subscription handshake
/// (`GET ?hub.mode=subscribe&hub.verify_token=<ours>&hub.challenge=<n>`).
///
/// Returns the challenge to echo as the 200 response body when `mode` is `subscribe`, `token`
/// equals `expected_token` (compared in constant time) and a non-empty challenge is given;
/// `None` otherwise (answer 403). An empty `expected_token` never matches.
pub fn verify_challenge(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
    expected_token: &str,
) -> Option<String> {
    if expected_token.is_empty() || mode != Some("subscribe") {
        return None;
    }
    // Compare digests so neither the content nor the length of the token leaks through timing.
    let given = Sha256::digest(token?.as_bytes());
    let expected = Sha256::digest(expected_token.as_bytes());
    if !bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        return None;
    }
    challenge.filter(|c| !c.is_empty()).map(str::to_owned)
}

/// One thing a webhook delivery reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhatsAppEvent {
    /// A status update of a message we sent.
    Status(StatusEvent),
    /// A message the customer sent us (opens or refreshes the 24-hour window).
    Message(InboundMessage),
    /// A status or message that could not be understood (unknown status value, missing
    /// fields, bad timestamp). Log it and move on: it is not an error of the whole delivery.
    Unknown(UnknownEvent),
}

/// A status update (`statuses[]`) of a message we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEvent {
    /// The message id (`wamid.…`) the send returned.
    pub wamid: String,
    /// The state: `sent` → Sent, `delivered` → Delivered, `read` and `played` → Read,
    /// `failed` → Failed.
    pub status: DeliveryState,
    /// The status as Meta wrote it (`played` is a voice message listened to).
    pub raw_status: String,
    /// The recipient's WhatsApp id (phone digits).
    pub recipient_id: String,
    /// When the status happened.
    pub at: jiff::Timestamp,
    /// `biz_opaque_callback_data` given at send time (plazo puts the reminder id there).
    pub callback_data: Option<String>,
    /// Why the message failed (`failed` statuses only).
    pub errors: Vec<WaError>,
    /// Our business phone number id (`metadata.phone_number_id`).
    pub phone_number_id: Option<String>,
}

/// An error attached to a `failed` status, e.g. 131047 (24-hour window closed) or 131026
/// (not a WhatsApp user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaError {
    /// Meta's error code.
    pub code: i64,
    /// Short title.
    pub title: String,
    /// Message, when given.
    pub message: Option<String>,
    /// `error_data.details`, when given.
    pub details: Option<String>,
}

/// A message a customer sent to our business number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The message id (`wamid.…`).
    pub wamid: String,
    /// The sender's WhatsApp id: phone digits without `+`, as Meta sends them.
    pub from: String,
    /// When it was sent.
    pub at: jiff::Timestamp,
    /// Message `type`: `text`, `button`, `interactive`, `image`, `audio`, `document`, …
    pub kind: String,
    /// The text: `text.body`, a quick-reply `button.text`, or the title of an interactive
    /// button or list reply. `None` for media and other kinds.
    pub text: Option<String>,
    /// The sender's WhatsApp profile name (`contacts[].profile.name`).
    pub profile_name: Option<String>,
    /// The wamid of our message this one replies to (`context.id`), if any.
    pub reply_to: Option<String>,
    /// Our business phone number id (`metadata.phone_number_id`).
    pub phone_number_id: Option<String>,
}

/// An item that was skipped because it could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEvent {
    /// `status` or `message`.
    pub item: &'static str,
    /// Its wamid, if it had one.
    pub wamid: Option<String>,
    /// What was wrong with it.
    pub reason: String,
}

/// Why a webhook body could not be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhatsAppParseError {
    /// The body is not JSON.
    #[error("WhatsApp webhook body is not valid JSON: {0}")]
    Json(String),
    /// The body is JSON but not a webhook envelope.
    #[error("WhatsApp webhook body is not a webhook envelope: {0}")]
    Shape(String),
    /// The envelope is for another Meta product (`page`, `instagram`…).
    #[error(
        "webhook object is {0:?}, not \"whatsapp_business_account\"; subscribe this URL to the \
         WhatsApp product only"
    )]
    WrongObject(String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    object: Option<String>,
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
struct ChangeValue {
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<serde_json::Value>,
    #[serde(default)]
    statuses: Vec<serde_json::Value>,
    #[serde(default)]
    messages: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    phone_number_id: Option<String>,
}

/// Unix seconds, as a string (what Meta sends) or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTimestamp {
    Text(String),
    Number(i64),
}

impl RawTimestamp {
    fn to_timestamp(&self) -> Result<jiff::Timestamp, String> {
        let secs = match self {
            RawTimestamp::Number(n) => *n,
            RawTimestamp::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("timestamp {s:?} is not Unix seconds"))?,
        };
        jiff::Timestamp::from_second(secs).map_err(|e| format!("timestamp {secs}: {e}"))
    }
}

#[derive(Deserialize)]
struct RawStatus {
    id: String,
    status: String,
    timestamp: RawTimestamp,
    recipient_id: String,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    errors: Vec<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    code: i64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<RawErrorData>,
}

#[derive(Deserialize)]
struct RawErrorData {
    #[serde(default)]
    details: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    id: String,
    from: String,
    timestamp: RawTimestamp,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<RawText>,
    #[serde(default)]
    button: Option<RawButton>,
    #[serde(default)]
    interactive: Option<RawInteractive>,
    #[serde(default)]
    context: Option<RawContext>,
}

#[derive(Deserialize)]
struct RawText {
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct RawButton {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct RawInteractive {
    #[serde(default)]
    button_reply: Option<RawReply>,
    #[serde(default)]
    list_reply: Option<RawReply>,
}

#[derive(Deserialize)]
struct RawReply {
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
struct RawContext {
    #[serde(default)]
    id: Option<String>,
}

/// Parses a webhook delivery into events, in the order they appear.
///
/// Only changes with `field = "messages"` are read; other change fields (template status
/// updates, account updates…) and unknown JSON fields are ignored. A status or message that
/// cannot be understood (including a status value other than `sent`, `delivered`, `read`,
/// `played` or `failed`) becomes [`WhatsAppEvent::Unknown`] rather than failing the whole
/// delivery. Errors are returned only for a body that is not JSON, not an envelope, or for
/// another Meta product.
pub fn parse_webhook(raw_body: &[u8]) -> Result<Vec<WhatsAppEvent>, WhatsAppParseError> {
    let json: serde_json::Value =
        serde_json::from_slice(raw_body).map_err(|e| WhatsAppParseError::Json(e.to_string()))?;
    let env: Envelope =
        serde_json::from_value(json).map_err(|e| WhatsAppParseError::Shape(e.to_string()))?;
    if let Some(obj) = env.object.filter(|o| o != OBJECT) {
        return Err(WhatsAppParseError::WrongObject(obj));
    }
    let mut events = Vec::new();
    for (i, entry) in env.entry.into_iter().enumerate() {
        for (j, change) in entry.changes.into_iter().enumerate() {
            if change.field != "messages" {
                continue;
            }
            let value: ChangeValue = serde_json::from_value(change.value).map_err(|e| {
                WhatsAppParseError::Shape(format!("entry[{i}].changes[{j}].value: {e}"))
            })?;
            let phone_number_id = value.metadata.and_then(|m| m.phone_number_id);
            for s in value.statuses {
                events.push(status_event(s, phone_number_id.as_ref()));
            }
            for m in value.messages {
                events.push(message_event(m, &value.contacts, phone_number_id.as_ref()));
            }
        }
    }
    Ok(events)
}

/// The `id` of a raw item, for [`UnknownEvent::wamid`].
fn item_id(v: &serde_json::Value) -> Option<String> {
    v.get("id").and_then(|id| id.as_str()).map(str::to_owned)
}

fn unknown(item: &'static str, wamid: Option<String>, reason: String) -> WhatsAppEvent {
    WhatsAppEvent::Unknown(UnknownEvent {
        item,
        wamid,
        reason,
    })
}

fn status_event(v: serde_json::Value, phone_number_id: Option<&String>) -> WhatsAppEvent {
    let wamid = item_id(&v);
    let raw: RawStatus = match serde_json::from_value(v) {
        Ok(r) => r,
        Err(e) => return unknown("status", wamid, e.to_string()),
    };
    let status = match raw.status.as_str() {
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        "read" | "played" => DeliveryState::Read,
        "failed" => DeliveryState::Failed,
        other => return unknown("status", wamid, format!("unknown status {other:?}")),
    };
    let at = match raw.timestamp.to_timestamp() {
        Ok(t) => t,
        Err(e) => return unknown("status", wamid, e),
    };
    WhatsAppEvent::Status(StatusEvent {
        wamid: raw.id,
        status,
        raw_status: raw.status,
        recipient_id: raw.recipient_id,
        at,
        callback_data: raw.biz_opaque_callback_data,
        errors: raw
            .errors
            .into_iter()
            .map(|e| WaError {
                code: e.code,
                title: e.title.unwrap_or_default(),
                message: e.message,
                details: e.error_data.and_then(|d| d.details),
            })
            .collect(),
        phone_number_id: phone_number_id.cloned(),
    })
}

fn message_event(
    v: serde_json::Value,
    contacts: &[serde_json::Value],
    phone_number_id: Option<&String>,
) -> WhatsAppEvent {
    let wamid = item_id(&v);
    let raw: RawMessage = match serde_json::from_value(v) {
        Ok(r) => r,
        Err(e) => return unknown("message", wamid, e.to_string()),
    };
    let at = match raw.timestamp.to_timestamp() {
        Ok(t) => t,
        Err(e) => return unknown("message", wamid, e),
    };
    let text = raw
        .text
        .and_then(|t| t.body)
        .or_else(|| raw.button.and_then(|b| b.text))
        .or_else(|| {
            raw.interactive.and_then(|i| {
                i.button_reply
                    .and_then(|r| r.title)
                    .or_else(|| i.list_reply.and_then(|r| r.title))
            })
        });
    WhatsAppEvent::Message(InboundMessage {
        profile_name: profile_name(contacts, &raw.from),
        wamid: raw.id,
        from: raw.from,
        at,
        kind: raw.kind,
        text,
        reply_to: raw.context.and_then(|c| c.id),
        phone_number_id: phone_number_id.cloned(),
    })
}

/// The profile name of the contact `wa_id`, or of the only contact when ids do not match.
fn profile_name(contacts: &[serde_json::Value], wa_id: &str) -> Option<String> {
    let name = |c: &serde_json::Value| {
        c.pointer("/profile/name")
            .and_then(|n| n.as_str())
            .map(str::to_owned)
    };
    contacts
        .iter()
        .find(|c| c.get("wa_id").and_then(|w| w.as_str()) == Some(wa_id))
        .and_then(name)
        .or_else(|| match contacts {
            [only] => name(only),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> serde_json::Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
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
        let mut all = fixture("signature_test_vectors.json");
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
        let err = verify_signature(b"OTHER_APP_SECRET", v.raw_body.as_bytes(), Some(&v.header))
            .unwrap_err();
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
        let err = verify_signature(secret, body, Some(&format!("sha256={}", "zz".repeat(32))))
            .unwrap_err();
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
        assert_eq!(verify_challenge(Some("subscribe"), None, Some("1"), tok), None);
        assert_eq!(
            verify_challenge(Some("unsubscribe"), Some(tok), Some("1"), tok),
            None
        );
        assert_eq!(verify_challenge(None, Some(tok), Some("1"), tok), None);
        assert_eq!(verify_challenge(Some("subscribe"), Some(tok), None, tok), None);
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
        let all = fixture("whatsapp_webhook_statuses_pywa.json");
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
        let all = fixture("whatsapp_webhook_inbound_text_pywa.json");
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
        assert!(matches!(parse_webhook(b""), Err(WhatsAppParseError::Json(_))));
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
            serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(raw).unwrap())
                .unwrap();
        assert_eq!(
            verify_signature(b"s3cret", &reserialised, Some(&header)),
            Err(WhatsAppSignatureError::Mismatch)
        );
        let WhatsAppEvent::Message(m) = &parse_webhook(raw).unwrap()[0] else {
            panic!()
        };
        assert_eq!(m.text.as_deref(), Some("ä"));
    }
}
