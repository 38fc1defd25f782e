//! `GET /metrics`: Prometheus text exposition of what an operator watches for channels: per
//! rate-limit bucket, slots handed out, messages that waited, total wait, and the current
//! backlog (how long a message queued now would wait); send tasks that panicked; and whether
//! the store can write.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics page.
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let now = st.clock.now();
    let mut out = String::new();
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
    let _ = writeln!(
        out,
        "# HELP plazo_send_task_panics_total Send tasks that panicked (caught; each reminder recorded as failed).\n# TYPE plazo_send_task_panics_total counter\nplazo_send_task_panics_total {}",
        crate::dispatch::send_task_panics()
    );
    let writable = u8::from(st.store.health().is_ok());
    let _ = writeln!(
        out,
        "# HELP plazo_store_writable 1 while the store can write; 0 after a write failure, until it recovers.\n# TYPE plazo_store_writable gauge\nplazo_store_writable {writable}"
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
