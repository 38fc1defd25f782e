//! Classifying Cloud API failures: the Graph error envelope
//! `{"error":{"message","type","code","error_subcode","error_data":{"details"},"fbtrace_id"}}`
//! mapped to transient / permanent errors and their [`FailureScope`].
//!
//! The error code decides first (see the table in [`known_code`]); without a known code the
//! HTTP status does: 408, 429 and 5xx are transient, 401/403 and 3xx break the channel, other
//! 4xx concern the message only.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::channels::channel::{ChannelError, FailureScope};
use crate::channels::http_util::{retry_after, transport_failure};

/// 131047: "Re-engagement message", the 24-hour window is closed.
pub(super) const CODE_WINDOW_CLOSED: i64 = 131047;
/// 131056: pair rate limit (same sender to the same recipient too fast).
const CODE_PAIR_RATE_LIMIT: i64 = 131056;
/// Shortest retry suggested after a pair rate limit (about one message per 6 s per user).
pub(super) const PAIR_RATE_LIMIT_RETRY: Duration = Duration::from_secs(6);
/// Longest piece of provider text copied into an error message.
const MAX_PROVIDER_TEXT: usize = 300;

/// A failed send: the error, and Meta's error code when the response carried one.
#[derive(Debug)]
pub(super) struct Failure {
    /// The classified error.
    pub error: ChannelError,
    /// The Graph `error.code`, if any.
    pub code: Option<i64>,
}

impl From<ChannelError> for Failure {
    fn from(error: ChannelError) -> Self {
        Failure { error, code: None }
    }
}

/// What to do about an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Retry later.
    Retry,
    /// Permanent, with this scope.
    Fail(FailureScope),
}

/// The Graph error envelope (only the fields we use; others are ignored).
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default)]
    error: Option<GraphError>,
}

#[derive(Debug, Default, Deserialize)]
struct GraphError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    error_data: Option<ErrorData>,
    #[serde(default)]
    error_user_msg: Option<String>,
    #[serde(default)]
    is_transient: Option<bool>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// What a known error code means and what to do about it.
fn known_code(code: i64) -> Option<(Action, &'static str)> {
    use FailureScope::{Address, Channel, Message, OptedOut, WindowClosed};
    let fail = Action::Fail;
    Some(match code {
        0 => (
            fail(Channel),
            "authentication failed; check the access token in access_token_env / \
             access_token_file and that its system user has this phone number",
        ),
        190 => (
            fail(Channel),
            "access token expired or invalid; generate a new system-user token and update \
             access_token_env / access_token_file",
        ),
        10 | 200..=299 => (
            fail(Channel),
            "the access token lacks permission for this phone number (needs \
             whatsapp_business_messaging); check the system user's assets and permissions",
        ),
        131031 => (
            fail(Channel),
            "the WhatsApp Business Account is locked; check the account in WhatsApp Manager",
        ),
        131042 => (
            fail(Channel),
            "business payment issue; check the WhatsApp Business Account's payment method",
        ),
        131048 => (
            fail(Channel),
            "spam rate limit: too many messages from this number were blocked or flagged; stop \
             and review the number's quality rating in WhatsApp Manager",
        ),
        4 => (
            Action::Retry,
            "app-level API call rate limit reached; backing off",
        ),
        80007 => (
            Action::Retry,
            "WhatsApp Business Account rate limit reached; backing off",
        ),
        130429 => (
            Action::Retry,
            "Cloud API throughput limit reached; backing off",
        ),
        CODE_PAIR_RATE_LIMIT => (
            Action::Retry,
            "pair rate limit: too many messages to this recipient in a short time; retrying in \
             6 s or more",
        ),
        131049 => (
            Action::Retry,
            "Meta held this message back to protect ecosystem engagement; retrying later",
        ),
        131057 => (
            Action::Retry,
            "the business account is in maintenance or a throughput upgrade; retrying later",
        ),
        1 | 2 | 131000 | 133004 => (Action::Retry, "temporary Cloud API error; retrying later"),
        131026 => (
            fail(Address),
            "message undeliverable: the recipient is not a WhatsApp user, has not accepted the \
             current terms, or uses an old app; fall back to another channel",
        ),
        131030 => (
            fail(Address),
            "the recipient is not in the allowed list of this test number; add it in the app \
             dashboard or use a production number",
        ),
        CODE_WINDOW_CLOSED => (
            fail(WindowClosed),
            "the 24-hour window is closed (the customer last wrote more than 24 hours ago); only \
             an approved template may be sent, so map this step to a template in the policy",
        ),
        131050 => (
            fail(OptedOut),
            "the recipient stopped marketing messages from this business",
        ),
        132000 => (
            fail(Message),
            "template parameter count mismatch: the step's body parameters do not match the \
             template's {{n}} placeholders",
        ),
        132001 => (
            fail(Message),
            "template not found in this language (or not approved yet); check its name and \
             language in WhatsApp Manager",
        ),
        132005 => (
            fail(Message),
            "template text too long once the parameters are filled in; shorten the parameters",
        ),
        132007 => (
            fail(Message),
            "template content violates a WhatsApp policy; edit the template",
        ),
        132012 => (
            fail(Message),
            "template parameter format mismatch (e.g. currency or date_time where the template \
             expects text); fix the step's parameters",
        ),
        132015 => (
            fail(Message),
            "template paused for low quality; edit it or map the step to another template",
        ),
        132016 => (
            fail(Message),
            "template disabled for low quality; create a new template and map the step to it",
        ),
        _ => return None,
    })
}

/// Classifies a non-2xx response from its status, headers and body.
pub(super) fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: jiff::Timestamp,
) -> Failure {
    let graph = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error);
    let code = graph.as_ref().and_then(|g| g.code);
    let detail = match &graph {
        Some(g) => describe_graph(status, g),
        None => describe_raw(status, body),
    };
    let wait = retry_after(headers, now);

    let (action, hint) = match code.and_then(known_code) {
        Some(known) => known,
        None if graph.as_ref().and_then(|g| g.is_transient) == Some(true) => (
            Action::Retry,
            "Meta marked this error as transient; retrying later",
        ),
        None if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS =>
        {
            (Action::Retry, "Cloud API unavailable; retrying later")
        }
        None if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN => (
            Action::Fail(FailureScope::Channel),
            "request refused; check the access token and phone_number_id",
        ),
        None if status.is_redirection() => (
            Action::Fail(FailureScope::Channel),
            "the API answered with a redirect, which is not followed; check base_url",
        ),
        None => (
            Action::Fail(FailureScope::Message),
            "the API rejected this message",
        ),
    };
    let message = format!("whatsapp: {hint} ({detail})");
    let error = match action {
        Action::Retry => {
            let wait = if code == Some(CODE_PAIR_RATE_LIMIT) {
                Some(wait.map_or(PAIR_RATE_LIMIT_RETRY, |w| w.max(PAIR_RATE_LIMIT_RETRY)))
            } else {
                wait
            };
            ChannelError::transient_after(message, wait)
        }
        Action::Fail(scope) => ChannelError::permanent_scoped(scope, message),
    };
    Failure { error, code }
}

/// `HTTP 400, code 131026/2494010: <message>; details: <details>; fbtrace_id <id>`.
fn describe_graph(status: StatusCode, g: &GraphError) -> String {
    let mut s = format!("HTTP {}", status.as_u16());
    if let Some(code) = g.code {
        s.push_str(&format!(", code {code}"));
        if let Some(sub) = g.error_subcode {
            s.push_str(&format!("/{sub}"));
        }
    }
    if let Some(m) = g.message.as_deref().filter(|m| !m.is_empty()) {
        s.push_str(&format!(": {}", clean(m)));
    }
    let details = g.error_data.as_ref().and_then(|d| d.details.as_deref());
    if let Some(d) = details
        .or(g.error_user_msg.as_deref())
        .filter(|d| !d.is_empty())
    {
        s.push_str(&format!("; details: {}", clean(d)));
    }
    if let Some(t) = g.fbtrace_id.as_deref().filter(|t| !t.is_empty()) {
        s.push_str(&format!("; fbtrace_id {}", clean(t)));
    }
    s
}

/// `HTTP 502: <start of the body>` for responses that are not a Graph error.
fn describe_raw(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = clean(&text);
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

/// Provider text made safe for a one-line log: control characters become spaces, runs of
/// whitespace collapse, and it is cut at [`MAX_PROVIDER_TEXT`] characters.
fn clean(s: &str) -> String {
    let mut out = String::new();
    for (i, word) in s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > MAX_PROVIDER_TEXT {
        out = out.chars().take(MAX_PROVIDER_TEXT).collect();
        out.push('…');
    }
    out
}

/// Classifies a request that got no HTTP response (connection refused, timeout, DNS…).
pub(super) fn classify_reqwest(e: &reqwest::Error) -> ChannelError {
    let what = transport_failure(e);
    if e.is_builder() {
        ChannelError::permanent_scoped(
            FailureScope::Channel,
            format!("whatsapp: cannot build the request: {e}"),
        )
    } else {
        ChannelError::transient(format!("whatsapp: {what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(code: i64, subcode: Option<i64>) -> Vec<u8> {
        let mut e = serde_json::json!({
            "error": {
                "message": format!("(#{code}) Something about it"),
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": "The details."},
                "fbtrace_id": "AbCdEf123"
            }
        });
        if let Some(s) = subcode {
            e["error"]["error_subcode"] = s.into();
        }
        e.to_string().into_bytes()
    }

    fn classify(status: u16, body: &[u8]) -> Failure {
        classify_response(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body,
            jiff::Timestamp::UNIX_EPOCH,
        )
    }

    #[test]
    fn every_table_code_is_classified() {
        use FailureScope::*;
        let cases: &[(i64, Option<FailureScope>)] = &[
            (0, Some(Channel)),
            (190, Some(Channel)),
            (131031, Some(Channel)),
            (131042, Some(Channel)),
            (131048, Some(Channel)),
            (4, None),
            (80007, None),
            (130429, None),
            (131056, None),
            (131049, None),
            (131057, None),
            (131026, Some(Address)),
            (131030, Some(Address)),
            (131047, Some(WindowClosed)),
            (131050, Some(OptedOut)),
            (132000, Some(Message)),
            (132001, Some(Message)),
            (132005, Some(Message)),
            (132007, Some(Message)),
            (132012, Some(Message)),
            (132015, Some(Message)),
            (132016, Some(Message)),
            (100, Some(Message)),
        ];
        for &(code, scope) in cases {
            let f = classify(400, &graph(code, None));
            assert_eq!(f.code, Some(code));
            assert_eq!(f.error.scope(), scope, "{code}: {}", f.error);
            assert!(f.error.is_transient() == scope.is_none(), "{code}");
            let msg = f.error.to_string();
            assert!(msg.contains(&format!("code {code}")), "{msg}");
            assert!(msg.contains("The details."), "{msg}");
            assert!(msg.contains("fbtrace_id AbCdEf123"), "{msg}");
        }
    }

    #[test]
    fn message_carries_subcode_and_hint() {
        let f = classify(401, &graph(190, Some(463)));
        let msg = f.error.to_string();
        assert!(
            msg.contains("HTTP 401, code 190/463: (#190) Something about it"),
            "{msg}"
        );
        assert!(msg.contains("access_token_env"), "{msg}");
    }

    #[test]
    fn pair_rate_limit_waits_at_least_six_seconds() {
        let f = classify(400, &graph(131056, None));
        assert_eq!(f.error.retry_after(), Some(PAIR_RATE_LIMIT_RETRY));
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        let f = classify_response(
            StatusCode::BAD_REQUEST,
            &h,
            &graph(131056, None),
            jiff::Timestamp::UNIX_EPOCH,
        );
        assert_eq!(f.error.retry_after(), Some(PAIR_RATE_LIMIT_RETRY));
        h.insert(reqwest::header::RETRY_AFTER, "30".parse().unwrap());
        let f = classify_response(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            &graph(130429, None),
            jiff::Timestamp::UNIX_EPOCH,
        );
        assert_eq!(f.error.retry_after(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn without_a_graph_error_the_status_decides() {
        let f = classify(502, b"<html>Bad Gateway</html>");
        assert!(f.error.is_transient());
        assert!(f.error.to_string().contains("<html>Bad Gateway</html>"));
        assert!(classify(429, b"").error.is_transient());
        assert!(classify(408, b"").error.is_transient());
        assert_eq!(
            classify(401, b"").error.scope(),
            Some(FailureScope::Channel)
        );
        assert_eq!(
            classify(302, b"").error.scope(),
            Some(FailureScope::Channel)
        );
        assert_eq!(
            classify(404, b"nope").error.scope(),
            Some(FailureScope::Message)
        );
        // An unknown code on a 5xx is still transient; `is_transient` is honoured.
        assert!(classify(500, &graph(999_999, None)).error.is_transient());
        let body = br#"{"error":{"code":999999,"is_transient":true,"message":"x"}}"#;
        assert!(classify(400, body).error.is_transient());
    }

    #[test]
    fn provider_text_is_cleaned_and_capped() {
        assert_eq!(clean("a\r\n  b\tc\u{0}d"), "a b c d");
        let long = "x".repeat(1000);
        assert_eq!(clean(&long).chars().count(), MAX_PROVIDER_TEXT + 1);
    }
}
