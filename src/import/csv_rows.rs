//! CSV uploads: the header row, and each record turned into the JSON body of the matching
//! `PUT` (so that a CSV row and an NDJSON row go through the very same checks).
//!
//! Each record is one line: a quoted field may hold commas and doubled quotes (`""`) but no
//! line break (no field of a client or an invoice may hold one anyway). Quoting is checked
//! strictly (RFC 4180): a quote inside an unquoted field, text after a closing quote, or a
//! quote that does not close on its line is an error of that line.

use serde_json::{Map, Value};

use super::Kind;

/// A column of a CSV upload.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    /// `id`: the record's id.
    Id,
    /// A text field of the body. Required fields are sent even when empty (so the check
    /// says what is wrong with them); an empty optional cell leaves the field out.
    Text(&'static str, bool),
    /// A list field, its items separated by `;`.
    List(&'static str),
    /// `blocked_times`: `DAYS HH:MM-HH:MM` entries separated by `;`.
    BlockedTimes,
    /// `meta.KEY`: one key of an invoice's `metadata` (an empty cell leaves the key out).
    Meta(String),
}

/// The text columns of a clients file, and whether each is required.
const CLIENT_TEXT: &[(&str, bool)] = &[
    ("name", true),
    ("email", false),
    ("phone", false),
    ("whatsapp", false),
    ("locale", false),
    ("timezone", false),
    ("country", false),
    ("subdivision", false),
    ("segment", false),
];
/// The list columns of a clients file.
const CLIENT_LISTS: &[&str] = &["preferred_channels", "tags"];
/// The text columns of an invoices file, and whether each is required.
const INVOICE_TEXT: &[(&str, bool)] = &[
    ("client_id", true),
    ("number", true),
    ("currency", true),
    ("amount", true),
    ("issued_at", false),
    ("due_at", true),
    ("payment_url", false),
];

/// The columns a file of `kind` may have, as the error messages list them.
pub fn known_columns(kind: Kind) -> String {
    let mut names = vec!["id".to_owned()];
    match kind {
        Kind::Clients => {
            names.extend(CLIENT_TEXT.iter().map(|(n, _)| (*n).to_owned()));
            names.extend(CLIENT_LISTS.iter().map(|n| (*n).to_owned()));
            names.push("blocked_times".to_owned());
        }
        Kind::Invoices => {
            names.extend(INVOICE_TEXT.iter().map(|(n, _)| (*n).to_owned()));
            names.push("meta.<key>".to_owned());
        }
    }
    names.join(", ")
}

/// What is wrong with a header row (the whole upload is refused).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    /// A column plazo does not know.
    #[error("unknown column {column:?} in the header (line 1); the {kind} columns are: {known}")]
    Unknown {
        /// The column as written.
        column: String,
        /// `clients` or `invoices`.
        kind: &'static str,
        /// Every known column.
        known: String,
    },
    /// A required column is absent.
    #[error(
        "the header (line 1) has no {column:?} column, which {kind} files need; the {kind} columns are: {known}"
    )]
    Missing {
        /// The missing column.
        column: &'static str,
        /// `clients` or `invoices`.
        kind: &'static str,
        /// Every known column.
        known: String,
    },
    /// A column named twice.
    #[error("column {0:?} appears twice in the header (line 1); keep one")]
    Duplicate(String),
    /// The header line itself cannot be read.
    #[error("the header (line 1) cannot be read: {0}")]
    Unreadable(String),
}

/// The columns of a CSV upload, read from its header row.
#[derive(Debug, Clone)]
pub struct CsvHeader {
    columns: Vec<Column>,
}

impl CsvHeader {
    /// Reads the header row of a `kind` file.
    pub fn parse(kind: Kind, line: &[u8]) -> Result<CsvHeader, HeaderError> {
        let mut record = csv::StringRecord::new();
        read_record(line, &mut record).map_err(HeaderError::Unreadable)?;
        let mut columns = Vec::with_capacity(record.len());
        let mut names: Vec<String> = Vec::with_capacity(record.len());
        for (i, raw) in record.iter().enumerate() {
            // A UTF-8 byte order mark before the first name is not part of it.
            let raw = if i == 0 {
                raw.trim_start_matches('\u{feff}')
            } else {
                raw
            };
            let name = raw.trim();
            let column = column_of(kind, name).ok_or_else(|| HeaderError::Unknown {
                column: name.to_owned(),
                kind: kind.name(),
                known: known_columns(kind),
            })?;
            if names.iter().any(|n| n == name) {
                return Err(HeaderError::Duplicate(name.to_owned()));
            }
            names.push(name.to_owned());
            columns.push(column);
        }
        let required = std::iter::once("id").chain(
            match kind {
                Kind::Clients => CLIENT_TEXT,
                Kind::Invoices => INVOICE_TEXT,
            }
            .iter()
            .filter(|(_, req)| *req)
            .map(|(n, _)| *n),
        );
        for column in required {
            if !names.iter().any(|n| n == column) {
                return Err(HeaderError::Missing {
                    column,
                    kind: kind.name(),
                    known: known_columns(kind),
                });
            }
        }
        Ok(CsvHeader { columns })
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether the header has no column (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The id and the JSON body of one record, or what is wrong with it.
    pub fn body(&self, record: &csv::StringRecord) -> Result<(String, Map<String, Value>), String> {
        if record.len() != self.columns.len() {
            return Err(format!(
                "{} fields, but the header has {} columns; quote a field that holds a comma",
                record.len(),
                self.columns.len()
            ));
        }
        let mut id = String::new();
        let mut body = Map::new();
        let mut metadata = Map::new();
        for (column, cell) in self.columns.iter().zip(record.iter()) {
            match column {
                Column::Id => id = cell.trim().to_owned(),
                Column::Text(name, required) => {
                    if *required || !cell.trim().is_empty() {
                        body.insert((*name).to_owned(), Value::String(cell.to_owned()));
                    }
                }
                Column::List(name) => {
                    let items: Vec<Value> = split_list(cell)
                        .map(|s| Value::String(s.to_owned()))
                        .collect();
                    if !items.is_empty() {
                        body.insert((*name).to_owned(), Value::Array(items));
                    }
                }
                Column::BlockedTimes => {
                    let entries = split_list(cell)
                        .map(blocked_time)
                        .collect::<Result<Vec<_>, _>>()?;
                    if !entries.is_empty() {
                        body.insert("blocked_times".to_owned(), Value::Array(entries));
                    }
                }
                Column::Meta(key) => {
                    if !cell.is_empty() {
                        metadata.insert(key.clone(), Value::String(cell.to_owned()));
                    }
                }
            }
        }
        if !metadata.is_empty() {
            body.insert("metadata".to_owned(), Value::Object(metadata));
        }
        Ok((id, body))
    }
}

fn column_of(kind: Kind, name: &str) -> Option<Column> {
    if name == "id" {
        return Some(Column::Id);
    }
    match kind {
        Kind::Clients => {
            if let Some((n, req)) = CLIENT_TEXT.iter().find(|(n, _)| *n == name) {
                return Some(Column::Text(n, *req));
            }
            if let Some(n) = CLIENT_LISTS.iter().find(|n| **n == name) {
                return Some(Column::List(n));
            }
            (name == "blocked_times").then_some(Column::BlockedTimes)
        }
        Kind::Invoices => {
            if let Some((n, req)) = INVOICE_TEXT.iter().find(|(n, _)| *n == name) {
                return Some(Column::Text(n, *req));
            }
            name.strip_prefix("meta.")
                .filter(|k| !k.is_empty())
                .map(|k| Column::Meta(k.to_owned()))
        }
    }
}

/// The items of a `;`-separated cell, trimmed, empty ones left out.
fn split_list(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(';').map(str::trim).filter(|s| !s.is_empty())
}

/// One `DAYS HH:MM-HH:MM` entry of a `blocked_times` cell as the JSON object the API takes.
fn blocked_time(entry: &str) -> Result<Value, String> {
    let shape = || {
        format!(
            "blocked_times: {entry:?} is not an entry like \"mon-fri 12:00-14:00\" (days, a space, from-to; entries separated by ;)"
        )
    };
    let (days, span) = entry.rsplit_once(char::is_whitespace).ok_or_else(shape)?;
    let (from, to) = span.split_once('-').ok_or_else(shape)?;
    Ok(serde_json::json!({ "days": days.trim(), "from": from, "to": to }))
}

/// Reads one CSV line into `record`, checking its quoting strictly (see the module docs).
/// Builds a parser for this one line: a reader of many lines keeps a [`CsvLines`].
pub fn read_record(line: &[u8], record: &mut csv::StringRecord) -> Result<(), String> {
    CsvLines::new().read(line, record)
}

/// Reads CSV lines one at a time with one parser of the `csv` crate (`csv_core`, under
/// `csv::Reader`), kept with its buffers from line to line: building a parser builds its
/// state machine, which would cost more than parsing a row.
pub struct CsvLines {
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl Default for CsvLines {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvLines {
    /// A reader with the standard dialect (comma, double quote, RFC 4180 escapes).
    pub fn new() -> Self {
        CsvLines {
            core: csv_core::Reader::new(),
            out: vec![0; 1024],
            ends: vec![0; 32],
        }
    }

    /// Reads one line (without its line break) into `record`, checking its quoting strictly
    /// (see the module docs); an empty line is a record without fields.
    pub fn read(&mut self, line: &[u8], record: &mut csv::StringRecord) -> Result<(), String> {
        use csv_core::ReadRecordResult as R;
        check_quoting(line)?;
        self.core.reset();
        let mut input = line;
        let (mut nout, mut nend) = (0usize, 0usize);
        let mut ended_input = false;
        loop {
            let (res, i, o, e) = self.core.read_record(
                input,
                self.out.get_mut(nout..).unwrap_or_default(),
                self.ends.get_mut(nend..).unwrap_or_default(),
            );
            input = input.get(i..).unwrap_or_default();
            nout += o;
            nend += e;
            match res {
                // An empty input next tells the parser the line is over.
                R::InputEmpty if !ended_input => ended_input = true,
                R::OutputFull => {
                    let n = self.out.len().max(64);
                    self.out.resize(n * 2, 0);
                }
                R::OutputEndsFull => {
                    let n = self.ends.len().max(8);
                    self.ends.resize(n * 2, 0);
                }
                R::InputEmpty | R::Record | R::End => break,
            }
        }
        let text = std::str::from_utf8(self.out.get(..nout).unwrap_or_default())
            .map_err(|_| "is not valid UTF-8; save the file as UTF-8".to_owned())?;
        record.clear();
        let mut start = 0;
        for &end in self.ends.get(..nend).unwrap_or_default() {
            record.push_field(text.get(start..end).unwrap_or_default());
            start = end;
        }
        Ok(())
    }
}

/// RFC 4180 quoting on one line: a field is either unquoted (no `"`) or quoted, with `""`
/// for a quote inside it and nothing between its closing quote and the next comma.
fn check_quoting(line: &[u8]) -> Result<(), String> {
    #[derive(Clone, Copy)]
    enum St {
        Start,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut st = St::Start;
    let mut field = 1usize;
    for &b in line {
        st = match (st, b) {
            (St::Start | St::Unquoted | St::QuoteInQuoted, b',') => {
                field += 1;
                St::Start
            }
            (St::Start, b'"') => St::Quoted,
            (St::Start | St::Unquoted, _) if b != b'"' => St::Unquoted,
            (St::Unquoted | St::Start, _) => {
                return Err(format!(
                    "bad CSV quoting in field {field}: a quote inside an unquoted field; quote the whole field and double the quote (\"say \"\"hi\"\"\")"
                ));
            }
            (St::Quoted, b'"') => St::QuoteInQuoted,
            (St::Quoted, _) => St::Quoted,
            (St::QuoteInQuoted, b'"') => St::Quoted,
            (St::QuoteInQuoted, _) => {
                return Err(format!(
                    "bad CSV quoting in field {field}: text after its closing quote; double a quote inside a quoted field (\"\")"
                ));
            }
        };
    }
    if matches!(st, St::Quoted) {
        return Err(format!(
            "bad CSV quoting in field {field}: its quote does not close on this line (a quoted field cannot hold a line break)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> Result<Vec<String>, String> {
        let mut r = csv::StringRecord::new();
        read_record(line.as_bytes(), &mut r)?;
        Ok(r.iter().map(str::to_owned).collect())
    }

    #[test]
    fn quoting_is_strict() {
        assert_eq!(
            record(r#"a,"b, c","say ""hi""",,"#).unwrap(),
            vec!["a", "b, c", r#"say "hi""#, "", ""]
        );
        let e = record(r#"a,b"c,d"#).unwrap_err();
        assert!(e.contains("field 2") && e.contains("unquoted"), "{e}");
        let e = record(r#"a,"b"c"#).unwrap_err();
        assert!(
            e.contains("field 2") && e.contains("after its closing"),
            "{e}"
        );
        let e = record(r#"a,b,"open"#).unwrap_err();
        assert!(e.contains("field 3") && e.contains("line break"), "{e}");
    }

    #[test]
    fn one_reader_reads_many_lines_of_any_size() {
        let mut lines = CsvLines::new();
        let mut r = csv::StringRecord::new();
        let long = "é".repeat(3000);
        let many: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        lines
            .read(format!("\"{long}\",x").as_bytes(), &mut r)
            .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(&r[0], long.as_str());
        lines.read(many.join(",").as_bytes(), &mut r).unwrap();
        assert_eq!(r.iter().collect::<Vec<_>>(), many);
        lines.read(b"a,,\"b\"", &mut r).unwrap();
        assert_eq!(r.iter().collect::<Vec<_>>(), vec!["a", "", "b"]);
        lines.read(b"", &mut r).unwrap();
        assert!(r.is_empty());
        let e = lines.read(b"a,\xff", &mut r).unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
        lines.read(b"ok", &mut r).unwrap();
        assert_eq!(&r[0], "ok");
    }

    #[test]
    fn header_problems_name_the_column_and_the_known_ones() {
        let e = CsvHeader::parse(Kind::Clients, b"id,name,fax").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("\"fax\"") && text.contains("timezone") && text.contains("tags"),
            "{text}"
        );
        let e =
            CsvHeader::parse(Kind::Invoices, b"id,client_id,number,currency,due_at").unwrap_err();
        assert!(
            matches!(
                e,
                HeaderError::Missing {
                    column: "amount",
                    ..
                }
            ),
            "{e}"
        );
        let e = CsvHeader::parse(Kind::Clients, b"id,name,name").unwrap_err();
        assert_eq!(e, HeaderError::Duplicate("name".into()));
        let e = CsvHeader::parse(
            Kind::Invoices,
            b"id,client_id,number,currency,amount,due_at,meta.",
        )
        .unwrap_err();
        assert!(matches!(e, HeaderError::Unknown { .. }), "{e}");
    }

    #[test]
    fn records_become_put_bodies() {
        let h = CsvHeader::parse(
            Kind::Clients,
            "\u{feff}id,name,email,tags,blocked_times".as_bytes(),
        )
        .unwrap();
        let mut r = csv::StringRecord::new();
        read_record(
            br#"c1,Ana,,vip; retail ,"mon-fri 12:00-14:00;sat 09:00-10:00""#,
            &mut r,
        )
        .unwrap();
        let (id, body) = h.body(&r).unwrap();
        assert_eq!(id, "c1");
        assert_eq!(
            Value::Object(body),
            serde_json::json!({
                "name": "Ana",
                "tags": ["vip", "retail"],
                "blocked_times": [
                    {"days": "mon-fri", "from": "12:00", "to": "14:00"},
                    {"days": "sat", "from": "09:00", "to": "10:00"}
                ]
            })
        );
        let h = CsvHeader::parse(
            Kind::Invoices,
            b"id,client_id,number,currency,amount,due_at,meta.order,meta.po",
        )
        .unwrap();
        read_record(b"i1,c1,F-1,COP,100.00,2026-03-15,A-7,", &mut r).unwrap();
        let (_, body) = h.body(&r).unwrap();
        assert_eq!(body["metadata"], serde_json::json!({"order": "A-7"}));
        read_record(b"i1,c1,F-1", &mut r).unwrap();
        assert!(h.body(&r).unwrap_err().contains("3 fields"));
        let h = CsvHeader::parse(Kind::Clients, b"id,name,blocked_times").unwrap();
        read_record(b"c1,Ana,noon", &mut r).unwrap();
        assert!(h.body(&r).unwrap_err().contains("blocked_times"));
    }
}
