//! `/u/{token}`: one-click unsubscribe (RFC 8058). `POST` (what mail providers send, body
//! `List-Unsubscribe=One-Click`) opts the address out of email reminders at once, with no
//! confirmation; `GET` (a person clicking the link) shows a page with one button that POSTs, so
//! link scanners that prefetch URLs never unsubscribe anyone.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, blocking, write_durably};
use crate::service::{ContactChange, ServiceError, change_contact};

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\"><h1>{title}</h1>{body}</body></html>"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

fn invalid() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Enlace no válido / Invalid link",
        "<p>Este enlace no es válido o ya no corresponde a su dirección.</p><p>This link is not valid, or no longer matches your address.</p>",
    )
}

/// Hides most of an address: `ana.maria@example.co` → `a***@example.co`.
fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Looks up the client and current address a token was made for.
async fn resolve(st: &AppState, token: String) -> Option<(crate::domain::ClientId, String)> {
    let links = st.providers.unsubscribe.clone()?;
    let t = links.decode(&token)?;
    let store = st.store.clone();
    let id = t.client_id.clone();
    let client = blocking(move || Ok(store.client(&id).map_err(ServiceError::from)?))
        .await
        .ok()??;
    let email = client.email?;
    links.matches(&t, &email).then_some((t.client_id, email))
}

/// `GET /u/{token}`: a confirmation page with one button.
pub async fn show(State(st): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((_, email)) = resolve(&st, token.clone()).await else {
        return invalid();
    };
    page(
        StatusCode::OK,
        "Cancelar recordatorios / Unsubscribe",
        &format!(
            "<p>Dejar de recibir recordatorios de pago por correo en {m}.</p><p>Stop payment reminders by email to {m}.</p><form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\">Cancelar / Unsubscribe</button></form>",
            m = mask(&email)
        ),
    )
}

/// `POST /u/{token}`: opts the address out of email at once.
pub async fn one_click(State(st): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((client_id, email)) = resolve(&st, token).await else {
        return invalid();
    };
    let store = st.store.clone();
    let now = st.clock.now();
    let addr = email.clone();
    let done = write_durably(&st.store, move || {
        let change = ContactChange::OptOut {
            kind: "email".to_owned(),
            source: "one-click unsubscribe".to_owned(),
        };
        change_contact(&store, &addr, &change, now)?;
        Ok(())
    })
    .await;
    match done {
        Ok(()) => {
            tracing::info!(client = %client_id, "email opt-out by one-click unsubscribe");
            page(
                StatusCode::OK,
                "Listo / Done",
                &format!(
                    "<p>No enviaremos más recordatorios por correo a {m}.</p><p>You will get no more email reminders at {m}.</p>",
                    m = mask(&email)
                ),
            )
        }
        Err(e) => e.into_response(),
    }
}
