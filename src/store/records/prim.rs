//! Compact, exact encodings of the primitives records are made of: instants, dates, due
//! dates, decimals, currencies and identifiers. Each has a conversion from the domain value
//! (infallible) and back (validated: a bad value is a [`BadField`], never a panic).

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::{ClientId, Currency, Due, InvoiceId};

/// A field that decoded but fails the domain's validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadField {
    /// The field (`payments.amount`).
    pub(crate) field: &'static str,
    /// What is wrong with it.
    pub(crate) reason: String,
}

impl BadField {
    pub(crate) fn new(field: &'static str, reason: impl std::fmt::Display) -> Self {
        BadField {
            field,
            reason: reason.to_string(),
        }
    }
}

/// An instant: nanoseconds since the Unix epoch (negative before 1970). Exact: jiff keeps
/// nanoseconds, and so does this. Postcard writes it as a zig-zag varint (9 bytes for
/// present-day instants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredTime(i128);

impl StoredTime {
    /// The instant, if within jiff's range.
    pub(crate) fn get(self, field: &'static str) -> Result<Timestamp, BadField> {
        Timestamp::from_nanosecond(self.0).map_err(|e| BadField::new(field, e))
    }
}

impl From<Timestamp> for StoredTime {
    fn from(t: Timestamp) -> Self {
        StoredTime(t.as_nanosecond())
    }
}

impl From<&Timestamp> for StoredTime {
    fn from(t: &Timestamp) -> Self {
        StoredTime::from(*t)
    }
}

/// A bare instant record (the webhook tree's values, the inbox queue's next attempt).
impl TryFrom<StoredTime> for Timestamp {
    type Error = BadField;
    fn try_from(s: StoredTime) -> Result<Self, BadField> {
        s.get("instant")
    }
}

/// An optional instant, checked.
pub(crate) fn opt_time(
    t: Option<StoredTime>,
    field: &'static str,
) -> Result<Option<Timestamp>, BadField> {
    t.map(|t| t.get(field)).transpose()
}

/// A calendar date as (year, month, day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredDate {
    year: i16,
    month: i8,
    day: i8,
}

impl StoredDate {
    /// The date, if it exists in the calendar.
    pub(crate) fn get(self, field: &'static str) -> Result<Date, BadField> {
        Date::new(self.year, self.month, self.day).map_err(|e| BadField::new(field, e))
    }
}

impl From<Date> for StoredDate {
    fn from(d: Date) -> Self {
        StoredDate {
            year: d.year(),
            month: d.month(),
            day: d.day(),
        }
    }
}

/// A due date: a calendar date or an exact instant. Variant order is part of the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredDue {
    /// [`Due::Date`].
    Date(StoredDate),
    /// [`Due::Instant`].
    Instant(StoredTime),
}

impl StoredDue {
    /// The due date, checked.
    pub(crate) fn get(self, field: &'static str) -> Result<Due, BadField> {
        Ok(match self {
            StoredDue::Date(d) => Due::Date(d.get(field)?),
            StoredDue::Instant(t) => Due::Instant(t.get(field)?),
        })
    }
}

impl From<Due> for StoredDue {
    fn from(d: Due) -> Self {
        match d {
            Due::Date(d) => StoredDue::Date(d.into()),
            Due::Instant(t) => StoredDue::Instant(t.into()),
        }
    }
}

/// Sign bit of [`StoredDecimal::flags`].
const NEGATIVE: u8 = 0x80;
/// Largest scale a decimal has.
const MAX_SCALE: u8 = 28;

/// A decimal, exactly: the magnitude of its 96-bit mantissa (a varint, 4 bytes for
/// `1250000.50`) and one byte holding its scale (bits 0–4) and sign (bit 7). Keeps the scale
/// (`10.00` stays `10.00`) and the sign of zero, like `Decimal::serialize`, in a third of its
/// 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredDecimal {
    magnitude: u128,
    flags: u8,
}

impl StoredDecimal {
    /// The decimal, if the mantissa fits 96 bits and the scale is at most 28.
    pub(crate) fn get(self, field: &'static str) -> Result<Decimal, BadField> {
        let scale = self.flags & !NEGATIVE;
        if scale > MAX_SCALE {
            return Err(BadField::new(
                field,
                format!(
                    "decimal flags {:#04x}: scale {scale} is above {MAX_SCALE}",
                    self.flags
                ),
            ));
        }
        let mantissa = i128::try_from(self.magnitude)
            .map_err(|_| BadField::new(field, "decimal mantissa exceeds 96 bits"))?;
        let mut d = Decimal::try_from_i128_with_scale(mantissa, u32::from(scale))
            .map_err(|e| BadField::new(field, e))?;
        d.set_sign_negative(self.flags & NEGATIVE != 0);
        Ok(d)
    }
}

impl From<Decimal> for StoredDecimal {
    fn from(d: Decimal) -> Self {
        // A decimal's scale is at most 28, so it fits the low bits.
        let scale = u8::try_from(d.scale()).unwrap_or(MAX_SCALE);
        let sign = if d.is_sign_negative() { NEGATIVE } else { 0 };
        StoredDecimal {
            magnitude: d.mantissa().unsigned_abs(),
            flags: scale | sign,
        }
    }
}

/// An optional decimal, checked.
pub(crate) fn opt_decimal(
    d: Option<StoredDecimal>,
    field: &'static str,
) -> Result<Option<Decimal>, BadField> {
    d.map(|d| d.get(field)).transpose()
}

/// A currency as its ISO 4217 code (3 raw bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredCurrency([u8; 3]);

impl StoredCurrency {
    /// The currency, if plazo knows its code.
    pub(crate) fn get(self, field: &'static str) -> Result<Currency, BadField> {
        let code = std::str::from_utf8(&self.0)
            .map_err(|_| BadField::new(field, format!("currency code {:?}", self.0)))?;
        Currency::parse(code).map_err(|e| BadField::new(field, e))
    }
}

impl From<Currency> for StoredCurrency {
    fn from(c: Currency) -> Self {
        let mut code = [b'X'; 3];
        for (slot, b) in code.iter_mut().zip(c.code().bytes()) {
            *slot = b;
        }
        StoredCurrency(code)
    }
}

/// A client id, checked.
pub(crate) fn client_id(s: String, field: &'static str) -> Result<ClientId, BadField> {
    ClientId::new(s).map_err(|e| BadField::new(field, e))
}

/// An invoice id, checked.
pub(crate) fn invoice_id(s: String, field: &'static str) -> Result<InvoiceId, BadField> {
    InvoiceId::new(s).map_err(|e| BadField::new(field, e))
}

/// A bare invoice id record (the number index's values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredInvoiceId(String);

impl From<&InvoiceId> for StoredInvoiceId {
    fn from(id: &InvoiceId) -> Self {
        StoredInvoiceId(id.as_str().to_owned())
    }
}

impl TryFrom<StoredInvoiceId> for InvoiceId {
    type Error = BadField;
    fn try_from(s: StoredInvoiceId) -> Result<Self, BadField> {
        invoice_id(s.0, "invoice id")
    }
}
