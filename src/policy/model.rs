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
    /// Settings per channel kind (`sms`, `whatsapp`...); a kind not listed uses the defaults.
    pub channels: BTreeMap<String, ChannelSettings>,
    /// Keywords that opt a number out of (or back into) SMS or WhatsApp.
    pub opt_out: OptOutKeywords,
    /// Payment link, early-payment discount and late charges.
    pub terms: super::terms::PaymentTerms,
    /// Promises to pay and payment plans: their cadences, grace periods and limits.
    pub arrangements: ArrangementRules,
    /// How client facts are computed (`[facts]`).
    pub facts: FactsRules,
    /// The segments' `when` rules, compiled, in file order.
    pub rules: std::sync::Arc<super::rules::SegmentRules>,
    /// Partners invoices can be handed to, by key.
    pub partners: BTreeMap<String, Partner>,
    /// Days past due after which the daily pass writes an unpaid invoice off
    /// (`[write_off] after_days`); `None`: never by age.
    pub write_off_after_days: Option<u32>,
    /// Call tasks: priority, claim timeout, retries after no answer (`[tasks]`).
    pub tasks: super::tasks::TaskRules,
    /// Inbound replies that pause the chase or open a task (`[inbound]`).
    pub inbound: super::tasks::InboundRules,
    /// Contact rules by jurisdiction: presets, holidays, caps (`[compliance]`).
    pub compliance: crate::compliance::rules::Compliance,
}

/// `[facts]` of the policy, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactsRules {
    /// Averages and shares are over the last this many invoices paid in full (1..=100).
    pub last_paid: u32,
}

impl Default for FactsRules {
    fn default() -> Self {
        FactsRules {
            last_paid: crate::domain::DEFAULT_LAST_PAID,
        }
    }
}

/// `[promises]` and `[plans]` of the policy, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrangementRules {
    /// Cadence relative to the promised date; no reminders during a promise when `None`.
    pub promise_cadence: Option<String>,
    /// Grace after the promised date before the promise is broken.
    pub promise_grace: Offset,
    /// Cadence started when a promise or instalment breaks, relative to that moment.
    pub broken_cadence: Option<String>,
    /// Furthest promised date, in days from today.
    pub promise_max_days: u32,
    /// Cadence relative to each instalment's date; no instalment reminders when `None`.
    pub plan_cadence: Option<String>,
    /// Grace after each instalment's date before the plan is broken.
    pub plan_grace: Offset,
    /// Most instalments in a plan.
    pub plan_max_instalments: u32,
    /// Latest final instalment, in days from today.
    pub plan_max_days: u32,
}

impl Default for ArrangementRules {
    fn default() -> Self {
        ArrangementRules {
            promise_cadence: None,
            promise_grace: Offset::Days(1),
            broken_cadence: None,
            promise_max_days: 60,
            plan_cadence: None,
            plan_grace: Offset::Days(1),
            plan_max_instalments: 24,
            plan_max_days: 730,
        }
    }
}

/// `[channels.KIND]` of the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelSettings {
    /// How long to wait for a delivered receipt before trying the step's next channel; `None`:
    /// the step is done once the provider accepts the message.
    pub receipt_timeout: Option<jiff::SignedDuration>,
    /// `plazo check` warns when an SMS template renders to more segments than this.
    pub max_segments: u32,
}

/// Default of [`ChannelSettings::max_segments`].
pub const DEFAULT_MAX_SEGMENTS: u32 = 3;

/// Single-word replies that opt a number out of, or back into, the channel they came on.
/// Stored upper-case without accents; matching ignores case, accents and surrounding
/// punctuation, and only a message made of the keyword alone counts ("STOP PLEASE" does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOutKeywords {
    /// Opt-out words (`STOP`, `BAJA`, `PARAR`, `SAIR`...).
    pub stop: Vec<String>,
    /// Opt-back-in words (`START`, `UNSTOP`...).
    pub start: Vec<String>,
}

/// Default opt-out words: Twilio's (English) plus Spanish and Portuguese equivalents.
pub const DEFAULT_STOP_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "BAJA",
    "ALTO",
    "PARAR",
    "PARE",
    "CANCELAR",
    "DETENER",
    "SAIR",
];

/// Default opt-in words.
pub const DEFAULT_START_WORDS: &[&str] = &["START", "UNSTOP", "ALTA", "REANUDAR", "VOLTAR"];

/// Upper-cases `word` and strips accents and surrounding punctuation, for keyword matching.
pub fn fold_keyword(word: &str) -> String {
    word.trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' | 'Á' | 'À' | 'Â' | 'Ã' | 'Ä' => 'A',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'E',
            'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'I',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' | 'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' => 'O',
            'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'U',
            'ç' | 'Ç' => 'C',
            'ñ' | 'Ñ' => 'N',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// What an inbound message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordAction {
    /// Stop messages on this channel.
    OptOut,
    /// Resume messages on this channel.
    OptIn,
}

impl OptOutKeywords {
    /// The action a whole inbound message asks for, if it is a single keyword.
    pub fn classify(&self, body: &str) -> Option<KeywordAction> {
        let trimmed = body.trim();
        if trimmed.is_empty() || trimmed.split_whitespace().count() != 1 {
            return None;
        }
        let w = fold_keyword(trimmed);
        if self.stop.contains(&w) {
            Some(KeywordAction::OptOut)
        } else if self.start.contains(&w) {
            Some(KeywordAction::OptIn)
        } else {
            None
        }
    }
}

impl Default for OptOutKeywords {
    fn default() -> Self {
        OptOutKeywords {
            stop: DEFAULT_STOP_WORDS.iter().map(|w| (*w).to_owned()).collect(),
            start: DEFAULT_START_WORDS
                .iter()
                .map(|w| (*w).to_owned())
                .collect(),
        }
    }
}

/// The approved WhatsApp template a step sends outside the 24-hour window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppStep {
    /// Template name in WhatsApp Manager.
    pub template: String,
    /// Language code used when `languages` has no entry for the client's locale (`es`).
    pub language: String,
    /// Language code by client locale (lower-case, `es-mx` or `en`).
    pub languages: BTreeMap<String, String>,
    /// Body parameters in order (`{{1}}`, `{{2}}`...).
    pub body: Vec<TemplateParamSpec>,
    /// Text template for the URL button's dynamic suffix, if the template has one.
    pub button_url: Option<String>,
}

impl WhatsAppStep {
    /// The language code for a client `locale`: exact match, then its language, then
    /// `language`.
    pub fn language_for(&self, locale: &str) -> &str {
        let l = locale.to_ascii_lowercase().replace('_', "-");
        if let Some(code) = self.languages.get(&l) {
            return code;
        }
        let primary = l.split('-').next().unwrap_or("");
        self.languages
            .get(primary)
            .map_or(self.language.as_str(), String::as_str)
    }
}

/// How one WhatsApp template body parameter is filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateParamSpec {
    /// A text parameter from a template expression, e.g. `"{{ client.first_name }}"`.
    Text(String),
    /// A currency parameter from an invoice amount.
    Currency(AmountField),
    /// A date parameter.
    DateTime(DateField),
}

/// Which invoice amount a currency parameter shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountField {
    /// The amount still owed.
    Balance,
    /// The original amount.
    Amount,
    /// What is still owed on the promise or instalment the message is about (the balance in
    /// regular-cadence messages).
    Outstanding,
}

/// Which date a date parameter shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateField {
    /// The due date, in the client's time zone.
    DueDate,
    /// The promised or instalment date the message is about (the due date in
    /// regular-cadence messages).
    ArrangementDate,
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
    /// One message a day per client (`group = "client"`).
    pub group_by_client: bool,
}

/// An ordered list of reminder steps relative to the due date.
#[derive(Debug, Clone)]
pub struct Cadence {
    /// Cadence name.
    pub name: String,
    /// Steps in increasing offset order.
    pub steps: Vec<Step>,
    /// What happens once the last step has passed.
    pub on_exhausted: OnExhausted,
    /// One message a day per client (`group = "client"`).
    pub group_by_client: bool,
}

/// What a step does when its time comes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StepAction {
    /// Send the step's message.
    #[default]
    Remind,
    /// Hand the invoice to this partner (a key of [`Policy::partners`]).
    HandOff(String),
    /// Write the invoice off.
    WriteOff,
    /// Open a call task for a person (`action = "task"`, or `channels = ["call"]`).
    Task,
}

impl std::fmt::Display for StepAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepAction::Remind => f.write_str("remind"),
            StepAction::HandOff(p) => write!(f, "hand_off:{p}"),
            StepAction::WriteOff => f.write_str("write_off"),
            StepAction::Task => f.write_str("task"),
        }
    }
}

/// What happens when a cadence's last step has passed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnExhausted {
    /// Nothing: the invoice stays open, with no reminder planned.
    #[default]
    Nothing,
    /// Hand the invoice to this partner.
    HandOff(String),
    /// Write the invoice off.
    WriteOff,
    /// Open a call task for a person; the invoice stays open.
    Task,
}

impl std::fmt::Display for OnExhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OnExhausted::Nothing => f.write_str("nothing"),
            OnExhausted::HandOff(p) => write!(f, "hand_off:{p}"),
            OnExhausted::WriteOff => f.write_str("write_off"),
            OnExhausted::Task => f.write_str("task"),
        }
    }
}

/// A partner invoices can be handed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// Its key in `[partners.*]`.
    pub id: String,
    /// Its name as people read it.
    pub name: String,
    /// Where it is reached, if given.
    pub email: Option<String>,
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
    /// The approved WhatsApp template for this step, if any.
    pub whatsapp: Option<WhatsAppStep>,
    /// What the step does; only [`StepAction::Remind`] steps send a message (the others have
    /// no channels).
    pub action: StepAction,
    /// How late the message may still go out after its time (the step's `max_late`, else
    /// `[defaults] max_late`); `None`: however late. Only message steps have one.
    pub max_late: Option<jiff::SignedDuration>,
}

impl Step {
    /// A step that sends nothing (a call task, a hand-off, a write-off): no channels,
    /// template, tone or lateness limit.
    pub fn no_message(name: &str, offset: Offset, at: Option<Time>, action: StepAction) -> Step {
        Step {
            name: name.to_owned(),
            offset,
            at,
            channels: Vec::new(),
            template: String::new(),
            tone: String::new(),
            whatsapp: None,
            action,
            max_late: None,
        }
    }
}
