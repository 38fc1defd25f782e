//! `POST /webhooks/payments`: Standard Webhooks signed payment events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::payment_reply::{payment_json, wake_if_open};
use super::{ApiError, AppState, parse_json, write_durably};
use crate::domain::InvoiceId;
use crate::inbound::standard_webhooks;
use crate::service::{PaymentInput, ServiceError, record_payment};

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentData {
    invoice_id: String,
    #[serde(default)]
    amount: Option<String>,
    currency: String,
    reference: String,
    #[serde(default)]
    paid_at: Option<jiff::Timestamp>,
}

/// Verifies the signature on the raw body, then applies `invoice.paid` / `payment.succeeded`
/// once per `webhook-id`.
pub async fn payments(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let Some(secret) = st.payment_secret.clone() else {
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
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            e.to_string(),
        ));
    }
    let webhook_id = lookup.id.unwrap_or_default().to_owned();
    let envelope: Envelope = parse_json(&body)?;
    if !matches!(envelope.kind.as_str(), "invoice.paid" | "payment.succeeded") {
        return Ok(Json(
            json!({ "result": "ignored", "reason": format!("event type {:?} is not handled", envelope.kind) }),
        ));
    }
    let data: PaymentData = serde_json::from_value(envelope.data).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("data: {e}; expected {{invoice_id, amount, currency, reference}}"),
        )
    })?;
    let id = InvoiceId::new(data.invoice_id)
        .map_err(|e| ServiceError::invalid("data.invoice_id", e.to_string()))?;
    let input = PaymentInput {
        amount: data.amount,
        currency: data.currency,
        paid_at: data.paid_at,
        reference: data.reference,
    };
    let store = st.store.clone();
    let wake = st.wake.clone();
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
    wake_if_open(&wake, &answer);
    Ok(Json(payment_json(&answer)))
}
