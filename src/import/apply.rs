//! Stores a batch of checked rows in one store command, makes it durable, and says what
//! happened to each row.

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use super::rows::{Checked, Pending};
use crate::policy::LoadedPolicy;
use crate::service::{ServiceError, Upserted, upsert_checked_invoice, upsert_client_in};
use crate::store::{Store, TxError};

/// What happened to one row.
#[derive(Debug, Clone)]
pub struct RowResult {
    /// Its line in the upload.
    pub line: u64,
    /// Its id, when one was read.
    pub id: Option<String>,
    /// What was done, or why nothing was.
    pub outcome: Result<Upserted, String>,
}

#[derive(Serialize)]
struct RowLine<'a> {
    line: u64,
    id: Option<&'a str>,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

impl RowResult {
    /// Appends the row's answer line (`{"line":N,"id":"...","result":"created"}`, with a
    /// `message` on error) and a line break to `out`.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        let (result, message) = match &self.outcome {
            Ok(Upserted::Created) => ("created", None),
            Ok(Upserted::Updated) => ("updated", None),
            Ok(Upserted::Unchanged) => ("unchanged", None),
            Err(m) => ("error", Some(m.as_str())),
        };
        let line = RowLine {
            line: self.line,
            id: self.id.as_deref(),
            result,
            message,
        };
        // Serialising plain strings and numbers into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, &line).is_ok() {
            out.push(b'\n');
        }
    }
}

/// The counts of an import: the last line of its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Data rows read (blank lines not counted).
    pub rows: u64,
    /// Rows that created a record.
    pub created: u64,
    /// Rows that changed a record.
    pub updated: u64,
    /// Rows equal to what was stored (nothing written).
    pub unchanged: u64,
    /// Rows refused.
    pub errors: u64,
}

impl Summary {
    /// Counts `r`.
    pub fn add(&mut self, r: &RowResult) {
        self.rows += 1;
        match r.outcome {
            Ok(Upserted::Created) => self.created += 1,
            Ok(Upserted::Updated) => self.updated += 1,
            Ok(Upserted::Unchanged) => self.unchanged += 1,
            Err(_) => self.errors += 1,
        }
    }

    /// Appends the summary line (`{"summary":{...}}`) and a line break to `out`.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        if serde_json::to_writer(&mut *out, &serde_json::json!({ "summary": self })).is_ok() {
            out.push(b'\n');
        }
    }
}

/// Stores the good rows of `rows` in one store command, waits until it is durable, and
/// returns every row's result in order, with the earliest reminder planned (to wake the
/// dispatcher). A row refused by the store (an unknown client, another client's invoice) is
/// an error of that row only; a store failure is an error of every row of the batch (none of
/// them is stored).
pub async fn apply_batch(
    store: &Store,
    policy: Arc<LoadedPolicy>,
    now: Timestamp,
    rows: Vec<Pending>,
) -> (Vec<RowResult>, Option<Timestamp>) {
    let mut results: Vec<RowResult> = Vec::with_capacity(rows.len());
    let mut good = Vec::with_capacity(rows.len());
    for row in rows {
        match row.checked {
            Ok(c) => {
                good.push((results.len(), c));
                results.push(RowResult {
                    line: row.line,
                    id: row.id,
                    outcome: Ok(Upserted::Unchanged),
                });
            }
            Err(message) => results.push(RowResult {
                line: row.line,
                id: row.id,
                outcome: Err(message),
            }),
        }
    }
    if good.is_empty() {
        return (results, None);
    }
    let written = store
        .write(move |tx| {
            let policy = &policy.policy;
            let mut done = Vec::with_capacity(good.len());
            let mut earliest: Option<Timestamp> = None;
            for (at, checked) in &good {
                let outcome = match checked {
                    Checked::Client(draft) => upsert_client_in(tx, policy, draft, now)
                        .map(|(_, o)| o)
                        .map_err(TxError::Conflict),
                    Checked::Invoice(id, body) => upsert_checked_invoice(tx, policy, id, body, now)
                        .map(|(_, o, next)| {
                            if let Some(n) = next {
                                earliest = Some(earliest.map_or(n, |e| e.min(n)));
                            }
                            o
                        }),
                };
                match outcome {
                    Ok(o) => done.push((*at, Ok(o))),
                    // Refused before it wrote anything: the other rows go on.
                    Err(TxError::Abort(e)) => done.push((*at, Err(row_message(e)))),
                    Err(TxError::Conflict(f)) => return Err(TxError::Conflict(f)),
                }
            }
            Ok::<_, TxError<ServiceError>>((done, earliest))
        })
        .await;
    let failed = |results: &mut Vec<RowResult>, message: String| {
        for r in results.iter_mut().filter(|r| r.outcome.is_ok()) {
            r.outcome = Err(message.clone());
        }
    };
    match written {
        Ok(Ok((done, earliest))) => match store.durable().await {
            Ok(()) => {
                for (at, outcome) in done {
                    if let Some(r) = results.get_mut(at) {
                        r.outcome = outcome;
                    }
                }
                (results, earliest)
            }
            Err(e) => {
                tracing::error!(error = %e, "import: a batch could not be made durable");
                failed(
                    &mut results,
                    "the store could not make this row durable; import the file again".into(),
                );
                (results, None)
            }
        },
        Ok(Err(e)) => {
            failed(&mut results, row_message(e));
            (results, None)
        }
        Err(e) => {
            tracing::error!(error = %e, "import: a batch failed in the store");
            failed(
                &mut results,
                format!(
                    "storage error ({e}); nothing of this row was stored: import the file again"
                ),
            );
            (results, None)
        }
    }
}

/// A refused row's message; the not-found hint speaks of the import.
fn row_message(e: ServiceError) -> String {
    match e {
        ServiceError::NotFound { what, id, .. } => format!(
            "{what} {id:?} not found; import it (or PUT /v1/{what}s/{{id}}) before this row"
        ),
        other => other.to_string(),
    }
}
