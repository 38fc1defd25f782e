//! The contact rules that hold for one client: the intersection of the policy's window, the
//! segment's and every preset that applies (by the client's country and subdivision, or named
//! in the policy), the client's public holidays, and the presets' caps. The planner, the
//! dispatcher and call tasks all ask [`ContactRules`] when a debtor may be contacted.

use std::sync::Arc;

use jiff::Zoned;
use jiff::civil::Date;

use super::holidays::HolidayCalendar;
use super::preset::{Cap, Preset};
use super::week::WeekSchedule;
use crate::domain::Client;
use crate::policy::{Policy, Segment};
use crate::schedule::window::start_of_window;

/// How many days ahead [`ContactRules::next_allowed`] looks for an opening: a year and a
/// month, so a week open one day only, with that day a holiday for weeks, still finds one.
const SEARCH_DAYS: i32 = 400;

/// Whether presets apply to clients by their country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Apply {
    /// Only the presets `always` names.
    #[default]
    Off,
    /// Every preset whose country (and subdivisions) match the client's, plus `always`.
    ByCountry,
}

/// `[compliance]` as checked: which presets exist and when they apply.
#[derive(Debug, Clone)]
pub struct Compliance {
    /// Whether presets apply by country.
    pub apply: Apply,
    /// Presets applied to every client, whatever its country.
    pub always: Vec<String>,
    /// Country assumed for a client that has none (upper case).
    pub default_country: Option<String>,
    /// Every preset by name: the built-in ones, replaced or joined by the policy's own.
    pub presets: std::collections::BTreeMap<String, Preset>,
    /// Public holidays (the built-in calendar with the operator's overrides).
    pub calendar: Arc<HolidayCalendar>,
}

impl Default for Compliance {
    fn default() -> Self {
        Compliance {
            apply: Apply::Off,
            always: Vec::new(),
            default_country: None,
            presets: Default::default(),
            calendar: Arc::new(HolidayCalendar::shipped().clone()),
        }
    }
}

impl Compliance {
    /// The presets that apply to a client of `country` (and `subdivision`), in name order.
    pub fn presets_for(&self, country: Option<&str>, subdivision: Option<&str>) -> Vec<&Preset> {
        let country = country.or(self.default_country.as_deref());
        self.presets
            .values()
            .filter(|p| {
                self.always.contains(&p.name)
                    || (self.apply == Apply::ByCountry
                        && country.is_some_and(|c| p.matches(c, subdivision)))
            })
            .collect()
    }
}

/// A client's country (upper case), or the policy's default country.
pub fn client_country(policy: &Policy, client: &Client) -> Option<String> {
    client
        .country
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_ascii_uppercase)
        .or_else(|| policy.compliance.default_country.clone())
}

/// A client's subdivision as presets and calendars name it: upper case, without its country
/// prefix (`"br-sp"` → `"SP"`).
pub fn client_subdivision(client: &Client) -> Option<String> {
    let s = client.subdivision.as_deref()?.trim().to_ascii_uppercase();
    let s = match s.split_once('-') {
        Some((_, rest)) => rest.to_owned(),
        None => s,
    };
    (!s.is_empty()).then_some(s)
}

/// A lateness as written in the policy: `"1d"`, `"12h"`, `"90m"`.
pub fn show_lateness(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs();
    if secs % 86_400 == 0 {
        format!("{}d", secs / 86_400)
    } else if secs % 3_600 == 0 {
        format!("{}h", secs / 3_600)
    } else {
        format!("{}m", secs / 60)
    }
}

/// The layer name of a debtor's own blocked times.
const BLOCKED: &str = "blocked";

/// The times `client` asked not to be contacted, as one schedule (entries that do not parse,
/// which the API refuses, are left out).
fn blocked_schedule(client: &Client) -> Option<WeekSchedule> {
    use super::week::{parse_days, parse_hhmm};
    if client.blocked_times.is_empty() {
        return None;
    }
    let windows: Vec<crate::policy::ContactWindow> = client
        .blocked_times
        .iter()
        .filter_map(|b| {
            Some(crate::policy::ContactWindow {
                days: parse_days(&b.days)?,
                start: parse_hhmm(&b.from)?,
                end: parse_hhmm(&b.to)?,
            })
        })
        .collect();
    Some(WeekSchedule::union_of(&windows))
}

/// `t` as the debtor reads it: `"2026-12-07 07:00 America/Bogota"`.
pub fn local_time(t: &Zoned) -> String {
    let zone = t.time_zone().iana_name().unwrap_or("UTC");
    format!("{} {zone}", t.strftime("%Y-%m-%d %H:%M"))
}

/// Where a client's holidays come from, and the preset that closes them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HolidayRule {
    country: String,
    subdivision: Option<String>,
    preset: String,
}

/// The rules for one client under one segment.
#[derive(Debug, Clone)]
pub struct ContactRules {
    /// Each source of hours and its hours: `"window"`, `"segment late_payers"`, a preset's
    /// name.
    layers: Vec<(String, WeekSchedule)>,
    /// Their intersection: the hours actually allowed.
    week: WeekSchedule,
    holidays: Vec<HolidayRule>,
    /// Each cap, with the preset it comes from.
    caps: Vec<(String, Cap)>,
    /// The presets applied, by name.
    presets: Vec<String>,
    calendar: Arc<HolidayCalendar>,
}

/// Why an instant is closed to contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A public holiday (with the preset that excludes holidays).
    Holiday {
        /// The holiday's name.
        name: String,
        /// The preset that excludes holidays.
        preset: String,
    },
    /// Outside the hours of one layer (the policy window, the segment's, a preset's).
    Hours {
        /// The layer: `window`, `segment NAME` or a preset's name.
        source: String,
        /// Its hours that day, like `"Sat 08:00–15:00"`.
        hours: String,
    },
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closed::Holiday { name, preset } => {
                write!(f, "{preset} excludes public holidays ({name})")
            }
            Closed::Hours { source, hours } if source == "window" => {
                write!(f, "outside the contact window ({hours})")
            }
            Closed::Hours { source, hours } if source == BLOCKED => {
                write!(
                    f,
                    "the debtor asked not to be contacted then (allowed: {hours})"
                )
            }
            Closed::Hours { source, hours } => write!(f, "outside {source}'s hours ({hours})"),
        }
    }
}

impl ContactRules {
    /// The rules for `client` chased under `segment`: the segment's window (else the policy's)
    /// intersected with every preset that applies to the client.
    pub fn for_client(policy: &Policy, client: &Client, segment: &Segment) -> ContactRules {
        let (label, window) = match &segment.window {
            Some(w) => (format!("segment {}", segment.name), w),
            None => ("window".to_owned(), &policy.defaults.window),
        };
        let mut layers = vec![(label, WeekSchedule::from_window(window))];
        if let Some(blocked) = blocked_schedule(client) {
            layers.push((BLOCKED.to_owned(), WeekSchedule::always().without(&blocked)));
        }
        let country = client_country(policy, client);
        let subdivision = client_subdivision(client);
        let mut holidays: Vec<HolidayRule> = Vec::new();
        let mut caps = Vec::new();
        let mut presets = Vec::new();
        for p in policy
            .compliance
            .presets_for(country.as_deref(), subdivision.as_deref())
        {
            presets.push(p.name.clone());
            if p.week != WeekSchedule::always() {
                layers.push((p.name.clone(), p.week.clone()));
            }
            // A preset closes its own country's holidays (and the client's subdivision's, when
            // the client lives there).
            if p.exclude_holidays && !holidays.iter().any(|h| h.country == p.country) {
                let local = country.as_deref() == Some(p.country.as_str());
                holidays.push(HolidayRule {
                    country: p.country.clone(),
                    subdivision: subdivision.clone().filter(|_| local),
                    preset: p.name.clone(),
                });
            }
            caps.extend(p.caps.iter().map(|c| (p.name.clone(), c.clone())));
        }
        let week = match layers.split_first() {
            Some(((_, first), rest)) => rest
                .iter()
                .fold(first.clone(), |acc, (_, w)| acc.intersect(w)),
            None => WeekSchedule::always(),
        };
        ContactRules {
            layers,
            week,
            holidays,
            caps,
            presets,
            calendar: policy.compliance.calendar.clone(),
        }
    }

    /// The hours allowed (every layer intersected).
    pub fn week(&self) -> &WeekSchedule {
        &self.week
    }

    /// The presets applied, by name.
    pub fn presets(&self) -> &[String] {
        &self.presets
    }

    /// The caps that hold, each with its preset's name.
    pub fn caps(&self) -> &[(String, Cap)] {
        &self.caps
    }

    /// The name of the holiday on local `date`, when holidays are closed and it is one.
    pub fn holiday(&self, date: Date) -> Option<(String, &str)> {
        self.holidays.iter().find_map(|h| {
            let sub = h.subdivision.as_deref();
            self.calendar.is_holiday(&h.country, sub, date).then(|| {
                let name = self
                    .calendar
                    .name(&h.country, sub, date)
                    .unwrap_or("public holiday")
                    .to_owned();
                (name, h.preset.as_str())
            })
        })
    }

    /// Why `t` is closed to contact, or `None` when a contact may go out at `t`.
    pub fn closed(&self, t: &Zoned) -> Option<Closed> {
        if let Some((name, preset)) = self.holiday(t.date()) {
            return Some(Closed::Holiday {
                name,
                preset: preset.to_owned(),
            });
        }
        let (day, time) = (t.weekday(), t.time());
        self.layers
            .iter()
            .find(|(_, w)| !w.allows(day, time))
            .map(|(source, w)| Closed::Hours {
                source: source.clone(),
                hours: w.describe_day(day),
            })
    }

    /// Whether a contact may go out at `t`.
    pub fn is_allowed(&self, t: &Zoned) -> bool {
        self.closed(t).is_none()
    }

    /// The earliest instant at or after `t` (in `t`'s zone) when a contact may go out: `t`
    /// itself when allowed, else the next opening of the allowed hours on a day that is not a
    /// closed holiday. DST-safe as [`crate::schedule::window::next_allowed`]. When the hours
    /// never open (policy validation rejects such a policy) `t` comes back unchanged.
    pub fn next_allowed(&self, t: Zoned) -> Zoned {
        if self.is_allowed(&t) || self.week.is_never() {
            return t;
        }
        let tz = t.time_zone().clone();
        let today = t.date();
        for ahead in 0..=SEARCH_DAYS {
            let Ok(day) = today.checked_add(jiff::Span::new().days(ahead)) else {
                break;
            };
            if self.holiday(day).is_some() {
                continue;
            }
            for &(start, _) in self.week.intervals(day.weekday()) {
                if let Some(slot) = start_of_window(day, start, &tz, &t) {
                    if slot.date() == day && self.is_allowed(&slot) {
                        return slot;
                    }
                }
            }
        }
        t
    }
}

#[cfg(test)]
mod tests;
