//! `plazo import FILE...`: sends CSV or NDJSON files to the running daemon's bulk import
//! (`POST /v1/import/{clients,invoices}`), clients before invoices, streaming each file, and
//! prints the rows that failed and a summary per file.

use std::io::{BufRead, IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures::StreamExt as _;
use plazo::import::{Format, Kind, Line, LineSplitter};
use plazo::remote::Remote;

/// Bytes read from a file per chunk sent.
const CHUNK: usize = 64 * 1024;

/// Runs `plazo import`.
pub fn run(
    config: &Path,
    files: &[PathBuf],
    clients: &[PathBuf],
    invoices: &[PathBuf],
) -> Result<()> {
    if files.is_empty() && clients.is_empty() && invoices.is_empty() {
        bail!("name at least one file: plazo import clients.csv invoices.csv");
    }
    let cfg = plazo::config::load_daemon_config(config)?;
    let remote = Remote::from_config(&cfg)?;
    let mut plan: Vec<(PathBuf, Kind, Format)> = Vec::new();
    for (list, forced) in [
        (files, None),
        (clients, Some(Kind::Clients)),
        (invoices, Some(Kind::Invoices)),
    ] {
        for f in list {
            let (kind, format) = sniff(f)?;
            plan.push((f.clone(), forced.unwrap_or(kind), format));
        }
    }
    // Clients first: an invoice needs its client.
    plan.sort_by_key(|(_, kind, _)| *kind == Kind::Invoices);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut failed_rows = 0u64;
    for (path, kind, format) in &plan {
        let summary = rt
            .block_on(send_file(&remote, path, *kind, *format))
            .with_context(|| format!("importing {}", path.display()))?;
        failed_rows += summary.errors;
    }
    if failed_rows > 0 {
        bail!(
            "{failed_rows} row(s) were not imported; fix them and run the import again (rows already imported stay unchanged)"
        );
    }
    Ok(())
}

/// The kind and the format of a file, from its name and its first non-blank line.
fn sniff(path: &Path) -> Result<(Kind, Format)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = std::io::BufReader::new(file).take(plazo::import::MAX_LINE_BYTES as u64);
    let mut first = String::new();
    while first.trim().is_empty() {
        first.clear();
        if reader
            .read_line(&mut first)
            .with_context(|| format!("reading {}", path.display()))?
            == 0
        {
            bail!("{} is empty", path.display());
        }
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let first = first.trim().trim_start_matches('\u{feff}');
    let format = match ext.as_deref() {
        Some("csv") => Format::Csv,
        Some("ndjson" | "jsonl") => Format::Ndjson,
        _ if first.starts_with('{') => Format::Ndjson,
        _ => Format::Csv,
    };
    let invoices = match format {
        Format::Csv => {
            let mut record = csv::StringRecord::new();
            plazo::import::read_record(first.as_bytes(), &mut record)
                .map_err(|e| anyhow::anyhow!("{}: the header {e}", path.display()))?;
            let has = |c: &str| record.iter().any(|n| n.trim() == c);
            has("client_id") && has("amount")
        }
        Format::Ndjson => {
            let v: serde_json::Value = serde_json::from_str(first)
                .with_context(|| format!("{}: the first line is not JSON", path.display()))?;
            v.get("client_id").is_some() && v.get("amount").is_some()
        }
    };
    let kind = if invoices {
        Kind::Invoices
    } else {
        Kind::Clients
    };
    Ok((kind, format))
}

/// The counts of one file's import.
#[derive(Debug, Default, serde::Deserialize)]
struct Summary {
    rows: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    errors: u64,
}

/// Streams one file to the import endpoint and prints what came back.
async fn send_file(remote: &Remote, path: &Path, kind: Kind, format: Format) -> Result<Summary> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        if std::io::stderr().is_terminal() {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} sent, {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("{} ({})", path.display(), kind.name()));
    bar.set_message("0 rows answered");
    let sent = bar.clone();
    let body = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
    .inspect(move |c| {
        if let Ok(c) = c {
            sent.inc(c.len() as u64);
        }
    });
    let resp = remote
        .post(&format!("/v1/import/{}", kind.name()))
        .header("content-type", format.content_type())
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .context("sending the file to the daemon (is it running? plazo serve)")?;
    let status = resp.status();
    if !status.is_success() {
        bar.finish_and_clear();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        bail!("the daemon refused the file ({status}): {message}");
    }
    let mut stream = resp.bytes_stream();
    let mut splitter = LineSplitter::new(1 << 20);
    let mut lines = Vec::new();
    let mut summary = None;
    let mut answered = 0u64;
    let mut broke_off = None;
    loop {
        let end = match stream.next().await {
            Some(chunk) => {
                let chunk = chunk.context("reading the daemon's answer")?;
                splitter.push(&chunk, &mut lines);
                false
            }
            None => {
                splitter.finish(&mut lines);
                true
            }
        };
        for line in lines.drain(..) {
            let Line::Text { bytes, .. } = line else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            if let Some(s) = v.get("summary") {
                summary = Some(serde_json::from_value::<Summary>(s.clone())?);
            } else if let Some(e) = v.get("error") {
                broke_off = e["message"].as_str().map(str::to_owned);
            } else {
                answered += 1;
                if v["result"] == "error" {
                    bar.suspend(|| {
                        println!(
                            "{}: line {}: {}: {}",
                            path.display(),
                            v["line"],
                            v["id"].as_str().unwrap_or("-"),
                            v["message"].as_str().unwrap_or("")
                        );
                    });
                }
            }
        }
        bar.set_message(format!("{answered} rows answered"));
        if end {
            break;
        }
    }
    bar.finish_and_clear();
    if let Some(why) = broke_off {
        bail!("{why}");
    }
    let Some(s) = summary else {
        bail!(
            "the daemon's answer ended before its summary: the import was cut; run it again (rows already imported are unchanged)"
        );
    };
    println!(
        "{} ({}): {} rows: {} created, {} updated, {} unchanged, {} errors",
        path.display(),
        kind.name(),
        s.rows,
        s.created,
        s.updated,
        s.unchanged,
        s.errors
    );
    Ok(s)
}
