use serde::Deserialize;

use super::ServiceError;
use crate::domain::{Client, ClientId};
use crate::policy::Policy;
use crate::policy::model::CHANNEL_KINDS;
use crate::store::{Store, TxError};

/// Body of `PUT /v1/clients/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    /// Name used in greetings (required).
    pub name: String,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone in E.164; without `+`, the client's `country` is the default region.
    #[serde(default)]
    pub phone: Option<String>,
    /// WhatsApp number, same rules as `phone`.
    #[serde(default)]
    pub whatsapp: Option<String>,
    /// BCP 47 locale, e.g. `es-CO`.
    #[serde(default)]
    pub locale: Option<String>,
    /// IANA time zone, e.g. `America/Bogota`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// ISO 3166-1 alpha-2 country, e.g. `CO`.
    #[serde(default)]
    pub country: Option<String>,
    /// Policy segment.
    #[serde(default)]
    pub segment: Option<String>,
    /// Preferred channel kinds, most preferred first.
    #[serde(default)]
    pub preferred_channels: Vec<String>,
    /// Tags; a tag naming a segment selects it when `segment` is absent.
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

fn validate(
    id: &ClientId,
    input: ClientInput,
    policy: &Policy,
    now: jiff::Timestamp,
    existing: Option<&Client>,
) -> Result<Client, ServiceError> {
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        return Err(ServiceError::invalid("name", "must be 1 to 200 characters"));
    }
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
    let email = match input.email {
        Some(e) if !e.trim().is_empty() => {
            let e = e.trim().to_owned();
            if !email_address::EmailAddress::is_valid(&e) {
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
        segment: input.segment,
        preferred_channels: input.preferred_channels,
        tags: input.tags,
        credits: existing.map(|c| c.credits.clone()).unwrap_or_default(),
        broken_promises: existing.map_or(0, |c| c.broken_promises),
        created_at: existing.map_or(now, |c| c.created_at),
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
    validate(id, input, policy, now, None)
}

/// Creates or replaces a client. Returns the stored client and whether it was new.
pub fn upsert_client(
    store: &Store,
    policy: &Policy,
    id: &ClientId,
    input: ClientInput,
    now: jiff::Timestamp,
) -> Result<(Client, bool), ServiceError> {
    let existing = store.client(id)?;
    let client = validate(id, input, policy, now, existing.as_ref())?;
    let res = store.transaction(|tx| {
        let old = tx.client(id)?;
        let created = old.is_none();
        super::contacts::sync_client_addresses(tx, id, old.as_ref(), &client)?;
        tx.put_client(&client)?;
        Ok::<_, TxError<ServiceError>>(created)
    });
    let created = super::flatten(res)?;
    Ok((client, created))
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
