use serde::Deserialize;

use super::planning::replan;
use super::{ServiceError, Upserted};
use crate::domain::validate::{
    MAX_EMAIL_CHARS, MAX_IDENT_CHARS, MAX_NAME_CHARS, MAX_PHONE_CHARS, MAX_PREFERRED_CHANNELS,
    MAX_TAG_CHARS, MAX_TAGS, check_text, required_text,
};
use crate::domain::{Client, ClientId, InvoiceId, InvoiceStatus};
use crate::policy::Policy;
use crate::policy::model::CHANNEL_KINDS;
use crate::schedule::{client_zone, segment_for};
use crate::store::{Store, Tx, TxError, TxFail, abort};

/// Body of `PUT /v1/clients/{id}`.
///
/// No string may hold control characters (CR, LF, NUL, TAB, DEL, C1 controls) or the Unicode
/// line/paragraph separators: they would end up in mail headers and provider requests. Sizes
/// are bounded as each field says (characters, not bytes); a body breaking a rule is refused
/// with 422 and changes nothing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    /// Name used in greetings and as the email display name (required; 1 to 200 characters
    /// after trimming).
    pub name: String,
    /// Email address (at most 254 characters).
    #[serde(default)]
    pub email: Option<String>,
    /// Phone in E.164; without `+`, the client's `country` is the default region (at most 32
    /// characters as written).
    #[serde(default)]
    pub phone: Option<String>,
    /// WhatsApp number, same rules as `phone`.
    #[serde(default)]
    pub whatsapp: Option<String>,
    /// BCP 47 locale, e.g. `es-CO` (at most 35 characters).
    #[serde(default)]
    pub locale: Option<String>,
    /// IANA time zone, e.g. `America/Bogota` (at most 64 characters).
    #[serde(default)]
    pub timezone: Option<String>,
    /// ISO 3166-1 alpha-2 country, e.g. `CO`: the contact law that applies (`[compliance]`)
    /// and the public holidays.
    #[serde(default)]
    pub country: Option<String>,
    /// Subdivision (state, department, community) as an ISO 3166-2 code, `BR-SP` or `SP`
    /// (needs `country`): state contact laws and state holidays. Stored as `COUNTRY-CODE`.
    #[serde(default)]
    pub subdivision: Option<String>,
    /// Times the debtor asked not to be contacted, taken out of every contact window (at most
    /// 16): `[{"days": "mon-fri", "from": "12:00", "to": "14:00"}]` (`days` as the policy
    /// writes them, or a list like `"mon,wed"`; `to` exclusive, `"24:00"` the end of the day).
    #[serde(default)]
    pub blocked_times: Vec<crate::domain::BlockedTime>,
    /// Policy segment (at most 64 characters; must be a segment of the policy).
    #[serde(default)]
    pub segment: Option<String>,
    /// Preferred channel kinds, most preferred first (at most 8).
    #[serde(default)]
    pub preferred_channels: Vec<String>,
    /// Tags; a tag naming a segment selects it when `segment` is absent (at most 32 tags of
    /// 1 to 64 characters each).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Normalises a phone number to E.164, using `country` as default region when it has no `+`.
pub fn normalize_phone(raw: &str, country: Option<&str>) -> Result<String, String> {
    let trimmed = raw.trim();
    let region = match country {
        Some(c) => Some(c.parse::<phonenumber::country::Id>().map_err(|_| {
            format!("country {c:?} is not an ISO 3166-1 alpha-2 code such as CO, MX, ES")
        })?),
        None => None,
    };
    if !trimmed.starts_with('+') && region.is_none() {
        return Err(format!(
            "{trimmed:?} has no country code: write it in E.164 (+573001234567) or set the client's country"
        ));
    }
    // A number with its own country code is read as such: the client's country must not
    // reinterpret it (phonenumber rejects some valid +54 numbers read with region US).
    let region = if trimmed.starts_with('+') {
        None
    } else {
        region
    };
    let number = phonenumber::parse(region, trimmed).map_err(|e| {
        format!("{trimmed:?} is not a phone number ({e}); write it in E.164 like +573001234567")
    })?;
    if !phonenumber::is_valid(&number) {
        return Err(format!(
            "{trimmed:?} is not a valid number for its region; check the digits and country code"
        ));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Refuses control characters and oversized strings and lists in every field of `input`
/// (see [`ClientInput`]) before any other check looks at them.
fn check_strings(input: &ClientInput) -> Result<(), ServiceError> {
    let text = |field: &str, value: &str, max: usize| {
        check_text(value, max).map_err(|e| ServiceError::invalid(field, e.to_string()))
    };
    text("name", &input.name, MAX_NAME_CHARS.saturating_mul(2))?;
    let optional = [
        ("email", &input.email, MAX_EMAIL_CHARS),
        ("phone", &input.phone, MAX_PHONE_CHARS),
        ("whatsapp", &input.whatsapp, MAX_PHONE_CHARS),
        ("locale", &input.locale, 35),
        ("timezone", &input.timezone, MAX_IDENT_CHARS),
        ("country", &input.country, MAX_IDENT_CHARS),
        ("subdivision", &input.subdivision, MAX_IDENT_CHARS),
        ("segment", &input.segment, MAX_IDENT_CHARS),
    ];
    for (field, value, max) in optional {
        if let Some(v) = value {
            text(field, v, max)?;
        }
    }
    if input.tags.len() > MAX_TAGS {
        return Err(ServiceError::invalid(
            "tags",
            format!(
                "{} tags; a client may have at most {MAX_TAGS}",
                input.tags.len()
            ),
        ));
    }
    for (i, tag) in input.tags.iter().enumerate() {
        required_text(tag, MAX_TAG_CHARS).map_err(|e| {
            ServiceError::invalid(
                format!("tags[{i}]"),
                format!("{e}; a tag is 1 to {MAX_TAG_CHARS} characters of plain text"),
            )
        })?;
    }
    if input.preferred_channels.len() > MAX_PREFERRED_CHANNELS {
        return Err(ServiceError::invalid(
            "preferred_channels",
            format!(
                "{} entries; list at most {MAX_PREFERRED_CHANNELS} channel kinds",
                input.preferred_channels.len()
            ),
        ));
    }
    for (i, ch) in input.preferred_channels.iter().enumerate() {
        text(&format!("preferred_channels[{i}]"), ch, MAX_IDENT_CHARS)?;
    }
    Ok(())
}

/// The client's subdivision as `COUNTRY-CODE` (`"sp"` with country `BR` → `"BR-SP"`): it
/// needs a country, and must be one plazo has holidays for when it knows that country's
/// subdivisions.
fn subdivision_of(
    raw: Option<&str>,
    country: Option<&str>,
) -> Result<Option<String>, ServiceError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let Some(country) = country else {
        return Err(ServiceError::invalid(
            "subdivision",
            format!(
                "{raw:?} needs the client's country; send country too, like \"country\": \"BR\", \"subdivision\": \"SP\""
            ),
        ));
    };
    let upper = raw.to_ascii_uppercase();
    let code = match upper.split_once('-') {
        Some((c, rest)) if c == country => rest.to_owned(),
        Some((c, _)) => {
            return Err(ServiceError::invalid(
                "subdivision",
                format!("{raw:?} is a subdivision of {c}, but the client's country is {country}"),
            ));
        }
        None => upper.clone(),
    };
    let known = crate::compliance::holidays::HolidayCalendar::shipped().subdivisions(country);
    let shaped =
        !code.is_empty() && code.len() <= 3 && code.bytes().all(|b| b.is_ascii_alphanumeric());
    if !shaped || (!known.is_empty() && !known.contains(&code.as_str())) {
        let hint = if known.is_empty() {
            "an ISO 3166-2 code such as BR-SP, ES-MD or US-CA".to_owned()
        } else {
            format!("one of {}", known.join(", "))
        };
        return Err(ServiceError::invalid(
            "subdivision",
            format!("{raw:?} is not a subdivision of {country}; send {hint}"),
        ));
    }
    Ok(Some(format!("{country}-{code}")))
}

/// Most blocked times a client may have.
const MAX_BLOCKED_TIMES: usize = 16;

/// The blocked times of a client body, checked and written one way (days trimmed and lower
/// case; `"HH:MM"` trimmed).
fn blocked_times_of(
    input: &[crate::domain::BlockedTime],
) -> Result<Vec<crate::domain::BlockedTime>, ServiceError> {
    use crate::compliance::week::{parse_days, parse_hhmm};
    if input.len() > MAX_BLOCKED_TIMES {
        return Err(ServiceError::invalid(
            "blocked_times",
            format!(
                "{} entries; a client may have at most {MAX_BLOCKED_TIMES}",
                input.len()
            ),
        ));
    }
    input
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let field = format!("blocked_times[{i}]");
            if parse_days(&b.days).is_none() {
                return Err(ServiceError::invalid(
                    format!("{field}.days"),
                    format!(
                        "{:?} is not a set of days; write \"mon-fri\", \"sat\", \"daily\" or a list like \"mon,wed\"",
                        b.days
                    ),
                ));
            }
            match (parse_hhmm(&b.from), parse_hhmm(&b.to)) {
                (Some(f), Some(t)) if f < t => Ok(crate::domain::BlockedTime {
                    days: b.days.trim().to_ascii_lowercase(),
                    from: b.from.trim().to_owned(),
                    to: b.to.trim().to_owned(),
                }),
                _ => Err(ServiceError::invalid(
                    field,
                    format!(
                        "from {:?} to {:?} is not a time span; write \"HH:MM\" with `to` later than `from`, like from \"12:00\" to \"14:00\"",
                        b.from, b.to
                    ),
                )),
            }
        })
        .collect()
}

fn validate(
    id: &ClientId,
    input: ClientInput,
    policy: &Policy,
    now: jiff::Timestamp,
) -> Result<Client, ServiceError> {
    check_strings(&input)?;
    let name = required_text(&input.name, MAX_NAME_CHARS).map_err(|e| {
        ServiceError::invalid(
            "name",
            format!("{e}; send 1 to {MAX_NAME_CHARS} characters of plain text"),
        )
    })?;
    let country = match input.country {
        Some(c) => {
            let c = c.trim().to_ascii_uppercase();
            if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic()) {
                return Err(ServiceError::invalid(
                    "country",
                    format!("{c:?} is not an ISO 3166-1 alpha-2 code such as CO, MX, ES"),
                ));
            }
            Some(c)
        }
        None => None,
    };
    let subdivision = subdivision_of(input.subdivision.as_deref(), country.as_deref())?;
    let blocked_times = blocked_times_of(&input.blocked_times)?;
    let email = match input.email {
        Some(e) if !e.trim().is_empty() => {
            let e = e.trim().to_owned();
            // Also what the mailer will accept, so a stored address can always be sent to.
            if !email_address::EmailAddress::is_valid(&e) || e.parse::<lettre::Address>().is_err() {
                return Err(ServiceError::invalid(
                    "email",
                    format!("{e:?} is not a valid email address"),
                ));
            }
            Some(e)
        }
        _ => None,
    };
    let phone = match input.phone.filter(|p| !p.trim().is_empty()) {
        Some(p) => Some(
            normalize_phone(&p, country.as_deref())
                .map_err(|m| ServiceError::invalid("phone", m))?,
        ),
        None => None,
    };
    let whatsapp = match input.whatsapp.filter(|p| !p.trim().is_empty()) {
        Some(p) => Some(
            normalize_phone(&p, country.as_deref())
                .map_err(|m| ServiceError::invalid("whatsapp", m))?,
        ),
        None => None,
    };
    if let Some(tz) = &input.timezone {
        if jiff::tz::TimeZone::get(tz).is_err() {
            return Err(ServiceError::invalid(
                "timezone",
                format!("{tz:?} is not an IANA time zone such as America/Bogota"),
            ));
        }
    }
    if let Some(loc) = &input.locale {
        let ok = !loc.is_empty()
            && loc.len() <= 35
            && loc
                .split('-')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if !ok {
            return Err(ServiceError::invalid(
                "locale",
                format!("{loc:?} is not a BCP 47 locale such as es-CO or en"),
            ));
        }
    }
    if let Some(seg) = &input.segment {
        if !policy.segments.contains_key(seg) {
            let known: Vec<&str> = policy.segments.keys().map(String::as_str).collect();
            return Err(ServiceError::invalid(
                "segment",
                format!(
                    "unknown segment {seg:?}; the policy defines: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    for ch in &input.preferred_channels {
        if !CHANNEL_KINDS.contains(&ch.as_str()) {
            return Err(ServiceError::invalid(
                "preferred_channels",
                format!(
                    "unknown channel {ch:?}; valid: {}",
                    CHANNEL_KINDS.join(", ")
                ),
            ));
        }
    }
    Ok(Client {
        id: id.clone(),
        name,
        email,
        phone,
        whatsapp,
        locale: input.locale,
        timezone: input.timezone,
        country,
        subdivision,
        blocked_times,
        segment: input.segment,
        preferred_channels: input.preferred_channels,
        tags: input.tags.iter().map(|t| t.trim().to_owned()).collect(),
        // Kept by plazo, never taken from the body: `upsert_client` copies them from the
        // stored record inside its transaction.
        credits: Default::default(),
        broken_promises: 0,
        facts: Default::default(),
        created_at: now,
        updated_at: now,
    })
}

/// Validates a client body and builds the client it would create, without storing it
/// (for `plazo plan`).
pub fn draft_client(
    id: &ClientId,
    input: ClientInput,
    policy: &Policy,
    now: jiff::Timestamp,
) -> Result<Client, ServiceError> {
    validate(id, input, policy, now)
}

/// Whether a change from `old` to `new` moves when the client's reminders fire: another time
/// zone, or another segment (its cadence and contact window), whether named directly or
/// through a tag.
fn moves_schedule(policy: &Policy, old: &Client, new: &Client) -> bool {
    client_zone(policy, old) != client_zone(policy, new)
        || segment_for(policy, old).name != segment_for(policy, new).name
}

/// Re-plans the pending reminder of each of `ids` that is an open invoice of `client` (the
/// step in flight, if any, is left alone: its end plans the next step). Logs one line per
/// invoice whose plan moved.
fn replan_invoices(
    tx: &Tx<'_>,
    policy: &Policy,
    client: &Client,
    ids: &[InvoiceId],
    now: jiff::Timestamp,
) -> Result<Vec<jiff::Timestamp>, TxFail> {
    let mut planned = Vec::new();
    for id in ids {
        let Some(mut inv) = tx.invoice(id)? else {
            continue;
        };
        if inv.client_id != client.id || inv.status != InvoiceStatus::Open {
            continue;
        }
        let fire_at = |tx: &Tx<'_>, inv: &crate::domain::Invoice| match inv.pending {
            Some(rid) => tx
                .reminder(&inv.id, &rid)
                .map(|r| r.map(|r| (r.id, r.fire_at))),
            None => Ok(None),
        };
        let before = fire_at(tx, &inv)?;
        if let Some(at) = replan(tx, &mut inv, client, policy, now)? {
            planned.push(at);
        }
        let after = fire_at(tx, &inv)?;
        if after != before {
            let detail = match after {
                Some((_, at)) => format!(
                    "client's time zone or segment changed; next reminder re-planned for {at}"
                ),
                None => {
                    "client's time zone or segment changed; no reminder left to plan".to_owned()
                }
            };
            tx.log(&super::timeline::event(&inv, now, detail))?;
        }
        tx.put_invoice(&inv)?;
    }
    Ok(planned)
}

/// Creates or replaces a client. Returns the stored client and whether it was new.
///
/// The stored record is read and written in one transaction, so credits and broken promises
/// recorded concurrently are kept. When the time zone or the segment changes, the pending
/// reminders of the client's open invoices are re-planned (nothing already handled is planned
/// again; catch-up and contact windows apply as for a new plan). A body equal to what is
/// stored writes nothing (see [`upsert_client_in`]).
pub fn upsert_client(
    store: &Store,
    policy: &Policy,
    id: &ClientId,
    input: ClientInput,
    now: jiff::Timestamp,
) -> Result<(Client, bool), ServiceError> {
    let draft = validate(id, input, policy, now)?;
    upsert_client_with(store, policy, id, now, |_| Ok(draft))
}

/// [`upsert_client`] with the new record built inside the transaction from the stored one
/// (`None` when there is none) by `draft_of`: read-modify-write callers (`PATCH`) change the
/// record they read, atomically; an error from `draft_of` writes nothing.
pub(crate) fn upsert_client_with(
    store: &Store,
    policy: &Policy,
    id: &ClientId,
    now: jiff::Timestamp,
    draft_of: impl FnOnce(Option<&Client>) -> Result<Client, ServiceError>,
) -> Result<(Client, bool), ServiceError> {
    let res = store.transaction(|tx| {
        let old = tx.client(id)?;
        let draft = match draft_of(old.as_ref()) {
            Ok(c) => c,
            Err(e) => return abort(e),
        };
        let (client, outcome) = upsert_client_in(tx, policy, &draft, now)?;
        Ok::<_, TxError<ServiceError>>((client, outcome == Upserted::Created))
    });
    super::flatten(res)
}

/// Whether `new` says the same as `old` in everything a client body sets.
fn same_body(old: &Client, new: &Client) -> bool {
    old.name == new.name
        && old.email == new.email
        && old.phone == new.phone
        && old.whatsapp == new.whatsapp
        && old.locale == new.locale
        && old.timezone == new.timezone
        && old.country == new.country
        && old.subdivision == new.subdivision
        && old.blocked_times == new.blocked_times
        && old.segment == new.segment
        && old.preferred_channels == new.preferred_channels
        && old.tags == new.tags
}

/// Stores `draft` (a client built by [`draft_client`]) inside the caller's command: created
/// when new, replaced (keeping what plazo keeps itself: credits, broken promises, facts,
/// creation time) and its reminders re-planned when its zone or segment moved, or left alone
/// (nothing written) when the stored client already says the same. The work of
/// [`upsert_client`] and of the bulk import, one rule for both.
pub fn upsert_client_in(
    tx: &Tx<'_>,
    policy: &Policy,
    draft: &Client,
    now: jiff::Timestamp,
) -> Result<(Client, Upserted), TxFail> {
    let id = &draft.id;
    let old = tx.client(id)?;
    if let Some(old) = old.as_ref().filter(|o| same_body(o, draft)) {
        return Ok((old.clone(), Upserted::Unchanged));
    }
    let mut client = draft.clone();
    if let Some(old) = &old {
        // Kept by plazo, never taken from the body: read inside this transaction so a
        // concurrent credit, broken promise or payment is not overwritten.
        client.credits = old.credits.clone();
        client.broken_promises = old.broken_promises;
        client.facts = old.facts.clone();
        client.created_at = old.created_at;
    }
    super::contacts::sync_client_addresses(tx, id, old.as_ref(), &client)?;
    tx.put_client(&client)?;
    let moved = old
        .as_ref()
        .is_some_and(|o| moves_schedule(policy, o, &client));
    if moved {
        // The client's invoice index: reads only this client's invoices.
        let ids = tx.invoice_ids_of_client(id)?;
        replan_invoices(tx, policy, &client, &ids, now)?;
    }
    let outcome = if old.is_none() {
        Upserted::Created
    } else {
        Upserted::Updated
    };
    Ok((client, outcome))
}

#[cfg(test)]
mod tests {
    use super::normalize_phone;

    #[test]
    fn national_numbers_get_the_clients_country_as_region() {
        let cases = [
            ("CO", "300 123 4567", "+573001234567"),
            ("MX", "55 1234 5678", "+525512345678"),
            ("CL", "9 6123 4567", "+56961234567"),
            ("PE", "912 345 678", "+51912345678"),
            ("AR", "11 2345-6789", "+541123456789"),
            ("BR", "(11) 91234-5678", "+5511912345678"),
            ("ES", "612 34 56 78", "+34612345678"),
            ("US", "(201) 555-0123", "+12015550123"),
        ];
        for (country, raw, e164) in cases {
            assert_eq!(
                normalize_phone(raw, Some(country)).as_deref(),
                Ok(e164),
                "{country} {raw}"
            );
            // The same number already in E.164 is kept, whatever the country.
            assert_eq!(normalize_phone(e164, Some("US")).as_deref(), Ok(e164));
        }
    }

    #[test]
    fn bad_numbers_say_why() {
        let e = normalize_phone("3001234567", None).unwrap_err();
        assert!(e.contains("no country code"), "{e}");
        let e = normalize_phone("12", Some("CO")).unwrap_err();
        assert!(e.contains("not"), "{e}");
        let e = normalize_phone("+57 300", None).unwrap_err();
        assert!(e.contains("+57 300"), "{e}");
        let e = normalize_phone("300 123 4567", Some("XX")).unwrap_err();
        assert!(e.contains("ISO 3166-1"), "{e}");
    }
}
