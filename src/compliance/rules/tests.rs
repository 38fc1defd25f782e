//! Hand-checked cases per preset: every expected instant is worked out by hand in the comment
//! beside it (zone offsets noted).

use std::path::Path;

use jiff::Zoned;

use super::*;
use crate::domain::ClientId;
use crate::policy::load::parse_policy;

/// A policy open all day every day, so only presets restrict; `compliance` is appended.
fn policy(compliance: &str) -> Policy {
    let text = format!(
        r#"default_segment = "standard"
templates_dir = "templates"

[defaults]
timezone = "America/Bogota"
locale = "es"
currency = "COP"
send_at = "09:00"
window = {{ days = "daily", from = "00:00", to = "24:00" }}

[company]
name = "Ferretería El Tornillo S.A.S."

[segments.standard]
cadence = "standard"

[segments.late]
cadence = "standard"
window = {{ days = "mon-sat", from = "08:00", to = "18:00" }}

[[cadences.standard.steps]]
name = "due_today"
offset = "0d"
channels = ["email"]
template = "due_today"
tone = "friendly"

{compliance}
"#
    );
    parse_policy(&text, Path::new("config/policy.toml"))
        .unwrap()
        .policy
}

fn by_country() -> Policy {
    policy("[compliance]\napply = \"by_country\"\n")
}

fn client(country: Option<&str>, subdivision: Option<&str>, tz: &str) -> Client {
    Client {
        id: ClientId::new("c1").unwrap(),
        name: "Ana".into(),
        email: Some("ana@example.co".into()),
        phone: None,
        whatsapp: None,
        locale: None,
        timezone: Some(tz.into()),
        country: country.map(str::to_owned),
        subdivision: subdivision.map(str::to_owned),
        blocked_times: Vec::new(),
        segment: None,
        preferred_channels: vec![],
        tags: vec![],
        credits: Default::default(),
        broken_promises: 0,
        facts: Default::default(),
        created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        updated_at: "2026-01-01T00:00:00Z".parse().unwrap(),
    }
}

fn rules(p: &Policy, c: &Client, segment: &str) -> ContactRules {
    ContactRules::for_client(p, c, &p.segments[segment])
}

fn z(s: &str) -> Zoned {
    s.parse().unwrap()
}

#[test]
fn colombia_saturday_closes_at_15_00_and_sunday_is_closed() {
    let p = by_country();
    let r = rules(&p, &client(Some("CO"), None, "America/Bogota"), "standard");
    assert_eq!(r.presets(), ["co_ley_2300"]);
    // 2026-12-05 is a Saturday.
    assert!(r.is_allowed(&z("2026-12-05T14:59:00-05:00[America/Bogota]")));
    let sat_15 = z("2026-12-05T15:00:00-05:00[America/Bogota]");
    assert_eq!(
        r.closed(&sat_15).unwrap().to_string(),
        "outside co_ley_2300's hours (Sat 08:00–15:00)"
    );
    // Sunday closed; Monday 2026-12-07 is a working day: 07:00 Bogotá.
    assert_eq!(
        r.next_allowed(sat_15),
        z("2026-12-07T07:00:00-05:00[America/Bogota]")
    );
    // Saturday before 08:00 opens at 08:00, weekdays at 07:00.
    assert_eq!(
        r.next_allowed(z("2026-12-05T07:30:00-05:00[America/Bogota]")),
        z("2026-12-05T08:00:00-05:00[America/Bogota]")
    );
    assert_eq!(
        r.next_allowed(z("2026-12-04T06:00:00-05:00[America/Bogota]")),
        z("2026-12-04T07:00:00-05:00[America/Bogota]")
    );
}

#[test]
fn a_colombian_monday_holiday_is_skipped() {
    let p = by_country();
    let r = rules(&p, &client(Some("co"), None, "America/Bogota"), "standard");
    // Reyes (6 January 2026, a Tuesday) moves to Monday 12 January under Ley 51/1983.
    let monday = z("2026-01-12T10:00:00-05:00[America/Bogota]");
    let closed = r.closed(&monday).unwrap();
    assert!(
        matches!(&closed, Closed::Holiday { preset, .. } if preset == "co_ley_2300"),
        "{closed:?}"
    );
    // Saturday 10 January after 15:00: Sunday closed, Monday a holiday: Tuesday 07:00.
    assert_eq!(
        r.next_allowed(z("2026-01-10T16:00:00-05:00[America/Bogota]")),
        z("2026-01-13T07:00:00-05:00[America/Bogota]")
    );
    // Monday 7 December 2026 after 19:00: Tuesday 8 December is the Immaculate Conception.
    assert_eq!(
        r.next_allowed(z("2026-12-07T19:00:00-05:00[America/Bogota]")),
        z("2026-12-09T07:00:00-05:00[America/Bogota]")
    );
}

#[test]
fn the_segment_window_and_the_preset_intersect() {
    let p = by_country();
    let r = rules(&p, &client(Some("CO"), None, "America/Bogota"), "late");
    // late: Mon–Sat 08–18; Colombia: Mon–Fri 07–19, Sat 08–15.
    assert_eq!(
        r.week().describe(),
        "Mon–Fri 08:00–18:00; Sat 08:00–15:00; Sun closed"
    );
    // Friday 07:30 is inside the law but before the segment opens.
    let fri = z("2026-12-04T07:30:00-05:00[America/Bogota]");
    assert_eq!(
        r.closed(&fri).unwrap().to_string(),
        "outside segment late's hours (Fri 08:00–18:00)"
    );
    assert_eq!(
        r.next_allowed(fri),
        z("2026-12-04T08:00:00-05:00[America/Bogota]")
    );
}

#[test]
fn chile_allows_saturday_until_20_00_but_not_its_holidays() {
    let p = by_country();
    let r = rules(
        &p,
        &client(Some("CL"), None, "America/Santiago"),
        "standard",
    );
    assert_eq!(r.presets(), ["cl_ley_21320"]);
    // Saturday 2026-12-05 19:59 (UTC-3, summer time) is allowed; 20:00 moves to Monday 08:00.
    assert!(r.is_allowed(&z("2026-12-05T19:59:00-03:00[America/Santiago]")));
    assert_eq!(
        r.next_allowed(z("2026-12-05T20:00:00-03:00[America/Santiago]")),
        z("2026-12-07T08:00:00-03:00[America/Santiago]")
    );
    // Fiestas Patrias: 18 and 19 September 2026 (Friday, Saturday) are closed; Sunday too.
    assert_eq!(
        r.next_allowed(z("2026-09-17T21:00:00-03:00[America/Santiago]")),
        z("2026-09-21T08:00:00-03:00[America/Santiago]")
    );
    assert_eq!(r.caps().len(), 3);
}

#[test]
fn sao_paulo_gets_the_state_overlay_and_its_holidays() {
    let p = by_country();
    let sp = rules(
        &p,
        &client(Some("BR"), Some("BR-SP"), "America/Sao_Paulo"),
        "standard",
    );
    assert_eq!(sp.presets(), ["br_cdc", "br_sp"]);
    // 9 July 2026 (Thursday): Revolução Constitucionalista, a São Paulo state holiday.
    let july9 = z("2026-07-09T10:00:00-03:00[America/Sao_Paulo]");
    assert!(!sp.is_allowed(&july9));
    assert_eq!(
        sp.next_allowed(july9.clone()),
        z("2026-07-10T08:00:00-03:00[America/Sao_Paulo]")
    );
    // Rio de Janeiro: a working day there, but the state law closes at 19:00 and opens at 09:00.
    let rj = rules(
        &p,
        &client(Some("BR"), Some("RJ"), "America/Sao_Paulo"),
        "standard",
    );
    assert_eq!(rj.presets(), ["br_cdc", "br_rj"]);
    assert!(!rj.is_allowed(&z("2026-07-09T08:30:00-03:00[America/Sao_Paulo]")));
    assert!(rj.is_allowed(&july9));
    assert!(!rj.is_allowed(&z("2026-07-11T10:00:00-03:00[America/Sao_Paulo]")));
}

#[test]
fn reg_f_hours_every_day_across_a_dst_change() {
    let p = by_country();
    let r = rules(
        &p,
        &client(Some("US"), None, "America/New_York"),
        "standard",
    );
    assert_eq!(r.presets(), ["us_reg_f"]);
    // Sunday 2026-03-08: clocks spring forward at 02:00. 08:00 local is EDT (UTC-4).
    let at = r.next_allowed(z("2026-03-08T01:00:00-05:00[America/New_York]"));
    assert_eq!(at, z("2026-03-08T08:00:00-04:00[America/New_York]"));
    assert_eq!(at.timestamp(), "2026-03-08T12:00:00Z".parse().unwrap());
    // No holiday exclusion: Independence Day 10:00 is allowed; 21:00 is not.
    assert!(r.is_allowed(&z("2026-07-04T10:00:00-04:00[America/New_York]")));
    assert!(!r.is_allowed(&z("2026-07-04T21:00:00-04:00[America/New_York]")));
}

#[test]
fn no_preset_without_compliance_or_country_and_always_applies_everywhere() {
    // No [compliance]: only the window.
    let p = policy("");
    let r = rules(&p, &client(Some("CO"), None, "America/Bogota"), "standard");
    assert!(r.presets().is_empty());
    assert!(r.is_allowed(&z("2026-12-06T23:00:00-05:00[America/Bogota]")));
    // by_country, client without a country: nothing, unless a default country is set.
    let p = by_country();
    assert!(
        rules(&p, &client(None, None, "America/Bogota"), "standard")
            .presets()
            .is_empty()
    );
    let p = policy("[compliance]\napply = \"by_country\"\ndefault_country = \"co\"\n");
    assert_eq!(
        rules(&p, &client(None, None, "America/Bogota"), "standard").presets(),
        ["co_ley_2300"]
    );
    // always: the preset holds for a Mexican client too, with Colombia's holidays.
    let p = policy("[compliance]\napply = \"off\"\nalways = [\"co_ley_2300\"]\n");
    let r = rules(
        &p,
        &client(Some("MX"), None, "America/Mexico_City"),
        "standard",
    );
    assert_eq!(r.presets(), ["co_ley_2300"]);
    assert!(!r.is_allowed(&z("2026-12-08T10:00:00-06:00[America/Mexico_City]")));
}

#[test]
fn the_debtors_blocked_times_are_taken_out_of_every_window() {
    let p = by_country();
    let mut c = client(Some("US"), None, "America/New_York");
    c.blocked_times = vec![crate::domain::BlockedTime {
        days: "mon-fri".into(),
        from: "12:00".into(),
        to: "14:00".into(),
    }];
    let r = rules(&p, &c, "standard");
    // Reg F's 08-21 with a lunch the debtor asked to keep free.
    assert_eq!(
        r.week().describe(),
        "Mon–Fri 08:00–12:00, 14:00–21:00; Sat–Sun 08:00–21:00"
    );
    let noon = z("2026-12-08T12:30:00-05:00[America/New_York]");
    assert_eq!(
        r.closed(&noon).unwrap().to_string(),
        "the debtor asked not to be contacted then (allowed: Tue 00:00–12:00, 14:00–24:00)"
    );
    assert_eq!(
        r.next_allowed(noon),
        z("2026-12-08T14:00:00-05:00[America/New_York]")
    );
}

#[test]
fn an_own_preset_replaces_a_built_in_one() {
    let p = policy(
        r#"[compliance]
apply = "by_country"

[compliance.presets.co_ley_2300]
country = "CO"
exclude_holidays = false
windows = [{ days = "mon-fri", from = "09:00", to = "17:00" }]
"#,
    );
    let r = rules(&p, &client(Some("CO"), None, "America/Bogota"), "standard");
    assert_eq!(r.week().describe(), "Mon–Fri 09:00–17:00; Sat–Sun closed");
    assert!(r.is_allowed(&z("2026-12-08T10:00:00-05:00[America/Bogota]")));
    assert!(r.caps().is_empty());
}

#[test]
fn the_operators_holiday_file_adds_and_removes_days() {
    let dir = tempfile::tempdir().unwrap();
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/config/templates");
    let text = |override_file: &str| {
        format!(
            "default_segment = \"standard\"\ntemplates_dir = \"{templates}\"\n\n[defaults]\ntimezone = \"America/Bogota\"\nlocale = \"es\"\ncurrency = \"COP\"\nsend_at = \"09:00\"\nwindow = {{ days = \"daily\", from = \"00:00\", to = \"24:00\" }}\n\n[company]\nname = \"X\"\n\n[segments.standard]\ncadence = \"standard\"\n\n[[cadences.standard.steps]]\nname = \"due_today\"\noffset = \"0d\"\nchannels = [\"email\"]\ntemplate = \"due_today\"\ntone = \"friendly\"\n\n[compliance]\napply = \"by_country\"\nholidays_override = \"{override_file}\"\n"
        )
    };
    std::fs::write(
        dir.path().join("holidays.override.toml"),
        "[[add]]\ncountry = \"CO\"\ndate = \"2026-12-07\"\nname = \"Día de las velitas (municipal)\"\n\n[[remove]]\ncountry = \"CO\"\ndate = \"2026-01-12\"\n",
    )
    .unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, text("holidays.override.toml")).unwrap();
    let p = crate::policy::load_policy(&path).unwrap().policy;
    let r = rules(&p, &client(Some("CO"), None, "America/Bogota"), "standard");
    let monday = z("2026-12-07T10:00:00-05:00[America/Bogota]");
    assert_eq!(
        r.closed(&monday).unwrap().to_string(),
        "co_ley_2300 excludes public holidays (Día de las velitas (municipal))"
    );
    assert!(r.is_allowed(&z("2026-01-12T10:00:00-05:00[America/Bogota]")));
    // A bad file is refused where the policy names it, with the file's own line.
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[remove]]\ncountry = \"CO\"\ndate = \"2026-01-13\"\n",
    )
    .unwrap();
    std::fs::write(&path, text("bad.toml")).unwrap();
    let err = crate::policy::load_policy(&path).unwrap_err().to_string();
    assert!(err.contains("compliance.holidays_override"), "{err}");
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("2026-01-13 is not a holiday in CO"), "{err}");
    // A missing file too.
    std::fs::write(&path, text("nope.toml")).unwrap();
    let err = crate::policy::load_policy(&path).unwrap_err().to_string();
    assert!(err.contains("nope.toml"), "{err}");
}
