//! Per-route request-body limits and the body read timeout.
//!
//! A body announced larger than the route's limit is refused with 413 before a byte of it is
//! read; a chunked body is cut at the limit by the extractors ([`DefaultBodyLimit`]). A body
//! that does not arrive in full within the timeout gets 408, and the connection is closed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Sleep;

use super::ApiError;

/// The body rules of one group of routes.
#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    /// Largest accepted body, in bytes.
    pub limit: usize,
    /// Longest time to receive the whole body.
    pub timeout: Duration,
}

impl BodyRules {
    /// Applies these rules to every route of `router`.
    pub fn apply<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        router
            .layer(axum::middleware::from_fn_with_state(self, guard_body))
            .layer(DefaultBodyLimit::max(self.limit))
    }
}

fn closing(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Refuses an announced oversize body, and times the body out.
async fn guard_body(State(rules): State<BodyRules>, req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > rules.limit as u64) {
        return closing(
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body is larger than the {} bytes this endpoint accepts; send a smaller body",
                    rules.limit
                ),
            )
            .into_response(),
        );
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&timed_out);
    let req = req.map(|inner| {
        Body::new(TimedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(rules.timeout)),
            timed_out: flag,
        })
    });
    let resp = next.run(req).await;
    if timed_out.load(Ordering::Acquire) {
        tracing::info!(
            timeout_ms = rules.timeout.as_millis(),
            "closed a connection whose request body was too slow"
        );
        return closing(
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} ms; send it again at full speed",
                    rules.timeout.as_millis()
                ),
            )
            .into_response(),
        );
    }
    resp
}

/// A request body that fails once its deadline passes.
struct TimedBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request body timeout",
            )))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The body rules of a streamed upload (the bulk import): no overall deadline, since a large
/// upload may take long, but a body that stops sending for `idle` fails, and a body past
/// `limit` bytes fails. The handler reads the failure from the body stream (its message says
/// which rule broke); an announced oversize body is still refused with 413 up front.
#[derive(Debug, Clone, Copy)]
pub struct StreamRules {
    /// Largest accepted body, in bytes.
    pub limit: u64,
    /// Longest wait for the next piece of the body.
    pub idle: Duration,
}

impl StreamRules {
    /// Applies these rules to every route of `router`.
    pub fn apply<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        router.layer(axum::middleware::from_fn_with_state(self, guard_stream))
    }
}

/// Refuses an announced oversize body, and wraps the body in [`StreamedBody`].
async fn guard_stream(State(rules): State<StreamRules>, req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > rules.limit) {
        return closing(
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body is larger than the {} bytes this endpoint accepts ([http] import_body_limit_bytes); split the file",
                    rules.limit
                ),
            )
            .into_response(),
        );
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&timed_out);
    let req = req.map(|inner| {
        Body::new(StreamedBody {
            inner,
            rules,
            received: 0,
            deadline: Box::pin(tokio::time::sleep(rules.idle)),
            timed_out: flag,
        })
    });
    let resp = next.run(req).await;
    // Only before the handler answered (while it reads a CSV header, say): a streamed answer
    // reports a later failure in its own body.
    if timed_out.load(Ordering::Acquire) {
        return closing(
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "no part of the request body arrived for {} ms; send it again without pausing",
                    rules.idle.as_millis()
                ),
            )
            .into_response(),
        );
    }
    resp
}

/// A request body that fails after `rules.idle` without a frame, or past `rules.limit` bytes.
struct StreamedBody {
    inner: Body,
    rules: StreamRules,
    received: u64,
    deadline: Pin<Box<Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for StreamedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if let Some(Ok(f)) = &frame {
                let n = f.data_ref().map_or(0, |d| d.len() as u64);
                this.received = this.received.saturating_add(n);
                if this.received > this.rules.limit {
                    return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::other(
                        format!(
                            "the request body is larger than the {} bytes this endpoint accepts ([http] import_body_limit_bytes); split the file",
                            this.rules.limit
                        ),
                    )))));
                }
                let next =
                    tokio::time::Instant::from_std(crate::clock::monotonic_now()) + this.rules.idle;
                this.deadline.as_mut().reset(next);
            }
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no part of the request body arrived for {} ms ([http] body_timeout_ms); the upload was cut",
                    this.rules.idle.as_millis()
                ),
            )))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
