//! URL checks shared by the config validators (`validate`, `events`). A leaf: it imports
//! neither.

/// Whether an `http://` or `https://` URL with a host.
pub(super) fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url.trim_end_matches('/'))
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}
