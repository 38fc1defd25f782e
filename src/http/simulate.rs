//! `POST /v1/simulate`: the portfolio run for N days under the policy in force and, when the
//! body has one, a candidate policy ([`crate::simulate`]). Sends nothing, changes nothing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::{ApiError, AppState, parse_json};
use crate::simulate::{
    SimulateError, SimulateRequest, SimulationReport, parse_candidate, simulate,
};

/// Body of `POST /v1/simulate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateBody {
    /// Days to simulate from now (1 to `[simulation] max_days`, default 30).
    #[serde(default)]
    pub days: Option<u32>,
    /// A candidate policy (the TOML text of a policy file), compared with the one in force;
    /// its relative paths resolve next to the policy file in force.
    #[serde(default)]
    pub policy: Option<String>,
    /// Include every simulated message in the answer.
    #[serde(default)]
    pub messages: bool,
}

/// `POST /v1/simulate`.
pub async fn post(
    State(st): State<AppState>,
    body: Bytes,
) -> Result<Json<SimulationReport>, ApiError> {
    let Some(env) = st.simulation.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "simulation is not set up in this process",
        ));
    };
    let b: SimulateBody = parse_json(&body)?;
    let candidate = match &b.policy {
        Some(text) => {
            let (text, env2) = (text.clone(), env.clone());
            let parsed = tokio::task::spawn_blocking(move || parse_candidate(&text, &env2))
                .await
                .map_err(|e| internal(&e.to_string()))?;
            Some(std::sync::Arc::new(parsed.map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_policy",
                    format!("the candidate policy is not valid: {e}"),
                )
            })?))
        }
        None => None,
    };
    let req = SimulateRequest {
        days: b.days.unwrap_or(30),
        candidate,
        with_messages: b.messages,
    };
    let report = simulate(&st.store, st.policy.current(), req, &env, st.clock.now())
        .await
        .map_err(|e| match e {
            SimulateError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
            }
            SimulateError::Busy => ApiError::new(StatusCode::CONFLICT, "busy", e.to_string()),
            other => {
                tracing::error!(error = %other, "simulation failed");
                internal(&other.to_string())
            }
        })?;
    Ok(Json(report))
}

fn internal(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "simulation_failed",
        format!("the simulation failed: {message}"),
    )
}
