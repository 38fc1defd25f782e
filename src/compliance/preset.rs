//! Presets: one jurisdiction's contact rules as data (hours, holidays, caps), built in from
//! `config/compliance/presets.toml` or written in the policy under `[compliance.presets.*]`.

use super::week::WeekSchedule;

/// The built-in presets' source text (`config/compliance/presets.toml`).
pub const SHIPPED_PRESETS: &str = include_str!("../../config/compliance/presets.toml");

/// One jurisdiction's contact rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// Its name (`co_ley_2300`), used in timeline lines and `plazo check`.
    pub name: String,
    /// ISO 3166-1 alpha-2 code of the clients it applies to (upper case).
    pub country: String,
    /// When not empty, only clients in one of these subdivisions (ISO 3166-2 suffixes, upper
    /// case: `SP`).
    pub subdivisions: Vec<String>,
    /// A title for people (`"Colombia, Ley 2300 de 2023"`).
    pub title: String,
    /// Local hours it allows ([`WeekSchedule::always`] when it sets none).
    pub week: WeekSchedule,
    /// Whether the client's public holidays are closed days.
    pub exclude_holidays: bool,
    /// Its contact limits.
    pub caps: Vec<Cap>,
    /// Where the rule comes from.
    pub source: String,
    /// How sure the reading is (`primary`, `secondary`, `unverified`).
    pub confidence: String,
}

impl Preset {
    /// Whether it applies to a client of `country` (and `subdivision`), both upper case.
    pub fn matches(&self, country: &str, subdivision: Option<&str>) -> bool {
        self.country == country
            && (self.subdivisions.is_empty()
                || subdivision.is_some_and(|s| self.subdivisions.iter().any(|x| x == s)))
    }
}

/// What a cap counts contacts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every invoice of the client (the conservative reading where the law is unclear).
    Person,
    /// One invoice (Regulation F counts calls per debt).
    Debt,
}

/// The period a cap counts over, in the client's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The local calendar day.
    Day,
    /// The 7 × 24 hours before the contact.
    Rolling7d,
    /// The local calendar week, Monday to Sunday.
    CalendarWeek,
}

impl Period {
    /// Its name as written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Rolling7d => "rolling_7d",
            Period::CalendarWeek => "calendar_week",
        }
    }
}

/// What a cap limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many contacts in the period.
    Max(u32),
    /// At least this many days between two contacts.
    MinGapDays(u32),
    /// Once a contact was effective in the period, at most this many distinct channels in it.
    DistinctChannels(u32),
}

/// Which contacts a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Every message sent and every call made.
    Attempt,
    /// Messages delivered (a delivery receipt), replies from the debtor and calls that
    /// reached them.
    Effective,
}

/// One contact limit of a preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    /// The channel kinds it counts and limits (`None`: all, call tasks included).
    pub channels: Option<Vec<String>>,
    /// Per client or per invoice.
    pub scope: Scope,
    /// The period it counts over.
    pub per: Period,
    /// The limit.
    pub limit: Limit,
    /// Which contacts count.
    pub count: Count,
}

impl Cap {
    /// Whether it counts and limits channel `kind` (`call` for call tasks).
    pub fn covers(&self, kind: &str) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| c == kind))
    }

    /// The rule in words, for timeline lines: `"1 contact a day"`, `"2 sms, email contacts in 7
    /// days"`, `"2 days between contacts"`.
    pub fn describe(&self) -> String {
        let what = match &self.channels {
            None => "contact".to_owned(),
            Some(list) => format!("{} contact", list.join("/")),
        };
        let period = match self.per {
            Period::Day => "a day",
            Period::Rolling7d => "in 7 days",
            Period::CalendarWeek => "a week",
        };
        let scope = match self.scope {
            Scope::Person => "",
            Scope::Debt => " per invoice",
        };
        match self.limit {
            Limit::Max(n) => {
                let s = if n == 1 { "" } else { "s" };
                format!("{n} {what}{s} {period}{scope}")
            }
            Limit::MinGapDays(n) => format!("{n} days between {what}s{scope}"),
            Limit::DistinctChannels(n) => {
                let s = if n == 1 { "" } else { "s" };
                format!("{n} channel{s} {period} once a contact got through{scope}")
            }
        }
    }
}
