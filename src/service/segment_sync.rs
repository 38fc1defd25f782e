//! Putting an invoice on the segment it should follow ([`sync_segment`]), called by
//! [`replan`](super::planning::replan) before it plans. Below planning: it imports only the
//! pending-reminder helpers, the timeline and events.

use jiff::Timestamp;

use super::pending::skip_passed_steps;
use super::timeline::event;
use crate::domain::{Client, Followed, Invoice};
use crate::policy::Policy;
use crate::schedule::{choose_segment, segment_for};
use crate::store::{Tx, TxFail};

/// Puts `invoice` on the segment it should follow as of `now`. Called by
/// [`replan`](super::planning::replan) before it plans, with the pending reminder already
/// cancelled; a step in flight (`invoice.pending` still set) defers the move until it ends.
/// Returns whether the invoice moved.
pub(crate) fn sync_segment(
    tx: &Tx<'_>,
    invoice: &mut Invoice,
    client: &Client,
    policy: &Policy,
    now: Timestamp,
) -> Result<bool, TxFail> {
    let chosen = choose_segment(policy, client, invoice, now);
    let target = Followed {
        segment: chosen.segment.name.clone(),
        cadence: chosen.segment.cadence.clone(),
    };
    let current = match invoice.followed.clone() {
        Some(f) => f,
        None if invoice.cursor.is_none() => {
            // Nothing of the regular cadence handled yet: the first plan simply uses it.
            if let Some(rule) = chosen.rule {
                tx.log(&event(
                    invoice,
                    now,
                    format!(
                        "follows segment {} (cadence {}): rule `{rule}` matches",
                        target.segment, target.cadence
                    ),
                ))?;
            }
            invoice.followed = Some(target);
            return Ok(false);
        }
        None => {
            // Chased before the segment was recorded on invoices: it followed the static one.
            let s = segment_for(policy, client);
            let f = Followed {
                segment: s.name.clone(),
                cadence: s.cadence.clone(),
            };
            invoice.followed = Some(f.clone());
            f
        }
    };
    if current == target || invoice.pending.is_some() {
        return Ok(false);
    }
    let why = match (chosen.rule, &client.segment) {
        (Some(rule), _) => format!("rule `{rule}` matches"),
        (None, Some(s)) if *s == target.segment => "the client's segment is set to it".to_owned(),
        (None, _) if current.segment == target.segment => format!(
            "the policy changed the segment's cadence from {} to {}",
            current.cadence, target.cadence
        ),
        (None, _) => "no segment rule matches any more".to_owned(),
    };
    tx.log(&event(
        invoice,
        now,
        format!(
            "moved from segment {} (cadence {}) to segment {} (cadence {}): {why}; the new cadence starts from its next future step",
            current.segment, current.cadence, target.segment, target.cadence
        ),
    ))?;
    super::events::segment_changed(tx, invoice, &current, &target, chosen.rule, &why, now)?;
    invoice.generation = invoice.generation.saturating_add(1);
    invoice.cursor = None;
    let moved_to = target.segment.clone();
    invoice.followed = Some(target);
    invoice.updated_at = now;
    skip_passed_steps(
        tx,
        invoice,
        client,
        policy,
        now,
        &format!("before the client moved to segment {moved_to}"),
    )?;
    Ok(true)
}
