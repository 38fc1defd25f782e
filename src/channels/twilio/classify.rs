//! Turning Twilio's answers into a [`Receipt`] or a [`ChannelError`].
//!
//! Error bodies are Twilio's legacy `{"code", "message", "more_info", "status"}` or the RFC 9457
//! `{"type", "title", "status", "code", "detail"}`; when there is no `code`, the HTTP status
//! decides (as Twilio's SDKs do).

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::segments::SmsSegments;
use crate::channels::channel::{ChannelError, FailureScope, Receipt};
use crate::channels::http_util::{retry_after, transport_failure};

/// Twilio error: the recipient replied STOP to this sender.
pub const ERROR_OPTED_OUT: u32 = 21610;
/// Twilio error: REST API concurrency limit exceeded (HTTP 429).
pub const ERROR_TOO_MANY_REQUESTS: u32 = 20429;

/// Twilio errors meaning the `To` number is invalid or cannot receive this message:
/// 21211 invalid `To`, 21214 `To` cannot be reached, 21217 number does not appear valid,
/// 21219 `To` not verified (trial account), 21401 invalid number, 21407 number type does not
/// support SMS, 21408 no permission for the number's region, 21421 invalid number, 21612
/// cannot route to this number, 21614 `To` is not a mobile number.
pub const ADDRESS_ERRORS: [u32; 10] = [
    21211, 21214, 21217, 21219, 21401, 21407, 21408, 21421, 21612, 21614,
];

/// Twilio errors meaning the account or credentials are unusable: 20003 authentication failed,
/// 20005 account not active, 20008 test credentials cannot do this.
pub const CREDENTIAL_ERRORS: [u32; 3] = [20003, 20005, 20008];

/// Twilio errors meaning this channel's own settings are wrong, so every message would fail:
/// 21212 invalid `From` number, 21609 invalid `StatusCallback` URL (check `public_url`).
pub const CONFIG_ERRORS: [u32; 2] = [21212, 21609];

/// Longest part of Twilio's own error text kept in our messages.
const MAX_PROVIDER_TEXT: usize = 300;

/// Twilio's error body (legacy and RFC 9457 fields; every field optional).
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
    more_info: Option<String>,
    title: Option<String>,
    detail: Option<String>,
}

/// The fields of a 2xx Message resource we use.
#[derive(Debug, Deserialize)]
struct MessageResource {
    sid: Option<String>,
    num_segments: Option<serde_json::Value>,
}

/// True for an `SM…`/`MM…` message sid as Twilio makes them.
pub(crate) fn is_twilio_message_sid(s: &str) -> bool {
    (s.starts_with("SM") || s.starts_with("MM"))
        && s.len() == 34
        && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// True for something usable as a message id from a Twilio-compatible provider: 1–64
/// visible ASCII characters.
fn is_plausible_sid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Cuts `s` to at most `max` characters, marking the cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Reads the receipt from a 2xx answer: the message `sid` is required.
pub(crate) fn receipt(
    status: StatusCode,
    body: &[u8],
    local: &SmsSegments,
) -> Result<Receipt, ChannelError> {
    let unsure = "the message may have been sent; it is not retried to avoid a duplicate SMS";
    let resource: MessageResource = serde_json::from_slice(body).map_err(|e| {
        ChannelError::permanent(format!(
            "twilio: answered {status} but the body is not a Message resource ({e}); {unsure}"
        ))
    })?;
    let sid = match resource.sid {
        Some(s) if is_plausible_sid(&s) => s,
        Some(s) => {
            return Err(ChannelError::permanent(format!(
                "twilio: answered {status} with an unusable message sid {:?}; {unsure}",
                truncate(&s, 80)
            )));
        }
        None => {
            return Err(ChannelError::permanent(format!(
                "twilio: answered {status} without a message sid; {unsure}"
            )));
        }
    };
    if !is_twilio_message_sid(&sid) {
        tracing::debug!(sid = %sid, "message sid is not SM/MM + 32 hex (Twilio-compatible provider?)");
    }
    // Twilio's own count when it has one ("0" until a Messaging Service has picked a sender).
    let counted = match resource.num_segments {
        Some(serde_json::Value::String(s)) => s.trim().parse::<usize>().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
    .filter(|n| *n > 0);
    let n = counted.unwrap_or(local.segments);
    let plural = if n == 1 { "" } else { "s" };
    Ok(Receipt {
        provider_message_id: Some(sid),
        note: Some(format!(
            "SMS, {n} segment{plural} ({})",
            local.encoding.as_str()
        )),
    })
}

/// Classifies a non-2xx answer. `secret` is removed from any provider text that echoes it.
pub(crate) fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: jiff::Timestamp,
    secret: &str,
) -> ChannelError {
    let err: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let text = err
        .message
        .as_deref()
        .or(err.detail.as_deref())
        .or(err.title.as_deref())
        .map(|t| truncate(t.trim(), MAX_PROVIDER_TEXT));
    let mut what = format!("twilio: HTTP {}", status.as_u16());
    if let Some(code) = err.code {
        what.push_str(&format!(", error {code}"));
    }
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        what.push_str(&format!(": {t}"));
    }
    if let Some(info) = err.more_info.as_deref().filter(|s| !s.is_empty()) {
        what.push_str(&format!(" ({})", truncate(info, 200)));
    }
    if !secret.is_empty() && what.contains(secret) {
        what = what.replace(secret, "<redacted>");
    }
    let code = status.as_u16();
    let delay = || retry_after(headers, now);
    match err.code {
        Some(ERROR_OPTED_OUT) => {
            return ChannelError::permanent_scoped(
                FailureScope::OptedOut,
                format!(
                    "{what}; the recipient replied STOP to this sender: do not text them again until they reply START"
                ),
            );
        }
        Some(c) if ADDRESS_ERRORS.contains(&c) => {
            return ChannelError::permanent_scoped(
                FailureScope::Address,
                format!("{what}; the number cannot receive SMS from this sender"),
            );
        }
        Some(c) if CREDENTIAL_ERRORS.contains(&c) => {
            return ChannelError::permanent_scoped(FailureScope::Channel, credentials(&what));
        }
        Some(c) if CONFIG_ERRORS.contains(&c) => {
            return ChannelError::permanent_scoped(
                FailureScope::Channel,
                format!("{what}; fix this channel's from / public_url settings"),
            );
        }
        Some(ERROR_TOO_MANY_REQUESTS) => {
            return ChannelError::transient_after(
                format!("{what}; too many concurrent requests, retry later"),
                delay(),
            );
        }
        _ => {}
    }
    if code == 401 || code == 403 {
        ChannelError::permanent_scoped(FailureScope::Channel, credentials(&what))
    } else if code == 404 {
        ChannelError::permanent_scoped(
            FailureScope::Channel,
            format!("{what}; the Messages resource was not found: check account_sid and base_url"),
        )
    } else if code == 408 || code == 429 || status.is_server_error() {
        ChannelError::transient_after(what, delay())
    } else if status.is_redirection() {
        ChannelError::permanent_scoped(
            FailureScope::Channel,
            format!("{what}; redirects are not followed: check base_url"),
        )
    } else {
        ChannelError::permanent(what)
    }
}

fn credentials(what: &str) -> String {
    format!(
        "{what}; Twilio refused the credentials or the account: check account_sid, api_key_sid \
         and the auth token, and that the account is active"
    )
}

/// Classifies a request that got no HTTP answer (connection refused, timeout, TLS...).
pub(crate) fn classify_transport(e: &reqwest::Error) -> ChannelError {
    let what = transport_failure(e);
    // The URL in reqwest's text carries the account sid, never the token (sent in a header).
    if e.is_builder() {
        ChannelError::permanent_scoped(FailureScope::Channel, format!("twilio: {what}: {e}"))
    } else {
        ChannelError::transient(format!("twilio: {what}: {e}"))
    }
}
