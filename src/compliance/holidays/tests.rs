use std::collections::BTreeSet;

use jiff::ToSpan;
use jiff::civil::{Date, Weekday, date};

use super::*;

fn cal() -> &'static HolidayCalendar {
    HolidayCalendar::shipped()
}

// ---- the shipped data ----

#[test]
fn the_whole_embedded_file_parses() {
    let parsed = match parse_tsv(SHIPPED_TSV) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    // And `shipped()` is that parse, not the empty fallback.
    assert_eq!(&parsed, cal());
    assert_eq!(
        cal().countries(),
        ["AR", "BR", "CL", "CO", "ES", "MX", "PE", "US"]
    );
    let lines = SHIPPED_TSV.lines().filter(|l| !l.starts_with('#')).count();
    let parsed_days: usize = parsed
        .countries
        .values()
        .map(|c| c.national.len() + c.subdivisions.values().map(|s| s.own.len()).sum::<usize>())
        .sum();
    assert_eq!(parsed_days, lines, "every data line is one holiday");
}

#[test]
fn the_header_records_source_version_and_years() {
    let header: Vec<&str> = SHIPPED_TSV
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect();
    let has = |prefix: &str| header.iter().any(|l| l.starts_with(prefix));
    assert!(has("# generator: python3 config/holidays/generate.py"));
    assert!(has("# source: Python package holidays==0.108"));
    assert!(has("# years: 2020-2035 inclusive"));
    assert!(has("# generated: "));
}

#[test]
fn bad_data_lines_are_refused_with_their_line() {
    let ok = "# header\nCO\t\t2026-12-08\tLa Inmaculada Concepción\n";
    assert!(parse_tsv(ok).is_ok());
    let cases = [
        ("CO\t2026-12-08\tx\n", "4 tab-separated fields"),
        ("co\t\t2026-12-08\tx\n", "ISO 3166-1"),
        ("CO\t\t2026-12-32\tx\n", "not a date"),
        ("CO\t\t2026-12-08\t\n", "name"),
        ("CO\t\t2026-12-08\tx\nCO\t\t2026-01-01\ty\n", "not sorted"),
        ("CO\t\t2026-12-08\tx\nCO\t\t2026-12-08\tx\n", "not sorted"),
        ("CO\t\t2026-12-08\tx\nCO\t\t2026-12-08\ty\n", "second line"),
        (
            "CO\t\t2026-12-08\tx\nCO\tANT\t2026-12-08\ty\n",
            "national holiday",
        ),
    ];
    for (text, expected) in cases {
        let e = match parse_tsv(text) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted {text:?}"),
        };
        assert!(e.contains(expected), "{text:?}: {e}");
        assert!(e.starts_with("config/holidays/holidays.tsv:"), "{e}");
    }
    let e = parse_tsv("# h\n# h\nCO\t\tx\tx\n").err().map(|e| e.line);
    assert_eq!(e, Some(3));
}

// ---- Colombia: Ley 51 de 1983 ("Ley Emiliani"), computed independently ----

/// Easter Sunday, anonymous Gregorian algorithm (Meeus/Jones/Butcher).
fn easter(year: i16) -> Date {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::new(year, month as i8, day as i8).unwrap()
}

fn plus(d: Date, days: i64) -> Date {
    d.checked_add(days.days()).unwrap()
}

/// The day itself when it is a Monday, else the following Monday.
fn next_monday(d: Date) -> Date {
    let offset = (7 - i64::from(d.weekday().to_monday_zero_offset())) % 7;
    plus(d, offset)
}

#[test]
fn easter_algorithm_matches_known_dates() {
    assert_eq!(easter(2024), date(2024, 3, 31));
    assert_eq!(easter(2025), date(2025, 4, 20));
    assert_eq!(easter(2026), date(2026, 4, 5));
    assert_eq!(easter(2035), date(2035, 3, 25));
    assert_eq!(next_monday(date(2026, 1, 6)), date(2026, 1, 12));
    assert_eq!(next_monday(date(2026, 1, 12)), date(2026, 1, 12));
    assert_eq!(date(2026, 1, 12).weekday(), Weekday::Monday);
}

/// Colombia's national holidays in `year` under Ley 51 de 1983 (plus Jul 20 and Aug 7), and
/// from 2026 Ley 2578 de 2026.
fn colombia(year: i16) -> BTreeSet<Date> {
    let e = easter(year);
    let mut days = BTreeSet::new();
    // Fixed, never moved.
    for (m, d) in [(1, 1), (5, 1), (7, 20), (8, 7), (12, 8), (12, 25)] {
        days.insert(date(year, m, d));
    }
    // Fixed, moved to the following Monday when not on a Monday (Ley 51 art. 1).
    for (m, d) in [
        (1, 6),
        (3, 19),
        (6, 29),
        (8, 15),
        (10, 12),
        (11, 1),
        (11, 11),
    ] {
        days.insert(next_monday(date(year, m, d)));
    }
    // Easter-based.
    days.insert(plus(e, -3)); // Jueves Santo
    days.insert(plus(e, -2)); // Viernes Santo
    days.insert(next_monday(plus(e, 39))); // Ascensión
    days.insert(next_monday(plus(e, 60))); // Corpus Christi
    days.insert(next_monday(plus(e, 68))); // Sagrado Corazón
    assert_eq!(next_monday(plus(e, 39)), plus(e, 43));
    assert_eq!(next_monday(plus(e, 60)), plus(e, 64));
    assert_eq!(next_monday(plus(e, 68)), plus(e, 71));
    // Ley 2578 de 2026: Día de Nuestra Señora del Rosario de Chiquinquirá, July 9, moved to
    // the following Monday as Ley 51 moves the others; the data has it from 2026.
    if year >= 2026 {
        days.insert(next_monday(date(year, 7, 9)));
    }
    days
}

#[test]
fn colombia_matches_ley_51_every_year_of_the_data() {
    let co = &cal().countries["CO"];
    assert!(co.subdivisions.is_empty());
    for year in 2020..=2035 {
        let data: BTreeSet<Date> = co
            .national
            .range(date(year, 1, 1)..=date(year, 12, 31))
            .map(|(d, _)| *d)
            .collect();
        let computed = colombia(year);
        assert_eq!(
            data,
            computed,
            "{year}: only in the data {:?}, only computed {:?}",
            data.difference(&computed).collect::<Vec<_>>(),
            computed.difference(&data).collect::<Vec<_>>()
        );
    }
}

#[test]
fn colombia_2025_and_2030_have_two_holidays_on_one_monday() {
    // San Pedro y San Pablo (Jun 29 → Monday Jun 30) and Sagrado Corazón (Easter + 71) coincide.
    let name = cal().name("CO", None, date(2025, 6, 30)).unwrap();
    assert!(name.contains("San Pedro y San Pablo"), "{name}");
    assert!(name.contains("Sagrado Corazón"), "{name}");
}

// ---- hand-checked days ----

#[test]
fn colombia_hand_checked() {
    let c = cal();
    assert!(c.is_holiday("CO", None, date(2026, 12, 8)));
    assert_eq!(
        c.name("CO", None, date(2026, 12, 8)),
        Some("La Inmaculada Concepción")
    );
    assert!(!c.is_holiday("CO", None, date(2026, 12, 7)));
    assert_eq!(c.name("CO", None, date(2026, 12, 7)), None);
    // Reyes (Jan 6, a Tuesday) moved to Monday Jan 12; the 6th itself is not a holiday.
    assert!(c.is_holiday("CO", None, date(2026, 1, 12)));
    assert_eq!(
        c.name("co", None, date(2026, 1, 12)),
        Some("Día de los Reyes Magos (observado)")
    );
    assert!(!c.is_holiday("CO", None, date(2026, 1, 6)));
    // Colombia has no subdivisions in the data: any subdivision gets the national days.
    assert!(c.is_holiday("CO", Some("ANT"), date(2026, 12, 8)));
    assert!(c.subdivisions("CO").is_empty());
}

#[test]
fn sao_paulo_state_holiday() {
    let c = cal();
    let day = date(2026, 7, 9);
    assert!(c.is_holiday("BR", Some("SP"), day));
    assert!(c.is_holiday("BR", Some("BR-SP"), day));
    assert!(c.is_holiday("br", Some("br-sp"), day));
    assert!(c.is_holiday("BR", Some("sp"), day));
    assert!(!c.is_holiday("BR", None, day));
    assert!(!c.is_holiday("BR", Some("RJ"), day));
    // An unknown subdivision has the national holidays only.
    assert!(!c.is_holiday("BR", Some("XX"), day));
    assert!(c.is_holiday("BR", Some("XX"), date(2026, 11, 20)));
    assert_eq!(
        c.name("BR", Some("SP"), day),
        Some("Revolução Constitucionalista")
    );
    // National days hold in every state.
    assert_eq!(
        c.name("BR", Some("SP"), date(2026, 9, 7)),
        Some("Independência do Brasil")
    );
    assert!(c.subdivisions("BR").contains(&"SP"));
    assert!(c.subdivisions("BR").contains(&"São Paulo Capital"));
}

#[test]
fn us_independence_day_2026_is_observed_on_friday() {
    // July 4, 2026 is a Saturday: the package lists both the day and the federal observed
    // Friday before it.
    let c = cal();
    assert_eq!(date(2026, 7, 4).weekday(), Weekday::Saturday);
    assert_eq!(
        c.name("US", None, date(2026, 7, 4)),
        Some("Independence Day")
    );
    assert_eq!(
        c.name("US", None, date(2026, 7, 3)),
        Some("Independence Day (observed)")
    );
    assert!(c.is_holiday("US", Some("CA"), date(2026, 7, 3)));
    assert!(!c.is_holiday("US", None, date(2026, 7, 6)));
    // Sunday → Monday: July 4, 2021.
    assert!(c.is_holiday("US", None, date(2021, 7, 5)));
    // New Year's Day 2022 (a Saturday) is observed on Friday 2021-12-31.
    assert_eq!(
        c.name("US", None, date(2021, 12, 31)),
        Some("New Year's Day (observed)")
    );
    // A state holiday: César Chávez Day in California.
    assert!(c.is_holiday("US", Some("CA"), date(2026, 3, 31)));
    assert!(c.is_holiday("US", Some("US-CA"), date(2026, 3, 31)));
    assert!(!c.is_holiday("US", None, date(2026, 3, 31)));
}

#[test]
fn madrid_community_holiday() {
    let c = cal();
    let day = date(2026, 5, 2);
    assert!(c.is_holiday("ES", Some("MD"), day));
    assert!(c.is_holiday("ES", Some("ES-MD"), day));
    assert_eq!(
        c.name("ES", Some("MD"), day),
        Some("Fiesta de la Comunidad de Madrid")
    );
    assert!(!c.is_holiday("ES", None, day));
    assert!(!c.is_holiday("ES", Some("CT"), day));
    // Madrid moves the Sunday Constitution Day (Dec 6, 2026) to Monday the 7th.
    assert!(c.is_holiday("ES", Some("MD"), date(2026, 12, 7)));
    assert!(c.is_holiday("ES", Some("MD"), date(2026, 12, 8)));
}

#[test]
fn chile_fiestas_patrias_2026() {
    let c = cal();
    assert_eq!(
        c.name("CL", None, date(2026, 9, 18)),
        Some("Día de la Independencia")
    );
    assert_eq!(
        c.name("CL", None, date(2026, 9, 19)),
        Some("Día de las Glorias del Ejército")
    );
    assert!(!c.is_holiday("CL", None, date(2026, 9, 17)));
    assert!(!c.is_holiday("CL", None, date(2026, 9, 20)));
    // Chile's region CO (Coquimbo) is not confused with the country CO.
    assert!(c.is_holiday("CL", Some("CL-CO"), date(2026, 9, 18)));
}

#[test]
fn unknown_countries_have_no_holidays_and_no_coverage() {
    let c = cal();
    assert!(!c.is_holiday("EC", None, date(2026, 1, 1)));
    assert!(!c.is_holiday("", None, date(2026, 1, 1)));
    assert!(!c.covers("EC", 2026));
    assert!(c.subdivisions("EC").is_empty());
    assert!(c.is_holiday("CO", Some(""), date(2026, 1, 1)));
}

#[test]
fn covers_2020_to_2035() {
    let c = cal();
    for country in c.countries() {
        assert!(!c.covers(country, 2019), "{country}");
        for year in 2020..=2035 {
            assert!(c.covers(country, year), "{country} {year}");
        }
        assert!(!c.covers(country, 2036), "{country}");
    }
    assert!(c.covers("co", 2035));
}

#[test]
fn subdivision_prefix_is_only_the_same_country() {
    assert_eq!(strip_country("BR", "BR-SP"), "SP");
    assert_eq!(strip_country("BR", "br-SP"), "SP");
    assert_eq!(strip_country("BR", "SP"), "SP");
    assert_eq!(strip_country("BR", "ES-MD"), "ES-MD");
    assert_eq!(strip_country("BR", "BR-"), "");
    assert_eq!(strip_country("BR", "BR"), "BR");
    assert_eq!(strip_country("BR", "Ç"), "Ç");
}

// ---- overrides ----

fn overrides(text: &str) -> HolidayOverrides {
    match HolidayOverrides::parse(text) {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    }
}

fn refused(text: &str) -> (HolidayError, String) {
    match HolidayOverrides::parse(text) {
        Ok(o) => panic!("accepted {text:?}: {o:?}"),
        Err(e) => {
            let shown = e.to_string();
            (e, shown)
        }
    }
}

const EXAMPLE: &str = r#"# added: municipal or newly decreed days; removed: a day the government moved
[[add]]
country = "CO"
subdivision = "ANT"     # optional
date = "2026-12-07"
name = "Día de las velitas (municipal)"

[[remove]]
country = "CO"
date = "2026-01-12"
"#;

#[test]
fn the_documented_example_adds_and_removes() {
    let o = overrides(EXAMPLE);
    assert!(!o.is_empty());
    let base = cal();
    let c = base.with_overrides(&o);
    assert!(c.is_holiday("CO", Some("ANT"), date(2026, 12, 7)));
    assert!(c.is_holiday("CO", Some("CO-ANT"), date(2026, 12, 7)));
    assert_eq!(
        c.name("CO", Some("ant"), date(2026, 12, 7)),
        Some("Día de las velitas (municipal)")
    );
    assert!(!c.is_holiday("CO", None, date(2026, 12, 7)));
    assert!(!c.is_holiday("CO", Some("ANT"), date(2026, 1, 12)));
    assert!(!c.is_holiday("CO", None, date(2026, 1, 12)));
    assert_eq!(c.subdivisions("CO"), ["ANT"]);
    // The base is untouched, and coverage is the shipped data's.
    assert!(base.is_holiday("CO", None, date(2026, 1, 12)));
    assert!(!base.is_holiday("CO", Some("ANT"), date(2026, 12, 7)));
    assert!(!c.covers("CO", 2036));
    // The associated-function form is the same.
    assert_eq!(HolidayCalendar::with_overrides(base, &o), c);
}

#[test]
fn an_empty_file_changes_nothing() {
    let o = overrides("# nothing yet\n");
    assert!(o.is_empty());
    assert_eq!(o, HolidayOverrides::default());
    assert_eq!(&cal().with_overrides(&o), cal());
}

#[test]
fn a_moved_holiday_and_a_rename() {
    // Moved: the national holiday of Jan 12 goes to Jan 13 (hypothetically). Renamed: remove and
    // add the same day (or just add it: an add on a holiday takes the added name).
    let o = overrides(
        r#"
[[remove]]
country = "co"
date = 2026-01-12

[[add]]
country = "CO"
date = 2026-01-13
name = "Día de los Reyes Magos (trasladado)"

[[add]]
country = "CO"
date = "2026-12-08"
name = "Inmaculada Concepción"
"#,
    );
    let c = cal().with_overrides(&o);
    assert!(!c.is_holiday("CO", None, date(2026, 1, 12)));
    assert_eq!(
        c.name("CO", None, date(2026, 1, 13)),
        Some("Día de los Reyes Magos (trasladado)")
    );
    assert_eq!(
        c.name("CO", None, date(2026, 12, 8)),
        Some("Inmaculada Concepción")
    );
}

#[test]
fn removing_for_one_subdivision() {
    // São Paulo's own day, and a national day not observed in one state only.
    let o = overrides(
        r#"
[[remove]]
country = "BR"
subdivision = "BR-SP"
date = "2026-07-09"

[[remove]]
country = "BR"
subdivision = "rj"
date = "2026-11-20"
"#,
    );
    let c = cal().with_overrides(&o);
    assert!(!c.is_holiday("BR", Some("SP"), date(2026, 7, 9)));
    assert!(!c.is_holiday("BR", Some("RJ"), date(2026, 11, 20)));
    assert!(c.is_holiday("BR", Some("SP"), date(2026, 11, 20)));
    assert!(c.is_holiday("BR", None, date(2026, 11, 20)));
}

#[test]
fn syntax_errors_name_line_and_column() {
    let (e, shown) = refused("[[add]]\ncountry = \"CO\"\ndate = \"2026-12-07\n");
    assert!(matches!(e, HolidayError::Syntax { .. }), "{shown}");
    assert!(shown.starts_with("holiday overrides:3:"), "{shown}");

    // Unknown field: the message lists the valid ones.
    let (e, shown) =
        refused("[[add]]\ncountry = \"CO\"\ndate = \"2026-12-07\"\nnmae = \"x\"\nname = \"y\"\n");
    match &e {
        HolidayError::Syntax { at, .. } => assert_eq!((at.line, at.column), (4, 1), "{shown}"),
        _ => panic!("{shown}"),
    }
    assert!(shown.contains("nmae"), "{shown}");
    assert!(shown.contains("`name`"), "{shown}");

    // Unknown table.
    let (_, shown) = refused("[[added]]\ncountry = \"CO\"\n");
    assert!(shown.contains("added"), "{shown}");
    assert!(shown.starts_with("holiday overrides:1:"), "{shown}");

    // Missing field.
    let (_, shown) = refused("[[add]]\ncountry = \"CO\"\ndate = \"2026-12-07\"\n");
    assert!(shown.contains("missing field `name`"), "{shown}");
    assert!(shown.contains("needs country, date and name"), "{shown}");

    // [add] instead of [[add]].
    let (_, shown) = refused("[add]\ncountry = \"CO\"\n");
    assert!(shown.contains("[[add]]"), "{shown}");
}

#[test]
fn malformed_dates_are_refused_where_they_are() {
    for (value, expected) in [
        ("\"2026-13-07\"", "not a date"),
        ("\"07/12/2026\"", "YYYY-MM-DD"),
        ("\"2026-2-7\"", "YYYY-MM-DD"),
        ("20261207", "YYYY-MM-DD"),
        ("2026-12-07T10:00:00", "YYYY-MM-DD"),
    ] {
        let text = format!("[[remove]]\ncountry = \"CO\"\ndate = {value}\n");
        let (e, shown) = refused(&text);
        match &e {
            HolidayError::BadDate { at, .. } => {
                assert_eq!((at.line, at.column), (3, 8), "{shown}");
            }
            _ => panic!("{value}: {shown}"),
        }
        assert!(shown.contains(expected), "{value}: {shown}");
        assert!(
            shown.starts_with("holiday overrides:3:8: date: "),
            "{shown}"
        );
    }
}

#[test]
fn unknown_country_is_refused() {
    let (e, shown) = refused("[[add]]\ncountry = \"XX\"\ndate = \"2026-12-07\"\nname = \"x\"\n");
    match &e {
        HolidayError::UnknownCountry { at, country, .. } => {
            assert_eq!(country, "XX");
            assert_eq!((at.line, at.column), (2, 11));
        }
        _ => panic!("{shown}"),
    }
    assert!(shown.contains("AR, BR, CL, CO, ES, MX, PE, US"), "{shown}");
    // Full country names are not codes.
    let (e, _) = refused("[[remove]]\ncountry = \"Colombia\"\ndate = \"2026-12-08\"\n");
    assert!(matches!(e, HolidayError::UnknownCountry { .. }));
}

#[test]
fn removing_a_day_that_is_not_a_holiday_is_refused() {
    // Jan 6, 2026 is a Tuesday: Reyes is on Monday the 12th, so this remove would do nothing.
    let (e, shown) = refused("[[remove]]\ncountry = \"CO\"\ndate = \"2026-01-06\"\n");
    match &e {
        HolidayError::NotAHoliday {
            country,
            subdivision,
            date: d,
            at,
        } => {
            assert_eq!(country, "CO");
            assert_eq!(subdivision, &None);
            assert_eq!(*d, date(2026, 1, 6));
            assert_eq!((at.line, at.column), (3, 8));
        }
        _ => panic!("{shown}"),
    }
    assert!(
        shown.contains("2026-01-06 is not a holiday in CO"),
        "{shown}"
    );

    // A subdivision's day removed nationally: not a national holiday.
    let (e, shown) = refused("[[remove]]\ncountry = \"BR\"\ndate = \"2026-07-09\"\n");
    assert!(matches!(e, HolidayError::NotAHoliday { .. }), "{shown}");

    // With a subdivision: named in the message.
    let (_, shown) =
        refused("[[remove]]\ncountry = \"BR\"\nsubdivision = \"RJ\"\ndate = \"2026-07-09\"\n");
    assert!(shown.contains("(subdivision RJ)"), "{shown}");
}

#[test]
fn removing_from_an_unknown_subdivision_is_refused() {
    let (e, shown) =
        refused("[[remove]]\ncountry = \"BR\"\nsubdivision = \"SPP\"\ndate = \"2026-07-09\"\n");
    match &e {
        HolidayError::UnknownSubdivision {
            at, subdivision, ..
        } => {
            assert_eq!(subdivision, "SPP");
            assert_eq!((at.line, at.column), (3, 15));
        }
        _ => panic!("{shown}"),
    }
    assert!(shown.contains("SP,"), "{shown}");
    let (_, shown) =
        refused("[[remove]]\ncountry = \"CO\"\nsubdivision = \"ANT\"\ndate = \"2026-12-08\"\n");
    assert!(shown.contains("known: none"), "{shown}");

    // A subdivision this file adds may have national days removed.
    let o = overrides(
        r#"
[[add]]
country = "CO"
subdivision = "ANT"
date = "2026-12-07"
name = "Día de las velitas (municipal)"

[[remove]]
country = "CO"
subdivision = "ANT"
date = "2026-12-08"
"#,
    );
    let c = cal().with_overrides(&o);
    assert!(!c.is_holiday("CO", Some("ANT"), date(2026, 12, 8)));
    assert!(c.is_holiday("CO", None, date(2026, 12, 8)));
}

#[test]
fn repeated_entries_and_empty_values_are_refused() {
    let (e, shown) = refused(
        "[[remove]]\ncountry = \"CO\"\ndate = \"2026-01-12\"\n[[remove]]\ncountry = \"CO\"\ndate = \"2026-01-12\"\n",
    );
    assert!(
        matches!(e, HolidayError::Repeated { first_line: 3, .. }),
        "{shown}"
    );
    assert!(shown.starts_with("holiday overrides:6:8:"), "{shown}");

    let (e, shown) = refused(
        "[[add]]\ncountry = \"CO\"\ndate = \"2026-12-07\"\nname = \"a\"\n[[add]]\ncountry = \"co\"\ndate = 2026-12-07\nname = \"b\"\n",
    );
    assert!(matches!(e, HolidayError::Repeated { .. }), "{shown}");

    let (e, shown) = refused("[[add]]\ncountry = \"CO\"\ndate = \"2026-12-07\"\nname = \"  \"\n");
    assert!(
        matches!(e, HolidayError::Invalid { field: "name", .. }),
        "{shown}"
    );
    assert!(shown.starts_with("holiday overrides:4:8: name:"), "{shown}");

    for sub in ["", " ", "CO-", "co-"] {
        let (e, shown) = refused(&format!(
            "[[add]]\ncountry = \"CO\"\nsubdivision = \"{sub}\"\ndate = \"2026-12-07\"\nname = \"x\"\n"
        ));
        assert!(
            matches!(
                e,
                HolidayError::Invalid {
                    field: "subdivision",
                    ..
                }
            ),
            "{shown}"
        );
        assert!(
            shown.starts_with("holiday overrides:3:15: subdivision:"),
            "{shown}"
        );
    }
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("holidays.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    let o = HolidayOverrides::load(&path).unwrap();
    assert_eq!(o, overrides(EXAMPLE));

    std::fs::write(
        &path,
        "[[remove]]\ncountry = \"CO\"\ndate = \"2026-01-06\"\n",
    )
    .unwrap();
    let shown = HolidayOverrides::load(&path).unwrap_err().to_string();
    assert!(
        shown.starts_with(&format!("{}:3:8: [[remove]]", path.display())),
        "{shown}"
    );

    let missing = dir.path().join("missing.toml");
    let e = HolidayOverrides::load(&missing).unwrap_err();
    assert!(matches!(e, HolidayError::Read { .. }));
    assert!(e.to_string().contains("missing.toml"), "{e}");
}
