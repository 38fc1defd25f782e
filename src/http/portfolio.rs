//! `GET /v1/invoices`, `GET /v1/clients` and `GET /v1/reminders`: the portfolio listed with
//! filters, in pages ([`crate::service::portfolio`]).

use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use super::{ApiError, AppState, blocking};
use crate::service::portfolio::{
    ClientQuery, InvoiceQuery, ReminderQuery, list_clients, list_invoices, list_reminders,
};

/// `GET /v1/invoices?status=&client_id=&segment=&currency=&overdue_min_days=&due_before=&limit=&cursor=`:
/// invoices in id order.
pub async fn invoices(
    State(st): State<AppState>,
    Query(q): Query<InvoiceQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let policy = st.policy.current();
        let page = list_invoices(&st.store, &policy.policy, &q, st.clock.now())?;
        Ok(Json(
            json!({ "invoices": page.items, "next_cursor": page.next_cursor }),
        ))
    })
    .await
}

/// `GET /v1/clients?segment=&tag=&limit=&cursor=`: clients in id order, each with its open
/// invoices' count and balance per currency.
pub async fn clients(
    State(st): State<AppState>,
    Query(q): Query<ClientQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let policy = st.policy.current();
        let page = list_clients(&st.store, &policy.policy, &q)?;
        Ok(Json(
            json!({ "clients": page.items, "next_cursor": page.next_cursor }),
        ))
    })
    .await
}

/// `GET /v1/reminders?from=&to=&channel=&limit=&cursor=`: what is planned to go out, in
/// firing order.
pub async fn reminders(
    State(st): State<AppState>,
    Query(q): Query<ReminderQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let policy = st.policy.current();
        let page = list_reminders(&st.store, &policy.policy, &q, st.clock.now())?;
        Ok(Json(
            json!({ "reminders": page.items, "next_cursor": page.next_cursor }),
        ))
    })
    .await
}
