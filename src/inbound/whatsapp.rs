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

mod mapping;
pub use mapping::service_inputs;

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
    #[error(
        "the WhatsApp app secret is empty; configure the App Secret from the Meta app dashboard"
    )]
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
mod fuzz_tests;
#[cfg(test)]
mod tests;
