//! Bulk import of clients and invoices (`POST /v1/import/clients`, `POST /v1/import/invoices`,
//! `plazo import`): an upload read as it arrives, each row checked and stored exactly as the
//! single-record `PUT` would, many rows per store command, each row answered once durable.
//!
//! - `lines`: the upload cut into lines (at most [`MAX_LINE_BYTES`] each) as bytes arrive.
//! - `csv_rows`: CSV header and records, turned into the `PUT` bodies.
//! - `rows`: one line to one checked row (NDJSON or CSV; ids repeated within the upload).
//! - `apply`: batches of checked rows stored in one command each, then made durable.
//!
//! Memory: one line, one batch per stage, and, to find an id repeated within the upload,
//! 16 bytes of hash and 8 of line number per accepted row (about 40 MB for a million rows).

mod apply;
mod csv_rows;
mod lines;
mod rows;

pub use apply::{RowResult, Summary, apply_batch};
pub use csv_rows::{CsvHeader, CsvLines, HeaderError, known_columns, read_record};
pub use lines::{Line, LineSplitter};
pub use rows::{Checked, Pending, RowReader};

/// Longest line of an upload, in bytes (without its line break); a longer line is an error of
/// that line, and the next line is read as usual.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Rows stored by one store command (and acknowledged by one durable wait).
pub const BATCH_ROWS: usize = 512;

/// What an upload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Clients (`PUT /v1/clients/{id}` bodies).
    Clients,
    /// Invoices (`PUT /v1/invoices/{id}` bodies).
    Invoices,
}

impl Kind {
    /// `clients` or `invoices`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Clients => "clients",
            Kind::Invoices => "invoices",
        }
    }
}

/// How an upload is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object a line (`application/x-ndjson`): the `PUT` body plus `"id"`.
    Ndjson,
    /// CSV with a header row (`text/csv`).
    Csv,
}

impl Format {
    /// The format of a `Content-Type` value (parameters such as `charset=utf-8` ignored).
    pub fn from_content_type(value: &str) -> Option<Format> {
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-ndjson") {
            Some(Format::Ndjson)
        } else if essence.eq_ignore_ascii_case("text/csv") {
            Some(Format::Csv)
        } else {
            None
        }
    }

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv",
        }
    }
}
