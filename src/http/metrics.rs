//! `GET /metrics`: Prometheus text exposition of the daemon's metrics (see
//! [`crate::telemetry`] and the README's Metrics section), then, per channel rate-limit bucket,
//! slots handed out, messages that waited, total wait, and the current backlog (how long a
//! message queued now would wait).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::domain::EventState;
use crate::store::Store;
use crate::telemetry::{SCRAPE_COUNT_CAP, StoreGauges, Telemetry};

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Reads the scrape-time gauges from the store. A read that fails leaves its gauge at 0 and
/// is logged (the page still answers: `plazo_store_writable` says when the store is unwell).
fn store_gauges(store: &Store, telemetry: &Telemetry, now: jiff::Timestamp) -> StoreGauges {
    let warn = |what: &str, e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "metrics: cannot read {what}");
        0
    };
    // Everything firing at `now` or earlier: the due index is ordered by time, so this reads
    // only the backlog (bounded by the cap).
    let until = now
        .checked_add(jiff::SignedDuration::from_nanos(1))
        .unwrap_or(now);
    let due_now = store
        .due_entries(jiff::Timestamp::MIN, until, None, SCRAPE_COUNT_CAP)
        .map_or_else(|e| warn("the due index", &e), |v| v.len() as u64);
    StoreGauges {
        due_now,
        pending: telemetry.pending(|| {
            store
                .pending_count()
                .map_err(|e| warn("the pending count", &e))
                .ok()
        }),
        inbox: store
            .inbox_queue()
            .map_or_else(|e| warn("the payments inbox", &e), |v| v.len() as u64),
        events_out: store
            .events(Some(EventState::Pending), SCRAPE_COUNT_CAP)
            .map_or_else(|e| warn("the outbound events", &e), |v| v.len() as u64),
        size_bytes: store
            .size_on_disk()
            .unwrap_or_else(|e| warn("the store size", &e)),
        writable: store.health().is_ok(),
        leader_epoch: store.leader_epoch(),
        conflict_retries: store.conflict_retries(),
    }
}

/// The metrics page: the daemon's recorder ([`crate::telemetry`]) with its scrape-time
/// gauges read from the store, then the rate-limit buckets.
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let now = st.clock.now();
    let (store, telemetry) = (st.store.clone(), st.providers.telemetry.clone());
    let gauges = tokio::task::spawn_blocking(move || store_gauges(&store, &telemetry, now))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "metrics: reading the store failed");
            StoreGauges::default()
        });
    let mut out = st.providers.telemetry.render(&gauges);
    rate_limits(&st, now, &mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

/// Appends the rate-limit families (per bucket; seconds as fractions, which the recorder's
/// integer counters cannot hold), one `# HELP`/`# TYPE` each.
fn rate_limits(st: &AppState, now: jiff::Timestamp, out: &mut String) {
    let stats: Vec<_> = st
        .providers
        .limiters
        .all()
        .iter()
        .map(|l| l.stats(now))
        .collect();
    let families: [(&str, &str, &str); 4] = [
        (
            "plazo_rate_limit_reserved_total",
            "counter",
            "Send slots handed out by the bucket.",
        ),
        (
            "plazo_rate_limit_delayed_total",
            "counter",
            "Messages that had to wait for their slot.",
        ),
        (
            "plazo_rate_limit_wait_seconds_total",
            "counter",
            "Total time messages waited for their slot.",
        ),
        (
            "plazo_rate_limit_backlog_seconds",
            "gauge",
            "How long a message queued now would wait.",
        ),
    ];
    for (i, (name, kind, help)) in families.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in &stats {
            let value = match i {
                0 => s.reserved as f64,
                1 => s.delayed as f64,
                2 => s.waited_nanos as f64 / 1e9,
                _ => s.backlog.as_secs_f64(),
            };
            let _ = writeln!(out, "{name}{{bucket=\"{}\"}} {value}", label(&s.key));
        }
    }
}
