//! Planner tests: every expected instant below is computed by hand (zone offsets noted).

use std::collections::BTreeMap;

use jiff::civil::{Time, date, time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use rust_decimal::Decimal;

use super::*;
use crate::domain::{
    Client, ClientId, Currency, Due, Invoice, InvoiceId, InvoiceStatus, ReminderId, ReminderState,
};
use crate::policy::{Cadence, Company, ContactWindow, Defaults, Offset, Policy, Segment, Step};

// ---------------------------------------------------------------- helpers

const ALL_DAYS: [bool; 7] = [true; 7];
const MON_FRI: [bool; 7] = [true, true, true, true, true, false, false];

fn always() -> ContactWindow {
    ContactWindow {
        days: ALL_DAYS,
        start: Time::MIN,
        end: Time::MAX,
    }
}

fn office() -> ContactWindow {
    ContactWindow {
        days: MON_FRI,
        start: time(8, 0, 0, 0),
        end: time(19, 0, 0, 0),
    }
}

fn step(name: &str, offset: Offset, at: Option<Time>) -> Step {
    Step {
        name: name.to_owned(),
        offset,
        at,
        channels: vec!["email".to_owned(), "sms".to_owned()],
        template: format!("tpl_{name}"),
        tone: "friendly".to_owned(),
        whatsapp: None,
        action: Default::default(),
        max_late: None,
    }
}

/// A policy with one segment `std` (cadence `std`, window `window`), default zone `zone`,
/// default send time 09:00.
fn policy(zone: &str, steps: Vec<Step>, window: ContactWindow) -> Policy {
    let mut segments = BTreeMap::new();
    segments.insert(
        "std".to_owned(),
        Segment {
            name: "std".to_owned(),
            cadence: "std".to_owned(),
            window: None,
            group_by_client: false,
        },
    );
    let mut cadences = BTreeMap::new();
    cadences.insert(
        "std".to_owned(),
        Cadence {
            name: "std".to_owned(),
            steps,
            on_exhausted: Default::default(),
            group_by_client: false,
        },
    );
    Policy {
        defaults: Defaults {
            timezone_name: zone.to_owned(),
            timezone: TimeZone::get(zone).unwrap(),
            locale: "es".to_owned(),
            currency: Currency::parse("COP").unwrap(),
            send_at: time(9, 0, 0, 0),
            window,
        },
        company: Company::default(),
        segments,
        default_segment: "std".to_owned(),
        cadences,
        channels: Default::default(),
        opt_out: Default::default(),
        terms: Default::default(),
        arrangements: Default::default(),
        facts: Default::default(),
        rules: Default::default(),
        partners: Default::default(),
        write_off_after_days: None,
        tasks: Default::default(),
        inbound: Default::default(),
        compliance: Default::default(),
    }
}

fn client(tz: Option<&str>) -> Client {
    let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    Client {
        id: ClientId::new("c-1").unwrap(),
        name: "Ana".to_owned(),
        email: Some("ana@example.com".to_owned()),
        phone: None,
        whatsapp: None,
        locale: None,
        timezone: tz.map(str::to_owned),
        country: None,
        subdivision: None,
        blocked_times: Vec::new(),
        segment: None,
        preferred_channels: vec![],
        tags: vec![],
        credits: Default::default(),
        broken_promises: 0,
        facts: Default::default(),
        created_at: t,
        updated_at: t,
    }
}

fn invoice(due: Due, cursor: Option<u32>) -> Invoice {
    let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    Invoice {
        id: InvoiceId::new("INV-1").unwrap(),
        client_id: ClientId::new("c-1").unwrap(),
        number: "FV-1".to_owned(),
        currency: Currency::parse("COP").unwrap(),
        amount: Decimal::new(100_000, 0),
        balance: Decimal::new(100_000, 0),
        issued_at: None,
        due_at: due,
        payment_url: None,
        metadata: BTreeMap::new(),
        status: InvoiceStatus::Open,
        payments: vec![],
        pause: None,
        generation: 3,
        cursor,
        pending: None,
        arrangements: Vec::new(),
        created_at: t,
        updated_at: t,
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    }
}

fn z(s: &str) -> Zoned {
    s.parse().unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

fn nominal(due: Due, offset: Offset, at: Option<Time>, zone: &str) -> Zoned {
    nominal_time(&due, &step("s", offset, at), &tz(zone), time(9, 0, 0, 0)).unwrap()
}

fn statuses(p: &Plan) -> Vec<PlannedStatus> {
    p.steps.iter().map(|s| s.status).collect()
}

const BOG: &str = "America/Bogota"; // UTC-5 all year
const NY: &str = "America/New_York";
const SCL: &str = "America/Santiago";

// ---------------------------------------------------------------- offsets

#[test]
fn offsets_on_a_date_due() {
    let due = Due::Date(date(2026, 3, 15));
    let at = |h, m| Some(time(h, m, 0, 0));
    let cases: &[(Offset, Option<Time>, &str)] = &[
        (
            Offset::Days(-3),
            None,
            "2026-03-12T09:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Days(-3),
            at(10, 30),
            "2026-03-12T10:30:00-05:00[America/Bogota]",
        ),
        (
            Offset::Days(0),
            None,
            "2026-03-15T09:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Days(0),
            at(17, 0),
            "2026-03-15T17:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Days(1),
            None,
            "2026-03-16T09:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Days(1),
            at(17, 0),
            "2026-03-16T17:00:00-05:00[America/Bogota]",
        ),
        // Minutes: from the local due date at the step's (or default) time, exactly.
        (
            Offset::Minutes(120),
            None,
            "2026-03-15T11:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Minutes(120),
            at(14, 0),
            "2026-03-15T16:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Minutes(-90),
            None,
            "2026-03-15T07:30:00-05:00[America/Bogota]",
        ),
        (
            Offset::Minutes(-90),
            at(8, 0),
            "2026-03-15T06:30:00-05:00[America/Bogota]",
        ),
        (
            Offset::Minutes(-90),
            at(0, 30),
            "2026-03-14T23:00:00-05:00[America/Bogota]",
        ),
    ];
    for (offset, at, want) in cases {
        assert_eq!(
            nominal(due, *offset, *at, BOG),
            z(want),
            "{offset} at {at:?}"
        );
    }
}

#[test]
fn offsets_on_an_instant_due() {
    // 17:00Z is 12:00 in Bogota.
    let due = Due::Instant(ts("2026-03-15T17:00:00Z"));
    let at = |h, m| Some(time(h, m, 0, 0));
    let cases: &[(Offset, Option<Time>, &str)] = &[
        // No `at`: the instant itself shifted (days keep the wall time, minutes are exact).
        (
            Offset::Days(-3),
            None,
            "2026-03-12T12:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Days(0),
            None,
            "2026-03-15T12:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Days(1),
            None,
            "2026-03-16T12:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Minutes(120),
            None,
            "2026-03-15T14:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Minutes(-90),
            None,
            "2026-03-15T10:30:00-05:00[America/Bogota]",
        ),
        // With `at`: the local date (of the shifted instant, for minutes) at that time.
        (
            Offset::Days(-3),
            at(10, 30),
            "2026-03-12T10:30:00-05:00[America/Bogota]",
        ),
        (
            Offset::Days(0),
            at(9, 0),
            "2026-03-15T09:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Days(1),
            at(17, 0),
            "2026-03-16T17:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Minutes(120),
            at(9, 0),
            "2026-03-15T09:00:00-05:00[America/Bogota]",
        ),
        (
            Offset::Minutes(-90),
            at(8, 0),
            "2026-03-15T08:00:00-05:00[America/Bogota]",
        ),
    ];
    for (offset, at, want) in cases {
        assert_eq!(
            nominal(due, *offset, *at, BOG),
            z(want),
            "{offset} at {at:?}"
        );
    }
}

#[test]
fn instant_due_uses_the_local_date_not_the_utc_date() {
    // 03:00Z on the 16th is 22:00 on the 15th in Bogota.
    let due = Due::Instant(ts("2026-03-16T03:00:00Z"));
    let nine = Some(time(9, 0, 0, 0));
    assert_eq!(
        nominal(due, Offset::Days(0), nine, BOG),
        z("2026-03-15T09:00:00-05:00[America/Bogota]")
    );
    // +2h is 05:00Z on the 16th = 00:00 local on the 16th: that local date, at 09:00.
    assert_eq!(
        nominal(due, Offset::Minutes(120), nine, BOG),
        z("2026-03-16T09:00:00-05:00[America/Bogota]")
    );
    // +1h is 04:00Z = 23:00 local on the 15th.
    assert_eq!(
        nominal(due, Offset::Minutes(60), nine, BOG),
        z("2026-03-15T09:00:00-05:00[America/Bogota]")
    );
}

#[test]
fn nominal_time_out_of_range_is_an_error_not_a_panic() {
    let due = Due::Date(date(9999, 12, 31));
    let s = step("late", Offset::Days(1), None);
    assert!(nominal_time(&due, &s, &tz(BOG), time(9, 0, 0, 0)).is_err());
    let s = step("late", Offset::Minutes(i64::MAX), None);
    assert!(nominal_time(&due, &s, &tz(BOG), time(9, 0, 0, 0)).is_err());
    // And the planner leaves such a step out instead of panicking.
    let p = policy(BOG, vec![step("ok", Offset::Days(-1), None), s], always());
    let plan = plan(
        &invoice(due, None),
        &client(None),
        &p,
        ts("2026-03-01T00:00:00Z"),
    );
    assert_eq!(plan.steps.len(), 1);
    assert_eq!(plan.steps[0].step, "ok");
}

// ---------------------------------------------------------------- DST: New York

#[test]
fn new_york_spring_forward_keeps_nine_local() {
    // 2026-03-08 02:00 EST -> 03:00 EDT.
    let due = Due::Date(date(2026, 3, 9));
    let before = nominal(due, Offset::Days(-2), None, NY);
    let after = nominal(due, Offset::Days(-1), None, NY);
    assert_eq!(before, z("2026-03-07T09:00:00-05:00[America/New_York]"));
    assert_eq!(after, z("2026-03-08T09:00:00-04:00[America/New_York]"));
    assert_eq!(before.timestamp(), ts("2026-03-07T14:00:00Z"));
    assert_eq!(after.timestamp(), ts("2026-03-08T13:00:00Z"));
    // Only 23 hours apart in absolute time.
    assert_eq!(
        after
            .timestamp()
            .duration_since(before.timestamp())
            .as_hours(),
        23
    );
}

#[test]
fn new_york_instant_due_days_keep_wall_time_minutes_are_exact() {
    // Friday 2026-03-06 09:00 EST.
    let due = Due::Instant(ts("2026-03-06T14:00:00Z"));
    // +3 days across the change: Monday 09:00 EDT = 13:00Z.
    assert_eq!(
        nominal(due, Offset::Days(3), None, NY),
        z("2026-03-09T09:00:00-04:00[America/New_York]")
    );
    // +72 hours exactly: 14:00Z Monday = 10:00 EDT.
    assert_eq!(
        nominal(due, Offset::Minutes(72 * 60), None, NY),
        z("2026-03-09T10:00:00-04:00[America/New_York]")
    );
}

#[test]
fn new_york_nonexistent_local_time_moves_forward() {
    // 02:30 does not exist on 2026-03-08: it becomes 03:30 EDT (07:30Z).
    let got = nominal(
        Due::Date(date(2026, 3, 8)),
        Offset::Days(0),
        Some(time(2, 30, 0, 0)),
        NY,
    );
    assert_eq!(got, z("2026-03-08T03:30:00-04:00[America/New_York]"));
    assert_eq!(got.timestamp(), ts("2026-03-08T07:30:00Z"));
    // Same for an instant due at 02:30 EST the day before, +1 calendar day.
    let due = Due::Instant(ts("2026-03-07T07:30:00Z"));
    assert_eq!(
        nominal(due, Offset::Days(1), None, NY),
        z("2026-03-08T03:30:00-04:00[America/New_York]")
    );
}

#[test]
fn new_york_fall_back_keeps_nine_local_and_folds_take_first() {
    // 2026-11-01 02:00 EDT -> 01:00 EST.
    let due = Due::Date(date(2026, 11, 2));
    let before = nominal(due, Offset::Days(-2), None, NY);
    let after = nominal(due, Offset::Days(-1), None, NY);
    assert_eq!(before.timestamp(), ts("2026-10-31T13:00:00Z")); // 09:00 EDT
    assert_eq!(after.timestamp(), ts("2026-11-01T14:00:00Z")); // 09:00 EST
    assert_eq!(
        (before.time(), after.time()),
        (time(9, 0, 0, 0), time(9, 0, 0, 0))
    );
    // 01:30 happens twice: the first (EDT, 05:30Z) is used.
    let fold = nominal(
        Due::Date(date(2026, 11, 1)),
        Offset::Days(0),
        Some(time(1, 30, 0, 0)),
        NY,
    );
    assert_eq!(fold.timestamp(), ts("2026-11-01T05:30:00Z"));
}

#[test]
fn new_york_plan_across_spring_forward() {
    // Steps at 09:00 local every day around the change; Mon-Fri 08-19 window.
    let steps = vec![
        step("a", Offset::Days(-2), None), // Fri 03-06 09:00 EST
        step("b", Offset::Days(-1), None), // Sat 03-07 -> Mon 03-09 08:00 EDT
        step("c", Offset::Days(0), None),  // Sun 03-08 -> Mon 03-09 08:00 EDT, after b
        step("d", Offset::Days(1), None),  // Mon 03-09 09:00 EDT
    ];
    let p = policy(NY, steps, office());
    let inv = invoice(Due::Date(date(2026, 3, 8)), None);
    let plan = plan(&inv, &client(None), &p, ts("2026-03-01T00:00:00Z"));
    let fire: Vec<Timestamp> = plan.steps.iter().map(|s| s.fire_at.timestamp()).collect();
    assert_eq!(
        fire,
        vec![
            ts("2026-03-06T14:00:00Z"),
            ts("2026-03-09T12:00:00Z"),
            ts("2026-03-09T12:00:00Z"),
            ts("2026-03-09T13:00:00Z"),
        ]
    );
    use PlannedStatus::*;
    assert_eq!(
        statuses(&plan),
        vec![Scheduled, Deferred, Deferred, Scheduled]
    );
    assert_eq!(plan.zone, NY);
}

// ---------------------------------------------------------------- DST: Santiago

#[test]
fn santiago_transitions_2026_are_where_we_think() {
    // Fall back: 2026-04-05 00:00 -03 -> 2026-04-04 23:00 -04.
    // Spring forward: 2026-09-06 00:00 -04 -> 01:00 -03.
    let zone = tz(SCL);
    let off = |s: &str| zone.to_offset(ts(s)).seconds() / 3600;
    assert_eq!(off("2026-04-05T02:59:59Z"), -3);
    assert_eq!(off("2026-04-05T03:00:00Z"), -4);
    assert_eq!(off("2026-09-06T03:59:59Z"), -4);
    assert_eq!(off("2026-09-06T04:00:00Z"), -3);
}

#[test]
fn santiago_fall_back_keeps_nine_local() {
    let due = Due::Date(date(2026, 4, 6));
    let before = nominal(due, Offset::Days(-2), None, SCL);
    let after = nominal(due, Offset::Days(-1), None, SCL);
    assert_eq!(before, z("2026-04-04T09:00:00-03:00[America/Santiago]"));
    assert_eq!(after, z("2026-04-05T09:00:00-04:00[America/Santiago]"));
    assert_eq!(before.timestamp(), ts("2026-04-04T12:00:00Z"));
    assert_eq!(after.timestamp(), ts("2026-04-05T13:00:00Z"));
    // 23:30 on 04-04 happens twice: the first (-03, 02:30Z on the 5th) is used.
    let fold = nominal(
        Due::Date(date(2026, 4, 4)),
        Offset::Days(0),
        Some(time(23, 30, 0, 0)),
        SCL,
    );
    assert_eq!(fold.timestamp(), ts("2026-04-05T02:30:00Z"));
}

#[test]
fn santiago_spring_forward_keeps_nine_local_and_gap_moves_forward() {
    let due = Due::Date(date(2026, 9, 7));
    let before = nominal(due, Offset::Days(-2), None, SCL);
    let after = nominal(due, Offset::Days(-1), None, SCL);
    assert_eq!(before.timestamp(), ts("2026-09-05T13:00:00Z")); // 09:00 -04
    assert_eq!(after.timestamp(), ts("2026-09-06T12:00:00Z")); // 09:00 -03
    // 00:30 does not exist on 2026-09-06: 01:30 -03 (04:30Z).
    let gap = nominal(
        Due::Date(date(2026, 9, 6)),
        Offset::Days(0),
        Some(time(0, 30, 0, 0)),
        SCL,
    );
    assert_eq!(gap, z("2026-09-06T01:30:00-03:00[America/Santiago]"));
    assert_eq!(gap.timestamp(), ts("2026-09-06T04:30:00Z"));
    // Instant due 00:30 -04 on 09-05 (04:30Z), +1 calendar day: also 01:30 -03.
    let due = Due::Instant(ts("2026-09-05T04:30:00Z"));
    assert_eq!(nominal(due, Offset::Days(1), None, SCL), gap);
}

#[test]
fn client_zone_overrides_default_and_bad_zone_falls_back() {
    let p = policy(BOG, vec![step("a", Offset::Days(0), None)], always());
    let inv = invoice(Due::Date(date(2026, 9, 6)), None);
    let now = ts("2026-09-01T00:00:00Z");
    let scl = plan(&inv, &client(Some(SCL)), &p, now);
    assert_eq!(scl.zone, SCL);
    assert_eq!(scl.steps[0].fire_at.timestamp(), ts("2026-09-06T12:00:00Z")); // 09:00 -03
    let bad = plan(&inv, &client(Some("Mars/Olympus")), &p, now);
    assert_eq!(bad.zone, BOG);
    assert_eq!(bad.steps[0].fire_at.timestamp(), ts("2026-09-06T14:00:00Z")); // 09:00 -05
    assert_eq!(client_zone(&p, &client(None)).iana_name(), Some(BOG));
}

// ---------------------------------------------------------------- segments

#[test]
fn segment_selection_order() {
    let mut p = policy(BOG, vec![], always());
    for name in ["vip", "late"] {
        p.segments.insert(
            name.to_owned(),
            Segment {
                name: name.to_owned(),
                cadence: name.to_owned(),
                window: None,
                group_by_client: false,
            },
        );
    }
    let mut c = client(None);
    assert_eq!(segment_for(&p, &c).name, "std");
    c.tags = vec!["nope".into(), "late".into(), "vip".into()];
    assert_eq!(segment_for(&p, &c).name, "late");
    c.segment = Some("vip".into());
    assert_eq!(segment_for(&p, &c).name, "vip");
    c.segment = Some("unknown".into());
    assert_eq!(segment_for(&p, &c).name, "late");
    // Broken policies never panic.
    c.tags.clear();
    p.default_segment = "missing".into();
    assert_eq!(segment_for(&p, &c).name, "late"); // first by name
    p.segments.clear();
    assert_eq!(segment_for(&p, &c).name, "");
    let plan = plan(
        &invoice(Due::Date(date(2026, 3, 1)), None),
        &c,
        &p,
        ts("2026-01-01T00:00:00Z"),
    );
    assert!(plan.steps.is_empty());
    assert!(plan.next().is_none());
}

#[test]
fn segment_window_overrides_default() {
    let mut p = policy(
        BOG,
        vec![step("a", Offset::Days(0), Some(time(21, 0, 0, 0)))],
        always(),
    );
    let inv = invoice(Due::Date(date(2026, 3, 10)), None);
    let now = ts("2026-03-01T00:00:00Z");
    let open = plan(&inv, &client(None), &p, now);
    assert_eq!(open.steps[0].status, PlannedStatus::Scheduled);
    if let Some(s) = p.segments.get_mut("std") {
        s.window = Some(office());
    }
    let office = plan(&inv, &client(None), &p, now);
    assert_eq!(office.steps[0].status, PlannedStatus::Deferred);
    assert_eq!(
        office.steps[0].fire_at,
        z("2026-03-11T08:00:00-05:00[America/Bogota]")
    );
}

// ---------------------------------------------------------------- catch-up

/// Due Tue 2026-03-10 in Bogota; nominals Sat 03-07, Tue 03-10, Wed 03-11, Fri 03-13,
/// Tue 03-17, all 09:00 -05.
fn five_step_policy() -> Policy {
    let steps = vec![
        step("courtesy", Offset::Days(-3), None),
        step("due_today", Offset::Days(0), None),
        step("late_1", Offset::Days(1), None),
        step("late_3", Offset::Days(3), None),
        step("final", Offset::Days(7), None),
    ];
    policy(BOG, steps, office())
}

#[test]
fn catch_up_sends_only_the_latest_past_step() {
    let p = five_step_policy();
    let inv = invoice(Due::Date(date(2026, 3, 10)), None);
    // Thu 2026-03-12 10:00 -05: three steps are past.
    let now = ts("2026-03-12T15:00:00Z");
    let plan = plan(&inv, &client(None), &p, now);
    use PlannedStatus::*;
    assert_eq!(
        statuses(&plan),
        vec![
            SkippedCatchUp,
            SkippedCatchUp,
            CatchUp,
            Scheduled,
            Scheduled
        ]
    );
    let next = plan.next().unwrap();
    assert_eq!((next.index, next.step.as_str()), (2, "late_1"));
    assert_eq!(next.fire_at.timestamp(), now);
    assert_eq!(next.nominal, z("2026-03-11T09:00:00-05:00[America/Bogota]"));
    let skipped: Vec<&str> = plan.skipped().map(|s| s.step.as_str()).collect();
    assert_eq!(skipped, vec!["courtesy", "due_today"]);
    assert_eq!(
        plan.steps[3].fire_at,
        z("2026-03-13T09:00:00-05:00[America/Bogota]")
    );
    assert_eq!(
        plan.steps[4].fire_at,
        z("2026-03-17T09:00:00-05:00[America/Bogota]")
    );
}

#[test]
fn catch_up_respects_the_cursor() {
    let p = five_step_policy();
    let now = ts("2026-03-12T15:00:00Z");
    use PlannedStatus::*;
    let plan0 = plan(
        &invoice(Due::Date(date(2026, 3, 10)), Some(0)),
        &client(None),
        &p,
        now,
    );
    assert_eq!(
        statuses(&plan0),
        vec![Done, SkippedCatchUp, CatchUp, Scheduled, Scheduled]
    );
    // Everything past already handled: nothing to catch up, next is the future step.
    let plan2 = plan(
        &invoice(Due::Date(date(2026, 3, 10)), Some(2)),
        &client(None),
        &p,
        now,
    );
    assert_eq!(
        statuses(&plan2),
        vec![Done, Done, Done, Scheduled, Scheduled]
    );
    assert_eq!(plan2.next().unwrap().index, 3);
    assert_eq!(plan2.skipped().count(), 0);
    // All done.
    let plan4 = plan(
        &invoice(Due::Date(date(2026, 3, 10)), Some(4)),
        &client(None),
        &p,
        now,
    );
    assert!(plan4.next().is_none());
}

#[test]
fn catch_up_at_night_goes_out_next_morning() {
    let p = five_step_policy();
    let inv = invoice(Due::Date(date(2026, 3, 10)), None);
    // Thu 2026-03-12 23:00 -05.
    let now = ts("2026-03-13T04:00:00Z");
    let plan = plan(&inv, &client(None), &p, now);
    let next = plan.next().unwrap();
    assert_eq!((next.index, next.status), (2, PlannedStatus::CatchUp));
    assert_eq!(next.fire_at, z("2026-03-13T08:00:00-05:00[America/Bogota]"));
    // The Friday 09:00 step still comes after it.
    assert_eq!(
        plan.steps[3].fire_at,
        z("2026-03-13T09:00:00-05:00[America/Bogota]")
    );
    assert_eq!(plan.steps[3].status, PlannedStatus::Scheduled);
}

#[test]
fn step_due_exactly_now_is_caught_up_now() {
    let p = five_step_policy();
    let inv = invoice(Due::Date(date(2026, 3, 10)), Some(0));
    let now = ts("2026-03-10T14:00:00Z"); // Tue 09:00 -05, the due_today step
    let plan = plan(&inv, &client(None), &p, now);
    let next = plan.next().unwrap();
    assert_eq!((next.index, next.status), (1, PlannedStatus::CatchUp));
    assert_eq!(next.fire_at.timestamp(), now);
    assert_eq!(plan.skipped().count(), 0);
}

// ---------------------------------------------------------------- windows

#[test]
fn saturday_step_defers_to_monday_morning() {
    let p = five_step_policy();
    let inv = invoice(Due::Date(date(2026, 3, 10)), None);
    let plan = plan(&inv, &client(None), &p, ts("2026-03-01T00:00:00Z"));
    let courtesy = &plan.steps[0];
    assert_eq!(courtesy.nominal.weekday(), jiff::civil::Weekday::Saturday);
    assert_eq!(courtesy.status, PlannedStatus::Deferred);
    assert_eq!(
        courtesy.fire_at,
        z("2026-03-09T08:00:00-05:00[America/Bogota]")
    );
    assert_eq!(plan.next().unwrap().index, 0);
}

#[test]
fn evening_step_defers_to_next_morning() {
    let p = policy(
        BOG,
        vec![step("late", Offset::Days(0), Some(time(21, 0, 0, 0)))],
        office(),
    );
    let inv = invoice(Due::Date(date(2026, 3, 10)), None);
    let plan = plan(&inv, &client(None), &p, ts("2026-03-01T00:00:00Z"));
    assert_eq!(
        plan.steps[0].nominal,
        z("2026-03-10T21:00:00-05:00[America/Bogota]")
    );
    assert_eq!(
        plan.steps[0].fire_at,
        z("2026-03-11T08:00:00-05:00[America/Bogota]")
    );
    assert_eq!(plan.steps[0].status, PlannedStatus::Deferred);
}

#[test]
fn fire_times_keep_cadence_order() {
    // Step a (0d at 18:00) is nominally after step b (+2h from 09:00 = 11:00): b may not
    // fire before a.
    let steps = vec![
        step("a", Offset::Days(0), Some(time(18, 0, 0, 0))),
        step("b", Offset::Minutes(120), None),
    ];
    let p = policy(BOG, steps, office());
    let inv = invoice(Due::Date(date(2026, 3, 10)), None);
    let plan = plan(&inv, &client(None), &p, ts("2026-03-01T00:00:00Z"));
    assert_eq!(
        plan.steps[1].nominal,
        z("2026-03-10T11:00:00-05:00[America/Bogota]")
    );
    assert_eq!(
        plan.steps[1].fire_at,
        z("2026-03-10T18:00:00-05:00[America/Bogota]")
    );
    assert_eq!(plan.steps[1].status, PlannedStatus::Deferred);
    // Once b's time has passed, it supersedes a (a later index is never sent before an
    // earlier one), even though a's nominal time is still ahead.
    let now = ts("2026-03-10T17:00:00Z"); // 12:00 -05
    let plan = super::plan(&inv, &client(None), &p, now);
    use PlannedStatus::*;
    assert_eq!(statuses(&plan), vec![SkippedCatchUp, CatchUp]);
    assert_eq!(plan.next().unwrap().fire_at.timestamp(), now);
}

// ---------------------------------------------------------------- reminders

#[test]
fn reminder_for_builds_a_scheduled_reminder() {
    let p = five_step_policy();
    let inv = invoice(Due::Date(date(2026, 3, 10)), None);
    let c = client(None);
    let plan = plan(&inv, &c, &p, ts("2026-03-12T15:00:00Z"));
    let next = plan.next().unwrap();
    let r = reminder_for(&inv, &plan, next);
    assert_eq!(r.id, ReminderId::derive(&inv.id, 3, 2));
    assert_eq!((r.generation, r.step_index), (3, 2));
    assert_eq!(
        (r.step_name.as_str(), r.cadence.as_str()),
        ("late_1", "std")
    );
    assert_eq!(r.state, ReminderState::Scheduled);
    assert_eq!(
        (r.attempts, r.channel_index, r.last_error.clone()),
        (0, 0, None)
    );
    assert_eq!(r.planned_at, ts("2026-03-12T15:00:00Z"));
    assert_eq!(r.fire_at, r.planned_at);
    assert_eq!(r.invoice_id, inv.id);
    assert_eq!(r.client_id, c.id);
    // Planning again gives the same id: no duplicate reminder.
    let again = super::plan(&inv, &c, &p, ts("2026-03-12T16:00:00Z"));
    assert_eq!(reminder_for(&inv, &again, again.next().unwrap()).id, r.id);
}

// ---------------------------------------------------------------- properties

mod props {
    use super::*;
    use proptest::prelude::*;

    fn offset() -> impl Strategy<Value = Offset> {
        prop_oneof![
            (-15i32..=30).prop_map(Offset::Days),
            (-5000i64..=5000).prop_map(Offset::Minutes)
        ]
    }

    fn at() -> impl Strategy<Value = Option<Time>> {
        proptest::option::of((0i8..24, 0i8..60).prop_map(|(h, m)| time(h, m, 0, 0)))
    }

    fn window() -> impl Strategy<Value = ContactWindow> {
        (1u8..128, 0i8..23, 0i8..60, 1i8..=24).prop_map(|(mask, sh, sm, len)| {
            let mut days = [false; 7];
            for (i, d) in days.iter_mut().enumerate() {
                *d = mask & (1 << i) != 0;
            }
            let start = time(sh, sm, 0, 0);
            let end_h = sh + len;
            let end = if end_h >= 24 {
                Time::MAX
            } else {
                time(end_h, sm, 0, 0)
            };
            ContactWindow { days, start, end }
        })
    }

    fn due() -> impl Strategy<Value = Due> {
        // 2025-09-01 .. 2027-06-01 or so, covering both hemispheres' transitions.
        prop_oneof![
            (0i32..640).prop_map(|d| Due::Date(date(2025, 9, 1) + jiff::Span::new().days(d))),
            (0i64..640 * 86_400)
                .prop_map(|s| Due::Instant(Timestamp::from_second(1_756_684_800 + s).unwrap())),
        ]
    }

    fn zone() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            BOG,
            NY,
            SCL,
            "UTC",
            "Europe/London",
            "Australia/Lord_Howe",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn plan_invariants(
            zone in zone(),
            due in due(),
            mut steps in proptest::collection::vec((offset(), at()), 0..7),
            window in window(),
            now_s in -60i64 * 86_400..700 * 86_400,
            cursor in proptest::option::of(0u32..8),
        ) {
            steps.sort_by_key(|(o, _)| o.approx_minutes());
            let steps: Vec<Step> = steps
                .into_iter()
                .enumerate()
                .map(|(i, (o, a))| step(&format!("s{i}"), o, a))
                .collect();
            let n = steps.len();
            let p = policy(zone, steps, window.clone());
            let now = Timestamp::from_second(1_756_684_800 + now_s).unwrap();
            let inv = invoice(due, cursor);
            let plan = plan(&inv, &client(None), &p, now);

            prop_assert_eq!(plan.steps.len(), n);
            let mut prev: Option<Timestamp> = None;
            let mut catch_ups = 0;
            let mut last_skipped: Option<u32> = None;
            for (i, s) in plan.steps.iter().enumerate() {
                prop_assert_eq!(s.index as usize, i, "indexes are the cadence positions, once each");
                prop_assert_eq!(s.fire_at.time_zone(), &tz(zone));
                let done = cursor.is_some_and(|c| s.index <= c);
                prop_assert_eq!(done, s.status == PlannedStatus::Done);
                match s.status {
                    PlannedStatus::Done => {}
                    PlannedStatus::SkippedCatchUp => {
                        prop_assert!(catch_ups == 0, "skipped after the catch-up step");
                        last_skipped = Some(s.index);
                    }
                    status => {
                        prop_assert!(s.fire_at.timestamp() >= now, "fires in the past: {:?}", s);
                        prop_assert!(is_allowed(&s.fire_at, &window), "outside window: {:?}", s);
                        if let Some(p) = prev {
                            prop_assert!(s.fire_at.timestamp() >= p, "order: {:?}", s);
                        }
                        prev = Some(s.fire_at.timestamp());
                        match status {
                            PlannedStatus::CatchUp => {
                                catch_ups += 1;
                                prop_assert!(s.nominal.timestamp() <= now);
                                prop_assert_eq!(s.fire_at.timestamp(), next_allowed(now.to_zoned(tz(zone)), &window).timestamp());
                            }
                            PlannedStatus::Scheduled => {
                                prop_assert!(s.nominal.timestamp() > now);
                                prop_assert_eq!(&s.fire_at, &s.nominal);
                            }
                            _ => {
                                prop_assert!(s.nominal.timestamp() > now);
                                prop_assert!(s.fire_at.timestamp() > s.nominal.timestamp());
                            }
                        }
                    }
                }
            }
            prop_assert!(catch_ups <= 1);
            if last_skipped.is_some() {
                prop_assert_eq!(catch_ups, 1, "skipped steps imply a catch-up step");
            }
            // next() is the first pending step; skipped() exactly the superseded ones.
            let first_pending = plan.steps.iter().find(|s| s.status.is_pending()).map(|s| s.index);
            prop_assert_eq!(plan.next().map(|s| s.index), first_pending);
            prop_assert!(plan.skipped().all(|s| !s.status.is_pending()));
        }

        #[test]
        fn next_allowed_is_the_earliest_allowed_instant(
            zone in zone(),
            window in window(),
            secs in 0i64..640 * 86_400,
        ) {
            let t = Timestamp::from_second(1_756_684_800 + secs).unwrap().to_zoned(tz(zone));
            let got = next_allowed(t.clone(), &window);
            prop_assert!(got.timestamp() >= t.timestamp());
            prop_assert!(is_allowed(&got, &window), "{} -> {}", t, got);
            if is_allowed(&t, &window) {
                prop_assert_eq!(&got, &t);
            } else {
                // Nothing allowed in between: probe every 15 minutes.
                let mut probe = t.clone();
                while probe.timestamp() + jiff::SignedDuration::from_mins(15) < got.timestamp() {
                    probe = probe.checked_add(jiff::SignedDuration::from_mins(15)).unwrap();
                    prop_assert!(!is_allowed(&probe, &window), "{} allowed before {}", probe, got);
                }
            }
        }
    }
}
