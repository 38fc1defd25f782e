use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{ApiError, AppState, blocking, parse_json, write_durably};
use crate::domain::{Client, ClientFacts, ClientId};
use crate::service::{ClientInput, ServiceError, client_facts, upsert_client};

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

/// What `GET /v1/clients/{id}` answers: the client as stored, and its facts.
#[derive(Debug, serde::Serialize)]
pub struct ClientView {
    /// The client record.
    #[serde(flatten)]
    pub client: Client,
    /// How the client pays, computed by plazo from its own data: paid invoices, lateness
    /// over the policy's `[facts] last_paid` window, promises, open balance per currency,
    /// oldest days overdue, last payment, contact and inbound message.
    pub facts: ClientFacts,
    /// The client's open invoices, earliest due first (at most 200; `facts.open_invoices`
    /// counts them all).
    pub open_invoices: Vec<OpenInvoiceView>,
}

/// One open invoice in `GET /v1/clients/{id}`.
#[derive(Debug, serde::Serialize)]
pub struct OpenInvoiceView {
    /// Its id.
    pub id: String,
    /// Its number.
    pub number: String,
    /// Its currency.
    pub currency: String,
    /// What it was for.
    pub amount: String,
    /// What is still owed.
    pub balance: String,
    /// When it is (was) due, as given.
    pub due_at: String,
    /// Whether the chase is paused on it.
    pub paused: bool,
}

impl From<&crate::domain::Invoice> for OpenInvoiceView {
    fn from(inv: &crate::domain::Invoice) -> Self {
        OpenInvoiceView {
            id: inv.id.to_string(),
            number: inv.number.clone(),
            currency: inv.currency.code().to_owned(),
            amount: inv.currency.show(inv.amount),
            balance: inv.currency.show(inv.balance),
            due_at: inv.due_at.to_string(),
            paused: inv.pause.is_some(),
        }
    }
}

/// `GET /v1/clients/{id}`: the client, its `facts` and its open invoices.
pub async fn get_client(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    let id = client_id(id)?;
    blocking(move || {
        let Some(client) = st.store.client(&id).map_err(ServiceError::from)? else {
            return Err(ServiceError::NotFound {
                what: "client",
                id: id.to_string(),
                hint: "",
            }
            .into());
        };
        let policy = st.policy.current();
        let (facts, open) = client_facts(&st.store, &policy.policy, &client, st.clock.now())
            .map_err(ServiceError::from)?;
        let open_invoices = open.iter().map(OpenInvoiceView::from).collect();
        Ok(Json(ClientView {
            client,
            facts,
            open_invoices,
        }))
    })
    .await
}
