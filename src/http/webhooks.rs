//! `POST /webhooks/payments`: Standard Webhooks signed payment events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::payment_reply::{payment_json, wake_if_open};
use super::{ApiError, AppState, write_durably};
use crate::inbound::payment_event::{PaymentEvent, PaymentEventError, parse_payment_event};
use crate::inbound::standard_webhooks;
use crate::service::{PaymentOutcome, ServiceError, record_payment};
use crate::telemetry::{RejectReason as _, reasons};

/// The endpoint label of this webhook's rejections.
const ENDPOINT: &str = "payments";
/// The provider label of the payment events it receives (Standard Webhooks).
const PROVIDER: &str = "standard_webhooks";

/// Verifies the signature on the raw body, then applies `invoice.paid` / `payment.succeeded`
/// once per `webhook-id`.
pub async fn payments(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t = &st.providers.telemetry;
    let Some(secret) = st.payment_secret.clone() else {
        t.webhook_rejected(ENDPOINT, reasons::NOT_CONFIGURED);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "payment webhooks are not configured: set the secret named in [payment_webhooks] (default env PLAZO_WEBHOOK_SECRET)",
        ));
    };
    let now = st.clock.now();
    let lookup = standard_webhooks::HeaderLookup::from_headers(&headers);
    if let Err(e) = standard_webhooks::verify(&secret, &lookup, &body, now, st.webhook_tolerance) {
        tracing::warn!(error = %e, "rejected payment webhook");
        t.webhook_rejected(ENDPOINT, e.reason());
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            e.to_string(),
        ));
    }
    let webhook_id = lookup.id.unwrap_or_default().to_owned();
    let (id, input) = match parse_payment_event(&body) {
        Ok(PaymentEvent::Paid { invoice_id, input }) => (invoice_id, input),
        Ok(PaymentEvent::Ignored { kind }) => {
            t.payment_event(PROVIDER, "ignored");
            return Ok(Json(
                json!({ "result": "ignored", "reason": format!("event type {kind:?} is not handled") }),
            ));
        }
        Err(PaymentEventError::InvoiceId(e)) => {
            t.webhook_rejected(ENDPOINT, reasons::MALFORMED);
            return Err(ServiceError::invalid("data.invoice_id", e).into());
        }
        Err(e) => {
            t.webhook_rejected(ENDPOINT, reasons::MALFORMED);
            let code = if e.is_malformed_json() {
                "malformed_json"
            } else {
                "bad_request"
            };
            return Err(ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string()));
        }
    };
    let store = st.store.clone();
    let wake = st.wake.clone();
    let telemetry = t.clone();
    let answer = write_durably(&store, move || {
        let source = format!("webhook:{webhook_id}");
        let policy = st.policy.current();
        let outcome = record_payment(
            &st.store,
            &policy.policy,
            &id,
            &input,
            &source,
            Some(&webhook_id),
            now,
        )?;
        tracing::info!(invoice = %id, webhook = %webhook_id, ?outcome, "payment webhook applied");
        Ok(outcome)
    })
    .await?;
    telemetry.payment_event(
        PROVIDER,
        match answer {
            PaymentOutcome::Applied { .. } => "applied",
            PaymentOutcome::Duplicate => "duplicate",
        },
    );
    wake_if_open(&wake, &answer);
    Ok(Json(payment_json(&answer)))
}
