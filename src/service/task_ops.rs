//! Opening and cancelling tasks inside the caller's command: a call task (from a `task` step,
//! a cadence's `on_exhausted`, a "no answer" outcome), a review task (from a reply), and
//! cancelling an invoice's live tasks when it leaves the chase. Below `tasks` (the API), and
//! below planning and escalation, which open and cancel tasks: it imports none of them.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::json;

use super::events::{EventKind, emit};
use super::timeline::event;
use crate::compliance::rules::ContactRules;
use crate::domain::{Client, Invoice, InvoiceStatus, Task, TaskKind, TaskState, behaviour_of};
use crate::policy::Policy;
use crate::policy::rules::rule_context;
use crate::schedule::{client_zone, segment_followed, segment_for};
use crate::store::{Tx, TxFail};

/// When a task asked for at `not_before` is due for `client`: then, or the next opening of the
/// contact window of `segment_window`'s segment.
fn due_in_window(
    policy: &Policy,
    client: &Client,
    invoice: Option<&Invoice>,
    not_before: Timestamp,
) -> (Timestamp, String) {
    let segment = match invoice {
        Some(inv) => segment_followed(policy, client, inv),
        None => segment_for(policy, client),
    };
    let rules = ContactRules::for_client(policy, client, segment);
    let zone = client_zone(policy, client);
    let at = rules.next_allowed(not_before.to_zoned(zone)).timestamp();
    (at, segment.name.clone())
}

/// The policy's priority for `inv` of `client` at `now`.
fn priority_of(policy: &Policy, client: &Client, inv: &Invoice, now: Timestamp) -> Decimal {
    let facts = behaviour_of(client, policy.facts.last_paid, now);
    let zone = client_zone(policy, client);
    policy
        .tasks
        .priority
        .eval(&rule_context(client, &facts, inv, &zone, now))
}

/// Records `task.created` for `t`.
fn created_event(tx: &Tx<'_>, t: &Task, now: Timestamp) -> Result<(), TxFail> {
    emit(tx, EventKind::TaskCreated, now, || {
        json!({
            "task_id": t.id.to_string(),
            "kind": t.kind.as_str(),
            "invoice_id": t.invoice_id.as_ref().map(|i| i.as_str()),
            "client_id": t.client_id.as_str(),
            "segment": t.segment,
            "reason": t.reason,
            "priority": t.priority.to_string(),
            "due_at": t.due_at.to_string(),
            "attempt": t.attempt,
        })
    })?;
    Ok(())
}

/// Opens call task number `attempt` for open invoice `inv`, due at `not_before` or the next
/// opening of the client's contact window, inside the caller's command; `why` says what
/// opened it. Nothing is opened when the invoice is not open or already has a live call task
/// (the timeline says so). Returns the task opened.
pub(crate) fn open_call_task(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &Invoice,
    why: &str,
    attempt: u32,
    not_before: Timestamp,
    now: Timestamp,
) -> Result<Option<Task>, TxFail> {
    if inv.status != InvoiceStatus::Open {
        return Ok(None);
    }
    if let Some(live) = tx
        .live_tasks_of_invoice(&inv.id)?
        .into_iter()
        .find(|t| t.kind == TaskKind::Call)
    {
        tx.log(&event(
            inv,
            now,
            format!(
                "{why}: no new call task, call task {} is still {}",
                live.id,
                live.state.as_str()
            ),
        ))?;
        return Ok(None);
    }
    let Some(client) = tx.client(&inv.client_id)? else {
        return Ok(None);
    };
    let blocked = match &client.phone {
        None => Some("the client has no phone on file".to_owned()),
        Some(phone) => tx.contact(phone)?.and_then(|c| c.blocked("call")),
    };
    if let Some(why_not) = blocked {
        tx.log(&event(inv, now, format!("{why}: no call task, {why_not}")))?;
        return Ok(None);
    }
    let (due_at, segment) = due_in_window(policy, &client, Some(inv), not_before);
    let t = Task {
        id: tx.new_task_id(now)?,
        kind: TaskKind::Call,
        invoice_id: Some(inv.id.clone()),
        client_id: client.id.clone(),
        segment,
        reason: why.to_owned(),
        state: TaskState::Open,
        priority: priority_of(policy, &client, inv, now),
        due_at,
        attempt,
        agent: None,
        claimed_at: None,
        result: None,
        note: None,
        created_at: now,
        updated_at: now,
    };
    tx.put_task(&t)?;
    tx.log(&event(
        inv,
        now,
        format!(
            "call task {} opened ({why}; attempt {attempt}): due {}, priority {}",
            t.id, t.due_at, t.priority
        ),
    ))?;
    created_event(tx, &t, now)?;
    Ok(Some(t))
}

/// Opens a review task for `client` (about its open invoices `invoices`), due now or at the
/// next opening of its contact window, inside the caller's command. Nothing is opened when
/// the client already has a live review task; that one is returned.
pub(crate) fn open_review_task(
    tx: &Tx<'_>,
    policy: &Policy,
    client: &Client,
    invoices: &[Invoice],
    why: &str,
    now: Timestamp,
) -> Result<(Task, bool), TxFail> {
    if let Some(live) = tx
        .live_tasks_of_client(&client.id)?
        .into_iter()
        .find(|t| t.kind == TaskKind::Review)
    {
        return Ok((live, false));
    }
    let (due_at, segment) = due_in_window(policy, client, invoices.first(), now);
    let priority = invoices
        .iter()
        .map(|inv| priority_of(policy, client, inv, now))
        .max()
        .unwrap_or(Decimal::ZERO);
    let t = Task {
        id: tx.new_task_id(now)?,
        kind: TaskKind::Review,
        invoice_id: match invoices {
            [only] => Some(only.id.clone()),
            _ => None,
        },
        client_id: client.id.clone(),
        segment,
        reason: why.to_owned(),
        state: TaskState::Open,
        priority,
        due_at,
        attempt: 1,
        agent: None,
        claimed_at: None,
        result: None,
        note: None,
        created_at: now,
        updated_at: now,
    };
    tx.put_task(&t)?;
    created_event(tx, &t, now)?;
    Ok((t, true))
}

/// Cancels the live tasks of `inv` (it left the chase: `why`), inside the caller's command;
/// the timeline names each.
pub(crate) fn cancel_invoice_tasks(
    tx: &Tx<'_>,
    inv: &Invoice,
    why: &str,
    now: Timestamp,
) -> Result<(), TxFail> {
    for mut t in tx.live_tasks_of_invoice(&inv.id)? {
        t.state = TaskState::Cancelled;
        t.note = Some(why.to_owned());
        t.updated_at = now;
        tx.put_task(&t)?;
        tx.log(&event(
            inv,
            now,
            format!("{} task {} cancelled: {why}", t.kind.as_str(), t.id),
        ))?;
    }
    Ok(())
}
