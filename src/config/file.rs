use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, SecretSource, line_col, locate};
use crate::channels::ChannelConfig;

/// The daemon configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Address the HTTP API listens on. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Directory holding the sled database, the generated API token and the outbox.
    /// Relative paths are resolved against the directory the daemon is started in.
    /// Default `data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Policy file; relative paths are resolved against this file's directory.
    /// Default `policy.toml`.
    #[serde(default = "default_policy")]
    pub policy: PathBuf,
    /// Public base URL under which providers and debtors reach this daemon, e.g.
    /// `https://cobros.example.co` (behind a proxy, the proxy's URL). Needed for one-click
    /// unsubscribe links and Twilio's `StatusCallback`: without it neither is sent. Also the
    /// URL `X-Twilio-Signature` is checked against (Twilio signs the URL it called); when
    /// unset, `http://{listen}` is assumed for that check.
    #[serde(default)]
    pub public_url: Option<String>,
    /// sled page cache size in MiB; bounds memory. Default 64.
    #[serde(default = "default_cache_mib")]
    pub cache_mib: u64,
    /// `[store]`: which database holds the data (embedded sled by default, or PostgreSQL
    /// shared by several nodes).
    #[serde(default)]
    pub store: StoreConfig,
    /// API authentication.
    #[serde(default)]
    pub api: ApiConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Dispatcher tuning.
    #[serde(default)]
    pub dispatch: DispatchConfig,
    /// Standard Webhooks endpoint for payment events (`POST /webhooks/payments`).
    #[serde(default)]
    pub payment_webhooks: PaymentWebhookConfig,
    /// Twilio callbacks (`/webhooks/twilio/status`, `/webhooks/twilio/inbound`).
    #[serde(default)]
    pub twilio_webhooks: TwilioWebhooksConfig,
    /// WhatsApp Cloud API callbacks (`GET` and `POST /webhooks/whatsapp`).
    #[serde(default)]
    pub whatsapp_webhooks: WhatsAppWebhooksConfig,
    /// Stripe webhooks (`POST /webhooks/stripe`).
    #[serde(default)]
    pub stripe: StripeConfig,
    /// Mercado Pago notifications (`POST /webhooks/mercadopago`) and payment fetches.
    #[serde(default)]
    pub mercadopago: MercadoPagoConfig,
    /// Cron schedules of housekeeping jobs.
    #[serde(default)]
    pub housekeeping: HousekeepingConfig,
    /// HTTP server limits: timeouts, connection limit, body sizes.
    #[serde(default)]
    pub http: super::HttpConfig,
    /// `[simulation]`: unit prices per channel for the cost estimate of `plazo simulate`, and
    /// the longest span a simulation may cover.
    #[serde(default)]
    pub simulation: super::SimulationConfig,
    /// Where `GET /metrics` (Prometheus text) is served.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Events out to the ERP/CRM and partners (`[events]`); none recorded or sent without it.
    #[serde(default)]
    pub events: Option<super::EventsConfig>,
    /// Which channel instance serves each channel kind named in the policy
    /// (`email`, `sms`, `whatsapp`, `webhook`). A kind left out cannot be used.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// Channel instances by name; `type` selects the adapter (`outbox`, `smtp`, `twilio`, `whatsapp`, `webhook`).
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Directory this file was read from (not a setting).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Path this file was read from (not a setting).
    #[serde(skip)]
    pub source: PathBuf,
    /// The text of this file (not a setting): lets later checks name `file:line:column`.
    #[serde(skip)]
    pub source_text: String,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_policy() -> PathBuf {
    PathBuf::from("policy.toml")
}
fn default_cache_mib() -> u64 {
    64
}

/// Which storage backend holds the data.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// An embedded sled database in `{data_dir}/db`: one node, nothing else to run.
    #[default]
    Sled,
    /// A PostgreSQL database, which several plazo nodes may share: one leads (writes and
    /// dispatches), the others wait as standbys and take over when it stops.
    Postgres,
}

/// `[store]`: where the data lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `"sled"` (default) or `"postgres"`.
    #[serde(default)]
    pub backend: StoreBackend,
    /// The PostgreSQL connection URL (`postgresql://user:password@host:5432/plazo`), a secret
    /// read from the environment or a file, never written here. Default: environment variable
    /// `PLAZO_DATABASE_URL`. Used only with `backend = "postgres"`.
    ///
    /// TLS as libpq: `?sslmode=` `disable`, `prefer` (default: TLS when the server offers it,
    /// certificate not checked), `require` (TLS or fail; not checked unless `sslrootcert` is
    /// given), `verify-ca` (the certificate must chain to `sslrootcert`, else the system's
    /// roots) or `verify-full` (and name the host: use this across any network you do not
    /// trust), and `sslrootcert=/path/ca.pem` (a PEM bundle of trusted CAs). Connections time
    /// out after 10 s unless the URL sets `connect_timeout` (seconds); keepalives and, on
    /// Linux, `tcp_user_timeout` (milliseconds, 30,000 by default) drop a dead peer.
    #[serde(default = "default_database_url")]
    pub url: SecretSource,
    /// This node's name, recorded as the leader in the database, on the claims of the messages
    /// it sends and in the logs: give every node its own (two nodes of one name would renew
    /// each other's claims). Default: the host name and process id.
    #[serde(default)]
    pub node: Option<String>,
    /// How often, in milliseconds, a standby tries to take over and the leader checks that it
    /// still holds its lock (100–60,000). A standby takes over within about this long after
    /// the leader's database session ends; a leader that stops checking (paused, hung) loses
    /// its lock after ten times this long, at least 3 s (PostgreSQL 14 or later). Default 500.
    #[serde(default = "default_standby_poll_ms")]
    pub standby_poll_ms: u64,
    /// Which nodes deliver the messages the leader plans (PostgreSQL only): `"shared"`
    /// (default) puts each rendered message in the database's `sends` queue, and every node,
    /// standbys included, claims messages from it (`FOR UPDATE SKIP LOCKED`, with a lease) and
    /// sends them through its own channels; `"leader"` sends from the leader alone. With
    /// `"shared"` every node must route the same channels, with the same credentials.
    #[serde(default)]
    pub delivery: Delivery,
    /// How long, in milliseconds, a node's claim on a queued message lasts (1,000–600,000).
    /// A node renews its claims every third of this while it sends; the claims of a node that
    /// died expire after this long, and another node settles them by `[dispatch] on_unknown`
    /// (`skip`: logged `unknown`, never sent again; `resend`: sent again). Default 10,000.
    #[serde(default = "default_send_lease_ms")]
    pub send_lease_ms: u64,
}

/// Which nodes deliver messages on a PostgreSQL store (`[store] delivery`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Every node claims messages from the database's queue and sends them.
    #[default]
    Shared,
    /// The leader sends every message itself; standbys only wait.
    Leader,
}

impl StoreConfig {
    /// This node's name: `node`, or the host name and process id.
    pub fn node_name(&self) -> String {
        self.node
            .clone()
            .unwrap_or_else(crate::store::default_node_name)
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::default(),
            url: default_database_url(),
            node: None,
            standby_poll_ms: default_standby_poll_ms(),
            delivery: Delivery::default(),
            send_lease_ms: default_send_lease_ms(),
        }
    }
}

fn default_database_url() -> SecretSource {
    SecretSource {
        env: Some("PLAZO_DATABASE_URL".into()),
        file: None,
    }
}
fn default_standby_poll_ms() -> u64 {
    500
}
fn default_send_lease_ms() -> u64 {
    10_000
}

/// API authentication settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Where the bearer token for `/v1/*` comes from. When the source is empty or unset, a
    /// token is generated on first start and written to `{data_dir}/api-token` (mode 0600).
    /// Default: environment variable `PLAZO_API_TOKEN`.
    #[serde(default = "default_token_source")]
    pub token: SecretSource,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            token: default_token_source(),
        }
    }
}

fn default_token_source() -> SecretSource {
    SecretSource {
        env: Some("PLAZO_API_TOKEN".into()),
        file: None,
    }
}

/// Where the Prometheus metrics are served (`[metrics]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// An address of its own for `GET /metrics`, e.g. `"127.0.0.1:9464"`: only `/metrics` is
    /// served there, without authentication, and the API's port no longer serves it (keep a
    /// public API port free of operational data). Must differ from `listen`. Default: unset,
    /// `/metrics` is served on the API's address, without authentication, like `/healthz`.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging settings. `RUST_LOG` overrides `level` when set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`. Default `human`.
    #[serde(default)]
    pub format: LogFormat,
    /// Level of detail: one of `trace`, `debug`, `info`, `warn`, `error`, `off`, or tracing
    /// directives whose every part is a level or `target=level`, e.g. `plazo=debug,info`.
    /// Anything else (a typo such as `loud`, or an empty string, which would silence every
    /// line) is refused at load. Default `info`.
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

/// What to do, after a crash, with a reminder that was claimed but whose outcome was not
/// recorded (the message may or may not have left).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnUnknown {
    /// Record it as `unknown` and move on to the next step: the debtor never gets a duplicate,
    /// at the risk of one reminder never sent (default).
    #[default]
    Skip,
    /// Send it again: nothing is lost, at the risk of one duplicate.
    Resend,
}

/// Dispatcher tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Maximum sends in flight at once. Default 64.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Maximum reminders claimed per transaction. Default 512.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Attempts per channel before a transient failure counts as permanent. Default 6.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay in seconds; doubles each attempt, with ±20 % jitter. Default 30.
    #[serde(default = "default_backoff_base")]
    pub backoff_base_secs: u64,
    /// Longest retry delay in seconds. Default 3600.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_secs: u64,
    /// What to do with reminders found in flight after a crash: `skip` (default) or `resend`.
    #[serde(default)]
    pub on_unknown: OnUnknown,
    /// Seconds to wait for in-flight sends on shutdown. Default 10.
    #[serde(default = "default_drain")]
    pub drain_timeout_secs: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            concurrency: default_concurrency(),
            batch: default_batch(),
            max_attempts: default_max_attempts(),
            backoff_base_secs: default_backoff_base(),
            backoff_max_secs: default_backoff_max(),
            on_unknown: OnUnknown::Skip,
            drain_timeout_secs: default_drain(),
        }
    }
}

fn default_concurrency() -> usize {
    64
}
fn default_batch() -> usize {
    512
}
fn default_max_attempts() -> u32 {
    6
}
fn default_backoff_base() -> u64 {
    30
}
fn default_backoff_max() -> u64 {
    3600
}
fn default_drain() -> u64 {
    10
}

/// Twilio's status callbacks and inbound messages. Twilio signs each request with the
/// account's Auth Token over the exact URL it called, which plazo rebuilds from `public_url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioWebhooksConfig {
    /// Where the Twilio Auth Token comes from. Default: environment variable
    /// `TWILIO_AUTH_TOKEN`. When it is unset both endpoints answer 503.
    #[serde(default = "default_twilio_token")]
    pub auth_token: SecretSource,
}

impl Default for TwilioWebhooksConfig {
    fn default() -> Self {
        TwilioWebhooksConfig {
            auth_token: default_twilio_token(),
        }
    }
}

fn default_twilio_token() -> SecretSource {
    SecretSource {
        env: Some("TWILIO_AUTH_TOKEN".into()),
        file: None,
    }
}

/// WhatsApp Cloud API webhooks (configured in the Meta app's dashboard with the callback URL
/// `{public_url}/webhooks/whatsapp` and the verify token).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppWebhooksConfig {
    /// Where the Meta App Secret (key of `X-Hub-Signature-256`) comes from. Default:
    /// environment variable `WHATSAPP_APP_SECRET`. When unset, `POST` answers 503.
    #[serde(default = "default_wa_secret")]
    pub app_secret: SecretSource,
    /// Where the verify token (the `hub.verify_token` you typed in the dashboard) comes from.
    /// Default: environment variable `WHATSAPP_VERIFY_TOKEN`. When unset, `GET` answers 503.
    #[serde(default = "default_wa_verify")]
    pub verify_token: SecretSource,
}

impl Default for WhatsAppWebhooksConfig {
    fn default() -> Self {
        WhatsAppWebhooksConfig {
            app_secret: default_wa_secret(),
            verify_token: default_wa_verify(),
        }
    }
}

fn default_wa_secret() -> SecretSource {
    SecretSource {
        env: Some("WHATSAPP_APP_SECRET".into()),
        file: None,
    }
}
fn default_wa_verify() -> SecretSource {
    SecretSource {
        env: Some("WHATSAPP_VERIFY_TOKEN".into()),
        file: None,
    }
}

/// Stripe webhooks. In the Stripe dashboard, add the endpoint `{public_url}/webhooks/stripe`
/// with the events `invoice.paid`, `checkout.session.completed`,
/// `checkout.session.async_payment_succeeded`, `payment_intent.succeeded` and
/// `charge.refunded`, and put our invoice id in the objects' metadata under `metadata_key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// Where the endpoint's signing secret (`whsec_...`) comes from. Default: environment
    /// variable `STRIPE_WEBHOOK_SECRET`. Unset: the endpoint answers 503.
    #[serde(default = "default_stripe_secret")]
    pub webhook_secret: SecretSource,
    /// Oldest accepted `t=` in `Stripe-Signature`, in seconds. Default 300 (Stripe's own).
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// Metadata key holding our invoice id on Stripe invoices, payment intents, checkout
    /// sessions and charges. Default `plazo_invoice_id`. Checkout's `client_reference_id` and
    /// the Stripe invoice `number` are tried too.
    #[serde(default = "default_metadata_key")]
    pub metadata_key: String,
}

impl Default for StripeConfig {
    fn default() -> Self {
        StripeConfig {
            webhook_secret: default_stripe_secret(),
            tolerance_secs: default_tolerance(),
            metadata_key: default_metadata_key(),
        }
    }
}

fn default_stripe_secret() -> SecretSource {
    SecretSource {
        env: Some("STRIPE_WEBHOOK_SECRET".into()),
        file: None,
    }
}
fn default_metadata_key() -> String {
    "plazo_invoice_id".into()
}

/// Mercado Pago. The notification URL is `{public_url}/webhooks/mercadopago`; the payment's
/// `external_reference` carries our invoice id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MercadoPagoConfig {
    /// Where the "secret signature" of the integration (checks `x-signature`) comes from.
    /// Default: environment variable `MERCADOPAGO_WEBHOOK_SECRET`. Unset: the endpoint
    /// answers 503.
    #[serde(default = "default_mp_secret")]
    pub webhook_secret: SecretSource,
    /// Where the access token for `GET /v1/payments/{id}` comes from. Default: environment
    /// variable `MERCADOPAGO_ACCESS_TOKEN`. Unset: notifications are kept but cannot be
    /// applied (reported as failed; retry them once it is set).
    #[serde(default = "default_mp_token")]
    pub access_token: SecretSource,
    /// API base URL. Default `https://api.mercadopago.com`.
    #[serde(default = "default_mp_base")]
    pub base_url: String,
    /// Limit for one payment fetch, in seconds. Default 10.
    #[serde(default = "default_mp_timeout")]
    pub timeout_secs: u64,
}

impl Default for MercadoPagoConfig {
    fn default() -> Self {
        MercadoPagoConfig {
            webhook_secret: default_mp_secret(),
            access_token: default_mp_token(),
            base_url: default_mp_base(),
            timeout_secs: default_mp_timeout(),
        }
    }
}

fn default_mp_secret() -> SecretSource {
    SecretSource {
        env: Some("MERCADOPAGO_WEBHOOK_SECRET".into()),
        file: None,
    }
}
fn default_mp_token() -> SecretSource {
    SecretSource {
        env: Some("MERCADOPAGO_ACCESS_TOKEN".into()),
        file: None,
    }
}
fn default_mp_base() -> String {
    "https://api.mercadopago.com".into()
}
fn default_mp_timeout() -> u64 {
    10
}

/// Standard Webhooks endpoint for payment events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentWebhookConfig {
    /// Where the `whsec_...` signing secret comes from. Default: environment variable
    /// `PLAZO_WEBHOOK_SECRET`. When it is unset the endpoint answers 503.
    #[serde(default = "default_webhook_secret")]
    pub secret: SecretSource,
    /// Accepted clock skew in seconds, both ways. Default 300.
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// Days a webhook id is remembered for de-duplication. Default 30.
    #[serde(default = "default_retention")]
    pub retention_days: u32,
}

impl Default for PaymentWebhookConfig {
    fn default() -> Self {
        PaymentWebhookConfig {
            secret: default_webhook_secret(),
            tolerance_secs: default_tolerance(),
            retention_days: default_retention(),
        }
    }
}

fn default_webhook_secret() -> SecretSource {
    SecretSource {
        env: Some("PLAZO_WEBHOOK_SECRET".into()),
        file: None,
    }
}
fn default_tolerance() -> u64 {
    300
}
fn default_retention() -> u32 {
    30
}

/// Cron expressions (six fields, seconds first, UTC) for housekeeping jobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HousekeepingConfig {
    /// Prune remembered webhook ids past their retention. Default `0 15 3 * * *` (03:15 UTC).
    #[serde(default = "default_prune")]
    pub prune_webhooks: String,
    /// Log a digest of the last 24 h: sent, failed, deferred. Default `0 0 7 * * *`.
    #[serde(default = "default_digest")]
    pub daily_digest: String,
    /// Choose again the segment of every open invoice (segment `when` rules that read what
    /// changes with time alone, like `invoice.days_overdue`) and move the ones whose segment
    /// changed. Default `0 30 5 * * *` (05:30 UTC).
    #[serde(default = "default_resegment")]
    pub resegment: String,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        HousekeepingConfig {
            prune_webhooks: default_prune(),
            daily_digest: default_digest(),
            resegment: default_resegment(),
        }
    }
}

fn default_prune() -> String {
    "0 15 3 * * *".into()
}
fn default_digest() -> String {
    "0 0 7 * * *".into()
}
fn default_resegment() -> String {
    "0 30 5 * * *".into()
}

impl DaemonConfig {
    /// Path of the policy file, resolved against this file's directory.
    pub fn policy_path(&self) -> PathBuf {
        self.base_dir.join(&self.policy)
    }

    /// `file:line:column` of the setting at the dotted `path` (e.g. `["channels", "crm"]`),
    /// or of the table it belongs in when it is not written: for messages about it.
    pub fn location_of(&self, path: &[&str]) -> String {
        let (line, column) = locate(&self.source_text, path);
        format!("{}:{line}:{column}", self.source.display())
    }
}

/// Reads, parses and validates the daemon configuration.
pub fn load_daemon_config(path: &Path) -> Result<DaemonConfig, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let mut cfg: DaemonConfig = toml::from_str(&text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(&text, s.start));
        ConfigError::Parse {
            path: shown.clone(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    cfg.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    cfg.source = path.to_path_buf();
    super::validate::validate(&cfg, &text, &shown)?;
    cfg.source_text = text;
    Ok(cfg)
}

impl DaemonConfig {
    /// The configured `public_url` (not the `http://{listen}` fallback), for links that leave
    /// the machine: unsubscribe links and provider callbacks.
    pub fn configured_public_url(&self) -> Option<reqwest::Url> {
        self.public_url.as_ref()?;
        self.public_base_url()
    }

    /// The public base URL without a trailing slash (`public_url`, else `http://{listen}`):
    /// where providers call back and where unsubscribe links point. `None` only if the
    /// configured URL does not parse, which [`load_daemon_config`] has already refused.
    pub fn public_base_url(&self) -> Option<reqwest::Url> {
        let text = match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        };
        reqwest::Url::parse(&text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<DaemonConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plazo.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::write(dir.path().join("policy.toml"), "").unwrap();
        load_daemon_config(&path)
    }

    #[test]
    fn shipped_config_loads() {
        let cfg = load_daemon_config(Path::new("config/plazo.toml")).unwrap();
        assert_eq!(cfg.routes.get("email").map(String::as_str), Some("outbox"));
        assert_eq!(cfg.dispatch.on_unknown, OnUnknown::Skip);
    }

    #[test]
    fn errors_name_the_line_field_and_fix() {
        let e = load("listen = \"127.0.0.1:8080\"\nlisen = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("plazo.toml:2:1"), "{e}");
        assert!(e.contains("unknown field `lisen`"), "{e}");
        let e = load("[routes]\nemail = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("routes.email: channel \"nowhere\" is not defined"),
            "{e}"
        );
        let e = load("[routes]\nfax = \"outbox\"\n[channels.outbox]\ntype = \"outbox\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("routes.fax: unknown channel kind"), "{e}");
        let e = load("[housekeeping]\ndaily_digest = \"every day\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("housekeeping.daily_digest"), "{e}");
        assert!(e.contains("not a cron expression"), "{e}");
        let e = load("[dispatch]\nconcurrency = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("dispatch"), "{e}");
        let e = load("public_url = \"cobros.example.co\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be an http:// or https:// URL"), "{e}");
    }

    #[test]
    fn who_sends_on_postgresql_is_chosen_and_checked() {
        let cfg = load("[store]\nbackend = \"postgres\"\n").unwrap();
        assert_eq!(cfg.store.delivery, Delivery::Shared);
        assert_eq!(cfg.store.send_lease_ms, 10_000);
        let cfg = load("[store]\ndelivery = \"leader\"\nsend_lease_ms = 2500\n").unwrap();
        assert_eq!(cfg.store.delivery, Delivery::Leader);
        assert_eq!(cfg.store.send_lease_ms, 2500);
        let e = fails("[store]\nsend_lease_ms = 10\n");
        assert!(e.contains("plazo.toml:2:"), "{e}");
        assert!(e.contains("from 1000 to 600000"), "{e}");
        let e = fails("[store]\ndelivery = \"everyone\"\n");
        assert!(e.contains("unknown variant `everyone`"), "{e}");
        assert!(e.contains("expected `shared` or `leader`"), "{e}");
    }

    /// The message of loading `text`, which must fail.
    fn fails(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn every_invalid_value_names_file_line_and_column() {
        for (text, expected) in [
            (
                "[routes]\nemail = \"nowhere\"\n",
                "plazo.toml:2:9: routes.email: channel \"nowhere\" is not defined",
            ),
            (
                "[routes]\nfax = \"outbox\"\n[channels.outbox]\ntype = \"outbox\"\n",
                "plazo.toml:2:7: routes.fax: unknown channel kind",
            ),
            (
                "[dispatch]\nbatch = 5\nconcurrency = 0\n",
                "plazo.toml:3:15: dispatch.concurrency: 0 is out of range; write a whole number from 1 to 10000",
            ),
            (
                "[dispatch]\nmax_attempts = 0\n",
                "plazo.toml:2:16: dispatch.max_attempts: 0 is out of range",
            ),
            (
                "[dispatch]\nbackoff_base_secs = 60\nbackoff_max_secs = 30\n",
                "plazo.toml:3:20: dispatch.backoff_max_secs: 30 is shorter than backoff_base_secs",
            ),
            (
                "cache_mib = 0\n",
                "plazo.toml:1:13: cache_mib: 0 is out of range",
            ),
            (
                "[payment_webhooks]\nretention_days = 100000\n",
                "plazo.toml:2:18: payment_webhooks.retention_days: 100000 is out of range",
            ),
            (
                "[mercadopago]\ntimeout_secs = 0\n",
                "plazo.toml:2:16: mercadopago.timeout_secs: 0 is out of range",
            ),
            (
                "[mercadopago]\nbase_url = \"api.mercadopago.com\"\n",
                "plazo.toml:2:12: mercadopago.base_url: \"api.mercadopago.com\" must be an http:// or https:// URL",
            ),
            (
                "[housekeeping]\ndaily_digest = \"every day\"\n",
                "plazo.toml:2:16: housekeeping.daily_digest: \"every day\" is not a cron expression",
            ),
            (
                "[housekeeping]\nresegment = \"0 30 25 * * *\"\n",
                "plazo.toml:2:13: housekeeping.resegment: \"0 30 25 * * *\" is not a cron expression",
            ),
            (
                "listen = \"127.0.0.1:8080\"\n[metrics]\nlisten = \"127.0.0.1:8080\"\n",
                "plazo.toml:3:10: metrics.listen: 127.0.0.1:8080 is also the API's `listen` address",
            ),
            ("[metrics]\nlisten = \"localhost\"\n", "plazo.toml:2:"),
            (
                "public_url = \"cobros.example.co\"\n",
                "plazo.toml:1:14: public_url: \"cobros.example.co\" must be an http:// or https:// URL",
            ),
            (
                "[stripe]\nmetadata_key = \" \"\n",
                "plazo.toml:2:16: stripe.metadata_key: the metadata key is empty",
            ),
            (
                "policy = \"nope.toml\"\n",
                "plazo.toml:1:10: policy: policy file ",
            ),
            (
                "[log]\nlevel = \"loud\"\n",
                "plazo.toml:2:9: log.level: \"loud\" is not a log level; write one of trace, debug, info, warn, error, off",
            ),
            (
                "[log]\nlevel = \"\"\n",
                "plazo.toml:2:9: log.level: the log level is empty",
            ),
            (
                "[channels.out]\ntype = \"outbox\"\ndir = \"/tmp/elsewhere\"\n",
                "plazo.toml:3:7: channels.out.dir: /tmp/elsewhere is outside the data directory",
            ),
            (
                "[channels.out]\ntype = \"outbox\"\ndir = \"../outbox\"\n",
                "plazo.toml:3:7: channels.out.dir: ../outbox is outside the data directory",
            ),
            ("", "plazo.toml:1:1: file: the config file is empty"),
            (
                "# only a comment\n\n",
                "plazo.toml:1:1: file: the config file is empty",
            ),
        ] {
            let e = fails(text);
            assert!(
                e.contains(expected),
                "{text:?}\n expected {expected:?}\n      got {e:?}"
            );
        }
    }

    #[test]
    fn values_at_the_edges_of_their_ranges_and_inner_outbox_dirs_load() {
        let data = tempfile::tempdir().unwrap();
        let text = format!(
            "data_dir = \"{}\"\n[dispatch]\nconcurrency = 1\nbatch = 100000\nmax_attempts = 100\nbackoff_base_secs = 1\nbackoff_max_secs = 1\n[log]\nlevel = \"plazo=debug,warn\"\n[channels.a]\ntype = \"outbox\"\ndir = \"outbox/sub/../x\"\n[channels.b]\ntype = \"outbox\"\ndir = \"{}/abs\"\n",
            data.path().display(),
            data.path().display()
        );
        let cfg = load(&text).unwrap();
        assert_eq!(cfg.dispatch.concurrency, 1);
        assert!(
            cfg.location_of(&["channels", "b", "dir"])
                .ends_with("plazo.toml:15:7")
        );
    }
}
