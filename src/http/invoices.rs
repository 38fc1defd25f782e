use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::payment_reply::{payment_json, wake_if_open};
use super::{ApiError, AppState, blocking, parse_json, write_durably};
use crate::domain::{Invoice, InvoiceId};
use crate::service::{
    InvoiceInput, PaymentInput, ServiceError, Upserted, pause_invoice, record_payment,
    resume_invoice, upsert_invoice_async,
};
use crate::store::Ack;

/// The invoice id of a request path, or a 400 saying what is wrong with it.
pub(crate) fn invoice_id(raw: String) -> Result<InvoiceId, ApiError> {
    InvoiceId::new(raw).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_id", e.to_string()))
}

/// The body of a `PUT /v1/invoices/{id}` answer, serialized straight from the stored invoice
/// (no intermediate JSON tree: this is the ingest path).
#[derive(Debug, Serialize)]
pub struct UpsertReply {
    /// `created`, `updated` or `unchanged`.
    pub result: &'static str,
    /// The invoice as stored.
    pub invoice: Invoice,
    /// When the next reminder is planned, if any.
    pub next_reminder_at: Option<Timestamp>,
}

/// `PUT /v1/invoices/{id}`: 201 created, 200 updated or unchanged.
pub async fn put_invoice(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<UpsertReply>), ApiError> {
    let id = invoice_id(id)?;
    let input: InvoiceInput = parse_json(&body)?;
    // Runs on the store's writer thread; answered once durable.
    let (inv, outcome, next) = upsert_invoice_async(
        &st.store,
        st.policy.current(),
        id,
        input,
        st.clock.now(),
        Ack::Durable,
    )
    .await?;
    let status = if outcome == Upserted::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let label = match outcome {
        Upserted::Created => "created",
        Upserted::Updated => "updated",
        Upserted::Unchanged => "unchanged",
    };
    if let Some(next) = next {
        st.wake.notify_if_due_before(next, st.clock.now());
    }
    Ok((
        status,
        Json(UpsertReply {
            result: label,
            invoice: inv,
            next_reminder_at: next,
        }),
    ))
}

/// `GET /v1/invoices/{id}`: the invoice, its timeline and the next planned reminder.
pub async fn get_invoice(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = invoice_id(id)?;
    blocking(move || {
        let view = st
            .store
            .invoice_view(&id)
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::NotFound {
                what: "invoice",
                id: id.to_string(),
                hint: "",
            })?;
        Ok(Json(json!({
            "invoice": view.invoice,
            "timeline": view.timeline,
            "next_reminder": view.next_reminder,
        })))
    })
    .await
}

/// `POST /v1/invoices/{id}/payments`.
pub async fn post_payment(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = invoice_id(id)?;
    let input: PaymentInput = parse_json(&body)?;
    if input.amount.is_none() {
        return Err(ServiceError::invalid(
            "amount",
            "is required: the amount paid as a decimal string",
        )
        .into());
    }
    let store = st.store.clone();
    let wake = st.wake.clone();
    let outcome = write_durably(&store, move || {
        let policy = st.policy.current();
        Ok(record_payment(
            &st.store,
            &policy.policy,
            &id,
            &input,
            "api",
            None,
            st.clock.now(),
        )?)
    })
    .await?;
    wake_if_open(&wake, &outcome);
    Ok(Json(payment_json(&outcome)))
}

/// Body of `POST /v1/invoices/{id}/pause`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseInput {
    /// Why the chase is paused.
    pub reason: String,
    /// When the pause ends by itself (RFC 3339, offset within ±23:59); never, when absent.
    #[serde(default, deserialize_with = "crate::domain::when::opt_instant")]
    pub until: Option<Timestamp>,
}

/// `POST /v1/invoices/{id}/pause`.
pub async fn pause(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = invoice_id(id)?;
    let input: PauseInput = parse_json(&body)?;
    let wake = st.wake.clone();
    let store = st.store.clone();
    let v = write_durably(&store, move || {
        let policy = st.policy.current();
        let inv = pause_invoice(
            &st.store,
            &policy.policy,
            &id,
            input.reason,
            input.until,
            st.clock.now(),
        )?;
        Ok(json!({ "result": "paused", "invoice": inv }))
    })
    .await?;
    wake.notify_one();
    Ok(Json(v))
}

/// `POST /v1/invoices/{id}/resume`.
pub async fn resume(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = invoice_id(id)?;
    let wake = st.wake.clone();
    let store = st.store.clone();
    let v = write_durably(&store, move || {
        let policy = st.policy.current();
        let (inv, next) = resume_invoice(&st.store, &policy.policy, &id, st.clock.now())?;
        Ok(json!({ "result": "resumed", "invoice": inv, "next_reminder_at": next }))
    })
    .await?;
    wake.notify_one();
    Ok(Json(v))
}
