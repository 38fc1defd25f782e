//! The HTTP API (axum): thin handlers that parse, call [`crate::service`], and answer JSON.
//!
//! - `/v1/*` needs `Authorization: Bearer <token>`;
//! - `/webhooks/payments` is authenticated by its Standard Webhooks signature, the Twilio and
//!   WhatsApp callbacks by theirs;
//! - `/u/{token}` (one-click unsubscribe) by its unforgeable token;
//! - `/healthz`, `/readyz` and `/metrics` are open (no personal data); `/metrics` moves to an
//!   address of its own when `[metrics] listen` is set ([`metrics_router`]).

mod arrangements;
mod auth;
mod clients;
mod contacts;
mod error;
mod escalation;
mod events;
mod import;
mod invoices;
mod limits;
mod metrics;
mod notes;
mod patch;
mod payment_events;
mod payment_reply;
mod portfolio;
mod providers;
mod reports;
mod serve;
mod simulate;
mod tasks;
mod unsubscribe;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use tokio::sync::Notify;

pub use auth::{TokenError, load_or_create_token_file};
pub use error::{ApiError, json_errors, parse_json};
pub use limits::{BodyRules, StreamRules};
pub use serve::serve;

use crate::clock::SharedClock;
use crate::config::HttpConfig;
use crate::inbound::standard_webhooks::WebhookSecret;
use crate::service::PolicyHandle;
use crate::store::Store;

/// What every handler can reach: one shared [`AppParts`], so that the clones axum makes for
/// every request (one per middleware layer and one per handler) cost one reference count, not
/// one per field.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Shares `parts` with every handler.
    pub fn new(parts: AppParts) -> Self {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl From<AppParts> for AppState {
    fn from(parts: AppParts) -> Self {
        AppState::new(parts)
    }
}

/// The parts of [`AppState`].
pub struct AppParts {
    /// The store.
    pub store: Store,
    /// The policy in force.
    pub policy: PolicyHandle,
    /// Source of "now".
    pub clock: SharedClock,
    /// Wakes the dispatcher when something new is scheduled.
    pub wake: Arc<crate::dispatch::Wake>,
    /// Bearer token for `/v1/*`.
    pub api_token: Arc<str>,
    /// Secret for `/webhooks/payments`; the endpoint answers 503 without one.
    pub payment_secret: Option<Arc<WebhookSecret>>,
    /// Accepted webhook clock skew.
    pub webhook_tolerance: std::time::Duration,
    /// Set once startup finished; `/readyz` answers 503 before.
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// Provider callback settings (Twilio, WhatsApp) and unsubscribe links.
    pub providers: Arc<ProviderHooks>,
    /// What policy simulations need (`POST /v1/simulate`); it answers 503 without.
    pub simulation: Option<Arc<crate::simulate::SimulationEnv>>,
}

/// What the provider callback endpoints need. Every secret is optional: an endpoint whose
/// secret is missing answers 503 and changes nothing.
#[derive(Default)]
pub struct ProviderHooks {
    /// Twilio Auth Token (verifies `X-Twilio-Signature`).
    pub twilio_auth_token: Option<String>,
    /// The daemon's public base URL without a trailing slash: Twilio signs the URL it called.
    pub public_base: String,
    /// Meta App Secret (verifies `X-Hub-Signature-256`).
    pub whatsapp_app_secret: Option<String>,
    /// The `hub.verify_token` of the WhatsApp webhook subscription.
    pub whatsapp_verify_token: Option<String>,
    /// One-click unsubscribe links.
    pub unsubscribe: Option<Arc<crate::unsubscribe::UnsubscribeLinks>>,
    /// The channels' rate-limit buckets (for `/metrics`).
    pub limiters: crate::channels::ratelimit::Registry,
    /// Stripe endpoint signing secret (`whsec_...`).
    pub stripe_secret: Option<String>,
    /// Oldest accepted Stripe signature timestamp.
    pub stripe_tolerance: std::time::Duration,
    /// Metadata key holding our invoice id on Stripe objects.
    pub stripe_metadata_key: String,
    /// Mercado Pago secret signature.
    pub mercadopago_secret: Option<String>,
    /// Wakes the payments inbox processor.
    pub inbox_wake: Arc<Notify>,
    /// The daemon's metrics (request counts, webhook rejections, payment events; `/metrics`).
    pub telemetry: crate::telemetry::Telemetry,
}

impl std::fmt::Debug for ProviderHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderHooks")
            .field("twilio", &self.twilio_auth_token.is_some())
            .field("public_base", &self.public_base)
            .field("whatsapp", &self.whatsapp_app_secret.is_some())
            .finish_non_exhaustive()
    }
}

/// Runs a blocking store operation off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "request task failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request could not be completed",
        )
    })?
}

/// Runs a blocking change, then waits for the group commit, so that a success answer means
/// the change is on disk: an acknowledged request is never lost to a crash.
pub(crate) async fn write_durably<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let value = blocking(f).await?;
    durable(store).await?;
    Ok(value)
}

/// Waits for the group commit of everything written so far: a change made through
/// [`Store::write`] is acknowledged only after this.
pub(crate) async fn durable(store: &Store) -> Result<(), ApiError> {
    store.durable().await.map_err(|e| {
        tracing::error!(error = %e, "cannot make a change durable");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage",
            "the change could not be made durable; retry the request",
        )
    })
}

/// The whole API, with `cfg`'s body limits: `/v1` bodies up to `api_body_limit_bytes`, the
/// provider callbacks and unsubscribe pages up to `webhook_body_limit_bytes`, every body within
/// `body_timeout_ms` (the bulk import: up to `import_body_limit_bytes`, cut after
/// `body_timeout_ms` without a byte); every error answer is the JSON envelope (see [`json_errors`]).
pub fn router(state: AppState, cfg: &HttpConfig) -> Router {
    let api_body = BodyRules {
        limit: cfg.api_body_limit_bytes,
        timeout: cfg.body_timeout(),
    };
    let hook_body = BodyRules {
        limit: cfg.webhook_body_limit_bytes,
        timeout: cfg.body_timeout(),
    };
    let v1 = Router::new()
        .route(
            "/clients/{id}",
            put(clients::put_client)
                .get(clients::get_client)
                .patch(patch::patch_client_handler),
        )
        .route("/clients", get(portfolio::clients))
        .route("/invoices", get(portfolio::invoices))
        .route("/reminders", get(portfolio::reminders))
        .route("/simulate", post(simulate::post))
        .route(
            "/invoices/{id}",
            put(invoices::put_invoice)
                .get(invoices::get_invoice)
                .patch(patch::patch_invoice_handler),
        )
        .route("/invoices/{id}/payments", post(invoices::post_payment))
        .route("/invoices/{id}/promises", post(arrangements::post_promise))
        .route(
            "/invoices/{id}/promises/{n}",
            delete(arrangements::delete_promise),
        )
        .route("/invoices/{id}/plans", post(arrangements::post_plan))
        .route(
            "/invoices/{id}/plans/{n}",
            delete(arrangements::delete_plan),
        )
        .route("/invoices/{id}/pause", post(invoices::pause))
        .route("/invoices/{id}/resume", post(invoices::resume))
        .route("/invoices/{id}/hand-off", post(escalation::hand_off))
        .route("/invoices/{id}/write-off", post(escalation::write_off))
        .route("/invoices/{id}/void", post(escalation::void))
        .route("/invoices/{id}/recall", post(escalation::recall))
        .route("/events", get(events::list))
        .route("/events/{id}", get(events::get))
        .route("/events/{id}/retry", post(events::retry))
        .route("/tasks", get(tasks::list))
        .route("/tasks/{id}", get(tasks::get))
        .route("/tasks/{id}/claim", post(tasks::claim))
        .route("/tasks/{id}/outcome", post(tasks::outcome))
        .route("/clients/{id}/timeline", get(contacts::client_timeline))
        .route("/clients/{id}/notes", post(notes::client_note))
        .route("/invoices/{id}/notes", post(notes::invoice_note))
        .route("/contacts/{address}", get(contacts::get_contact))
        .route("/contacts/{address}/opt-out", post(contacts::opt_out))
        .route("/contacts/{address}/opt-in", post(contacts::opt_in))
        .route("/payment-events", get(payment_events::list))
        .route("/payment-events/{key}/retry", post(payment_events::retry))
        .route("/reports/kpis", get(reports::kpis))
        .route("/reports/effectiveness", get(reports::effectiveness))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    // The bulk import: its own body rules (large, read as it arrives, cut when idle).
    let import = Router::new()
        .route("/import/clients", post(import::import_clients))
        .route("/import/invoices", post(import::import_invoices))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let import_body = StreamRules {
        limit: cfg.import_body_limit_bytes,
        idle: cfg.body_timeout(),
    };
    let hooks = Router::new()
        .route("/webhooks/payments", post(webhooks::payments))
        .route("/webhooks/stripe", post(payment_events::stripe_webhook))
        .route(
            "/webhooks/mercadopago",
            post(payment_events::mercadopago_webhook),
        )
        .route("/webhooks/twilio/status", post(providers::twilio_status))
        .route("/webhooks/twilio/inbound", post(providers::twilio_inbound))
        .route(
            "/webhooks/whatsapp",
            get(providers::whatsapp_verify).post(providers::whatsapp_events),
        )
        .route(
            "/u/{token}",
            get(unsubscribe::show).post(unsubscribe::one_click),
        );
    let mut open = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    if !state.providers.telemetry.is_served_apart() {
        open = open.route("/metrics", get(metrics::metrics));
    }
    Router::new()
        .nest("/v1", api_body.apply(v1).merge(import_body.apply(import)))
        .merge(hook_body.apply(hooks))
        .merge(api_body.apply(open))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_route",
                "no such endpoint; see the README for the API",
            )
        })
        .layer(axum::middleware::map_response(json_errors))
        // Outermost: counts every answer with its final status, under the matched route.
        .layer(axum::middleware::from_fn_with_state(
            state.providers.telemetry.clone(),
            crate::telemetry::track_requests,
        ))
        .with_state(state)
}

/// `GET /metrics` alone, for the address of its own (`[metrics] listen`): no other route,
/// no authentication; anything else is the JSON 404.
pub fn metrics_router(state: AppState) -> Router {
    metrics_only(Router::new().route("/metrics", get(metrics::metrics))).with_state(state)
}

/// `router` (its one route, `GET /metrics`) with the JSON 404 for anything else.
fn metrics_only<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_route",
                "only GET /metrics is served on this address",
            )
        })
        .layer(axum::middleware::map_response(json_errors))
}

/// The router of `[metrics] listen` on a standby, which has no store open yet: `GET /metrics`
/// with the node's counters (the messages it claimed and took over from the shared queue).
pub fn standby_metrics_router(telemetry: crate::telemetry::Telemetry) -> Router {
    metrics_only(Router::new().route(
        "/metrics",
        get(move || {
            let telemetry = telemetry.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    telemetry.render_counters(),
                )
            }
        }),
    ))
}

/// What to do about a store that cannot write, for `/readyz`: a node that lost leadership
/// stops by itself; a PostgreSQL store needs its database back; a sled one its disk.
fn unwritable_advice(backend: &str, reason: &str) -> &'static str {
    if reason.contains("no longer the leader") {
        "another node took over the database: this node exits (status 75) and restarts as a standby; send traffic to the node whose /readyz answers 200"
    } else if backend == "postgres" {
        "check that PostgreSQL is reachable and accepts writes: plazo reconnects and resumes by itself"
    } else {
        "free disk space or fix the data directory: plazo resumes by itself once writes succeed"
    }
}

/// Longest wait for the readiness probe write.
const READY_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /readyz`: 200 `ready` once started and while the store can write (a probe write made
/// durable); otherwise 503 with the JSON error saying why (`starting`, `store_unwritable`).
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    if !state.ready.load(std::sync::atomic::Ordering::Acquire) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the daemon is starting; retry in a moment",
        ));
    }
    let backend = state.store.backend_name();
    let unwritable = |reason: String| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unwritable",
            format!(
                "the store cannot write ({reason}); {}",
                unwritable_advice(backend, &reason)
            ),
        )
    };
    state.store.health().map_err(unwritable)?;
    match tokio::time::timeout(READY_PROBE_TIMEOUT, state.store.probe()).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(e)) => Err(unwritable(e.to_string())),
        Err(_) => Err(unwritable("a probe write did not finish within 2 s".into())),
    }
}

#[cfg(test)]
mod readyz_tests {
    use super::unwritable_advice;

    #[test]
    fn the_advice_fits_the_cause() {
        let lost = "PostgreSQL: plazo: this node is no longer the leader (its epoch 1; another node took over with epoch 2)";
        assert!(unwritable_advice("postgres", lost).contains("another node took over"));
        assert!(
            unwritable_advice("postgres", "connection refused").contains("PostgreSQL is reachable")
        );
        assert!(unwritable_advice("sled", "No space left on device").contains("free disk space"));
    }
}
