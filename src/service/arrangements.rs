//! Promises to pay and payment plans: making one (validated against the invoice and the
//! policy), cancelling it, allocating money to it as payments arrive, and the deadline check
//! that finds an instalment unpaid after its grace period and breaks the arrangement.

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::events::EventKind;
use super::planning::{replan, skip_passed_steps};
use super::timeline::{event, not_found};
use super::{ServiceError, flatten};
use crate::domain::{
    Allocation, Arrangement, ArrangementKind, ArrangementState, Client, Due, InstalmentState,
    Invoice, InvoiceId, InvoiceStatus, Money, Reminder, Track,
};
use crate::policy::Policy;
use crate::schedule::client_zone;
use crate::store::{Store, Tx, TxError, TxFail, abort};

/// Body of `POST /v1/invoices/{id}/promises`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromiseInput {
    /// Amount promised, as a decimal string in the invoice currency; at most the balance.
    pub amount: String,
    /// Promised date (`2026-12-01`, paid by the end of that day in the client's zone) or an
    /// RFC 3339 instant.
    pub date: String,
    /// Channel the promise was made on (`phone`, `whatsapp`, `email`, `sms`, `portal`...).
    #[serde(default)]
    pub channel: Option<String>,
    /// Free-form note from the collector (at most 2,000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// One instalment of `POST /v1/invoices/{id}/plans`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstalmentInput {
    /// Date due (`2026-12-01`) or RFC 3339 instant.
    pub date: String,
    /// Amount as a decimal string in the invoice currency.
    pub amount: String,
}

/// Body of `POST /v1/invoices/{id}/plans`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// Instalments in date order; their amounts must add up to the balance exactly.
    pub instalments: Vec<InstalmentInput>,
    /// Channel the plan was agreed on.
    #[serde(default)]
    pub channel: Option<String>,
    /// Free-form note (at most 2,000 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// What making an arrangement returned.
#[derive(Debug, Clone)]
pub struct Arranged {
    /// The invoice after the change.
    pub invoice: Invoice,
    /// The arrangement made.
    pub arrangement: Arrangement,
    /// When the next reminder (or deadline check) fires.
    pub next: Option<Timestamp>,
}

fn check_channel(channel: Option<String>) -> Result<Option<String>, ServiceError> {
    let Some(c) = channel.map(|c| c.trim().to_ascii_lowercase()) else {
        return Ok(None);
    };
    if c.is_empty()
        || c.len() > 32
        || !c
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        return Err(ServiceError::invalid(
            "channel",
            format!(
                "{c:?} is not a channel name; write 1-32 letters, digits, '_' or '-', like \"phone\", \"whatsapp\" or \"email\""
            ),
        ));
    }
    Ok(Some(c))
}

fn check_note(note: Option<String>) -> Result<Option<String>, ServiceError> {
    let Some(n) = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if n.chars().count() > 2000 {
        return Err(ServiceError::invalid(
            "note",
            "is longer than 2,000 characters",
        ));
    }
    Ok(Some(n))
}

/// The local date `due` falls on in the client's zone.
fn local_date(due: &Due, zone: &jiff::tz::TimeZone) -> Date {
    match due {
        Due::Date(d) => *d,
        Due::Instant(t) => t.to_zoned(zone.clone()).date(),
    }
}

/// Parses and checks one date of an arrangement: not in the past (a date may be today), at most
/// `max_days` days from today in the client's zone.
fn check_date(
    field: &str,
    raw: &str,
    today: Date,
    zone: &jiff::tz::TimeZone,
    now: Timestamp,
    max_days: u32,
) -> Result<Due, ServiceError> {
    let due = crate::domain::when::parse_due(raw).map_err(|e| {
        ServiceError::invalid(
            field,
            match e {
                crate::domain::when::WhenError::NotDateOrInstant(_) => format!(
                    "{raw:?} is neither a date (2026-12-01, in the client's time zone) nor an RFC 3339 instant (2026-12-01T17:00:00Z)"
                ),
                other => other.to_string(),
            },
        )
    })?;
    let past = match due {
        Due::Date(d) => d < today,
        Due::Instant(t) => t <= now,
    };
    if past {
        return Err(ServiceError::invalid(
            field,
            format!(
                "{raw} is in the past (today is {today} in the client's time zone); promise a date from today on"
            ),
        ));
    }
    let limit = today
        .checked_add(jiff::Span::new().days(i64::from(max_days)))
        .unwrap_or(Date::MAX);
    if local_date(&due, zone) > limit {
        return Err(ServiceError::invalid(
            field,
            format!(
                "{raw} is more than {max_days} days away (latest {limit}); the policy's limit can be raised in [promises]/[plans] max_days"
            ),
        ));
    }
    Ok(due)
}

fn parse_amount(field: &str, raw: &str, inv: &Invoice) -> Result<Decimal, ServiceError> {
    let m =
        Money::parse(raw, inv.currency).map_err(|e| ServiceError::invalid(field, e.to_string()))?;
    if m.amount <= Decimal::ZERO {
        return Err(ServiceError::invalid(field, "must be greater than zero"));
    }
    Ok(m.amount)
}

/// The invoice, checked to be open with a balance and no active arrangement.
fn arrangeable(
    tx: &Tx<'_>,
    id: &InvoiceId,
) -> Result<Result<(Invoice, Client), ServiceError>, TxFail> {
    let Some(inv) = tx.invoice(id)? else {
        return Ok(Err(not_found(id)));
    };
    if inv.status != InvoiceStatus::Open || inv.balance <= Decimal::ZERO {
        return Ok(Err(ServiceError::Conflict(format!(
            "invoice {id} is paid; there is nothing left to promise"
        ))));
    }
    if let Some(a) = inv.active_arrangement() {
        return Ok(Err(ServiceError::Conflict(format!(
            "invoice {id} already has an active {kind} #{n}; cancel it with DELETE /v1/invoices/{id}/{kind}s/{n} before making a new one",
            kind = a.kind.as_str(),
            n = a.id
        ))));
    }
    let Some(client) = tx.client(&inv.client_id)? else {
        return Ok(Err(ServiceError::Conflict(format!(
            "invoice {id} names client {} which does not exist",
            inv.client_id
        ))));
    };
    Ok(Ok((inv, client)))
}

/// Stores `arr` on `inv`: the regular cadence waits, the arrangement's first reminder (or its
/// deadline check) is planned.
fn start(
    tx: &Tx<'_>,
    policy: &Policy,
    mut inv: Invoice,
    client: &Client,
    arr: Arrangement,
    now: Timestamp,
) -> Result<Arranged, TxFail> {
    let summary = describe(&arr, &inv);
    inv.arrangements.push(arr.clone());
    inv.updated_at = now;
    tx.log(&event(&inv, now, summary))?;
    let next = replan(tx, &mut inv, client, policy, now)?;
    super::events::arrangement_event(tx, EventKind::PromiseMade, &inv, &arr, now, json!({}))?;
    tx.put_invoice(&inv)?;
    Ok(Arranged {
        invoice: inv,
        arrangement: arr,
        next,
    })
}

fn describe(arr: &Arrangement, inv: &Invoice) -> String {
    let how = arr
        .channel
        .as_deref()
        .map(|c| format!(" on {c}"))
        .unwrap_or_default();
    let note = arr
        .note
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    match arr.kind {
        ArrangementKind::Promise => {
            let (amount, due) = arr
                .instalments
                .first()
                .map(|i| (i.amount.to_string(), i.due.to_string()))
                .unwrap_or_default();
            format!(
                "promise #{} made{how}: {amount} {} by {due}{note}; the regular cadence waits",
                arr.id, inv.currency
            )
        }
        ArrangementKind::Plan => {
            let parts: Vec<String> = arr
                .instalments
                .iter()
                .map(|i| format!("{} on {}", i.amount, i.due))
                .collect();
            format!(
                "plan #{} agreed{how}: {} instalments in {} ({}){note}; the regular cadence waits",
                arr.id,
                arr.instalments.len(),
                inv.currency,
                parts.join(", ")
            )
        }
    }
}

fn next_id(inv: &Invoice) -> u32 {
    inv.arrangements
        .iter()
        .map(|a| a.id)
        .max()
        .unwrap_or(0)
        .saturating_add(1)
}

/// Records a promise to pay on an invoice (see [`PromiseInput`]).
pub fn make_promise(
    store: &Store,
    policy: &Policy,
    id: &InvoiceId,
    input: PromiseInput,
    now: Timestamp,
) -> Result<Arranged, ServiceError> {
    let channel = check_channel(input.channel.clone())?;
    let note = check_note(input.note.clone())?;
    flatten(store.transaction(|tx| {
        match promise_in(tx, policy, id, &input, channel.clone(), note.clone(), now)? {
            Ok(a) => Ok(a),
            Err(e) => abort(e),
        }
    }))
}

/// Records a promise on invoice `id` inside the caller's command (a call task's `promise`
/// outcome): the checks of [`make_promise`], answered as `Ok(Err(..))` so the caller aborts.
pub(crate) fn promise_in_tx(
    tx: &Tx<'_>,
    policy: &Policy,
    id: &InvoiceId,
    input: &PromiseInput,
    now: Timestamp,
) -> Result<Result<Arranged, ServiceError>, TxFail> {
    let checked = check_channel(input.channel.clone())
        .and_then(|c| check_note(input.note.clone()).map(|n| (c, n)));
    let (channel, note) = match checked {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    promise_in(tx, policy, id, input, channel, note, now)
}

fn promise_in(
    tx: &Tx<'_>,
    policy: &Policy,
    id: &InvoiceId,
    input: &PromiseInput,
    channel: Option<String>,
    note: Option<String>,
    now: Timestamp,
) -> Result<Result<Arranged, ServiceError>, TxFail> {
    let (inv, client) = match arrangeable(tx, id)? {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let zone = client_zone(policy, &client);
    let today = now.to_zoned(zone.clone()).date();
    let checked = parse_amount("amount", &input.amount, &inv).and_then(|amount| {
        if amount > inv.balance {
            return Err(ServiceError::invalid(
                "amount",
                format!(
                    "{amount} is more than the balance {} {}; promise at most the balance",
                    inv.balance, inv.currency
                ),
            ));
        }
        let due = check_date(
            "date",
            &input.date,
            today,
            &zone,
            now,
            policy.arrangements.promise_max_days,
        )?;
        Ok((due, amount))
    });
    let (due, amount) = match checked {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let arr = Arrangement::new(
        next_id(&inv),
        ArrangementKind::Promise,
        vec![(due, amount)],
        channel,
        note,
        now,
    );
    Ok(Ok(start(tx, policy, inv, &client, arr, now)?))
}

/// Records a payment plan on an invoice (see [`PlanInput`]).
pub fn make_plan(
    store: &Store,
    policy: &Policy,
    id: &InvoiceId,
    input: PlanInput,
    now: Timestamp,
) -> Result<Arranged, ServiceError> {
    let channel = check_channel(input.channel)?;
    let note = check_note(input.note)?;
    let max = policy.arrangements.plan_max_instalments as usize;
    if input.instalments.is_empty() || input.instalments.len() > max {
        return Err(ServiceError::invalid(
            "instalments",
            format!(
                "{} instalments given; a plan has 1 to {max} (the policy's [plans] max_instalments)",
                input.instalments.len()
            ),
        ));
    }
    flatten(store.transaction(|tx| {
        let (inv, client) = match arrangeable(tx, id)? {
            Ok(v) => v,
            Err(e) => return abort(e),
        };
        let zone = client_zone(policy, &client);
        let today = now.to_zoned(zone.clone()).date();
        let mut parts: Vec<(Due, Decimal)> = Vec::with_capacity(input.instalments.len());
        for (i, inst) in input.instalments.iter().enumerate() {
            let field = |f: &str| format!("instalments[{i}].{f}");
            let amount = match parse_amount(&field("amount"), &inst.amount, &inv) {
                Ok(a) => a,
                Err(e) => return abort(e),
            };
            let due = match check_date(
                &field("date"),
                &inst.date,
                today,
                &zone,
                now,
                policy.arrangements.plan_max_days,
            ) {
                Ok(d) => d,
                Err(e) => return abort(e),
            };
            if let Some((prev, _)) = parts.last() {
                let later = match (prev, &due) {
                    (Due::Date(a), Due::Date(b)) => b > a,
                    (Due::Instant(a), Due::Instant(b)) => b > a,
                    (a, b) => local_date(b, &zone) > local_date(a, &zone),
                };
                if !later {
                    return abort(ServiceError::invalid(
                        field("date"),
                        format!(
                            "{} does not come after the previous instalment ({prev}); list instalments in date order, each later than the one before",
                            inst.date
                        ),
                    ));
                }
            }
            parts.push((due, amount));
        }
        let total = match inv
            .currency
            .sum("sum of the instalments", parts.iter().map(|(_, a)| *a))
        {
            Ok(t) => t,
            Err(e) => return abort(ServiceError::invalid("instalments", e.to_string())),
        };
        if total != inv.balance {
            return abort(ServiceError::invalid(
                "instalments",
                format!(
                    "the instalments add up to {total} but the balance is {} {}; make them sum to the balance exactly",
                    inv.balance, inv.currency
                ),
            ));
        }
        let arr = Arrangement::new(
            next_id(&inv),
            ArrangementKind::Plan,
            parts,
            channel.clone(),
            note.clone(),
            now,
        );
        Ok::<_, TxError<ServiceError>>(start(tx, policy, inv, &client, arr, now)?)
    }))
}

/// Cancels active arrangement `n` of `kind` on an invoice: the regular cadence takes over with
/// its next future step. Not a broken promise: the client's count does not change.
pub fn cancel_arrangement(
    store: &Store,
    policy: &Policy,
    id: &InvoiceId,
    kind: ArrangementKind,
    n: u32,
    reason: Option<String>,
    now: Timestamp,
) -> Result<(Invoice, Option<Timestamp>), ServiceError> {
    let reason = check_note(reason)?;
    flatten(store.transaction(|tx| {
        let Some(mut inv) = tx.invoice(id)? else {
            return abort(not_found(id));
        };
        let found = inv
            .arrangement(n)
            .filter(|a| a.kind == kind)
            .map(|a| a.state);
        match found {
            None => {
                return abort(ServiceError::NotFound {
                    what: kind.as_str(),
                    id: format!("{id}/{n}"),
                    hint: "; GET the invoice (/v1/invoices/<id>) to list its promises and plans",
                });
            }
            Some(ArrangementState::Active) => {}
            Some(state) => {
                return abort(ServiceError::Conflict(format!(
                    "{} #{n} of invoice {id} is {state:?} already; only an active one can be cancelled",
                    kind.as_str()
                ).to_lowercase()));
            }
        }
        let why = reason
            .clone()
            .unwrap_or_else(|| "cancelled through the API".to_owned());
        if let Some(a) = inv.arrangement_mut(n) {
            a.close(ArrangementState::Cancelled, why.clone(), now);
        }
        inv.updated_at = now;
        tx.log(&event(
            &inv,
            now,
            format!("{} #{n} cancelled: {why}; the regular cadence resumes", kind.as_str()),
        ))?;
        let next = match tx.client(&inv.client_id)? {
            Some(client) => {
                skip_passed_steps(tx, &mut inv, &client, policy, now, &format!("while {} #{n} was active", kind.as_str()))?;
                replan(tx, &mut inv, &client, policy, now)?
            }
            None => None,
        };
        tx.put_invoice(&inv)?;
        Ok::<_, TxError<ServiceError>>((inv, next))
    }))
}

/// Allocates `delta` (a payment, or a negative refund) to the invoice's active arrangement,
/// after its balance has been updated. Logs what changed; keeps the arrangement when it is
/// fully paid (or the invoice is), and then hands the chase back to the regular cadence from
/// its next future step. Returns true when the pending reminder must be planned again.
pub(crate) fn on_money(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &mut Invoice,
    delta: Decimal,
    now: Timestamp,
) -> Result<bool, TxFail> {
    let balance = inv.balance;
    let currency = inv.currency;
    let Some(arr) = inv.arrangements.last_mut().filter(|a| a.is_active()) else {
        return Ok(false);
    };
    let kind = arr.kind.as_str();
    let n = arr.id;
    let allocation = arr.allocate(delta);
    let line = if balance <= Decimal::ZERO || allocation == Allocation::Complete {
        let what = match arr.kind {
            ArrangementKind::Promise => "kept",
            ArrangementKind::Plan => "completed",
        };
        let why = format!(
            "{kind} #{n} {what}: {} {currency} received since it was made",
            arr.received
        );
        arr.close(ArrangementState::Kept, why.clone(), now);
        tracing::info!(invoice = %inv.id, arrangement = n, "{kind} {what}");
        let kept = arr.clone();
        super::events::arrangement_event(tx, EventKind::PromiseKept, inv, &kept, now, json!({}))?;
        let resume = if balance > Decimal::ZERO {
            "; the regular cadence resumes for the rest of the balance"
        } else {
            ""
        };
        let line = format!("{why}{resume}");
        if balance > Decimal::ZERO {
            if let Some(client) = tx.client(&inv.client_id)? {
                skip_passed_steps(
                    tx,
                    inv,
                    &client,
                    policy,
                    now,
                    &format!("while {kind} #{n} was active"),
                )?;
            }
        }
        line
    } else {
        match allocation {
            Allocation::Moved { from, to } => {
                let Some(next) = arr.instalments.get(to as usize) else {
                    return Ok(true);
                };
                let verb = if to > from {
                    "paid"
                } else {
                    "re-opened by a refund"
                };
                format!(
                    "plan #{n}: instalment {} {verb}; instalment {} ({} {currency} due {}) is next, {} {currency} outstanding",
                    from.min(to) + 1,
                    to + 1,
                    next.amount,
                    next.due,
                    next.amount.checked_sub(next.paid).unwrap_or(Decimal::ZERO)
                )
            }
            _ => return Ok(false),
        }
    };
    tx.log(&event(inv, now, line))?;
    Ok(true)
}

/// Closes the invoice's active arrangement as kept because the invoice was paid in full (by any
/// route), logging it.
pub(crate) fn close_on_paid(tx: &Tx<'_>, inv: &mut Invoice, now: Timestamp) -> Result<(), TxFail> {
    let Some(arr) = inv.arrangements.last_mut().filter(|a| a.is_active()) else {
        return Ok(());
    };
    let line = format!(
        "{} #{} kept: the invoice was paid in full",
        arr.kind.as_str(),
        arr.id
    );
    arr.close(ArrangementState::Kept, line.clone(), now);
    let kept = arr.clone();
    super::events::arrangement_event(tx, EventKind::PromiseKept, inv, &kept, now, json!({}))?;
    tx.log(&event(inv, now, line))
}

/// Cancels an active plan whose instalments no longer add up to the balance (the invoice
/// amount changed). A promise stays.
pub(crate) fn cancel_mismatched_plan(
    tx: &Tx<'_>,
    inv: &mut Invoice,
    now: Timestamp,
) -> Result<bool, TxFail> {
    let outstanding = inv.balance;
    let Some(arr) = inv
        .arrangements
        .last_mut()
        .filter(|a| a.is_active() && a.kind == ArrangementKind::Plan)
    else {
        return Ok(false);
    };
    let owed = arr.total().and_then(|t| t.checked_sub(arr.received));
    if owed == Some(outstanding) {
        return Ok(false);
    }
    let owed = owed.map_or_else(|| "total".to_owned(), |o| o.to_string());
    let why = format!(
        "the invoice amount changed: the plan's {owed} outstanding no longer matches the balance {outstanding}; agree a new plan"
    );
    arr.close(ArrangementState::Cancelled, why.clone(), now);
    let line = format!("plan #{} cancelled: {why}", arr.id);
    tx.log(&event(inv, now, line))?;
    Ok(true)
}

/// What a deadline check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineOutcome {
    /// The instalment was unpaid: the arrangement is broken.
    Broken,
    /// Nothing to check any more (paid, cancelled, superseded): the reminder is dropped.
    Moot,
}

/// Runs the deadline check `reminder` stands for, inside the caller's transaction: when its
/// instalment is still unpaid, the arrangement breaks (the instalment is missed, the client's
/// broken-promise count grows, the broken-promise cadence starts, and the regular cadence's
/// passed steps are skipped). The invoice's next reminder is planned either way. Returns the
/// outcome and the next reminder's time.
pub fn deadline_reached(
    tx: &Tx<'_>,
    reminder: &Reminder,
    policy: &Policy,
    now: Timestamp,
) -> Result<(DeadlineOutcome, Option<Timestamp>), TxFail> {
    let Track::Deadline {
        arrangement,
        instalment,
    } = reminder.track
    else {
        return Ok((DeadlineOutcome::Moot, None));
    };
    let Some(mut inv) = tx.invoice(&reminder.invoice_id)? else {
        return Ok((DeadlineOutcome::Moot, None));
    };
    if inv.generation != reminder.generation || inv.pending != Some(reminder.id) {
        return Ok((DeadlineOutcome::Moot, None));
    }
    inv.pending = None;
    let Some(mut client) = tx.client(&inv.client_id)? else {
        tx.put_invoice(&inv)?;
        return Ok((DeadlineOutcome::Moot, None));
    };
    let unpaid = inv.status == InvoiceStatus::Open
        && inv.agenda()
            == (Track::Instalment {
                arrangement,
                instalment,
            });
    let mut outcome = DeadlineOutcome::Moot;
    if unpaid {
        let currency = inv.currency;
        let broken_cadence = policy.arrangements.broken_cadence.is_some();
        let line = match inv.arrangement_mut(arrangement) {
            Some(arr) => {
                let count = arr.instalments.len();
                let i = instalment as usize;
                let Some(inst) = arr.instalments.get_mut(i) else {
                    tx.put_invoice(&inv)?;
                    return Ok((DeadlineOutcome::Moot, None));
                };
                inst.state = InstalmentState::Missed;
                let what = match arr.kind {
                    ArrangementKind::Promise => format!(
                        "promise #{arrangement} broken: {} {currency} promised by {} not received ({} received)",
                        inst.amount, inst.due, inst.paid
                    ),
                    ArrangementKind::Plan => format!(
                        "plan #{arrangement} broken: instalment {} of {count} ({} {currency} due {}) not paid ({} received)",
                        i + 1,
                        inst.amount,
                        inst.due,
                        inst.paid
                    ),
                };
                arr.close(ArrangementState::Broken, what.clone(), now);
                arr.broken_done = !broken_cadence;
                what
            }
            None => {
                tx.put_invoice(&inv)?;
                return Ok((DeadlineOutcome::Moot, None));
            }
        };
        client.broken_promises = client.broken_promises.saturating_add(1);
        client.updated_at = now;
        tx.put_client(&client)?;
        if let Some(arr) = inv.arrangement(arrangement) {
            let extra = json!({ "broken_promises": client.broken_promises });
            super::events::arrangement_event(tx, EventKind::PromiseBroken, &inv, arr, now, extra)?;
        }
        super::segments::resegment_client(tx, policy, &client, &inv.id, now)?;
        tracing::info!(invoice = %inv.id, client = %client.id, arrangement, broken_promises = client.broken_promises, "promise broken");
        tx.log(&event(
            &inv,
            now,
            format!(
                "{line}; the client has broken {} promise(s)",
                client.broken_promises
            ),
        ))?;
        inv.updated_at = now;
        skip_passed_steps(
            tx,
            &mut inv,
            &client,
            policy,
            now,
            &format!("while arrangement #{arrangement} was active"),
        )?;
        outcome = DeadlineOutcome::Broken;
    }
    let next = replan(tx, &mut inv, &client, policy, now)?;
    tx.put_invoice(&inv)?;
    Ok((outcome, next))
}
