//! The `GET /v1/payments/{id}` fetch: what really happened to a payment.
//!
//! A notification only says "payment `{id}` changed"; its body is not signed, so the status,
//! amount and references always come from this fetch, authenticated with the seller's access
//! token (`Authorization: Bearer …`).
//!
//! Outcome: 2xx → [`MpPayment`]; 408, 429, 5xx, timeouts and connection errors → transient
//! (with `Retry-After` honoured); 401/403 → permanent, credentials; 404 → permanent, unknown
//! payment; 3xx (redirects are not followed) and other 4xx → permanent. Error messages quote
//! Mercado Pago's `message` and the `x-request-id` response header (for support), never the
//! token.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::valid_id;
use crate::channels::http_util::{client_builder, retry_after, transport_failure};
use crate::clock::{SharedClock, SystemClock};

/// Mercado Pago's API.
pub const DEFAULT_BASE_URL: &str = "https://api.mercadopago.com";
/// A reasonable request timeout (Mercado Pago wants the webhook answered within 22 s; the fetch
/// should run after answering, but should not hang either).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most response bytes read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest Mercado Pago `message` quoted in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// A payment as `GET /v1/payments/{id}` returns it (only the fields plazo uses; others are
/// ignored).
///
/// Amounts are parsed from the JSON number's **text** (`58.80` → `Decimal` 58.80, scale 2)
/// through [`serde_json::value::RawValue`], never through `f64`, so they are exact at any
/// precision. This needs the raw JSON: deserialize with [`MpPayment::from_json`] (or
/// `serde_json::from_slice` / `from_str`), not from a `serde_json::Value`, which has already
/// turned numbers into `f64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MpPayment {
    /// The payment id (a JSON number at Mercado Pago; kept as its decimal text).
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// `approved`, `pending`, `authorized`, `in_process`, `in_mediation`, `rejected`,
    /// `cancelled`, `refunded`, `charged_back`.
    pub status: String,
    /// Detail of the status (`accredited`, `partially_refunded`, `cc_rejected_…`).
    #[serde(default)]
    pub status_detail: Option<String>,
    /// Amount charged, in major units.
    #[serde(
        deserialize_with = "de_amount",
        serialize_with = "rust_decimal::serde::str::serialize"
    )]
    pub transaction_amount: Decimal,
    /// Amount refunded so far, in major units.
    #[serde(
        default,
        deserialize_with = "de_amount_opt",
        serialize_with = "rust_decimal::serde::str_option::serialize"
    )]
    pub transaction_amount_refunded: Option<Decimal>,
    /// ISO 4217 code (`BRL`, `ARS`, `MXN`...).
    pub currency_id: String,
    /// Our reference, set when the preference or payment was created (plazo: the invoice id).
    #[serde(default)]
    pub external_reference: Option<String>,
    /// When the payment was approved (`2026-05-25T13:01:08.000-04:00`).
    #[serde(default, deserialize_with = "de_timestamp_opt")]
    pub date_approved: Option<Timestamp>,
    /// The `metadata` object given when the payment was created (Mercado Pago returns its keys
    /// in snake_case). `null` when absent.
    #[serde(default)]
    pub metadata: serde_json::Value,
}

impl MpPayment {
    /// Parses a `GET /v1/payments/{id}` response body (amounts exact, see the type's docs).
    pub fn from_json(body: &[u8]) -> Result<MpPayment, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// Parses an amount from its JSON text: a number (`1250.5`, `100`, `1.2e3`) or a numeric
/// string. Exact: too many digits is an error, not a rounding. Negative amounts are rejected.
pub(super) fn parse_amount(text: &str) -> Result<Decimal, String> {
    let t = text.trim();
    let t = t
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t);
    let d = Decimal::from_str_exact(t)
        .or_else(|_| Decimal::from_scientific(t))
        .map_err(|e| format!("amount {t} is not an exact decimal: {e}"))?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(format!("amount {t} is negative"));
    }
    Ok(d)
}

fn de_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    parse_amount(raw.get()).map_err(de::Error::custom)
}

fn de_amount_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    match Option::<Box<RawValue>>::deserialize(d)? {
        None => Ok(None),
        Some(raw) => parse_amount(raw.get()).map(Some).map_err(de::Error::custom),
    }
}

fn de_timestamp_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => Timestamp::from_str(s.trim())
            .map(Some)
            .map_err(|e| de::Error::custom(format!("timestamp {s:?}: {e}"))),
    }
}

/// An id given as a JSON number or string, kept as text.
fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct IdVisitor;
    impl Visitor<'_> for IdVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an id (integer or string)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }
    d.deserialize_any(IdVisitor)
}

/// Why a [`MercadoPagoClient`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientBuildError {
    /// `base_url` is not an http(s) URL with a host.
    #[error("Mercado Pago base_url {0:?} must be an https:// (or http://) URL with a host")]
    BadBaseUrl(String),
    /// The access token is empty.
    #[error(
        "Mercado Pago access token is empty; copy it from \"Your integrations\" > your \
         application > Production credentials"
    )]
    EmptyToken,
    /// The access token cannot be sent in a header (control characters, non-ASCII...).
    #[error("Mercado Pago access token contains characters not allowed in an HTTP header")]
    BadToken,
    /// The timeout is zero.
    #[error("Mercado Pago timeout must be more than zero")]
    ZeroTimeout,
    /// reqwest could not build its client (TLS setup...).
    #[error("cannot build the HTTP client for Mercado Pago: {0}")]
    Http(String),
}

/// Mercado Pago's account of a failed request: the body's `message` and the `x-request-id`
/// response header (quote it to Mercado Pago support).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MpErrorInfo {
    /// The error body's `message` (or `error`), truncated.
    pub message: Option<String>,
    /// The `x-request-id` response header.
    pub request_id: Option<String>,
}

impl fmt::Display for MpErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.message {
            write!(f, ": {m:?}")?;
        }
        if let Some(r) = &self.request_id {
            write!(f, " (x-request-id {r})")?;
        }
        Ok(())
    }
}

/// Why `GET /v1/payments/{id}` failed. [`FetchError::is_transient`] tells whether to retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Transient: no response (timeout, connection refused or reset, DNS...).
    #[error("Mercado Pago: {what} fetching payment {id}: {detail}")]
    Network {
        /// The payment id.
        id: String,
        /// `timed out`, `connection failed`, `request failed`.
        what: &'static str,
        /// reqwest's description (it names the URL, which carries no secret).
        detail: String,
    },
    /// Transient: 408, 429 or 5xx.
    #[error("Mercado Pago answered {status} fetching payment {id}{info}; will retry")]
    Unavailable {
        /// The payment id.
        id: String,
        /// The HTTP status.
        status: u16,
        /// `Retry-After`, when given (capped at 24 h).
        retry_after: Option<Duration>,
        /// Mercado Pago's message and request id.
        info: MpErrorInfo,
    },
    /// Permanent: 401 or 403, the access token is wrong, expired or lacks access.
    #[error(
        "Mercado Pago rejected the access token ({status}) fetching payment {id}{info}; check \
         the access token in \"Your integrations\" > your application > Production credentials \
         (test and production credentials differ)"
    )]
    Credentials {
        /// The payment id.
        id: String,
        /// 401 or 403.
        status: u16,
        /// Mercado Pago's message and request id.
        info: MpErrorInfo,
    },
    /// Permanent: 404, no such payment for this account (a forged notification, another
    /// account's payment, or test vs production credentials).
    #[error(
        "Mercado Pago has no payment {id} for this access token (404){info}; the notification \
         may be forged or meant for another account or environment"
    )]
    NotFound {
        /// The payment id.
        id: String,
        /// Mercado Pago's message and request id.
        info: MpErrorInfo,
    },
    /// Permanent: another 4xx, or a 3xx (redirects are not followed: check `base_url`).
    #[error("Mercado Pago answered {status} fetching payment {id}{info}")]
    Rejected {
        /// The payment id.
        id: String,
        /// The HTTP status (0: the request could not even be built).
        status: u16,
        /// Mercado Pago's message and request id.
        info: MpErrorInfo,
    },
    /// Permanent: a 2xx whose body is not a payment (or is another payment than asked for).
    #[error("Mercado Pago payment {id}: unexpected response{info}: {detail}")]
    Decode {
        /// The payment id.
        id: String,
        /// What is wrong with it.
        detail: String,
        /// The request id (the message is empty).
        info: MpErrorInfo,
    },
    /// Permanent: the id is not a Mercado Pago id (it would not be a safe URL path segment).
    #[error(
        "{0:?} is not a Mercado Pago payment id (expected letters, digits, '-' or '_', at most 64)"
    )]
    InvalidId(String),
}

impl FetchError {
    /// Worth retrying later (network trouble, 408, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::Network { .. } | FetchError::Unavailable { .. }
        )
    }
    /// Not worth retrying as is (credentials, unknown payment, bad answer).
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }
    /// The `Retry-After` Mercado Pago asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
    /// Mercado Pago's `x-request-id` for the failed request, if it answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            FetchError::Unavailable { info, .. }
            | FetchError::Credentials { info, .. }
            | FetchError::NotFound { info, .. }
            | FetchError::Rejected { info, .. }
            | FetchError::Decode { info, .. } => info.request_id.as_deref(),
            FetchError::Network { .. } | FetchError::InvalidId(_) => None,
        }
    }
}

/// Reads payments from Mercado Pago's API with one seller's access token.
///
/// `Debug` never shows the token.
#[derive(Clone)]
pub struct MercadoPagoClient {
    base_url: String,
    authorization: HeaderValue,
    client: reqwest::Client,
    clock: SharedClock,
}

impl fmt::Debug for MercadoPagoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MercadoPagoClient")
            .field("base_url", &self.base_url)
            .field("access_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl MercadoPagoClient {
    /// A client for [`DEFAULT_BASE_URL`].
    pub fn new(access_token: &str, timeout: Duration) -> Result<Self, ClientBuildError> {
        Self::with_base_url(DEFAULT_BASE_URL, access_token, timeout)
    }

    /// A client for `base_url` (a mock, a proxy; a trailing `/` is ignored). `timeout` bounds
    /// the connection and the whole request; redirects are not followed. The token is trimmed.
    pub fn with_base_url(
        base_url: &str,
        access_token: &str,
        timeout: Duration,
    ) -> Result<Self, ClientBuildError> {
        let base = base_url.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(base)
            .map_err(|_| ClientBuildError::BadBaseUrl(base_url.to_owned()))?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err(ClientBuildError::BadBaseUrl(base_url.to_owned()));
        }
        let token = access_token.trim();
        if token.is_empty() {
            return Err(ClientBuildError::EmptyToken);
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ClientBuildError::BadToken)?;
        authorization.set_sensitive(true);
        if timeout.is_zero() {
            return Err(ClientBuildError::ZeroTimeout);
        }
        let client = client_builder(timeout)
            .build()
            .map_err(|e| ClientBuildError::Http(e.to_string()))?;
        Ok(MercadoPagoClient {
            base_url: base.to_owned(),
            authorization,
            client,
            clock: std::sync::Arc::new(SystemClock),
        })
    }

    /// The same client reading "now" (for `Retry-After` dates) from `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The base URL requests go to (no trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET {base_url}/v1/payments/{id}`. The answer must be the payment asked for.
    pub async fn payment(&self, id: &str) -> Result<MpPayment, FetchError> {
        let id = id.trim();
        if !valid_id(id) {
            return Err(FetchError::InvalidId(id.to_owned()));
        }
        let url = format!("{}/v1/payments/{id}", self.base_url);
        let resp = self
            .client
            .get(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| classify_reqwest(id, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(resp).await;
        if status.is_success() {
            let body = body.map_err(|e| match e {
                BodyError::Network(e) => classify_reqwest(id, &e),
                BodyError::TooLarge => FetchError::Decode {
                    id: id.to_owned(),
                    detail: format!("body larger than {MAX_RESPONSE_BYTES} bytes"),
                    info: MpErrorInfo {
                        message: None,
                        request_id: request_id.clone(),
                    },
                },
            })?;
            let payment = MpPayment::from_json(&body).map_err(|e| FetchError::Decode {
                id: id.to_owned(),
                detail: e.to_string(),
                info: MpErrorInfo {
                    message: None,
                    request_id: request_id.clone(),
                },
            })?;
            if payment.id != id {
                return Err(FetchError::Decode {
                    id: id.to_owned(),
                    detail: format!("the response is payment {}", payment.id),
                    info: MpErrorInfo {
                        message: None,
                        request_id,
                    },
                });
            }
            return Ok(payment);
        }
        // An error body that cannot be read only loses the message: the status decides.
        let info = MpErrorInfo {
            message: body.ok().and_then(|b| error_message(&b)),
            request_id,
        };
        Err(classify_status(
            id,
            status,
            &headers,
            info,
            self.clock.now(),
        ))
    }
}

enum BodyError {
    Network(reqwest::Error),
    TooLarge,
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Network)? {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_RESPONSE_BYTES {
            return Err(BodyError::TooLarge);
        }
    }
    Ok(buf)
}

/// The `message` (or else `error`) of a Mercado Pago error body, truncated.
fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let m = ["message", "error"]
        .iter()
        .find_map(|k| v.get(k)?.as_str().map(str::trim).filter(|s| !s.is_empty()))?;
    Some(m.chars().take(MAX_MESSAGE_CHARS).collect())
}

/// Classifies a request that got no (complete) HTTP response.
fn classify_reqwest(id: &str, e: &reqwest::Error) -> FetchError {
    let what = transport_failure(e);
    if e.is_builder() {
        return FetchError::Rejected {
            id: id.to_owned(),
            status: 0,
            info: MpErrorInfo {
                message: Some(format!("cannot build the request: {e}")),
                request_id: None,
            },
        };
    }
    FetchError::Network {
        id: id.to_owned(),
        what,
        detail: e.to_string(),
    }
}

/// Classifies a non-2xx response.
fn classify_status(
    id: &str,
    status: StatusCode,
    headers: &HeaderMap,
    info: MpErrorInfo,
    now: Timestamp,
) -> FetchError {
    let id = id.to_owned();
    let code = status.as_u16();
    match code {
        408 | 429 | 500..=599 => FetchError::Unavailable {
            id,
            status: code,
            retry_after: retry_after(headers, now),
            info,
        },
        401 | 403 => FetchError::Credentials {
            id,
            status: code,
            info,
        },
        404 => FetchError::NotFound { id, info },
        _ => FetchError::Rejected {
            id,
            status: code,
            info,
        },
    }
}
