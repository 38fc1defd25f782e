//! Mercado Pago's `x-signature` header.
//!
//! The header reads `ts=<timestamp>,v1=<hex>`. The MAC is HMAC-SHA256, keyed with the
//! application's *secret signature* (UTF-8, from "Your integrations"), over the manifest
//! `id:{data.id};request-id:{x-request-id};ts:{ts};` (with a trailing `;`). A pair whose value is
//! missing or blank is left out. `data.id` comes from the notification URL's **query string**,
//! never from the (unsigned) body. Output: lowercase hex.
//!
//! Some integrations lower-case alphanumeric ids (order ids such as `ORD01…`) before signing, so
//! when the id as received does not verify, the lower-cased id is tried too.
//!
//! Mercado Pago sets no timestamp tolerance by default and the unit of `ts` is ambiguous
//! (seconds in the SDK code, milliseconds in its docs and tests). [`verify_with_tolerance`]
//! accepts both: a `ts` above 10^12 is read as milliseconds.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying `ts=…,v1=…`.
pub const HEADER_SIGNATURE: &str = "x-signature";
/// Header carrying the delivery's request id (part of the signed manifest).
pub const HEADER_REQUEST_ID: &str = "x-request-id";

/// How far a notification's `ts` may be from now, either way, at `/webhooks/mercadopago`: 5
/// minutes (as Stripe's own default). Older (replayed) or future notifications are refused.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// A `ts` above this is in milliseconds, at or below it in seconds.
const MILLIS_THRESHOLD: u64 = 1_000_000_000_000;

/// Why a Mercado Pago notification's signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MercadoPagoSignatureError {
    /// No secret signature is configured (empty string).
    #[error(
        "no Mercado Pago secret signature configured; copy it from \"Your integrations\" > your \
         application > Webhooks"
    )]
    EmptySecret,
    /// The `x-signature` header is missing or blank.
    #[error(
        "missing x-signature header (webhook notifications are signed; QR-code and legacy IPN \
         notifications are not and can only be treated as a hint)"
    )]
    MissingHeader,
    /// The header is not `ts=<digits>,v1=<64 hex digits>`.
    #[error("malformed x-signature header: {0}")]
    Malformed(String),
    /// The MAC does not match, with the id as received nor lower-cased.
    #[error(
        "x-signature does not match; check the secret signature in Mercado Pago's \"Your \
         integrations\" > your application > Webhooks, and that data.id is read from the \
         query string"
    )]
    Mismatch,
    /// The signature is valid but its `ts` is further from now than the tolerance allows.
    #[error(
        "x-signature ts is {} s {} now; at most {tolerance_secs} s is accepted (replayed \
         notification, or a clock off)",
        .age_secs.unsigned_abs(),
        if *.age_secs < 0 { "ahead of" } else { "behind" }
    )]
    Stale {
        /// How old the signature is, in seconds (negative: in the future).
        age_secs: i64,
        /// The tolerance, in seconds.
        tolerance_secs: u64,
    },
}

/// The header's `ts` and every `v1` value.
struct Parsed<'a> {
    ts: &'a str,
    v1: Vec<&'a str>,
}

/// Splits the header on `,`, then each item on its first `=`; keys are trimmed and lower-cased.
/// Items without `=` or with a blank key or value are skipped (as the SDK does); other `vN`
/// versions are ignored.
fn parse_header(header: &str) -> Result<Parsed<'_>, MercadoPagoSignatureError> {
    let malformed = |why: &str| MercadoPagoSignatureError::Malformed(why.to_owned());
    let mut ts = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        if key.is_empty() || value.is_empty() {
            continue;
        }
        match key.as_str() {
            "ts" if ts.is_some() => return Err(malformed("more than one ts= item")),
            "ts" => ts = Some(value),
            "v1" => v1.push(value),
            _ => {}
        }
    }
    let ts = ts.ok_or_else(|| malformed("no ts= item (expected ts=<timestamp>,v1=<hex>)"))?;
    if !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MercadoPagoSignatureError::Malformed(format!(
            "ts {ts:?} is not a number"
        )));
    }
    if v1.is_empty() {
        return Err(malformed("no v1= item (expected ts=<timestamp>,v1=<hex>)"));
    }
    if let Some(bad) = v1
        .iter()
        .find(|v| v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(MercadoPagoSignatureError::Malformed(format!(
            "v1 is {} characters, not 64 hex digits",
            bad.len()
        )));
    }
    Ok(Parsed { ts, v1 })
}

/// A value as the manifest uses it: trimmed, `None` when missing or blank.
fn present(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// The signed manifest: `id:{data_id};request-id:{x_request_id};ts:{ts};`, leaving out the
/// `id` or `request-id` pair when its value is missing or blank.
pub fn manifest(data_id: Option<&str>, x_request_id: Option<&str>, ts: &str) -> String {
    let mut m = String::new();
    if let Some(id) = present(data_id) {
        m.push_str("id:");
        m.push_str(id);
        m.push(';');
    }
    if let Some(rid) = present(x_request_id) {
        m.push_str("request-id:");
        m.push_str(rid);
        m.push(';');
    }
    m.push_str("ts:");
    m.push_str(ts);
    m.push(';');
    m
}

/// Lowercase hex HMAC-SHA256 of `manifest` keyed with `secret` (UTF-8).
fn mac_hex(secret: &str, manifest: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty-key MAC rather
    // than panic (it would never match a real signature).
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => HmacSha256::new(&Default::default()),
    };
    mac.update(manifest.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Signs like Mercado Pago: returns the `x-signature` value `ts={ts},v1={hex}` (for tests and
/// mock servers). The secret is trimmed, as in [`verify`].
pub fn sign(secret: &str, data_id: Option<&str>, x_request_id: Option<&str>, ts: &str) -> String {
    let v1 = mac_hex(secret.trim(), &manifest(data_id, x_request_id, ts));
    format!("ts={ts},v1={v1}")
}

/// Verifies a notification's `x-signature`, without a timestamp check (Mercado Pago's default;
/// the webhook endpoint uses [`verify_with_tolerance`] with [`DEFAULT_TOLERANCE`]).
///
/// `data_id` is the `data.id` of the notification URL's **query string**; `x_request_id` the
/// `x-request-id` header. Missing or blank values are left out of the manifest. The secret is
/// trimmed (a trailing newline from a file is not part of it). Every `v1` in the header is
/// compared in constant time against the MAC of the manifest with `data_id` as received, then
/// with `data_id` lower-cased.
pub fn verify(
    secret: &str,
    x_signature: Option<&str>,
    x_request_id: Option<&str>,
    data_id: Option<&str>,
) -> Result<(), MercadoPagoSignatureError> {
    verify_with_tolerance(
        secret,
        x_signature,
        x_request_id,
        data_id,
        jiff::Timestamp::UNIX_EPOCH,
        None,
    )
}

/// [`verify`], then, when `tolerance` is given, checks that `ts` is within `tolerance` of `now`
/// in both directions. `ts` above 10^12 is read as milliseconds, otherwise as seconds. The
/// signature is checked first, so [`MercadoPagoSignatureError::Stale`] is only reported for an
/// authentic (but old or future) notification.
pub fn verify_with_tolerance(
    secret: &str,
    x_signature: Option<&str>,
    x_request_id: Option<&str>,
    data_id: Option<&str>,
    now: jiff::Timestamp,
    tolerance: Option<Duration>,
) -> Result<(), MercadoPagoSignatureError> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(MercadoPagoSignatureError::EmptySecret);
    }
    let header = present(x_signature).ok_or(MercadoPagoSignatureError::MissingHeader)?;
    let parsed = parse_header(header)?;

    let matches = |id: Option<&str>| {
        let expected = mac_hex(secret, &manifest(id, x_request_id, parsed.ts));
        parsed.v1.iter().any(|got| {
            let got = got.to_ascii_lowercase();
            bool::from(expected.as_bytes().ct_eq(got.as_bytes()))
        })
    };
    let id = present(data_id);
    let lower = id.map(str::to_ascii_lowercase);
    let ok = matches(id)
        || lower
            .as_deref()
            .is_some_and(|l| Some(l) != id && matches(Some(l)));
    if !ok {
        return Err(MercadoPagoSignatureError::Mismatch);
    }

    if let Some(tol) = tolerance {
        check_age(parsed.ts, now, tol)?;
    }
    Ok(())
}

/// Checks `ts` (seconds, or milliseconds above 10^12) against `now ± tolerance`.
fn check_age(
    ts: &str,
    now: jiff::Timestamp,
    tolerance: Duration,
) -> Result<(), MercadoPagoSignatureError> {
    let n: u64 = ts
        .parse()
        .map_err(|_| MercadoPagoSignatureError::Malformed(format!("ts {ts:?} is out of range")))?;
    let ts_ms = if n > MILLIS_THRESHOLD {
        i128::from(n)
    } else {
        i128::from(n) * 1000
    };
    let age_ms = i128::from(now.as_millisecond()) - ts_ms;
    if age_ms.unsigned_abs() > tolerance.as_millis() {
        let age_secs =
            i64::try_from(age_ms / 1000).unwrap_or(if age_ms < 0 { i64::MIN } else { i64::MAX });
        return Err(MercadoPagoSignatureError::Stale {
            age_secs,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    Ok(())
}
