//! Address state: opt-outs, opt-ins, unreachable channels, inbound messages, and which clients
//! use which address. Every change is written inside the caller's transaction and logged on
//! the timeline of each client using the address.

use jiff::Timestamp;

use serde_json::json;

use super::ServiceError;
use super::events::EventKind;
use crate::domain::{
    Client, ClientId, Contact, ContactEvent, ContactEventKind, OptOut, Unreachable,
};
use crate::store::{Store, Tx, TxError, TxFail};

/// A change to one address on one channel kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactChange {
    /// Stop using `kind` for the address.
    OptOut {
        /// Channel kind (`sms`, `whatsapp`, `email`).
        kind: String,
        /// How (`keyword BAJA via sms`, `one-click unsubscribe`, `twilio error 21610`).
        source: String,
    },
    /// The address asked to receive messages on `kind` again.
    OptIn {
        /// Channel kind.
        kind: String,
        /// How (`keyword START via sms`, `api`).
        source: String,
    },
    /// `kind` cannot reach the address.
    Unreachable {
        /// Channel kind.
        kind: String,
        /// The provider's reason.
        reason: String,
    },
    /// The debtor wrote to us on `kind` (opens WhatsApp's 24-hour window).
    Inbound {
        /// Channel kind.
        kind: String,
        /// The message text, if any.
        text: Option<String>,
        /// The provider's message id.
        provider_message_id: Option<String>,
    },
}

impl ContactChange {
    fn kind(&self) -> &str {
        match self {
            ContactChange::OptOut { kind, .. }
            | ContactChange::OptIn { kind, .. }
            | ContactChange::Unreachable { kind, .. }
            | ContactChange::Inbound { kind, .. } => kind,
        }
    }
}

/// Applies `change` to `address` (creating its record if new) and logs it on the timeline of
/// every client using the address; a new opt-out records `contact.opted_out`. Returns the
/// updated record.
pub fn apply_contact_change(
    tx: &Tx<'_>,
    address: &str,
    change: &ContactChange,
    now: Timestamp,
) -> Result<Contact, TxFail> {
    let mut contact = tx
        .contact(address)?
        .unwrap_or_else(|| Contact::new(Contact::normalize(address)));
    let kind = change.kind().to_owned();
    let (event, text, provider_message_id, detail) = match change {
        ContactChange::OptOut { source, .. } => {
            if !contact.opt_outs.contains_key(&kind) {
                super::events::emit(tx, EventKind::ContactOptedOut, now, || {
                    json!({
                        "address": contact.address,
                        "channel": kind,
                        "source": source,
                        "client_ids": contact.clients.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                    })
                })?;
            }
            contact.opt_outs.insert(
                kind.clone(),
                OptOut {
                    at: now,
                    source: source.clone(),
                },
            );
            (ContactEventKind::OptOut, None, None, Some(source.clone()))
        }
        ContactChange::OptIn { source, .. } => {
            contact.opt_outs.remove(&kind);
            (ContactEventKind::OptIn, None, None, Some(source.clone()))
        }
        ContactChange::Unreachable { reason, .. } => {
            contact.unreachable.insert(
                kind.clone(),
                Unreachable {
                    at: now,
                    reason: reason.clone(),
                },
            );
            (
                ContactEventKind::Unreachable,
                None,
                None,
                Some(reason.clone()),
            )
        }
        ContactChange::Inbound {
            text,
            provider_message_id,
            ..
        } => {
            let last = contact.last_inbound.entry(kind.clone()).or_insert(now);
            if *last < now {
                *last = now;
            }
            // A debtor who writes to us on a channel can evidently be reached on it.
            contact.unreachable.remove(&kind);
            (
                ContactEventKind::Inbound,
                text.clone(),
                provider_message_id.clone(),
                None,
            )
        }
    };
    tx.put_contact(&contact)?;
    for client in &contact.clients {
        tx.log_client(&ContactEvent {
            at: now,
            client_id: client.clone(),
            event,
            channel: kind.clone(),
            address: contact.address.clone(),
            text: text.clone(),
            provider_message_id: provider_message_id.clone(),
            detail: detail.clone(),
        })?;
    }
    Ok(contact)
}

/// [`apply_contact_change`] in a transaction of its own (API opt-outs, one-click unsubscribe).
pub fn change_contact(
    store: &Store,
    address: &str,
    change: &ContactChange,
    now: Timestamp,
) -> Result<Contact, ServiceError> {
    let res = store.transaction(|tx| {
        Ok::<_, TxError<ServiceError>>(apply_contact_change(tx, address, change, now)?)
    });
    super::flatten(res)
}

/// The addresses a client record carries (email, phone, WhatsApp number), normalised.
fn addresses(c: &Client) -> Vec<String> {
    let mut out: Vec<String> = [&c.email, &c.phone, &c.whatsapp]
        .into_iter()
        .flatten()
        .map(|a| Contact::normalize(a))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Keeps the address → clients index in step with a client's addresses: removes the client
/// from addresses it no longer carries and adds it to new ones.
pub fn sync_client_addresses(
    tx: &Tx<'_>,
    id: &ClientId,
    old: Option<&Client>,
    new: &Client,
) -> Result<(), TxFail> {
    let before = old.map(addresses).unwrap_or_default();
    let after = addresses(new);
    for gone in before.iter().filter(|a| !after.contains(a)) {
        if let Some(mut c) = tx.contact(gone)? {
            if c.clients.remove(id) {
                tx.put_contact(&c)?;
            }
        }
    }
    // Every current address, not only new ones: records written before the index existed
    // catch up on the client's next update.
    for added in &after {
        let mut c = tx
            .contact(added)?
            .unwrap_or_else(|| Contact::new(added.clone()));
        if c.clients.insert(id.clone()) {
            tx.put_contact(&c)?;
        }
    }
    Ok(())
}

/// Most characters of an email address (RFC 5321's limit on a path).
pub const MAX_EMAIL_LEN: usize = 254;

/// Checks an address named in `/v1/contacts/{address}`: an E.164 phone number (`+`, then 8 to
/// 15 digits, the first not 0, like `+573001234567`) or an email address (at most 254
/// characters). Returns it as the store keys it (email addresses lower-cased); a 422 naming
/// `address` otherwise.
pub fn contact_address(raw: &str) -> Result<String, ServiceError> {
    let shown: String = raw.chars().take(64).collect();
    if raw.contains('@') {
        if raw.chars().count() > MAX_EMAIL_LEN
            || raw.chars().any(|c| c.is_control() || c.is_whitespace())
            || !email_address::EmailAddress::is_valid(raw)
        {
            return Err(ServiceError::invalid(
                "address",
                format!(
                    "{shown:?} is not a valid email address (at most {MAX_EMAIL_LEN} characters, like ana@example.co)"
                ),
            ));
        }
        return Ok(Contact::normalize(raw));
    }
    // E.164's syntax: '+', a country code not starting with 0, at most 15 digits in all.
    // (Numbers a region's plan does not assign yet are still addresses one may opt out.)
    let digits = raw.strip_prefix('+').unwrap_or("");
    let e164 = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !e164 {
        return Err(ServiceError::invalid(
            "address",
            format!(
                "{shown:?} is neither an E.164 phone number (+ then 8 to 15 digits, the first not 0, like +573001234567; in a URL write + as %2B) nor an email address"
            ),
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod address_tests {
    use super::*;

    #[test]
    fn contact_addresses_are_e164_phones_or_emails() {
        assert_eq!(contact_address("+573001234567").unwrap(), "+573001234567");
        assert_eq!(contact_address("Ana@Example.co").unwrap(), "ana@example.co");
        for bad in [
            "",
            "573001234567",
            "+57 300 123 4567",
            "+5730012345678901",
            "+1",
            "+57abc",
            "+000000000",
            "ana@",
            "@example.co",
            "ana @example.co",
            "ana@example.co\n",
            "hello",
            "../../etc",
            "+573001234567\u{0}",
        ] {
            let e = contact_address(bad).unwrap_err();
            assert!(
                matches!(e, ServiceError::Invalid { ref field, .. } if field == "address"),
                "{bad:?}"
            );
        }
        let long = format!("{}@example.co", "a".repeat(300));
        assert!(contact_address(&long).is_err());
    }
}
