//! Events out: the changes plazo makes that an ERP/CRM (or a collection partner) wants to
//! hear about, recorded in the store's outbox by the command that makes the change, so an
//! event exists exactly when its change does. The daemon delivers them afterwards
//! (`daemon::events`).
//!
//! Nothing is recorded unless the store's outbox is on ([`Tx::events`], set from `[events]`
//! in `plazo.toml`); then an event goes to the `[events]` endpoint when its type passes the
//! `types` filter, and a hand-off also goes to the partner's own endpoint when it has one.
//!
//! Every body is `{"type", "id", "timestamp", "data"}`: `id` is also the `webhook-id` header
//! (stable across retries), `timestamp` the instant of the change, `data` the type's shape
//! (see the README, "Events out").

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::ServiceError;
use crate::domain::EventState;
use crate::domain::{
    Arrangement, Destination, EscalationKind, EventId, Followed, Invoice, InvoiceStatus,
    OutboundEvent,
};
use crate::store::{Store, Tx, TxFail, abort};

/// The types of event plazo sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An invoice was paid in full.
    InvoicePaid,
    /// A paid invoice has a balance again (a refund, a higher amount).
    InvoiceReopened,
    /// An invoice was handed to a collection partner.
    InvoiceHandedOff,
    /// An invoice was written off.
    InvoiceWrittenOff,
    /// A handed-off or written-off invoice is back in the chase.
    InvoiceRecalled,
    /// An invoice was cancelled.
    InvoiceVoided,
    /// The last step of an invoice's cadence has passed.
    InvoiceCadenceExhausted,
    /// A promise to pay or a payment plan was made.
    PromiseMade,
    /// A promise or plan was kept.
    PromiseKept,
    /// A promise or plan was broken.
    PromiseBroken,
    /// An invoice moved to another segment (and cadence) of its client.
    ClientSegmentChanged,
    /// An address opted out of a channel.
    ContactOptedOut,
    /// A task for a person was opened (a call to make, a reply to review).
    TaskCreated,
}

impl EventKind {
    /// Every type, in the order the README lists them.
    pub const ALL: [EventKind; 13] = [
        EventKind::InvoicePaid,
        EventKind::InvoiceReopened,
        EventKind::InvoiceHandedOff,
        EventKind::InvoiceWrittenOff,
        EventKind::InvoiceRecalled,
        EventKind::InvoiceVoided,
        EventKind::InvoiceCadenceExhausted,
        EventKind::PromiseMade,
        EventKind::PromiseKept,
        EventKind::PromiseBroken,
        EventKind::ClientSegmentChanged,
        EventKind::ContactOptedOut,
        EventKind::TaskCreated,
    ];

    /// The type's name (`invoice.paid`), the body's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::InvoicePaid => "invoice.paid",
            EventKind::InvoiceReopened => "invoice.reopened",
            EventKind::InvoiceHandedOff => "invoice.handed_off",
            EventKind::InvoiceWrittenOff => "invoice.written_off",
            EventKind::InvoiceRecalled => "invoice.recalled",
            EventKind::InvoiceVoided => "invoice.voided",
            EventKind::InvoiceCadenceExhausted => "invoice.cadence_exhausted",
            EventKind::PromiseMade => "promise.made",
            EventKind::PromiseKept => "promise.kept",
            EventKind::PromiseBroken => "promise.broken",
            EventKind::ClientSegmentChanged => "client.segment_changed",
            EventKind::ContactOptedOut => "contact.opted_out",
            EventKind::TaskCreated => "task.created",
        }
    }

    /// The type named `s`, if plazo sends it.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Records an event of type `kind` for the `[events]` endpoint in the caller's command, when
/// the outbox is on and its `types` want it; `data` is built only then. Returns its id.
pub fn emit(
    tx: &Tx<'_>,
    kind: EventKind,
    now: Timestamp,
    data: impl FnOnce() -> Value,
) -> Result<Option<EventId>, TxFail> {
    if !tx.events().is_some_and(|r| r.wants(kind.as_str())) {
        return Ok(None);
    }
    record(tx, Destination::Events, kind, now, data()).map(Some)
}

/// Records an event of type `kind` for `partner`'s own endpoint in the caller's command, when
/// the outbox is on and the partner has one (`[events.partners.NAME]`); `data` is built only
/// then. Returns its id.
pub fn emit_to_partner(
    tx: &Tx<'_>,
    partner: &str,
    kind: EventKind,
    now: Timestamp,
    data: impl FnOnce() -> Value,
) -> Result<Option<EventId>, TxFail> {
    if !tx.events().is_some_and(|r| r.reaches_partner(partner)) {
        return Ok(None);
    }
    let dest = Destination::Partner(partner.to_owned());
    record(tx, dest, kind, now, data()).map(Some)
}

/// Writes one event: a new id, the body, the record (due at once).
fn record(
    tx: &Tx<'_>,
    destination: Destination,
    kind: EventKind,
    now: Timestamp,
    data: Value,
) -> Result<EventId, TxFail> {
    let id = tx.new_event_id(now)?;
    let body = json!({
        "type": kind.as_str(),
        "id": id.to_string(),
        "timestamp": now.to_string(),
        "data": data,
    });
    let event = OutboundEvent::new(id, kind.as_str(), destination, body.to_string(), now);
    tx.put_event(&event)?;
    Ok(id)
}

/// The invoice as every `invoice.*` and `promise.*` body shows it (amounts as decimal
/// strings), with `extra` fields added.
pub fn invoice_data(inv: &Invoice, extra: Value) -> Value {
    let status = serde_json::to_value(inv.status).unwrap_or(Value::Null);
    let mut m = Map::new();
    m.insert("invoice_id".into(), json!(inv.id.as_str()));
    m.insert("number".into(), json!(inv.number));
    m.insert("client_id".into(), json!(inv.client_id.as_str()));
    m.insert("currency".into(), json!(inv.currency.to_string()));
    m.insert("amount".into(), json!(inv.currency.show(inv.amount)));
    m.insert("balance".into(), json!(inv.currency.show(inv.balance)));
    m.insert("status".into(), status);
    m.insert("due_at".into(), json!(inv.due_at.to_string()));
    m.insert(
        "segment".into(),
        json!(inv.followed.as_ref().map(|f| f.segment.as_str())),
    );
    m.insert(
        "partner".into(),
        json!(inv.escalation.as_ref().and_then(|e| e.partner.as_deref())),
    );
    if let Some(esc) = inv.escalation.as_ref().filter(|e| !e.recovered.is_zero()) {
        m.insert("recovered".into(), json!(inv.currency.show(esc.recovered)));
    }
    if let Value::Object(extra) = extra {
        m.extend(extra);
    }
    Value::Object(m)
}

/// After [`close_or_reopen`](super::invoices::close_or_reopen) moved `inv` from `before`:
/// `invoice.paid` (with the payment that closed it) or `invoice.reopened`.
pub(crate) fn status_changed(
    tx: &Tx<'_>,
    inv: &Invoice,
    before: InvoiceStatus,
    now: Timestamp,
) -> Result<(), TxFail> {
    let kind = match (before, inv.status) {
        (InvoiceStatus::Paid, InvoiceStatus::Paid) => return Ok(()),
        (_, InvoiceStatus::Paid) => EventKind::InvoicePaid,
        (InvoiceStatus::Paid, _) => EventKind::InvoiceReopened,
        _ => return Ok(()),
    };
    emit(tx, kind, now, || {
        let last = inv.payments.last().map(|p| {
            json!({
                "amount": inv.currency.show(p.amount),
                "reference": p.reference,
                "paid_at": p.paid_at.to_string(),
                "source": p.source,
            })
        });
        invoice_data(
            inv,
            json!({ "closed_at": inv.closed_at.map(|t| t.to_string()), "last_payment": last }),
        )
    })?;
    Ok(())
}

/// `invoice.handed_off`, `invoice.written_off` or `invoice.voided` after
/// [`escalate`](super::escalation::escalate) took `inv` out of the chase (`by` says who);
/// a hand-off also goes to the partner's own endpoint when it has one.
pub(crate) fn escalated(
    tx: &Tx<'_>,
    inv: &Invoice,
    kind: EscalationKind,
    partner_name: Option<&str>,
    by: &str,
    now: Timestamp,
) -> Result<(), TxFail> {
    let event_kind = match kind {
        EscalationKind::HandedOff => EventKind::InvoiceHandedOff,
        EscalationKind::WrittenOff => EventKind::InvoiceWrittenOff,
        EscalationKind::Voided => EventKind::InvoiceVoided,
    };
    let esc = inv.escalation.as_ref();
    let data = || {
        invoice_data(
            inv,
            json!({
                "partner_name": partner_name,
                "reason": esc.and_then(|e| e.reason.as_deref()),
                "by": by,
                "at": now.to_string(),
            }),
        )
    };
    emit(tx, event_kind, now, data)?;
    if let Some(partner) = esc.and_then(|e| e.partner.as_deref()) {
        if kind == EscalationKind::HandedOff {
            emit_to_partner(tx, partner, event_kind, now, data)?;
        }
    }
    Ok(())
}

/// `promise.made`, `promise.kept` or `promise.broken` for arrangement `arr` of `inv` (a
/// promise or a plan: `arrangement.kind` says which), with `extra` fields.
pub(crate) fn arrangement_event(
    tx: &Tx<'_>,
    kind: EventKind,
    inv: &Invoice,
    arr: &Arrangement,
    now: Timestamp,
    extra: Value,
) -> Result<(), TxFail> {
    emit(tx, kind, now, || {
        let mut data = invoice_data(inv, extra);
        if let Value::Object(m) = &mut data {
            m.insert(
                "arrangement".into(),
                serde_json::to_value(arr).unwrap_or(Value::Null),
            );
        }
        data
    })?;
    Ok(())
}

/// `client.segment_changed` for one invoice of the client moving from `from` to `to`.
pub(crate) fn segment_changed(
    tx: &Tx<'_>,
    inv: &Invoice,
    from: &Followed,
    to: &Followed,
    rule: Option<&str>,
    why: &str,
    now: Timestamp,
) -> Result<(), TxFail> {
    emit(tx, EventKind::ClientSegmentChanged, now, || {
        json!({
            "client_id": inv.client_id.as_str(),
            "invoice_id": inv.id.as_str(),
            "number": inv.number,
            "from": { "segment": from.segment, "cadence": from.cadence },
            "to": { "segment": to.segment, "cadence": to.cadence },
            "rule": rule,
            "reason": why,
        })
    })?;
    Ok(())
}

/// Most events `GET /v1/events` lists at once.
pub const MAX_LIST_LIMIT: usize = 500;
/// What `GET /v1/events` lists without a `limit`.
pub const DEFAULT_LIST_LIMIT: usize = 50;

/// The event named `raw` (`evt_...`), or 404.
fn event_id(raw: &str) -> Result<EventId, ServiceError> {
    EventId::parse(raw).map_err(|_| not_found(raw))
}

fn not_found(raw: &str) -> ServiceError {
    ServiceError::NotFound {
        what: "event",
        id: raw.chars().take(64).collect(),
        hint: "; ids look like evt_ followed by 32 hex digits (GET /v1/events lists them)",
    }
}

/// Up to `limit` events (1 to [`MAX_LIST_LIMIT`], default [`DEFAULT_LIST_LIMIT`]) in `state`
/// (`pending`, `delivered`, `failed`; any when absent), newest first. Blocks.
pub fn list_events(
    store: &Store,
    state: Option<&str>,
    limit: Option<&str>,
) -> Result<Vec<OutboundEvent>, ServiceError> {
    let state = match state {
        None => None,
        Some(s) => Some(EventState::parse(s).ok_or_else(|| {
            ServiceError::invalid(
                "state",
                format!(
                    "{:?} is not one of pending, delivered, failed",
                    s.chars().take(32).collect::<String>()
                ),
            )
        })?),
    };
    let limit = match limit {
        None => DEFAULT_LIST_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                ServiceError::invalid(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIST_LIMIT}"),
                )
            })?,
    };
    Ok(store.events(state, limit)?)
}

/// The event named `raw`, or 404. Blocks.
pub fn get_event(store: &Store, raw: &str) -> Result<OutboundEvent, ServiceError> {
    store.event(&event_id(raw)?)?.ok_or_else(|| not_found(raw))
}

/// Puts failed event `raw` back in the outbox, due at once with a fresh round of
/// `max_attempts` (the same id and body): 404 when unknown, 409 when it is not failed. The
/// delivery worker is woken when the write is applied. Blocks.
pub fn retry_event(
    store: &Store,
    raw: &str,
    now: Timestamp,
) -> Result<OutboundEvent, ServiceError> {
    let id = event_id(raw)?;
    super::flatten(store.transaction(|tx| {
        let Some(mut e) = tx.event(&id)? else {
            return abort(not_found(raw));
        };
        if e.state != EventState::Failed {
            return abort(ServiceError::Conflict(format!(
                "event {id} is {}; only a failed event can be retried",
                e.state.as_str()
            )));
        }
        e.state = EventState::Pending;
        e.attempts = 0;
        e.next_at = now;
        e.updated_at = now;
        tx.put_event(&e)?;
        Ok(e)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_name_that_parses_back() {
        let names: std::collections::BTreeSet<&str> =
            EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), EventKind::ALL.len());
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        assert_eq!(EventKind::parse("invoice.created"), None);
    }
}
