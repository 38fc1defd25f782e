//! The client record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::prim::{BadField, StoredDecimal, StoredTime, client_id};
use crate::domain::{Client, Credit};

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
            segment: s.segment,
            preferred_channels: s.preferred_channels,
            tags: s.tags,
            credits,
            broken_promises: s.broken_promises,
            created_at: s.created_at.get("created_at")?,
            updated_at: s.updated_at.get("updated_at")?,
        })
    }
}
