//! Reading the policy file: TOML → [`super::file`] structs → checked [`Policy`] plus its
//! compiled [`Templates`].

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde_spanned::Spanned;

use super::error::{Location, PolicyError};
use super::file::{DaysFile, PolicyFile, StepFile, WindowFile};
use super::model::{
    CHANNEL_KINDS, Cadence, Company, ContactWindow, Defaults, Offset, Partner, Policy, Segment,
    Step, StepAction,
};
use crate::domain::Currency;
use crate::templates::Templates;

/// A checked policy and the templates it refers to.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The policy.
    pub policy: Policy,
    /// Its templates, compiled; every step's template exists for the default locale.
    pub templates: Templates,
}

/// Reads, parses and checks the policy file at `path`, and loads its templates.
pub fn load_policy(path: &Path) -> Result<LoadedPolicy, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_policy(&text, path)
}

/// Parses and checks policy `text`. `origin` is the file it came from: it names the file in
/// messages, and `templates_dir` is resolved relative to its folder.
pub fn parse_policy(text: &str, origin: &Path) -> Result<LoadedPolicy, PolicyError> {
    let file: PolicyFile = toml::from_str(text).map_err(|e| syntax_error(&e, text, origin))?;
    Checker { origin, text }.check(file)
}

/// Keys that belong at the top of the file, before any table header.
const TOP_LEVEL_KEYS: &[&str] = &["default_segment", "templates_dir"];

/// Turns a TOML parse or shape error into a [`PolicyError::Syntax`].
fn syntax_error(e: &toml::de::Error, text: &str, origin: &Path) -> PolicyError {
    let location = match e.span() {
        Some(span) => Location::at(origin.to_owned(), text, span.start),
        None => Location::at(origin.to_owned(), text, 0),
    };
    // The key path is only exposed through `Display` without input ("...\nin `a.b`").
    let mut bare = e.clone();
    bare.set_input(None);
    let rendered = bare.to_string();
    let keys = rendered
        .lines()
        .find_map(|l| l.strip_prefix("in `").and_then(|l| l.strip_suffix('`')))
        .unwrap_or_default();
    // In an array of tables, say which element: count its headers before the error.
    // Up to the end of the error's line, so a header the error points at is counted.
    let before = e.span().map_or("", |s| {
        let end = text
            .get(s.start..)
            .and_then(|r| r.find('\n'))
            .map_or(text.len(), |i| s.start + i);
        text.get(..end).unwrap_or(text)
    });
    let mut path = String::new();
    let mut prefix = String::new();
    for key in keys.split('.').filter(|k| !k.is_empty()) {
        if key.chars().all(|c| c.is_ascii_digit()) {
            path.push_str(&format!("[{key}]"));
            continue;
        }
        for p in [&mut path, &mut prefix] {
            if !p.is_empty() {
                p.push('.');
            }
            p.push_str(key);
        }
        let header = format!("[[{prefix}]]");
        let count = before
            .lines()
            .filter(|l| l.split('#').next().unwrap_or("").replace([' ', '\t'], "") == header)
            .count();
        if count > 0 {
            path.push_str(&format!("[{}]", count - 1));
        }
    }
    let mut message = e.message().trim().replace('\n', "; ");
    // Name the offending key itself: `defaults.timezon`, `cadences.s.steps[0].offset`.
    let key = ["unknown field `", "missing field `", "duplicate key `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next())
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    if let Some(key) = key {
        if message.starts_with("unknown field") && TOP_LEVEL_KEYS.contains(&key.as_str()) {
            message.push_str(&format!(
                "; `{key}` is a top-level key: move it above the first [table] header, since keys after a header belong to that table"
            ));
        }
        path = if path.is_empty() {
            key
        } else {
            format!("{path}.{key}")
        };
    }
    let field = Some(path).filter(|f| !f.is_empty());
    PolicyError::Syntax {
        location,
        field,
        message,
    }
}

/// Letters, digits, `_` and `-`: safe in file names, logs and store keys.
fn is_simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `es`, `es-CO`, `es_CO`, `es-419`.
fn is_locale(s: &str) -> bool {
    let mut parts = s.split(['-', '_']);
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    lang_ok
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Parses `HH:MM` (24-hour).
fn parse_hhmm(s: &str) -> Option<Time> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.chars().chain(m.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
}

/// Largest offset accepted, in days (ten years).
const MAX_OFFSET_DAYS: i64 = 3650;

/// Parses `-3d`, `0d`, `+1d`, `+2h`, `-90m`.
fn parse_offset(s: &str) -> Option<Offset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => (1, s),
    };
    let unit = rest.chars().last()?;
    let digits = &rest[..rest.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let offset = match unit {
        'd' if n <= MAX_OFFSET_DAYS => Offset::Days(i32::try_from(sign * n).ok()?),
        'h' if n <= MAX_OFFSET_DAYS * 24 => Offset::Minutes(sign * n * 60),
        'm' if n <= MAX_OFFSET_DAYS * 1440 => Offset::Minutes(sign * n),
        _ => return None,
    };
    Some(offset)
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(s: &str) -> Option<usize> {
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(s.trim()))
}

/// Parses a window's `days`; the error explains what is valid.
fn parse_days(days: &DaysFile) -> Result<[bool; 7], String> {
    const HELP: &str = "write \"mon-fri\", \"mon-sat\", \"daily\", a range like \"tue-sat\", or a list like [\"mon\", \"wed\", \"fri\"] using mon tue wed thu fri sat sun";
    let mut set = [false; 7];
    match days {
        DaysFile::Named(s) => {
            let s = s.trim();
            if s.eq_ignore_ascii_case("daily") {
                set = [true; 7];
            } else if let Some((a, b)) = s.split_once('-') {
                match (day_index(a), day_index(b)) {
                    (Some(a), Some(b)) if a <= b => set[a..=b].iter_mut().for_each(|d| *d = true),
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "{s:?} runs backwards; ranges go from Monday towards Sunday (\"mon-fri\"); for other sets {HELP}"
                        ));
                    }
                    _ => return Err(format!("{s:?} is not a day range; {HELP}")),
                }
            } else if let Some(i) = day_index(s) {
                set[i] = true;
            } else {
                return Err(format!("{s:?} is not a set of days; {HELP}"));
            }
        }
        DaysFile::List(list) => {
            for d in list {
                let Some(i) = day_index(d) else {
                    return Err(format!("{d:?} is not a day; {HELP}"));
                };
                if set.get(i).copied().unwrap_or(false) {
                    return Err(format!("{d:?} is listed twice; name each day once: {HELP}"));
                }
                if let Some(slot) = set.get_mut(i) {
                    *slot = true;
                }
            }
        }
    }
    if !set.contains(&true) {
        return Err(format!("no days given; at least one day is needed: {HELP}"));
    }
    Ok(set)
}

fn quoted_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks file structs against each other, pointing errors at the offending value.
struct Checker<'a> {
    origin: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    /// A list of channel kinds (`channels = ["whatsapp", "email"]` at `field`): each one
    /// known, none twice; trimmed, in order.
    pub(super) fn channel_list(
        &self,
        list: &[serde_spanned::Spanned<String>],
        field: &str,
    ) -> Result<Vec<String>, PolicyError> {
        let mut channels: Vec<String> = Vec::new();
        for (i, ch) in list.iter().enumerate() {
            let kind = ch.get_ref().trim();
            let ch_field = format!("{field}.channels[{i}]");
            if !CHANNEL_KINDS.contains(&kind) {
                return Err(self.err(
                    ch.span(),
                    ch_field,
                    format!(
                        "{:?} is not a channel; valid channels are {}",
                        ch.get_ref(),
                        quoted_list(CHANNEL_KINDS.iter().copied())
                    ),
                ));
            }
            if channels.iter().any(|c| c == kind) {
                return Err(self.err(
                    ch.span(),
                    ch_field,
                    format!("{kind:?} is listed twice; name each channel once"),
                ));
            }
            channels.push(kind.to_owned());
        }
        Ok(channels)
    }

    fn err(&self, span: Range<usize>, field: impl Into<String>, message: String) -> PolicyError {
        PolicyError::Invalid {
            location: Location::at(self.origin.to_owned(), self.text, span.start),
            field: field.into(),
            message,
        }
    }

    /// An error about a whole table or key rather than one value: located at that table or key
    /// when it is written (`[channels.fax]`), else at the start of the file.
    fn err_file(&self, field: impl Into<String>, message: String) -> PolicyError {
        let field = field.into();
        let path: Vec<&str> = field.split('.').collect();
        let (line, column) = crate::config::locate(self.text, &path);
        PolicyError::Invalid {
            location: Location {
                file: self.origin.to_owned(),
                line: Some(line),
                column: Some(column),
            },
            field,
            message,
        }
    }

    fn time(&self, v: &Spanned<String>, field: &str) -> Result<Time, PolicyError> {
        parse_hhmm(v.get_ref()).ok_or_else(|| {
            self.err(
                v.span(),
                field,
                format!(
                    "{:?} is not a time of day; write 24-hour \"HH:MM\" in quotes, like \"09:00\" or \"18:30\"",
                    v.get_ref()
                ),
            )
        })
    }

    fn window(&self, w: &WindowFile, field: &str) -> Result<ContactWindow, PolicyError> {
        let days = parse_days(w.days.get_ref())
            .map_err(|m| self.err(w.days.span(), format!("{field}.days"), m))?;
        let start = self.time(&w.from, &format!("{field}.from"))?;
        // "24:00" closes the window at the end of the day (round-the-clock windows).
        let end = if w.to.get_ref().trim() == "24:00" {
            Time::MAX
        } else {
            self.time(&w.to, &format!("{field}.to"))?
        };
        if start >= end {
            return Err(self.err(
                w.to.span(),
                format!("{field}.to"),
                format!(
                    "the window ends ({:?}) before it starts ({:?}); `to` must be later than `from` on the same day, like from = \"08:00\", to = \"19:00\"",
                    w.to.get_ref(),
                    w.from.get_ref()
                ),
            ));
        }
        Ok(ContactWindow { days, start, end })
    }

    /// `group`: only `"client"`.
    fn group(&self, g: Option<&Spanned<String>>, field: &str) -> Result<bool, PolicyError> {
        match g {
            None => Ok(false),
            Some(v) if v.get_ref().trim() == "client" => Ok(true),
            Some(v) => Err(self.err(
                v.span(),
                field,
                format!(
                    "{:?} is not a grouping; write \"client\" (one message a day per client, listing every open invoice) or leave it out",
                    v.get_ref()
                ),
            )),
        }
    }

    fn step(
        &self,
        s: &StepFile,
        field: &str,
        partners: &BTreeMap<String, Partner>,
    ) -> Result<Step, PolicyError> {
        let name = s.name.get_ref().trim();
        if !is_simple_name(name) {
            return Err(self.err(
                s.name.span(),
                format!("{field}.name"),
                format!(
                    "{:?} is not a valid step name; use 1-64 letters, digits, '_' or '-', like \"courtesy\"",
                    s.name.get_ref()
                ),
            ));
        }
        let offset = parse_offset(s.offset.get_ref().trim()).ok_or_else(|| {
            self.err(
                s.offset.span(),
                format!("{field}.offset"),
                format!(
                    "{:?} is not an offset; write a signed number followed by d, h or m, like \"-3d\", \"+2h\", \"-90m\" (at most {MAX_OFFSET_DAYS} days)",
                    s.offset.get_ref()
                ),
            )
        })?;
        let at = match &s.at {
            None => None,
            Some(at) => {
                if matches!(offset, Offset::Minutes(_)) {
                    return Err(self.err(
                        at.span(),
                        format!("{field}.at"),
                        format!(
                            "`at` only applies to day offsets (\"-3d\", \"+1d\"); offset {:?} is an exact delay from the due time, so remove `at` or use a day offset",
                            s.offset.get_ref()
                        ),
                    ));
                }
                Some(self.time(at, &format!("{field}.at"))?)
            }
        };
        let mut action =
            self.step_action(s.action.as_ref(), &format!("{field}.action"), partners)?;
        if let Some(channels) = &s.channels {
            let kinds: Vec<&str> = channels
                .get_ref()
                .iter()
                .map(|c| c.get_ref().trim())
                .collect();
            if kinds.contains(&"call") {
                if kinds.len() != 1 || action != StepAction::Remind || s.action.is_some() {
                    return Err(self.err(
                        channels.span(),
                        format!("{field}.channels"),
                        "\"call\" is a task for a person, not a message: write channels = [\"call\"] alone (or action = \"task\" without channels), and put messages in a step of their own".to_owned(),
                    ));
                }
                let extra = [
                    s.template.as_ref().map(|t| ("template", t.span())),
                    s.tone.as_ref().map(|t| ("tone", t.span())),
                    s.whatsapp.as_ref().map(|w| ("whatsapp", w.template.span())),
                    s.max_late.as_ref().map(|m| ("max_late", m.span())),
                ];
                if let Some((key, span)) = extra.into_iter().flatten().next() {
                    return Err(self.err(
                        span,
                        format!("{field}.{key}"),
                        format!("a call step sends no message, so it takes no `{key}`; remove it"),
                    ));
                }
                action = StepAction::Task;
                return Ok(Step::no_message(name, offset, at, action));
            }
        }
        if action != StepAction::Remind {
            // A hand-off or write-off sends no message.
            let given = [
                s.channels.as_ref().map(|c| ("channels", c.span())),
                s.template.as_ref().map(|t| ("template", t.span())),
                s.tone.as_ref().map(|t| ("tone", t.span())),
                s.max_late.as_ref().map(|m| ("max_late", m.span())),
            ];
            if let Some((key, span)) = given.into_iter().flatten().next() {
                return Err(self.err(
                    span,
                    format!("{field}.{key}"),
                    format!(
                        "a step with action {action} sends no message, so it takes no `{key}`; remove it, or add a remind step before this one to tell the debtor"
                    ),
                ));
            }
            if let Some(w) = &s.whatsapp {
                return Err(self.err(
                    w.template.span(),
                    format!("{field}.whatsapp"),
                    format!("a step with action {action} sends no message; remove `whatsapp`"),
                ));
            }
            return Ok(Step::no_message(name, offset, at, action));
        }
        let missing = |key: &str, example: &str| {
            self.err(
                s.name.span(),
                format!("{field}.{key}"),
                format!("a remind step needs `{key}`, like {key} = {example}"),
            )
        };
        let Some(channels_file) = &s.channels else {
            return Err(missing("channels", "[\"email\"]"));
        };
        let Some(template_file) = &s.template else {
            return Err(missing("template", "\"courtesy\""));
        };
        let Some(tone_file) = &s.tone else {
            return Err(missing("tone", "\"friendly\""));
        };
        if channels_file.get_ref().is_empty() {
            return Err(self.err(
                channels_file.span(),
                format!("{field}.channels"),
                format!(
                    "no channels given; list at least one of {} in the order to try, like [\"email\"]",
                    quoted_list(CHANNEL_KINDS.iter().copied())
                ),
            ));
        }
        let channels = self.channel_list(channels_file.get_ref(), field)?;
        let template = template_file.get_ref().trim();
        if !is_simple_name(template) {
            return Err(self.err(
                template_file.span(),
                format!("{field}.template"),
                format!(
                    "{:?} is not a valid template name; use 1-64 letters, digits, '_' or '-' (the file name without .txt), like \"courtesy\"",
                    template_file.get_ref()
                ),
            ));
        }
        let tone = tone_file.get_ref().trim();
        if tone.is_empty() {
            return Err(self.err(
                tone_file.span(),
                format!("{field}.tone"),
                "tone is empty; write a label such as \"friendly\", \"firm\" or \"final\""
                    .to_owned(),
            ));
        }
        let whatsapp = match &s.whatsapp {
            Some(w) => Some(self.whatsapp_step(w, &format!("{field}.whatsapp"))?),
            None => None,
        };
        let max_late = match &s.max_late {
            Some(m) => Some(self.max_late(m, &format!("{field}.max_late"))?),
            None => None,
        };
        Ok(Step {
            name: name.to_owned(),
            offset,
            at,
            channels,
            template: template.to_owned(),
            tone: tone.to_owned(),
            whatsapp,
            action,
            max_late,
        })
    }

    fn check(&self, file: PolicyFile) -> Result<LoadedPolicy, PolicyError> {
        // [defaults]
        let d = &file.defaults;
        let timezone_name = d.timezone.get_ref().trim().to_owned();
        let timezone = TimeZone::get(&timezone_name).map_err(|_| {
            self.err(
                d.timezone.span(),
                "defaults.timezone",
                format!(
                    "{:?} is not an IANA time zone; write a tz database name like \"America/Bogota\", \"America/Mexico_City\", \"America/Santiago\" or \"Europe/Madrid\"",
                    d.timezone.get_ref()
                ),
            )
        })?;
        let locale = d.locale.get_ref().trim().to_owned();
        if !is_locale(&locale) {
            return Err(self.err(
                d.locale.span(),
                "defaults.locale",
                format!(
                    "{:?} is not a locale; write a language code with an optional region, like \"es\", \"es-CO\", \"es-MX\" or \"en\"",
                    d.locale.get_ref()
                ),
            ));
        }
        let currency = Currency::parse(d.currency.get_ref())
            .map_err(|e| self.err(d.currency.span(), "defaults.currency", e.to_string()))?;
        let send_at = self.time(&d.send_at, "defaults.send_at")?;
        let window = self.window(&d.window, "defaults.window")?;
        let default_max_late = match &d.max_late {
            Some(m) => Some(self.max_late(m, "defaults.max_late")?),
            None => None,
        };
        let defaults = Defaults {
            timezone_name,
            timezone,
            locale,
            currency,
            send_at,
            window,
        };

        // [company]
        let c = &file.company;
        let company_name = c.name.get_ref().trim().to_owned();
        if company_name.is_empty() {
            return Err(self.err(
                c.name.span(),
                "company.name",
                "the company name is empty; write the trading name debtors know, like \"Ferretería El Tornillo S.A.S.\"".to_owned(),
            ));
        }
        if let Some(email) = &c.email {
            let e = email.get_ref().trim();
            if !e.contains('@') || e.contains(char::is_whitespace) {
                return Err(self.err(
                    email.span(),
                    "company.email",
                    format!("{e:?} is not an email address; write one like \"cartera@example.co\""),
                ));
            }
        }
        let non_empty = |o: &Option<String>| {
            o.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let company = Company {
            name: company_name,
            email: c.email.as_ref().map(|e| e.get_ref().trim().to_owned()),
            phone: non_empty(&c.phone),
            website: non_empty(&c.website),
        };

        // [cadences]
        if file.cadences.is_empty() {
            return Err(self.err_file(
                "cadences",
                "no cadences defined; add at least one, e.g. [[cadences.standard.steps]] with name, offset, channels, template and tone".to_owned(),
            ));
        }
        let partners = self.partners(&file.partners)?;
        let mut cadences = BTreeMap::new();
        for (cname, cfile) in &file.cadences {
            let cfield = format!("cadences.{cname}");
            if !is_simple_name(cname) {
                return Err(self.err(
                    cfile.steps.span(),
                    cfield,
                    format!("{cname:?} is not a valid cadence name; use 1-64 letters, digits, '_' or '-'"),
                ));
            }
            if cfile.steps.get_ref().is_empty() {
                return Err(self.err(
                    cfile.steps.span(),
                    format!("{cfield}.steps"),
                    "the cadence has no steps; add at least one [[cadences.NAME.steps]] table"
                        .to_owned(),
                ));
            }
            let mut steps: Vec<Step> = Vec::with_capacity(cfile.steps.get_ref().len());
            let mut names = BTreeSet::new();
            for (i, sfile) in cfile.steps.get_ref().iter().enumerate() {
                let sfield = format!("{cfield}.steps[{i}]");
                let mut step = self.step(sfile, &sfield, &partners)?;
                if step.action == StepAction::Remind && step.max_late.is_none() {
                    step.max_late = default_max_late;
                }
                if !names.insert(step.name.clone()) {
                    return Err(self.err(
                        sfile.name.span(),
                        format!("{sfield}.name"),
                        format!(
                            "step name {:?} is already used in cadence {cname:?}; give each step its own name",
                            step.name
                        ),
                    ));
                }
                if let Some(prev) = steps.last() {
                    if step.offset.approx_minutes() <= prev.offset.approx_minutes() {
                        return Err(self.err(
                            sfile.offset.span(),
                            format!("{sfield}.offset"),
                            format!(
                                "offset {} does not come after the previous step {:?} ({}); steps must be in strictly increasing offset order, so use an offset later than {} or move this step",
                                step.offset, prev.name, prev.offset, prev.offset
                            ),
                        ));
                    }
                }
                steps.push(step);
            }
            cadences.insert(
                cname.clone(),
                Cadence {
                    name: cname.clone(),
                    steps,
                    on_exhausted: self.on_exhausted(
                        cfile.on_exhausted.as_ref(),
                        &format!("{cfield}.on_exhausted"),
                        &partners,
                    )?,
                    group_by_client: self
                        .group(cfile.group.as_ref(), &format!("{cfield}.group"))?,
                },
            );
        }

        // [segments]
        if file.segments.is_empty() {
            return Err(self.err_file(
                "segments",
                "no segments defined; add at least one, e.g. [segments.standard] with cadence = \"standard\"".to_owned(),
            ));
        }
        let mut segments = BTreeMap::new();
        for (sname, sfile) in &file.segments {
            let sfield = format!("segments.{sname}");
            if !is_simple_name(sname) {
                return Err(self.err(
                    sfile.cadence.span(),
                    sfield,
                    format!("{sname:?} is not a valid segment name; use 1-64 letters, digits, '_' or '-'"),
                ));
            }
            let cadence = sfile.cadence.get_ref().trim();
            if !cadences.contains_key(cadence) {
                return Err(self.err(
                    sfile.cadence.span(),
                    format!("{sfield}.cadence"),
                    format!(
                        "there is no cadence {cadence:?}; defined cadences are {}",
                        quoted_list(cadences.keys().map(String::as_str))
                    ),
                ));
            }
            let window = match &sfile.window {
                Some(w) => Some(self.window(w, &format!("{sfield}.window"))?),
                None => None,
            };
            segments.insert(
                sname.clone(),
                Segment {
                    name: sname.clone(),
                    cadence: cadence.to_owned(),
                    window,
                    group_by_client: self
                        .group(sfile.group.as_ref(), &format!("{sfield}.group"))?,
                },
            );
        }
        let default_segment = file.default_segment.get_ref().trim().to_owned();
        if !segments.contains_key(&default_segment) {
            return Err(self.err(
                file.default_segment.span(),
                "default_segment",
                format!(
                    "there is no segment {default_segment:?}; defined segments are {}",
                    quoted_list(segments.keys().map(String::as_str))
                ),
            ));
        }

        // Templates: load, then check every step's template for the default locale.
        let (dir_value, dir_span) = match &file.templates_dir {
            Some(d) => (PathBuf::from(d.get_ref().trim()), Some(d.span())),
            None => (PathBuf::from("templates"), None),
        };
        let templates_dir = self
            .origin
            .parent()
            .unwrap_or(Path::new(""))
            .join(&dir_value);
        if !templates_dir.is_dir() {
            let message = format!(
                "templates directory {} does not exist; create it with one folder per locale (es, en, es-CO) holding NAME.subject.txt, NAME.txt and NAME.html, or point templates_dir (relative to this file) at it",
                templates_dir.display()
            );
            return Err(match dir_span {
                Some(span) => self.err(span, "templates_dir", message),
                None => self.err_file("templates_dir", message),
            });
        }
        let templates = Templates::load(&templates_dir, &defaults.locale)?;
        for (cname, cfile) in &file.cadences {
            let Some(cadence) = cadences.get(cname) else {
                continue;
            };
            for (i, (step, sfile)) in cadence.steps.iter().zip(cfile.steps.get_ref()).enumerate() {
                for kind in &step.channels {
                    if let Err(e) = templates.require(&step.template, &defaults.locale, kind) {
                        return Err(self.err(
                            sfile
                                .template
                                .as_ref()
                                .map_or(sfile.name.span(), |t| t.span()),
                            format!("cadences.{cname}.steps[{i}].template"),
                            format!("{e} (needed by channel {kind:?})"),
                        ));
                    }
                }
            }
        }

        let channels = self.channel_settings(&file.channels)?;
        let opt_out = self.opt_out(file.opt_out.as_ref())?;
        let terms = self.payments(file.payments.as_ref(), &templates, &defaults.locale)?;
        let arrangements =
            self.arrangements(file.promises.as_ref(), file.plans.as_ref(), &cadences)?;
        let facts = self.facts(file.facts.as_ref())?;
        let rules = self.segment_rules(&file.segments)?;
        let write_off_after_days = self.write_off_age(file.write_off.as_ref())?;
        let tasks = self.tasks(file.tasks.as_ref())?;
        let inbound = self.inbound(file.inbound.as_ref())?;
        let compliance = self.compliance(file.compliance.as_ref())?;
        Ok(LoadedPolicy {
            policy: Policy {
                defaults,
                company,
                segments,
                default_segment,
                cadences,
                channels,
                opt_out,
                terms,
                arrangements,
                facts,
                rules: std::sync::Arc::new(rules),
                partners,
                write_off_after_days,
                tasks,
                inbound,
                compliance,
            },
            templates,
        })
    }
}

mod arrangements;
mod compliance;
mod escalation;
mod messaging;
mod segment_rules;
mod tasks;

#[cfg(test)]
mod tests;
