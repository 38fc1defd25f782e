//! Public holiday calendars by country and subdivision, so that plazo never contacts a debtor on
//! a public holiday where a legal preset says so.
//!
//! The data is shipped inside the binary: `config/holidays/holidays.tsv`, generated from the
//! Python `holidays` package by `config/holidays/generate.py` (the file's header names the
//! package version and the years it covers; see `config/holidays/README.md`). It holds each
//! country's national public holidays and, for each subdivision the package knows (Brazilian
//! states, Spanish communities, US states, Argentine provinces, Chilean regions), the days that
//! are holidays there but not nationally. A date is a holiday for a client in a subdivision when
//! it is a national holiday or one of the subdivision's own.
//!
//! Operators adjust the shipped data with an override file ([`HolidayOverrides`]): days a
//! municipality or a new decree adds, days the government moved. [`HolidayCalendar::shipped`]
//! is the data as shipped; [`HolidayCalendar::with_overrides`] applies an override file to it.
//!
//! Codes: countries are ISO 3166-1 alpha-2 (`CO`, `BR`), matched without regard to case.
//! Subdivisions are the codes the `holidays` package uses, mostly the part of the ISO 3166-2
//! code after the country (`SP` for São Paulo, `MD` for Madrid, `CA` for California); the full
//! ISO 3166-2 form (`BR-SP`) is accepted too, and ASCII letters match without regard to case.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jiff::civil::Date;
use serde::Deserialize;
use serde_spanned::Spanned;

use crate::config::line_col;
use crate::domain::when::parse_date;

/// The shipped data: one holiday a line, `country<TAB>subdivision-or-empty<TAB>YYYY-MM-DD<TAB>name`.
const SHIPPED_TSV: &str = include_str!("../../config/holidays/holidays.tsv");

/// Public holidays by country and subdivision: the shipped data
/// ([`HolidayCalendar::shipped`]), possibly with an operator's overrides applied
/// ([`HolidayCalendar::with_overrides`]).
///
/// Lookups never fail: an unknown country has no holidays (check [`HolidayCalendar::covers`]
/// to tell "no holiday" from "no data"), and an unknown subdivision has only the national ones
/// (check a client's subdivision against [`HolidayCalendar::subdivisions`] when it is saved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolidayCalendar {
    /// By ISO 3166-1 alpha-2 code, upper case.
    countries: BTreeMap<String, Country>,
}

/// One country's holidays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Country {
    /// National holidays and their names.
    national: BTreeMap<Date, String>,
    /// By subdivision code as the data spells it.
    subdivisions: BTreeMap<String, Subdivision>,
    /// Years the shipped data covers (those with national holidays); overrides do not change it.
    years: BTreeSet<i16>,
}

/// What a subdivision changes from its country's national holidays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Subdivision {
    /// Holidays here that are not national (or that an override renamed here).
    own: BTreeMap<Date, String>,
    /// National holidays not observed here (removed by an override for this subdivision).
    not_observed: BTreeSet<Date>,
}

impl Country {
    /// The subdivision `code` (as the data spells it, in any ASCII case, with or without the
    /// `CC-` prefix of ISO 3166-2): its code as stored, and its data.
    fn subdivision(&self, country: &str, code: &str) -> Option<(&str, &Subdivision)> {
        let code = strip_country(country, code);
        if let Some((k, v)) = self.subdivisions.get_key_value(code) {
            return Some((k.as_str(), v));
        }
        self.subdivisions
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(code))
            .map(|(k, v)| (k.as_str(), v))
    }
}

/// `code` without the ISO 3166-2 prefix `country-` (`BR-SP` → `SP`), when it has it.
fn strip_country<'a>(country: &str, code: &'a str) -> &'a str {
    match (code.get(..country.len()), code.get(country.len()..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case(country) => {
            rest.strip_prefix('-').unwrap_or(code)
        }
        _ => code,
    }
}

impl HolidayCalendar {
    /// The holidays shipped with plazo (`config/holidays/holidays.tsv`, embedded in the binary),
    /// parsed on first use.
    ///
    /// The data is checked by plazo's tests; should it still fail to parse, this logs an error
    /// and returns an empty calendar (no holidays, [`HolidayCalendar::covers`] false everywhere)
    /// rather than stopping the daemon.
    pub fn shipped() -> &'static HolidayCalendar {
        static SHIPPED: OnceLock<HolidayCalendar> = OnceLock::new();
        SHIPPED.get_or_init(|| match parse_tsv(SHIPPED_TSV) {
            Ok(calendar) => calendar,
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "the shipped holiday data (config/holidays/holidays.tsv) does not parse: no holidays are known, contact rules will not defer on holidays; this is a bug in plazo's build"
                );
                HolidayCalendar::default()
            }
        })
    }

    /// This calendar with an operator's `overrides` applied: the removed days are no longer
    /// holidays, the added ones are (an added day that already is a holiday takes the added
    /// name). Call it on [`HolidayCalendar::shipped`], against which
    /// [`HolidayOverrides::parse`] checked the file; on another calendar, a removal of a day
    /// that is not a holiday there is skipped.
    ///
    /// Either form works: `HolidayCalendar::with_overrides(base, &overrides)` or
    /// `base.with_overrides(&overrides)`.
    pub fn with_overrides(&self, overrides: &HolidayOverrides) -> HolidayCalendar {
        let mut calendar = self.clone();
        for key in &overrides.removed {
            calendar.remove(key);
        }
        for (key, name) in &overrides.added {
            calendar.add(key, name);
        }
        calendar
    }

    /// Whether `date` is a public holiday in `country` (ISO 3166-1 alpha-2, any case) for a
    /// client in `subdivision` (`None` for national holidays only): a national holiday or one of
    /// the subdivision's own.
    ///
    /// An unknown country has no holidays and an unknown subdivision only the national ones:
    /// see [`HolidayCalendar::covers`] and [`HolidayCalendar::subdivisions`].
    pub fn is_holiday(&self, country: &str, subdivision: Option<&str>, date: Date) -> bool {
        self.name(country, subdivision, date).is_some()
    }

    /// The name of the holiday on `date` for a client in `country` and `subdivision` (in the
    /// country's language, as the data or an override names it: "La Inmaculada Concepción"),
    /// or `None` when that day is not a holiday there. Several holidays on one day are joined
    /// with "; ". Same arguments as [`HolidayCalendar::is_holiday`].
    pub fn name(&self, country: &str, subdivision: Option<&str>, date: Date) -> Option<&str> {
        let (code, c) = self.country(country)?;
        if let Some((_, sub)) = subdivision.and_then(|s| c.subdivision(code, s)) {
            if let Some(name) = sub.own.get(&date) {
                return Some(name);
            }
            if sub.not_observed.contains(&date) {
                return None;
            }
        }
        c.national.get(&date).map(String::as_str)
    }

    /// Whether the shipped data covers `year` for `country` (any case): when it does not (a
    /// country without data, a year past the last one generated, see the data file's header),
    /// a `false` from [`HolidayCalendar::is_holiday`] means "unknown", and callers should warn.
    /// Overrides do not change what this says.
    pub fn covers(&self, country: &str, year: i16) -> bool {
        self.country(country)
            .is_some_and(|(_, c)| c.years.contains(&year))
    }

    /// The countries with holiday data, as upper-case ISO 3166-1 alpha-2 codes, sorted.
    pub fn countries(&self) -> Vec<&str> {
        self.countries.keys().map(String::as_str).collect()
    }

    /// The subdivision codes known for `country` (any case), sorted: those of the data and those
    /// an override added. Empty for an unknown country or one without subdivisions. For
    /// validating a client's subdivision field (which may also be written `BR-SP`).
    pub fn subdivisions(&self, country: &str) -> Vec<&str> {
        self.country(country)
            .map(|(_, c)| c.subdivisions.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The country `code` (any case): its code as stored, and its data.
    fn country(&self, code: &str) -> Option<(&str, &Country)> {
        if let Some((k, v)) = self.countries.get_key_value(code) {
            return Some((k.as_str(), v));
        }
        self.countries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(code))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Removes the holiday at `key` (for a subdivision: its own day, else the national day is
    /// marked not observed there). Whether there was one.
    fn remove(&mut self, key: &DayKey) -> bool {
        let Some(country) = self.countries.get_mut(&key.country) else {
            return false;
        };
        match &key.subdivision {
            None => country.national.remove(&key.date).is_some(),
            Some(code) => {
                let national = country.national.contains_key(&key.date);
                if let Some(sub) = country.subdivisions.get_mut(code) {
                    if sub.own.remove(&key.date).is_some() {
                        return true;
                    }
                    return national && sub.not_observed.insert(key.date);
                }
                if national {
                    let sub = country.subdivisions.entry(code.clone()).or_default();
                    sub.not_observed.insert(key.date);
                }
                national
            }
        }
    }

    /// Adds (or renames) the holiday at `key`.
    fn add(&mut self, key: &DayKey, name: &str) {
        let country = self.countries.entry(key.country.clone()).or_default();
        match &key.subdivision {
            None => {
                country.national.insert(key.date, name.to_owned());
            }
            Some(code) => {
                let sub = country.subdivisions.entry(code.clone()).or_default();
                sub.not_observed.remove(&key.date);
                sub.own.insert(key.date, name.to_owned());
            }
        }
    }
}

/// A line of the data file that does not parse (only the shipped data is parsed this way).
#[derive(Debug)]
struct DataError {
    line: usize,
    message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "config/holidays/holidays.tsv:{}: {}",
            self.line, self.message
        )
    }
}

/// Parses the data file's format (see [`SHIPPED_TSV`]), strictly: four fields, a two-letter
/// upper-case country, a `YYYY-MM-DD` date, a name; lines sorted and unique; a subdivision line
/// never on one of its country's national holidays.
fn parse_tsv(text: &str) -> Result<HolidayCalendar, DataError> {
    let mut calendar = HolidayCalendar::default();
    let mut previous: Option<&str> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let bad = |message: String| DataError { line: n, message };
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [country, subdivision, date, name] = fields.as_slice() else {
            return Err(bad(format!(
                "expected 4 tab-separated fields (country, subdivision, date, name), found {}",
                fields.len()
            )));
        };
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad(format!(
                "country {country:?} is not an upper-case ISO 3166-1 alpha-2 code"
            )));
        }
        if subdivision.trim() != *subdivision {
            return Err(bad(format!(
                "subdivision {subdivision:?} has spaces at its ends"
            )));
        }
        let date = parse_date(date).map_err(|e| bad(e.to_string()))?;
        if name.trim().is_empty() || name.trim() != *name {
            return Err(bad(format!(
                "name {name:?} is empty or has spaces at its ends"
            )));
        }
        if previous.is_some_and(|p| p >= line) {
            return Err(bad(
                "lines are not sorted, or this one repeats the previous one".to_owned(),
            ));
        }
        previous = Some(line);
        let c = calendar.countries.entry((*country).to_owned()).or_default();
        let earlier = if subdivision.is_empty() {
            c.years.insert(date.year());
            c.national.insert(date, (*name).to_owned())
        } else {
            if c.national.contains_key(&date) {
                // Sorted lines put a country's national days before its subdivisions'.
                return Err(bad(format!(
                    "{date} is a national holiday in {country}: a subdivision line is only for days that are not"
                )));
            }
            c.subdivisions
                .entry((*subdivision).to_owned())
                .or_default()
                .own
                .insert(date, (*name).to_owned())
        };
        if earlier.is_some() {
            return Err(bad(format!(
                "a second line for {country} {subdivision} {date}"
            )));
        }
    }
    Ok(calendar)
}

/// An operator's changes to the shipped holidays, from a TOML file:
///
/// ```toml
/// # added: municipal or newly decreed days; removed: a day the government moved
/// [[add]]
/// country = "CO"
/// subdivision = "ANT"     # optional
/// date = "2026-12-07"
/// name = "Día de las velitas (municipal)"
///
/// [[remove]]
/// country = "CO"
/// date = "2026-01-12"
/// ```
///
/// - `[[add]]`: `country` (ISO 3166-1 alpha-2, one plazo has data for), optional `subdivision`
///   (a code of the data, in any case or as `CO-ANT`; another code adds a new subdivision, such
///   as a municipality, which clients then name the same way), `date` (`"YYYY-MM-DD"` or a TOML
///   date), `name` (shown in timeline messages). A day that already is a holiday there takes the
///   added name.
/// - `[[remove]]`: `country`, optional `subdivision`, `date`. Without a subdivision it removes a
///   national holiday; with one, the subdivision's own holiday that day, or else the national
///   holiday for that subdivision only. The day must be a holiday there in the shipped data:
///   otherwise the file is refused, so that a typo does not silently change nothing.
///
/// Removals apply before additions, so a holiday the government moved is one `[[remove]]` of
/// the old date and one `[[add]]` of the new. Unknown fields, bad dates, unknown countries and
/// repeated entries are refused with the file's line and column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolidayOverrides {
    removed: Vec<DayKey>,
    added: Vec<(DayKey, String)>,
}

/// One day of one country or subdivision, normalised (upper-case country, subdivision code as
/// the data spells it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DayKey {
    country: String,
    subdivision: Option<String>,
    date: Date,
}

/// The override file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideFile {
    #[serde(default)]
    add: Vec<AddEntry>,
    #[serde(default)]
    remove: Vec<RemoveEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddEntry {
    country: Spanned<String>,
    #[serde(default)]
    subdivision: Option<Spanned<String>>,
    date: Spanned<toml::Value>,
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveEntry {
    country: Spanned<String>,
    #[serde(default)]
    subdivision: Option<Spanned<String>>,
    date: Spanned<toml::Value>,
}

/// Where in an override file: its name, and 1-based line and column (columns in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The file as given to [`HolidayOverrides::load`], or `holiday overrides` for text given
    /// to [`HolidayOverrides::parse`].
    pub origin: String,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// Why a holiday override file was refused. `Display` is the full message for the operator:
/// where (`file:line:column`), what is wrong, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum HolidayError {
    /// The file could not be read.
    #[error("{}: cannot read the holiday overrides file: {source}; check the path and its permissions", path.display())]
    Read {
        /// The file, as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, or not the expected shape (an unknown field, a missing field, a wrong
    /// type, `[add]` instead of `[[add]]`).
    #[error("{at}: {message}")]
    Syntax {
        /// Where.
        at: Position,
        /// The parser's explanation, with the fields or types that are valid.
        message: String,
    },
    /// A country plazo has no holiday data for.
    #[error(
        "{at}: country: no holiday data for {country:?}; countries with data: {known} (ISO 3166-1 alpha-2 codes). Fix the code, or have the country added to config/holidays/generate.py"
    )]
    UnknownCountry {
        /// The country, as written.
        country: String,
        /// The known countries, comma-separated.
        known: String,
        /// Where.
        at: Position,
    },
    /// A `[[remove]]` names a subdivision that neither the data nor an `[[add]]` of this file
    /// has.
    #[error(
        "{at}: subdivision: {country} has no subdivision {subdivision:?} in plazo's holiday data or this file's [[add]] entries; known: {known}. Fix the code, or leave subdivision out to remove a national holiday"
    )]
    UnknownSubdivision {
        /// The country, upper case.
        country: String,
        /// The subdivision, as written.
        subdivision: String,
        /// The known subdivisions, comma-separated (`none` when the country has none).
        known: String,
        /// Where.
        at: Position,
    },
    /// A `date` that is not a `YYYY-MM-DD` date.
    #[error("{at}: date: {message}")]
    BadDate {
        /// What is wrong and what is accepted.
        message: String,
        /// Where.
        at: Position,
    },
    /// A `[[remove]]` of a day that is not a holiday there.
    #[error(
        "{at}: [[remove]]: {date} is not a holiday in {country}{} in plazo's holiday data, so there is nothing to remove. Check the date and the country (see config/holidays/holidays.tsv; a holiday the government moved is removed at the date the data has, and added at its new date with [[add]])",
        subdivision.as_deref().map(|s| format!(" (subdivision {s})")).unwrap_or_default()
    )]
    NotAHoliday {
        /// The country, upper case.
        country: String,
        /// The subdivision, as the data spells it.
        subdivision: Option<String>,
        /// The day.
        date: Date,
        /// Where.
        at: Position,
    },
    /// The same day listed twice in `[[add]]`, or twice in `[[remove]]`.
    #[error(
        "{at}: this [[{table}]] repeats the one at line {first_line} ({what}): keep one of them"
    )]
    Repeated {
        /// `add` or `remove`.
        table: &'static str,
        /// The country, subdivision and date.
        what: String,
        /// Line of the first entry.
        first_line: usize,
        /// Where (the second entry).
        at: Position,
    },
    /// Another value that cannot be used (an empty name or subdivision).
    #[error("{at}: {field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what would be valid.
        message: String,
        /// Where.
        at: Position,
    },
}

impl HolidayOverrides {
    /// Parses and checks an override file's text against the shipped holidays
    /// ([`HolidayCalendar::shipped`]). Messages name the place as `holiday overrides:line:column`;
    /// [`HolidayOverrides::load`] names the file.
    pub fn parse(text: &str) -> Result<HolidayOverrides, HolidayError> {
        parse_overrides(text, "holiday overrides", HolidayCalendar::shipped())
    }

    /// Reads, parses and checks the override file at `path` (see [`HolidayOverrides::parse`]).
    pub fn load(path: &Path) -> Result<HolidayOverrides, HolidayError> {
        let text = std::fs::read_to_string(path).map_err(|source| HolidayError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        parse_overrides(
            &text,
            &path.display().to_string(),
            HolidayCalendar::shipped(),
        )
    }

    /// Whether the file changes nothing (no `[[add]]`, no `[[remove]]`).
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

/// Parses override `text` (named `origin` in messages) and checks it against `base`.
fn parse_overrides(
    text: &str,
    origin: &str,
    base: &HolidayCalendar,
) -> Result<HolidayOverrides, HolidayError> {
    let at = |byte: usize| {
        let (line, column) = line_col(text, byte);
        Position {
            origin: origin.to_owned(),
            line,
            column,
        }
    };
    let file: OverrideFile = toml::from_str(text).map_err(|e| {
        let mut message = e.message().trim().to_owned();
        if message.contains("expected a sequence") {
            message.push_str(
                "; write each entry as an array of tables, [[add]] or [[remove]] (two brackets)",
            );
        } else if message.starts_with("missing field") {
            message.push_str(
                " in this entry: an [[add]] needs country, date and name (subdivision is optional); a [[remove]] needs country and date",
            );
        }
        HolidayError::Syntax {
            at: at(e.span().map_or(0, |s| s.start)),
            message,
        }
    })?;

    let country = |c: &Spanned<String>| -> Result<String, HolidayError> {
        base.country(c.get_ref().trim())
            .map(|(code, _)| code.to_owned())
            .ok_or_else(|| HolidayError::UnknownCountry {
                country: c.get_ref().clone(),
                known: base.countries().join(", "),
                at: at(c.span().start),
            })
    };
    // The subdivision as the data spells it when it knows it, else as written (new ones are
    // allowed in [[add]]); `None` when left out.
    let subdivision = |country: &str,
                       s: &Option<Spanned<String>>|
     -> Result<Option<(String, bool, usize)>, HolidayError> {
        let Some(s) = s else { return Ok(None) };
        let written = s.get_ref().trim();
        let code = strip_country(country, written);
        if code.is_empty() || code.chars().any(char::is_control) {
            return Err(HolidayError::Invalid {
                field: "subdivision",
                message: format!(
                    "{written:?} is not a subdivision code: write a code such as \"SP\" or \"BR-SP\", or leave subdivision out for a national holiday"
                ),
                at: at(s.span().start),
            });
        }
        let known = base
            .country(country)
            .and_then(|(c, data)| data.subdivision(c, code))
            .map(|(k, _)| k.to_owned());
        Ok(Some(match known {
            Some(k) => (k, true, s.span().start),
            None => (code.to_owned(), false, s.span().start),
        }))
    };
    let date = |d: &Spanned<toml::Value>| -> Result<Date, HolidayError> {
        let bad = |message: String| HolidayError::BadDate {
            message,
            at: at(d.span().start),
        };
        match d.get_ref() {
            toml::Value::String(s) => parse_date(s).map_err(|e| bad(e.to_string())),
            toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
                parse_date(&dt.to_string()).map_err(|e| bad(e.to_string()))
            }
            other => Err(bad(format!(
                "{other} is not a date: write YYYY-MM-DD, like date = \"2026-12-07\""
            ))),
        }
    };

    // Subdivisions this file adds, so that it may also remove from them.
    let mut added_subdivisions: HashSet<(String, String)> = HashSet::new();
    let mut added = Vec::with_capacity(file.add.len());
    let mut first_add: HashMap<DayKey, usize> = HashMap::new();
    for entry in &file.add {
        let country = country(&entry.country)?;
        let sub = subdivision(&country, &entry.subdivision)?;
        let day = date(&entry.date)?;
        let name = entry.name.get_ref().trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(HolidayError::Invalid {
                field: "name",
                message: "the name is empty or has a control character (a tab, a line break): write the holiday's name on one line, as timeline messages should show it".to_owned(),
                at: at(entry.name.span().start),
            });
        }
        let key = DayKey {
            country: country.clone(),
            subdivision: sub.as_ref().map(|(code, _, _)| code.clone()),
            date: day,
        };
        let here = at(entry.date.span().start);
        if let Some(&first_line) = first_add.get(&key) {
            return Err(HolidayError::Repeated {
                table: "add",
                what: describe(&key),
                first_line,
                at: here,
            });
        }
        first_add.insert(key.clone(), here.line);
        if let Some((code, false, _)) = &sub {
            added_subdivisions.insert((country, code.clone()));
        }
        added.push((key, name.to_owned()));
    }

    let mut working = base.clone();
    let mut removed = Vec::with_capacity(file.remove.len());
    let mut first_remove: HashMap<DayKey, usize> = HashMap::new();
    for entry in &file.remove {
        let country = country(&entry.country)?;
        let sub = subdivision(&country, &entry.subdivision)?;
        if let Some((code, false, start)) = &sub {
            if !added_subdivisions.contains(&(country.clone(), code.clone())) {
                let subs = base.subdivisions(&country);
                return Err(HolidayError::UnknownSubdivision {
                    known: if subs.is_empty() {
                        "none".to_owned()
                    } else {
                        subs.join(", ")
                    },
                    country,
                    subdivision: code.clone(),
                    at: at(*start),
                });
            }
        }
        let key = DayKey {
            country,
            subdivision: sub.map(|(code, _, _)| code),
            date: date(&entry.date)?,
        };
        let here = at(entry.date.span().start);
        if let Some(&first_line) = first_remove.get(&key) {
            return Err(HolidayError::Repeated {
                table: "remove",
                what: describe(&key),
                first_line,
                at: here,
            });
        }
        if !working.remove(&key) {
            return Err(HolidayError::NotAHoliday {
                country: key.country,
                subdivision: key.subdivision,
                date: key.date,
                at: here,
            });
        }
        first_remove.insert(key.clone(), here.line);
        removed.push(key);
    }
    Ok(HolidayOverrides { removed, added })
}

/// `CO 2026-01-12` or `BR SP 2026-07-09`, for messages.
fn describe(key: &DayKey) -> String {
    match &key.subdivision {
        Some(s) => format!("{} {s} {}", key.country, key.date),
        None => format!("{} {}", key.country, key.date),
    }
}

#[cfg(test)]
mod tests;
