//! `GET /v1/reports/kpis` and `GET /v1/reports/effectiveness`: the portfolio's KPIs and which
//! reminder works (see [`crate::service::reports`] for the methods).

use axum::Json;
use axum::extract::{Query, State};

use super::{ApiError, AppState, blocking};
use crate::service::reports::{
    EffectivenessReport, KpiReport, ReportQuery, effectiveness_report, kpi_report,
};

/// `GET /v1/reports/kpis?as_of=&currency=&segment=&from=&to=`.
pub async fn kpis(
    State(st): State<AppState>,
    Query(q): Query<ReportQuery>,
) -> Result<Json<KpiReport>, ApiError> {
    blocking(move || {
        let policy = st.policy.current();
        Ok(Json(kpi_report(
            &st.store,
            &policy.policy,
            &q,
            st.clock.now(),
        )?))
    })
    .await
}

/// `GET /v1/reports/effectiveness?from=&to=&currency=&segment=`.
pub async fn effectiveness(
    State(st): State<AppState>,
    Query(q): Query<ReportQuery>,
) -> Result<Json<EffectivenessReport>, ApiError> {
    blocking(move || {
        let policy = st.policy.current();
        Ok(Json(effectiveness_report(
            &st.store,
            &policy.policy,
            &q,
            st.clock.now(),
        )?))
    })
    .await
}
