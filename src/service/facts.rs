//! Keeping a client's facts ledger ([`FactsLedger`]) in line with its invoices, inside the
//! command that changes them, and reading the facts back; rebuilding every client's ledger
//! from its invoices ([`rebuild_facts`]), once per data directory
//! ([`backfill_facts_once`]) for the clients written before plazo kept facts.

use std::ops::ControlFlow;
use std::sync::atomic::AtomicBool;

use jiff::Timestamp;

use super::ServiceError;
use super::resegment::{each_client, move_open_invoices};
use crate::domain::{AttemptOutcome, FactsLedger, behaviour_of};
use crate::domain::{Client, ClientFacts, ClientId, FactsMark, Invoice, PortfolioFacts};
use crate::policy::Policy;
use crate::schedule::client_zone;
use crate::store::{Store, StoreError, Tx, TxError, TxFail};

/// Updates the facts of `inv`'s client after `inv` changed from `before` (a payment made at
/// `payment_at`, a refund, a promise kept...), writing the client only when its ledger
/// changed. Returns the client as it now is (`None` when it is not stored).
pub(crate) fn update_facts(
    tx: &Tx<'_>,
    policy: &Policy,
    inv: &Invoice,
    before: FactsMark,
    payment_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<Option<Client>, TxFail> {
    let Some(mut client) = tx.client(&inv.client_id)? else {
        return Ok(None);
    };
    let zone = client_zone(policy, &client);
    if client.facts.update(before, inv, payment_at, &zone) {
        client.updated_at = now;
        tx.put_client(&client)?;
        super::segments::resegment_client(tx, policy, &client, &inv.id, now)?;
    }
    Ok(Some(client))
}

/// Records on the client's ledger that it wrote to plazo at `at` (an SMS or WhatsApp reply),
/// and, since rules can read `client.facts.last_inbound_at`, moves its open invoices whose
/// segment that changes (as a payment does).
pub(crate) fn note_inbound(
    tx: &Tx<'_>,
    policy: &Policy,
    client: &ClientId,
    at: Timestamp,
) -> Result<(), TxFail> {
    if let Some(mut c) = tx.client(client)? {
        c.facts.record_inbound(at);
        tx.put_client(&c)?;
        move_open_invoices(tx, policy, &c, at)?;
    }
    Ok(())
}

/// Most open invoices `GET /v1/clients/{id}` lists (all are counted and summed in `facts`).
pub const CLIENT_OPEN_LIST_MAX: usize = 200;

/// The facts `GET /v1/clients/{id}` shows for `client`: its behaviour over the policy's window,
/// and its open invoices summed as of `now` (their balances, the oldest days overdue, the
/// latest message sent); with the open invoices themselves, earliest due first (at most
/// [`CLIENT_OPEN_LIST_MAX`]), from the same reads.
pub fn client_facts(
    store: &Store,
    policy: &Policy,
    client: &Client,
    now: Timestamp,
) -> Result<(ClientFacts, Vec<Invoice>), StoreError> {
    let zone = client_zone(policy, client);
    let mut portfolio = PortfolioFacts::default();
    let mut open = Vec::new();
    for id in store.invoice_ids_of_client(&client.id)? {
        if let Some(inv) = store.invoice(&id)? {
            portfolio.add_open(&inv, &zone, now);
            if inv.status == crate::domain::InvoiceStatus::Open {
                open.push(inv.clone());
            }
            if let Some(sent) = store
                .timeline(&id)?
                .iter()
                .rev()
                .find(|a| a.outcome == AttemptOutcome::Sent)
            {
                portfolio.add_contact(sent.at);
            }
        }
    }
    let due_day = |inv: &Invoice| match inv.due_at {
        crate::domain::Due::Date(d) => d,
        crate::domain::Due::Instant(t) => t.to_zoned(zone.clone()).date(),
    };
    open.sort_by(|a, b| {
        due_day(a)
            .cmp(&due_day(b))
            .then_with(|| a.id.as_str().cmp(b.id.as_str()))
    });
    open.truncate(CLIENT_OPEN_LIST_MAX);
    Ok((
        ClientFacts {
            behaviour: behaviour_of(client, policy.facts.last_paid, now),
            portfolio,
        },
        open,
    ))
}

/// What [`rebuild_facts`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Clients looked at.
    pub clients: u64,
    /// Clients whose ledger differed from the one their invoices give, and was rewritten.
    pub rewritten: u64,
    /// Open invoices of those clients moved to another segment by their new facts.
    pub invoices_moved: u64,
    /// Whether every client was looked at (false: stopped early, by a shutdown).
    pub completed: bool,
}

/// Rebuilds every client's facts ledger from its invoices: for each client, in one command,
/// [`FactsLedger::recompute`] over the invoices the client's index lists (days late read in
/// the client's zone, `last_inbound_at` kept, since inbound messages are not on invoices), and
/// writes the client only when the ledger differs. A client rewritten also has its open
/// invoices moved when the new facts choose another segment for them (as any change of facts
/// does), as of `now`.
///
/// For clients stored before plazo kept facts (client record layout version 1), which read
/// back with an empty ledger whatever they paid. Running it again changes nothing. Blocks:
/// run it on a blocking thread.
pub fn rebuild_facts(
    store: &Store,
    policy: &Policy,
    now: Timestamp,
) -> Result<RebuildReport, ServiceError> {
    rebuild_facts_until(store, policy, now, &AtomicBool::new(false), &mut |_| {})
}

/// [`rebuild_facts`], stopping between two clients once `stop` is set (a shutdown; the
/// report then says `completed: false`), and calling `progress` with the counts so far after
/// every page of [`CLIENT_PAGE`](super::CLIENT_PAGE) clients.
pub fn rebuild_facts_until(
    store: &Store,
    policy: &Policy,
    now: Timestamp,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&RebuildReport),
) -> Result<RebuildReport, ServiceError> {
    let mut report = RebuildReport::default();
    report.completed = each_client(store, stop, |id| {
        report.clients += 1;
        if let Some(moved) = rebuild_client(store, policy, id, now)? {
            report.rewritten += 1;
            report.invoices_moved += moved;
        }
        if report.clients % super::CLIENT_PAGE as u64 == 0 {
            progress(&report);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(report)
}

/// Rebuilds the ledger of client `id` in one command; `Some(invoices moved)` when the client
/// was rewritten.
fn rebuild_client(
    store: &Store,
    policy: &Policy,
    id: &ClientId,
    now: Timestamp,
) -> Result<Option<u64>, StoreError> {
    let r = store.transaction(|tx| {
        let Some(mut client) = tx.client(id)? else {
            return Ok(None);
        };
        let mut invoices = Vec::new();
        for inv_id in tx.invoice_ids_of_client(id)? {
            if let Some(inv) = tx.invoice(&inv_id)?.filter(|i| i.client_id == *id) {
                invoices.push(inv);
            }
        }
        let zone = client_zone(policy, &client);
        let ledger = FactsLedger::recompute(&invoices, &zone, client.facts.last_inbound_at);
        if ledger == client.facts {
            return Ok(None);
        }
        client.facts = ledger;
        client.updated_at = now;
        tx.put_client(&client)?;
        let moved = move_open_invoices(tx, policy, &client, now)?;
        Ok::<_, TxError<std::convert::Infallible>>(Some(moved))
    })?;
    Ok(r.unwrap_or_else(|never| match never {}))
}

pub use crate::store::FACTS_BACKFILL_MARKER;

/// The facts backfill run at daemon start, once per data directory: unless the store holds
/// [`FACTS_BACKFILL_MARKER`], runs [`rebuild_facts_until`] and sets the marker (durably) once
/// the pass has looked at every client. A pass stopped early (`stop`, a shutdown) or failed
/// sets no marker and runs again at the next start (it is idempotent). Logs its progress at
/// info. Returns `None` when the marker was already set, else the pass's report.
pub fn backfill_facts_once(
    store: &Store,
    policy: &Policy,
    now: Timestamp,
    stop: &AtomicBool,
) -> Result<Option<RebuildReport>, ServiceError> {
    if store.meta(FACTS_BACKFILL_MARKER)?.is_some() {
        return Ok(None);
    }
    tracing::info!(
        "facts backfill: rebuilding every client's facts from its invoices (once per data directory)"
    );
    let mut last_log = crate::clock::monotonic_now();
    let mut progress = |r: &RebuildReport| {
        let at = crate::clock::monotonic_now();
        if at.duration_since(last_log) >= BACKFILL_LOG_EVERY {
            last_log = at;
            tracing::info!(
                clients = r.clients,
                rewritten = r.rewritten,
                invoices_moved = r.invoices_moved,
                "facts backfill in progress"
            );
        }
    };
    let report = rebuild_facts_until(store, policy, now, stop, &mut progress)?;
    if report.completed {
        store.put_meta(FACTS_BACKFILL_MARKER, now.to_string().as_bytes())?;
        tracing::info!(
            clients = report.clients,
            rewritten = report.rewritten,
            invoices_moved = report.invoices_moved,
            "facts backfill done; it will not run again on this data directory"
        );
    } else {
        tracing::info!(
            clients = report.clients,
            rewritten = report.rewritten,
            "facts backfill stopped before the end; it runs again at the next start"
        );
    }
    Ok(Some(report))
}

/// Least time between two progress lines of [`backfill_facts_once`].
const BACKFILL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
