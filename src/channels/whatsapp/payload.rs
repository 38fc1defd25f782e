//! Request bodies of `POST /{version}/{phone-number-id}/messages`, and the wamid of a success.

use serde_json::{Value, json};

use crate::channels::channel::{ChannelError, FailureScope, TemplateParam, WhatsAppTemplate};

/// Longest E.164 number, in digits.
const MAX_E164_DIGITS: usize = 15;

/// The `to` of a request: the E.164 number without its leading `+`.
pub(super) fn recipient(to: &str) -> Result<String, ChannelError> {
    let digits = to.trim().strip_prefix('+').unwrap_or(to.trim());
    if digits.is_empty()
        || digits.len() > MAX_E164_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ChannelError::permanent_scoped(
            FailureScope::Address,
            format!(
                "whatsapp: recipient {to:?} is not an E.164 phone number (\"+\" and up to 15 \
                 digits, e.g. +573001234567)"
            ),
        ));
    }
    Ok(digits.to_owned())
}

/// A free-form text message (only accepted inside the 24-hour customer-service window).
pub(super) fn text(to: &str, body: &str, callback_data: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": body, "preview_url": false},
        "biz_opaque_callback_data": callback_data,
    })
}

/// An approved template with its body parameters and the URL button at index 0. Components
/// without parameters are left out (and `components` altogether when there are none).
pub(super) fn template(to: &str, t: &WhatsAppTemplate, callback_data: &str) -> Value {
    let mut components = Vec::new();
    if !t.body.is_empty() {
        components.push(json!({
            "type": "body",
            "parameters": t.body.iter().map(param).collect::<Vec<_>>(),
        }));
    }
    if let Some(url) = &t.button_url {
        components.push(json!({
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": url}],
        }));
    }
    let mut template = json!({
        "name": t.name,
        "language": {"code": t.language},
    });
    if !components.is_empty() {
        template["components"] = Value::Array(components);
    }
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
        "biz_opaque_callback_data": callback_data,
    })
}

/// One body parameter in the Cloud API's shape.
fn param(p: &TemplateParam) -> Value {
    match p {
        TemplateParam::Text { text } => json!({"type": "text", "text": text}),
        TemplateParam::Currency {
            fallback_value,
            code,
            amount_1000,
        } => json!({
            "type": "currency",
            "currency": {"fallback_value": fallback_value, "code": code, "amount_1000": amount_1000},
        }),
        TemplateParam::DateTime { fallback_value } => json!({
            "type": "date_time",
            "date_time": {"fallback_value": fallback_value},
        }),
    }
}

/// `messages[0].id` (the wamid) of a success response, if present.
pub(super) fn message_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.pointer("/messages/0/id")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_strips_plus_and_rejects_non_digits() {
        assert_eq!(recipient("+573001234567").unwrap(), "573001234567");
        assert_eq!(recipient("573001234567").unwrap(), "573001234567");
        for bad in [
            "",
            "+",
            "+57 300 123",
            "ana@example.co",
            "+1234567890123456",
        ] {
            let e = recipient(bad).unwrap_err();
            assert_eq!(e.scope(), Some(FailureScope::Address), "{bad}: {e}");
        }
    }

    #[test]
    fn message_id_reads_the_first_wamid() {
        let ok = br#"{"messaging_product":"whatsapp","contacts":[{"input":"16505076520","wa_id":"16505076520"}],"messages":[{"id":"wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA","message_status":"accepted"}]}"#;
        assert_eq!(
            message_id(ok).as_deref(),
            Some("wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA")
        );
        assert_eq!(message_id(br#"{"messages":[]}"#), None);
        assert_eq!(message_id(br#"{"messages":[{"id":""}]}"#), None);
        assert_eq!(message_id(b"<html>"), None);
    }
}
