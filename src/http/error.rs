//! API errors as JSON: `{"error": {"code": "stable-string", "message": "what and how to fix"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::service::ServiceError;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ServiceError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ServiceError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ServiceError::Store(err) => {
                tracing::error!(error = %err, "storage error while serving a request");
                (StatusCode::INTERNAL_SERVER_ERROR, "storage")
            }
        };
        ApiError::new(status.0, status.1, e.to_string())
    }
}

/// Parses a JSON body into `T`, answering 400 with the position and reason on failure.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            "malformed_json"
        } else {
            "bad_request"
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("request body, line {} column {}: {e}", e.line(), e.column()),
        )
    })
}

/// The stable code and a fixing hint for an error status that a handler did not produce itself
/// (axum's rejections, the router's 405, body limits, timeouts).
fn code_for(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("no_route", "no such endpoint; see the README for the API"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not accept that method; the Allow header lists the ones it does",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than this endpoint accepts; send a smaller body",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body with the content type this endpoint expects",
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "request_timeout",
            "the request was not received in time; send it again at full speed",
        ),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "retry later"),
        s if s.is_server_error() => ("internal", "retry the request"),
        _ => (
            "bad_request",
            "the request is malformed; check the path, query and body",
        ),
    }
}

/// Largest error text kept from a rejection (axum's are one short line).
const REJECTION_TEXT_LIMIT: usize = 2048;

/// Response middleware: every error answer whose body is not already JSON (or an HTML page
/// meant for a person, like the unsubscribe pages) is rewritten as the documented
/// `{"error": {"code", "message"}}`, keeping the status and headers (such as `Allow`). This
/// covers axum's extractor rejections (bad percent-encoding in a path, a bad query string, a
/// body over the limit), the router's 404 and 405, and timeouts.
pub async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let content_type = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, REJECTION_TEXT_LIMIT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, hint) = code_for(status);
    let message = if text.is_empty() {
        hint.to_owned()
    } else {
        format!("{text}; {hint}")
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    let rebuilt = ApiError {
        status,
        code,
        message,
    }
    .into_response();
    let (new_parts, new_body) = rebuilt.into_parts();
    parts.headers.extend(new_parts.headers);
    Response::from_parts(parts, new_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(r: Response) -> serde_json::Value {
        let b = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    #[tokio::test]
    async fn a_plain_text_rejection_becomes_the_json_envelope() {
        let plain = (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
        let r = json_errors(plain).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        let v = body_json(r).await;
        assert_eq!(v["error"]["code"], "method_not_allowed");

        let plain = (StatusCode::BAD_REQUEST, "Invalid URL: bad escape").into_response();
        let v = body_json(json_errors(plain).await).await;
        assert_eq!(v["error"]["code"], "bad_request");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("bad escape")
        );
    }

    #[tokio::test]
    async fn json_errors_html_pages_and_successes_pass_unchanged() {
        let ok = (StatusCode::OK, "fine").into_response();
        let r = json_errors(ok).await;
        assert_eq!(r.status(), StatusCode::OK);
        let b = axum::body::to_bytes(r.into_body(), 100).await.unwrap();
        assert_eq!(&b[..], b"fine");

        let api = ApiError::new(StatusCode::CONFLICT, "conflict", "x").into_response();
        let v = body_json(json_errors(api).await).await;
        assert_eq!(v["error"]["code"], "conflict");
    }
}
