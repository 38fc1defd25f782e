//! Webhook channel: POSTs each message as JSON, signed with Standard Webhooks headers.
//!
//! Body: `{"type":"reminder.send","timestamp":"<RFC 3339>","data":<Outbound>}`. Headers:
//! `webhook-id: msg_{reminder_id}` (the same on every retry, so receivers can deduplicate),
//! `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature: v1,<base64>`.
//!
//! Outcome: 2xx → delivered; 408, 429, 5xx, connection errors and timeouts → transient (with
//! `Retry-After` honoured); 3xx (redirects are not followed), 410 and other 4xx → permanent.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::SignedDuration;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde::{Deserialize, Serialize};

use super::build::{BuildContext, ChannelBuildError, SecretSource, positive_duration, read_secret};
use super::channel::{Channel, ChannelError, Outbound, Receipt};
use super::http_util::{http_client, retry_after, transport_failure};
use crate::clock::SharedClock;
use crate::domain::ReminderId;
use crate::inbound::standard_webhooks::{
    HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret, sign,
};

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Event type of the payload.
pub const EVENT_TYPE: &str = "reminder.send";
/// Most response bytes read when looking for an `id`.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The body of each POST, serialized straight from the message (no JSON tree in between), its
/// fields in the order the module docs give.
#[derive(Serialize)]
struct Envelope<'a> {
    /// [`EVENT_TYPE`].
    #[serde(rename = "type")]
    kind: &'static str,
    /// When this attempt was made (RFC 3339, UTC).
    timestamp: jiff::Timestamp,
    /// The message.
    data: &'a Outbound,
}

/// `type = "webhook"`: POST each message, signed with Standard Webhooks headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Endpoint URL (`https://...`; `http://` only for trusted networks: bodies carry PII).
    pub url: String,
    /// Name of the environment variable holding the `whsec_...` signing secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the `whsec_...` signing secret (trailing newline ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Limit for the whole request, e.g. `"15s"`. Default 15 s (the spec suggests 15–30 s).
    #[serde(default)]
    pub timeout: Option<SignedDuration>,
}

/// The webhook channel.
pub struct WebhookChannel {
    name: String,
    url: reqwest::Url,
    secret: WebhookSecret,
    client: reqwest::Client,
    clock: SharedClock,
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
        let client = http_client(name, "url", timeout)?;
        Ok(WebhookChannel {
            name: name.to_owned(),
            url,
            secret,
            client,
            clock: ctx.clock.clone(),
        })
    }

    async fn post(&self, msg: &Outbound) -> Result<Receipt, ChannelError> {
        let now = self.clock.now();
        let body = serde_json::to_vec(&Envelope {
            kind: EVENT_TYPE,
            timestamp: now,
            data: msg,
        })
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
                note: None,
            });
        }
        Err(classify_status(status, resp.headers(), self.clock.now()))
    }
}

/// Classifies a request that got no HTTP response.
fn classify_reqwest(e: &reqwest::Error) -> ChannelError {
    let what = transport_failure(e);
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap as AxHeaders, StatusCode as AxStatus};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;

    use super::*;
    use crate::channels::SharedChannel;
    use crate::channels::config::ChannelConfig;
    use crate::channels::testutil::{ctx, email};
    use crate::inbound::standard_webhooks::{DEFAULT_TOLERANCE, HeaderLookup, verify};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// The channel's (manual) clock: every signature and payload timestamp must come from it.
    fn now() -> jiff::Timestamp {
        "2026-03-15T14:00:00Z".parse().unwrap()
    }

    #[derive(Clone)]
    struct Receiver {
        secret: WebhookSecret,
        seen: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    }

    async fn hook(
        State(r): State<Receiver>,
        Path(mode): Path<String>,
        headers: AxHeaders,
        body: Bytes,
    ) -> Response {
        if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
            return (AxStatus::UNSUPPORTED_MEDIA_TYPE, "json please").into_response();
        }
        let lookup = HeaderLookup::from_headers(&headers);
        if let Err(e) = verify(&r.secret, &lookup, &body, now(), DEFAULT_TOLERANCE) {
            return (AxStatus::UNAUTHORIZED, e.to_string()).into_response();
        }
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let id = lookup.id.unwrap_or_default().to_owned();
        r.seen.lock().unwrap().push((id, json));
        match mode.as_str() {
            "ok" => AxStatus::NO_CONTENT.into_response(),
            "json-id" => (AxStatus::OK, "{\"id\":\"crm-77\"}").into_response(),
            "busy" => (AxStatus::SERVICE_UNAVAILABLE, [("retry-after", "42")]).into_response(),
            "slow-down" => AxStatus::TOO_MANY_REQUESTS.into_response(),
            "gone" => AxStatus::GONE.into_response(),
            "moved" => (AxStatus::FOUND, [("location", "/hooks/ok")]).into_response(),
            _ => AxStatus::BAD_REQUEST.into_response(),
        }
    }

    /// Starts the receiver; returns its base URL and what it saw.
    async fn receiver(secret: &str) -> (String, Arc<Mutex<Vec<(String, serde_json::Value)>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Receiver {
            secret: WebhookSecret::parse(secret).unwrap(),
            seen: seen.clone(),
        };
        let app = Router::new()
            .route("/hooks/{mode}", post(hook))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), seen)
    }

    fn channel(url: &str, timeout: &str) -> SharedChannel {
        let cfg: ChannelConfig = toml::from_str(&format!(
            "type = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"PLAZO_CRM_SECRET\"\ntimeout = \"{timeout}\"\n"
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = ctx(dir.path(), &[("PLAZO_CRM_SECRET", SECRET)]);
        ctx.clock = Arc::new(crate::clock::ManualClock::new(now()));
        cfg.build("crm", &ctx).unwrap()
    }

    #[tokio::test]
    async fn delivers_signed_payload_with_stable_id() {
        let (base, seen) = receiver(SECRET).await;
        let ch = channel(&format!("{base}/hooks/ok"), "5s");
        assert_eq!((ch.name(), ch.adapter()), ("crm", "webhook"));
        let msg = email("c-42", 1);
        let r1 = ch.send(&msg).await.unwrap();
        let r2 = ch.send(&msg).await.unwrap();
        let id = format!("msg_{}", msg.reminder_id);
        assert_eq!(r1.provider_message_id.as_deref(), Some(id.as_str()));
        assert_eq!(r1, r2);
        let other = ch.send(&email("c-42", 2)).await.unwrap();
        assert_ne!(other, r1);

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].0, id);
        assert_eq!(seen[1].0, id, "webhook-id is stable across retries");
        let body = &seen[0].1;
        assert_eq!(body["type"], "reminder.send");
        let ts: jiff::Timestamp = body["timestamp"].as_str().unwrap().parse().unwrap();
        assert_eq!(ts, now(), "the payload timestamp is the channel's clock");
        assert_eq!(body["data"]["reminder_id"], msg.reminder_id.to_string());
        assert_eq!(body["data"]["invoice_id"], "INV-2024-001");
        assert_eq!(body["data"]["subject"], msg.subject.clone().unwrap());
    }

    #[tokio::test]
    async fn receipt_uses_response_id_when_given() {
        let (base, _) = receiver(SECRET).await;
        let ch = channel(&format!("{base}/hooks/json-id"), "5s");
        let r = ch.send(&email("c-42", 1)).await.unwrap();
        assert_eq!(r.provider_message_id.as_deref(), Some("crm-77"));
    }

    #[tokio::test]
    async fn failures_are_classified() {
        let (base, seen) = receiver(SECRET).await;
        let msg = email("c-42", 1);

        let err = channel(&format!("{base}/hooks/busy"), "5s")
            .send(&msg)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(42)));

        let err = channel(&format!("{base}/hooks/slow-down"), "5s")
            .send(&msg)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(err.retry_after(), None);

        let err = channel(&format!("{base}/hooks/gone"), "5s")
            .send(&msg)
            .await
            .unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert!(err.to_string().contains("410"), "{err}");

        let err = channel(&format!("{base}/hooks/moved"), "5s")
            .send(&msg)
            .await
            .unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert!(err.to_string().contains("302"), "{err}");

        let err = channel(&format!("{base}/hooks/other"), "5s")
            .send(&msg)
            .await
            .unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 5, "redirect was not followed");

        // Wrong secret on the receiver side: 401 → permanent.
        let (base2, _) = receiver("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").await;
        let err = channel(&format!("{base2}/hooks/ok"), "5s")
            .send(&msg)
            .await
            .unwrap_err();
        assert!(
            err.is_permanent() && err.to_string().contains("401"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn connection_refused_and_timeout_are_transient() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = channel(&format!("http://127.0.0.1:{port}/hooks/ok"), "5s")
            .send(&email("c-42", 1))
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");

        // A server that accepts but never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let err = channel(&format!("http://{addr}/hooks/ok"), "300ms")
            .send(&email("c-42", 1))
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains("timed out"), "{err}");
    }

    #[test]
    fn request_timeout_is_transient() {
        let now: jiff::Timestamp = "2015-10-21T07:27:00Z".parse().unwrap();
        let e = classify_status(StatusCode::REQUEST_TIMEOUT, &HeaderMap::new(), now);
        assert!(e.is_transient());
    }
}
