//! Locale-aware formatting of money and dates for messages. Decimal arithmetic only, never floats.
//!
//! The rules are a small, explicit subset of CLDR covering the markets plazo serves (Spanish- and
//! Portuguese-speaking Latin America, Spain, and English); unknown locales get a sensible default.

use jiff::civil::Date;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::domain::Currency;

/// A locale split into language (lowercase) and region (uppercase), e.g. `es-CO` → (`es`, `CO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocaleId {
    /// ISO 639 language, lowercase (`es`).
    pub(crate) language: String,
    /// ISO 3166 region or UN M.49 area, uppercase (`CO`, `419`), if any.
    pub(crate) region: Option<String>,
}

impl LocaleId {
    /// Parses `es`, `es-CO`, `es_co`, `es-419`, `zh-Hant-TW` (scripts are skipped).
    pub(crate) fn parse(locale: &str) -> LocaleId {
        let mut parts = locale.trim().split(['-', '_']).filter(|p| !p.is_empty());
        let language = parts.next().unwrap_or("").to_ascii_lowercase();
        let region = parts
            .find(|p| {
                (p.len() == 2 && p.chars().all(|c| c.is_ascii_alphabetic()))
                    || (p.len() == 3 && p.chars().all(|c| c.is_ascii_digit()))
            })
            .map(str::to_ascii_uppercase);
        LocaleId { language, region }
    }

    fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
}

/// How numbers and the currency symbol are laid out in one locale.
#[derive(Debug, Clone, Copy)]
struct NumberStyle {
    /// Separator between groups of three digits.
    group: char,
    /// Decimal separator.
    decimal: char,
    /// Symbol before the number (`$1`) rather than after it (`1 €`).
    symbol_first: bool,
    /// A space between a leading symbol and the number (`$ 1` rather than `$1`).
    space_after_symbol: bool,
    /// Smallest integer-part length that gets grouped (5 in Spain: `1250 €`, `12.500 €`).
    min_grouping_len: usize,
}

fn number_style(loc: &LocaleId) -> NumberStyle {
    let region = loc.region();
    match loc.language.as_str() {
        "en" => NumberStyle {
            group: ',',
            decimal: '.',
            symbol_first: true,
            space_after_symbol: false,
            min_grouping_len: 4,
        },
        // Brazil, and Portuguese without a region (CLDR's `pt` is Brazilian): `R$ 1.250,00`.
        "pt" if matches!(region, None | Some("BR")) => NumberStyle {
            group: '.',
            decimal: ',',
            symbol_first: true,
            space_after_symbol: true,
            min_grouping_len: 4,
        },
        "es" => match region {
            // Comma decimals, symbol first with a space: `$ 1.250.000,50`.
            Some("CO" | "CL" | "AR" | "UY" | "PY" | "VE" | "EC" | "BO") => NumberStyle {
                group: '.',
                decimal: ',',
                symbol_first: true,
                space_after_symbol: true,
                min_grouping_len: 4,
            },
            // Dot decimals, symbol first with a space: `S/ 1,250.00`.
            Some("PE") => NumberStyle {
                group: ',',
                decimal: '.',
                symbol_first: true,
                space_after_symbol: true,
                min_grouping_len: 4,
            },
            // Dot decimals, symbol first without a space: `$1,250,000.00`.
            Some("MX" | "US" | "GT" | "HN" | "NI" | "PA" | "SV" | "DO" | "PR" | "CR" | "419") => {
                NumberStyle {
                    group: ',',
                    decimal: '.',
                    symbol_first: true,
                    space_after_symbol: false,
                    min_grouping_len: 4,
                }
            }
            // Spain and generic Spanish: `1.250.000,00 €`, four-digit amounts ungrouped.
            _ => NumberStyle {
                group: '.',
                decimal: ',',
                symbol_first: false,
                space_after_symbol: true,
                min_grouping_len: 5,
            },
        },
        // Portuguese outside Brazil (pt-PT, pt-AO...) and most of continental Europe:
        // `1.250.000,00 €`.
        _ => NumberStyle {
            group: '.',
            decimal: ',',
            symbol_first: false,
            space_after_symbol: true,
            min_grouping_len: 4,
        },
    }
}

/// The symbol for `currency` as written in `loc` (`$` for COP in Colombia, `US$` for USD there).
fn currency_symbol(currency: Currency, loc: &LocaleId) -> String {
    let region = loc.region();
    let code = currency.code();
    // Currencies whose local symbol is a bare `$`, and the regions where it is local.
    let dollar_home: &[&str] = match code {
        "USD" => &["US", "EC", "SV", "PR"],
        "COP" => &["CO"],
        "MXN" => &["MX"],
        "CLP" => &["CL"],
        "ARS" => &["AR"],
        "UYU" => &["UY"],
        "CAD" => &["CA"],
        _ => &[],
    };
    if !dollar_home.is_empty() {
        if region.is_some_and(|r| dollar_home.contains(&r)) {
            return "$".to_owned();
        }
        // English speakers read `$` as US dollars.
        if code == "USD" && loc.language == "en" && !matches!(region, Some("CA" | "AU" | "NZ")) {
            return "$".to_owned();
        }
        return match code {
            "USD" => "US$",
            "MXN" => "MX$",
            "CAD" => "CA$",
            other => other,
        }
        .to_owned();
    }
    match code {
        "EUR" => "€",
        "GBP" => "£",
        "BRL" => "R$",
        "PEN" => "S/",
        "BOB" => "Bs",
        "CRC" => "₡",
        "DOP" => "RD$",
        "GTQ" => "Q",
        "HNL" => "L",
        "NIO" => "C$",
        "PAB" => "B/.",
        "PYG" => "₲",
        "VES" => "Bs.S",
        "JPY" => "¥",
        "CNY" => "CN¥",
        other => other,
    }
    .to_owned()
}

fn group_digits(digits: &str, sep: char, min_len: usize) -> String {
    if digits.len() < min_len {
        return digits.to_owned();
    }
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// Formats `amount` in `currency` the way `locale` writes money.
///
/// Rounds to the currency's minor units (midpoint away from zero). COP, whose cents are rarely
/// used, shows decimals only when they are not zero. Examples: es-CO COP `$ 1.250.000`,
/// en-US USD `$1,250,000.00`, es-ES EUR `1.250.000,00 €`, pt-BR BRL `R$ 1.250.000,00`,
/// es-CO USD `US$ 1.250.000,00`.
pub fn format_money(amount: Decimal, currency: Currency, locale: &str) -> String {
    let loc = LocaleId::parse(locale);
    let style = number_style(&loc);
    let symbol = currency_symbol(currency, &loc);

    let mut minor = currency.minor_units();
    let mut rounded = amount.round_dp_with_strategy(minor, RoundingStrategy::MidpointAwayFromZero);
    if currency.code() == "COP" && rounded.fract().is_zero() {
        minor = 0;
        rounded = rounded.trunc();
    }
    let negative = rounded.is_sign_negative() && !rounded.is_zero();
    let mut abs = rounded.abs();
    abs.rescale(minor);
    let plain = abs.to_string();
    let (int_part, frac_part) = match plain.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (plain.as_str(), None),
    };

    let mut number = group_digits(int_part, style.group, style.min_grouping_len);
    if let Some(frac) = frac_part {
        number.push(style.decimal);
        number.push_str(frac);
    }

    // Codes used as symbols (`COP`) always take a space; so does a suffix symbol.
    let alphabetic = symbol.chars().all(|c| c.is_ascii_alphabetic());
    let sign = if negative { "-" } else { "" };
    if style.symbol_first {
        let space = if style.space_after_symbol || alphabetic {
            " "
        } else {
            ""
        };
        format!("{sign}{symbol}{space}{number}")
    } else {
        format!("{sign}{number} {symbol}")
    }
}

const MONTHS_ES: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const MONTHS_PT: [&str; 12] = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Formats a calendar date as a long date in `locale`: es `15 de marzo de 2026`,
/// en `March 15, 2026` (en-GB `15 March 2026`), pt `15 de março de 2026`; ISO `2026-03-15` for
/// other languages.
pub fn format_date(d: Date, locale: &str) -> String {
    let loc = LocaleId::parse(locale);
    let month_index = usize::from(d.month().unsigned_abs())
        .saturating_sub(1)
        .min(11);
    let (day, year) = (d.day(), d.year());
    match loc.language.as_str() {
        "es" => format!("{day} de {} de {year}", MONTHS_ES[month_index]),
        "pt" => format!("{day} de {} de {year}", MONTHS_PT[month_index]),
        "en" => match loc.region() {
            None | Some("US" | "PH" | "CA") => format!("{} {day}, {year}", MONTHS_EN[month_index]),
            Some(_) => format!("{day} {} {year}", MONTHS_EN[month_index]),
        },
        _ => d.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use jiff::civil::date;

    use super::*;

    fn m(amount: &str, code: &str, locale: &str) -> String {
        format_money(
            Decimal::from_str(amount).unwrap(),
            Currency::parse(code).unwrap(),
            locale,
        )
    }

    #[test]
    fn cop_in_colombia() {
        assert_eq!(m("1250000", "COP", "es-CO"), "$ 1.250.000");
        assert_eq!(m("1250000.00", "COP", "es-CO"), "$ 1.250.000");
        assert_eq!(m("1250000.5", "COP", "es-CO"), "$ 1.250.000,50");
        assert_eq!(m("999", "COP", "es-CO"), "$ 999");
        assert_eq!(m("0", "COP", "es-CO"), "$ 0");
        assert_eq!(m("1250000.004", "COP", "es-CO"), "$ 1.250.000");
        assert_eq!(m("1250000", "COP", "en-US"), "COP 1,250,000");
    }

    #[test]
    fn mxn_usd_eur_clp_brl() {
        assert_eq!(m("1250000", "MXN", "es-MX"), "$1,250,000.00");
        assert_eq!(m("1250000", "USD", "en-US"), "$1,250,000.00");
        assert_eq!(m("1250000", "USD", "en"), "$1,250,000.00");
        assert_eq!(m("1250000", "EUR", "es-ES"), "1.250.000,00 €");
        assert_eq!(m("1250000", "EUR", "es"), "1.250.000,00 €");
        assert_eq!(m("1250", "EUR", "es-ES"), "1250,00 €");
        assert_eq!(m("12500", "EUR", "es-ES"), "12.500,00 €");
        assert_eq!(m("1250000", "BRL", "pt-BR"), "R$ 1.250.000,00");
        assert_eq!(m("1250000", "EUR", "en-US"), "€1,250,000.00");
        assert_eq!(m("1250000", "USD", "es-CO"), "US$ 1.250.000,00");
        assert_eq!(m("1250000", "CLP", "es-CL"), "$ 1.250.000");
        assert_eq!(m("1250000.6", "CLP", "es-CL"), "$ 1.250.001");
        assert_eq!(m("1250000", "MXN", "es-CO"), "MX$ 1.250.000,00");
        assert_eq!(m("1250000", "PEN", "es-PE"), "S/ 1,250,000.00");
        assert_eq!(m("1250000", "EUR", "pt-PT"), "1.250.000,00 €");
        assert_eq!(m("1234.56", "BRL", "pt-BR"), "R$ 1.234,56");
        assert_eq!(m("1234.56", "BRL", "pt"), "R$ 1.234,56");
        assert_eq!(m("1250000", "COP", "pt-BR"), "COP 1.250.000");
        assert_eq!(m("99.9", "USD", "pt-BR"), "US$ 99,90");
    }

    #[test]
    fn rounding_is_midpoint_away_from_zero_and_negatives_do_not_panic() {
        assert_eq!(m("10.005", "USD", "en-US"), "$10.01");
        assert_eq!(m("10.015", "USD", "en-US"), "$10.02");
        assert_eq!(m("10.5", "CLP", "es-CL"), "$ 11");
        assert_eq!(m("-1250.5", "USD", "en-US"), "-$1,250.50");
        assert_eq!(m("-0.001", "USD", "en-US"), "$0.00");
    }

    #[test]
    fn dates_per_language() {
        let d = date(2026, 3, 15);
        assert_eq!(format_date(d, "es"), "15 de marzo de 2026");
        assert_eq!(format_date(d, "es-CO"), "15 de marzo de 2026");
        assert_eq!(format_date(d, "en"), "March 15, 2026");
        assert_eq!(format_date(d, "en-US"), "March 15, 2026");
        assert_eq!(format_date(d, "en-GB"), "15 March 2026");
        assert_eq!(format_date(d, "pt-BR"), "15 de março de 2026");
        assert_eq!(format_date(date(2026, 1, 1), "es"), "1 de enero de 2026");
        assert_eq!(format_date(d, "fr"), "2026-03-15");
    }

    #[test]
    fn locale_ids_parse() {
        assert_eq!(
            LocaleId::parse("es_co"),
            LocaleId {
                language: "es".into(),
                region: Some("CO".into())
            }
        );
        assert_eq!(LocaleId::parse("es-419").region.as_deref(), Some("419"));
        assert_eq!(LocaleId::parse("zh-Hant-TW").region.as_deref(), Some("TW"));
        assert_eq!(LocaleId::parse("EN").language, "en");
    }
}
