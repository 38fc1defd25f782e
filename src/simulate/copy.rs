//! The portfolio copied from the live store into a scratch store: what the dispatcher reads
//! when it decides what to send (clients, every invoice of each client with its pending
//! reminder, the recent timeline lines that contact caps count, the client's own recent
//! timeline, and what is known of each address: opt-outs). Reads only on the live side.

use jiff::Timestamp;

use super::SimulateError;
use crate::domain::{Client, ClientId};
use crate::store::{Store, TxError};

/// Clients copied per scratch command.
const PAGE: usize = 64;

/// What was copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    /// Clients.
    pub clients: u64,
    /// Invoices (open or not).
    pub invoices: u64,
    /// Pending reminders.
    pub reminders: u64,
}

/// Copies every client of `live` into `scratch`, with timeline lines from `since` on.
pub(super) fn copy_portfolio(
    live: &Store,
    scratch: &Store,
    since: Timestamp,
) -> Result<Copied, SimulateError> {
    let mut copied = Copied::default();
    let mut after: Option<ClientId> = None;
    loop {
        let ids = live.client_ids_after(after.as_ref(), PAGE)?;
        let Some(last) = ids.last().cloned() else {
            return Ok(copied);
        };
        let mut page = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(c) = live.client(id)? {
                page.push(read_client(live, c, since)?);
            }
        }
        scratch
            .transaction::<_, std::convert::Infallible>(|tx| {
                for one in &page {
                    tx.put_client(&one.client)?;
                    for c in &one.contacts {
                        tx.put_contact(c)?;
                    }
                    for e in &one.client_log {
                        tx.log_client(e)?;
                    }
                    for (inv, pending, lines) in &one.invoices {
                        tx.put_invoice(inv)?;
                        if let Some(r) = pending {
                            tx.schedule(r)?;
                        }
                        for a in lines {
                            tx.log(a)?;
                        }
                    }
                }
                Ok::<_, TxError<std::convert::Infallible>>(())
            })?
            .unwrap_or_else(|never| match never {});
        for one in &page {
            copied.clients += 1;
            copied.invoices += one.invoices.len() as u64;
            copied.reminders += one.invoices.iter().filter(|(_, p, _)| p.is_some()).count() as u64;
        }
        after = Some(last);
    }
}

/// One client and what goes with it.
struct ClientCopy {
    client: Client,
    contacts: Vec<crate::domain::Contact>,
    client_log: Vec<crate::domain::ContactEvent>,
    invoices: Vec<(
        crate::domain::Invoice,
        Option<crate::domain::Reminder>,
        Vec<crate::domain::Attempt>,
    )>,
}

fn read_client(
    live: &Store,
    client: Client,
    since: Timestamp,
) -> Result<ClientCopy, SimulateError> {
    let mut contacts = Vec::new();
    for addr in [&client.email, &client.phone, &client.whatsapp]
        .into_iter()
        .flatten()
    {
        if let Some(c) = live.contact(addr)? {
            contacts.push(c);
        }
    }
    let client_log = live
        .client_timeline(&client.id)?
        .into_iter()
        .filter(|e| e.at >= since)
        .collect();
    let mut invoices = Vec::new();
    for id in live.invoice_ids_of_client(&client.id)? {
        let Some(mut inv) = live.invoice(&id)? else {
            continue;
        };
        let pending = match inv.pending {
            Some(rid) => live.reminder(&id, &rid)?,
            None => None,
        };
        if pending.is_none() {
            inv.pending = None;
        }
        // A reminder claimed by the live dispatcher is copied as due: the simulation sends
        // it at its start, as the daemon is about to.
        let pending = pending.map(|mut r| {
            if r.state == crate::domain::ReminderState::Claimed {
                r.state = crate::domain::ReminderState::Scheduled;
            }
            r
        });
        let lines = live
            .timeline(&id)?
            .into_iter()
            .filter(|a| a.at >= since)
            .collect();
        invoices.push((inv, pending, lines));
    }
    Ok(ClientCopy {
        client,
        contacts,
        client_log,
        invoices,
    })
}
