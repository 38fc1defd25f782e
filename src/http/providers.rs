//! Provider callbacks: Twilio status callbacks and inbound SMS, WhatsApp Cloud API webhooks.
//! Each verifies its provider's signature on the raw request before anything is parsed or
//! changed; an unsigned, tampered or (for Twilio) wrongly-addressed request gets 401 and changes
//! nothing.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, AppState, write_durably};
use crate::inbound::{twilio, whatsapp};
use crate::policy::model::KeywordAction;
use crate::service::{DeliveryReport, InboundInput, apply_receipt, record_inbound};

fn not_configured(what: &str, how: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_configured",
        format!("{what} are not configured: {how}"),
    )
}

fn unauthorized(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string())
}

fn bad_request(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
}

/// Verifies a Twilio form POST to `path` and returns its fields.
fn twilio_verified(
    st: &AppState,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, ApiError> {
    let Some(token) = st.providers.twilio_auth_token.as_deref() else {
        return Err(not_configured(
            "Twilio callbacks",
            "set the auth token named in [twilio_webhooks] (default env TWILIO_AUTH_TOKEN)",
        ));
    };
    let params = twilio::parse_form(body).map_err(bad_request)?;
    let url = format!("{}{path}", st.providers.public_base);
    let sig = headers
        .get(twilio::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = twilio::verify(token, &url, &params, sig) {
        tracing::warn!(error = %e, %url, "rejected Twilio callback");
        return Err(unauthorized(e));
    }
    Ok(params)
}

/// `POST /webhooks/twilio/status`: a message's delivery state.
pub async fn twilio_status(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let params = twilio_verified(&st, twilio::STATUS_CALLBACK_PATH, &headers, &body)?;
    let cb = match twilio::StatusCallback::from_params(&params) {
        Ok(cb) => cb,
        Err(e) => {
            // Signed by Twilio but not a state we track (e.g. `received`): acknowledge, so
            // Twilio does not retry, and change nothing.
            tracing::info!(error = %e, "ignored Twilio status callback");
            return Ok(StatusCode::OK);
        }
    };
    let report = DeliveryReport {
        provider: "twilio".to_owned(),
        provider_message_id: cb.message_sid.clone(),
        state: cb.status,
        error_code: cb.error_code.map(i64::from),
        error_text: cb.error_code.map(|c| twilio_error_text(c).to_owned()),
    };
    apply(&st, vec![report], Vec::new()).await?;
    Ok(StatusCode::OK)
}

/// Short meanings of common delivery-time Twilio error codes, for the timeline.
fn twilio_error_text(code: u32) -> &'static str {
    match code {
        30003 => "unreachable destination handset",
        30004 => "message blocked",
        30005 => "unknown destination handset",
        30006 => "landline or unreachable carrier",
        30007 => "carrier filtering",
        30008 => "unknown error",
        30034 => "unregistered US A2P 10DLC number",
        21610 => "recipient unsubscribed (replied STOP)",
        _ => "see https://www.twilio.com/docs/api/errors",
    }
}

/// `POST /webhooks/twilio/inbound`: an SMS (or Twilio WhatsApp) message from a debtor.
/// Answers empty TwiML, so Twilio sends nothing back on plazo's behalf.
pub async fn twilio_inbound(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = twilio_verified(&st, twilio::INBOUND_PATH, &headers, &body)?;
    let msg = twilio::InboundMessage::from_params(&params).map_err(bad_request)?;
    let (kind, from) = match msg.from.strip_prefix("whatsapp:") {
        Some(n) => ("whatsapp", n.to_owned()),
        None => ("sms", msg.from.clone()),
    };
    let provider_action = match msg.opt_out_type.as_deref().map(str::to_ascii_uppercase) {
        Some(t) if t == "STOP" => Some(KeywordAction::OptOut),
        Some(t) if t == "START" => Some(KeywordAction::OptIn),
        _ => None,
    };
    let input = InboundInput {
        kind: kind.to_owned(),
        from,
        text: Some(msg.body.clone()),
        provider_message_id: msg.message_sid.clone(),
        provider_action,
    };
    apply(&st, Vec::new(), vec![input]).await?;
    Ok((
        [(header::CONTENT_TYPE, twilio::TWIML_CONTENT_TYPE)],
        twilio::TWIML_EMPTY,
    )
        .into_response())
}

/// Query of the WhatsApp subscription check.
#[derive(Debug, Deserialize)]
pub struct HubQuery {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /webhooks/whatsapp`: Meta's subscription check; echoes `hub.challenge` when the verify
/// token matches, 403 otherwise.
pub async fn whatsapp_verify(
    State(st): State<AppState>,
    Query(q): Query<HubQuery>,
) -> Result<Response, ApiError> {
    let Some(expected) = st.providers.whatsapp_verify_token.as_deref() else {
        return Err(not_configured(
            "WhatsApp webhooks",
            "set the verify token named in [whatsapp_webhooks] (default env WHATSAPP_VERIFY_TOKEN)",
        ));
    };
    match whatsapp::verify_challenge(
        q.mode.as_deref(),
        q.token.as_deref(),
        q.challenge.as_deref(),
        expected,
    ) {
        Some(challenge) => Ok((StatusCode::OK, challenge).into_response()),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "hub.mode must be subscribe and hub.verify_token must match the configured verify token",
        )),
    }
}

/// `POST /webhooks/whatsapp`: statuses of our messages and messages from debtors.
pub async fn whatsapp_events(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Some(secret) = st.providers.whatsapp_app_secret.as_deref() else {
        return Err(not_configured(
            "WhatsApp webhooks",
            "set the app secret named in [whatsapp_webhooks] (default env WHATSAPP_APP_SECRET)",
        ));
    };
    let sig = headers
        .get(whatsapp::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = whatsapp::verify_signature(secret.as_bytes(), &body, sig) {
        tracing::warn!(error = %e, "rejected WhatsApp webhook");
        return Err(unauthorized(e));
    }
    let events = whatsapp::parse_webhook(&body).map_err(bad_request)?;
    let mut reports = Vec::new();
    let mut inbound = Vec::new();
    for ev in events {
        match ev {
            whatsapp::WhatsAppEvent::Status(s) => {
                let first = s.errors.first();
                reports.push(DeliveryReport {
                    provider: "whatsapp".to_owned(),
                    provider_message_id: s.wamid,
                    state: s.status,
                    error_code: first.map(|e| e.code),
                    error_text: first.map(|e| {
                        e.details
                            .clone()
                            .or_else(|| e.message.clone())
                            .unwrap_or_else(|| e.title.clone())
                    }),
                });
            }
            whatsapp::WhatsAppEvent::Message(m) => inbound.push(InboundInput {
                kind: "whatsapp".to_owned(),
                from: if m.from.starts_with('+') {
                    m.from
                } else {
                    format!("+{}", m.from)
                },
                text: m.text,
                provider_message_id: m.wamid,
                provider_action: None,
            }),
            whatsapp::WhatsAppEvent::Unknown(u) => {
                tracing::debug!(?u, "ignored WhatsApp webhook item");
            }
        }
    }
    apply(&st, reports, inbound).await?;
    Ok(StatusCode::OK)
}

/// Applies receipts and inbound messages durably, then wakes the dispatcher if a step moved.
async fn apply(
    st: &AppState,
    reports: Vec<DeliveryReport>,
    inbound: Vec<InboundInput>,
) -> Result<(), ApiError> {
    let store = st.store.clone();
    let policy = st.policy.current();
    let now = st.clock.now();
    let woke = write_durably(&st.store, move || {
        let mut wake = false;
        for r in &reports {
            let outcome = apply_receipt(&store, &policy.policy, r, now)?;
            tracing::debug!(provider = %r.provider, id = %r.provider_message_id, state = r.state.as_str(), ?outcome, "receipt");
            wake |= outcome.schedules();
        }
        for i in &inbound {
            let outcome = record_inbound(&store, &policy.policy.opt_out, i, now)?;
            if let Some(action) = outcome.action {
                tracing::info!(kind = %i.kind, ?action, "opt-out keyword received");
            }
        }
        Ok(wake)
    })
    .await?;
    if woke {
        st.wake.notify_one();
    }
    Ok(())
}
