//! [Standard Webhooks](https://www.standardwebhooks.com/) (Svix) symmetric signatures, scheme `v1`.
//!
//! The signed content is `"{webhook-id}.{webhook-timestamp}.{raw body}"`, the MAC is
//! HMAC-SHA256 keyed with the base64-decoded secret (after its `whsec_` prefix), and the
//! `webhook-signature` header carries a space-separated list of `version,base64` items.
//! Only `v1` items are considered; each is compared in constant time.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of a Standard Webhooks symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Header carrying the message id (stable across retries).
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the Unix timestamp (seconds) of this delivery attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The tolerance the specification recommends, in both directions: 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Shortest secret the specification allows, in bytes.
const MIN_SECRET_BYTES: usize = 24;
/// Longest secret the specification allows, in bytes.
const MAX_SECRET_BYTES: usize = 64;

/// Why a `whsec_...` secret was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret does not start with `whsec_`.
    #[error(
        "webhook secret must start with \"whsec_\" followed by base64 (as the sender shows it)"
    )]
    MissingPrefix,
    /// The part after `whsec_` is not standard, padded base64.
    #[error("webhook secret after \"whsec_\" is not valid standard base64: {0}")]
    BadBase64(String),
    /// The decoded key has a length outside 24–64 bytes.
    #[error("webhook secret decodes to {0} bytes; Standard Webhooks secrets are 24 to 64 bytes")]
    BadLength(usize),
}

/// A Standard Webhooks symmetric secret (`whsec_` + base64 of 24–64 random bytes).
///
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`; surrounding whitespace (e.g. a trailing newline from a file) is
    /// ignored, anything else malformed is an error.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let b64 = s
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(b64)
            .map_err(|e| SecretError::BadBase64(e.to_string()))?;
        Self::from_key(key)
    }

    /// Wraps raw key bytes (24–64 bytes).
    pub fn from_key(key: Vec<u8>) -> Result<Self, SecretError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::BadLength(key.len()));
        }
        Ok(WebhookSecret { key })
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail; fall back to an empty-key MAC
        // rather than panic (it would never verify anything).
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => HmacSha256::new(&Default::default()),
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;
    fn from_str(s: &str) -> Result<Self, SecretError> {
        Self::parse(s)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Signs one message: returns the `webhook-signature` value `v1,<base64>`.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.mac(msg_id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The three Standard Webhooks header values of a request, as strings (absent = `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderLookup<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
}

impl<'a> HeaderLookup<'a> {
    /// Reads `webhook-id`, `webhook-timestamp` and `webhook-signature` from an HTTP header map,
    /// falling back to the Svix-branded `svix-*` names. Non-UTF-8 values count as absent.
    pub fn from_headers(headers: &'a axum::http::HeaderMap) -> Self {
        let get = |name: &str, alt: &str| {
            headers
                .get(name)
                .or_else(|| headers.get(alt))
                .and_then(|v| v.to_str().ok())
        };
        HeaderLookup {
            id: get(HEADER_ID, "svix-id"),
            timestamp: get(HEADER_TIMESTAMP, "svix-timestamp"),
            signature: get(HEADER_SIGNATURE, "svix-signature"),
        }
    }
}

/// Why a webhook was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is missing (or empty).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer number of Unix seconds.
    #[error("webhook-timestamp {0:?} is not an integer number of Unix seconds")]
    BadTimestamp(String),
    /// The timestamp is older than the tolerance allows (replay, or a badly skewed clock).
    #[error(
        "webhook-timestamp is {age_secs} s in the past; at most {tolerance_secs} s is accepted \
         (replayed message or sender clock behind)"
    )]
    TooOld {
        /// How far in the past, in seconds.
        age_secs: i64,
        /// The tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance allows.
    #[error(
        "webhook-timestamp is {ahead_secs} s in the future; at most {tolerance_secs} s is accepted \
         (sender clock ahead)"
    )]
    TooNew {
        /// How far in the future, in seconds.
        ahead_secs: i64,
        /// The tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// No `v1` signature in the header matched the body (wrong secret, or altered body/id/ts).
    #[error(
        "no v1 signature in webhook-signature matches (wrong secret, or the body, id or \
         timestamp was altered)"
    )]
    NoMatch,
    /// The secret itself is malformed.
    #[error("bad webhook secret: {0}")]
    BadSecret(#[from] SecretError),
}

fn present<'a>(v: Option<&'a str>, name: &'static str) -> Result<&'a str, VerifyError> {
    v.filter(|s| !s.trim().is_empty())
        .ok_or(VerifyError::MissingHeader(name))
}

/// Verifies a Standard Webhooks request at instant `now`.
///
/// Checks, in order: headers present, timestamp an integer, timestamp within `tolerance` of
/// `now` in both directions, then every `v1,` item of the signature header (constant-time);
/// other versions (`v1a`, ...) are ignored.
pub fn verify(
    secret: &WebhookSecret,
    headers: &HeaderLookup<'_>,
    body: &[u8],
    now: jiff::Timestamp,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let id = present(headers.id, HEADER_ID)?;
    let ts_raw = present(headers.timestamp, HEADER_TIMESTAMP)?;
    let sigs = present(headers.signature, HEADER_SIGNATURE)?;

    let ts: i64 = ts_raw
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp(ts_raw.to_owned()))?;
    let tol = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let now_s = now.as_second();
    let diff = now_s.saturating_sub(ts);
    if diff > tol {
        return Err(VerifyError::TooOld {
            age_secs: diff,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    if diff < -tol {
        return Err(VerifyError::TooNew {
            ahead_secs: diff.saturating_neg(),
            tolerance_secs: tolerance.as_secs(),
        });
    }

    let mac = secret.mac(id, ts, body);
    let matched = sigs
        .split(' ')
        .filter_map(|item| item.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|tag| mac.clone().verify_slice(&tag).is_ok());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vector {
        secret: String,
        msg_id: String,
        timestamp: i64,
        payload: String,
        expected: String,
    }

    fn vectors() -> Vec<Vector> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/signature_test_vectors.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut all: serde_json::Value = serde_json::from_str(&text).unwrap();
        serde_json::from_value(all["standard_webhooks"].take()).unwrap()
    }

    fn at(ts: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(ts).unwrap()
    }

    fn lookup<'a>(v: &'a Vector, sig: &'a str, ts: &'a str) -> HeaderLookup<'a> {
        HeaderLookup {
            id: Some(&v.msg_id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn official_vectors_sign_and_verify() {
        let vs = vectors();
        assert_eq!(vs.len(), 2);
        for v in &vs {
            let secret = WebhookSecret::parse(&v.secret).unwrap();
            let sig = sign(&secret, &v.msg_id, v.timestamp, v.payload.as_bytes());
            assert_eq!(sig, v.expected);
            let ts = v.timestamp.to_string();
            verify(
                &secret,
                &lookup(v, &v.expected, &ts),
                v.payload.as_bytes(),
                at(v.timestamp),
                DEFAULT_TOLERANCE,
            )
            .unwrap();
        }
    }

    #[test]
    fn tampered_signature_and_body_are_rejected() {
        let v = &vectors()[0];
        let secret = WebhookSecret::parse(&v.secret).unwrap();
        let ts = v.timestamp.to_string();
        let now = at(v.timestamp);
        // The negative vector from providers.md: last character changed.
        let bad = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
        let err = verify(
            &secret,
            &lookup(v, bad, &ts),
            v.payload.as_bytes(),
            now,
            DEFAULT_TOLERANCE,
        );
        assert_eq!(err, Err(VerifyError::NoMatch));
        let err = verify(
            &secret,
            &lookup(v, &v.expected, &ts),
            b"{\"test\": 2432232315}",
            now,
            DEFAULT_TOLERANCE,
        );
        assert_eq!(err, Err(VerifyError::NoMatch));
        // Another message id with the same signature.
        let h = HeaderLookup {
            id: Some("msg_other"),
            ..lookup(v, &v.expected, &ts)
        };
        assert_eq!(
            verify(&secret, &h, v.payload.as_bytes(), now, DEFAULT_TOLERANCE),
            Err(VerifyError::NoMatch)
        );
        // A different secret.
        let other = WebhookSecret::parse(&vectors()[1].secret).unwrap();
        assert_eq!(
            verify(
                &other,
                &lookup(v, &v.expected, &ts),
                v.payload.as_bytes(),
                now,
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_rejected() {
        let v = &vectors()[0];
        let secret = WebhookSecret::parse(&v.secret).unwrap();
        let ts = v.timestamp.to_string();
        let body = v.payload.as_bytes();
        let h = lookup(v, &v.expected, &ts);
        // Exactly at the edge is fine in both directions.
        verify(&secret, &h, body, at(v.timestamp + 300), DEFAULT_TOLERANCE).unwrap();
        verify(&secret, &h, body, at(v.timestamp - 300), DEFAULT_TOLERANCE).unwrap();
        let err = verify(&secret, &h, body, at(v.timestamp + 301), DEFAULT_TOLERANCE).unwrap_err();
        assert_eq!(
            err,
            VerifyError::TooOld {
                age_secs: 301,
                tolerance_secs: 300
            }
        );
        assert!(err.to_string().contains("301 s in the past"), "{err}");
        let err = verify(&secret, &h, body, at(v.timestamp - 400), DEFAULT_TOLERANCE).unwrap_err();
        assert_eq!(
            err,
            VerifyError::TooNew {
                ahead_secs: 400,
                tolerance_secs: 300
            }
        );
    }

    #[test]
    fn multiple_signatures_one_valid() {
        let v = &vectors()[0];
        let secret = WebhookSecret::parse(&v.secret).unwrap();
        let ts = v.timestamp.to_string();
        let header = format!(
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA= v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== v2,abc {} v1,!!notbase64",
            v.expected
        );
        verify(
            &secret,
            &lookup(v, &header, &ts),
            v.payload.as_bytes(),
            at(v.timestamp),
            DEFAULT_TOLERANCE,
        )
        .unwrap();
        // Only non-v1 items carrying the right value: rejected.
        let only_other = v.expected.replacen("v1,", "v1a,", 1);
        assert_eq!(
            verify(
                &secret,
                &lookup(v, &only_other, &ts),
                v.payload.as_bytes(),
                at(v.timestamp),
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn missing_headers_and_bad_timestamp() {
        let v = &vectors()[0];
        let secret = WebhookSecret::parse(&v.secret).unwrap();
        let body = v.payload.as_bytes();
        let now = at(v.timestamp);
        let ts = v.timestamp.to_string();
        let full = lookup(v, &v.expected, &ts);
        for (h, name) in [
            (HeaderLookup { id: None, ..full }, HEADER_ID),
            (
                HeaderLookup {
                    timestamp: Some(""),
                    ..full
                },
                HEADER_TIMESTAMP,
            ),
            (
                HeaderLookup {
                    signature: None,
                    ..full
                },
                HEADER_SIGNATURE,
            ),
        ] {
            let err = verify(&secret, &h, body, now, DEFAULT_TOLERANCE).unwrap_err();
            assert_eq!(err, VerifyError::MissingHeader(name));
            assert!(err.to_string().contains(name));
        }
        let h = HeaderLookup {
            timestamp: Some("2021-02-25T15:02:10Z"),
            ..full
        };
        assert!(matches!(
            verify(&secret, &h, body, now, DEFAULT_TOLERANCE),
            Err(VerifyError::BadTimestamp(_))
        ));
    }

    #[test]
    fn secrets_are_parsed_strictly() {
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::MissingPrefix
        );
        assert!(matches!(
            WebhookSecret::parse("whsec_not*base64"),
            Err(SecretError::BadBase64(_))
        ));
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err(),
            SecretError::BadLength(5)
        );
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        assert_eq!(format!("{s:?}"), "WebhookSecret(<redacted>)");
        let e: VerifyError = SecretError::MissingPrefix.into();
        assert!(e.to_string().starts_with("bad webhook secret"));
    }

    #[test]
    fn header_lookup_reads_http_headers() {
        let mut map = axum::http::HeaderMap::new();
        map.insert("webhook-id", "msg_1".parse().unwrap());
        map.insert("svix-timestamp", "123".parse().unwrap());
        let h = HeaderLookup::from_headers(&map);
        assert_eq!(h.id, Some("msg_1"));
        assert_eq!(h.timestamp, Some("123"));
        assert_eq!(h.signature, None);
    }
}
