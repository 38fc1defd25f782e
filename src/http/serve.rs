//! The HTTP server: an accept loop bounded by a connection limit, hyper's HTTP/1 connections
//! with a header-read timeout (which also closes idle keep-alive connections), and a graceful
//! shutdown that lets requests in progress finish.
//!
//! `axum::serve` exposes neither a header timeout nor a connection limit, hence this loop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::HttpConfig;

/// Longest wait, at shutdown, for requests in progress.
const DRAIN: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` turns true, then stops accepting and waits (up
/// to ten seconds) for the requests in progress.
///
/// At most `cfg.max_connections` connections are served at once: while the limit is reached
/// nothing is accepted and new clients wait in the kernel's listen backlog. A connection that
/// does not deliver a complete request head within `cfg.header_timeout_ms` (after opening or
/// after its previous response) is closed, freeing its slot.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &HttpConfig,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout())
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection; retrying");
                drop(permit);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in progress after the shutdown drain; closing them");
    }
    Ok(())
}
