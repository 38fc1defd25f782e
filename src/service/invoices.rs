use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::planning::{cancel_pending, replan};
use super::timeline::{event, not_found};
use super::{ServiceError, flatten};
use crate::domain::{
    ClientId, Currency, Due, FactsMark, Invoice, InvoiceId, InvoiceStatus, Money, Pause,
};
use crate::policy::{LoadedPolicy, Policy};
use crate::store::{Ack, Store, Tx, TxError, TxFail, abort};

/// Most keys in an invoice's `metadata`.
pub const MAX_METADATA_KEYS: usize = 50;
/// Most characters of a `metadata` key.
pub const MAX_METADATA_KEY_CHARS: usize = 64;
/// Most characters of a `metadata` value.
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
/// Most characters of a pause reason.
pub const MAX_PAUSE_REASON_CHARS: usize = 500;

/// Body of `PUT /v1/invoices/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceInput {
    /// The debtor; must exist (`PUT /v1/clients/{id}` first).
    pub client_id: String,
    /// Invoice number shown to the debtor: 1 to 64 characters.
    pub number: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Amount as a plain decimal string, e.g. `"1250000.00"`: at most 15 integer digits and
    /// the currency's decimals.
    pub amount: String,
    /// Issue date `YYYY-MM-DD` (1900-01-01 to 2999-12-31).
    #[serde(default, deserialize_with = "crate::domain::when::opt_date")]
    pub issued_at: Option<Date>,
    /// Due date (`2026-03-15`, read in the client's zone) or instant (RFC 3339, offset within
    /// ±23:59), from 1900-01-01 to 2999-12-31.
    pub due_at: String,
    /// Where the debtor pays: an http(s) URL of at most 2,000 characters.
    #[serde(default)]
    pub payment_url: Option<String>,
    /// Free-form string metadata, available to templates: at most 50 keys of 1 to 64
    /// characters, values of at most 500 characters.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// What a PUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// A new invoice was stored and planned.
    Created,
    /// An existing invoice changed (re-planned if its due date or amount changed).
    Updated,
    /// Same as what was stored: nothing written.
    Unchanged,
}

struct Validated {
    client_id: ClientId,
    number: String,
    money: Money,
    issued_at: Option<Date>,
    due: Due,
    payment_url: Option<String>,
    metadata: BTreeMap<String, String>,
}

fn validate(input: InvoiceInput) -> Result<Validated, ServiceError> {
    let client_id = ClientId::new(input.client_id)
        .map_err(|e| ServiceError::invalid("client_id", e.to_string()))?;
    let number = input.number.trim().to_owned();
    if number.is_empty() || number.chars().count() > 64 {
        return Err(ServiceError::invalid(
            "number",
            "must be 1 to 64 characters",
        ));
    }
    if number.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "number",
            "must not contain control characters (line breaks, tabs, NUL): it is shown in message subjects",
        ));
    }
    let currency = Currency::parse(&input.currency)
        .map_err(|e| ServiceError::invalid("currency", e.to_string()))?;
    let money = Money::parse(&input.amount, currency)
        .map_err(|e| ServiceError::invalid("amount", e.to_string()))?;
    if money.amount <= Decimal::ZERO {
        return Err(ServiceError::invalid("amount", "must be greater than zero"));
    }
    let due = crate::domain::when::parse_due(&input.due_at)
        .map_err(|e| ServiceError::invalid("due_at", e.to_string()))?;
    if let Some(url) = &input.payment_url {
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.len() > 2000
            || url.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(ServiceError::invalid(
                "payment_url",
                "must be an http(s) URL of at most 2000 characters",
            ));
        }
    }
    if input.metadata.len() > MAX_METADATA_KEYS {
        return Err(ServiceError::invalid(
            "metadata",
            format!(
                "has {} keys; at most {MAX_METADATA_KEYS}",
                input.metadata.len()
            ),
        ));
    }
    for (k, v) in &input.metadata {
        let shown: String = k.chars().take(32).collect();
        if k.is_empty() || k.chars().count() > MAX_METADATA_KEY_CHARS {
            return Err(ServiceError::invalid(
                "metadata",
                format!("key {shown:?} must be 1 to {MAX_METADATA_KEY_CHARS} characters"),
            ));
        }
        if v.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(ServiceError::invalid(
                format!("metadata.{shown}"),
                format!("is longer than {MAX_METADATA_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(Validated {
        client_id,
        number,
        money,
        issued_at: input.issued_at,
        due,
        payment_url: input.payment_url,
        metadata: input.metadata,
    })
}

fn fresh_invoice(id: &InvoiceId, v: &Validated, now: Timestamp) -> Invoice {
    Invoice {
        id: id.clone(),
        client_id: v.client_id.clone(),
        number: v.number.clone(),
        currency: v.money.currency,
        amount: v.money.amount,
        balance: v.money.amount,
        issued_at: v.issued_at,
        due_at: v.due,
        payment_url: v.payment_url.clone(),
        metadata: v.metadata.clone(),
        status: InvoiceStatus::Open,
        payments: Vec::new(),
        pause: None,
        generation: 0,
        cursor: None,
        pending: None,
        arrangements: Vec::new(),
        created_at: now,
        updated_at: now,
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    }
}

/// Validates an invoice body and builds the invoice it would create, without storing it
/// (for `plazo plan`).
pub fn draft_invoice(
    id: &InvoiceId,
    input: InvoiceInput,
    now: Timestamp,
) -> Result<Invoice, ServiceError> {
    Ok(fresh_invoice(id, &validate(input)?, now))
}

/// Creates or updates an invoice. Idempotent: the same body twice changes nothing. A changed
/// due date starts a new plan generation; a changed amount re-plans; a fully paid balance closes.
pub fn upsert_invoice(
    store: &Store,
    policy: &Policy,
    id: &InvoiceId,
    input: InvoiceInput,
    now: Timestamp,
) -> Result<(Invoice, Upserted, Option<Timestamp>), ServiceError> {
    let v = validate(input)?;
    flatten(store.transaction(|tx| upsert_validated(tx, policy, id, &v, now)))
}

/// An invoice body checked by the rules of `PUT /v1/invoices/{id}` ([`check_invoice`]), ready
/// to be stored by [`upsert_checked_invoice`].
pub struct CheckedInvoice(Validated);

/// Checks an invoice body exactly as `PUT /v1/invoices/{id}` does, without touching the store
/// (the client's existence is checked when it is stored).
pub fn check_invoice(input: InvoiceInput) -> Result<CheckedInvoice, ServiceError> {
    validate(input).map(CheckedInvoice)
}

/// Stores a checked invoice inside the caller's command: the work of [`upsert_invoice`]
/// (created and planned, updated and re-planned, or unchanged and nothing written). Returns
/// the invoice, what was done and the next reminder planned.
///
/// An [`TxError::Abort`] (unknown client, another client's invoice, a currency that cannot
/// change) is returned before anything is written, so the caller may go on with other work
/// in the same command.
pub fn upsert_checked_invoice(
    tx: &mut Tx<'_>,
    policy: &Policy,
    id: &InvoiceId,
    checked: &CheckedInvoice,
    now: Timestamp,
) -> Result<(Invoice, Upserted, Option<Timestamp>), TxError<ServiceError>> {
    upsert_validated(tx, policy, id, &checked.0, now)
}

/// [`upsert_invoice`] for async callers: the transaction runs on the store's writer thread,
/// and this returns once it is applied ([`Ack::Applied`]) or on disk ([`Ack::Durable`]: what
/// an acknowledged request needs).
pub async fn upsert_invoice_async(
    store: &Store,
    policy: Arc<LoadedPolicy>,
    id: InvoiceId,
    input: InvoiceInput,
    now: Timestamp,
    ack: Ack,
) -> Result<(Invoice, Upserted, Option<Timestamp>), ServiceError> {
    let v = validate(input)?;
    flatten(
        store
            .write_acked(ack, move |tx| {
                upsert_validated(tx, &policy.policy, &id, &v, now)
            })
            .await,
    )
}

/// [`upsert_invoice_async`] with the body built inside the command from the stored invoice
/// (`None` when there is none) by `input_of`: read-modify-write callers (`PATCH`) change the
/// record they read, atomically; an error from `input_of` writes nothing. Returns once the
/// change is on disk.
pub(crate) async fn upsert_invoice_with(
    store: &Store,
    policy: Arc<LoadedPolicy>,
    id: InvoiceId,
    now: Timestamp,
    input_of: impl FnOnce(Option<&Invoice>) -> Result<InvoiceInput, ServiceError> + Send + 'static,
) -> Result<(Invoice, Upserted, Option<Timestamp>), ServiceError> {
    flatten(
        store
            .write_durable(move |tx| {
                let current = tx.invoice(&id)?;
                let v = match input_of(current.as_ref()).and_then(validate) {
                    Ok(v) => v,
                    Err(e) => return abort(e),
                };
                upsert_validated(tx, &policy.policy, &id, &v, now)
            })
            .await,
    )
}

/// The transaction of [`upsert_invoice`]. Every abort comes before the first write (the bulk
/// import relies on it: [`upsert_checked_invoice`]).
fn upsert_validated(
    tx: &mut Tx<'_>,
    policy: &Policy,
    id: &InvoiceId,
    v: &Validated,
    now: Timestamp,
) -> Result<(Invoice, Upserted, Option<Timestamp>), TxError<ServiceError>> {
    let Some(mut client) = tx.client(&v.client_id)? else {
        return abort(ServiceError::NotFound {
            what: "client",
            id: v.client_id.to_string(),
            hint: "; create it with PUT /v1/clients/{id} first",
        });
    };
    let existing = tx.invoice(id)?;
    let (mut inv, outcome, needs_plan) = match existing.clone() {
        None => {
            let inv = fresh_invoice(id, v, now);
            // Stored now (with its opening line) so the reminder planned below is kept with
            // it; written again, whole, at the end.
            tx.create_invoice(
                &inv,
                &event(
                    &inv,
                    now,
                    format!(
                        "invoice created: {} {} due {}",
                        inv.amount, inv.currency, inv.due_at
                    ),
                ),
            )?;
            (inv, Upserted::Created, true)
        }
        Some(old) => {
            if old.client_id != v.client_id {
                return abort(ServiceError::Conflict(format!(
                    "invoice {id} belongs to client {}; an invoice cannot move to another client",
                    old.client_id
                )));
            }
            if old.currency != v.money.currency && !old.payments.is_empty() {
                return abort(ServiceError::Conflict(format!(
                    "invoice {id} has payments in {}; its currency cannot change",
                    old.currency
                )));
            }
            let same = old.number == v.number
                && old.currency == v.money.currency
                && old.amount == v.money.amount
                && old.issued_at == v.issued_at
                && old.due_at == v.due
                && old.payment_url == v.payment_url
                && old.metadata == v.metadata;
            if same {
                return Ok((old, Upserted::Unchanged, None));
            }
            let mut inv = old.clone();
            let due_changed = old.due_at != v.due;
            let amount_changed = old.amount != v.money.amount || old.currency != v.money.currency;
            inv.number = v.number.clone();
            inv.currency = v.money.currency;
            inv.issued_at = v.issued_at;
            inv.payment_url = v.payment_url.clone();
            inv.metadata = v.metadata.clone();
            inv.updated_at = now;
            if amount_changed {
                let cur = v.money.currency;
                let balance = cur
                    .sum(
                        "sum of the payments on the invoice",
                        inv.payments.iter().map(|p| p.amount),
                    )
                    .and_then(|paid| cur.sub("balance", v.money.amount, paid));
                inv.amount = v.money.amount;
                inv.balance = match balance {
                    Ok(b) => b.max(Decimal::ZERO),
                    Err(e) => return abort(ServiceError::invalid("amount", e.to_string())),
                };
                tx.log(&event(
                    &inv,
                    now,
                    format!(
                        "amount changed from {} to {}; balance {}",
                        old.amount, inv.amount, inv.balance
                    ),
                ))?;
                super::arrangements::cancel_mismatched_plan(tx, &mut inv, now)?;
            }
            if due_changed {
                inv.due_at = v.due;
                inv.generation += 1;
                inv.cursor = None;
                cancel_pending(
                    tx,
                    &mut inv,
                    now,
                    Some("due date changed; cadence re-planned"),
                )?;
                tx.log(&event(
                    &inv,
                    now,
                    format!("due date changed from {} to {}", old.due_at, inv.due_at),
                ))?;
            }
            close_or_reopen(tx, policy, &mut inv, now)?;
            // Paid in full or re-opened by the new amount, or a paid invoice's amount or due
            // date changed: the client's facts follow (re-checking its other invoices'
            // segments); this invoice is re-planned below with the new facts.
            if let Some(updated) =
                super::facts::update_facts(tx, policy, &inv, FactsMark::of(&old), None, now)?
            {
                client = updated;
            }
            (inv, Upserted::Updated, due_changed || amount_changed)
        }
    };
    let next = if needs_plan {
        replan(tx, &mut inv, &client, policy, now)?
    } else {
        None
    };
    // Payment providers may name the invoice only by its number: index a new number (an
    // unchanged one is indexed already).
    match existing.as_ref() {
        Some(old) if old.number == inv.number => {}
        Some(old) => {
            tx.unindex_number(&old.number, id)?;
            tx.index_number(&inv.number, id)?;
        }
        None => tx.index_number(&inv.number, id)?,
    }
    tx.put_invoice(&inv)?;
    Ok((inv, outcome, next))
}

/// After money moved on `inv` (its balance already updated; `delta` negative for a refund):
/// allocates it to an active promise or plan, closes or re-opens the invoice, and plans the
/// chase again when what it follows changed (an instalment paid, an arrangement kept, a
/// re-opened balance, or a partial payment with `cadence_anchor = "last_payment"`).
pub(crate) fn after_money(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &mut Invoice,
    delta: Decimal,
    now: Timestamp,
) -> Result<(), TxFail> {
    let mark = FactsMark::of(inv);
    if inv.escalation.is_some() {
        super::escalation::note_recovery(tx, inv, delta, now)?;
    }
    let moved = super::arrangements::on_money(tx, policy, inv, delta, now)?;
    let was_paid = inv.status == InvoiceStatus::Paid;
    close_or_reopen(tx, policy, inv, now)?;
    let payment_at = (delta > Decimal::ZERO)
        .then(|| inv.payments.last().map(|p| p.paid_at))
        .flatten();
    let client = super::facts::update_facts(tx, policy, inv, mark, payment_at, now)?;
    let reanchor = delta > Decimal::ZERO
        && policy.terms.anchor == crate::policy::terms::CadenceAnchor::LastPayment;
    let reopened = was_paid && inv.status == InvoiceStatus::Open;
    if inv.status == InvoiceStatus::Open && (moved || reanchor || reopened) {
        if let Some(client) = client {
            replan(tx, inv, &client, policy, now)?;
        }
    }
    Ok(())
}

/// Sets the status from the balance: zero closes (cancelling what is pending, keeping an
/// active arrangement, and queueing the policy's thank-you), positive opens (cancelling a
/// thank-you not sent yet); either records its event (`invoice.paid`, `invoice.reopened`).
pub(crate) fn close_or_reopen(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &mut Invoice,
    now: Timestamp,
) -> Result<(), TxFail> {
    let before = inv.status;
    let collectable = matches!(
        inv.status,
        InvoiceStatus::Open | InvoiceStatus::HandedOff | InvoiceStatus::WrittenOff
    );
    if inv.balance <= Decimal::ZERO && collectable {
        inv.status = InvoiceStatus::Paid;
        inv.closed_at = Some(now);
        super::arrangements::close_on_paid(tx, inv, now)?;
        cancel_pending(tx, inv, now, Some("invoice paid in full; the chase stops"))?;
        super::task_ops::cancel_invoice_tasks(tx, inv, "the invoice is paid in full", now)?;
        super::thank_you::queue(tx, policy, inv, now)?;
    } else if inv.balance > Decimal::ZERO && inv.status == InvoiceStatus::Paid {
        // Back where it was before it was paid: with its partner, written off, or open.
        inv.status = inv
            .escalation
            .as_ref()
            .map_or(InvoiceStatus::Open, |e| e.kind.status());
        inv.closed_at = None;
        super::thank_you::cancel(tx, inv, now)?;
    }
    super::events::status_changed(tx, inv, before, now)
}

/// Pauses the chase of an invoice until `until` (or until resumed).
pub fn pause_invoice(
    store: &Store,
    policy: &Policy,
    id: &InvoiceId,
    reason: String,
    until: Option<Timestamp>,
    now: Timestamp,
) -> Result<Invoice, ServiceError> {
    if reason.trim().is_empty() {
        return Err(ServiceError::invalid(
            "reason",
            "say why the chase is paused (dispute, agreement...)",
        ));
    }
    if reason.chars().count() > MAX_PAUSE_REASON_CHARS {
        return Err(ServiceError::invalid(
            "reason",
            format!("is longer than {MAX_PAUSE_REASON_CHARS} characters"),
        ));
    }
    if until.is_some_and(|u| u <= now) {
        return Err(ServiceError::invalid(
            "until",
            "must be in the future; omit it to pause until resumed",
        ));
    }
    flatten(store.transaction(|tx| {
        let Some(mut inv) = tx.invoice(id)? else {
            return abort(not_found(id));
        };
        if inv.status != InvoiceStatus::Open {
            return abort(ServiceError::Conflict(format!(
                "invoice {id} is {}; only an open invoice's chase can be paused",
                inv.status
            )));
        }
        pause_in(tx, policy, &mut inv, &reason, until, now)?;
        tx.put_invoice(&inv)?;
        Ok(inv)
    }))
}

/// Pauses the chase of open invoice `inv` inside the caller's command: what is pending is
/// cancelled, the chase re-planned after `until` (if given), the timeline says why. The
/// caller writes the invoice.
pub(crate) fn pause_in(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &mut Invoice,
    reason: &str,
    until: Option<Timestamp>,
    now: Timestamp,
) -> Result<(), TxFail> {
    inv.pause = Some(Pause {
        reason: reason.to_owned(),
        until,
        since: now,
    });
    inv.updated_at = now;
    cancel_pending(tx, inv, now, Some(&format!("paused: {reason}")))?;
    if until.is_some() {
        if let Some(client) = tx.client(&inv.client_id)? {
            replan(tx, inv, &client, policy, now)?;
        }
    }
    tx.log(&event(
        inv,
        now,
        match until {
            Some(u) => format!("chase paused until {u}: {reason}"),
            None => format!("chase paused until resumed: {reason}"),
        },
    ))?;
    Ok(())
}

/// Resumes a paused chase; missed steps collapse into one (catch-up).
pub fn resume_invoice(
    store: &Store,
    policy: &Policy,
    id: &InvoiceId,
    now: Timestamp,
) -> Result<(Invoice, Option<Timestamp>), ServiceError> {
    flatten(store.transaction(|tx| {
        let Some(mut inv) = tx.invoice(id)? else {
            return abort(not_found(id));
        };
        if inv.pause.is_none() {
            return abort(ServiceError::Conflict(format!(
                "invoice {id} is not paused"
            )));
        }
        inv.pause = None;
        inv.updated_at = now;
        tx.log(&event(&inv, now, "chase resumed".to_owned()))?;
        let next = match tx.client(&inv.client_id)? {
            Some(client) => replan(tx, &mut inv, &client, policy, now)?,
            None => None,
        };
        tx.put_invoice(&inv)?;
        Ok((inv, next))
    }))
}
