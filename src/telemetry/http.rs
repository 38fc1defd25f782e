//! The HTTP layer that counts requests by route template and status, and times them.

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::Telemetry;

/// Route label of a request that matched no route (the 404 fallback): never the raw path, so
/// scanners cannot grow the label set.
pub const UNMATCHED: &str = "unmatched";

/// Middleware: answers the request, then counts it under its matched route template
/// (`/v1/invoices/{id}`, never the raw path), method and final status, and records how long
/// the answer took.
pub async fn track_requests(State(t): State<Telemetry>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let started = crate::clock::monotonic_now();
    let resp = next.run(req).await;
    let secs = crate::clock::elapsed_since(started).as_secs_f64();
    t.http_request(&route, method, resp.status().as_u16(), secs);
    resp
}

/// The method label: the standard methods by name, anything else `other` (a client can send
/// any token as a method; the label set stays bounded).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::TRACE), "other");
    }
}
