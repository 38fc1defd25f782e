//! `plazo report`: fetches the KPI and effectiveness reports from a running daemon
//! ([`crate::remote::Remote`]) and writes them as one self-contained HTML page (inline CSS and
//! SVG charts drawn with `plotters`; no external reference, opens offline) or as CSV files.
//!
//! - [`charts`]: the SVG charts (aging, collections by week, effectiveness by step and channel);
//! - [`html`]: the page;
//! - [`csv`]: the CSV files.

pub mod charts;
pub mod csv;
pub mod html;

use std::path::{Path, PathBuf};

use crate::remote::Remote;
use crate::service::reports::{EffectivenessReport, KpiReport, ReportQuery};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The daemon could not be reached or answered garbage.
    #[error("asking the daemon for {path}: {reason}")]
    Remote {
        /// The API path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The daemon refused the request.
    #[error("the daemon answered {status} to {path}: {message}")]
    Refused {
        /// The API path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The error message of its envelope (or the body).
        message: String,
    },
    /// A chart could not be drawn.
    #[error("drawing the {0} chart: {1}")]
    Chart(&'static str, String),
    /// Writing the output failed.
    #[error("writing {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One self-contained HTML file.
    Html,
    /// A directory of CSV files.
    Csv,
}

/// Both reports, as the daemon answered them.
#[derive(Debug, Clone)]
pub struct ReportData {
    /// `GET /v1/reports/kpis`.
    pub kpis: KpiReport,
    /// `GET /v1/reports/effectiveness`.
    pub effectiveness: EffectivenessReport,
}

/// The query string of `q` (`?as_of=...&currency=...`), empty parameters left out.
pub fn query_string(q: &ReportQuery) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("as_of", &q.as_of),
        ("currency", &q.currency),
        ("segment", &q.segment),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            s.append_pair(k, v);
        }
    }
    let s = s.finish();
    if s.is_empty() { s } else { format!("?{s}") }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    remote: &Remote,
    path: &str,
) -> Result<T, ReportError> {
    let err = |reason: String| ReportError::Remote {
        path: path.to_owned(),
        reason,
    };
    let resp = remote
        .get(path)
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| err(e.to_string()))?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        return Err(ReportError::Refused {
            path: path.to_owned(),
            status,
            message,
        });
    }
    serde_json::from_str(&text).map_err(|e| err(format!("unexpected answer: {e}")))
}

/// Fetches both reports for `q` (the effectiveness report over the KPIs' period).
pub async fn fetch(remote: &Remote, q: &ReportQuery) -> Result<ReportData, ReportError> {
    let kpis: KpiReport = get_json(remote, &format!("/v1/reports/kpis{}", query_string(q))).await?;
    // The same period as the KPIs (their defaults resolved by the daemon).
    let eq = ReportQuery {
        as_of: Some(kpis.as_of.to_string()),
        currency: q.currency.clone(),
        segment: q.segment.clone(),
        from: Some(kpis.from.to_string()),
        to: Some(kpis.to.to_string()),
    };
    let effectiveness = get_json(
        remote,
        &format!("/v1/reports/effectiveness{}", query_string(&eq)),
    )
    .await?;
    Ok(ReportData {
        kpis,
        effectiveness,
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|e| ReportError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes `data` as `format` to `out` (a file for HTML, a directory for CSV, created if
/// missing); returns the files written.
pub fn write(data: &ReportData, format: Format, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    match format {
        Format::Html => {
            write_file(out, &html::page(data)?)?;
            Ok(vec![out.to_path_buf()])
        }
        Format::Csv => {
            std::fs::create_dir_all(out).map_err(|e| ReportError::Write {
                path: out.to_path_buf(),
                reason: e.to_string(),
            })?;
            let mut written = Vec::new();
            for (name, text) in csv::files(data) {
                let path = out.join(name);
                write_file(&path, &text)?;
                written.push(path);
            }
            Ok(written)
        }
    }
}
