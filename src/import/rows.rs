//! One line of an upload to one row: its id and its body checked by the rules of the `PUT`
//! it stands for ([`draft_client`], [`check_invoice`]), or what is wrong with it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::csv_rows::{CsvHeader, CsvLines};
use super::{Format, Kind, Line, MAX_LINE_BYTES};
use crate::domain::{Client, ClientId, InvoiceId};
use crate::policy::LoadedPolicy;
use crate::service::{CheckedInvoice, ClientInput, InvoiceInput, check_invoice, draft_client};

/// A row ready to be stored.
pub enum Checked {
    /// A client, as `PUT /v1/clients/{id}` would store it.
    Client(Box<Client>),
    /// An invoice body checked as `PUT /v1/invoices/{id}` checks it.
    Invoice(InvoiceId, CheckedInvoice),
}

/// One data row of an upload.
pub struct Pending {
    /// Its line number in the upload (the CSV header is line 1).
    pub line: u64,
    /// Its id, when one could be read.
    pub id: Option<String>,
    /// The checked row, or what is wrong with it.
    pub checked: Result<Checked, String>,
}

/// The ids accepted so far, by a 128-bit hash, with their line.
struct Seen {
    hashers: (RandomState, RandomState),
    lines: HashMap<u128, u64>,
}

impl Seen {
    fn key(&self, id: &str) -> u128 {
        let a = self.hashers.0.hash_one(id);
        let b = self.hashers.1.hash_one(id);
        (u128::from(a) << 64) | u128::from(b)
    }
}

/// Turns the lines of one upload into rows.
pub struct RowReader {
    kind: Kind,
    header: Option<CsvHeader>,
    policy: Arc<LoadedPolicy>,
    record: csv::StringRecord,
    csv: CsvLines,
    seen: Seen,
}

impl RowReader {
    /// A reader of a `kind` upload; `header` is the CSV header (`None`: NDJSON). Clients are
    /// checked against `policy` (segments).
    pub fn new(kind: Kind, header: Option<CsvHeader>, policy: Arc<LoadedPolicy>) -> Self {
        RowReader {
            kind,
            header,
            policy,
            record: csv::StringRecord::new(),
            csv: CsvLines::new(),
            seen: Seen {
                hashers: (RandomState::new(), RandomState::new()),
                lines: HashMap::new(),
            },
        }
    }

    /// The upload's format.
    pub fn format(&self) -> Format {
        if self.header.is_some() {
            Format::Csv
        } else {
            Format::Ndjson
        }
    }

    /// The row of `line`, checked at `now`; `None` for a blank line.
    pub fn row(&mut self, line: Line, now: jiff::Timestamp) -> Option<Pending> {
        let (line, bytes) = match line {
            Line::TooLong { line } => {
                return Some(Pending {
                    line,
                    id: None,
                    checked: Err(format!(
                        "the line is longer than {MAX_LINE_BYTES} bytes; no row is that long: check the line breaks"
                    )),
                });
            }
            Line::Text { line, bytes } => (line, bytes),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        // A UTF-8 byte order mark at the start of the file is not part of the first row.
        let bytes = match bytes.strip_prefix("\u{feff}".as_bytes()) {
            Some(rest) if line == 1 => rest,
            _ => &bytes[..],
        };
        let (id, checked) = match self.body(bytes) {
            Err(message) => (None, Err(message)),
            Ok((id, body)) => {
                let checked = self.check(&id, body, now);
                (Some(id), checked)
            }
        };
        let checked = match (checked, &id) {
            (Ok(c), Some(id)) => {
                let key = self.seen.key(id);
                match self.seen.lines.get(&key) {
                    Some(first) => Err(format!(
                        "id {id:?} already appears on line {first} of this file; each id may appear once"
                    )),
                    None => {
                        self.seen.lines.insert(key, line);
                        Ok(c)
                    }
                }
            }
            (other, _) => other,
        };
        Some(Pending { line, id, checked })
    }

    /// The id and the body of a line.
    fn body(&mut self, bytes: &[u8]) -> Result<(String, Map<String, Value>), String> {
        match &self.header {
            Some(header) => {
                self.csv.read(bytes, &mut self.record)?;
                header.body(&self.record)
            }
            None => {
                let value: Value =
                    serde_json::from_slice(bytes).map_err(|e| format!("is not JSON: {e}"))?;
                let Value::Object(mut body) = value else {
                    return Err("is not a JSON object; write one object a line".to_owned());
                };
                match body.remove("id") {
                    Some(Value::String(id)) => Ok((id, body)),
                    Some(_) => Err("id: must be a string".to_owned()),
                    None => Err(format!(
                        "has no \"id\": each line is the body of PUT /v1/{}/{{id}} plus its \"id\"",
                        self.kind.name()
                    )),
                }
            }
        }
    }

    /// `body` checked as the `PUT` of `id` would check it.
    fn check(
        &self,
        id: &str,
        body: Map<String, Value>,
        now: jiff::Timestamp,
    ) -> Result<Checked, String> {
        let body = Value::Object(body);
        match self.kind {
            Kind::Clients => {
                let id = ClientId::new(id).map_err(|e| format!("id: {e}"))?;
                let input: ClientInput = serde_json::from_value(body).map_err(|e| e.to_string())?;
                draft_client(&id, input, &self.policy.policy, now)
                    .map(|c| Checked::Client(Box::new(c)))
                    .map_err(|e| e.to_string())
            }
            Kind::Invoices => {
                let id = InvoiceId::new(id).map_err(|e| format!("id: {e}"))?;
                let input: InvoiceInput =
                    serde_json::from_value(body).map_err(|e| e.to_string())?;
                check_invoice(input)
                    .map(|c| Checked::Invoice(id, c))
                    .map_err(|e| e.to_string())
            }
        }
    }
}
