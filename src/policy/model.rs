//! Validated runtime form of the policy: what the planner, dispatcher and templates read.
//! Built from the TOML by [`super::load_policy`]; every value here has already been checked.

use std::collections::BTreeMap;

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;

use crate::domain::Currency;

/// The whole policy: defaults, company, segments and cadences.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Defaults used when a client does not say.
    pub defaults: Defaults,
    /// The creditor, as shown in messages.
    pub company: Company,
    /// Segments by name.
    pub segments: BTreeMap<String, Segment>,
    /// Segment used when a client names none (or an unknown one).
    pub default_segment: String,
    /// Cadences by name.
    pub cadences: BTreeMap<String, Cadence>,
}

/// Policy-wide defaults.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// IANA zone name, e.g. `America/Bogota`.
    pub timezone_name: String,
    /// The zone itself.
    pub timezone: TimeZone,
    /// Locale used when a client has none, and last template fallback, e.g. `es`.
    pub locale: String,
    /// Currency assumed when none is given.
    pub currency: Currency,
    /// Local time of day for steps without `at` on invoices due on a date.
    pub send_at: Time,
    /// Contact window applied unless a segment overrides it.
    pub window: ContactWindow,
}

/// The creditor's details available to templates as `company`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Company {
    /// Trading name.
    pub name: String,
    /// Contact email for replies.
    pub email: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// Website.
    pub website: Option<String>,
}

/// Days of the week and local hours during which a debtor may be contacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactWindow {
    /// Allowed days, indexed Monday = 0 .. Sunday = 6.
    pub days: [bool; 7],
    /// First allowed local time (inclusive).
    pub start: Time,
    /// Last allowed local time (exclusive).
    pub end: Time,
}

impl ContactWindow {
    /// Whether `day` is an allowed day.
    pub fn allows_day(&self, day: Weekday) -> bool {
        self.days[usize::from(day.to_monday_zero_offset().unsigned_abs())]
    }
}

/// A named group of clients sharing a cadence.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Segment name.
    pub name: String,
    /// Name of its cadence (checked to exist).
    pub cadence: String,
    /// Window overriding the default one, if set.
    pub window: Option<ContactWindow>,
}

/// An ordered list of reminder steps relative to the due date.
#[derive(Debug, Clone)]
pub struct Cadence {
    /// Cadence name.
    pub name: String,
    /// Steps in increasing offset order.
    pub steps: Vec<Step>,
}

/// Offset of a step from the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// Calendar days (`-3d`, `+1d`): keeps the local wall-clock time across DST changes.
    Days(i32),
    /// Exact minutes (`+2h` is 120, `-90m` is -90).
    Minutes(i64),
}

impl Offset {
    /// Approximate length in minutes, for ordering steps (a day counts as 1440 minutes).
    pub fn approx_minutes(self) -> i64 {
        match self {
            Offset::Days(d) => i64::from(d) * 1440,
            Offset::Minutes(m) => m,
        }
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Offset::Days(d) => write!(f, "{d:+}d"),
            Offset::Minutes(m) if m % 60 == 0 => write!(f, "{:+}h", m / 60),
            Offset::Minutes(m) => write!(f, "{m:+}m"),
        }
    }
}

/// Channel kinds a step may name.
pub const CHANNEL_KINDS: &[&str] = &["email", "sms", "whatsapp", "webhook"];

/// One reminder in a cadence.
#[derive(Debug, Clone)]
pub struct Step {
    /// Step name, unique in its cadence (`courtesy`, `due_today`, `final_notice`).
    pub name: String,
    /// Offset from the due date.
    pub offset: Offset,
    /// Local time of day, if fixed.
    pub at: Option<Time>,
    /// Channel kinds to try, in order (each one of [`CHANNEL_KINDS`]).
    pub channels: Vec<String>,
    /// Template name.
    pub template: String,
    /// Tone label (`friendly`, `firm`, `final`), available to templates.
    pub tone: String,
}
