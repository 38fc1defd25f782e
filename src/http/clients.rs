use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{ApiError, AppState, blocking, parse_json, write_durably};
use crate::domain::{Client, ClientId};
use crate::service::{ClientInput, ServiceError, upsert_client};

pub(crate) fn client_id(raw: String) -> Result<ClientId, ApiError> {
    ClientId::new(raw).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_id", e.to_string()))
}

/// `PUT /v1/clients/{id}`: 201 when created, 200 when replaced.
pub async fn put_client(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Client>), ApiError> {
    let id = client_id(id)?;
    let input: ClientInput = parse_json(&body)?;
    let store = st.store.clone();
    write_durably(&store, move || {
        let policy = st.policy.current();
        let (client, created) =
            upsert_client(&st.store, &policy.policy, &id, input, st.clock.now())?;
        Ok((
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            Json(client),
        ))
    })
    .await
}

/// `GET /v1/clients/{id}`.
pub async fn get_client(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Client>, ApiError> {
    let id = client_id(id)?;
    blocking(move || {
        st.store
            .client(&id)
            .map_err(ServiceError::from)?
            .map(Json)
            .ok_or_else(|| {
                ServiceError::NotFound {
                    what: "client",
                    id: id.to_string(),
                    hint: "",
                }
                .into()
            })
    })
    .await
}
