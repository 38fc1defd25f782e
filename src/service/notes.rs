//! Notes people write on an invoice's or a client's timeline: a call made, a visit, what the
//! debtor said at the counter. `POST /v1/invoices/{id}/notes` and `POST /v1/clients/{id}/notes`
//! with `{"author": "...", "text": "..."}`.

use jiff::Timestamp;
use serde::Deserialize;

use super::timeline::not_found;
use super::{ServiceError, flatten};
use crate::domain::{Attempt, AttemptOutcome, ClientId, ContactEvent, ContactEventKind, InvoiceId};
use crate::store::{Store, abort};

/// Longest `author`, in characters.
pub const MAX_NOTE_AUTHOR_CHARS: usize = 100;
/// Longest `text`, in characters.
pub const MAX_NOTE_TEXT_CHARS: usize = 4_000;

/// Body of a note request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    /// Who wrote it (an agent's name or login), 1 to 100 characters on one line.
    pub author: String,
    /// The note, 1 to 4,000 characters; line breaks are kept.
    pub text: String,
}

/// A note, checked: author and text trimmed.
fn checked(input: NoteInput) -> Result<(String, String), ServiceError> {
    let author = input.author.trim().to_owned();
    let text = input.text.trim().to_owned();
    if author.is_empty() || author.chars().count() > MAX_NOTE_AUTHOR_CHARS {
        return Err(ServiceError::invalid(
            "author",
            format!("must be 1 to {MAX_NOTE_AUTHOR_CHARS} characters (who wrote the note)"),
        ));
    }
    if author.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "author",
            "contains control characters (line breaks, tabs, NUL); write it on one line",
        ));
    }
    if text.is_empty() || text.chars().count() > MAX_NOTE_TEXT_CHARS {
        return Err(ServiceError::invalid(
            "text",
            format!("must be 1 to {MAX_NOTE_TEXT_CHARS} characters"),
        ));
    }
    // Line breaks are fine in a note; other control characters (NUL, ESC, a lone CR) are not.
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ServiceError::invalid(
            "text",
            "contains control characters other than line breaks (NUL, tabs, a carriage return...); remove them",
        ));
    }
    Ok((author, text))
}

/// Adds a note to invoice `id`'s timeline. Returns the line written.
pub fn add_invoice_note(
    store: &Store,
    id: &InvoiceId,
    input: NoteInput,
    now: Timestamp,
) -> Result<Attempt, ServiceError> {
    let (author, text) = checked(input)?;
    flatten(store.transaction(|tx| {
        if tx.invoice(id)?.is_none() {
            return abort(not_found(id));
        }
        let line = Attempt {
            at: now,
            invoice_id: id.clone(),
            reminder_id: None,
            step: None,
            channel: None,
            recipient: None,
            outcome: AttemptOutcome::Note,
            provider_message_id: None,
            delivery: None,
            detail: Some(format!("note by {author}: {text}")),
        };
        tx.log(&line)?;
        Ok(line)
    }))
}

/// Adds a note to client `id`'s own timeline (`GET /v1/clients/{id}/timeline`). Returns the
/// entry written.
pub fn add_client_note(
    store: &Store,
    id: &ClientId,
    input: NoteInput,
    now: Timestamp,
) -> Result<ContactEvent, ServiceError> {
    let (author, text) = checked(input)?;
    flatten(store.transaction(|tx| {
        if tx.client(id)?.is_none() {
            return abort(ServiceError::NotFound {
                what: "client",
                id: id.to_string(),
                hint: "; create it with PUT /v1/clients/{id}",
            });
        }
        let entry = ContactEvent {
            at: now,
            client_id: id.clone(),
            event: ContactEventKind::Note,
            channel: "note".to_owned(),
            address: String::new(),
            text: Some(text.clone()),
            provider_message_id: None,
            detail: Some(format!("by {author}")),
        };
        tx.log_client(&entry)?;
        Ok(entry)
    }))
}
