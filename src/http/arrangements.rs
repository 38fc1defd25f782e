//! Promises to pay and payment plans: `POST /v1/invoices/{id}/promises`,
//! `POST /v1/invoices/{id}/plans`, and `DELETE .../promises/{n}` / `.../plans/{n}` to cancel one.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, parse_json, write_durably};
use crate::domain::ArrangementKind;
use crate::service::{
    Arranged, PlanInput, PromiseInput, cancel_arrangement, make_plan, make_promise,
};

use super::invoices::invoice_id;

fn arranged_json(a: &Arranged) -> Value {
    json!({
        "result": "created",
        "arrangement": a.arrangement,
        "invoice": a.invoice,
        "next_reminder_at": a.next,
    })
}

/// `POST /v1/invoices/{id}/promises`: 201 with the promise; 409 when another promise or plan
/// is active or the invoice is paid; 422 for an amount above the balance, a past date...
pub async fn post_promise(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = invoice_id(id)?;
    let input: PromiseInput = parse_json(&body)?;
    let wake = st.wake.clone();
    let store = st.store.clone();
    let v = write_durably(&store, move || {
        let policy = st.policy.current();
        let a = make_promise(&st.store, &policy.policy, &id, input, st.clock.now())?;
        Ok(arranged_json(&a))
    })
    .await?;
    wake.notify_one();
    Ok((StatusCode::CREATED, Json(v)))
}

/// `POST /v1/invoices/{id}/plans`: 201 with the plan; 422 when the instalments do not add up
/// to the balance, are out of date order, or too many.
pub async fn post_plan(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = invoice_id(id)?;
    let input: PlanInput = parse_json(&body)?;
    let wake = st.wake.clone();
    let store = st.store.clone();
    let v = write_durably(&store, move || {
        let policy = st.policy.current();
        let a = make_plan(&st.store, &policy.policy, &id, input, st.clock.now())?;
        Ok(arranged_json(&a))
    })
    .await?;
    wake.notify_one();
    Ok((StatusCode::CREATED, Json(v)))
}

/// Optional body of the cancel endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    /// Why it is cancelled (kept on the timeline).
    #[serde(default)]
    pub reason: Option<String>,
}

async fn cancel(
    st: AppState,
    id: String,
    n: String,
    body: Bytes,
    kind: ArrangementKind,
) -> Result<Json<Value>, ApiError> {
    let id = invoice_id(id)?;
    let n: u32 = n.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_id",
            format!("{n:?} is not a {} number; they count from 1", kind.as_str()),
        )
    })?;
    let input: CancelInput = if body.iter().all(u8::is_ascii_whitespace) {
        CancelInput::default()
    } else {
        parse_json(&body)?
    };
    let wake = st.wake.clone();
    let store = st.store.clone();
    let v = write_durably(&store, move || {
        let policy = st.policy.current();
        let (inv, next) = cancel_arrangement(
            &st.store,
            &policy.policy,
            &id,
            kind,
            n,
            input.reason,
            st.clock.now(),
        )?;
        Ok(json!({ "result": "cancelled", "invoice": inv, "next_reminder_at": next }))
    })
    .await?;
    wake.notify_one();
    Ok(Json(v))
}

/// `DELETE /v1/invoices/{id}/promises/{n}`: cancels an active promise (not counted as broken).
pub async fn delete_promise(
    State(st): State<AppState>,
    Path((id, n)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    cancel(st, id, n, body, ArrangementKind::Promise).await
}

/// `DELETE /v1/invoices/{id}/plans/{n}`: cancels an active plan (not counted as broken).
pub async fn delete_plan(
    State(st): State<AppState>,
    Path((id, n)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    cancel(st, id, n, body, ArrangementKind::Plan).await
}
