//! SMS through Twilio's Messages API (or a Twilio-compatible provider).
//!
//! Each message is one `POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`, form
//! encoded, with HTTP Basic auth (`account_sid` or `api_key_sid` as the user, the auth token or
//! API key secret as the password). The fields sent are `To`, `From` or
//! `MessagingServiceSid`, `Body`, and when configured `StatusCallback` and `ValidityPeriod`.
//!
//! ```toml
//! [channels.sms]
//! type = "twilio"
//! account_sid = "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
//! auth_token_file = "/run/credentials/plazo.service/twilio"
//! from = "+15005550006"
//! validity_period = "2h"
//! rate_limit = { per_second = 1.0 }
//! ```
//!
//! Outcome: 2xx with a message `sid` → accepted (the sid is the receipt's id; Twilio reports
//! delivery later to `{public_url}/webhooks/twilio/status`, see [`crate::inbound::twilio`]).
//! Failures, by Twilio error code first and HTTP status second:
//!
//! | Twilio answer | result |
//! |---|---|
//! | 21610 (recipient replied STOP) | permanent, [`FailureScope::OptedOut`] |
//! | 21211, 21214, 21217, 21219, 21401, 21407, 21408, 21421, 21612, 21614 (bad or unreachable `To`) | permanent, [`FailureScope::Address`] |
//! | 20003, 20005, 20008, HTTP 401/403 (credentials, account) | permanent, [`FailureScope::Channel`] |
//! | 21212 (bad `From`), 21609 (bad `StatusCallback`), HTTP 404 (wrong account or `base_url`), 3xx | permanent, [`FailureScope::Channel`] |
//! | 20429, HTTP 429, 408, 5xx, timeouts, connection errors | transient (with `Retry-After`) |
//! | any other 4xx | permanent, [`FailureScope::Message`] |
//!
//! [`FailureScope::OptedOut`]: super::FailureScope::OptedOut
//! [`FailureScope::Address`]: super::FailureScope::Address
//! [`FailureScope::Channel`]: super::FailureScope::Channel
//! [`FailureScope::Message`]: super::FailureScope::Message

mod classify;
mod segments;
#[cfg(test)]
mod tests;

pub use classify::{ADDRESS_ERRORS, CONFIG_ERRORS, CREDENTIAL_ERRORS, ERROR_OPTED_OUT};
pub use segments::{SmsEncoding, SmsSegments, sms_segments};

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::SignedDuration;
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde::Deserialize;

use super::build::{BuildContext, ChannelBuildError, SecretSource, positive_duration, read_secret};
use super::channel::{Channel, ChannelError, FailureScope, Outbound, Receipt};
use super::http_util::http_client;
use super::ratelimit::{RateLimitConfig, SharedLimiter};
use crate::clock::SharedClock;
use crate::inbound::twilio::STATUS_CALLBACK_PATH;

/// Twilio's API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `ValidityPeriod` Twilio accepts, in seconds (also its default).
pub const MAX_VALIDITY_SECS: u32 = 36_000;
/// Longest `StatusCallback` URL Twilio accepts.
const MAX_CALLBACK_LEN: usize = 4_000;
/// Most response bytes read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// `type = "twilio"`: send SMS through Twilio's Messages API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// API base URL. Default `"https://api.twilio.com"`. Change it only for a Twilio-compatible
    /// provider or a test server; a path is kept (`https://example.com/api` sends to
    /// `https://example.com/api/2010-04-01/...`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Your Account SID from the Twilio Console: `AC` followed by 32 hex digits.
    pub account_sid: String,
    /// Name of the environment variable holding the auth token (or, with `api_key_sid`, the
    /// API key's secret), e.g. `PLAZO_TWILIO_TOKEN`. Give either this or `auth_token_file`.
    #[serde(default)]
    pub auth_token_env: Option<String>,
    /// File holding the auth token or API key secret (trailing newline ignored), e.g.
    /// `/run/credentials/plazo.service/twilio`. Give either this or `auth_token_env`.
    #[serde(default)]
    pub auth_token_file: Option<PathBuf>,
    /// An API key SID (`SK` followed by 32 hex digits) to authenticate with instead of the
    /// account SID; the token is then that key's secret. Twilio still signs its webhooks
    /// with the account's auth token.
    #[serde(default)]
    pub api_key_sid: Option<String>,
    /// The sender: a phone number of your Twilio account in E.164 form, e.g. `"+15005550006"`
    /// (a short code such as `"55555"` or an alphanumeric sender ID such as `"ACME"` also
    /// work where Twilio allows them). Give either this or `messaging_service_sid`.
    #[serde(default)]
    pub from: Option<String>,
    /// A Messaging Service SID (`MG` followed by 32 hex digits): Twilio picks the sender from
    /// the service's pool. Give either this or `from`.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// Ask Twilio for delivery reports at `{public_url}/webhooks/twilio/status`. Default
    /// `true`; has no effect unless the daemon's `public_url` is set. The URL must be reachable
    /// from the internet.
    #[serde(default = "default_true")]
    pub status_callback: bool,
    /// How long a message may wait in Twilio's queue before it is dropped, e.g. `"2h"`: from 1
    /// second to 10 hours (`"36000s"`), in whole seconds. Default: Twilio's (10 hours).
    #[serde(default)]
    pub validity_period: Option<SignedDuration>,
    /// Limit for the whole API request, e.g. `"10s"`. Default 10 s.
    #[serde(default)]
    pub timeout: Option<SignedDuration>,
    /// Sending rate of this sender, e.g. `{ per_second = 1.0 }` for a US long code, `3.0` for
    /// US toll-free, `100.0` for a short code. Channels with the same account and sender share
    /// one bucket. Default: no limit here (Twilio queues what goes over its rate).
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

fn default_true() -> bool {
    true
}

/// Who sends: a number (or sender ID) or a Messaging Service.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sender {
    From(String),
    MessagingService(String),
}

impl Sender {
    fn id(&self) -> &str {
        match self {
            Sender::From(s) | Sender::MessagingService(s) => s,
        }
    }
}

/// The auth token or API key secret; `Debug` never shows it.
#[derive(Clone)]
struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The Twilio SMS channel.
pub struct TwilioChannel {
    name: String,
    endpoint: reqwest::Url,
    username: String,
    token: Token,
    sender: Sender,
    status_callback: Option<String>,
    validity_secs: Option<u32>,
    limiter: Option<SharedLimiter>,
    client: reqwest::Client,
    clock: SharedClock,
}

impl fmt::Debug for TwilioChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioChannel")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint.as_str())
            .field("username", &self.username)
            .field("sender", &self.sender)
            .field("status_callback", &self.status_callback)
            .field("validity_secs", &self.validity_secs)
            .field("limiter", &self.limiter.as_ref().map(|l| l.key()))
            .finish_non_exhaustive()
    }
}

/// True for `prefix` followed by 32 hex digits (Twilio's SID format).
fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == prefix.len() + 32
        && s.starts_with(prefix)
        && s[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// True for an E.164 number: `+`, a non-zero digit, then up to 14 more digits (at least 7 in
/// all).
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// True for a sender Twilio can use as `From`: E.164, a short code (3–8 digits) or an
/// alphanumeric sender ID (1–11 letters, digits and spaces, with at least one letter).
fn is_sender(s: &str) -> bool {
    let short_code = (3..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let alphanumeric = (1..=11).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.trim() == s;
    is_e164(s) || short_code || alphanumeric
}

impl TwilioChannel {
    /// Builds the channel from its config: checks the SIDs and sender, reads the token, takes
    /// the rate-limit bucket from `ctx.limiters`. Opens no connection.
    pub fn from_config(
        name: &str,
        cfg: &TwilioConfig,
        ctx: &BuildContext,
    ) -> Result<Self, ChannelBuildError> {
        let invalid = |field, reason: String| ChannelBuildError::invalid(name, field, reason);
        let account_sid = cfg.account_sid.trim();
        if !is_sid(account_sid, "AC") {
            return Err(invalid(
                "account_sid",
                format!(
                    "{:?} is not an Account SID; copy it from the Twilio Console: \"AC\" followed \
                     by 32 hex digits",
                    cfg.account_sid
                ),
            ));
        }
        let username = match cfg.api_key_sid.as_deref().map(str::trim) {
            None => account_sid.to_owned(),
            Some(k) if is_sid(k, "SK") => k.to_owned(),
            Some(k) => {
                return Err(invalid(
                    "api_key_sid",
                    format!("{k:?} is not an API key SID: \"SK\" followed by 32 hex digits"),
                ));
            }
        };
        let sender = match (cfg.from.as_deref(), cfg.messaging_service_sid.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "from",
                    "set either from or messaging_service_sid, not both".to_owned(),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "from",
                    "a sender is required: set from (your Twilio number in E.164, e.g. \
                     \"+15005550006\") or messaging_service_sid (\"MG...\")"
                        .to_owned(),
                ));
            }
            (Some(f), None) if is_sender(f.trim()) => Sender::From(f.trim().to_owned()),
            (Some(f), None) => {
                return Err(invalid(
                    "from",
                    format!(
                        "{f:?} is not a sender: write an E.164 number with its country code, e.g. \
                         \"+15005550006\" (or a short code, or an alphanumeric sender ID of at \
                         most 11 characters)"
                    ),
                ));
            }
            (None, Some(s)) if is_sid(s.trim(), "MG") => {
                Sender::MessagingService(s.trim().to_owned())
            }
            (None, Some(s)) => {
                return Err(invalid(
                    "messaging_service_sid",
                    format!(
                        "{s:?} is not a Messaging Service SID: \"MG\" followed by 32 hex digits"
                    ),
                ));
            }
        };
        let src = SecretSource {
            env_field: "auth_token_env",
            env: cfg.auth_token_env.as_deref(),
            file_field: "auth_token_file",
            file: cfg.auth_token_file.as_deref(),
        };
        let token = read_secret(name, &src, ctx)?.ok_or_else(|| {
            invalid(
                "auth_token_env",
                "an auth token is required; set auth_token_env to the NAME of an environment \
                 variable holding it, or auth_token_file to a file holding it"
                    .to_owned(),
            )
        })?;
        let endpoint = endpoint(cfg.base_url.as_deref(), account_sid)
            .map_err(|reason| invalid("base_url", reason))?;
        let status_callback = match (&ctx.public_url, cfg.status_callback) {
            (Some(public), true) => Some(
                status_callback_url(public).map_err(|reason| invalid("status_callback", reason))?,
            ),
            _ => None,
        };
        let validity_secs = cfg
            .validity_period
            .map(validity_secs)
            .transpose()
            .map_err(|reason| invalid("validity_period", reason))?;
        let timeout = positive_duration(name, "timeout", cfg.timeout, DEFAULT_TIMEOUT)?;
        let limiter = match cfg.rate_limit {
            None => None,
            Some(rl) => {
                rl.validate()
                    .map_err(|reason| invalid("rate_limit", reason))?;
                let key = format!("twilio:{account_sid}:{}", sender.id());
                Some(ctx.limiters.get_or_create(&key, rl))
            }
        };
        let client = http_client(name, "base_url", timeout)?;
        Ok(TwilioChannel {
            name: name.to_owned(),
            endpoint,
            username,
            token: Token(token),
            sender,
            status_callback,
            validity_secs,
            limiter,
            client,
            clock: ctx.clock.clone(),
        })
    }

    /// The `StatusCallback` URL sent with each message, if any.
    pub fn status_callback(&self) -> Option<&str> {
        self.status_callback.as_deref()
    }

    async fn post(&self, msg: &Outbound) -> Result<Receipt, ChannelError> {
        if !is_e164(&msg.to) {
            let shown: String = msg.to.chars().take(40).collect();
            return Err(ChannelError::permanent_scoped(
                FailureScope::Address,
                format!(
                    "twilio: recipient {shown:?} is not an E.164 phone number (e.g. \
                     \"+573001234567\"); fix the client's phone"
                ),
            ));
        }
        if msg.text.trim().is_empty() {
            return Err(ChannelError::permanent(
                "twilio: the message text is empty; check the step's SMS template",
            ));
        }
        let validity = self.validity_secs.map(|v| v.to_string());
        let mut form: Vec<(&str, &str)> = vec![("To", msg.to.as_str())];
        match &self.sender {
            Sender::From(f) => form.push(("From", f)),
            Sender::MessagingService(s) => form.push(("MessagingServiceSid", s)),
        }
        form.push(("Body", &msg.text));
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb));
        }
        if let Some(v) = &validity {
            form.push(("ValidityPeriod", v));
        }
        let resp = self
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.username, Some(&self.token.0))
            .header(ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| classify::classify_transport(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = read_body(resp).await;
        if status.is_success() {
            return classify::receipt(status, &body, &sms_segments(&msg.text));
        }
        let now = self.clock.now();
        let err = classify::classify(status, &headers, &body, now, &self.token.0);
        if status == StatusCode::TOO_MANY_REQUESTS {
            if let (Some(limiter), Some(delay)) = (&self.limiter, err.retry_after()) {
                let until = SignedDuration::try_from(delay)
                    .ok()
                    .and_then(|d| now.checked_add(d).ok());
                if let Some(until) = until {
                    limiter.penalize(until);
                }
            }
        }
        Err(err)
    }
}

/// `{base}/2010-04-01/Accounts/{sid}/Messages.json`, keeping any path of `base`.
fn endpoint(base: Option<&str>, account_sid: &str) -> Result<reqwest::Url, String> {
    let raw = base.map(str::trim).unwrap_or(DEFAULT_BASE_URL);
    let mut url = reqwest::Url::parse(raw)
        .map_err(|e| format!("{raw:?} is not a URL ({e}); write e.g. \"{DEFAULT_BASE_URL}\""))?;
    if !matches!(url.scheme(), "https" | "http")
        || url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "{raw:?} must be an https:// (or http://) URL with a host and no query, e.g. \
             \"{DEFAULT_BASE_URL}\""
        ));
    }
    url.path_segments_mut()
        .map_err(|()| format!("{raw:?} cannot have a path appended"))?
        .pop_if_empty()
        .extend(["2010-04-01", "Accounts", account_sid, "Messages.json"]);
    Ok(url)
}

/// `{public_url}/webhooks/twilio/status`, checked against Twilio's rules (error 21609).
fn status_callback_url(public: &reqwest::Url) -> Result<String, String> {
    let mut url = public.clone();
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut segs = url.path_segments_mut().map_err(|()| {
            format!("public_url {public} cannot have a path appended; fix public_url")
        })?;
        segs.pop_if_empty();
        segs.extend(STATUS_CALLBACK_PATH.trim_start_matches('/').split('/'));
    }
    if url.host_str().is_some_and(|h| h.contains('_')) {
        return Err(format!(
            "Twilio refuses callback URLs whose host name has an underscore ({url}); change \
             public_url, or set status_callback = false"
        ));
    }
    if url.as_str().len() > MAX_CALLBACK_LEN {
        return Err(format!(
            "the callback URL is longer than Twilio's {MAX_CALLBACK_LEN} characters; shorten \
             public_url"
        ));
    }
    Ok(url.into())
}

/// Whole seconds in 1..=36000.
fn validity_secs(d: SignedDuration) -> Result<u32, String> {
    let whole = d.subsec_nanos() == 0;
    match u32::try_from(d.as_secs()) {
        Ok(s) if whole && (1..=MAX_VALIDITY_SECS).contains(&s) => Ok(s),
        _ => Err(format!(
            "must be whole seconds from \"1s\" to \"36000s\" (10 hours), e.g. \"2h\" (got {d:#})"
        )),
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of the body (what could not be read is left out).
async fn read_body(mut resp: reqwest::Response) -> Vec<u8> {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_RESPONSE_BYTES {
            buf.truncate(MAX_RESPONSE_BYTES);
            break;
        }
    }
    buf
}

impl Channel for TwilioChannel {
    fn name(&self) -> &str {
        &self.name
    }
    fn adapter(&self) -> &'static str {
        "twilio"
    }
    fn send<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>> {
        Box::pin(self.post(msg))
    }
    fn reports_delivery(&self) -> bool {
        self.status_callback.is_some()
    }
    fn rate_limiter(&self) -> Option<&SharedLimiter> {
        self.limiter.as_ref()
    }
}
