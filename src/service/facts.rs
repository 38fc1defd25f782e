//! Keeping a client's facts ledger ([`FactsLedger`](crate::domain::FactsLedger)) in line with
//! its invoices, inside the command that changes them, and reading the facts back.

use jiff::Timestamp;

use crate::domain::{AttemptOutcome, behaviour_of};
use crate::domain::{Client, ClientFacts, ClientId, FactsMark, Invoice, PortfolioFacts};
use crate::policy::Policy;
use crate::schedule::client_zone;
use crate::store::{Store, StoreError, Tx, TxFail};

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

/// Records on the client's ledger that it wrote to plazo at `at` (an SMS or WhatsApp reply).
pub(crate) fn note_inbound(tx: &Tx<'_>, client: &ClientId, at: Timestamp) -> Result<(), TxFail> {
    if let Some(mut c) = tx.client(client)? {
        c.facts.record_inbound(at);
        tx.put_client(&c)?;
    }
    Ok(())
}

/// The facts `GET /v1/clients/{id}` shows for `client`: its behaviour over the policy's window,
/// and its open invoices summed as of `now` (their balances, the oldest days overdue, the
/// latest message sent).
pub fn client_facts(
    store: &Store,
    policy: &Policy,
    client: &Client,
    now: Timestamp,
) -> Result<ClientFacts, StoreError> {
    let zone = client_zone(policy, client);
    let mut portfolio = PortfolioFacts::default();
    for id in store.invoice_ids_of_client(&client.id)? {
        if let Some(inv) = store.invoice(&id)? {
            portfolio.add_open(&inv, &zone, now);
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
    Ok(ClientFacts {
        behaviour: behaviour_of(client, policy.facts.last_paid, now),
        portfolio,
    })
}
