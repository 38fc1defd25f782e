//! The daemon's metrics: one Prometheus recorder per running daemon, every metric named and
//! described here, rendered as Prometheus text by `GET /metrics`.
//!
//! # One recorder per daemon, no global recorder
//!
//! Each [`Telemetry`] owns its own [`PrometheusRecorder`] (the `metrics` crate's recorder
//! trait, implemented by `metrics-exporter-prometheus`); no process-global recorder is ever
//! installed. Every update goes through [`metrics::with_local_recorder`] on that recorder, on
//! the thread doing the update, so the usual `counter!`/`histogram!` macros work unchanged and
//! two daemons in one process (tests start many in one test binary) never see each other's
//! counts. The parts that record (dispatcher, payments inbox, HTTP handlers) each hold a clone
//! of the daemon's [`Telemetry`].
//!
//! Counters and histograms are recorded when things happen; gauges (backlog, queue depths,
//! store size and health, rate-limit buckets) are read from the store and the limiters at
//! scrape time, so they are exact when the page is rendered.

mod http;
pub mod reasons;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub use http::track_requests;
pub use reasons::RejectReason;

use crate::domain::AttemptOutcome;

/// Reminder outcomes by outcome, channel, step and segment.
pub const REMINDERS: &str = "plazo_reminders_total";
/// Seconds between a reminder's planned time and when it was sent.
pub const LATENESS: &str = "plazo_dispatch_lateness_seconds";
/// Reminders due now and not yet claimed.
pub const DUE_NOW: &str = "plazo_reminders_due";
/// Reminders in the due index (scheduled, any time).
pub const PENDING: &str = "plazo_reminders_pending";
/// Payment events by provider and state.
pub const PAYMENT_EVENTS: &str = "plazo_payment_events_total";
/// Inbound webhooks refused, by endpoint and reason.
pub const WEBHOOK_REJECTIONS: &str = "plazo_webhook_rejections_total";
/// Payment events queued in the inbox.
pub const INBOX_DEPTH: &str = "plazo_payment_inbox_depth";
/// Outbound events waiting for delivery.
pub const EVENTS_OUT_DEPTH: &str = "plazo_events_out_pending";
/// HTTP requests by route, method and status.
pub const HTTP_REQUESTS: &str = "plazo_http_requests_total";
/// HTTP request durations by route and method.
pub const HTTP_DURATION: &str = "plazo_http_request_duration_seconds";
/// Size of the store on disk.
pub const STORE_SIZE: &str = "plazo_store_size_bytes";
/// 1 while the store can write.
pub const STORE_WRITABLE: &str = "plazo_store_writable";
/// Gauge: the fencing epoch under which this node leads its PostgreSQL database (absent on
/// sled). It rises by one at every takeover, so `changes()` over it counts takeovers.
pub const LEADER_EPOCH: &str = "plazo_store_leader_epoch";
/// Counter: batches the PostgreSQL database rolled back for a conflict with another
/// transaction (serialization failure, deadlock) that were run again (PostgreSQL only).
pub const CONFLICT_RETRIES: &str = "plazo_store_conflict_retries_total";
/// Counter: reminders this node claimed for sending (each is then sent, retried, or failed;
/// see [`REMINDERS`] for the outcomes). On PostgreSQL only the leader claims.
pub const CLAIMED: &str = "plazo_reminders_claimed_total";
/// Counter: reminders found claimed but not recorded when this process started (after a crash,
/// or, on PostgreSQL, the claims of a leader that died), settled by `dispatch.on_unknown`.
pub const IN_DOUBT: &str = "plazo_reminders_in_doubt_total";
/// Messages this node claimed from the shared send queue (`[store] delivery = "shared"`).
pub const SENDS_CLAIMED: &str = "plazo_sends_claimed_total";
/// Queued messages this node took over after another node's lease on them ran out.
pub const SEND_LEASES_EXPIRED: &str = "plazo_send_leases_expired_total";
/// Send tasks that panicked (process-wide).
pub const SEND_TASK_PANICS: &str = "plazo_send_task_panics_total";

/// Buckets of the lateness histogram: a second to two days.
const LATENESS_BUCKETS: &[f64] = &[
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
    86400.0,
    172800.0,
];
/// Buckets of the HTTP duration histogram: a millisecond to ten seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Pending counts below this are read at every scrape (exact); from it on, at most once per
/// [`PENDING_REFRESH`]: counting the due index is a full scan (about 1 s per million entries).
pub const PENDING_EXACT_BELOW: u64 = 100_000;
/// How long a large pending count is reused.
pub const PENDING_REFRESH: Duration = Duration::from_secs(60);

/// Most due entries counted for [`DUE_NOW`] and outbound events for [`EVENTS_OUT_DEPTH`] at one
/// scrape: the gauge saturates there rather than make a scrape read an unbounded backlog.
pub const SCRAPE_COUNT_CAP: usize = 10_000;

/// The metrics of one daemon. Cheap to clone (shared).
#[derive(Clone)]
pub struct Telemetry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    /// Served on an address of its own (`[metrics] listen`), not on the API's port.
    apart: bool,
    /// The last large pending count and when it was read (see [`Telemetry::pending`]).
    pending_cache: Arc<Mutex<Option<(Instant, u64)>>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// Scrape-time readings of the store for the gauges.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreGauges {
    /// Reminders due now, not yet claimed (at most [`SCRAPE_COUNT_CAP`]).
    pub due_now: u64,
    /// Reminders in the due index.
    pub pending: u64,
    /// Payment events queued in the inbox.
    pub inbox: u64,
    /// Outbound events pending delivery (at most [`SCRAPE_COUNT_CAP`]).
    pub events_out: u64,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Whether the store can write.
    pub writable: bool,
    /// The leader epoch of a PostgreSQL store (see [`LEADER_EPOCH`]); `None` on sled.
    pub leader_epoch: Option<i64>,
    /// Batches a PostgreSQL store ran again after a conflict (see [`CONFLICT_RETRIES`]); `None`
    /// on sled.
    pub conflict_retries: Option<u64>,
}

impl Telemetry {
    /// A fresh recorder with every metric described and the histogram buckets set.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(Matcher::Full(LATENESS.into()), LATENESS_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
            })
            // Only fails on empty bucket lists, which these are not.
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let t = Telemetry {
            recorder: Arc::new(recorder),
            handle,
            apart: false,
            pending_cache: Arc::default(),
        };
        t.with(describe_all);
        t
    }

    /// The same metrics, served on an address of their own (`[metrics] listen`): the API's
    /// router then has no `/metrics` route.
    pub fn served_apart(mut self) -> Self {
        self.apart = true;
        self
    }

    /// True when `/metrics` is served on its own address rather than the API's.
    pub fn is_served_apart(&self) -> bool {
        self.apart
    }

    /// The pending count for [`PENDING`]: `read` (a full scan of the due index) runs at every
    /// scrape while the count stays below [`PENDING_EXACT_BELOW`]; above, its last value is
    /// reused for [`PENDING_REFRESH`]. `read` answering `None` (a store error) gives 0.
    pub fn pending(&self, read: impl FnOnce() -> Option<u64>) -> u64 {
        let mut cache = self
            .pending_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((at, n)) = *cache {
            if n >= PENDING_EXACT_BELOW && crate::clock::elapsed_since(at) < PENDING_REFRESH {
                return n;
            }
        }
        let n = read();
        *cache = n.map(|n| (crate::clock::monotonic_now(), n));
        n.unwrap_or(0)
    }

    /// Runs `f` with this daemon's recorder as the recorder of the `metrics` macros.
    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self.recorder.as_ref(), f)
    }

    /// Counts one outcome line the dispatcher recorded for a reminder, and, for a message
    /// sent, how late it went out (`planned_at` to `now`).
    pub fn reminder_outcome(
        &self,
        outcome: AttemptOutcome,
        channel: Option<&str>,
        step: Option<&str>,
        segment: &str,
        late_secs: Option<f64>,
    ) {
        self.with(|| {
            counter!(
                REMINDERS,
                "outcome" => outcome_label(outcome),
                "channel" => channel.unwrap_or("none").to_owned(),
                "step" => step.unwrap_or("none").to_owned(),
                "segment" => segment.to_owned(),
            )
            .increment(1);
            if let (AttemptOutcome::Sent, Some(late)) = (outcome, late_secs) {
                metrics::histogram!(LATENESS).record(late.max(0.0));
            }
        });
    }

    /// Counts a payment event of `provider` reaching `state`.
    pub fn payment_event(&self, provider: &str, state: &str) {
        self.with(|| {
            counter!(PAYMENT_EVENTS, "provider" => provider.to_owned(), "state" => state.to_owned())
                .increment(1);
        });
    }

    /// Counts `n` reminders claimed for sending by this node.
    pub fn claimed(&self, n: u64) {
        self.with(|| counter!(CLAIMED).increment(n));
    }

    /// Counts `n` messages this node claimed from the shared send queue.
    pub fn sends_claimed(&self, n: u64) {
        self.with(|| counter!(SENDS_CLAIMED).increment(n));
    }

    /// Counts one queued message taken over after another node's lease on it ran out.
    pub fn send_lease_expired(&self) {
        self.with(|| counter!(SEND_LEASES_EXPIRED).increment(1));
    }

    /// Counts `n` reminders found in flight at start and settled by `dispatch.on_unknown`.
    pub fn in_doubt_settled(&self, n: u64) {
        self.with(|| counter!(IN_DOUBT).increment(n));
    }

    /// Counts an inbound webhook refused at `endpoint` for `reason`.
    pub fn webhook_rejected(&self, endpoint: &'static str, reason: &'static str) {
        self.with(|| {
            counter!(WEBHOOK_REJECTIONS, "endpoint" => endpoint, "reason" => reason).increment(1);
        });
    }

    /// Counts one HTTP request answered on `route` (a route template) with `status`.
    pub fn http_request(&self, route: &str, method: &str, status: u16, secs: f64) {
        self.with(|| {
            counter!(
                HTTP_REQUESTS,
                "route" => route.to_owned(),
                "method" => method.to_owned(),
                "status" => status.to_string(),
            )
            .increment(1);
            metrics::histogram!(HTTP_DURATION, "route" => route.to_owned(), "method" => method.to_owned())
                .record(secs);
        });
    }

    /// The counters alone, without the store's gauges: the page of a standby, which has no
    /// store open yet (`[metrics] listen` while it waits to lead).
    pub fn render_counters(&self) -> String {
        self.with(|| {
            counter!(SEND_TASK_PANICS).absolute(crate::dispatch::timeline::send_task_panics());
        });
        self.handle.render()
    }

    /// Renders every metric as Prometheus text, after setting the scrape-time gauges from
    /// `store` and the process-wide panic count.
    pub fn render(&self, store: &StoreGauges) -> String {
        self.with(|| {
            gauge!(DUE_NOW).set(store.due_now as f64);
            gauge!(PENDING).set(store.pending as f64);
            gauge!(INBOX_DEPTH).set(store.inbox as f64);
            gauge!(EVENTS_OUT_DEPTH).set(store.events_out as f64);
            gauge!(STORE_SIZE).set(store.size_bytes as f64);
            gauge!(STORE_WRITABLE).set(if store.writable { 1.0 } else { 0.0 });
            if let Some(epoch) = store.leader_epoch {
                gauge!(LEADER_EPOCH).set(epoch as f64);
            }
            if let Some(n) = store.conflict_retries {
                counter!(CONFLICT_RETRIES).absolute(n);
            }
            counter!(SEND_TASK_PANICS).absolute(crate::dispatch::timeline::send_task_panics());
        });
        self.handle.render()
    }
}

/// The label value of an outcome: its name in the API (`snake_case`).
fn outcome_label(o: AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Sent => "sent",
        AttemptOutcome::RetryScheduled => "retry_scheduled",
        AttemptOutcome::Failed => "failed",
        AttemptOutcome::Skipped => "skipped",
        AttemptOutcome::Cancelled => "cancelled",
        AttemptOutcome::Deferred => "deferred",
        AttemptOutcome::Unknown => "unknown",
        AttemptOutcome::Event => "event",
        AttemptOutcome::Receipt => "receipt",
        AttemptOutcome::Note => "note",
    }
}

/// Names, units and descriptions of every metric (the `# HELP` lines).
fn describe_all() {
    describe_counter!(
        REMINDERS,
        Unit::Count,
        "Outcome lines the dispatcher recorded for reminders (sent, failed, retry_scheduled, skipped, cancelled, deferred), by channel, step and segment."
    );
    describe_histogram!(
        LATENESS,
        Unit::Seconds,
        "Seconds between a reminder's planned time and when it was sent."
    );
    describe_gauge!(
        DUE_NOW,
        Unit::Count,
        "Reminders due now and not yet claimed (read at scrape time; saturates at 10000)."
    );
    describe_gauge!(
        PENDING,
        Unit::Count,
        "Reminders scheduled in the due index, any time (read at scrape time; from 100000 on, at most once a minute)."
    );
    describe_counter!(
        PAYMENT_EVENTS,
        Unit::Count,
        "Payment events by provider and the state they reached (received, duplicate, ignored, applied, recorded, unmatched, flagged, deferred, failed)."
    );
    describe_counter!(
        WEBHOOK_REJECTIONS,
        Unit::Count,
        "Inbound webhooks refused, by endpoint and reason (missing_signature, bad_signature, stale_timestamp, malformed, not_configured)."
    );
    describe_gauge!(
        INBOX_DEPTH,
        Unit::Count,
        "Payment events queued in the inbox, waiting to be applied or retried (read at scrape time)."
    );
    describe_gauge!(
        EVENTS_OUT_DEPTH,
        Unit::Count,
        "Outbound events waiting for delivery (read at scrape time; saturates at 10000)."
    );
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Seconds to answer an HTTP request, by route template and method."
    );
    describe_gauge!(
        STORE_SIZE,
        Unit::Bytes,
        "Size of the store on disk (read at scrape time)."
    );
    describe_gauge!(
        STORE_WRITABLE,
        Unit::Count,
        "1 while the store can write; 0 after a write failure, until it recovers."
    );
    describe_counter!(
        CLAIMED,
        Unit::Count,
        "Reminders this node claimed for sending (on PostgreSQL, the leader)."
    );
    describe_counter!(
        IN_DOUBT,
        Unit::Count,
        "Reminders found claimed but not recorded at start (a crash, a dead leader), or queued messages whose node's lease ran out, settled by dispatch.on_unknown."
    );
    describe_counter!(
        SENDS_CLAIMED,
        Unit::Count,
        "Messages this node claimed from the shared send queue ([store] delivery = \"shared\", PostgreSQL)."
    );
    describe_counter!(
        SEND_LEASES_EXPIRED,
        Unit::Count,
        "Queued messages this node took over after the lease of the node that claimed them ran out (that node died or hung)."
    );
    describe_gauge!(
        LEADER_EPOCH,
        Unit::Count,
        "Fencing epoch under which this node leads its PostgreSQL database; +1 at every takeover."
    );
    describe_counter!(
        CONFLICT_RETRIES,
        Unit::Count,
        "Batches PostgreSQL rolled back for a conflict (serialization failure, deadlock) and this node ran again."
    );
    describe_counter!(
        SEND_TASK_PANICS,
        Unit::Count,
        "Send tasks that panicked (caught; each reminder recorded as failed), in this process."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pending_counts_are_read_every_time_large_ones_reused() {
        let t = Telemetry::new();
        assert_eq!(t.pending(|| Some(5)), 5);
        assert_eq!(t.pending(|| Some(7)), 7, "a small count is exact");
        assert_eq!(t.pending(|| None), 0, "a failed read shows 0");
        assert_eq!(t.pending(|| Some(PENDING_EXACT_BELOW)), PENDING_EXACT_BELOW);
        assert_eq!(
            t.pending(|| panic!("a large count is not re-read within the minute")),
            PENDING_EXACT_BELOW
        );
    }

    #[test]
    fn each_telemetry_counts_apart_and_renders_one_family_header() {
        let (a, b) = (Telemetry::new(), Telemetry::new());
        a.webhook_rejected("stripe", reasons::BAD_SIGNATURE);
        a.webhook_rejected("stripe", reasons::BAD_SIGNATURE);
        let text = a.render(&StoreGauges::default());
        assert!(
            text.contains(
                "plazo_webhook_rejections_total{endpoint=\"stripe\",reason=\"bad_signature\"} 2"
            ),
            "{text}"
        );
        assert_eq!(
            text.matches("# TYPE plazo_webhook_rejections_total counter")
                .count(),
            1
        );
        let other = b.render(&StoreGauges::default());
        assert!(
            !other.contains("plazo_webhook_rejections_total{"),
            "{other}"
        );
    }

    #[test]
    fn the_leader_epoch_is_shown_only_for_a_store_that_has_a_leader() {
        let sled = Telemetry::new().render(&StoreGauges::default());
        assert!(!sled.contains("plazo_store_leader_epoch "), "{sled}");
        let pg = Telemetry::new().render(&StoreGauges {
            leader_epoch: Some(3),
            conflict_retries: Some(2),
            ..StoreGauges::default()
        });
        assert!(pg.contains("\nplazo_store_leader_epoch 3\n"), "{pg}");
        assert!(
            pg.contains("\nplazo_store_conflict_retries_total 2\n"),
            "{pg}"
        );
        assert!(
            !sled.contains("plazo_store_conflict_retries_total "),
            "{sled}"
        );
    }
}
