//! Write-off by age (`[write_off] after_days`): the daily pass over every client
//! ([`resegment_all`](super::resegment_all)) writes off each unpaid invoice that has been past
//! due that long: the *cartera castigada*. A later payment still applies, as a recovery.

use jiff::Timestamp;

use super::escalate_tx::escalate;
use crate::domain::{Client, EscalationKind, Invoice, InvoiceStatus, days_late};
use crate::policy::Policy;
use crate::schedule::client_zone;
use crate::store::{Tx, TxFail};

/// Who the timeline and the `invoice.written_off` event say wrote an aged invoice off.
pub const BY_AGE: &str = "the daily pass ([write_off] after_days)";

/// Whether `inv`, an invoice of `client`, is due to be written off by age as of `now`: the
/// policy sets `[write_off] after_days`, the invoice is open or handed off with a balance, it
/// is neither paused nor under an active promise or plan (someone is working on it), and it
/// is at least that many days past due in the client's time zone.
pub(super) fn aged_out(policy: &Policy, client: &Client, inv: &Invoice, now: Timestamp) -> bool {
    let Some(after) = policy.write_off_after_days else {
        return false;
    };
    matches!(inv.status, InvoiceStatus::Open | InvoiceStatus::HandedOff)
        && inv.client_id == client.id
        && inv.balance > rust_decimal::Decimal::ZERO
        && inv.pause.is_none()
        && inv.active_arrangement().is_none()
        && days_late(&inv.due_at, now, &client_zone(policy, client)) >= after
}

/// Inside a command: writes off every invoice of `client` that [`aged_out`] as of `now` (its
/// pending reminder cancelled, the timeline and the event say why) and writes them. Returns
/// how many.
pub(super) fn write_off_aged(
    tx: &Tx<'_>,
    policy: &Policy,
    client: &Client,
    now: Timestamp,
) -> Result<u64, TxFail> {
    let Some(after) = policy.write_off_after_days else {
        return Ok(0);
    };
    let reason = format!("{after} days or more past due");
    let mut written = 0;
    for id in tx.invoice_ids_of_client(&client.id)? {
        let Some(mut inv) = tx.invoice(&id)? else {
            continue;
        };
        if !aged_out(policy, client, &inv, now) {
            continue;
        }
        // A handed-off invoice keeps its partner on record (the event tells the partner).
        let partner = inv.escalation.as_ref().and_then(|e| e.partner.clone());
        escalate(
            tx,
            policy,
            &mut inv,
            EscalationKind::WrittenOff,
            partner.as_deref(),
            Some(&reason),
            BY_AGE,
            now,
        )?;
        tx.put_invoice(&inv)?;
        written += 1;
    }
    Ok(written)
}
