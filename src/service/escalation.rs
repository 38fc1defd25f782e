//! Taking an invoice out of the automated chase and bringing it back: hand-off to a partner,
//! write-off, void, and recall. Used by the API (`POST /v1/invoices/{id}/hand-off`,
//! `/write-off`, `/void`, `/recall`), by steps whose `action` is `hand_off` or `write_off`, and
//! by a cadence's `on_exhausted`.
//!
//! | from \ to     | handed_off | written_off | void | open (recall) |
//! |---------------|------------|-------------|------|---------------|
//! | open          | yes        | yes         | yes  | —             |
//! | handed_off    | —          | yes         | yes  | yes           |
//! | written_off   | —          | —           | yes  | yes           |
//! | paid, void    | —          | —           | —    | —             |
//!
//! Payments still apply to a handed-off or written-off invoice (a payment on a written-off one
//! is a recovery, see [`note_recovery`]); a void invoice takes no payment.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::escalate_tx::escalate;
use super::events::EventKind;
use super::planning::{replan, skip_passed_steps};
use super::timeline::{event, not_found};
use super::{ServiceError, flatten};
use crate::domain::Reminder;
use crate::domain::{Escalation, EscalationKind, Invoice, InvoiceId, InvoiceStatus};
use crate::policy::{Policy, StepAction};
use crate::store::{Store, Tx, TxFail, abort};

/// Longest `reason`, in characters.
pub const MAX_ESCALATION_REASON_CHARS: usize = 500;

/// Body of the hand-off, write-off, void and recall requests.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationInput {
    /// The partner (a key of `[partners.*]`); hand-off only, and optional when the policy has
    /// exactly one partner.
    #[serde(default)]
    pub partner: Option<String>,
    /// Why; kept on the invoice and its timeline. Required to void.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationRequest {
    /// Hand the invoice to a partner.
    HandOff,
    /// Write it off.
    WriteOff,
    /// Cancel it.
    Void,
    /// Bring a handed-off or written-off invoice back into the chase.
    Recall,
}

/// An invoice after an escalation request, and when its next reminder goes (recall only).
#[derive(Debug, Clone)]
pub struct Escalated {
    /// The invoice as stored.
    pub invoice: Invoice,
    /// The next reminder, after a recall.
    pub next_reminder_at: Option<Timestamp>,
}

/// Runs `request` on invoice `id`: checks the input and the invoice's state (409 when the
/// move is not allowed from where the invoice is), then changes it in one write.
pub fn escalate_invoice(
    store: &Store,
    policy: &Policy,
    id: &InvoiceId,
    request: EscalationRequest,
    input: EscalationInput,
    now: Timestamp,
) -> Result<Escalated, ServiceError> {
    let reason = clean_reason(input.reason)?;
    if request == EscalationRequest::Void && reason.is_none() {
        return Err(ServiceError::invalid(
            "reason",
            "say why the invoice is void (issued by mistake, replaced by invoice N, credit note...)",
        ));
    }
    let partner = match request {
        EscalationRequest::HandOff => Some(partner_of(policy, input.partner.as_deref())?),
        _ if input.partner.is_some() => {
            return Err(ServiceError::invalid(
                "partner",
                "only a hand-off takes a partner; remove it",
            ));
        }
        _ => None,
    };
    flatten(store.transaction(|tx| {
        let Some(mut inv) = tx.invoice(id)? else {
            return abort(not_found(id));
        };
        if let Err(why) = allowed(&inv, request) {
            return abort(ServiceError::Conflict(format!("invoice {id} {why}")));
        }
        let next = match request {
            EscalationRequest::Recall => recall(tx, policy, &mut inv, reason.as_deref(), now)?,
            EscalationRequest::HandOff => {
                let by = "the API";
                escalate(
                    tx,
                    policy,
                    &mut inv,
                    EscalationKind::HandedOff,
                    partner.as_deref(),
                    reason.as_deref(),
                    by,
                    now,
                )?;
                None
            }
            EscalationRequest::WriteOff | EscalationRequest::Void => {
                let kind = if request == EscalationRequest::Void {
                    EscalationKind::Voided
                } else {
                    EscalationKind::WrittenOff
                };
                escalate(
                    tx,
                    policy,
                    &mut inv,
                    kind,
                    None,
                    reason.as_deref(),
                    "the API",
                    now,
                )?;
                None
            }
        };
        tx.put_invoice(&inv)?;
        Ok(Escalated {
            invoice: inv,
            next_reminder_at: next,
        })
    }))
}

/// Why `request` is not allowed for `inv` as it is, if it is not.
fn allowed(inv: &Invoice, request: EscalationRequest) -> Result<(), String> {
    use EscalationRequest as R;
    use InvoiceStatus as S;
    let partner = || {
        inv.escalation
            .as_ref()
            .and_then(|e| e.partner.clone())
            .unwrap_or_default()
    };
    match (inv.status, request) {
        (S::Open, R::HandOff | R::WriteOff | R::Void) => Ok(()),
        (S::HandedOff, R::WriteOff | R::Void | R::Recall) => Ok(()),
        (S::WrittenOff, R::Void | R::Recall) => Ok(()),
        (S::Paid, R::Void) => Err("is paid; refund the payments before voiding it".to_owned()),
        (S::Paid, _) => Err("is paid; there is nothing to chase, hand off or write off".to_owned()),
        (S::Void, _) => Err("is void; nothing can change its chase any more".to_owned()),
        (S::Open, R::Recall) => Err(
            "is open and being chased; only a handed-off or written-off invoice can be recalled"
                .to_owned(),
        ),
        (S::HandedOff, R::HandOff) => Err(format!(
            "is already handed off to {}; recall it first to hand it to another partner",
            partner()
        )),
        (S::WrittenOff, R::HandOff | R::WriteOff) => {
            Err("is written off; recall it first".to_owned())
        }
    }
}

/// The partner a hand-off goes to: `requested`, which must be a key of `[partners.*]`, or the
/// only partner when none is named.
fn partner_of(policy: &Policy, requested: Option<&str>) -> Result<String, ServiceError> {
    let known = || {
        policy
            .partners
            .keys()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match requested.map(str::trim) {
        Some(p) if policy.partners.contains_key(p) => Ok(p.to_owned()),
        Some(p) if policy.partners.is_empty() => Err(ServiceError::invalid(
            "partner",
            format!(
                "there is no partner {p:?}: the policy defines none; add [partners.{p}] with name = \"...\" and reload"
            ),
        )),
        Some(p) => Err(ServiceError::invalid(
            "partner",
            format!("there is no partner {p:?}; partners are {}", known()),
        )),
        None => match policy.partners.keys().collect::<Vec<_>>().as_slice() {
            [only] => Ok((*only).clone()),
            [] => Err(ServiceError::invalid(
                "partner",
                "the policy defines no partner; add [partners.NAME] with name = \"...\" and reload",
            )),
            _ => Err(ServiceError::invalid(
                "partner",
                format!("name the partner; partners are {}", known()),
            )),
        },
    }
}

fn clean_reason(reason: Option<String>) -> Result<Option<String>, ServiceError> {
    let Some(r) = reason else {
        return Ok(None);
    };
    let r = r.trim().to_owned();
    if r.chars().count() > MAX_ESCALATION_REASON_CHARS {
        return Err(ServiceError::invalid(
            "reason",
            format!("is longer than {MAX_ESCALATION_REASON_CHARS} characters"),
        ));
    }
    if r.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "reason",
            "contains control characters (line breaks, tabs, NUL); write it on one line",
        ));
    }
    Ok((!r.is_empty()).then_some(r))
}

/// Brings a handed-off or written-off `inv` back into the chase: steps whose time passed
/// meanwhile are recorded as skipped (never sent late) and the next future step is planned.
fn recall(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &mut Invoice,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<Option<Timestamp>, TxFail> {
    let from = match inv.escalation.as_ref() {
        Some(Escalation {
            kind: EscalationKind::HandedOff,
            partner: Some(p),
            ..
        }) => format!("partner {p}"),
        Some(Escalation {
            kind: EscalationKind::WrittenOff,
            ..
        }) => "write-off".to_owned(),
        _ => "hand-off".to_owned(),
    };
    let before = inv.escalation.take();
    let from_status = inv.status;
    inv.status = InvoiceStatus::Open;
    inv.updated_at = now;
    super::events::emit(tx, EventKind::InvoiceRecalled, now, || {
        super::events::invoice_data(
            inv,
            json!({
                "from": from_status,
                "partner": before.as_ref().and_then(|e| e.partner.as_deref()),
                "reason": reason,
            }),
        )
    })?;
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    tx.log(&event(
        inv,
        now,
        format!("recalled from {from}{why}; the chase resumes from the next future step"),
    ))?;
    let Some(client) = tx.client(&inv.client_id)? else {
        return Ok(None);
    };
    skip_passed_steps(tx, inv, &client, policy, now, &format!("while with {from}"))?;
    replan(tx, inv, &client, policy, now)
}

/// Records money that arrived on an escalated invoice (`delta` > 0 received, < 0 refunded):
/// on a written-off invoice it is a recovery, kept in `escalation.recovered` and said on the
/// timeline.
pub(crate) fn note_recovery(
    tx: &Tx<'_>,
    inv: &mut Invoice,
    delta: Decimal,
    now: Timestamp,
) -> Result<(), TxFail> {
    let Some(esc) = inv.escalation.as_mut() else {
        return Ok(());
    };
    // Bounded by the currency's maximum, so the sum fits; saturate rather than fail.
    esc.recovered = esc
        .recovered
        .checked_add(delta)
        .unwrap_or(esc.recovered)
        .max(Decimal::ZERO);
    let line = match (esc.kind, delta > Decimal::ZERO) {
        (EscalationKind::WrittenOff, true) => format!(
            "recovered {delta} {} after the write-off (recovered so far {})",
            inv.currency, esc.recovered
        ),
        (EscalationKind::HandedOff, true) => format!(
            "{delta} {} received while with partner {}",
            inv.currency,
            esc.partner.as_deref().unwrap_or("?")
        ),
        _ => return Ok(()),
    };
    tx.log(&event(inv, now, line))?;
    Ok(())
}

/// Runs the `action` of `reminder`'s step (a `task`, `hand_off` or `write_off` step), inside the
/// write that records the step as handled. Does nothing when the reminder is no longer the
/// invoice's current one, or the invoice is no longer open.
pub fn run_step_action(
    tx: &Tx<'_>,
    reminder: &Reminder,
    action: &StepAction,
    policy: &Policy,
    now: Timestamp,
) -> Result<(), TxFail> {
    let Some(mut inv) = tx.invoice(&reminder.invoice_id)? else {
        return Ok(());
    };
    if inv.generation != reminder.generation
        || inv.pending != Some(reminder.id)
        || inv.status != InvoiceStatus::Open
    {
        return Ok(());
    }
    let by = format!(
        "step {} of cadence {}",
        reminder.step_name, reminder.cadence
    );
    let (kind, partner) = match action {
        StepAction::Remind => return Ok(()),
        StepAction::Task => {
            super::task_ops::open_call_task(tx, policy, &inv, &by, 1, now, now)?;
            return Ok(());
        }
        StepAction::HandOff(p) => (EscalationKind::HandedOff, Some(p.as_str())),
        StepAction::WriteOff => (EscalationKind::WrittenOff, None),
    };
    escalate(tx, policy, &mut inv, kind, partner, None, &by, now)?;
    tx.put_invoice(&inv)?;
    Ok(())
}
