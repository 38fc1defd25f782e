//! `POST /v1/invoices/{id}/notes` and `POST /v1/clients/{id}/notes`: a person's note on the
//! timeline (`{"author": "...", "text": "..."}`), answered 201 with the entry written.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::clients::client_id;
use super::invoices::invoice_id;
use super::{ApiError, AppState, parse_json, write_durably};
use crate::service::{NoteInput, add_client_note, add_invoice_note};

/// `POST /v1/invoices/{id}/notes`.
pub async fn invoice_note(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = invoice_id(id)?;
    let input: NoteInput = parse_json(&body)?;
    let store = st.store.clone();
    write_durably(&store, move || {
        let line = add_invoice_note(&st.store, &id, input, st.clock.now())?;
        Ok((
            StatusCode::CREATED,
            Json(json!({ "result": "noted", "line": line })),
        ))
    })
    .await
}

/// `POST /v1/clients/{id}/notes`.
pub async fn client_note(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = client_id(id)?;
    let input: NoteInput = parse_json(&body)?;
    let store = st.store.clone();
    write_durably(&store, move || {
        let entry = add_client_note(&st.store, &id, input, st.clock.now())?;
        Ok((
            StatusCode::CREATED,
            Json(json!({ "result": "noted", "entry": entry })),
        ))
    })
    .await
}
