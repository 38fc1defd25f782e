//! Payment-provider events: persisted on receipt (before the provider gets its 200), then
//! matched to an invoice and applied once, in one transaction with the invoice change.

use jiff::Timestamp;
use rust_decimal::Decimal;

use super::invoices::after_money;
use super::timeline::event;
use super::{ServiceError, flatten};
use crate::domain::{
    Credit, Currency, InboxEntry, InboxPayload, InboxState, Invoice, InvoiceId, MoneyError, Payment,
};
use crate::payments::{ProviderEvent, ProviderEventKind};
use crate::policy::Policy;
use crate::store::{Store, Tx, TxError, TxFail};

/// Whether an event was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored; it will be processed.
    New,
    /// Already received (a redelivery): nothing changed.
    Duplicate,
}

/// Stores a verified event under `key` (`provider:event-id`) unless already there. Call
/// [`Store::durable`] before acknowledging it to the provider.
pub fn enqueue(
    store: &Store,
    key: &str,
    payload: InboxPayload,
    now: Timestamp,
) -> Result<Enqueued, ServiceError> {
    flatten(store.transaction(|tx| enqueue_in(tx, key, payload, now)))
}

/// [`enqueue`] for async callers (the webhook endpoints): the transaction runs on the store's
/// writer thread, and this returns once it is on disk, so the caller may acknowledge.
pub async fn enqueue_async(
    store: &Store,
    key: String,
    payload: InboxPayload,
    now: Timestamp,
) -> Result<Enqueued, ServiceError> {
    flatten(
        store
            .write_durable(move |tx| enqueue_in(tx, &key, payload, now))
            .await,
    )
}

/// The transaction of [`enqueue`].
fn enqueue_in(
    tx: &mut Tx<'_>,
    key: &str,
    payload: InboxPayload,
    now: Timestamp,
) -> Result<Enqueued, TxError<ServiceError>> {
    if tx.inbox_entry(key)?.is_some() {
        return Ok(Enqueued::Duplicate);
    }
    tx.put_inbox_entry(&InboxEntry {
        key: key.to_owned(),
        payload,
        received_at: now,
        state: InboxState::Received,
        attempts: 0,
        next_attempt_at: now,
        event: None,
        invoice_id: None,
        detail: None,
        updated_at: now,
    })?;
    Ok(Enqueued::New)
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Money applied (or re-opened by a refund).
    Applied {
        /// The invoice.
        invoice: InvoiceId,
        /// Its balance now.
        balance: Decimal,
        /// True when it is paid in full.
        closed: bool,
    },
    /// A pending or ignored event: recorded only.
    Recorded,
    /// No invoice matches: kept and reported.
    Unmatched,
    /// Matched but not applied (currency mismatch...): kept and reported.
    Flagged(String),
    /// The entry was already final, or the same money was already applied.
    Duplicate,
    /// Not applicable yet (a refund that arrived before its payment): tried again later.
    Deferred(String),
    /// Can never be applied as sent (its amount, or a total it would make, passes the
    /// currency's maximum): recorded as failed with the reason, not retried.
    Failed(String),
}

/// Most attempts for a deferred event before it is flagged for a person.
pub const MAX_DEFERRALS: u32 = 16;

/// When a deferred or failed event is tried again: 2 s, 4 s, 8 s... at most an hour.
pub fn retry_delay(attempts: u32) -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(2i64.saturating_pow(attempts.clamp(1, 12)).min(3600))
}

impl ApplyOutcome {
    /// The entry state this outcome leaves.
    fn state(&self) -> InboxState {
        match self {
            ApplyOutcome::Applied { .. } | ApplyOutcome::Recorded | ApplyOutcome::Duplicate => {
                InboxState::Applied
            }
            ApplyOutcome::Unmatched => InboxState::Unmatched,
            ApplyOutcome::Flagged(_) => InboxState::Flagged,
            ApplyOutcome::Failed(_) => InboxState::Failed,
            ApplyOutcome::Deferred(_) => InboxState::Received,
        }
    }
}

/// The invoice an event's references point at: metadata, `client_reference_id`,
/// `external_reference` (each as an invoice id), then the invoice number.
fn find_invoice(tx: &Tx<'_>, ev: &ProviderEvent) -> Result<Option<Invoice>, TxFail> {
    let r = &ev.refs;
    for candidate in [&r.metadata, &r.client_reference_id, &r.external_reference]
        .into_iter()
        .flatten()
    {
        if let Ok(id) = InvoiceId::new(candidate.trim()) {
            if let Some(inv) = tx.invoice(&id)? {
                return Ok(Some(inv));
            }
        }
    }
    if let Some(number) = &r.number {
        if let Some(id) = tx.invoice_by_number(number)? {
            return tx.invoice(&id);
        }
    }
    Ok(None)
}

/// Applies `event` (received as inbox entry `key`) once: matches the invoice, checks the
/// currency, applies the payment (an overpayment becomes a credit on the client) or re-opens
/// the balance on a refund (and resumes the chase), and records the entry's final state, all in
/// one transaction.
pub fn apply_event(
    store: &Store,
    policy: &Policy,
    key: &str,
    event: &ProviderEvent,
    now: Timestamp,
) -> Result<ApplyOutcome, ServiceError> {
    flatten(store.transaction(|tx| {
        let Some(entry) = tx.inbox_entry(key)? else {
            return Err(TxError::Abort(ServiceError::NotFound {
                what: "payment event",
                id: key.to_owned(),
                hint: "",
            }));
        };
        Ok::<_, TxError<ServiceError>>(settle_entry(tx, policy, entry, event, now)?)
    }))
}

/// What [`apply_queued`] did with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueuedOutcome {
    /// The entry carried its event and was applied (see the outcome).
    Applied(ApplyOutcome),
    /// The entry only names a payment: fetch it first, then [`apply_event`].
    NeedsFetch,
    /// Nothing to do (gone, already final, unreadable: left for the processor).
    Skipped,
}

/// Applies the self-contained events among `keys` in ONE transaction (one lock, one write
/// batch for many events), leaving the others for the caller. Each event is still applied
/// once and atomically with its invoice change.
pub fn apply_queued(
    store: &Store,
    policy: &Policy,
    keys: &[String],
    now: Timestamp,
) -> Result<Vec<(String, QueuedOutcome)>, ServiceError> {
    flatten(store.transaction(|tx| {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let outcome = match tx.inbox_entry(key)? {
                Some(entry) if !entry.state.is_final() => match &entry.payload {
                    InboxPayload::Event { event } => {
                        let event = (**event).clone();
                        QueuedOutcome::Applied(settle_entry(tx, policy, entry, &event, now)?)
                    }
                    InboxPayload::Fetch { .. } => QueuedOutcome::NeedsFetch,
                    InboxPayload::Unreadable { .. } => QueuedOutcome::Skipped,
                },
                _ => QueuedOutcome::Skipped,
            };
            out.push((key.clone(), outcome));
        }
        Ok::<_, TxError<ServiceError>>(out)
    }))
}

/// Applies `event` and records the entry's new state, inside the caller's transaction.
fn settle_entry(
    tx: &Tx<'_>,
    policy: &Policy,
    mut entry: InboxEntry,
    event: &ProviderEvent,
    now: Timestamp,
) -> Result<ApplyOutcome, TxFail> {
    if entry.state.is_final() {
        return Ok(ApplyOutcome::Duplicate);
    }
    let (mut outcome, invoice, detail) = apply_in(tx, policy, event, now)?;
    entry.attempts += 1;
    if matches!(outcome, ApplyOutcome::Deferred(_)) {
        if entry.attempts >= MAX_DEFERRALS {
            outcome = ApplyOutcome::Flagged(format!(
                "{detail}; still not applicable after {} attempts",
                entry.attempts
            ));
        } else {
            entry.next_attempt_at = now + retry_delay(entry.attempts);
        }
    }
    entry.event = Some(event.clone());
    entry.state = outcome.state();
    entry.invoice_id = invoice;
    entry.detail = Some(match &outcome {
        ApplyOutcome::Flagged(why) | ApplyOutcome::Failed(why) => why.clone(),
        _ => detail,
    });
    entry.updated_at = now;
    tx.put_inbox_entry(&entry)?;
    Ok(outcome)
}

type Applied = (ApplyOutcome, Option<InvoiceId>, String);

fn apply_in(
    tx: &Tx<'_>,
    policy: &Policy,
    ev: &ProviderEvent,
    now: Timestamp,
) -> Result<Applied, TxFail> {
    let what = format!("{} {} {}", ev.provider, ev.event_type, ev.object_id);
    let matched = find_invoice(tx, ev)?;
    if matches!(
        ev.kind,
        ProviderEventKind::Pending | ProviderEventKind::Ignored
    ) {
        let note = ev
            .note
            .clone()
            .unwrap_or_else(|| "nothing to apply".to_owned());
        let detail = format!("{what}: {:?}: {note}", ev.kind).to_lowercase();
        if let Some(inv) = &matched {
            tx.log(&event(inv, now, detail.clone()))?;
        }
        return Ok((ApplyOutcome::Recorded, matched.map(|i| i.id), detail));
    }
    let Some(mut inv) = matched else {
        let r = &ev.refs;
        let detail = format!(
            "{what}: no invoice matches (metadata {:?}, client_reference_id {:?}, external_reference {:?}, number {:?}); create the invoice or fix the reference, then retry the event",
            r.metadata, r.client_reference_id, r.external_reference, r.number
        );
        tracing::warn!(event = %ev.event_id, provider = %ev.provider, "payment event matches no invoice; kept for review");
        return Ok((ApplyOutcome::Unmatched, None, detail));
    };
    let currency_ok = ev
        .currency
        .as_deref()
        .and_then(|c| Currency::parse(c).ok())
        .is_some_and(|c| c == inv.currency);
    let Some(amount) = ev.amount.filter(|a| *a > Decimal::ZERO) else {
        let why = format!("{what}: no positive amount in the event; not applied");
        tx.log(&event(&inv, now, why.clone()))?;
        return Ok((ApplyOutcome::Flagged(why.clone()), Some(inv.id), why));
    };
    if inv.status == crate::domain::InvoiceStatus::Void {
        let why = format!(
            "{what}: {amount} received for a void invoice; not applied, review it (apply it to the invoice that replaced this one, or refund it)"
        );
        tracing::warn!(invoice = %inv.id, event = %ev.event_id, "payment for a void invoice; flagged");
        tx.log(&event(&inv, now, why.clone()))?;
        return Ok((ApplyOutcome::Flagged(why.clone()), Some(inv.id), why));
    }
    if !currency_ok {
        let why = format!(
            "{what}: {amount} {} does not match the invoice currency {}; not applied, review it",
            ev.currency.as_deref().unwrap_or("(no currency)"),
            inv.currency
        );
        tracing::warn!(invoice = %inv.id, event = %ev.event_id, "payment currency mismatch; flagged");
        tx.log(&event(&inv, now, why.clone()))?;
        return Ok((ApplyOutcome::Flagged(why.clone()), Some(inv.id), why));
    }
    let source = format!("{}:{}", ev.provider, ev.event_id);
    let mut delta = Decimal::ZERO;
    let detail = match ev.kind {
        ProviderEventKind::Paid => {
            let reference = format!("{}:{}", ev.provider, ev.object_id);
            let same_as: Vec<String> = ev
                .same_payment
                .iter()
                .map(|id| format!("{}:{id}", ev.provider))
                .collect();
            let ours = |r: &String| *r == reference || same_as.contains(r);
            if let Some(p) = inv
                .payments
                .iter()
                .find(|p| ours(&p.reference) || p.same_as.iter().any(ours))
            {
                let d = format!(
                    "{what}: the same money was already applied as payment {}",
                    p.reference
                );
                return Ok((ApplyOutcome::Duplicate, Some(inv.id), d));
            }
            let paid_at = ev.occurred_at.unwrap_or(now);
            let discount = settling_discount(tx, policy, &inv, amount, paid_at)?;
            let money = match apply_money(&inv, amount, discount) {
                Ok(m) => m,
                Err(e) => return too_large(tx, &inv, &what, e, now),
            };
            let over = money.over;
            if over > Decimal::ZERO {
                if let Err(e) = add_credit(tx, &inv, over, &source, now)? {
                    return too_large(tx, &inv, &what, e, now);
                }
            }
            inv.balance = money.balance;
            inv.payments.push(Payment {
                amount,
                paid_at,
                reference: reference.clone(),
                source: source.clone(),
                same_as,
            });
            delta = amount;
            let mut d = format!(
                "payment {amount} {} ref {reference} via {source}; balance {}",
                inv.currency, inv.balance
            );
            if let Some(disc) = discount {
                d.push_str(&format!(
                    "; paid early: the {disc} discount settles the invoice"
                ));
            }
            if over > Decimal::ZERO {
                d.push_str("; overpaid by ");
                d.push_str(&over.to_string());
                d.push_str(", kept as a credit on the client");
            }
            d
        }
        ProviderEventKind::Refunded => {
            // A refund of money not received yet (events out of order): wait for the payment.
            let cur = inv.currency;
            let sums = cur
                .sum("sum of the payments", inv.payments.iter().map(|p| p.amount))
                .and_then(|received| {
                    let reopened = cur.add("balance", inv.balance, amount)?.min(inv.amount);
                    Ok((
                        received,
                        reopened,
                        cur.sub("refund", reopened, inv.balance)?,
                    ))
                });
            let (received, reopened, back) = match sums {
                Ok(v) => v,
                Err(e) => return too_large(tx, &inv, &what, e, now),
            };
            if received < amount {
                let d = format!(
                    "{what}: refund of {amount} but only {received} received so far; waiting for the payment"
                );
                return Ok((ApplyOutcome::Deferred(d.clone()), Some(inv.id), d));
            }
            delta = -back;
            inv.balance = reopened;
            inv.payments.push(Payment {
                amount: -back,
                paid_at: ev.occurred_at.unwrap_or(now),
                reference: format!("{}:refund:{}", ev.provider, ev.event_id),
                source: source.clone(),
                same_as: Vec::new(),
            });
            format!(
                "refund {amount} {} via {source}; balance re-opened to {}",
                inv.currency, inv.balance
            )
        }
        ProviderEventKind::Pending | ProviderEventKind::Ignored => String::new(),
    };
    inv.updated_at = now;
    tx.log(&event(&inv, now, detail.clone()))?;
    // Re-opened by a refund: the chase resumes from where it stopped.
    after_money(tx, policy, &mut inv, delta, now)?;
    tx.put_invoice(&inv)?;
    let out = ApplyOutcome::Applied {
        invoice: inv.id.clone(),
        balance: inv.balance,
        closed: inv.balance.is_zero(),
    };
    Ok((out, Some(inv.id), detail))
}

/// An event whose money cannot be applied because a figure would pass the currency's maximum:
/// logged on the invoice, and failed for good (never retried, never a panic).
fn too_large(
    tx: &Tx<'_>,
    inv: &Invoice,
    what: &str,
    e: MoneyError,
    now: Timestamp,
) -> Result<Applied, TxFail> {
    let why = format!("{what}: not applied: {e}; record it by hand if it is real");
    tracing::warn!(invoice = %inv.id, reason = %why, "payment event past the amount maximum; failed");
    tx.log(&event(inv, now, why.clone()))?;
    Ok((ApplyOutcome::Failed(why.clone()), Some(inv.id.clone()), why))
}

/// What a payment does to an invoice's figures, computed (checked) before anything changes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MoneyMove {
    /// The balance after the payment (never below zero).
    pub balance: Decimal,
    /// What was paid beyond the balance (a credit for the client), zero or more.
    pub over: Decimal,
}

/// Checks that `paid` (with the early-payment `discount` it earns, if any) can be applied to
/// `inv`: the payment, the invoice's total of payments and the new balance all stay within the
/// currency's maximum. Nothing is changed.
pub(crate) fn apply_money(
    inv: &Invoice,
    paid: Decimal,
    discount: Option<Decimal>,
) -> Result<MoneyMove, MoneyError> {
    let cur = inv.currency;
    cur.bounded("payment", paid)?;
    cur.sum(
        "sum of the payments on the invoice",
        inv.payments
            .iter()
            .map(|p| p.amount)
            .chain(std::iter::once(paid)),
    )?;
    let mut balance = cur.sub("balance", inv.balance, paid)?;
    if let Some(d) = discount {
        balance = cur.sub("balance", balance, d)?;
    }
    let over = cur.sub("overpayment", paid, inv.balance)?;
    Ok(MoneyMove {
        balance: balance.max(Decimal::ZERO),
        over: over.max(Decimal::ZERO),
    })
}

/// Keeps `over` (paid beyond the balance of `inv`) as a credit on the invoice's client. The
/// inner error (nothing written) when the credit would pass the currency's maximum.
pub(crate) fn add_credit(
    tx: &Tx<'_>,
    inv: &Invoice,
    over: Decimal,
    source: &str,
    now: Timestamp,
) -> Result<Result<(), MoneyError>, TxFail> {
    let Some(mut client) = tx.client(&inv.client_id)? else {
        return Ok(Ok(()));
    };
    let credit = client
        .credits
        .entry(inv.currency.code().to_owned())
        .or_insert(Credit {
            amount: Decimal::ZERO,
            sources: Vec::new(),
        });
    credit.amount = match inv.currency.add("client's credit", credit.amount, over) {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    credit
        .sources
        .push(format!("overpayment of {} via {source}", inv.id));
    client.updated_at = now;
    tx.put_client(&client).map(Ok)
}

/// The early-payment discount `amount` (paid at `paid_at`) earns on `inv`, if it settles it:
/// the difference between the balance and the discounted amount.
pub(crate) fn settling_discount(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &Invoice,
    amount: Decimal,
    paid_at: Timestamp,
) -> Result<Option<Decimal>, TxFail> {
    if policy.terms.early_discount.is_none() {
        return Ok(None);
    }
    let Some(client) = tx.client(&inv.client_id)? else {
        return Ok(None);
    };
    let zone = crate::schedule::client_zone(policy, &client);
    Ok(
        crate::policy::terms::settles_with_discount(&policy.terms, inv, amount, &zone, paid_at)
            .and_then(|_| inv.balance.checked_sub(amount)),
    )
}

/// Records a failed processing attempt: retried at `retry_at`, or final (`Failed`) when `None`.
pub async fn processing_failed(
    store: &Store,
    key: &str,
    error: &str,
    retry_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<(), ServiceError> {
    let (key, error) = (key.to_owned(), error.to_owned());
    flatten(
        store
            .write(move |tx| {
                let Some(mut entry) = tx.inbox_entry(&key)? else {
                    return Ok::<_, TxError<ServiceError>>(());
                };
                if entry.state.is_final() {
                    return Ok(());
                }
                entry.attempts += 1;
                entry.detail = Some(error);
                entry.updated_at = now;
                match retry_at {
                    Some(at) => entry.next_attempt_at = at,
                    None => entry.state = InboxState::Failed,
                }
                tx.put_inbox_entry(&entry)?;
                Ok(())
            })
            .await,
    )
}

/// Puts an unmatched, flagged or failed entry back in the queue (after ops created the invoice
/// or fixed the reference).
pub fn retry_entry(store: &Store, key: &str, now: Timestamp) -> Result<InboxEntry, ServiceError> {
    flatten(store.transaction(|tx| {
        let Some(mut entry) = tx.inbox_entry(key)? else {
            return Err(TxError::Abort(ServiceError::NotFound {
                what: "payment event",
                id: key.to_owned(),
                hint: " (keys look like stripe:evt_... or mercadopago:...)",
            }));
        };
        if entry.state == InboxState::Applied {
            return Err(TxError::Abort(ServiceError::Conflict(format!(
                "payment event {key} was applied already"
            ))));
        }
        entry.state = InboxState::Received;
        entry.next_attempt_at = now;
        entry.updated_at = now;
        tx.put_inbox_entry(&entry)?;
        Ok(entry)
    }))
}
