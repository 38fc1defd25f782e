//! Tasks for people: calls to make and replies to review.
//!
//! A call task is opened by a `task` step (or a `channels = ["call"]` one), by a cadence's
//! `on_exhausted = "task"`, and by a "no answer" outcome while attempts remain; a review task
//! by an inbound reply saying the debtor paid (or, if the policy says so, any other reply).
//! Each is due inside the client's contact window, ordered by the policy's `[tasks] priority`
//! and records `task.created` in the command that opens it. An invoice has at most one live
//! call task, a client at most one live review task.
//!
//! Agents list the queue (`GET /v1/tasks`), claim a task (`POST /v1/tasks/{id}/claim`; a
//! claim older than `claim_timeout` is void, computed whenever a task is read) and record the
//! outcome (`POST /v1/tasks/{id}/outcome`), which acts on the invoice in the same command:
//! a promise, a pause, an unreachable phone, the next attempt. When an invoice is paid,
//! voided, handed off or written off, its live tasks are cancelled.

use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::arrangements::{PromiseInput, promise_in_tx};
use super::contacts::{ContactChange, apply_contact_change};
use super::invoices::pause_in;
use super::task_ops::{open_call_task, open_review_task};
use super::timeline::event;
use super::{ServiceError, flatten};
use crate::compliance::rules::ContactRules;
use crate::domain::{
    ClientId, ContactEvent, ContactEventKind, Invoice, InvoiceStatus, Task, TaskId, TaskKind,
    TaskResult, TaskState,
};
use crate::policy::Policy;
use crate::schedule::{client_zone, segment_followed, segment_for};
use crate::store::{Store, Tx, TxError, TxFail, abort};

/// Pause reason of a debtor who says they paid (a `claims_paid` outcome, a says-paid reply).
pub const SAYS_PAID_REASON: &str = "debtor_says_paid";
/// Pause reason of a `dispute` outcome.
pub const DISPUTE_REASON: &str = "dispute";
/// Longest `agent`, in characters.
pub const MAX_AGENT_CHARS: usize = 100;
/// Longest outcome `note`, in characters.
pub const MAX_TASK_NOTE_CHARS: usize = 2_000;
/// Default page size of `GET /v1/tasks`.
pub const DEFAULT_TASK_PAGE: usize = 50;
/// Largest page of `GET /v1/tasks`.
pub const MAX_TASK_PAGE: usize = 500;
/// Most closed tasks `GET /v1/tasks?state=done|cancelled|all` reads, newest first.
const CLOSED_SCAN: usize = 100_000;
/// Longest quote of an inbound message on a timeline, in characters.
const QUOTE_CHARS: usize = 160;

/// `task` as agents see it at `now`: a claim older than the policy's `claim_timeout` is void,
/// so the task is open again.
pub fn effective(task: Task, policy: &Policy, now: Timestamp) -> Task {
    let mut t = task;
    if t.state == TaskState::Claimed && claim_expired(&t, policy, now) {
        t.state = TaskState::Open;
        t.agent = None;
        t.claimed_at = None;
    }
    t
}

fn claim_expired(t: &Task, policy: &Policy, now: Timestamp) -> bool {
    t.claimed_at
        .is_none_or(|at| now.duration_since(at) >= policy.tasks.claim_timeout)
}

/// `text` on one line, at most [`QUOTE_CHARS`] characters (an ellipsis marks a cut).
pub(crate) fn quote(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if flat.chars().count() <= QUOTE_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(QUOTE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// A debtor wrote `text` on `channel` from `address` saying they paid (`phrase`): inside the
/// caller's command, pauses every open invoice of `client` with reason `debtor_says_paid`
/// (those already paused so stay as they are), opens one review task, and says so on the
/// invoices' and the client's timelines.
#[allow(clippy::too_many_arguments)]
pub(crate) fn debtor_says_paid(
    tx: &Tx<'_>,
    policy: &Policy,
    client: &ClientId,
    channel: &str,
    address: &str,
    text: &str,
    phrase: &str,
    now: Timestamp,
) -> Result<(), TxFail> {
    let Some(client) = tx.client(client)? else {
        return Ok(());
    };
    let open = open_invoices_of(tx, &client.id)?;
    let quoted = quote(text);
    let why = format!("debtor says they paid ({channel} from {address}): \"{quoted}\"");
    let (task, new) = open_review_task(tx, policy, &client, &open, &why, now)?;
    let task_line = if new {
        format!("review task {} opened", task.id)
    } else {
        format!("review task {} is still {}", task.id, task.state.as_str())
    };
    for mut inv in open {
        let already = inv
            .pause
            .as_ref()
            .is_some_and(|p| p.reason == SAYS_PAID_REASON);
        if !already {
            pause_in(tx, policy, &mut inv, SAYS_PAID_REASON, None, now)?;
            tx.put_invoice(&inv)?;
        }
        tx.log(&event(
            &inv,
            now,
            format!(
                "{why} (matched \"{phrase}\"); the chase is paused until someone checks; {task_line}"
            ),
        ))?;
    }
    tx.log_client(&ContactEvent {
        at: now,
        client_id: client.id.clone(),
        event: ContactEventKind::Note,
        channel: channel.to_owned(),
        address: address.to_owned(),
        text: Some(quoted),
        provider_message_id: None,
        detail: Some(format!(
            "debtor says they paid (matched \"{phrase}\"): open invoices paused ({SAYS_PAID_REASON}); {task_line}"
        )),
    })?;
    Ok(())
}

/// The open invoices of client `id`, read inside the caller's command.
fn open_invoices_of(tx: &Tx<'_>, id: &ClientId) -> Result<Vec<Invoice>, TxFail> {
    let mut open = Vec::new();
    for inv_id in tx.invoice_ids_of_client(id)? {
        if let Some(inv) = tx.invoice(&inv_id)? {
            if inv.status == InvoiceStatus::Open {
                open.push(inv);
            }
        }
    }
    Ok(open)
}

/// Another reply from `client` when the policy routes other replies to a person: one review
/// task (none if one is live), inside the caller's command.
pub(crate) fn reply_needs_review(
    tx: &Tx<'_>,
    policy: &Policy,
    client: &ClientId,
    channel: &str,
    address: &str,
    text: &str,
    now: Timestamp,
) -> Result<(), TxFail> {
    let Some(client) = tx.client(client)? else {
        return Ok(());
    };
    let open = open_invoices_of(tx, &client.id)?;
    let why = format!("reply ({channel} from {address}): \"{}\"", quote(text));
    open_review_task(tx, policy, &client, &open, &why, now)?;
    Ok(())
}

// ---- The API --------------------------------------------------------------------------------

/// Query of `GET /v1/tasks`; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// `open` (the default: open, and claimed ones whose claim expired), `claimed`, `live`
    /// (open or claimed), `done`, `cancelled` or `all`.
    #[serde(default)]
    pub state: Option<String>,
    /// Only tasks due before this RFC 3339 instant.
    #[serde(default)]
    pub due_before: Option<String>,
    /// Only tasks of this segment.
    #[serde(default)]
    pub segment: Option<String>,
    /// Only tasks claimed by (or closed by) this agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Only `call` or `review` tasks.
    #[serde(default)]
    pub kind: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[serde(default)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One page of tasks.
#[derive(Debug, Clone)]
pub struct TaskPage {
    /// The tasks, highest priority first, then earliest due.
    pub tasks: Vec<Task>,
    /// Pass as `cursor` for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// States a query asks for.
fn states_of(state: Option<&str>) -> Result<Vec<TaskState>, ServiceError> {
    Ok(match state.map(str::trim).unwrap_or("open") {
        "open" => vec![TaskState::Open],
        "claimed" => vec![TaskState::Claimed],
        "live" => vec![TaskState::Open, TaskState::Claimed],
        "done" => vec![TaskState::Done],
        "cancelled" => vec![TaskState::Cancelled],
        "all" => TaskState::ALL.to_vec(),
        other => {
            return Err(ServiceError::invalid(
                "state",
                format!(
                    "{:?} is not a task state; use \"open\", \"claimed\", \"live\", \"done\", \"cancelled\" or \"all\"",
                    other.chars().take(64).collect::<String>()
                ),
            ));
        }
    })
}

/// The sort key of a task: priority descending, then due time, then id.
fn order_key(t: &Task) -> (std::cmp::Reverse<Decimal>, Timestamp, TaskId) {
    (std::cmp::Reverse(t.priority), t.due_at, t.id)
}

fn encode_cursor(t: &Task) -> String {
    hex::encode(format!(
        "{}~{}~{}",
        t.priority,
        t.due_at.as_nanosecond(),
        t.id
    ))
}

fn decode_cursor(s: &str) -> Result<(std::cmp::Reverse<Decimal>, Timestamp, TaskId), ServiceError> {
    let bad = || {
        ServiceError::invalid(
            "cursor",
            "is not a cursor from this API; pass next_cursor of the previous page as it is",
        )
    };
    let raw = hex::decode(s.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.split('~');
    let (Some(p), Some(d), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let priority: Decimal = p.parse().map_err(|_| bad())?;
    let nanos: i128 = d.parse().map_err(|_| bad())?;
    let due = Timestamp::from_nanosecond(nanos).map_err(|_| bad())?;
    let id = TaskId::parse(id).map_err(|_| bad())?;
    Ok((std::cmp::Reverse(priority), due, id))
}

/// `GET /v1/tasks`: the tasks matching `q` as of `now`, highest priority first.
pub fn list_tasks(
    store: &Store,
    policy: &Policy,
    q: &TaskQuery,
    now: Timestamp,
) -> Result<TaskPage, ServiceError> {
    let states = states_of(q.state.as_deref())?;
    let due_before = match q.due_before.as_deref().map(str::trim) {
        None | Some("") => None,
        // The API's strict grammar (offset within ±23:59, years 1900-2999), as for bodies.
        Some(s) => Some(crate::domain::when::parse_instant(s).map_err(|e| {
            ServiceError::invalid("due_before", format!("{e} (in a URL write + as %2B)"))
        })?),
    };
    let kind = match q.kind.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("call") => Some(TaskKind::Call),
        Some("review") => Some(TaskKind::Review),
        Some(other) => {
            return Err(ServiceError::invalid(
                "kind",
                format!(
                    "{:?} is not a task kind; use \"call\" or \"review\"",
                    other.chars().take(64).collect::<String>()
                ),
            ));
        }
    };
    let limit = match q.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_TASK_PAGE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_TASK_PAGE).contains(&n) => n,
            _ => {
                return Err(ServiceError::invalid(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_TASK_PAGE}"),
                ));
            }
        },
    };
    let after = match q.cursor.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(decode_cursor(c)?),
    };
    let live_only = states.iter().all(|s| s.is_live());
    let tasks = if live_only {
        store.live_tasks()?
    } else {
        store.recent_tasks(CLOSED_SCAN)?
    };
    let segment = q
        .segment
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let agent = q.agent.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let mut out: Vec<Task> = tasks
        .into_iter()
        .map(|t| effective(t, policy, now))
        .filter(|t| states.contains(&t.state))
        .filter(|t| due_before.is_none_or(|d| t.due_at < d))
        .filter(|t| segment.is_none_or(|s| t.segment == s))
        .filter(|t| agent.is_none_or(|a| t.agent.as_deref() == Some(a)))
        .filter(|t| kind.is_none_or(|k| t.kind == k))
        .filter(|t| after.as_ref().is_none_or(|a| order_key(t) > *a))
        .collect();
    out.sort_by_key(order_key);
    let more = out.len() > limit;
    out.truncate(limit);
    let next_cursor = if more {
        out.last().map(encode_cursor)
    } else {
        None
    };
    Ok(TaskPage {
        tasks: out,
        next_cursor,
    })
}

/// The 404 for a task id that does not exist (or is not a task id).
fn task_not_found(id: &str) -> ServiceError {
    ServiceError::NotFound {
        what: "task",
        id: id.chars().take(64).collect(),
        hint: "; list tasks with GET /v1/tasks",
    }
}

/// Parses a task id from a URL; a malformed one is simply not found.
pub fn parse_task_id(raw: &str) -> Result<TaskId, ServiceError> {
    TaskId::parse(raw).map_err(|_| task_not_found(raw))
}

/// `GET /v1/tasks/{id}`.
pub fn get_task(
    store: &Store,
    policy: &Policy,
    id: &TaskId,
    now: Timestamp,
) -> Result<Task, ServiceError> {
    let t = store
        .task(id)?
        .ok_or_else(|| task_not_found(&id.to_string()))?;
    Ok(effective(t, policy, now))
}

/// Checks an agent's name: 1 to 100 characters on one line.
fn check_agent(agent: &str) -> Result<String, ServiceError> {
    let a = agent.trim();
    if a.is_empty() || a.chars().count() > MAX_AGENT_CHARS {
        return Err(ServiceError::invalid(
            "agent",
            format!("must be 1 to {MAX_AGENT_CHARS} characters (the agent's name or login)"),
        ));
    }
    if a.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "agent",
            "contains control characters (line breaks, tabs, NUL); write it on one line",
        ));
    }
    Ok(a.to_owned())
}

/// Body of `POST /v1/tasks/{id}/claim`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimInput {
    /// Who takes the task.
    pub agent: String,
}

/// 409 unless the task can be worked: not closed, not held by another agent's live claim.
fn workable(
    t: &Task,
    agent: Option<&str>,
    policy: &Policy,
    now: Timestamp,
) -> Result<(), ServiceError> {
    match t.state {
        TaskState::Done => Err(ServiceError::Conflict(format!(
            "task {} is done ({}); it cannot change any more",
            t.id,
            t.result.map_or("no result", TaskResult::as_str)
        ))),
        TaskState::Cancelled => Err(ServiceError::Conflict(format!(
            "task {} is cancelled ({}); it cannot change any more",
            t.id,
            t.note.as_deref().unwrap_or("no reason")
        ))),
        TaskState::Claimed if !claim_expired(t, policy, now) && t.agent.as_deref() != agent => {
            let until = t
                .claimed_at
                .map(|c| c + policy.tasks.claim_timeout)
                .map_or_else(String::new, |u| format!(" until {u}"));
            Err(ServiceError::Conflict(format!(
                "task {} is claimed by {}{until}",
                t.id,
                t.agent.as_deref().unwrap_or("someone")
            )))
        }
        _ => Ok(()),
    }
}

/// A call is a contact: claiming a call task answers 409 while the client's contact rules
/// forbid a call now (outside the hours, a holiday, or a cap such as Chile's one call a week),
/// saying why and from when it may be made.
fn call_allowed(
    store: &Store,
    policy: &Policy,
    t: &Task,
    now: Timestamp,
) -> Result<(), ServiceError> {
    let Some(client) = store.client(&t.client_id)? else {
        return Ok(());
    };
    let invoice = match &t.invoice_id {
        Some(i) => store.invoice(i)?,
        None => None,
    };
    let segment = match &invoice {
        Some(inv) => segment_followed(policy, &client, inv),
        None => segment_for(policy, &client),
    };
    let rules = ContactRules::for_client(policy, &client, segment);
    let zone = client_zone(policy, &client);
    let local = now.to_zoned(zone.clone());
    let held = match rules.closed(&local) {
        Some(closed) => Some((closed.to_string(), rules.next_allowed(local))),
        None if rules.caps().is_empty() => None,
        None => {
            let contacts = crate::compliance::caps::recent_contacts(store, &client.id, now)?;
            let debtor = crate::compliance::caps::Debtor {
                contacts: &contacts,
                last_inbound: client.facts.last_inbound_at,
                zone: &zone,
            };
            let about = t.invoice_id.clone().or_else(|| {
                store
                    .invoice_ids_of_client(&client.id)
                    .ok()?
                    .into_iter()
                    .next()
            });
            let held = about
                .map(|i| {
                    crate::compliance::caps::check(
                        rules.caps(),
                        debtor,
                        crate::compliance::caps::CALL,
                        &i,
                        now,
                    )
                })
                .unwrap_or_default();
            held.iter().map(|h| h.until).max().and_then(|until| {
                held.first().map(|h| {
                    (
                        h.to_string(),
                        rules.next_allowed(until.to_zoned(zone.clone())),
                    )
                })
            })
        }
    };
    match held {
        None => Ok(()),
        Some((why, next)) => Err(ServiceError::Conflict(format!(
            "task {} is a call, and a call is a contact: {why}; it may be made from {}",
            t.id,
            crate::compliance::rules::local_time(&next)
        ))),
    }
}

/// `POST /v1/tasks/{id}/claim`: `agent` takes the task (again: the claim is renewed). 409 if
/// it is done, cancelled, or claimed by someone else whose claim has not expired.
pub fn claim_task(
    store: &Store,
    policy: &Policy,
    id: &TaskId,
    input: ClaimInput,
    now: Timestamp,
) -> Result<Task, ServiceError> {
    let agent = check_agent(&input.agent)?;
    if let Some(t) = store.task(id)? {
        if t.kind == TaskKind::Call && t.state == TaskState::Open {
            call_allowed(store, policy, &t, now)?;
        }
    }
    flatten(store.transaction(|tx| {
        let Some(mut t) = tx.task(id)? else {
            return abort(task_not_found(&id.to_string()));
        };
        if let Err(e) = workable(&t, Some(&agent), policy, now) {
            return abort(e);
        }
        t.state = TaskState::Claimed;
        t.agent = Some(agent.clone());
        t.claimed_at = Some(now);
        t.updated_at = now;
        tx.put_task(&t)?;
        Ok(t)
    }))
}

/// Body of `POST /v1/tasks/{id}/outcome`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeInput {
    /// `reached`, `no_answer`, `wrong_number`, `promise`, `dispute` or `claims_paid`.
    pub result: String,
    /// What happened, in the agent's words (at most 2,000 characters).
    #[serde(default)]
    pub note: Option<String>,
    /// Who worked the task; defaults to the agent holding the claim.
    #[serde(default)]
    pub agent: Option<String>,
    /// The promise (`result = "promise"` only), as `POST /v1/invoices/{id}/promises` takes it.
    #[serde(default)]
    pub promise: Option<PromiseInput>,
}

/// What an outcome did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The task, done.
    pub task: Task,
    /// The next call, after no answer.
    pub next_task: Option<Task>,
    /// The promise made, if any.
    pub promise: Option<super::Arranged>,
}

fn check_note(note: Option<String>) -> Result<Option<String>, ServiceError> {
    let Some(n) = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if n.chars().count() > MAX_TASK_NOTE_CHARS {
        return Err(ServiceError::invalid(
            "note",
            format!("is longer than {MAX_TASK_NOTE_CHARS} characters"),
        ));
    }
    if n.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ServiceError::invalid(
            "note",
            "contains control characters other than line breaks (NUL, tabs, a carriage return...); remove them",
        ));
    }
    Ok(Some(n))
}

/// `POST /v1/tasks/{id}/outcome`: closes the task with `input.result` and acts on it in the
/// same command (see the module docs). Any error changes nothing.
pub fn task_outcome(
    store: &Store,
    policy: &Policy,
    id: &TaskId,
    input: OutcomeInput,
    now: Timestamp,
) -> Result<Outcome, ServiceError> {
    let Some(result) = TaskResult::parse(input.result.trim()) else {
        return Err(ServiceError::invalid(
            "result",
            format!(
                "{:?} is not a task result; use one of {}",
                input.result.chars().take(64).collect::<String>(),
                TaskResult::ALL
                    .iter()
                    .map(|r| format!("\"{}\"", r.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let note = check_note(input.note)?;
    let agent_in = input.agent.as_deref().map(check_agent).transpose()?;
    match (&input.promise, result) {
        (None, TaskResult::Promise) => {
            return Err(ServiceError::invalid(
                "promise",
                "a promise outcome needs the promise: {\"amount\": \"...\", \"date\": \"YYYY-MM-DD\"}",
            ));
        }
        (Some(_), r) if r != TaskResult::Promise => {
            return Err(ServiceError::invalid(
                "promise",
                format!(
                    "only a \"promise\" outcome takes a promise (this one is {:?}); remove it",
                    r.as_str()
                ),
            ));
        }
        _ => {}
    }
    flatten(store.transaction(|tx| -> Result<Outcome, TxError<ServiceError>> {
        let Some(mut t) = tx.task(id)? else {
            return abort(task_not_found(&id.to_string()));
        };
        let held = (t.state == TaskState::Claimed && !claim_expired(&t, policy, now))
            .then(|| t.agent.clone())
            .flatten();
        if let Err(e) = workable(&t, agent_in.as_deref().or(held.as_deref()), policy, now) {
            return abort(e);
        }
        let Some(agent) = agent_in.clone().or(held) else {
            return abort(ServiceError::invalid(
                "agent",
                "say who worked the task (or claim it first with POST /v1/tasks/{id}/claim)",
            ));
        };
        let invoice = match &t.invoice_id {
            Some(i) => tx.invoice(i)?,
            None => None,
        };
        if result == TaskResult::Promise && invoice.is_none() {
            return abort(ServiceError::invalid(
                "promise",
                "this task is about the client, not one invoice; record the promise with POST /v1/invoices/{id}/promises",
            ));
        }
        // Close the task first: a next attempt is then not a duplicate.
        t.state = TaskState::Done;
        t.result = Some(result);
        t.note = note.clone();
        t.agent = Some(agent.clone());
        t.claimed_at = t.claimed_at.or(Some(now));
        t.updated_at = now;
        tx.put_task(&t)?;
        let client = tx.client(&t.client_id)?;
        let mut next_task = None;
        let mut promise = None;
        let what: String = match result {
            TaskResult::Reached => "reached the debtor".to_owned(),
            TaskResult::Promise => {
                let (Some(inv), Some(p)) = (&invoice, &input.promise) else {
                    return abort(ServiceError::invalid("promise", "missing"));
                };
                let mut p = p.clone();
                if p.channel.is_none() {
                    p.channel = Some("phone".to_owned());
                }
                match promise_in_tx(tx, policy, &inv.id, &p, now)? {
                    Ok(a) => {
                        let line = format!(
                            "promise recorded: {} {} by {}",
                            p.amount.trim(),
                            inv.currency,
                            p.date.trim()
                        );
                        promise = Some(a);
                        line
                    }
                    Err(ServiceError::Invalid { field, message }) => {
                        return abort(ServiceError::Invalid {
                            field: format!("promise.{field}"),
                            message,
                        });
                    }
                    Err(e) => return abort(e),
                }
            }
            TaskResult::Dispute | TaskResult::ClaimsPaid => {
                let base = if result == TaskResult::Dispute {
                    DISPUTE_REASON
                } else {
                    SAYS_PAID_REASON
                };
                let reason = match (&note, result) {
                    (Some(n), TaskResult::Dispute) => {
                        format!("{base}: {}", quote(n))
                    }
                    _ => base.to_owned(),
                };
                let mut targets = Vec::new();
                match &invoice {
                    Some(inv) => targets.push(inv.clone()),
                    None => {
                        for i in tx.invoice_ids_of_client(&t.client_id)? {
                            if let Some(inv) = tx.invoice(&i)? {
                                targets.push(inv);
                            }
                        }
                    }
                }
                let mut paused = 0;
                for mut inv in targets {
                    if inv.status == InvoiceStatus::Open {
                        pause_in(tx, policy, &mut inv, &reason, None, now)?;
                        tx.put_invoice(&inv)?;
                        paused += 1;
                    }
                }
                format!("chase paused ({reason}) on {paused} open invoice(s)")
            }
            TaskResult::WrongNumber => match client.as_ref().and_then(|c| c.phone.clone()) {
                Some(phone) => {
                    let reason = format!("wrong number (task {}, agent {agent})", t.id);
                    let whatsapp_too = client
                        .as_ref()
                        .and_then(|c| c.whatsapp.as_deref())
                        .is_none_or(|w| w == phone);
                    let mut kinds = vec!["call", "sms"];
                    if whatsapp_too {
                        kinds.push("whatsapp");
                    }
                    for kind in &kinds {
                        apply_contact_change(
                            tx,
                            &phone,
                            &ContactChange::Unreachable {
                                kind: (*kind).to_owned(),
                                reason: reason.clone(),
                            },
                            now,
                        )?;
                    }
                    format!(
                        "wrong number: {phone} is marked unreachable for {}",
                        kinds.join(", ")
                    )
                }
                None => "wrong number (the client has no phone on file)".to_owned(),
            },
            TaskResult::NoAnswer => {
                let max = policy.tasks.no_answer_attempts;
                match &invoice {
                    Some(inv) if t.kind == TaskKind::Call && t.attempt < max => {
                        let spacing: SignedDuration = policy.tasks.no_answer_spacing;
                        let not_before = now.checked_add(spacing).unwrap_or(now);
                        next_task = open_call_task(
                            tx,
                            policy,
                            inv,
                            &format!("no answer on attempt {} of {max}", t.attempt),
                            t.attempt + 1,
                            not_before,
                            now,
                        )?;
                        match &next_task {
                            Some(n) => format!(
                                "no answer (attempt {} of {max}); next call {} due {}",
                                t.attempt, n.id, n.due_at
                            ),
                            None => format!("no answer (attempt {} of {max})", t.attempt),
                        }
                    }
                    Some(_) if t.kind == TaskKind::Call => format!(
                        "no answer on attempt {} of {max}: the call attempts are used up; no further call is planned",
                        t.attempt
                    ),
                    _ => "no answer".to_owned(),
                }
            }
        };
        let said = note
            .as_deref()
            .map(|n| format!("; note: {}", quote(n)))
            .unwrap_or_default();
        let line = format!(
            "{} task {} by {agent}: {} — {what}{said}",
            t.kind.as_str(),
            t.id,
            result.as_str()
        );
        if let Some(inv) = &invoice {
            let mut l = event(inv, now, line.clone());
            if t.kind == TaskKind::Call {
                // A call is a contact: caps count it (delivered when it reached the debtor).
                l.channel = Some(crate::compliance::caps::CALL.to_owned());
                if result.reached_debtor() {
                    l.delivery = Some(crate::domain::DeliveryState::Delivered);
                }
            }
            tx.log(&l)?;
        }
        tx.log_client(&ContactEvent {
            at: now,
            client_id: t.client_id.clone(),
            event: ContactEventKind::Note,
            channel: t.kind.as_str().to_owned(),
            address: client
                .as_ref()
                .and_then(|c| c.phone.clone())
                .unwrap_or_default(),
            text: note.clone(),
            provider_message_id: None,
            detail: Some(line),
        })?;
        Ok(Outcome {
            task: t,
            next_task,
            promise,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_one_line_and_truncated() {
        assert_eq!(quote("ya\npagué\t ayer"), "ya pagué ayer");
        let long = "á".repeat(500);
        let q = quote(&long);
        assert_eq!(q.chars().count(), QUOTE_CHARS);
        assert!(q.ends_with('…'));
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let t = Task {
            id: TaskId::new("2026-03-01T12:00:00Z".parse().unwrap(), 9),
            kind: TaskKind::Call,
            invoice_id: None,
            client_id: ClientId::new("c-1").unwrap(),
            segment: String::new(),
            reason: String::new(),
            state: TaskState::Open,
            priority: Decimal::new(-12345, 2),
            due_at: "2026-03-02T12:00:00.5Z".parse().unwrap(),
            attempt: 1,
            agent: None,
            claimed_at: None,
            result: None,
            note: None,
            created_at: "2026-03-01T12:00:00Z".parse().unwrap(),
            updated_at: "2026-03-01T12:00:00Z".parse().unwrap(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&t)).unwrap(), order_key(&t));
        for bad in ["", "zz", "00", &hex::encode("1~2")] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
