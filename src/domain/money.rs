use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Why a currency or an amount was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    /// Not an ISO 4217 code plazo knows.
    #[error(
        "unknown currency {0:?}: use an ISO 4217 code such as COP, MXN, EUR, USD, CLP, PEN, ARS, BRL"
    )]
    UnknownCurrency(String),
    /// The amount could not be parsed as a decimal.
    #[error("amount {0:?} is not a decimal number: write it as a string like \"1250000.50\"")]
    NotDecimal(String),
    /// The amount has more decimals than the currency allows.
    #[error("amount {amount} has {scale} decimals but {currency} allows at most {max}")]
    TooPrecise {
        /// The amount.
        amount: Decimal,
        /// Its decimals.
        scale: u32,
        /// The currency.
        currency: Currency,
        /// The currency's minor units.
        max: u32,
    },
    /// The amount was negative.
    #[error("amount {0} is negative; amounts must be zero or more")]
    Negative(Decimal),
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {0} vs {1}")]
    Mismatch(Currency, Currency),
}

/// ISO 4217 code and number of minor units, for the currencies plazo formats.
const CURRENCIES: &[(&str, u32)] = &[
    ("ARS", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("DOP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("GTQ", 2),
    ("HNL", 2),
    ("JPY", 0),
    ("MXN", 2),
    ("NIO", 2),
    ("PAB", 2),
    ("PEN", 2),
    ("PYG", 0),
    ("USD", 2),
    ("UYU", 2),
    ("VES", 2),
];

/// An ISO 4217 currency that plazo knows how to format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    minor_units: u32,
}

impl Currency {
    /// Looks up an ISO 4217 code (case-insensitive).
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let upper = code.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == upper)
            .map(|(c, minor)| {
                let b = c.as_bytes();
                Currency {
                    code: [b[0], b[1], b[2]],
                    minor_units: *minor,
                }
            })
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }
    /// The three-letter code, e.g. `"COP"`.
    pub fn code(&self) -> &str {
        // The code bytes always come from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }
    /// Number of decimals in the currency's minor unit (2 for EUR, 0 for CLP).
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
    /// Every currency plazo knows.
    pub fn all() -> impl Iterator<Item = Currency> {
        CURRENCIES
            .iter()
            .filter_map(|(c, _)| Currency::parse(c).ok())
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, MoneyError> {
        Currency::parse(&s)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money: a decimal (never a float) in a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// The amount, serialised as a decimal string.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// Parses a non-negative amount written as a decimal string, checking it fits the currency.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let dec = Decimal::from_str(amount.trim())
            .map_err(|_| MoneyError::NotDecimal(amount.to_owned()))?;
        Money::new(dec, currency)
    }
    /// Wraps a non-negative decimal, checking it fits the currency's minor units.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError::Negative(amount));
        }
        let normalized = amount.normalize();
        if normalized.scale() > currency.minor_units() {
            return Err(MoneyError::TooPrecise {
                amount,
                scale: normalized.scale(),
                currency,
                max: currency.minor_units(),
            });
        }
        Ok(Money {
            amount: normalized,
            currency,
        })
    }
    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Money {
            amount: Decimal::ZERO,
            currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_parse_and_reject() {
        assert_eq!(Currency::parse("cop").unwrap().code(), "COP");
        assert_eq!(Currency::parse("CLP").unwrap().minor_units(), 0);
        assert_eq!(
            Currency::parse("XYZ"),
            Err(MoneyError::UnknownCurrency("XYZ".into()))
        );
    }

    #[test]
    fn money_is_decimal_and_checked() {
        let cop = Currency::parse("COP").unwrap();
        let m = Money::parse("1250000.50", cop).unwrap();
        assert_eq!(m.amount.to_string(), "1250000.5");
        assert!(matches!(
            Money::parse("1.005", cop),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            Money::parse("-1", cop),
            Err(MoneyError::Negative(_))
        ));
        assert!(matches!(
            Money::parse("abc", cop),
            Err(MoneyError::NotDecimal(_))
        ));
        let clp = Currency::parse("CLP").unwrap();
        assert!(Money::parse("10.5", clp).is_err());
        assert!(Money::parse("10.00", clp).is_ok());
    }
}
