//! The client record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::prim::{BadField, StoredDecimal, StoredTime, client_id};
use crate::domain::{Client, Credit, FactsLedger, PaidInvoice};

use super::prim::{StoredCurrency, invoice_id, opt_time};

/// [`Client`] on disk, layout version 1: one byte of version, then these fields in this order
/// (postcard, no field names). Separate from the API's JSON shape so either can change without
/// the other; a new field means a new version byte and a conversion from this one (see the
/// module docs). Never reorder or remove fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredClient {
    id: String,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    whatsapp: Option<String>,
    locale: Option<String>,
    timezone: Option<String>,
    country: Option<String>,
    segment: Option<String>,
    preferred_channels: Vec<String>,
    tags: Vec<String>,
    /// By currency code.
    credits: BTreeMap<String, StoredCredit>,
    broken_promises: u32,
    created_at: StoredTime,
    updated_at: StoredTime,
}

/// [`Credit`] on disk (inside [`StoredClient`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredCredit {
    amount: StoredDecimal,
    sources: Vec<String>,
}

impl From<&Client> for StoredClient {
    fn from(c: &Client) -> Self {
        StoredClient {
            id: c.id.as_str().to_owned(),
            name: c.name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            whatsapp: c.whatsapp.clone(),
            locale: c.locale.clone(),
            timezone: c.timezone.clone(),
            country: c.country.clone(),
            segment: c.segment.clone(),
            preferred_channels: c.preferred_channels.clone(),
            tags: c.tags.clone(),
            credits: c
                .credits
                .iter()
                .map(|(code, credit)| {
                    (
                        code.clone(),
                        StoredCredit {
                            amount: credit.amount.into(),
                            sources: credit.sources.clone(),
                        },
                    )
                })
                .collect(),
            broken_promises: c.broken_promises,
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
        }
    }
}

impl TryFrom<StoredClient> for Client {
    type Error = BadField;
    fn try_from(s: StoredClient) -> Result<Self, BadField> {
        let credits = s
            .credits
            .into_iter()
            .map(|(code, credit)| {
                Ok((
                    code,
                    Credit {
                        amount: credit.amount.get("credits.amount")?,
                        sources: credit.sources,
                    },
                ))
            })
            .collect::<Result<_, BadField>>()?;
        Ok(Client {
            id: client_id(s.id, "id")?,
            name: s.name,
            email: s.email,
            phone: s.phone,
            whatsapp: s.whatsapp,
            locale: s.locale,
            timezone: s.timezone,
            country: s.country,
            subdivision: None,
            blocked_times: Vec::new(),
            segment: s.segment,
            preferred_channels: s.preferred_channels,
            tags: s.tags,
            credits,
            broken_promises: s.broken_promises,
            facts: FactsLedger::default(),
            created_at: s.created_at.get("created_at")?,
            updated_at: s.updated_at.get("updated_at")?,
        })
    }
}

/// [`Client`] on disk, layout version 2: the version-1 fields ([`StoredClient`]), then the
/// facts ledger. A version-1 client decodes with an empty ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredClientV2 {
    base: StoredClient,
    facts: StoredLedger,
}

/// [`FactsLedger`] on disk (inside [`StoredClientV2`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct StoredLedger {
    paid: Vec<StoredPaid>,
    paid_count: u32,
    promises_kept: u32,
    last_payment_at: Option<StoredTime>,
    last_inbound_at: Option<StoredTime>,
}

/// [`PaidInvoice`] on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredPaid {
    invoice_id: String,
    closed_at: StoredTime,
    days_late: u32,
    amount: StoredDecimal,
    currency: StoredCurrency,
}

impl From<&Client> for StoredClientV2 {
    fn from(c: &Client) -> Self {
        let f = &c.facts;
        StoredClientV2 {
            base: StoredClient::from(c),
            facts: StoredLedger {
                paid: f
                    .paid
                    .iter()
                    .map(|p| StoredPaid {
                        invoice_id: p.invoice_id.as_str().to_owned(),
                        closed_at: p.closed_at.into(),
                        days_late: p.days_late,
                        amount: p.amount.into(),
                        currency: p.currency.into(),
                    })
                    .collect(),
                paid_count: f.paid_count,
                promises_kept: f.promises_kept,
                last_payment_at: f.last_payment_at.map(StoredTime::from),
                last_inbound_at: f.last_inbound_at.map(StoredTime::from),
            },
        }
    }
}

impl From<StoredClient> for StoredClientV2 {
    fn from(base: StoredClient) -> Self {
        StoredClientV2 {
            base,
            facts: StoredLedger::default(),
        }
    }
}

impl TryFrom<StoredClientV2> for Client {
    type Error = BadField;
    fn try_from(s: StoredClientV2) -> Result<Self, BadField> {
        let mut client = Client::try_from(s.base)?;
        let f = s.facts;
        client.facts = FactsLedger {
            paid: f
                .paid
                .into_iter()
                .map(|p| {
                    Ok(PaidInvoice {
                        invoice_id: invoice_id(p.invoice_id, "facts.paid.invoice_id")?,
                        closed_at: p.closed_at.get("facts.paid.closed_at")?,
                        days_late: p.days_late,
                        amount: p.amount.get("facts.paid.amount")?,
                        currency: p.currency.get("facts.paid.currency")?,
                    })
                })
                .collect::<Result<_, BadField>>()?,
            paid_count: f.paid_count,
            promises_kept: f.promises_kept,
            last_payment_at: opt_time(f.last_payment_at, "facts.last_payment_at")?,
            last_inbound_at: opt_time(f.last_inbound_at, "facts.last_inbound_at")?,
        };
        Ok(client)
    }
}

/// [`Client`] on disk, layout version 3: the version-2 record ([`StoredClientV2`]), then the
/// client's subdivision and blocked times (contact rules by jurisdiction). Older clients decode
/// without them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredClientV3 {
    v2: StoredClientV2,
    subdivision: Option<String>,
    /// `(days, from, to)` of each blocked time.
    blocked: Vec<(String, String, String)>,
}

impl From<&Client> for StoredClientV3 {
    fn from(c: &Client) -> Self {
        StoredClientV3 {
            v2: StoredClientV2::from(c),
            subdivision: c.subdivision.clone(),
            blocked: c
                .blocked_times
                .iter()
                .map(|b| (b.days.clone(), b.from.clone(), b.to.clone()))
                .collect(),
        }
    }
}

impl From<StoredClientV2> for StoredClientV3 {
    fn from(v2: StoredClientV2) -> Self {
        StoredClientV3 {
            v2,
            subdivision: None,
            blocked: Vec::new(),
        }
    }
}

impl TryFrom<StoredClientV3> for Client {
    type Error = BadField;
    fn try_from(s: StoredClientV3) -> Result<Self, BadField> {
        let mut client = Client::try_from(s.v2)?;
        client.subdivision = s.subdivision;
        client.blocked_times = s
            .blocked
            .into_iter()
            .map(|(days, from, to)| crate::domain::BlockedTime { days, from, to })
            .collect();
        Ok(client)
    }
}
