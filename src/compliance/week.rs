//! A week of contact hours: for each weekday, the local time intervals during which a debtor
//! may be contacted. One policy window, a preset's several windows (Colombia: Mon–Fri 07–19
//! and Saturday 08–15) and their intersection are all a [`WeekSchedule`].

use std::fmt::Write as _;

use jiff::civil::{Time, Weekday};

use crate::policy::ContactWindow;

/// Day names used in messages, Monday first.
const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Local contact hours per weekday. Each day holds sorted, disjoint, non-empty intervals
/// `[start, end)`; an end of [`Time::MAX`] means the end of the day. A day with no interval is
/// closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekSchedule {
    days: [Vec<(Time, Time)>; 7],
}

/// Monday = 0 .. Sunday = 6.
fn index(day: Weekday) -> usize {
    usize::from(day.to_monday_zero_offset().unsigned_abs())
}

impl WeekSchedule {
    /// Every day, all day.
    pub fn always() -> WeekSchedule {
        WeekSchedule {
            days: std::array::from_fn(|_| vec![(Time::MIN, Time::MAX)]),
        }
    }

    /// No day open.
    pub fn never() -> WeekSchedule {
        WeekSchedule {
            days: std::array::from_fn(|_| Vec::new()),
        }
    }

    /// The hours of one policy window: `[start, end)` on each of its days.
    pub fn from_window(w: &ContactWindow) -> WeekSchedule {
        let mut s = WeekSchedule::never();
        for (i, open) in w.days.iter().enumerate() {
            if *open && w.start < w.end {
                s.days[i].push((w.start, w.end));
            }
        }
        s
    }

    /// The hours any of `windows` allows (a preset's windows, one per set of days).
    pub fn union_of(windows: &[ContactWindow]) -> WeekSchedule {
        let mut s = WeekSchedule::never();
        for w in windows {
            for (i, open) in w.days.iter().enumerate() {
                if *open && w.start < w.end {
                    s.days[i].push((w.start, w.end));
                }
            }
        }
        for day in &mut s.days {
            normalize(day);
        }
        s
    }

    /// The hours both `self` and `other` allow.
    pub fn intersect(&self, other: &WeekSchedule) -> WeekSchedule {
        WeekSchedule {
            days: std::array::from_fn(|i| {
                let mut out = Vec::new();
                for &(a0, a1) in &self.days[i] {
                    for &(b0, b1) in &other.days[i] {
                        let (s, e) = (a0.max(b0), a1.min(b1));
                        if s < e {
                            out.push((s, e));
                        }
                    }
                }
                normalize(&mut out);
                out
            }),
        }
    }

    /// The open intervals of `day`, earliest first.
    pub fn intervals(&self, day: Weekday) -> &[(Time, Time)] {
        &self.days[index(day)]
    }

    /// Whether local time `t` on `day` is inside the hours.
    pub fn allows(&self, day: Weekday, t: Time) -> bool {
        self.intervals(day).iter().any(|&(s, e)| t >= s && t < e)
    }

    /// Whether no day is ever open.
    pub fn is_never(&self) -> bool {
        self.days.iter().all(Vec::is_empty)
    }

    /// The hours of `self` outside `blocked` (a debtor's inconvenient times taken out).
    pub fn without(&self, blocked: &WeekSchedule) -> WeekSchedule {
        WeekSchedule {
            days: std::array::from_fn(|i| {
                let mut out = Vec::new();
                for &(s, e) in &self.days[i] {
                    let mut pieces = vec![(s, e)];
                    for &(b0, b1) in &blocked.days[i] {
                        pieces = pieces
                            .into_iter()
                            .flat_map(|(p0, p1)| {
                                let mut keep = Vec::new();
                                if b1 <= p0 || b0 >= p1 {
                                    keep.push((p0, p1));
                                } else {
                                    if p0 < b0 {
                                        keep.push((p0, b0));
                                    }
                                    if b1 < p1 {
                                        keep.push((b1, p1));
                                    }
                                }
                                keep
                            })
                            .collect();
                    }
                    out.extend(pieces);
                }
                normalize(&mut out);
                out
            }),
        }
    }

    /// Whether every hour `self` allows, `other` allows too.
    pub fn within(&self, other: &WeekSchedule) -> bool {
        self.intersect(other) == *self
    }

    /// The weekdays on which `self` allows some time `other` does not, Monday first.
    pub fn exceeding(&self, other: &WeekSchedule) -> Vec<Weekday> {
        let both = self.intersect(other);
        (0..7)
            .filter(|&i| both.days[i] != self.days[i])
            .filter_map(weekday)
            .collect()
    }

    /// One day's hours for messages: `"Sat 08:00–15:00"`, `"Sun closed"`.
    pub fn describe_day(&self, day: Weekday) -> String {
        let i = index(day);
        let mut s = DAY_NAMES[i].to_owned();
        if self.days[i].is_empty() {
            s.push_str(" closed");
            return s;
        }
        for (n, &(a, b)) in self.days[i].iter().enumerate() {
            let sep = if n == 0 { " " } else { ", " };
            let _ = write!(s, "{sep}{}–{}", hhmm(a), hhmm(b));
        }
        s
    }

    /// The whole week for messages, days with the same hours grouped:
    /// `"Mon–Fri 07:00–19:00; Sat 08:00–15:00; Sun closed"`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < 7 {
            let mut j = i;
            while j + 1 < 7 && self.days[j + 1] == self.days[i] {
                j += 1;
            }
            let hours = self.describe_day(weekday(i).unwrap_or(Weekday::Monday));
            let hours = hours.split_once(' ').map_or("", |(_, h)| h).to_owned();
            let days = if i == j {
                DAY_NAMES[i].to_owned()
            } else {
                format!("{}–{}", DAY_NAMES[i], DAY_NAMES[j])
            };
            parts.push(format!("{days} {hours}"));
            i = j + 1;
        }
        parts.join("; ")
    }
}

/// Parses a set of days as the policy writes them: `"mon-fri"`, `"daily"`, `"sat"` or a list
/// `"mon,wed,fri"` (Monday first in the result).
pub fn parse_days(s: &str) -> Option<[bool; 7]> {
    let day = |d: &str| {
        DAY_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(d.trim()))
    };
    let s = s.trim();
    let mut set = [false; 7];
    if s.eq_ignore_ascii_case("daily") {
        return Some([true; 7]);
    }
    if let Some((a, b)) = s.split_once('-') {
        let (a, b) = (day(a)?, day(b)?);
        if a > b {
            return None;
        }
        set[a..=b].iter_mut().for_each(|d| *d = true);
        return Some(set);
    }
    for d in s.split(',') {
        set[day(d)?] = true;
    }
    Some(set)
}

/// Parses `"HH:MM"` (24-hour), with `"24:00"` as the end of the day.
pub fn parse_hhmm(s: &str) -> Option<Time> {
    let s = s.trim();
    if s == "24:00" {
        return Some(Time::MAX);
    }
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
}

/// `HH:MM`, with [`Time::MAX`] shown as `24:00`.
fn hhmm(t: Time) -> String {
    if t == Time::MAX {
        "24:00".to_owned()
    } else {
        format!("{:02}:{:02}", t.hour(), t.minute())
    }
}

/// The weekday at Monday-zero index `i`.
fn weekday(i: usize) -> Option<Weekday> {
    Some(Weekday::Monday.wrapping_add(i8::try_from(i).ok()?))
}

/// Sorts `day` and merges overlapping or touching intervals.
fn normalize(day: &mut Vec<(Time, Time)>) {
    day.retain(|(s, e)| s < e);
    day.sort();
    let mut merged: Vec<(Time, Time)> = Vec::with_capacity(day.len());
    for &(s, e) in day.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *day = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::time;

    fn window(days: [bool; 7], start: (i8, i8), end: (i8, i8)) -> ContactWindow {
        let t = |(h, m): (i8, i8)| {
            if h == 24 { Time::MAX } else { time(h, m, 0, 0) }
        };
        ContactWindow {
            days,
            start: t(start),
            end: t(end),
        }
    }

    const MON_FRI: [bool; 7] = [true, true, true, true, true, false, false];
    const SAT: [bool; 7] = [false, false, false, false, false, true, false];
    const MON_SAT: [bool; 7] = [true, true, true, true, true, true, false];

    fn colombia() -> WeekSchedule {
        WeekSchedule::union_of(&[
            window(MON_FRI, (7, 0), (19, 0)),
            window(SAT, (8, 0), (15, 0)),
        ])
    }

    #[test]
    fn a_preset_of_two_windows_is_their_union() {
        let co = colombia();
        assert_eq!(
            co.describe(),
            "Mon–Fri 07:00–19:00; Sat 08:00–15:00; Sun closed"
        );
        assert!(co.allows(Weekday::Saturday, time(14, 59, 0, 0)));
        assert!(!co.allows(Weekday::Saturday, time(15, 0, 0, 0)));
        assert!(!co.allows(Weekday::Sunday, time(10, 0, 0, 0)));
        assert!(co.allows(Weekday::Monday, time(7, 0, 0, 0)));
        assert!(!co.allows(Weekday::Monday, time(19, 0, 0, 0)));
    }

    #[test]
    fn intersection_keeps_only_hours_both_allow() {
        // The shipped late_payers window (Mon–Sat 08–18) under Colombia's law.
        let late = WeekSchedule::from_window(&window(MON_SAT, (8, 0), (18, 0)));
        let both = late.intersect(&colombia());
        assert_eq!(
            both.describe(),
            "Mon–Fri 08:00–18:00; Sat 08:00–15:00; Sun closed"
        );
        assert!(!late.within(&colombia()));
        assert_eq!(late.exceeding(&colombia()), vec![Weekday::Saturday]);
        assert!(both.within(&colombia()));
        assert!(both.exceeding(&colombia()).is_empty());
        // Disjoint hours leave the day closed; the week is never open when nothing overlaps.
        let night = WeekSchedule::from_window(&window([true; 7], (20, 0), (22, 0)));
        assert!(night.intersect(&colombia()).is_never());
        assert_eq!(WeekSchedule::always().intersect(&colombia()), colombia());
    }

    #[test]
    fn blocked_times_are_taken_out() {
        let office = WeekSchedule::from_window(&window(MON_FRI, (8, 0), (19, 0)));
        let lunch = WeekSchedule::from_window(&window(MON_FRI, (12, 0), (14, 0)));
        let evenings = WeekSchedule::from_window(&window([true; 7], (18, 0), (24, 0)));
        let left = office.without(&lunch).without(&evenings);
        assert_eq!(
            left.describe(),
            "Mon–Fri 08:00–12:00, 14:00–18:00; Sat–Sun closed"
        );
        assert_eq!(
            WeekSchedule::always().without(&WeekSchedule::always()),
            WeekSchedule::never()
        );
        assert_eq!(parse_days("mon-fri"), Some(MON_FRI));
        assert_eq!(parse_days("Sat"), Some(SAT));
        assert_eq!(
            parse_days("mon,wed"),
            Some([true, false, true, false, false, false, false])
        );
        assert_eq!(parse_days("fri-mon"), None);
        assert_eq!(parse_days("lunes"), None);
        assert_eq!(parse_hhmm("07:30"), Some(time(7, 30, 0, 0)));
        assert_eq!(parse_hhmm("24:00"), Some(Time::MAX));
        assert_eq!(parse_hhmm("7:30"), None);
        assert_eq!(parse_hhmm("25:00"), None);
    }

    #[test]
    fn overlapping_windows_merge() {
        let s = WeekSchedule::union_of(&[
            window(MON_FRI, (8, 0), (12, 0)),
            window(MON_FRI, (11, 0), (14, 0)),
            window(MON_FRI, (14, 0), (16, 0)),
            window(MON_FRI, (18, 0), (24, 0)),
        ]);
        assert_eq!(
            s.describe_day(Weekday::Tuesday),
            "Tue 08:00–16:00, 18:00–24:00"
        );
        assert!(s.allows(Weekday::Tuesday, time(23, 59, 59, 0)));
        assert!(!s.allows(Weekday::Tuesday, time(17, 0, 0, 0)));
    }
}
