//! HTTP helpers shared by the HTTP adapters (webhook, Twilio, WhatsApp) and payment-provider
//! clients: the one client builder, `Retry-After` parsing and words for transport failures.
//! A leaf: it knows no adapter.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::build::ChannelBuildError;

/// Longest `Retry-After` honoured; longer requests are capped to this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How plazo talks to every provider API: `timeout` for connecting and for the whole request,
/// idle connections kept 90 s, redirects never followed (a redirect is a failure),
/// `User-Agent: plazo/VERSION`.
pub(crate) fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("plazo/", env!("CARGO_PKG_VERSION")))
}

/// The HTTP client every HTTP adapter uses ([`client_builder`]). `field` names the setting
/// blamed if it cannot be built.
pub(crate) fn http_client(
    channel: &str,
    field: &'static str,
    timeout: Duration,
) -> Result<reqwest::Client, ChannelBuildError> {
    client_builder(timeout).build().map_err(|e| {
        ChannelBuildError::invalid(channel, field, format!("cannot build HTTP client: {e}"))
    })
}

/// What happened to a request that got no HTTP answer, in words: `timed out`, `connection
/// failed` or `request failed`.
pub(crate) fn transport_failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

/// Parses `Retry-After` as delay-seconds or an HTTP date (relative to `now`), capped at 24 h.
pub(crate) fn retry_after(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
        Duration::try_from(when.duration_since(now)).unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parsing() {
        let now: jiff::Timestamp = "2015-10-21T07:27:00Z".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(60)));
        h.insert(RETRY_AFTER, "999999999".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }
}
