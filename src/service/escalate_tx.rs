//! Taking an invoice out of the chase inside the caller's write ([`escalate`]), and what a
//! cadence with no step left does ([`cadence_exhausted`], called by
//! [`replan`](super::planning::replan)). Below planning and the escalation API: it imports
//! only the pending-reminder and task helpers, the timeline and events.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::json;

use super::events::EventKind;
use super::pending::cancel_pending;
use super::timeline::event;
use crate::domain::{Escalation, EscalationKind, Invoice, InvoiceStatus};
use crate::policy::{OnExhausted, Policy};
use crate::store::{Tx, TxFail};

/// Takes `inv` out of the chase (`kind`), inside the caller's write: its pending reminder is
/// cancelled (one being sent finishes, and the dispatcher drops it), the escalation is kept
/// on the invoice, and the timeline says who did it (`by`: "the API", "step final_handoff",
/// "cadence standard exhausted"). The caller writes the invoice.
#[allow(clippy::too_many_arguments)]
pub(crate) fn escalate(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &mut Invoice,
    kind: EscalationKind,
    partner: Option<&str>,
    reason: Option<&str>,
    by: &str,
    now: Timestamp,
) -> Result<(), TxFail> {
    let what = match (kind, partner) {
        (EscalationKind::HandedOff, Some(p)) => {
            let name = policy.partners.get(p).map_or(p, |x| x.name.as_str());
            format!("handed off to partner {p} ({name})")
        }
        (EscalationKind::HandedOff, None) => "handed off".to_owned(),
        (EscalationKind::WrittenOff, _) => "written off".to_owned(),
        (EscalationKind::Voided, _) => "voided".to_owned(),
    };
    cancel_pending(
        tx,
        inv,
        now,
        Some(&format!("{what}; automated reminders stop")),
    )?;
    super::task_ops::cancel_invoice_tasks(tx, inv, &format!("the invoice was {what}"), now)?;
    inv.status = kind.status();
    inv.escalation = Some(Escalation {
        kind,
        partner: partner.map(str::to_owned),
        reason: reason.map(str::to_owned),
        at: now,
        balance: inv.balance,
        recovered: Decimal::ZERO,
    });
    inv.updated_at = now;
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    tx.log(&event(
        inv,
        now,
        format!(
            "{what} by {by}{why}; balance {} {}; automated reminders stop",
            inv.balance, inv.currency
        ),
    ))?;
    tracing::info!(invoice = %inv.id, status = ?inv.status, partner, by, "invoice taken out of the chase");
    let partner_name = partner
        .and_then(|p| policy.partners.get(p))
        .map(|x| x.name.as_str());
    super::events::escalated(tx, inv, kind, partner_name, by, now)
}

/// Called by planning when the regular cadence of `inv` has no step left: once per plan
/// generation, says so on the timeline and runs the cadence's `on_exhausted`. The caller
/// writes the invoice.
pub(crate) fn cadence_exhausted(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &mut Invoice,
    cadence: &str,
    now: Timestamp,
) -> Result<(), TxFail> {
    if inv.exhausted == Some(inv.generation) || inv.status != InvoiceStatus::Open {
        return Ok(());
    }
    inv.exhausted = Some(inv.generation);
    let on_exhausted = policy
        .cadences
        .get(cadence)
        .map(|c| c.on_exhausted.clone())
        .unwrap_or_default();
    let then = match &on_exhausted {
        OnExhausted::Nothing => {
            "no reminder is left; the invoice stays open (set on_exhausted to hand it off or write it off)".to_owned()
        }
        OnExhausted::HandOff(p) => format!("on_exhausted hands it off to partner {p}"),
        OnExhausted::WriteOff => "on_exhausted writes it off".to_owned(),
        OnExhausted::Task => "on_exhausted opens a call task; the invoice stays open".to_owned(),
    };
    tx.log(&event(
        inv,
        now,
        format!("cadence {cadence} exhausted: its last step has passed; {then}"),
    ))?;
    super::events::emit(tx, EventKind::InvoiceCadenceExhausted, now, || {
        super::events::invoice_data(
            inv,
            json!({ "cadence": cadence, "on_exhausted": on_exhausted.to_string() }),
        )
    })?;
    let by = format!("cadence {cadence} exhausted");
    match on_exhausted {
        OnExhausted::Nothing => {}
        OnExhausted::HandOff(p) => escalate(
            tx,
            policy,
            inv,
            EscalationKind::HandedOff,
            Some(&p),
            None,
            &by,
            now,
        )?,
        OnExhausted::WriteOff => escalate(
            tx,
            policy,
            inv,
            EscalationKind::WrittenOff,
            None,
            None,
            &by,
            now,
        )?,
        OnExhausted::Task => {
            super::task_ops::open_call_task(tx, policy, inv, &by, 1, now, now)?;
        }
    }
    Ok(())
}
