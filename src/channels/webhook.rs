//! Webhook channel: POSTs each message as JSON, signed with Standard Webhooks headers.
//!
//! Body: `{"type":"reminder.send","timestamp":"<RFC 3339>","data":<Outbound>}`. Headers:
//! `webhook-id: msg_{reminder_id}` (the same on every retry, so receivers can deduplicate),
//! `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature: v1,<base64>`.
//!
//! Outcome: 2xx → delivered; 408, 429, 5xx, connection errors and timeouts → transient (with
//! `Retry-After` honoured); 3xx (redirects are not followed), 410 and other 4xx → permanent.

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};

use super::config::{
    BuildContext, ChannelBuildError, SecretSource, WebhookConfig, positive_duration, read_secret,
};
use super::{Channel, ChannelError, Outbound, Receipt};
use crate::domain::ReminderId;
use crate::inbound::standard_webhooks::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret, sign,
};

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Event type of the payload.
pub const EVENT_TYPE: &str = "reminder.send";
/// Longest `Retry-After` honoured; longer requests are capped to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Most response bytes read when looking for an `id`.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The webhook channel.
pub struct WebhookChannel {
    name: String,
    url: reqwest::Url,
    secret: WebhookSecret,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// The `webhook-id` of the message carrying `reminder`: stable across retries.
pub fn webhook_id(reminder: ReminderId) -> String {
    format!("msg_{reminder}")
}

impl WebhookChannel {
    /// Builds the channel from its config (reads and parses the secret).
    pub fn from_config(
        name: &str,
        cfg: &WebhookConfig,
        ctx: &BuildContext,
    ) -> Result<Self, ChannelBuildError> {
        let url = reqwest::Url::parse(cfg.url.trim()).map_err(|e| {
            ChannelBuildError::invalid(
                name,
                "url",
                format!(
                    "{:?} is not a URL ({e}); write e.g. \"https://crm.example.co/hooks\"",
                    cfg.url
                ),
            )
        })?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err(ChannelBuildError::invalid(
                name,
                "url",
                format!(
                    "{:?} must be an https:// (or http://) URL with a host",
                    cfg.url
                ),
            ));
        }
        let src = SecretSource {
            env_field: "secret_env",
            env: cfg.secret_env.as_deref(),
            file_field: "secret_file",
            file: cfg.secret_file.as_deref(),
        };
        let raw = read_secret(name, &src, ctx)?.ok_or_else(|| {
            ChannelBuildError::invalid(
                name,
                "secret_env",
                "a signing secret is required; set secret_env or secret_file to a whsec_... secret",
            )
        })?;
        let field = if cfg.secret_env.is_some() {
            "secret_env"
        } else {
            "secret_file"
        };
        let secret = WebhookSecret::parse(&raw)
            .map_err(|e| ChannelBuildError::invalid(name, field, e.to_string()))?;
        let timeout = positive_duration(name, "timeout", cfg.timeout, DEFAULT_TIMEOUT)?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("plazo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ChannelBuildError::invalid(name, "url", format!("cannot build HTTP client: {e}"))
            })?;
        Ok(WebhookChannel {
            name: name.to_owned(),
            url,
            secret,
            client,
        })
    }

    async fn post(&self, msg: &Outbound) -> Result<Receipt, ChannelError> {
        let now = jiff::Timestamp::now();
        let body = serde_json::to_vec(&serde_json::json!({
            "type": EVENT_TYPE,
            "timestamp": now.to_string(),
            "data": msg,
        }))
        .map_err(|e| ChannelError::permanent(format!("cannot serialise message: {e}")))?;
        let id = webhook_id(msg.reminder_id);
        let ts = now.as_second();
        let signature = sign(&self.secret, &id, ts, &body);
        let resp = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(HEADER_ID, &id)
            .header(HEADER_TIMESTAMP, ts.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| classify_reqwest(&e))?;
        let status = resp.status();
        if status.is_success() {
            let provider_id = read_id(resp).await.unwrap_or(id);
            return Ok(Receipt {
                provider_message_id: Some(provider_id),
            });
        }
        Err(classify_status(
            status,
            resp.headers(),
            jiff::Timestamp::now(),
        ))
    }
}

/// Classifies a request that got no HTTP response.
fn classify_reqwest(e: &reqwest::Error) -> ChannelError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // `without_url` would need ownership; the URL carries no secret, so keep reqwest's text.
    if e.is_builder() {
        ChannelError::permanent(format!("webhook: {what}: {e}"))
    } else {
        ChannelError::transient(format!("webhook: {what}: {e}"))
    }
}

/// Classifies a non-2xx response.
fn classify_status(status: StatusCode, headers: &HeaderMap, now: jiff::Timestamp) -> ChannelError {
    let code = status.as_u16();
    if code == 408 || code == 429 || status.is_server_error() {
        ChannelError::Transient {
            message: format!("webhook: endpoint answered {status}"),
            retry_after: retry_after(headers, now),
        }
    } else if code == 410 {
        ChannelError::permanent(
            "webhook: endpoint answered 410 Gone; the receiver asked to stop (disable this channel)",
        )
    } else if status.is_redirection() {
        ChannelError::permanent(format!(
            "webhook: endpoint answered {status} (redirects are failures under Standard Webhooks; \
             configure the final URL)"
        ))
    } else {
        ChannelError::permanent(format!("webhook: endpoint answered {status}"))
    }
}

/// Parses `Retry-After` as delay-seconds or an HTTP date, capped at 24 h.
fn retry_after(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
        Duration::try_from(when.duration_since(now)).unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// Reads a JSON `{"id": "..."}` from a success response, if there is one.
async fn read_id(mut resp: reqwest::Response) -> Option<String> {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_RESPONSE_BYTES {
            return None;
        }
    }
    let v: serde_json::Value = serde_json::from_slice(&buf).ok()?;
    match v.get("id")? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        &self.name
    }
    fn adapter(&self) -> &'static str {
        "webhook"
    }
    fn send<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>> {
        Box::pin(self.post(msg))
    }
}
