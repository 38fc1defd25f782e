//! `PATCH /v1/clients/{id}` and `PATCH /v1/invoices/{id}`: JSON Merge Patch (RFC 7396) over
//! the body the record's `PUT` takes ([`crate::service::patch_client`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::clients::client_id;
use super::invoices::invoice_id;
use super::{ApiError, AppState, parse_json, write_durably};
use crate::domain::Client;
use crate::service::{Upserted, patch_client, patch_invoice};

/// The media type of a merge patch; `application/json` is accepted too.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// 415 unless the body is declared a merge patch (or plain JSON).
fn merge_patch_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != MERGE_PATCH && essence != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "a PATCH body is a JSON Merge Patch (RFC 7396): send it with Content-Type: {MERGE_PATCH} (or application/json)"
            ),
        ));
    }
    parse_json(body)
}

/// `PATCH /v1/clients/{id}`: 200 with the client as stored.
pub async fn patch_client_handler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Client>, ApiError> {
    let id = client_id(id)?;
    let patch = merge_patch_body(&headers, &body)?;
    let store = st.store.clone();
    write_durably(&store, move || {
        let policy = st.policy.current();
        let client = patch_client(&st.store, &policy.policy, &id, &patch, st.clock.now())?;
        Ok(Json(client))
    })
    .await
}

/// `PATCH /v1/invoices/{id}`: 200 with `result` (`updated` or `unchanged`), the invoice and
/// its next reminder, as `PUT` answers.
pub async fn patch_invoice_handler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = invoice_id(id)?;
    let patch = merge_patch_body(&headers, &body)?;
    let (inv, outcome, next) =
        patch_invoice(&st.store, st.policy.current(), &id, &patch, st.clock.now()).await?;
    if let Some(next) = next {
        st.wake.notify_if_due_before(next, st.clock.now());
    }
    let label = if outcome == Upserted::Unchanged {
        "unchanged"
    } else {
        "updated"
    };
    Ok((
        StatusCode::OK,
        Json(json!({ "result": label, "invoice": inv, "next_reminder_at": next })),
    ))
}
