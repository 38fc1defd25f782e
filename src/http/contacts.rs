//! Address state for ops: what plazo knows about a phone number or email address, manual
//! opt-outs and opt-ins, and a client's own timeline (inbound messages, opt-outs).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::clients::client_id;
use super::{ApiError, AppState, blocking, parse_json, write_durably};
use crate::domain::{Contact, ContactEvent};
use crate::policy::model::CHANNEL_KINDS;
use crate::service::{ContactChange, ServiceError, change_contact, contact_address};

/// Most characters of an opt-out or opt-in reason.
pub const MAX_REASON_CHARS: usize = 500;

/// `GET /v1/clients/{id}/timeline`: inbound messages, opt-outs and opt-ins, oldest first.
pub async fn client_timeline(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ContactEvent>>, ApiError> {
    let id = client_id(id)?;
    blocking(move || {
        if st.store.client(&id).map_err(ServiceError::from)?.is_none() {
            return Err(ServiceError::NotFound {
                what: "client",
                id: id.to_string(),
                hint: "",
            }
            .into());
        }
        Ok(Json(
            st.store.client_timeline(&id).map_err(ServiceError::from)?,
        ))
    })
    .await
}

/// `GET /v1/contacts/{address}`: opt-outs, unreachable channels, last inbound message and the
/// clients using the address (`+573001234567` or an email address).
pub async fn get_contact(
    State(st): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<Contact>, ApiError> {
    let address = contact_address(&address)?;
    blocking(move || {
        st.store
            .contact(&address)
            .map_err(ServiceError::from)?
            .map(Json)
            .ok_or_else(|| {
                ServiceError::NotFound {
                    what: "contact",
                    id: address.clone(),
                    hint: " (addresses are E.164 phones like +573001234567, or email addresses)",
                }
                .into()
            })
    })
    .await
}

/// Body of the opt-out endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptOutBody {
    /// Channel kind: `email`, `sms` or `whatsapp`.
    channel: String,
    /// Why, for the record (`asked by phone`); at most 500 characters.
    #[serde(default)]
    reason: Option<String>,
}

async fn change(
    st: AppState,
    address: String,
    body: Bytes,
    opt_out: bool,
) -> Result<Json<Contact>, ApiError> {
    let address = contact_address(&address)?;
    let b: OptOutBody = parse_json(&body)?;
    if b.reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(ServiceError::invalid(
            "reason",
            format!("is longer than {MAX_REASON_CHARS} characters"),
        )
        .into());
    }
    if !CHANNEL_KINDS.contains(&b.channel.as_str()) || b.channel == "webhook" {
        return Err(ServiceError::invalid(
            "channel",
            format!(
                "{:?} is not a channel a debtor can opt out of; use email, sms or whatsapp",
                b.channel.chars().take(32).collect::<String>()
            ),
        )
        .into());
    }
    let source = format!(
        "api: {}",
        b.reason.unwrap_or_else(|| "no reason given".to_owned())
    );
    let c = if opt_out {
        ContactChange::OptOut {
            kind: b.channel,
            source,
        }
    } else {
        ContactChange::OptIn {
            kind: b.channel,
            source,
        }
    };
    let store = st.store.clone();
    let now = st.clock.now();
    write_durably(&st.store, move || {
        Ok(Json(change_contact(&store, &address, &c, now)?))
    })
    .await
}

/// `POST /v1/contacts/{address}/opt-out` `{channel, reason}`: stop using a channel for the
/// address (a debtor asked by phone, a court order...).
pub async fn opt_out(
    State(st): State<AppState>,
    Path(address): Path<String>,
    body: Bytes,
) -> Result<Json<Contact>, ApiError> {
    change(st, address, body, true).await
}

/// `POST /v1/contacts/{address}/opt-in` `{channel, reason}`: lift an opt-out.
pub async fn opt_in(
    State(st): State<AppState>,
    Path(address): Path<String>,
    body: Bytes,
) -> Result<Json<Contact>, ApiError> {
    change(st, address, body, false).await
}
