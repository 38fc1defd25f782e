//! Payment-provider webhooks (`/webhooks/stripe`, `/webhooks/mercadopago`) and the report of
//! what they received (`/v1/payment-events`). Each webhook is verified on the raw request, then
//! persisted durably, then acknowledged; the inbox processor applies it afterwards.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, blocking, write_durably};
use crate::domain::{InboxEntry, InboxPayload, InboxState};
use crate::payments::{mercadopago, stripe};
use crate::service::{Enqueued, ServiceError, enqueue_async, retry_entry};
use crate::telemetry::{RejectReason as _, reasons};

fn not_configured(what: &str, how: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_configured",
        format!("{what} are not configured: {how}"),
    )
}

/// Persists a verified payload and answers; the processor is woken.
async fn accept(
    st: &AppState,
    provider: &str,
    key: String,
    payload: InboxPayload,
) -> Result<Json<Value>, ApiError> {
    // Runs on the store's writer thread; answered once durable.
    let outcome = enqueue_async(&st.store, key.clone(), payload, st.clock.now()).await?;
    st.providers.telemetry.payment_event(
        provider,
        if outcome == Enqueued::Duplicate {
            "duplicate"
        } else {
            "received"
        },
    );
    st.providers.inbox_wake.notify_one();
    Ok(Json(json!({
        "received": key,
        "duplicate": outcome == Enqueued::Duplicate,
    })))
}

/// `POST /webhooks/stripe`.
pub async fn stripe_webhook(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t = &st.providers.telemetry;
    let Some(secret) = st.providers.stripe_secret.as_deref() else {
        t.webhook_rejected("stripe", reasons::NOT_CONFIGURED);
        return Err(not_configured(
            "Stripe webhooks",
            "set the signing secret named in [stripe] (default env STRIPE_WEBHOOK_SECRET)",
        ));
    };
    let sig = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = stripe::verify(
        secret,
        sig,
        &body,
        st.clock.now(),
        st.providers.stripe_tolerance,
    ) {
        tracing::warn!(error = %e, "rejected Stripe webhook");
        t.webhook_rejected("stripe", e.reason());
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            e.to_string(),
        ));
    }
    match stripe::parse_event(&body, &st.providers.stripe_metadata_key) {
        Ok(event) => {
            let key = format!("stripe:{}", event.event_id);
            accept(
                &st,
                "stripe",
                key,
                InboxPayload::Event {
                    event: Box::new(event),
                },
            )
            .await
        }
        Err(e) => {
            // Authentic but unreadable: keep it for review and acknowledge it, since Stripe
            // would otherwise retry for days something that will never parse.
            use sha2::Digest as _;
            let digest = hex::encode(sha2::Sha256::digest(&body));
            tracing::warn!(error = %e, "signed Stripe event could not be read; kept as failed");
            let payload = InboxPayload::Unreadable {
                provider: "stripe".to_owned(),
                error: e.to_string(),
            };
            accept(
                &st,
                "stripe",
                format!("stripe:unreadable:{}", &digest[..32]),
                payload,
            )
            .await
        }
    }
}

/// `POST /webhooks/mercadopago?data.id=...&type=payment`.
pub async fn mercadopago_webhook(
    State(st): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t = &st.providers.telemetry;
    let Some(secret) = st.providers.mercadopago_secret.as_deref() else {
        t.webhook_rejected("mercadopago", reasons::NOT_CONFIGURED);
        return Err(not_configured(
            "Mercado Pago notifications",
            "set the secret signature named in [mercadopago] (default env MERCADOPAGO_WEBHOOK_SECRET)",
        ));
    };
    let query = query.unwrap_or_default();
    let data_id = mercadopago::query_data_id(&query);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request_id = header(mercadopago::HEADER_REQUEST_ID);
    // The signature, then its age: a replayed (or far-future) notification is refused.
    if let Err(e) = mercadopago::verify_with_tolerance(
        secret,
        header(mercadopago::HEADER_SIGNATURE),
        request_id,
        data_id.as_deref(),
        st.clock.now(),
        Some(mercadopago::DEFAULT_TOLERANCE),
    ) {
        tracing::warn!(error = %e, "rejected Mercado Pago notification");
        t.webhook_rejected("mercadopago", e.reason());
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            e.to_string(),
        ));
    }
    let note = mercadopago::Notification::parse(&query, &body).map_err(|e| {
        t.webhook_rejected("mercadopago", reasons::MALFORMED);
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
    })?;
    if !note.is_payment() {
        t.payment_event("mercadopago", "ignored");
        return Ok(Json(json!({
            "ignored": format!("notifications of type {:?} are not handled", note.kind)
        })));
    }
    let key = format!("mercadopago:{}", note.event_id(request_id));
    let payload = InboxPayload::Fetch {
        provider: "mercadopago".to_owned(),
        data_id: note.data_id.clone(),
        action: Some(note.event_type().to_owned()),
    };
    accept(&st, "mercadopago", key, payload).await
}

/// Query of `GET /v1/payment-events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Only entries in this state (`received`, `applied`, `unmatched`, `flagged`, `failed`).
    state: Option<String>,
}

/// `GET /v1/payment-events?state=unmatched`: what the payment webhooks received.
pub async fn list(
    State(st): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<InboxEntry>>, ApiError> {
    let want = match q.state.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<InboxState>(Value::String(s.to_owned())).map_err(|_| {
                ServiceError::invalid(
                    "state",
                    format!("{s:?} is not one of received, applied, unmatched, flagged, failed"),
                )
            })?,
        ),
    };
    blocking(move || {
        let all = st.store.inbox_entries().map_err(ServiceError::from)?;
        Ok(Json(
            all.into_iter()
                .filter(|e| want.is_none_or(|w| e.state == w))
                .collect(),
        ))
    })
    .await
}

/// `POST /v1/payment-events/{key}/retry`: puts an unmatched, flagged or failed event back in
/// the queue (after creating the invoice or fixing the reference).
pub async fn retry(
    State(st): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<InboxEntry>, ApiError> {
    let store = st.store.clone();
    let now = st.clock.now();
    let entry = write_durably(&st.store, move || Ok(retry_entry(&store, &key, now)?)).await?;
    st.providers.inbox_wake.notify_one();
    Ok(Json(entry))
}
