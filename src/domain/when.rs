//! The date and instant grammars of the API, strict: a date is `YYYY-MM-DD`; an instant is
//! RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with an offset within ±23:59. Both lie
//! between [`EARLIEST`] and [`LATEST`] (inclusive); anything else is refused with a message
//! saying what is wrong and what is accepted, never reinterpreted.

use jiff::Timestamp;
use jiff::civil::Date;

use super::Due;

/// The earliest date plazo accepts (an issue or due date, a payment, a promise).
pub const EARLIEST: Date = Date::constant(1900, 1, 1);
/// The latest date plazo accepts: far enough for any real invoice, far from the calendar's end
/// so that every step and deadline computed from it stays representable.
pub const LATEST: Date = Date::constant(2999, 12, 31);

/// Why a date or instant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhenError {
    /// Not `YYYY-MM-DD`.
    #[error("{0:?} is not a date: write YYYY-MM-DD, like 2026-03-15")]
    NotDate(String),
    /// Not an RFC 3339 instant.
    #[error(
        "{0:?} is not an RFC 3339 instant: write YYYY-MM-DDTHH:MM:SS with Z or an offset within ±23:59, like 2026-03-15T17:00:00Z or 2026-03-15T12:00:00-05:00"
    )]
    NotInstant(String),
    /// Neither a date nor an instant.
    #[error(
        "{0:?} is neither a date (2026-03-15) nor an RFC 3339 instant (2026-03-15T17:00:00Z, offset within ±23:59)"
    )]
    NotDateOrInstant(String),
    /// The offset is outside ±23:59.
    #[error("{0:?} has an offset outside ±23:59; RFC 3339 offsets are -23:59 to +23:59")]
    Offset(String),
    /// Outside [`EARLIEST`]..=[`LATEST`].
    #[error("{value} is {which} the {bound}; dates from {EARLIEST} to {LATEST} are accepted")]
    OutOfRange {
        /// The value, as written.
        value: String,
        /// `after` or `before`.
        which: &'static str,
        /// `latest date plazo accepts (2999-12-31)` or the earliest.
        bound: String,
    },
}

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Checks the shape `YYYY-MM-DD` (digits only; values checked by the calendar).
fn date_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.get(4) == Some(&b'-')
        && b.get(7) == Some(&b'-')
        && s.get(0..4).is_some_and(digits)
        && s.get(5..7).is_some_and(digits)
        && s.get(8..10).is_some_and(digits)
}

fn in_range(value: &str, d: Date) -> Result<(), WhenError> {
    if d > LATEST {
        return Err(WhenError::OutOfRange {
            value: shorten(value),
            which: "after",
            bound: format!("latest date plazo accepts ({LATEST})"),
        });
    }
    if d < EARLIEST {
        return Err(WhenError::OutOfRange {
            value: shorten(value),
            which: "before",
            bound: format!("earliest date plazo accepts ({EARLIEST})"),
        });
    }
    Ok(())
}

/// A calendar date `YYYY-MM-DD` within the accepted range.
pub fn parse_date(s: &str) -> Result<Date, WhenError> {
    if !date_shape(s) {
        // A 5-digit year is a far-future date, not a typo of the format.
        if s.len() > 10
            && s.split('-')
                .next()
                .is_some_and(|y| digits(y) && y.len() > 4)
        {
            return Err(WhenError::OutOfRange {
                value: shorten(s),
                which: "after",
                bound: format!("latest date plazo accepts ({LATEST})"),
            });
        }
        return Err(WhenError::NotDate(shorten(s)));
    }
    let d: Date = s.parse().map_err(|_| WhenError::NotDate(shorten(s)))?;
    in_range(s, d)?;
    Ok(d)
}

/// An RFC 3339 instant with an offset within ±23:59, within the accepted range.
pub fn parse_instant(s: &str) -> Result<Timestamp, WhenError> {
    let bad = || WhenError::NotInstant(shorten(s));
    let (date, rest) = match (s.get(0..10), s.get(10..)) {
        (Some(d), Some(r)) => (d, r),
        _ => return Err(bad()),
    };
    if !date_shape(date) {
        return Err(match parse_date(s.split(['T', 't']).next().unwrap_or(s)) {
            Err(e @ WhenError::OutOfRange { .. }) => e,
            _ => bad(),
        });
    }
    let local: Date = date.parse().map_err(|_| bad())?;
    in_range(s, local)?;
    let mut rest = rest.strip_prefix(['T', 't']).ok_or_else(bad)?;
    // HH:MM:SS
    let time = rest.get(0..8).ok_or_else(bad)?;
    let tb = time.as_bytes();
    if tb.get(2) != Some(&b':')
        || tb.get(5) != Some(&b':')
        || !time.get(0..2).is_some_and(digits)
        || !time.get(3..5).is_some_and(digits)
        || !time.get(6..8).is_some_and(digits)
    {
        return Err(bad());
    }
    rest = rest.get(8..).ok_or_else(bad)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return Err(bad());
        }
        rest = frac.get(n..).ok_or_else(bad)?;
    }
    match rest {
        "Z" | "z" => {}
        _ => {
            let b = rest.as_bytes();
            let shaped = b.len() == 6
                && matches!(b.first(), Some(b'+' | b'-'))
                && b.get(3) == Some(&b':')
                && rest.get(1..3).is_some_and(digits)
                && rest.get(4..6).is_some_and(digits);
            if !shaped {
                return Err(bad());
            }
            let hh: u8 = rest
                .get(1..3)
                .and_then(|h| h.parse().ok())
                .ok_or_else(bad)?;
            let mm: u8 = rest
                .get(4..6)
                .and_then(|m| m.parse().ok())
                .ok_or_else(bad)?;
            if hh > 23 || mm > 59 {
                return Err(WhenError::Offset(shorten(s)));
            }
        }
    }
    let t: Timestamp = s.parse().map_err(|_| bad())?;
    let utc_date = t.to_zoned(jiff::tz::TimeZone::UTC).date();
    in_range(s, utc_date)?;
    Ok(t)
}

/// A due date as the API takes it: a date (`YYYY-MM-DD`) or an RFC 3339 instant, strict and
/// bounded. (Stored records are read leniently by [`Due`]'s own `Deserialize`.)
pub fn parse_due(s: &str) -> Result<Due, WhenError> {
    if date_shape(s) {
        return parse_date(s).map(Due::Date);
    }
    match parse_instant(s) {
        Ok(t) => Ok(Due::Instant(t)),
        Err(e @ (WhenError::Offset(_) | WhenError::OutOfRange { .. })) => Err(e),
        Err(_) => match parse_date(s) {
            Err(e @ WhenError::OutOfRange { .. }) => Err(e),
            _ => Err(WhenError::NotDateOrInstant(shorten(s))),
        },
    }
}

/// Serde: an optional strict date (`YYYY-MM-DD`).
pub fn opt_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    s.map(|s| parse_date(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// Serde: an optional strict RFC 3339 instant.
pub fn opt_instant<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    s.map(|s| parse_instant(&s).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dates_are_strict_and_bounded() {
        assert_eq!(
            parse_date("2026-03-15").unwrap(),
            Date::constant(2026, 3, 15)
        );
        for bad in [
            "2026-3-15",
            "2026-03-15 ",
            " 2026-03-15",
            "20260315",
            "2026-02-30",
            "+2026-03-15",
            "2026/03/15",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?}");
        }
        let e = parse_date("9999-12-31").unwrap_err().to_string();
        assert!(e.contains("after") && e.contains("2999-12-31"), "{e}");
        let e = parse_date("10000-01-01").unwrap_err().to_string();
        assert!(e.contains("2999-12-31"), "{e}");
        assert!(
            parse_date("1899-12-31")
                .unwrap_err()
                .to_string()
                .contains("1900-01-01")
        );
    }

    #[test]
    fn instants_are_rfc3339_with_offsets_within_a_day() {
        for good in [
            "2026-03-15T17:00:00Z",
            "2026-03-15t17:00:00z",
            "2026-03-15T12:00:00-05:00",
            "2026-03-15T12:00:00.123456789+23:59",
            "2026-03-15T12:00:00-23:59",
        ] {
            assert!(parse_instant(good).is_ok(), "{good:?}");
        }
        for bad in [
            "2026-03-15T17:00Z",
            "2026-03-15 17:00:00Z",
            "2026-03-15T17:00:00",
            "2026-03-15T17:00:00+0500",
            "2026-03-15T17:00:00+05",
            "2026-03-15T17:00:00.Z",
            "2026-03-15T17:00:00.1234567890Z",
            "2026-03-15T17:00:00Z ",
            "2026-03-15T25:00:00Z",
            "2026-03-15",
        ] {
            assert!(
                matches!(parse_instant(bad), Err(WhenError::NotInstant(_))),
                "{bad:?}: {:?}",
                parse_instant(bad)
            );
        }
        for bad in [
            "2026-03-15T17:00:00+24:00",
            "2026-03-15T17:00:00-25:59",
            "2026-03-15T17:00:00+05:60",
        ] {
            assert!(
                matches!(parse_instant(bad), Err(WhenError::Offset(_))),
                "{bad:?}"
            );
        }
        let e = parse_instant("9999-12-31T23:59:59Z")
            .unwrap_err()
            .to_string();
        assert!(e.contains("2999-12-31"), "{e}");
    }

    #[test]
    fn due_dates_are_dates_or_instants() {
        assert_eq!(
            parse_due("2026-03-15"),
            Ok(Due::Date(Date::constant(2026, 3, 15)))
        );
        assert!(matches!(
            parse_due("2026-03-15T17:00:00Z"),
            Ok(Due::Instant(_))
        ));
        assert!(matches!(
            parse_due("15/03/2026"),
            Err(WhenError::NotDateOrInstant(_))
        ));
        assert!(matches!(
            parse_due("2026-03-15T17:00:00+30:00"),
            Err(WhenError::Offset(_))
        ));
        assert!(matches!(
            parse_due("9999-01-01"),
            Err(WhenError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_due("99999-01-01"),
            Err(WhenError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_due("9999-01-01T00:00:00Z"),
            Err(WhenError::OutOfRange { .. })
        ));
    }

    proptest! {
        #[test]
        fn the_parsers_never_panic_and_round_trip(s in "\\PC{0,40}") {
            let _ = parse_date(&s);
            if let Ok(t) = parse_instant(&s) {
                prop_assert_eq!(parse_instant(&t.to_string()), Ok(t));
            }
        }

        #[test]
        fn every_valid_date_is_accepted(y in 1900i16..=2999, m in 1i8..=12, d in 1i8..=28) {
            let s = format!("{y:04}-{m:02}-{d:02}");
            prop_assert_eq!(parse_date(&s), Ok(Date::constant(y, m, d)));
            let t = format!("{s}T10:20:30+{:02}:{:02}", d % 24, m * 4);
            prop_assert!(parse_instant(&t).is_ok() || y == 1900, "{}", t);
        }
    }
}
