//! `POST /v1/invoices/{id}/hand-off`, `/write-off`, `/void` and `/recall`: taking an invoice
//! out of the automated chase and bringing it back. The body is optional:
//! `{"partner": "...", "reason": "..."}` (partner for a hand-off only; a reason is required
//! to void).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::invoices::invoice_id;
use super::{ApiError, AppState, parse_json, write_durably};
use crate::service::{EscalationInput, EscalationRequest, escalate_invoice};

async fn run(
    st: AppState,
    id: String,
    body: Bytes,
    request: EscalationRequest,
    result: &'static str,
) -> Result<Json<Value>, ApiError> {
    let id = invoice_id(id)?;
    let input: EscalationInput = if body.iter().all(u8::is_ascii_whitespace) {
        EscalationInput::default()
    } else {
        parse_json(&body)?
    };
    let wake = st.wake.clone();
    let store = st.store.clone();
    let v = write_durably(&store, move || {
        let policy = st.policy.current();
        let done = escalate_invoice(
            &st.store,
            &policy.policy,
            &id,
            request,
            input,
            st.clock.now(),
        )?;
        Ok(json!({
            "result": result,
            "invoice": done.invoice,
            "next_reminder_at": done.next_reminder_at,
        }))
    })
    .await?;
    if request == EscalationRequest::Recall {
        wake.notify_one();
    }
    Ok(Json(v))
}

/// `POST /v1/invoices/{id}/hand-off`: to the partner named in the body (optional when the
/// policy has one partner); automated reminders stop.
pub async fn hand_off(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    run(st, id, body, EscalationRequest::HandOff, "handed_off").await
}

/// `POST /v1/invoices/{id}/write-off`: reminders stop; later payments are recoveries.
pub async fn write_off(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    run(st, id, body, EscalationRequest::WriteOff, "written_off").await
}

/// `POST /v1/invoices/{id}/void`: the invoice is cancelled; the chase stops for good.
pub async fn void(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    run(st, id, body, EscalationRequest::Void, "voided").await
}

/// `POST /v1/invoices/{id}/recall`: a handed-off or written-off invoice is chased again from
/// its cadence's next future step.
pub async fn recall(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    run(st, id, body, EscalationRequest::Recall, "recalled").await
}
