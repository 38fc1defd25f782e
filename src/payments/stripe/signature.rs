//! `Stripe-Signature` verification.
//!
//! Stripe signs `"{t}.{raw body}"` with HMAC-SHA256 keyed with the **whole** endpoint signing
//! secret (`whsec_…` as UTF-8 bytes: not base64-decoded, prefix kept, unlike Standard
//! Webhooks) and sends `Stripe-Signature: t=<unix s>,v1=<lowercase hex>[,v1=…][,v0=…]`. There
//! are several `v1` items while a secret is being rolled; any one matching is enough. `v0` and
//! other schemes are ignored, as in the official SDKs (stripe-python `_webhook.py`, stripe-node
//! `Webhooks.ts`).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

type HmacSha256 = Hmac<Sha256>;

/// The request header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// The SDKs' default tolerance for the age of `t`: 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// How far in the future `t` may be before [`verify`] refuses it: one day.
///
/// The SDKs check only the past direction, so a `t` slightly ahead of our clock (the sender's
/// clock ahead, or ours behind) is accepted. A `t` more than a day ahead means a host clock is
/// badly wrong; accepting it would stretch the replay window to that far future, so it is
/// refused with [`StripeSignatureError::TooFarInFuture`] (Stripe retries, and the error names
/// the clock as the thing to check).
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(24 * 60 * 60);

/// Longest piece of a header value echoed back in an error.
const ECHO_MAX: usize = 40;

/// Why a `Stripe-Signature` was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeSignatureError {
    /// No signing secret was given (an empty key would let anyone sign).
    #[error("no Stripe webhook signing secret is configured (the endpoint's whsec_… value)")]
    NoSecret,
    /// The request has no `Stripe-Signature` header (or an empty one).
    #[error("missing Stripe-Signature header (is this request really from Stripe?)")]
    MissingHeader,
    /// The header has no usable `t=` item.
    #[error("malformed Stripe-Signature header: {0}")]
    MalformedHeader(String),
    /// The header has a timestamp but no `v1=` item (e.g. only the legacy `v0`).
    #[error(
        "Stripe-Signature header has no v1 signature (only v1, HMAC-SHA256, is accepted; v0 and \
         other schemes are ignored)"
    )]
    NoV1Signatures,
    /// No `v1` item matches the body and timestamp.
    #[error(
        "No signatures found matching the expected signature for payload ({tried} v1 \
         signature(s) tried): check that the configured secret is this endpoint's signing \
         secret (whsec_…, shown per endpoint in the Stripe dashboard or by `stripe listen`), \
         and that the body reaches the verifier unaltered"
    )]
    Mismatch {
        /// How many `v1` items the header had.
        tried: usize,
    },
    /// The signature is valid but `t` is older than the tolerance allows (a replay, or our
    /// clock ahead).
    #[error(
        "Stripe-Signature timestamp is {age_secs} s old, {over_secs} s past the {tolerance_secs} s \
         tolerance (replayed event, or this host's clock is ahead)"
    )]
    TooOld {
        /// How old `t` is, in seconds.
        age_secs: i64,
        /// By how much it exceeds the tolerance, in seconds.
        over_secs: i64,
        /// The tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// The signature is valid but `t` is more than [`MAX_FUTURE_SKEW`] ahead of `now`.
    #[error(
        "Stripe-Signature timestamp is {ahead_secs} s in the future (at most {max_secs} s is \
         accepted): check this host's clock"
    )]
    TooFarInFuture {
        /// How far ahead `t` is, in seconds.
        ahead_secs: i64,
        /// The limit, in seconds.
        max_secs: u64,
    },
}

/// The parsed header: the timestamp and every `v1` value.
struct Header<'a> {
    t: i64,
    v1: Vec<&'a str>,
}

fn echo(s: &str) -> String {
    let mut out: String = s.chars().take(ECHO_MAX).collect();
    if s.chars().count() > ECHO_MAX {
        out.push('…');
    }
    format!("{out:?}")
}

/// Splits `t=…,v1=…,…` like the SDKs: items on `,`, each on its first `=`. Items without `=`
/// and unknown schemes are skipped; exactly one integer `t` is required.
fn parse_header(header: &str) -> Result<Header<'_>, StripeSignatureError> {
    let mut t_raw: Option<&str> = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" => {
                if t_raw.is_some() {
                    return Err(StripeSignatureError::MalformedHeader(
                        "more than one t= item".to_owned(),
                    ));
                }
                t_raw = Some(value.trim());
            }
            "v1" => v1.push(value.trim()),
            _ => {}
        }
    }
    let t_raw = t_raw.ok_or_else(|| {
        StripeSignatureError::MalformedHeader(
            "no t=<unix seconds> item (expected t=…,v1=…)".to_owned(),
        )
    })?;
    let t = t_raw.parse::<i64>().map_err(|_| {
        StripeSignatureError::MalformedHeader(format!(
            "t={} is not an integer number of Unix seconds",
            echo(t_raw)
        ))
    })?;
    Ok(Header { t, v1 })
}

/// The lowercase hex HMAC-SHA256 of `"{t}.{raw_body}"` keyed with the whole secret.
fn expected_hex(secret: &str, t: i64, raw_body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail; fall back to an empty-key MAC rather
    // than panic (callers reject an empty secret before getting here).
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => HmacSha256::new(&Default::default()),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(raw_body);
    hex::encode(mac.finalize().into_bytes())
}

/// Builds a `Stripe-Signature` value `t={t},v1={hex}` for `raw_body`, as Stripe would: for
/// tests and mock senders.
pub fn sign_header(secret: &str, t: i64, raw_body: &[u8]) -> String {
    format!("t={t},v1={}", expected_hex(secret.trim(), t, raw_body))
}

/// Verifies a Stripe webhook at instant `now`, on the raw request bytes (before any JSON
/// parsing).
///
/// - `secret`: the endpoint's signing secret, `whsec_…`, used whole as the HMAC key
///   (surrounding whitespace is trimmed; empty is refused).
/// - `header`: the `Stripe-Signature` value, `None` when absent.
/// - `tolerance`: how old `t` may be ([`DEFAULT_TOLERANCE`] is the SDKs' 300 s). A request is
///   refused when `t < now - tolerance`; exactly `tolerance` old is still accepted. A zero
///   tolerance means `t` must not be in the past at all (unlike stripe-node's `verifyHeader`,
///   where 0 turns the check off).
///
/// Future timestamps are accepted, as in the SDKs, up to [`MAX_FUTURE_SKEW`] (one day) ahead.
///
/// Order of checks: secret, header present, header parsed (`t`), at least one `v1`, the
/// signature (every `v1` compared in constant time), then the timestamp. The timestamp comes
/// last, as in the SDKs, so [`StripeSignatureError::TooOld`] and
/// [`StripeSignatureError::TooFarInFuture`] only ever describe authentic requests.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    raw_body: &[u8],
    now: jiff::Timestamp,
    tolerance: Duration,
) -> Result<(), StripeSignatureError> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(StripeSignatureError::NoSecret);
    }
    let header = header
        .filter(|h| !h.trim().is_empty())
        .ok_or(StripeSignatureError::MissingHeader)?;
    let parsed = parse_header(header)?;
    if parsed.v1.is_empty() {
        return Err(StripeSignatureError::NoV1Signatures);
    }

    let expected = expected_hex(secret, parsed.t, raw_body);
    let matched = parsed.v1.iter().fold(Choice::from(0), |acc, sig| {
        acc | expected.as_bytes().ct_eq(sig.as_bytes())
    });
    if !bool::from(matched) {
        return Err(StripeSignatureError::Mismatch {
            tried: parsed.v1.len(),
        });
    }

    let age = now.as_second().saturating_sub(parsed.t);
    let tol = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if age > tol {
        return Err(StripeSignatureError::TooOld {
            age_secs: age,
            over_secs: age.saturating_sub(tol),
            tolerance_secs: tolerance.as_secs(),
        });
    }
    let max_ahead = i64::try_from(MAX_FUTURE_SKEW.as_secs()).unwrap_or(i64::MAX);
    let ahead = age.saturating_neg();
    if ahead > max_ahead {
        return Err(StripeSignatureError::TooFarInFuture {
            ahead_secs: ahead,
            max_secs: MAX_FUTURE_SKEW.as_secs(),
        });
    }
    Ok(())
}
