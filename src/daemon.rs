//! Assembles and runs the service: store, policy, channels, dispatcher, housekeeping and the
//! HTTP API, with a graceful shutdown that drains in-flight sends and flushes the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::OptionFuture;
use tokio::sync::{Notify, watch};

use crate::channels::{BuildContext, ChannelBuildError};
use crate::clock::SharedClock;
use crate::config::{ConfigError, DaemonConfig, Delivery, SecretError, StoreBackend, read_secret};
use crate::dispatch::shared::{SendWorker, SharedSends, WorkerOptions};
use crate::dispatch::{ChannelRoutes, Dispatcher, recover_in_flight_knowing};
use crate::http::{
    AppParts, AppState, ProviderHooks, TokenError, load_or_create_token_file, metrics_router,
    router, serve,
};
use crate::inbound::standard_webhooks::WebhookSecret;
use crate::policy::{LoadedPolicy, PolicyError, load_checked_policy};
use crate::service::PolicyHandle;
use crate::store::{Store, StoreError};
use crate::unsubscribe::UnsubscribeLinks;

pub mod events;
mod housekeeping;
mod listen;
pub mod open_store;
pub mod payment_inbox;

/// Longest a queued message, or its result, waits when its notification is lost (the shared
/// send queue: see [`crate::dispatch::shared`]).
const SHARED_POLL: Duration = Duration::from_millis(100);

/// Where the shared send queue lives, and this node's name in it.
struct SharedDeliverySetup {
    url: String,
    node: String,
}

/// Serves the node's counters on `at` until told to stop (then the address is free for the
/// leader's metrics server).
async fn standby_metrics(
    at: std::net::SocketAddr,
    config: &DaemonConfig,
    telemetry: &crate::telemetry::Telemetry,
) -> Result<
    (
        watch::Sender<bool>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ),
    DaemonError,
> {
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .map_err(|source| DaemonError::Io {
            context: format!("binding the metrics address {at} ([metrics] listen)"),
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(at);
    let (stop, stopped) = watch::channel(false);
    let app = crate::http::standby_metrics_router(telemetry.clone());
    let http_config = config.http.clone();
    let task = tokio::spawn(async move { serve(listener, app, &http_config, stopped).await });
    tracing::info!(addr = %bound, "metrics served while this node waits to lead");
    Ok((stop, task))
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The daemon config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The shared send queue (`[store] delivery = "shared"`) could not be started.
    #[error(
        "{0}; check [store] url, or set [store] delivery = \"leader\" to send from the leader alone"
    )]
    SendQueue(String),
    /// The policy is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A secret could not be read.
    #[error("{what}: {source}")]
    Secret {
        /// Which secret.
        what: &'static str,
        /// Why.
        source: SecretError,
    },
    /// The payment webhook secret is malformed.
    #[error("payment webhook secret: {0}")]
    WebhookSecret(String),
    /// A channel (or the Mercado Pago client) could not be built.
    #[error("{at}: {message}")]
    Channel {
        /// Channel name.
        name: String,
        /// `file:line:column` of the setting at fault in the daemon config.
        at: String,
        /// Why.
        message: String,
    },
    /// The API token file failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Listening or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why.
        source: std::io::Error,
    },
    /// A housekeeping job could not be set up.
    #[error("housekeeping: {0}")]
    Housekeeping(String),
    /// `[events]` cannot be used (a secret missing or malformed, an unknown partner).
    #[error("events: {0}")]
    Events(String),
}

/// A running daemon.
pub struct Running {
    /// Address the API listens on (useful with port 0).
    pub addr: std::net::SocketAddr,
    /// Address `GET /metrics` is served on when `[metrics] listen` is set (else the API's).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The policy handle (for reloads).
    pub policy: PolicyHandle,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    metrics_server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    dispatcher: tokio::task::JoinHandle<usize>,
    inbox: tokio::task::JoinHandle<()>,
    /// The events delivery task, when `[events]` is configured.
    events: Option<tokio::task::JoinHandle<()>>,
    housekeeping: housekeeping::Housekeeping,
    backfill: housekeeping::Backfill,
    store: Store,
    /// The daemon config a reload checks the policy against ([`load_policy_for`]).
    reload_with: DaemonConfig,
    wake: Arc<crate::dispatch::Wake>,
    /// The leader's side of the shared send queue, if messages go through it.
    shared: Option<Arc<SharedSends>>,
    /// This node's sender of queued messages, if messages go through the shared queue.
    worker: Option<Arc<SendWorker>>,
}

/// Builds every part and starts serving. Returns once the API listens and the dispatcher runs.
pub async fn start(config: DaemonConfig, clock: SharedClock) -> Result<Running, DaemonError> {
    let env = |k: &str| std::env::var(k).ok();
    let data_dir = config.data_dir.clone();
    let policy_path = config.policy_path();
    // Exactly the validation of `plazo check` and of a reload, so start, check and SIGHUP agree;
    // nothing is written when it fails.
    let loaded = load_policy_for(&config)?;
    let reload_with = config.clone();
    // A new data directory is private (0700); an existing one others can enter is warned about.
    let warning = crate::config::prepare_data_dir(&data_dir).map_err(|source| DaemonError::Io {
        context: format!("creating data dir {}", data_dir.display()),
        source,
    })?;
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    tracing::info!(policy = %policy_path.display(), segments = loaded.policy.segments.len(), cadences = loaded.policy.cadences.len(), "policy loaded");
    let policy = PolicyHandle::new(loaded);

    // This daemon's own recorder (no global one): see `crate::telemetry`.
    let telemetry = crate::telemetry::Telemetry::new();
    let telemetry = if config.metrics.listen.is_some() {
        telemetry.served_apart()
    } else {
        telemetry
    };

    let ctx = BuildContext {
        data_dir: data_dir.clone(),
        env: Arc::new(|k: &str| std::env::var(k).ok()),
        public_url: config.configured_public_url(),
        limiters: Default::default(),
        clock: clock.clone(),
    };
    let mut routes = ChannelRoutes::default();
    for (kind, name) in &config.routes {
        let Some(cfg) = config.channels.get(name) else {
            continue;
        };
        let channel = cfg.build(name, &ctx).map_err(|e| DaemonError::Channel {
            name: name.clone(),
            at: channel_error_at(&config, &e),
            message: e.to_string(),
        })?;
        routes.insert(kind.clone(), channel);
    }
    tracing::info!(routes = ?config.routes, "channels ready");

    // Every node sends from the shared queue, standbys included: start before waiting to lead.
    let shared_delivery = match (config.store.backend, config.store.delivery) {
        (StoreBackend::Postgres, Delivery::Shared) => Some(SharedDeliverySetup {
            url: open_store::database_url(&config, &env)?,
            node: config.store.node_name(),
        }),
        _ => None,
    };
    let worker = match &shared_delivery {
        Some(setup) => {
            let opts = WorkerOptions {
                url: setup.url.clone(),
                node: setup.node.clone(),
                lease: Duration::from_millis(config.store.send_lease_ms),
                poll: SHARED_POLL,
                concurrency: config.dispatch.concurrency,
                on_unknown: config.dispatch.on_unknown,
                drain: Duration::from_secs(config.dispatch.drain_timeout_secs),
            };
            let (routes, runtime, telemetry) = (
                routes.clone(),
                tokio::runtime::Handle::current(),
                telemetry.clone(),
            );
            let worker = tokio::task::spawn_blocking(move || {
                SendWorker::start(opts, routes, runtime, telemetry)
            })
            .await
            .map_err(|e| DaemonError::Housekeeping(e.to_string()))?
            .map_err(|e| DaemonError::SendQueue(e.to_string()))?;
            Some(Arc::new(worker))
        }
        None => None,
    };

    // A sending standby shows its counters on `[metrics] listen` while it waits to lead.
    let standby_metrics = match (&worker, config.metrics.listen) {
        (Some(_), Some(at)) => Some(standby_metrics(at, &config, &telemetry).await?),
        _ => None,
    };
    // Weak: a standby stopped while it waits drops its worker, which stops it (see `main`).
    let before_exit = worker.as_ref().map(|w| {
        let w = Arc::downgrade(w);
        Arc::new(move || {
            if let Some(w) = w.upgrade() {
                w.stop();
            }
        }) as Arc<dyn Fn() + Send + Sync>
    });
    let store = open_store::open_store(&config, &env, before_exit).await?;
    if let Some((stop, task)) = standby_metrics {
        let _ = stop.send(true);
        if let Ok(Err(e)) = task.await {
            tracing::error!(error = %e, "the standby's metrics server stopped with an error");
        }
    }
    tracing::info!(backend = store.backend_name(), "store open");

    // Events out: on before anything can change an invoice (crash recovery, the API).
    let events_worker = match &config.events {
        Some(cfg) => {
            // `load_policy_for` checked `[events.partners]` against the policy.
            let worker =
                events::EventsWorker::from_config(cfg, store.clone(), clock.clone(), &env)?;
            store.enable_events(events::EventsWorker::routing(cfg));
            Some(Arc::new(worker))
        }
        None => None,
    };

    let api_token: Arc<str> = match read_secret(&config.api.token, &env) {
        Ok(Some(t)) => t.into(),
        Ok(None) | Err(SecretError::EnvMissing(_)) => {
            let path = data_dir.join("api-token");
            let (tok, created) = load_or_create_token_file(&path)?;
            if created {
                tracing::warn!(path = %path.display(), "no API token configured; generated one and wrote it to this file (mode 0600)");
            } else {
                tracing::info!(path = %path.display(), "API token read from file");
            }
            tok.into()
        }
        Err(source) => {
            return Err(DaemonError::Secret {
                what: "api token",
                source,
            });
        }
    };
    let payment_secret = match read_secret(&config.payment_webhooks.secret, &env) {
        Ok(Some(s)) => Some(Arc::new(
            WebhookSecret::parse(&s).map_err(|e| DaemonError::WebhookSecret(e.to_string()))?,
        )),
        Ok(None) | Err(SecretError::EnvMissing(_)) => {
            tracing::warn!(
                "payment webhook secret not set; POST /webhooks/payments answers 503 until it is"
            );
            None
        }
        Err(source) => {
            return Err(DaemonError::Secret {
                what: "payment webhook secret",
                source,
            });
        }
    };

    let optional_secret = |src: &crate::config::SecretSource,
                           what: &'static str|
     -> Result<Option<String>, DaemonError> {
        match read_secret(src, &env) {
            Ok(v) => Ok(v),
            Err(SecretError::EnvMissing(_)) => Ok(None),
            Err(source) => Err(DaemonError::Secret { what, source }),
        }
    };
    let twilio_auth_token =
        optional_secret(&config.twilio_webhooks.auth_token, "twilio auth token")?;
    let whatsapp_app_secret =
        optional_secret(&config.whatsapp_webhooks.app_secret, "whatsapp app secret")?;
    let whatsapp_verify_token = optional_secret(
        &config.whatsapp_webhooks.verify_token,
        "whatsapp verify token",
    )?;
    let unsubscribe = match config.configured_public_url() {
        Some(base) => {
            let path = data_dir.join("unsubscribe-key");
            let (key, created) = load_or_create_token_file(&path)?;
            if created {
                tracing::info!(path = %path.display(), "generated the key of unsubscribe links");
            }
            Some(Arc::new(UnsubscribeLinks::new(
                base.as_str().trim_end_matches('/'),
                key.as_bytes(),
            )))
        }
        None => None,
    };
    let providers = Arc::new(ProviderHooks {
        twilio_auth_token,
        public_base: config
            .public_base_url()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default(),
        whatsapp_app_secret,
        whatsapp_verify_token,
        unsubscribe: unsubscribe.clone(),
        limiters: ctx.limiters.clone(),
        stripe_secret: optional_secret(&config.stripe.webhook_secret, "stripe webhook secret")?,
        stripe_tolerance: Duration::from_secs(config.stripe.tolerance_secs),
        stripe_metadata_key: config.stripe.metadata_key.clone(),
        mercadopago_secret: optional_secret(
            &config.mercadopago.webhook_secret,
            "mercado pago webhook secret",
        )?,
        inbox_wake: Arc::new(Notify::new()),
        telemetry: telemetry.clone(),
    });
    let mut fetchers: std::collections::BTreeMap<String, Arc<dyn crate::payments::PaymentFetcher>> =
        std::collections::BTreeMap::new();
    if let Some(token) = optional_secret(
        &config.mercadopago.access_token,
        "mercado pago access token",
    )? {
        let client = crate::payments::mercadopago::MercadoPagoClient::with_base_url(
            &config.mercadopago.base_url,
            &token,
            Duration::from_secs(config.mercadopago.timeout_secs),
        )
        .map(|c| c.with_clock(clock.clone()))
        .map_err(|e| DaemonError::Channel {
            name: "mercadopago".into(),
            at: config.location_of(&["mercadopago", "base_url"]),
            message: format!("mercadopago: {e}"),
        })?;
        fetchers.insert("mercadopago".into(), Arc::new(client));
    }

    // A new leader on the shared queue: what the old leader queued and no node took was never
    // sent, so it is not in doubt. The same connection then carries this leader's queue.
    let (leader_queue, never_sent) = match (&shared_delivery, store.leader_epoch()) {
        (Some(setup), Some(epoch)) => {
            let (url, node) = (setup.url.clone(), setup.node.clone());
            let (queue, never_sent) = tokio::task::spawn_blocking(move || {
                let mut queue = SharedSends::connect(&url, &node)?;
                let never_sent = SharedSends::never_sent(&mut queue, epoch)?;
                Ok::<_, crate::store::SendQueueError>((queue, never_sent))
            })
            .await
            .map_err(|e| DaemonError::Housekeeping(e.to_string()))?
            .map_err(|e| DaemonError::SendQueue(e.to_string()))?;
            (Some((queue, epoch)), never_sent)
        }
        _ => (None, std::collections::HashSet::new()),
    };
    let recovered = {
        let store = store.clone();
        let p = policy.current();
        let on_unknown = config.dispatch.on_unknown;
        let now = clock.now();
        tokio::task::spawn_blocking(move || {
            recover_in_flight_knowing(&store, &p.policy, on_unknown, now, &never_sent)
        })
        .await
        .map_err(|e| DaemonError::Housekeeping(e.to_string()))??
    };
    telemetry.in_doubt_settled(recovered as u64);
    if recovered > 0 {
        tracing::warn!(recovered, on_unknown = ?config.dispatch.on_unknown, "settled reminders left in flight by an unclean stop");
    }

    let shared = match leader_queue {
        Some((queue, epoch)) => {
            let poll = SHARED_POLL;
            let shared =
                tokio::task::spawn_blocking(move || SharedSends::start(queue, epoch, poll))
                    .await
                    .map_err(|e| DaemonError::Housekeeping(e.to_string()))?
                    .map_err(|e| DaemonError::SendQueue(e.to_string()))?;
            tracing::info!(
                epoch,
                "messages go out through the shared send queue ([store] delivery = \"shared\")"
            );
            Some(shared)
        }
        None => None,
    };
    let wake = Arc::new(crate::dispatch::Wake::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let dispatcher = Arc::new(Dispatcher {
        store: store.clone(),
        policy: policy.clone(),
        routes,
        clock: clock.clone(),
        config: config.dispatch.clone(),
        wake: wake.clone(),
        unsubscribe,
        turns: Default::default(),
        statements: Default::default(),
        telemetry: telemetry.clone(),
        shared: shared.clone(),
    });
    let dispatcher = tokio::spawn(dispatcher.run(shutdown_rx.clone()));
    let inbox = Arc::new(crate::daemon::payment_inbox::PaymentInbox {
        store: store.clone(),
        policy: policy.clone(),
        clock: clock.clone(),
        wake: providers.inbox_wake.clone(),
        dispatch_wake: wake.clone(),
        fetchers,
        telemetry: telemetry.clone(),
    });
    let inbox = tokio::spawn(inbox.run(shutdown_rx.clone()));
    let events = events_worker.map(|w| tokio::spawn(w.run(shutdown_rx.clone())));

    let housekeeping =
        housekeeping::start(&config, store.clone(), clock.clone(), policy.clone()).await?;

    let scratch_root = data_dir.join("simulations");
    crate::simulate::clear_scratch(&scratch_root);
    let simulation = crate::simulate::SimulationEnv {
        scratch_root,
        routed: config
            .routes
            .iter()
            .filter(|(_, name)| config.channels.contains_key(*name))
            .map(|(kind, _)| kind.clone())
            .collect(),
        dispatch: config.dispatch.clone(),
        resegment: Some(config.housekeeping.resegment.clone()),
        settings: config.simulation.clone(),
        policy_path: policy_path.clone(),
        busy: tokio::sync::Mutex::new(()),
    };
    let ready = Arc::new(AtomicBool::new(false));
    let state = AppState::new(AppParts {
        store: store.clone(),
        policy: policy.clone(),
        clock: clock.clone(),
        wake: wake.clone(),
        api_token,
        payment_secret,
        webhook_tolerance: Duration::from_secs(config.payment_webhooks.tolerance_secs),
        ready: ready.clone(),
        providers,
        simulation: Some(Arc::new(simulation)),
    });
    let listener = listen::listener(config.listen).await?;
    let addr = listener.local_addr().map_err(|source| DaemonError::Io {
        context: "reading the bound address".into(),
        source,
    })?;
    // `[metrics] listen`: /metrics on an address of its own, with the API's server limits.
    let (metrics_addr, metrics_server) = match config.metrics.listen {
        Some(at) => {
            let listener =
                tokio::net::TcpListener::bind(at)
                    .await
                    .map_err(|source| DaemonError::Io {
                        context: format!("binding the metrics address {at} ([metrics] listen)"),
                        source,
                    })?;
            let bound = listener.local_addr().map_err(|source| DaemonError::Io {
                context: "reading the bound metrics address".into(),
                source,
            })?;
            let app = metrics_router(state.clone());
            let (http_config, rx) = (config.http.clone(), shutdown_rx.clone());
            let task = tokio::spawn(async move { serve(listener, app, &http_config, rx).await });
            tracing::info!(addr = %bound, "metrics served on their own address");
            (Some(bound), Some(task))
        }
        None => (None, None),
    };
    let app = router(state, &config.http);
    let http_config = config.http.clone();
    let server = tokio::spawn(async move { serve(listener, app, &http_config, shutdown_rx).await });
    // Clients stored before plazo kept facts get theirs, once per data directory, in the
    // background: readiness does not wait for it.
    let backfill = housekeeping::Backfill::start(store.clone(), &policy, &clock);
    ready.store(true, Ordering::Release);
    // No count of the due index here: `pending_count` is a full scan (1M entries: ~1.1 s and
    // ~105 MB of extra RSS, measured in BENCHMARKS.md), and until `start` returns the binary has
    // no signal handlers. The earliest due time is one O(log n) lookup.
    let next_due = store.next_due().ok().flatten();
    tracing::info!(%addr, next_due = ?next_due, "plazo ready");
    Ok(Running {
        addr,
        metrics_addr,
        policy,
        shutdown: shutdown_tx,
        server,
        metrics_server,
        dispatcher,
        inbox,
        events,
        housekeeping,
        backfill,
        store,
        reload_with,
        wake,
        shared,
        worker,
    })
}

/// `file:line:column` in the daemon config of the key a channel build error is about (its
/// `base_url`, `url`, `from`, `timeout`, secret field...); of the `[channels.NAME]` table when
/// that key is not written (a missing field).
pub fn channel_error_at(config: &DaemonConfig, e: &ChannelBuildError) -> String {
    let mut path = vec!["channels", e.channel()];
    path.extend(e.field().split('.'));
    config.location_of(&path)
}

/// The policy `config` names, validated exactly as start, `plazo check` and a reload (SIGHUP)
/// validate it: [`load_checked_policy`] (the file, then every template rendered with sample
/// data), then every partner the config's `[events.partners.NAME]` names must be one of the
/// policy's `[partners]`.
pub fn load_policy_for(config: &DaemonConfig) -> Result<LoadedPolicy, PolicyError> {
    let loaded = load_checked_policy(&config.policy_path())?;
    if let Some(name) = config
        .events
        .as_ref()
        .and_then(|ev| ev.unknown_partner(|n| loaded.policy.partners.contains_key(n)))
    {
        return Err(PolicyError::UnknownPartner {
            at: config.location_of(&["events", "partners", name]),
            name: name.to_string(),
        });
    }
    Ok(loaded)
}

/// Re-reads the policy `config` names and puts it in force only if it passes exactly the
/// validation of start and `plazo check` ([`load_policy_for`]). Otherwise the policy in force
/// is left untouched and the error says which file, line and column is wrong and how to fix it.
pub fn reload_policy_into(handle: &PolicyHandle, config: &DaemonConfig) -> Result<(), PolicyError> {
    let loaded = load_policy_for(config)?;
    handle.replace(loaded);
    Ok(())
}

impl Running {
    /// Makes the dispatcher look at the due index now rather than when its timer ends (after
    /// a test moves its manual clock forward).
    pub fn wake_dispatcher(&self) {
        self.wake.notify_one();
    }

    /// The store (tests reach its [`crate::store::FaultInjector`] through it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Re-reads the policy file ([`reload_policy_into`]); an invalid policy is reported and the
    /// old one stays in force.
    pub fn reload_policy(&self) -> Result<(), PolicyError> {
        reload_policy_into(&self.policy, &self.reload_with)
    }

    /// Stops accepting requests, drains in-flight sends (bounded), flushes the store.
    pub async fn shutdown(self) -> Result<(), DaemonError> {
        let _ = self.shutdown.send(true);
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "HTTP server stopped with an error"),
            Err(e) => tracing::error!(error = %e, "HTTP server task failed"),
        }
        match OptionFuture::from(self.metrics_server).await {
            Some(Ok(Err(e))) => tracing::error!(error = %e, "metrics server stopped with an error"),
            Some(Err(e)) => tracing::error!(error = %e, "metrics server task failed"),
            _ => {}
        }
        if let Err(e) = self.inbox.await {
            tracing::error!(error = %e, "payments inbox task failed");
        }
        if let Some(Err(e)) = OptionFuture::from(self.events).await {
            tracing::error!(error = %e, "events delivery task failed");
        }
        match self.dispatcher.await {
            Ok(0) => {}
            Ok(left) => tracing::warn!(left, "stopped with sends still in flight"),
            Err(e) => tracing::error!(error = %e, "dispatcher task failed"),
        }
        // The dispatcher has drained: nothing waits for queued messages any more. This node's
        // worker then finishes (bounded) the sends it holds, for whichever leader queued them.
        let (shared, worker) = (self.shared, self.worker);
        let stopped = tokio::task::spawn_blocking(move || {
            if let Some(s) = shared {
                s.stop();
            }
            if let Some(w) = worker {
                w.stop();
            }
        })
        .await;
        if let Err(e) = stopped {
            tracing::error!(error = %e, "stopping the shared send queue failed");
        }
        self.housekeeping.stop().await;
        self.backfill.stop().await;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(|e| DaemonError::Housekeeping(e.to_string()))??;
        tracing::info!("plazo stopped cleanly");
        Ok(())
    }
}
