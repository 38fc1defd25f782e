//! Passes over every client: walking the clients in pages ([`Store::client_ids_after`]), and
//! the daily pass ([`resegment_all`]) that re-evaluates segment rules and writes off invoices
//! past the policy's age (`[write_off] after_days`, see `service::aging`).
//!
//! A segment's `when` rule can read `invoice.days_overdue`, which changes with time alone:
//! nothing else happens to an invoice when it turns 21 days overdue, so no payment, promise or
//! plan re-plans it then. [`resegment_all`] (run daily by the `[housekeeping] resegment` job)
//! chooses every open invoice's segment again and moves the ones that should change, exactly
//! as a change of the client's facts does (`service::segments`).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;

use super::ServiceError;
use super::aging::{aged_out, write_off_aged};
use super::planning::replan;
use super::segments::needs_move;
use crate::domain::{Client, ClientId, Invoice, InvoiceStatus};
use crate::policy::Policy;
use crate::store::{Store, Tx, TxError, TxFail};

/// Client ids read per page by the passes over every client.
pub const CLIENT_PAGE: usize = 256;

/// Calls `each` with every client id, in id (byte) order, reading [`CLIENT_PAGE`] ids at a
/// time (keyset pagination: a walk runs alongside writes, and sees every client that exists
/// for the whole walk once). Stops before the next client once `stop` is set, or when `each`
/// breaks. Returns whether the walk reached the end.
pub(super) fn each_client(
    store: &Store,
    stop: &AtomicBool,
    mut each: impl FnMut(&ClientId) -> Result<ControlFlow<()>, ServiceError>,
) -> Result<bool, ServiceError> {
    let mut after: Option<ClientId> = None;
    loop {
        let page = store.client_ids_after(after.as_ref(), CLIENT_PAGE)?;
        for id in &page {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            if each(id)?.is_break() {
                return Ok(false);
            }
        }
        if page.len() < CLIENT_PAGE {
            return Ok(true);
        }
        after = page.last().cloned();
    }
}

/// What [`resegment_all`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResegmentReport {
    /// Clients looked at.
    pub clients: u64,
    /// Clients with at least one invoice moved (each written in one command).
    pub clients_changed: u64,
    /// Open invoices moved to another segment's cadence.
    pub invoices_moved: u64,
    /// Invoices written off by age (`[write_off] after_days`).
    pub invoices_written_off: u64,
    /// Whether every client was looked at (false: stopped early, by a shutdown).
    pub completed: bool,
}

/// Chooses again, as of `now`, the segment of every open invoice of every client, and moves
/// each one whose segment changed onto the new segment's cadence from its next future step
/// (as a change of facts does: the timeline names the rule; passed steps are logged as skipped,
/// nothing already sent is sent again). For the rules that read what changes with time alone
/// (`invoice.days_overdue`, `client.facts.days_since_last_payment`). In the same command, it
/// writes off the client's invoices past the policy's write-off age, if it has one.
///
/// Reads each client's invoices first, outside any command; a client with an invoice to move
/// gets one command that reads the client and its invoices again and moves those that still
/// need it. A client whose invoices all stay put is not written, nor is an invoice that stays
/// put; an invoice whose reminder is being sent moves when that send ends. Does nothing when
/// the policy has no `when` rule and no `[write_off]`. Blocks: run it on a blocking thread.
pub fn resegment_all(
    store: &Store,
    policy: &Policy,
    now: Timestamp,
) -> Result<ResegmentReport, ServiceError> {
    resegment_all_until(store, policy, now, &AtomicBool::new(false))
}

/// [`resegment_all`], stopping between two clients once `stop` is set (a shutdown); the
/// report then says `completed: false`. A client is always handled in one command, so a stop
/// never leaves one half moved.
pub fn resegment_all_until(
    store: &Store,
    policy: &Policy,
    now: Timestamp,
    stop: &AtomicBool,
) -> Result<ResegmentReport, ServiceError> {
    let mut report = ResegmentReport::default();
    if policy.rules.is_empty() && policy.write_off_after_days.is_none() {
        report.completed = true;
        return Ok(report);
    }
    report.completed = each_client(store, stop, |id| {
        report.clients += 1;
        if !any_needs_change(store, policy, id, now)? {
            return Ok(ControlFlow::Continue(()));
        }
        let (written_off, moved) = store
            .transaction(|tx| {
                let Some(client) = tx.client(id)? else {
                    return Ok((0, 0));
                };
                let written_off = write_off_aged(tx, policy, &client, now)?;
                let moved = move_open_invoices(tx, policy, &client, now)?;
                Ok::<_, TxError<std::convert::Infallible>>((written_off, moved))
            })?
            .unwrap_or_else(|never| match never {});
        if moved + written_off > 0 {
            report.clients_changed += 1;
            report.invoices_moved += moved;
            report.invoices_written_off += written_off;
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(report)
}

/// Whether an open invoice of client `id` should follow another segment, or an invoice is to
/// be written off by age, as of `now`, as read outside any command (a filter: the command
/// re-checks).
fn any_needs_change(
    store: &Store,
    policy: &Policy,
    id: &ClientId,
    now: Timestamp,
) -> Result<bool, ServiceError> {
    let Some(client) = store.client(id)? else {
        return Ok(false);
    };
    for inv_id in store.invoice_ids_of_client(id)? {
        if let Some(inv) = store.invoice(&inv_id)? {
            if should_move(policy, &client, &inv, now) || aged_out(policy, &client, &inv, now) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether `inv`, an invoice of `client`, is open and should follow another segment.
fn should_move(policy: &Policy, client: &Client, inv: &Invoice, now: Timestamp) -> bool {
    inv.client_id == client.id
        && inv.status == InvoiceStatus::Open
        && needs_move(policy, client, inv, now)
}

/// Inside a command: moves each open invoice of `client` that should follow another segment
/// as of `now` (re-planning it), and writes only the invoices that changed. Returns how many
/// moved. Does nothing when the policy has no `when` rule.
pub(super) fn move_open_invoices(
    tx: &Tx<'_>,
    policy: &Policy,
    client: &Client,
    now: Timestamp,
) -> Result<u64, TxFail> {
    if policy.rules.is_empty() {
        return Ok(0);
    }
    let mut moved = 0;
    for id in tx.invoice_ids_of_client(&client.id)? {
        let Some(mut inv) = tx.invoice(&id)? else {
            continue;
        };
        if !should_move(policy, client, &inv, now) {
            continue;
        }
        let before = inv.clone();
        replan(tx, &mut inv, client, policy, now)?;
        if inv != before {
            tx.put_invoice(&inv)?;
        }
        if inv.followed != before.followed {
            moved += 1;
        }
    }
    Ok(moved)
}
