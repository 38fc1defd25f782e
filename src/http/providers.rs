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
use crate::service::{DeliveryReport, InboundInput, apply_receipt, record_inbound};
use crate::telemetry::{RejectReason as _, reasons};

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
    let t = &st.providers.telemetry;
    let Some(token) = st.providers.twilio_auth_token.as_deref() else {
        t.webhook_rejected("twilio", reasons::NOT_CONFIGURED);
        return Err(not_configured(
            "Twilio callbacks",
            "set the auth token named in [twilio_webhooks] (default env TWILIO_AUTH_TOKEN)",
        ));
    };
    let params = twilio::parse_form(body).map_err(|e| {
        t.webhook_rejected("twilio", reasons::MALFORMED);
        bad_request(e)
    })?;
    let url = format!("{}{path}", st.providers.public_base);
    let sig = headers
        .get(twilio::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = twilio::verify(token, &url, &params, sig) {
        tracing::warn!(error = %e, %url, "rejected Twilio callback");
        t.webhook_rejected("twilio", e.reason());
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
    let report = twilio::delivery_report(&cb);
    apply(&st, vec![report], Vec::new()).await?;
    Ok(StatusCode::OK)
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
    let input = twilio::inbound_input(&msg);
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
    let t = &st.providers.telemetry;
    let Some(secret) = st.providers.whatsapp_app_secret.as_deref() else {
        t.webhook_rejected("whatsapp", reasons::NOT_CONFIGURED);
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
        t.webhook_rejected("whatsapp", e.reason());
        return Err(unauthorized(e));
    }
    let events = whatsapp::parse_webhook(&body).map_err(|e| {
        t.webhook_rejected("whatsapp", reasons::MALFORMED);
        bad_request(e)
    })?;
    let (reports, inbound) = whatsapp::service_inputs(events);
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
            let outcome = record_inbound(&store, &policy.policy, i, now)?;
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
