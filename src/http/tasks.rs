//! `GET /v1/tasks`, `GET /v1/tasks/{id}`, `POST /v1/tasks/{id}/claim` and
//! `POST /v1/tasks/{id}/outcome`: the queue of calls to make and replies to review.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::{ApiError, AppState, blocking, parse_json, write_durably};
use crate::domain::{Task, TaskState};
use crate::service::{
    ClaimInput, OutcomeInput, TaskQuery, claim_task, get_task, list_tasks, parse_task_id,
    task_outcome,
};

/// A task as the API shows it; a claimed task says until when its claim holds.
fn view(t: &Task, claim_timeout: jiff::SignedDuration) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        let until = (t.state == TaskState::Claimed)
            .then_some(t.claimed_at)
            .flatten()
            .and_then(|c| c.checked_add(claim_timeout).ok());
        m.insert("claim_expires_at".into(), json!(until));
    }
    v
}

/// `GET /v1/tasks?state=open&due_before=…&segment=…&agent=…&kind=call&limit=50&cursor=…`:
/// highest priority first, then earliest due.
pub async fn list(
    State(st): State<AppState>,
    Query(q): Query<TaskQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let policy = st.policy.current();
        let timeout = policy.policy.tasks.claim_timeout;
        let page = list_tasks(&st.store, &policy.policy, &q, st.clock.now())?;
        Ok(Json(json!({
            "tasks": page.tasks.iter().map(|t| view(t, timeout)).collect::<Vec<_>>(),
            "next_cursor": page.next_cursor,
        })))
    })
    .await
}

/// `GET /v1/tasks/{id}` (404 unknown).
pub async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let id = parse_task_id(&id)?;
        let policy = st.policy.current();
        let t = get_task(&st.store, &policy.policy, &id, st.clock.now())?;
        Ok(Json(view(&t, policy.policy.tasks.claim_timeout)))
    })
    .await
}

/// `POST /v1/tasks/{id}/claim` `{"agent": "ana"}`: 409 when done, cancelled or held by
/// another agent's claim that has not expired.
pub async fn claim(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = parse_task_id(&id)?;
    let input: ClaimInput = parse_json(&body)?;
    let store = st.store.clone();
    let v = write_durably(&store, move || {
        let policy = st.policy.current();
        let t = claim_task(&st.store, &policy.policy, &id, input, st.clock.now())?;
        Ok(json!({
            "result": "claimed",
            "task": view(&t, policy.policy.tasks.claim_timeout),
        }))
    })
    .await?;
    Ok(Json(v))
}

/// `POST /v1/tasks/{id}/outcome` `{"result": "...", "note": "...", "promise": {...}}`: closes
/// the task and acts on it (422 for an unknown result, 409 when already closed).
pub async fn outcome(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = parse_task_id(&id)?;
    let input: OutcomeInput = parse_json(&body)?;
    let store = st.store.clone();
    let wake = st.wake.clone();
    let v = write_durably(&store, move || {
        let policy = st.policy.current();
        let timeout = policy.policy.tasks.claim_timeout;
        let done = task_outcome(&st.store, &policy.policy, &id, input, st.clock.now())?;
        Ok(json!({
            "result": "done",
            "task": view(&done.task, timeout),
            "next_task": done.next_task.as_ref().map(|t| view(t, timeout)),
            "promise": done.promise.as_ref().map(|a| &a.arrangement),
        }))
    })
    .await?;
    wake.notify_one();
    Ok(Json(v))
}
