//! `POST /v1/import/clients` and `POST /v1/import/invoices`: the bulk import (see
//! [`crate::import`]).
//!
//! The body is read as it arrives by a reader task (lines, rows, checks, batches of
//! [`BATCH_ROWS`], or fewer when the upload pauses) and stored by an applier task, which keeps
//! a few batches in flight and streams each row's result, in order, once its batch is
//! durable. A header problem of a CSV upload is answered 422 before any row is stored; any
//! later problem with the upload itself (cut, too large, too slow) ends the answer with an
//! `{"error": ...}` line before the summary.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::sync::mpsc;

use super::{ApiError, AppState};
use crate::import::{
    BATCH_ROWS, CsvHeader, Format, Kind, Line, LineSplitter, MAX_LINE_BYTES, Pending, RowReader,
    Summary, apply_batch,
};

/// Batches stored but not yet answered (their durable waits overlap).
const IN_FLIGHT: usize = 4;

/// `POST /v1/import/clients`.
pub async fn import_clients(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    import(st, Kind::Clients, &headers, body).await
}

/// `POST /v1/import/invoices`.
pub async fn import_invoices(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    import(st, Kind::Invoices, &headers, body).await
}

type Chunks = futures::stream::BoxStream<'static, Result<Bytes, axum::Error>>;

/// What the reader hands the applier.
enum Work {
    /// Rows to store, in upload order.
    Batch(Vec<Pending>),
    /// The upload broke off: why.
    Failed(String),
}

async fn import(
    st: AppState,
    kind: Kind,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let format = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Format::from_content_type)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "send the {} as application/x-ndjson (one JSON object a line) or text/csv (a header row, then one row a line)",
                    kind.name()
                ),
            )
        })?;
    let mut chunks: Chunks = body.into_data_stream().boxed();
    let mut splitter = LineSplitter::new(MAX_LINE_BYTES);
    let mut lines = Vec::new();
    let header = match format {
        Format::Ndjson => None,
        Format::Csv => Some(read_header(kind, &mut chunks, &mut splitter, &mut lines).await?),
    };
    let policy = st.policy.current();
    let reader = RowReader::new(kind, header, Arc::clone(&policy));
    let (work_tx, work_rx) = mpsc::channel::<Work>(2);
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(read_rows(
        st.clone(),
        reader,
        chunks,
        splitter,
        lines,
        work_tx,
    ));
    tokio::spawn(apply_rows(st, kind, work_rx, out_tx));
    let stream = futures::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}

/// Reads up to the end of line 1 and parses it as the CSV header; lines after it that came in
/// the same chunk are left in `lines`.
async fn read_header(
    kind: Kind,
    chunks: &mut Chunks,
    splitter: &mut LineSplitter,
    lines: &mut Vec<Line>,
) -> Result<CsvHeader, ApiError> {
    let invalid = |message: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_header", message)
    };
    while lines.is_empty() {
        match chunks.next().await {
            Some(Ok(chunk)) => splitter.push(&chunk, lines),
            Some(Err(e)) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    format!("the request body could not be read: {e}"),
                ));
            }
            None => {
                splitter.finish(lines);
                break;
            }
        }
    }
    if lines.is_empty() {
        return Err(invalid(format!(
            "the upload is empty; a CSV file starts with a header row naming its columns: {}",
            crate::import::known_columns(kind)
        )));
    }
    let first = lines.remove(0);
    match first {
        Line::Text { bytes, .. } if !bytes.iter().all(u8::is_ascii_whitespace) => {
            CsvHeader::parse(kind, &bytes).map_err(|e| invalid(e.to_string()))
        }
        Line::Text { .. } => Err(invalid(format!(
            "line 1 is empty; a CSV file starts with a header row naming its columns: {}",
            crate::import::known_columns(kind)
        ))),
        Line::TooLong { .. } => Err(invalid(format!(
            "line 1 (the header) is longer than {MAX_LINE_BYTES} bytes"
        ))),
    }
}

/// The reader task: the rest of the body into batches of checked rows. A batch is handed
/// over when full, or as soon as the upload pauses (so a slow upload is answered as it goes).
async fn read_rows(
    st: AppState,
    mut reader: RowReader,
    mut chunks: Chunks,
    mut splitter: LineSplitter,
    mut lines: Vec<Line>,
    work: mpsc::Sender<Work>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH_ROWS);
    loop {
        let now = st.clock.now();
        for line in lines.drain(..) {
            if let Some(row) = reader.row(line, now) {
                batch.push(row);
                if batch.len() >= BATCH_ROWS {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                    if work.send(Work::Batch(full)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let next = match chunks.next().now_or_never() {
            Some(item) => item,
            None => {
                if !batch.is_empty() {
                    let part = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                    if work.send(Work::Batch(part)).await.is_err() {
                        return;
                    }
                }
                chunks.next().await
            }
        };
        match next {
            Some(Ok(chunk)) => splitter.push(&chunk, &mut lines),
            Some(Err(e)) => {
                if !batch.is_empty() {
                    let _ = work.send(Work::Batch(std::mem::take(&mut batch))).await;
                }
                let why = format!(
                    "the upload broke off before its end (after line {}): {e}; rows answered above are stored, send the file again to import the rest",
                    splitter.next_line().saturating_sub(1)
                );
                let _ = work.send(Work::Failed(why)).await;
                return;
            }
            None => {
                splitter.finish(&mut lines);
                let now = st.clock.now();
                batch.extend(lines.drain(..).filter_map(|l| reader.row(l, now)));
                if !batch.is_empty() {
                    let _ = work.send(Work::Batch(batch)).await;
                }
                return;
            }
        }
    }
}

/// The applier task: stores each batch, keeps up to [`IN_FLIGHT`] of them waiting for their
/// durable flush, and streams their results in order, then the summary.
async fn apply_rows(
    st: AppState,
    kind: Kind,
    mut work: mpsc::Receiver<Work>,
    out: mpsc::Sender<Bytes>,
) {
    let mut summary = Summary::default();
    let mut failure = None;
    let mut in_flight = FuturesOrdered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            biased;
            Some((results, earliest)) = in_flight.next(), if !in_flight.is_empty() => {
                let results: Vec<crate::import::RowResult> = results;
                if let Some(next) = earliest {
                    st.wake.notify_if_due_before(next, st.clock.now());
                }
                let mut buf = Vec::with_capacity(results.len() * 64);
                for r in &results {
                    summary.add(r);
                    r.write_json_line(&mut buf);
                }
                if out.send(Bytes::from(buf)).await.is_err() {
                    // The client went away; rows already stored stay stored.
                    tracing::info!(kind = kind.name(), "import answer dropped by the client");
                    return;
                }
            }
            next = work.recv(), if open && in_flight.len() < IN_FLIGHT => match next {
                Some(Work::Batch(rows)) => {
                    let store = st.store.clone();
                    let policy = st.policy.current();
                    let now = st.clock.now();
                    in_flight.push_back(async move { apply_batch(&store, policy, now, rows).await });
                }
                Some(Work::Failed(why)) => failure = Some(why),
                None => open = false,
            },
        }
    }
    let mut buf = Vec::new();
    if let Some(why) = failure {
        let line = serde_json::json!({ "error": { "code": "upload_failed", "message": why } });
        if serde_json::to_writer(&mut buf, &line).is_ok() {
            buf.push(b'\n');
        }
    }
    summary.write_json_line(&mut buf);
    tracing::info!(
        kind = kind.name(),
        rows = summary.rows,
        created = summary.created,
        updated = summary.updated,
        unchanged = summary.unchanged,
        errors = summary.errors,
        "import done"
    );
    let _ = out.send(Bytes::from(buf)).await;
}
