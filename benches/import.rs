//! Bulk import throughput: the daemon in-process (`plazo::daemon::start`, real clock, fresh data
//! dir, port 0) receives `IMPORT_CLIENTS` (10000) clients, then `IMPORT_N` (100000) invoices
//! (COP, due within the next year, one reminder planned each) on `POST /v1/import/*`, as CSV
//! (`IMPORT_FORMAT=csv`, default) or NDJSON (`ndjson`), each upload streamed in 64 KiB chunks
//! by a reqwest client on its own 1-thread runtime; the daemon runs on 2 worker threads. The
//! time is from the first byte sent to the summary line received (every row durable); it
//! prints rows/s and checks the summary (every row created, no error).
//!
//! Run: `cargo bench --bench import`; see BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use plazo::clock::SystemClock;
use plazo::config::load_daemon_config;

fn rt(threads: usize, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

/// The rows of an upload, generated as they are sent (64 KiB chunks).
fn body(rows: impl Iterator<Item = String> + Send + 'static) -> reqwest::Body {
    let mut rows = rows.peekable();
    let stream = futures::stream::iter(std::iter::from_fn(move || {
        rows.peek()?;
        let mut chunk = String::with_capacity(64 * 1024 + 512);
        while chunk.len() < 64 * 1024 {
            match rows.next() {
                Some(r) => chunk.push_str(&r),
                None => break,
            }
        }
        Some(Ok::<_, std::io::Error>(chunk))
    }));
    reqwest::Body::wrap_stream(stream)
}

fn client_rows(n: usize, csv: bool) -> Box<dyn Iterator<Item = String> + Send> {
    let header = csv.then(|| "id,name,email,country,timezone,tags\n".to_owned());
    Box::new(header.into_iter().chain((0..n).map(move |i| {
        if csv {
            format!("c-{i},Cliente {i} S.A.S.,cartera{i}@example.co,CO,America/Bogota,retail\n")
        } else {
            format!(
                "{{\"id\":\"c-{i}\",\"name\":\"Cliente {i} S.A.S.\",\"email\":\"cartera{i}@example.co\",\"country\":\"CO\",\"timezone\":\"America/Bogota\",\"tags\":[\"retail\"]}}\n"
            )
        }
    })))
}

fn invoice_rows(n: usize, clients: usize, csv: bool) -> Box<dyn Iterator<Item = String> + Send> {
    let today = jiff::Zoned::now().date();
    let header =
        csv.then(|| "id,client_id,number,currency,amount,issued_at,due_at,meta.order\n".to_owned());
    Box::new(header.into_iter().chain((0..n).map(move |i| {
        let due = today
            .checked_add(jiff::Span::new().days(1 + (i % 360) as i64))
            .unwrap();
        let amount = 100_000 + (i % 5000) * 250;
        if csv {
            format!(
                "inv-{i},c-{},FV-{i},COP,{amount}.00,{today},{due},PED-{i}\n",
                i % clients
            )
        } else {
            format!(
                "{{\"id\":\"inv-{i}\",\"client_id\":\"c-{}\",\"number\":\"FV-{i}\",\"currency\":\"COP\",\"amount\":\"{amount}.00\",\"issued_at\":\"{today}\",\"due_at\":\"{due}\",\"metadata\":{{\"order\":\"PED-{i}\"}}}}\n",
                i % clients
            )
        }
    })))
}

/// Sends one upload; returns (seconds, summary).
async fn upload(
    http: &reqwest::Client,
    base: &str,
    kind: &str,
    csv: bool,
    rows: Box<dyn Iterator<Item = String> + Send>,
) -> (f64, serde_json::Value) {
    let t0 = Instant::now();
    let mut resp = http
        .post(format!("{base}/v1/import/{kind}"))
        .bearer_auth(common::TOKEN)
        .header(
            "content-type",
            if csv {
                "text/csv"
            } else {
                "application/x-ndjson"
            },
        )
        .body(body(rows))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut tail = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        tail.extend_from_slice(&chunk);
        // Keep only the last (partial) lines: the summary is the last one.
        if let Some(i) = tail[..tail.len().saturating_sub(1)]
            .iter()
            .rposition(|&b| b == b'\n')
        {
            tail.drain(..=i);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_slice(&tail).unwrap();
    (secs, v["summary"].clone())
}

fn main() {
    common::set_env();
    let n: usize = common::env_or("IMPORT_N", 100_000);
    let clients: usize = common::env_or("IMPORT_CLIENTS", 10_000);
    let csv = std::env::var("IMPORT_FORMAT").map_or(true, |f| f != "ndjson");
    println!("machine: {}", common::machine());
    let dir = tempfile::tempdir().unwrap();
    common::write_policy(dir.path());
    let cfg = dir.path().join("plazo.toml");
    std::fs::write(
        &cfg,
        common::config_text(
            "127.0.0.1:0",
            &dir.path().join("data"),
            "http://127.0.0.1:9/hook",
        ),
    )
    .unwrap();
    let config = load_daemon_config(&cfg).unwrap();
    let daemon_rt = rt(2, "daemon");
    let running = daemon_rt
        .block_on(plazo::daemon::start(config, Arc::new(SystemClock)))
        .unwrap();
    let base = format!("http://{}", running.addr);
    let client_rt = rt(1, "load-client");
    let http = reqwest::Client::new();
    let format = if csv { "csv" } else { "ndjson" };
    let (secs, summary) = client_rt.block_on(upload(
        &http,
        &base,
        "clients",
        csv,
        client_rows(clients, csv),
    ));
    assert_eq!(summary["created"], clients as u64, "{summary}");
    println!(
        "import clients  format={format} rows={clients} secs={secs:.2} rows_per_s={:.0}",
        clients as f64 / secs
    );
    let (secs, summary) = client_rt.block_on(upload(
        &http,
        &base,
        "invoices",
        csv,
        invoice_rows(n, clients, csv),
    ));
    assert_eq!(summary["created"], n as u64, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    println!(
        "import invoices format={format} rows={n} secs={secs:.2} rows_per_s={:.0}",
        n as f64 / secs
    );
    let (secs, summary) = client_rt.block_on(upload(
        &http,
        &base,
        "invoices",
        csv,
        invoice_rows(n, clients, csv),
    ));
    assert_eq!(summary["unchanged"], n as u64, "{summary}");
    println!(
        "re-import invoices (all unchanged) format={format} rows={n} secs={secs:.2} rows_per_s={:.0}",
        n as f64 / secs
    );
    daemon_rt.block_on(running.shutdown()).unwrap();
}
