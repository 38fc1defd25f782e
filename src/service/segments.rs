//! Moving an invoice's chase from one segment to another when the segment it should follow
//! ([`choose_segment`]) is no longer the one it follows ([`Invoice::followed`]): a `when` rule
//! now matches (or stopped matching) after the client's facts changed, the client's explicit
//! segment or tags changed, or a policy reload changed the segment's cadence.
//!
//! A move starts the new segment's cadence from its next future step: steps whose time has
//! passed are logged as skipped (never sent late), nothing already sent is sent again (the
//! plan generation moves on, so no reminder id repeats), and the timeline names the rule.

use jiff::Timestamp;

use super::planning::replan;
use crate::domain::{Client, Invoice, InvoiceId, InvoiceStatus};
use crate::policy::Policy;
use crate::schedule::{choose_segment, segment_for};
use crate::store::{Tx, TxFail};

/// After `client`'s facts changed, moves each of its other open invoices (all but `except`)
/// whose segment should change, re-planning them. Invoices that stay put are not written.
pub(crate) fn resegment_client(
    tx: &Tx<'_>,
    policy: &Policy,
    client: &Client,
    except: &InvoiceId,
    now: Timestamp,
) -> Result<(), TxFail> {
    if policy.rules.is_empty() {
        return Ok(());
    }
    for id in tx.invoice_ids_of_client(&client.id)? {
        if id == *except {
            continue;
        }
        let Some(mut inv) = tx.invoice(&id)? else {
            continue;
        };
        if inv.status != InvoiceStatus::Open || !needs_move(policy, client, &inv, now) {
            continue;
        }
        replan(tx, &mut inv, client, policy, now)?;
        tx.put_invoice(&inv)?;
    }
    Ok(())
}

/// Whether `invoice` should follow another segment than the one it follows.
pub(crate) fn needs_move(
    policy: &Policy,
    client: &Client,
    invoice: &Invoice,
    now: Timestamp,
) -> bool {
    let chosen = choose_segment(policy, client, invoice, now);
    match &invoice.followed {
        Some(f) => f.segment != chosen.segment.name || f.cadence != chosen.segment.cadence,
        None => invoice.cursor.is_some() && segment_for(policy, client).name != chosen.segment.name,
    }
}
