//! Contact windows: the days and local hours during which a debtor may be contacted.
//!
//! Pure calendar math with jiff in the instant's own time zone, so it is DST-safe: a window
//! that opens at 08:00 opens at 08:00 local on both sides of a transition, and a local start
//! time that does not exist on a given day (spring-forward gap) moves forward to the first
//! instant after the gap.

use jiff::Zoned;
use jiff::civil::{Date, Time};
use jiff::tz::{Disambiguation, TimeZone};

use crate::policy::ContactWindow;

/// How many days ahead [`next_allowed`] looks for an open slot. A week covers every allowed
/// weekday; two weeks and a day still find a slot when the only allowed day of a week is
/// swallowed by a DST gap.
const SEARCH_DAYS: i16 = 15;

/// Whether `t` falls inside `w`: its local weekday is allowed and its local time of day is in
/// `[w.start, w.end)`.
pub fn is_allowed(t: &Zoned, w: &ContactWindow) -> bool {
    let time = t.time();
    w.allows_day(t.weekday()) && time >= w.start && time < w.end
}

/// The earliest instant at or after `t` that lies inside `w`, in `t`'s time zone.
///
/// - `t` itself when [`is_allowed`].
/// - Otherwise the window's start on the same local day when that day is allowed and `t` is
///   before the start, else the start on the next allowed day.
/// - A start that falls in a DST gap opens the window when the clock resumes (the transition
///   instant); a start that is ambiguous (DST fold) takes the first occurrence still at or
///   after `t`.
///
/// A window that can never be satisfied (no allowed day, or `start >= end`) leaves `t`
/// unchanged; policy validation rejects such windows, so this is a guard, not a feature.
pub fn next_allowed(t: Zoned, w: &ContactWindow) -> Zoned {
    if is_allowed(&t, w) {
        return t;
    }
    if w.start >= w.end || !w.days.iter().any(|&d| d) {
        return t;
    }
    let tz = t.time_zone().clone();
    let today = t.date();
    for ahead in 0..=SEARCH_DAYS {
        let Ok(day) = today.checked_add(jiff::Span::new().days(ahead)) else {
            break;
        };
        if !w.allows_day(day.weekday()) {
            continue;
        }
        if let Some(slot) = start_of_window(day, w.start, &tz, &t) {
            if is_allowed(&slot, w) {
                return slot;
            }
        }
    }
    t
}

/// `day` at `start` in `tz`, as the earliest such instant not before `not_before`, if any.
///
/// When `start` falls in a DST gap on `day`, the window opens when the local clock resumes:
/// the transition instant (the first existing local time after `start`), not `start` shifted
/// by the gap's length, which may already be past the window's end.
pub(crate) fn start_of_window(
    day: Date,
    start: Time,
    tz: &TimeZone,
    not_before: &Zoned,
) -> Option<Zoned> {
    let local = day.to_datetime(start);
    let ambiguous = tz.to_ambiguous_zoned(local);
    if matches!(ambiguous.offset(), jiff::tz::AmbiguousOffset::Gap { .. }) {
        let shifted = ambiguous.compatible().ok()?;
        let opened = tz
            .preceding(shifted.timestamp())
            .next()
            .map(|t| t.timestamp().to_zoned(tz.clone()))
            .filter(|z| z.date() == day && z.time() >= start)
            .unwrap_or(shifted);
        return (opened.timestamp() >= not_before.timestamp()).then_some(opened);
    }
    // A fold takes the earlier occurrence, or the later one when the earlier has passed.
    for rule in [Disambiguation::Compatible, Disambiguation::Later] {
        let Ok(z) = tz.to_ambiguous_zoned(local).disambiguate(rule) else {
            continue;
        };
        if z.timestamp() >= not_before.timestamp() {
            return Some(z);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::time;

    fn weekdays(start: Time, end: Time) -> ContactWindow {
        ContactWindow {
            days: [true, true, true, true, true, false, false],
            start,
            end,
        }
    }

    fn z(s: &str) -> Zoned {
        s.parse().unwrap()
    }

    #[test]
    fn inside_window_is_unchanged() {
        let w = weekdays(time(8, 0, 0, 0), time(19, 0, 0, 0));
        // 2026-03-10 is a Tuesday.
        let t = z("2026-03-10T10:15:00-05:00[America/Bogota]");
        assert!(is_allowed(&t, &w));
        assert_eq!(next_allowed(t.clone(), &w), t);
        // Start is inclusive, end exclusive.
        assert!(is_allowed(
            &z("2026-03-10T08:00:00-05:00[America/Bogota]"),
            &w
        ));
        assert!(!is_allowed(
            &z("2026-03-10T19:00:00-05:00[America/Bogota]"),
            &w
        ));
    }

    #[test]
    fn before_start_moves_to_same_day_start() {
        let w = weekdays(time(8, 0, 0, 0), time(19, 0, 0, 0));
        let t = z("2026-03-10T06:59:00-05:00[America/Bogota]");
        assert_eq!(
            next_allowed(t, &w),
            z("2026-03-10T08:00:00-05:00[America/Bogota]")
        );
    }

    #[test]
    fn after_end_moves_to_next_morning() {
        let w = weekdays(time(8, 0, 0, 0), time(19, 0, 0, 0));
        let t = z("2026-03-10T21:00:00-05:00[America/Bogota]");
        assert_eq!(
            next_allowed(t, &w),
            z("2026-03-11T08:00:00-05:00[America/Bogota]")
        );
    }

    #[test]
    fn weekend_moves_to_monday() {
        let w = weekdays(time(8, 0, 0, 0), time(19, 0, 0, 0));
        // 2026-03-14 is a Saturday; Friday evening also rolls to Monday.
        let sat = z("2026-03-14T10:00:00-05:00[America/Bogota]");
        assert_eq!(sat.weekday(), jiff::civil::Weekday::Saturday);
        assert_eq!(
            next_allowed(sat, &w),
            z("2026-03-16T08:00:00-05:00[America/Bogota]")
        );
        let fri = z("2026-03-13T19:30:00-05:00[America/Bogota]");
        assert_eq!(
            next_allowed(fri, &w),
            z("2026-03-16T08:00:00-05:00[America/Bogota]")
        );
    }

    #[test]
    fn unsatisfiable_window_leaves_time_alone() {
        let mut w = weekdays(time(8, 0, 0, 0), time(19, 0, 0, 0));
        w.days = [false; 7];
        let t = z("2026-03-14T10:00:00-05:00[America/Bogota]");
        assert_eq!(next_allowed(t.clone(), &w), t);
        let w = weekdays(time(19, 0, 0, 0), time(8, 0, 0, 0));
        assert_eq!(next_allowed(t.clone(), &w), t);
    }

    #[test]
    fn window_start_in_dst_gap_moves_forward() {
        // America/New_York springs forward 2026-03-08 02:00 -> 03:00 (a Sunday).
        let w = ContactWindow {
            days: [true; 7],
            start: time(2, 30, 0, 0),
            end: time(20, 0, 0, 0),
        };
        let t = z("2026-03-08T01:00:00-05:00[America/New_York]");
        // 02:30 does not exist that day; the window is open as soon as the clock resumes at
        // 03:00 (not at 03:30, the start shifted by the gap's length).
        let got = next_allowed(t, &w);
        assert_eq!(got, z("2026-03-08T03:00:00-04:00[America/New_York]"));
        assert_eq!(got.timestamp(), "2026-03-08T07:00:00Z".parse().unwrap());
        // Next day the window opens at 02:30 local again (EDT).
        let t = z("2026-03-08T21:00:00-04:00[America/New_York]");
        assert_eq!(
            next_allowed(t, &w),
            z("2026-03-09T02:30:00-04:00[America/New_York]")
        );
    }

    #[test]
    fn window_start_in_dst_fold_is_not_in_the_past() {
        // America/New_York falls back 2026-11-01 02:00 EDT -> 01:00 EST: 01:00-01:59 twice.
        let w = ContactWindow {
            days: [true; 7],
            start: time(1, 45, 0, 0),
            end: time(20, 0, 0, 0),
        };
        // First 01:30 (EDT): the first 01:45 (EDT) is ahead.
        let t = z("2026-11-01T01:30:00-04:00[America/New_York]");
        assert_eq!(
            next_allowed(t, &w),
            z("2026-11-01T01:45:00-04:00[America/New_York]")
        );
        // Second 01:30 (EST): the first 01:45 has passed; the second one is ahead.
        let t = z("2026-11-01T01:30:00-05:00[America/New_York]");
        assert_eq!(
            next_allowed(t, &w),
            z("2026-11-01T01:45:00-05:00[America/New_York]")
        );
    }

    #[test]
    fn day_whose_window_is_swallowed_by_gap_rolls_over() {
        // America/Santiago springs forward 2026-09-06 00:00 -> 01:00: a 00:00-00:30 window
        // has no instant that day.
        let w = ContactWindow {
            days: [true; 7],
            start: time(0, 0, 0, 0),
            end: time(0, 30, 0, 0),
        };
        let t = z("2026-09-05T23:00:00-04:00[America/Santiago]");
        assert_eq!(
            next_allowed(t, &w),
            z("2026-09-07T00:00:00-03:00[America/Santiago]")
        );
    }
}
