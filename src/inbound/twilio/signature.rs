//! `X-Twilio-Signature`: HMAC-SHA1, keyed with the account's auth token, over the URL Twilio
//! called followed by the POST fields sorted by name (and by value within a name, each distinct
//! pair once) as `name + value`; base64 (standard, padded).
//!
//! Twilio is inconsistent about ports, so, like its SDKs, [`verify`] accepts the signature
//! of the URL as given, with its port removed, or with the scheme's default port (`:443`,
//! `:80`) added. Comparisons are constant-time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// The request header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// Why a Twilio webhook was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioSignatureError {
    /// No auth token is configured to check signatures with.
    #[error(
        "no Twilio auth token to check X-Twilio-Signature with: configure the account's auth token"
    )]
    NoToken,
    /// The request has no (or an empty) `X-Twilio-Signature` header.
    #[error(
        "X-Twilio-Signature header is missing: the request did not come from Twilio, or a proxy \
         in front of plazo dropped the header"
    )]
    MissingHeader,
    /// The signature does not match the URL and fields.
    #[error(
        "X-Twilio-Signature does not match: check that public_url is the exact URL Twilio calls, \
         including scheme, host, port, path and query string (rebuild it behind a proxy), and that \
         the token is the account's current primary auth token"
    )]
    Mismatch,
    /// [`verify_json`] was given a URL without `bodySHA256`.
    #[error(
        "the URL has no bodySHA256 query parameter: Twilio adds it to webhooks with a JSON body; \
         pass the full URL Twilio called, query string included (form webhooks use verify)"
    )]
    MissingBodyHash,
    /// The body's SHA-256 differs from the URL's `bodySHA256`.
    #[error(
        "the body's SHA-256 does not match the bodySHA256 query parameter: the body was altered, \
         or was not passed as the raw bytes received"
    )]
    BodyHashMismatch,
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    // HMAC accepts keys of any length, so this cannot fail; an empty-key MAC would never
    // verify a real signature.
    let mut mac = match HmacSha1::new_from_slice(auth_token.as_bytes()) {
        Ok(m) => m,
        Err(_) => HmacSha1::new(&Default::default()),
    };
    mac.update(url.as_bytes());
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // By name, then by value; `str` order is code-point order, as in Twilio's SDKs.
    pairs.sort_unstable();
    pairs.dedup();
    for (k, v) in pairs {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// The `X-Twilio-Signature` Twilio sends for a request to `url` with the POST fields `params`
/// (pass no fields for a GET or a JSON-body webhook).
pub fn expected_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Where the authority (`user@host:port`) of `url` starts and ends, and its scheme.
fn authority(url: &str) -> Option<(&str, usize, usize)> {
    let scheme_end = url.find("://")?;
    let start = scheme_end + 3;
    let len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    Some((&url[..scheme_end], start, start + len))
}

/// Index in `url` where the explicit `:port` of the authority `start..end` begins, if any.
fn port_start(url: &str, start: usize, end: usize) -> Option<usize> {
    let auth = &url[start..end];
    let host_start = auth.rfind('@').map_or(0, |i| i + 1);
    let host = &auth[host_start..];
    let colon = if host.starts_with('[') {
        host.find("]:").map(|i| i + 1)
    } else {
        host.rfind(':')
    }?;
    host[colon + 1..]
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then_some(start + host_start + colon)
}

/// `url`, then `url` with the scheme's default port added (when it has none) or its port
/// removed (when it has one).
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    if let Some((scheme, start, end)) = authority(url) {
        match port_start(url, start, end) {
            Some(p) => out.push(format!("{}{}", &url[..p], &url[end..])),
            None => {
                let port = if scheme.eq_ignore_ascii_case("https") {
                    Some("443")
                } else if scheme.eq_ignore_ascii_case("http") {
                    Some("80")
                } else {
                    None
                };
                if let Some(port) = port {
                    out.push(format!("{}:{port}{}", &url[..end], &url[end..]));
                }
            }
        }
    }
    out
}

fn header_value(header: Option<&str>) -> Result<&str, TwilioSignatureError> {
    header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(TwilioSignatureError::MissingHeader)
}

/// True if `header` is the signature of `url` (or a port variant of it) with `params`.
fn matches(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let mut ok = subtle::Choice::from(0);
    for u in url_variants(url) {
        ok |= expected_signature(auth_token, &u, params)
            .as_bytes()
            .ct_eq(header.as_bytes());
    }
    ok.into()
}

/// Checks the `X-Twilio-Signature` `header` of a form webhook: `url` is the full URL Twilio
/// called (query string included) and `params` every POST field received.
pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), TwilioSignatureError> {
    if auth_token.is_empty() {
        return Err(TwilioSignatureError::NoToken);
    }
    let header = header_value(header)?;
    if matches(auth_token, url, params, header) {
        Ok(())
    } else {
        Err(TwilioSignatureError::Mismatch)
    }
}

/// Checks a webhook with a JSON body: the signature covers only `url` (which carries
/// `bodySHA256=<hex SHA-256 of the body>`), and the raw `body` must hash to that value.
pub fn verify_json(
    auth_token: &str,
    url: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), TwilioSignatureError> {
    if auth_token.is_empty() {
        return Err(TwilioSignatureError::NoToken);
    }
    let header = header_value(header)?;
    let query = url
        .split_once('?')
        .map(|(_, q)| q.split_once('#').map_or(q, |(q, _)| q))
        .unwrap_or("");
    let claimed = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.to_ascii_lowercase())
        .ok_or(TwilioSignatureError::MissingBodyHash)?;
    let signed = matches(auth_token, url, &[], header);
    let actual = hex::encode(Sha256::digest(body));
    let body_ok: bool = actual.as_bytes().ct_eq(claimed.as_bytes()).into();
    if !signed {
        Err(TwilioSignatureError::Mismatch)
    } else if !body_ok {
        Err(TwilioSignatureError::BodyHashMismatch)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vector {
        auth_token: String,
        url: String,
        #[serde(default)]
        params: Vec<(String, String)>,
        #[serde(default)]
        body: Option<String>,
        expected: String,
        #[serde(default)]
        expected_with_port_443: Option<String>,
    }

    fn vectors() -> Vec<Vector> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/signature_test_vectors.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut all: serde_json::Value = serde_json::from_str(&text).unwrap();
        let vs: Vec<Vector> = serde_json::from_value(all["twilio"].take()).unwrap();
        assert_eq!(vs.len(), 3);
        vs
    }

    fn port_443(url: &str) -> String {
        url.replacen("mycompany.com", "mycompany.com:443", 1)
    }

    #[test]
    fn official_vector_form_params() {
        let v = &vectors()[0];
        assert_eq!(
            expected_signature(&v.auth_token, &v.url, &v.params),
            v.expected
        );
        verify(&v.auth_token, &v.url, &v.params, Some(&v.expected)).unwrap();
        // The string signed, as providers.md spells it out.
        let mut m = HmacSha1::new_from_slice(b"12345").unwrap();
        m.update(
            b"https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309\
              Digits1234From+14158675309To+18005551212",
        );
        assert_eq!(STANDARD.encode(m.finalize().into_bytes()), v.expected);
    }

    #[test]
    fn official_vector_with_port_443() {
        let v = &vectors()[0];
        let with_port = v.expected_with_port_443.clone().unwrap();
        let url443 = port_443(&v.url);
        assert_eq!(
            expected_signature(&v.auth_token, &url443, &v.params),
            with_port
        );
        // Twilio may sign with the port while we know the URL without it, and the reverse.
        verify(&v.auth_token, &v.url, &v.params, Some(&with_port)).unwrap();
        verify(&v.auth_token, &url443, &v.params, Some(&v.expected)).unwrap();
        verify(&v.auth_token, &url443, &v.params, Some(&with_port)).unwrap();
        // A port that is neither absent nor the default is not papered over.
        let url8443 = v.url.replacen("mycompany.com", "mycompany.com:8443", 1);
        assert_eq!(
            verify(&v.auth_token, &url8443, &v.params, Some(&with_port)),
            Err(TwilioSignatureError::Mismatch)
        );
    }

    #[test]
    fn official_vector_multi_value_params() {
        let v = &vectors()[1];
        assert_eq!(
            expected_signature(&v.auth_token, &v.url, &v.params),
            v.expected
        );
        verify(&v.auth_token, &v.url, &v.params, Some(&v.expected)).unwrap();
        // Order of the fields as received does not matter.
        let mut reversed = v.params.clone();
        reversed.reverse();
        verify(&v.auth_token, &v.url, &reversed, Some(&v.expected)).unwrap();
        // A value changed among the duplicates does.
        let mut changed = v.params.clone();
        changed[4].1 = "9999".to_owned();
        assert_eq!(
            verify(&v.auth_token, &v.url, &changed, Some(&v.expected)),
            Err(TwilioSignatureError::Mismatch)
        );
    }

    #[test]
    fn official_vector_json_body_sha256() {
        let v = &vectors()[2];
        let body = v.body.clone().unwrap();
        assert_eq!(expected_signature(&v.auth_token, &v.url, &[]), v.expected);
        verify_json(&v.auth_token, &v.url, body.as_bytes(), Some(&v.expected)).unwrap();
        verify_json(
            &v.auth_token,
            &port_443(&v.url),
            body.as_bytes(),
            Some(&v.expected),
        )
        .unwrap();
        // Altered body: the signature still matches the URL, the hash does not.
        let altered = body.replace("value", "valuf");
        assert_eq!(
            verify_json(&v.auth_token, &v.url, altered.as_bytes(), Some(&v.expected)),
            Err(TwilioSignatureError::BodyHashMismatch)
        );
        // Hash of the altered body put in the URL: now the signature fails.
        let url = format!(
            "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={}",
            hex::encode(Sha256::digest(altered.as_bytes()))
        );
        assert_eq!(
            verify_json(&v.auth_token, &url, altered.as_bytes(), Some(&v.expected)),
            Err(TwilioSignatureError::Mismatch)
        );
        let e = verify_json(
            &v.auth_token,
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            body.as_bytes(),
            Some(&v.expected),
        )
        .unwrap_err();
        assert_eq!(e, TwilioSignatureError::MissingBodyHash);
        assert!(e.to_string().contains("bodySHA256"), "{e}");
    }

    #[test]
    fn tampered_param_is_rejected() {
        let v = &vectors()[0];
        let mut params = v.params.clone();
        params[1].1 = "1235".to_owned();
        assert_eq!(
            verify(&v.auth_token, &v.url, &params, Some(&v.expected)),
            Err(TwilioSignatureError::Mismatch)
        );
        // An extra field Twilio did not send.
        let mut params = v.params.clone();
        params.push(("Body".to_owned(), "STOP".to_owned()));
        assert_eq!(
            verify(&v.auth_token, &v.url, &params, Some(&v.expected)),
            Err(TwilioSignatureError::Mismatch)
        );
        // A field dropped.
        let params = &v.params[1..];
        assert_eq!(
            verify(&v.auth_token, &v.url, params, Some(&v.expected)),
            Err(TwilioSignatureError::Mismatch)
        );
        // A tampered header.
        let bad = v.expected.replacen('R', "S", 1);
        assert_eq!(
            verify(&v.auth_token, &v.url, &v.params, Some(&bad)),
            Err(TwilioSignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_header_is_rejected() {
        let v = &vectors()[0];
        for h in [None, Some(""), Some("   ")] {
            let e = verify(&v.auth_token, &v.url, &v.params, h).unwrap_err();
            assert_eq!(e, TwilioSignatureError::MissingHeader);
            assert!(e.to_string().contains("X-Twilio-Signature"), "{e}");
        }
        let body = vectors()[2].body.clone().unwrap();
        assert_eq!(
            verify_json(&v.auth_token, &vectors()[2].url, body.as_bytes(), None),
            Err(TwilioSignatureError::MissingHeader)
        );
        // Surrounding whitespace in the header is tolerated.
        let padded = format!(" {} ", v.expected);
        verify(&v.auth_token, &v.url, &v.params, Some(&padded)).unwrap();
    }

    #[test]
    fn wrong_url_is_rejected() {
        let v = &vectors()[0];
        for url in [
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            "https://mycompany.com/myapp.php",
            "https://mycompany.com/other.php?foo=1&bar=2",
            "https://www.mycompany.com/myapp.php?foo=1&bar=2",
        ] {
            let e = verify(&v.auth_token, url, &v.params, Some(&v.expected)).unwrap_err();
            assert_eq!(e, TwilioSignatureError::Mismatch, "{url}");
            assert!(e.to_string().contains("public_url"), "{e}");
        }
    }

    #[test]
    fn wrong_token_is_rejected() {
        let v = &vectors()[0];
        assert_eq!(
            verify("54321", &v.url, &v.params, Some(&v.expected)),
            Err(TwilioSignatureError::Mismatch)
        );
        assert_eq!(
            verify("", &v.url, &v.params, Some(&v.expected)),
            Err(TwilioSignatureError::NoToken)
        );
        let j = &vectors()[2];
        assert_eq!(
            verify_json(
                "54321",
                &j.url,
                j.body.clone().unwrap().as_bytes(),
                Some(&j.expected)
            ),
            Err(TwilioSignatureError::Mismatch)
        );
    }

    #[test]
    fn url_port_variants() {
        assert_eq!(
            url_variants("https://a.example/x?y=1"),
            ["https://a.example/x?y=1", "https://a.example:443/x?y=1"]
        );
        assert_eq!(
            url_variants("http://a.example"),
            ["http://a.example", "http://a.example:80"]
        );
        assert_eq!(
            url_variants("https://u:p@a.example:443/x"),
            ["https://u:p@a.example:443/x", "https://u:p@a.example/x"]
        );
        assert_eq!(
            url_variants("https://[::1]:8443/x"),
            ["https://[::1]:8443/x", "https://[::1]/x"]
        );
        assert_eq!(
            url_variants("https://[::1]/x"),
            ["https://[::1]/x", "https://[::1]:443/x"]
        );
        assert_eq!(url_variants("not a url"), ["not a url"]);
    }
}
