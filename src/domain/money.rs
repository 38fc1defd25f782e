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
    /// The amount is not a plain decimal (`digits[.digits]`).
    #[error(
        "amount {0:?} is not a plain decimal number: write digits with an optional '.' and decimals, like \"1250000.50\" (no exponent, sign, '_', spaces or thousands separators)"
    )]
    NotDecimal(String),
    /// The amount has more integer digits than plazo accepts.
    #[error(
        "amount {amount} is too large: amounts have at most {MAX_INTEGER_DIGITS} integer digits (the largest {currency} amount is {max})"
    )]
    TooLarge {
        /// The amount, as written.
        amount: String,
        /// The currency.
        currency: Currency,
        /// The largest amount accepted in `currency`.
        max: Decimal,
    },
    /// A total (a balance, a credit, a sum of payments or instalments) would pass the maximum.
    #[error(
        "the {what} would exceed the largest amount plazo keeps ({max} {currency}, {MAX_INTEGER_DIGITS} integer digits)"
    )]
    Overflow {
        /// What was being computed (`client credit`, `sum of the payments`...).
        what: &'static str,
        /// The currency.
        currency: Currency,
        /// The largest amount accepted in `currency`.
        max: Decimal,
    },
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

/// Most integer digits an amount may have, in every currency: the largest amount is
/// 999,999,999,999,999 units plus the currency's decimals (`999999999999999.99` in COP or EUR,
/// `999999999999999` in CLP). Amounts, balances, credits and totals of payments or instalments
/// are all kept below it, so no sum or product of them can overflow.
pub const MAX_INTEGER_DIGITS: u32 = 15;

/// Most decimal digits written in an amount, whatever the currency (`10.00` in CLP is fine).
const MAX_WRITTEN_DECIMALS: usize = 12;

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
            .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(16).collect()))
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
    /// `amount` as a plain decimal string with exactly the currency's minor units
    /// ("2500000.50" for COP, "15000" for CLP), rounded half away from zero when it has more
    /// (an average can). The shape amounts take in events and facts.
    pub fn show(&self, amount: Decimal) -> String {
        let mut shown = amount.round_dp_with_strategy(
            self.minor_units,
            rust_decimal::RoundingStrategy::MidpointAwayFromZero,
        );
        shown.rescale(self.minor_units);
        shown.to_string()
    }
    /// The largest amount plazo accepts in this currency: [`MAX_INTEGER_DIGITS`] nines, and
    /// as many decimal nines as the currency has minor units.
    pub fn max_amount(&self) -> Decimal {
        // 10^15 - 10^-minor, built from integers that fit an i64 (minor units are at most 3).
        let minor = self.minor_units.min(3);
        let scale = 10i64.pow(minor);
        Decimal::new(1_000_000_000_000_000 * scale - 1, minor)
    }
    /// `amount` if its magnitude is at most [`Currency::max_amount`], else
    /// [`MoneyError::Overflow`] naming `what`.
    pub fn bounded(&self, what: &'static str, amount: Decimal) -> Result<Decimal, MoneyError> {
        if amount.abs() > self.max_amount() {
            return Err(self.overflow(what));
        }
        Ok(amount)
    }
    /// `a + b`, checked and kept within the maximum.
    pub fn add(&self, what: &'static str, a: Decimal, b: Decimal) -> Result<Decimal, MoneyError> {
        a.checked_add(b)
            .ok_or_else(|| self.overflow(what))
            .and_then(|s| self.bounded(what, s))
    }
    /// `a - b`, checked and kept within the maximum.
    pub fn sub(&self, what: &'static str, a: Decimal, b: Decimal) -> Result<Decimal, MoneyError> {
        a.checked_sub(b)
            .ok_or_else(|| self.overflow(what))
            .and_then(|s| self.bounded(what, s))
    }
    /// The sum of `amounts`, checked at every step and kept within the maximum.
    pub fn sum(
        &self,
        what: &'static str,
        amounts: impl IntoIterator<Item = Decimal>,
    ) -> Result<Decimal, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Decimal::ZERO, |acc, a| self.add(what, acc, a))
    }
    fn overflow(&self, what: &'static str) -> MoneyError {
        MoneyError::Overflow {
            what,
            currency: *self,
            max: self.max_amount(),
        }
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
    /// Parses a non-negative amount written as a plain decimal (`digits[.digits]`, nothing
    /// else: no exponent, sign, `_`, spaces, leading or trailing `.`), checking it fits the
    /// currency's decimals and the maximum ([`MAX_INTEGER_DIGITS`] integer digits).
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let not_decimal = || MoneyError::NotDecimal(amount.chars().take(64).collect());
        let (negative, body) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(not_decimal());
        }
        let significant = int.trim_start_matches('0').len();
        if significant > MAX_INTEGER_DIGITS as usize {
            return Err(MoneyError::TooLarge {
                amount: amount.chars().take(64).collect(),
                currency,
                max: currency.max_amount(),
            });
        }
        if frac.is_some_and(|f| f.len() > MAX_WRITTEN_DECIMALS) || int.len() > 32 {
            return Err(not_decimal());
        }
        let dec = Decimal::from_str(body).map_err(|_| not_decimal())?;
        if negative && !dec.is_zero() {
            return Err(MoneyError::Negative(-dec));
        }
        Money::new(dec, currency)
    }
    /// Wraps a non-negative decimal, checking it fits the currency's minor units and the
    /// maximum ([`Currency::max_amount`]).
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError::Negative(amount));
        }
        if amount > currency.max_amount() {
            return Err(MoneyError::TooLarge {
                amount: amount.to_string(),
                currency,
                max: currency.max_amount(),
            });
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

    #[test]
    fn only_plain_decimals_are_amounts() {
        let cop = Currency::parse("COP").unwrap();
        for bad in [
            "1e5",
            "1E5",
            "1_000",
            "+5",
            ".5",
            "5.",
            "1.",
            " 5",
            "5 ",
            "1 000",
            "1,000.00",
            "0x10",
            "",
            ".",
            "-",
            "--1",
            "1.2.3",
            "١٢",
            "NaN",
            "inf",
            "5\n",
            "\u{200f}5",
        ] {
            assert!(
                matches!(Money::parse(bad, cop), Err(MoneyError::NotDecimal(_))),
                "{bad:?} must be refused as not a plain decimal"
            );
        }
        for good in ["0", "5", "0.5", "1250000.50", "007", "10.10"] {
            assert!(Money::parse(good, cop).is_ok(), "{good:?}");
        }
        let msg = Money::parse("1e5", cop).unwrap_err().to_string();
        assert!(msg.contains("no exponent"), "{msg}");
    }

    #[test]
    fn amounts_are_bounded_per_currency() {
        let cop = Currency::parse("COP").unwrap();
        let clp = Currency::parse("CLP").unwrap();
        assert_eq!(cop.max_amount().to_string(), "999999999999999.99");
        assert_eq!(clp.max_amount().to_string(), "999999999999999");
        assert!(Money::parse("999999999999999.99", cop).is_ok());
        assert!(Money::parse("0000999999999999999", clp).is_ok());
        let err = Money::parse("1000000000000000", cop).unwrap_err();
        assert!(matches!(err, MoneyError::TooLarge { .. }));
        assert!(err.to_string().contains("999999999999999.99"), "{err}");
        assert!(matches!(
            Money::parse("79228162514264337593543950336", cop),
            Err(MoneyError::TooLarge { .. })
        ));
        assert!(matches!(
            Money::new(Decimal::MAX, cop),
            Err(MoneyError::TooLarge { .. })
        ));
        // Checked helpers: overflow and the bound are errors, never panics.
        assert!(cop.add("x", cop.max_amount(), Decimal::new(1, 2)).is_err());
        assert!(cop.add("x", Decimal::MAX, Decimal::MAX).is_err());
        assert!(cop.sub("x", Decimal::MIN, Decimal::MAX).is_err());
        assert!(cop.sum("x", [Decimal::MAX, Decimal::MAX]).is_err());
        assert_eq!(
            cop.sum("x", [Decimal::ONE, Decimal::TWO]).unwrap(),
            Decimal::from(3)
        );
    }
}
