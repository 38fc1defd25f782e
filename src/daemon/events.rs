//! Delivery of events out: a task that POSTs each due event from the store's outbox to its
//! endpoint (`[events]`, or a partner's), signed with Standard Webhooks headers, and records
//! the outcome.
//!
//! - 2xx: `delivered`. Any other answer, a timeout or a connection error: tried again after
//!   `backoff_base_secs` doubled each attempt (at most `backoff_max_secs`, or longer when the
//!   endpoint asks with `Retry-After`), until `max_attempts`: then `failed`, until
//!   `POST /v1/events/{id}/retry`.
//! - At least once: an event stays due until a command records its outcome, so one being
//!   sent when the process dies is sent again after restart, with the same `webhook-id`
//!   (its event id) and the same body; only `webhook-timestamp` and the signature are new.
//! - Every request has a timeout (`timeout_ms`, for connecting and for the whole request);
//!   redirects are not followed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use jiff::{SignedDuration, Timestamp};
use reqwest::header::CONTENT_TYPE;
use tokio::sync::watch;

use super::DaemonError;
use crate::clock::SharedClock;
use crate::config::{EventsConfig, SecretSource, read_secret};
use crate::domain::{Destination, EventState, OutboundEvent};
use crate::inbound::standard_webhooks::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret, sign,
};
use crate::store::{EventRouting, Store, TxError};

/// Most events read per pass (the rest, if any, in the next pass right after).
const PASS_LIMIT: usize = 256;
/// Most requests in flight at once.
const CONCURRENCY: usize = 8;
/// Longest the worker sleeps without looking at the outbox: a bound on how late an event is
/// noticed if a wake-up is missed (or the clock is moved by a test).
const MAX_IDLE: Duration = Duration::from_secs(1);
/// How often delivered events past their retention are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One endpoint: where, and the key that signs for it.
pub struct Endpoint {
    url: reqwest::Url,
    secret: WebhookSecret,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// Delivers what the outbox holds.
pub struct EventsWorker {
    store: Store,
    clock: SharedClock,
    client: reqwest::Client,
    events: Endpoint,
    partners: BTreeMap<String, Endpoint>,
    max_attempts: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    retention: SignedDuration,
}

impl std::fmt::Debug for EventsWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsWorker")
            .field("events", &self.events)
            .field("partners", &self.partners)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// Reads and parses one endpoint's secret.
fn endpoint(
    what: &str,
    url: &str,
    secret: &SecretSource,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Endpoint, DaemonError> {
    let bad = |m: String| DaemonError::Events(format!("{what}: {m}"));
    let url = reqwest::Url::parse(url.trim()).map_err(|e| bad(format!("url: {e}")))?;
    let raw = match read_secret(secret, env) {
        Ok(Some(s)) => s,
        Ok(None) => return Err(bad("secret: no source named".into())),
        Err(e) => return Err(bad(format!("secret: {e}"))),
    };
    let secret = WebhookSecret::parse(&raw).map_err(|e| bad(format!("secret: {e}")))?;
    Ok(Endpoint { url, secret })
}

impl EventsWorker {
    /// Builds the worker from `[events]`: reads each secret (through `env`, or its file) and
    /// parses it; a missing or malformed one is an error (nothing could be signed).
    pub fn from_config(
        cfg: &EventsConfig,
        store: Store,
        clock: SharedClock,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<EventsWorker, DaemonError> {
        let events = endpoint("[events]", &cfg.url, &cfg.secret, env)?;
        let mut partners = BTreeMap::new();
        for (name, p) in &cfg.partners {
            let what = format!("[events.partners.{name}]");
            partners.insert(name.clone(), endpoint(&what, &p.url, &p.secret, env)?);
        }
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let client = crate::channels::http_util::client_builder(timeout)
            .build()
            .map_err(|e| DaemonError::Events(format!("cannot build the HTTP client: {e}")))?;
        Ok(EventsWorker {
            store,
            clock,
            client,
            events,
            partners,
            max_attempts: cfg.max_attempts,
            backoff_base: Duration::from_secs(cfg.backoff_base_secs),
            backoff_max: Duration::from_secs(cfg.backoff_max_secs),
            retention: SignedDuration::from_hours(24 * i64::from(cfg.retention_days)),
        })
    }

    /// What the store's outbox records for this configuration.
    pub fn routing(cfg: &EventsConfig) -> EventRouting {
        EventRouting {
            types: cfg.types.as_ref().map(|t| t.iter().cloned().collect()),
            partners: cfg.partners.keys().cloned().collect(),
        }
    }

    /// The delay before attempt `attempts + 1`, after `attempts` failed ones: the base doubled
    /// each attempt, at most the maximum.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doubled = self.backoff_base.saturating_mul(
            1u32.checked_shl(attempts.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        doubled.min(self.backoff_max)
    }

    /// Delivers every event due now, once each; returns how many were tried. One pass of
    /// [`EventsWorker::run`], and the seam tests drive with a manual clock.
    pub async fn deliver_due_once(&self) -> usize {
        let now = self.clock.now();
        let store = self.store.clone();
        let due = match tokio::task::spawn_blocking(move || store.events_due(now, PASS_LIMIT)).await
        {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the events outbox");
                return 0;
            }
            Err(e) => {
                tracing::error!(error = %e, "events outbox task failed");
                return 0;
            }
        };
        let n = due.len();
        if n == 0 {
            return 0;
        }
        let outcomes: Vec<(OutboundEvent, Attempt)> = futures::stream::iter(due)
            .map(|e| async move {
                let outcome = self.attempt(&e).await;
                (e, outcome)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let now = self.clock.now();
        let changed: Vec<OutboundEvent> = outcomes
            .into_iter()
            .map(|(e, outcome)| self.after(e, outcome, now))
            .collect();
        // One command for the pass. Each event is changed only if it is still as it was read
        // (nothing else changes a pending event, but a retry through the API could race).
        let res = self
            .store
            .write(move |tx| {
                for e in &changed {
                    let Some(stored) = tx.event(&e.id)? else {
                        continue;
                    };
                    if stored.state == EventState::Pending
                        && stored.attempts.saturating_add(1) == e.attempts
                    {
                        tx.put_event(e)?;
                    }
                }
                Ok::<_, TxError<std::convert::Infallible>>(())
            })
            .await;
        if let Err(e) = res {
            // Left as they were: they are delivered again (at least once).
            tracing::error!(error = %e, "cannot record the outcome of event deliveries; they will be sent again");
        }
        n
    }

    /// One delivery attempt of `e`.
    async fn attempt(&self, e: &OutboundEvent) -> Attempt {
        let endpoint = match &e.destination {
            Destination::Events => &self.events,
            Destination::Partner(p) => match self.partners.get(p) {
                Some(ep) => ep,
                None => {
                    return Attempt::Unroutable(format!(
                        "partner {p} has no endpoint: add [events.partners.{p}] to plazo.toml, restart, then retry the event"
                    ));
                }
            },
        };
        let now = self.clock.now();
        let id = e.id.to_string();
        let ts = now.as_second();
        let signature = sign(&endpoint.secret, &id, ts, e.payload.as_bytes());
        let sent = self
            .client
            .post(endpoint.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(HEADER_ID, &id)
            .header(HEADER_TIMESTAMP, ts.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(e.payload.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => Attempt::Delivered,
            Ok(resp) => Attempt::Failed {
                error: format!("endpoint answered {}", resp.status()),
                retry_after: crate::channels::http_util::retry_after(resp.headers(), now),
            },
            Err(err) => Attempt::Failed {
                error: format!(
                    "{}: {}",
                    crate::channels::http_util::transport_failure(&err),
                    err.without_url()
                ),
                retry_after: None,
            },
        }
    }

    /// `e` after `outcome` at `now`.
    fn after(&self, mut e: OutboundEvent, outcome: Attempt, now: Timestamp) -> OutboundEvent {
        e.attempts = e.attempts.saturating_add(1);
        e.updated_at = now;
        match outcome {
            Attempt::Delivered => {
                e.state = EventState::Delivered;
                e.last_error = None;
                tracing::info!(event = %e.id, kind = %e.kind, destination = %e.destination, attempts = e.attempts, "event delivered");
            }
            Attempt::Unroutable(error) => {
                e.state = EventState::Failed;
                tracing::error!(event = %e.id, kind = %e.kind, destination = %e.destination, %error, "event cannot be delivered");
                e.last_error = Some(error);
            }
            Attempt::Failed { error, retry_after } if e.attempts < self.max_attempts => {
                let wait = self
                    .backoff(e.attempts)
                    .max(retry_after.unwrap_or_default().min(self.backoff_max));
                e.next_at = now + SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX);
                tracing::warn!(event = %e.id, kind = %e.kind, destination = %e.destination, attempts = e.attempts, next_at = %e.next_at, %error, "event delivery failed; retrying");
                e.last_error = Some(error);
            }
            Attempt::Failed { error, .. } => {
                e.state = EventState::Failed;
                tracing::error!(event = %e.id, kind = %e.kind, destination = %e.destination, attempts = e.attempts, %error, "event delivery failed for good; POST /v1/events/{{id}}/retry once the endpoint is fixed");
                e.last_error = Some(error);
            }
        }
        e
    }

    /// Forgets delivered events past their retention.
    async fn prune(&self) {
        let store = self.store.clone();
        let before = self.clock.now() - self.retention;
        match tokio::task::spawn_blocking(move || store.prune_events(before)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(pruned = n, "forgot delivered events past their retention"),
            Ok(Err(e)) => tracing::error!(error = %e, "cannot prune delivered events"),
            Err(e) => tracing::error!(error = %e, "event pruning task failed"),
        }
    }

    /// Runs until `shutdown` turns true: a pass whenever an event is written or falls due
    /// (at most [`MAX_IDLE`] apart), and a pruning of delivered events every hour.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            if last_prune.is_none_or(|at| crate::clock::monotonic_now() - at >= PRUNE_EVERY) {
                self.prune().await;
                last_prune = Some(crate::clock::monotonic_now());
            }
            let tried = self.deliver_due_once().await;
            let wait = if tried >= PASS_LIMIT {
                Duration::ZERO
            } else {
                let now = self.clock.now();
                match self.store.events_next_due() {
                    Ok(Some(at)) => Duration::try_from(at.duration_since(now))
                        .unwrap_or(Duration::ZERO)
                        .min(MAX_IDLE),
                    Ok(None) => MAX_IDLE,
                    Err(_) => MAX_IDLE,
                }
            };
            // A short pause keeps an event that is due again at once from spinning the loop.
            let wait = wait.max(Duration::from_millis(20));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.store.events_written().notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// What one attempt gave.
enum Attempt {
    /// The endpoint answered 2xx.
    Delivered,
    /// Any other answer, a timeout, a connection error: tried again until `max_attempts`.
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
    /// No endpoint for its destination: failed at once.
    Unroutable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_maximum() {
        let store = Store::open(
            &tempfile::tempdir().unwrap().path().join("db"),
            Default::default(),
        )
        .unwrap();
        let cfg: EventsConfig = toml::from_str(
            "url = \"http://127.0.0.1:1/\"\nsecret = { env = \"S\" }\nbackoff_base_secs = 10\nbackoff_max_secs = 300\n",
        )
        .unwrap();
        let env = |_: &str| Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let w = EventsWorker::from_config(&cfg, store, clock, &env).unwrap();
        let secs: Vec<u64> = (1..=8).map(|a| w.backoff(a).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(w.backoff(u32::MAX), Duration::from_secs(300));
        let missing = |_: &str| None;
        let e = EventsWorker::from_config(&cfg, w.store.clone(), w.clock.clone(), &missing)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[events]: secret: environment variable S is not set"),
            "{e}"
        );
        let bad = |_: &str| Some("not-a-secret".to_owned());
        let e = EventsWorker::from_config(&cfg, w.store.clone(), w.clock.clone(), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("whsec_") && !e.contains("not-a-secret"), "{e}");
    }
}
