//! `GET /v1/events` and `POST /v1/events/{id}/retry`: what the events outbox holds, and
//! sending a failed event again once its endpoint is fixed.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, blocking, write_durably};
use crate::domain::{EventState, OutboundEvent};
use crate::service::events::{get_event, list_events, retry_event};

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `pending`, `delivered` or `failed`.
    state: Option<String>,
    /// 1 to 500; default 50.
    limit: Option<String>,
}

/// An event as the API shows it: its body as JSON, its next attempt while pending.
fn view(e: &OutboundEvent) -> Value {
    json!({
        "id": e.id,
        "type": e.kind,
        "destination": e.destination,
        "state": e.state,
        "attempts": e.attempts,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "next_attempt_at": (e.state == EventState::Pending).then_some(e.next_at),
        "last_error": e.last_error,
        "payload": serde_json::from_str::<Value>(&e.payload).unwrap_or(Value::String(e.payload.clone())),
    })
}

/// `GET /v1/events?state=failed&limit=50`: events newest first.
pub async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let events = list_events(&st.store, q.state.as_deref(), q.limit.as_deref())?;
        Ok(Json(Value::Array(events.iter().map(view).collect())))
    })
    .await
}

/// `POST /v1/events/{id}/retry`: a failed event back to pending (409 otherwise, 404 unknown).
pub async fn retry(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let now = st.clock.now();
    let e = write_durably(&st.store, move || Ok(retry_event(&store, &id, now)?)).await?;
    Ok(Json(json!({ "result": "pending", "event": view(&e) })))
}

/// `GET /v1/events/{id}`: one event (404 unknown).
pub async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(view(&get_event(&st.store, &id)?)))).await
}
