//! WhatsApp through Meta's WhatsApp Business Cloud API (Graph API).
//!
//! Each message is one `POST {base_url}/{api_version}/{phone_number_id}/messages` with
//! `Authorization: Bearer <token>`:
//!
//! - while the debtor's 24-hour customer-service window is open
//!   ([`WhatsAppContent::session_open`]) and the step has text, a free-form `text` message;
//!   if Meta refuses it with 131047 (window closed after all) and the step has a template, the
//!   template is sent instead, in the same `send`;
//! - otherwise the step's approved template ([`WhatsAppContent::template`]) with its body
//!   parameters and URL button;
//! - otherwise nothing is sent: a permanent [`FailureScope::WindowClosed`] error.
//!
//! Every request carries `biz_opaque_callback_data` = the reminder id, which Meta echoes in
//! status webhooks ([`crate::inbound::whatsapp`]). The receipt holds the wamid
//! (`messages[0].id`); HTTP 200 means accepted, delivery comes later by webhook. Failures are
//! classified from Meta's error code, then the HTTP status (the table is in `errors.rs`).
//!
//! ```toml
//! [channels.wa]
//! type = "whatsapp"
//! phone_number_id = "106540352242922"
//! access_token_file = "/run/credentials/plazo.service/whatsapp"
//! rate_limit = { per_second = 80.0, burst = 10 }
//! ```

mod errors;
mod payload;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::SignedDuration;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Deserializer};

use super::build::{BuildContext, ChannelBuildError, SecretSource, positive_duration, read_secret};
use super::channel::{
    Channel, ChannelError, FailureScope, Outbound, Receipt, WhatsAppContent, WhatsAppTemplate,
};
use super::http_util::http_client;
use super::ratelimit::{RateLimitConfig, SharedLimiter};
use crate::clock::SharedClock;
use errors::{CODE_WINDOW_CLOSED, Failure, classify_reqwest, classify_response};

/// Default API host.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
/// Default Graph API version.
pub const DEFAULT_API_VERSION: &str = "v23.0";
/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most response bytes read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// `type = "whatsapp"`: send through the WhatsApp Business Cloud API.
///
/// Free-form text goes only while the debtor's 24-hour window is open; otherwise the step must
/// map to an approved template in the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppConfig {
    /// API base URL. Default `https://graph.facebook.com`; change it only for a proxy or a
    /// test server.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Graph API version, e.g. `"v23.0"` (the default). Must look like `vNN.N`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// The business phone number's id (digits) from WhatsApp Manager → API Setup, e.g.
    /// `"106540352242922"`. This is not the phone number itself.
    #[serde(deserialize_with = "string_or_integer")]
    pub phone_number_id: String,
    /// Name of the environment variable holding the access token (a system-user token with
    /// `whatsapp_business_messaging`), e.g. `PLAZO_WHATSAPP_TOKEN`. This or
    /// `access_token_file` is required.
    #[serde(default)]
    pub access_token_env: Option<String>,
    /// File holding the access token (trailing newline ignored), e.g.
    /// `/run/credentials/plazo.service/whatsapp`.
    #[serde(default)]
    pub access_token_file: Option<PathBuf>,
    /// Limit for the whole request, e.g. `"10s"` (the default).
    #[serde(default)]
    pub timeout: Option<SignedDuration>,
    /// Sending rate of this phone number, e.g. `{ per_second = 80.0, burst = 10 }` (Meta's
    /// default throughput is 80 messages per second, inbound and outbound together). Channels
    /// with the same `phone_number_id` share one bucket. Default: no limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

/// Accepts `phone_number_id = "123"` and `phone_number_id = 123`.
fn string_or_integer<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(u64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(s) => s,
        Raw::Number(n) => n.to_string(),
    })
}

/// True for `vN.N` (`v23.0`).
fn valid_api_version(v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    v.strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| digits(major) && digits(minor))
}

/// The WhatsApp Cloud API channel.
pub struct WhatsAppChannel {
    name: String,
    endpoint: reqwest::Url,
    /// `Bearer <token>`, marked sensitive.
    auth: HeaderValue,
    client: reqwest::Client,
    limiter: Option<SharedLimiter>,
    clock: SharedClock,
}

impl std::fmt::Debug for WhatsAppChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsAppChannel")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint.as_str())
            .field("rate_limit", &self.limiter.as_ref().map(|l| l.key()))
            .finish_non_exhaustive()
    }
}

impl WhatsAppChannel {
    /// Builds the channel from its config: validates the fields, reads the token, and joins the
    /// rate-limit bucket `whatsapp:{phone_number_id}`. Opens no connection.
    pub fn from_config(
        name: &str,
        cfg: &WhatsAppConfig,
        ctx: &BuildContext,
    ) -> Result<Self, ChannelBuildError> {
        let phone_number_id = cfg.phone_number_id.trim();
        if phone_number_id.is_empty() || !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ChannelBuildError::invalid(
                name,
                "phone_number_id",
                format!(
                    "{:?} must be the numeric phone number id from WhatsApp Manager → API Setup \
                     (digits only, e.g. \"106540352242922\"), not the phone number",
                    cfg.phone_number_id
                ),
            ));
        }
        let api_version = cfg.api_version.as_deref().unwrap_or(DEFAULT_API_VERSION);
        if !valid_api_version(api_version) {
            return Err(ChannelBuildError::invalid(
                name,
                "api_version",
                format!("{api_version:?} is not a Graph API version; write e.g. \"v23.0\""),
            ));
        }
        let endpoint = endpoint(name, cfg.base_url.as_deref(), api_version, phone_number_id)?;

        let src = SecretSource {
            env_field: "access_token_env",
            env: cfg.access_token_env.as_deref(),
            file_field: "access_token_file",
            file: cfg.access_token_file.as_deref(),
        };
        let token = read_secret(name, &src, ctx)?.ok_or_else(|| {
            ChannelBuildError::invalid(
                name,
                "access_token_env",
                "an access token is required; set access_token_env (a variable name) or \
                 access_token_file to a system-user token with whatsapp_business_messaging",
            )
        })?;
        let field = if cfg.access_token_env.is_some() {
            "access_token_env"
        } else {
            "access_token_file"
        };
        let token = token.trim();
        if token.is_empty() || token.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(ChannelBuildError::invalid(
                name,
                field,
                "the access token must be printable ASCII without spaces; check that the \
                 variable or file holds only the token",
            ));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ChannelBuildError::invalid(name, field, "the access token is not a valid header value")
        })?;
        auth.set_sensitive(true);

        let limiter = match cfg.rate_limit {
            Some(rl) => {
                rl.validate()
                    .map_err(|e| ChannelBuildError::invalid(name, "rate_limit", e))?;
                Some(
                    ctx.limiters
                        .get_or_create(&format!("whatsapp:{phone_number_id}"), rl),
                )
            }
            None => None,
        };
        let timeout = positive_duration(name, "timeout", cfg.timeout, DEFAULT_TIMEOUT)?;
        let client = http_client(name, "base_url", timeout)?;
        Ok(WhatsAppChannel {
            name: name.to_owned(),
            endpoint,
            auth,
            client,
            limiter,
            clock: ctx.clock.clone(),
        })
    }

    /// Chooses text or template and sends it (see the module docs).
    async fn deliver(&self, msg: &Outbound) -> Result<Receipt, ChannelError> {
        let to = payload::recipient(&msg.to)?;
        let callback = msg.reminder_id.to_string();
        let none = WhatsAppContent {
            session_open: false,
            template: None,
        };
        let wa = msg.whatsapp.as_ref().unwrap_or(&none);
        let template = wa.template.as_ref();

        if wa.session_open && !msg.text.trim().is_empty() {
            match self.post(&payload::text(&to, &msg.text, &callback)).await {
                Ok(id) => {
                    return Ok(Receipt {
                        provider_message_id: id,
                        note: Some("text (24-hour window open)".to_owned()),
                    });
                }
                Err(f) if f.code == Some(CODE_WINDOW_CLOSED) && template.is_some() => {
                    tracing::info!(
                        channel = %self.name,
                        reminder = %msg.reminder_id,
                        "whatsapp: free-form text refused (131047, window closed); sending the template"
                    );
                }
                Err(f) => return Err(f.error),
            }
        }
        match template {
            Some(t) => self.send_template(&to, t, &callback).await,
            None if wa.session_open => Err(ChannelError::permanent(
                "whatsapp: nothing to send: the message text is empty and the step has no \
                 template",
            )),
            None => Err(ChannelError::permanent_scoped(
                FailureScope::WindowClosed,
                "whatsapp: no approved template for this step and the 24-hour window is closed; \
                 map the step to a template in the policy",
            )),
        }
    }

    async fn send_template(
        &self,
        to: &str,
        t: &WhatsAppTemplate,
        callback: &str,
    ) -> Result<Receipt, ChannelError> {
        let id = self
            .post(&payload::template(to, t, callback))
            .await
            .map_err(|f| f.error)?;
        Ok(Receipt {
            provider_message_id: id,
            note: Some(format!("template {} ({})", t.name, t.language)),
        })
    }

    /// One request; `Ok` holds the wamid (if the 2xx response had one).
    async fn post(&self, body: &serde_json::Value) -> Result<Option<String>, Failure> {
        let body = serde_json::to_vec(body).map_err(|e| {
            ChannelError::permanent(format!("whatsapp: cannot serialise message: {e}"))
        })?;
        let resp = self
            .client
            .post(self.endpoint.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.scrub(classify_reqwest(&e)))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = read_body(resp).await;
        if status.is_success() {
            let id = payload::message_id(&bytes);
            if id.is_none() {
                tracing::warn!(
                    channel = %self.name,
                    "whatsapp: accepted (HTTP {status}) but the response has no messages[0].id; \
                     delivery receipts cannot be matched to this message"
                );
            }
            return Ok(id);
        }
        let mut f = classify_response(status, &headers, &bytes, self.clock.now());
        f.error = self.scrub(f.error);
        Err(f)
    }

    /// Removes the token from an error message, should a proxy or server ever echo it.
    fn scrub(&self, e: ChannelError) -> ChannelError {
        let Some(token) = self
            .auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return e;
        };
        let clean = |m: String| {
            if m.contains(token) {
                m.replace(token, "<redacted>")
            } else {
                m
            }
        };
        match e {
            ChannelError::Transient {
                message,
                retry_after,
            } => ChannelError::Transient {
                message: clean(message),
                retry_after,
            },
            ChannelError::Permanent { message, scope } => ChannelError::Permanent {
                message: clean(message),
                scope,
            },
        }
    }
}

/// `{base_url}/{api_version}/{phone_number_id}/messages`, validated.
fn endpoint(
    name: &str,
    base_url: Option<&str>,
    api_version: &str,
    phone_number_id: &str,
) -> Result<reqwest::Url, ChannelBuildError> {
    let raw = base_url.unwrap_or(DEFAULT_BASE_URL).trim();
    let bad = |why: String| ChannelBuildError::invalid(name, "base_url", why);
    let base = reqwest::Url::parse(raw).map_err(|e| {
        bad(format!(
            "{raw:?} is not a URL ({e}); write e.g. \"{DEFAULT_BASE_URL}\""
        ))
    })?;
    if !matches!(base.scheme(), "https" | "http") || base.host().is_none() {
        return Err(bad(format!(
            "{raw:?} must be an https:// (or http://) URL with a host"
        )));
    }
    if base.query().is_some() || base.fragment().is_some() || !base.username().is_empty() {
        return Err(bad(format!(
            "{raw:?} must not carry a query, fragment or credentials"
        )));
    }
    let full = format!(
        "{}/{api_version}/{phone_number_id}/messages",
        base.as_str().trim_end_matches('/')
    );
    reqwest::Url::parse(&full).map_err(|e| bad(format!("cannot build the endpoint URL: {e}")))
}

/// Reads a response body, at most [`MAX_RESPONSE_BYTES`] (the rest is dropped).
async fn read_body(mut resp: reqwest::Response) -> Vec<u8> {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_RESPONSE_BYTES.saturating_sub(buf.len());
        buf.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if buf.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    buf
}

impl Channel for WhatsAppChannel {
    fn name(&self) -> &str {
        &self.name
    }
    fn adapter(&self) -> &'static str {
        "whatsapp"
    }
    fn send<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>> {
        Box::pin(self.deliver(msg))
    }
    fn reports_delivery(&self) -> bool {
        true
    }
    fn rate_limiter(&self) -> Option<&SharedLimiter> {
        self.limiter.as_ref()
    }
}
