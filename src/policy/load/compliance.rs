//! Checks of `[compliance]`: the built-in presets, the policy's own, which apply, and the
//! operator's holiday overrides.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_spanned::Spanned;

use super::{Checker, is_simple_name, quoted_list};
use crate::compliance::holidays::{HolidayCalendar, HolidayOverrides};
use crate::compliance::preset::{Cap, Count, Limit, Period, Preset, SHIPPED_PRESETS, Scope};
use crate::compliance::rules::{Apply, Compliance};
use crate::compliance::week::WeekSchedule;
use crate::policy::PolicyError;
use crate::policy::file::{CapFile, ComplianceFile, PresetFile};
use crate::policy::model::CHANNEL_KINDS;

/// Where the built-in presets come from, in messages.
const SHIPPED_ORIGIN: &str = "config/compliance/presets.toml (built in)";

/// The built-in presets, checked as a policy's own are.
pub(crate) fn shipped_presets() -> Result<BTreeMap<String, Preset>, PolicyError> {
    let origin = Path::new(SHIPPED_ORIGIN);
    let files: BTreeMap<String, PresetFile> = toml::from_str(SHIPPED_PRESETS)
        .map_err(|e| super::syntax_error(&e, SHIPPED_PRESETS, origin))?;
    let checker = Checker {
        origin,
        text: SHIPPED_PRESETS,
    };
    let calendar = HolidayCalendar::shipped();
    files
        .iter()
        .map(|(name, f)| Ok((name.clone(), checker.preset(name, f, name, calendar)?)))
        .collect()
}

impl Checker<'_> {
    /// `[compliance]`.
    pub(super) fn compliance(
        &self,
        file: Option<&ComplianceFile>,
    ) -> Result<Compliance, PolicyError> {
        let Some(f) = file else {
            return Ok(Compliance::default());
        };
        let apply = match f.apply.get_ref().trim() {
            "by_country" => Apply::ByCountry,
            "off" => Apply::Off,
            other => {
                return Err(self.err(
                    f.apply.span(),
                    "compliance.apply",
                    format!(
                        "{other:?} is not a choice; write \"by_country\" (every preset of the client's country applies) or \"off\" (only the presets in `always`)"
                    ),
                ));
            }
        };
        let calendar = match &f.holidays_override {
            None => HolidayCalendar::shipped().clone(),
            Some(path) => {
                let full = self
                    .origin
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(path.get_ref().trim());
                let overrides = HolidayOverrides::load(&full).map_err(|e| {
                    self.err(
                        path.span(),
                        "compliance.holidays_override",
                        format!("{}: {e}", full.display()),
                    )
                })?;
                HolidayCalendar::with_overrides(HolidayCalendar::shipped(), &overrides)
            }
        };
        let mut presets = shipped_presets()?;
        for (name, p) in &f.presets {
            let field = format!("compliance.presets.{name}");
            if !is_simple_name(name) {
                return Err(self.err(
                    p.country.span(),
                    field,
                    format!(
                        "{name:?} is not a valid preset name; use 1-64 letters, digits, '_' or '-'"
                    ),
                ));
            }
            presets.insert(name.clone(), self.preset(name, p, &field, &calendar)?);
        }
        let mut always = Vec::new();
        for (i, name) in f.always.iter().enumerate() {
            let n = name.get_ref().trim();
            if !presets.contains_key(n) {
                return Err(self.err(
                    name.span(),
                    format!("compliance.always[{i}]"),
                    format!(
                        "there is no preset {n:?}; presets are {}",
                        quoted_list(presets.keys().map(String::as_str))
                    ),
                ));
            }
            always.push(n.to_owned());
        }
        let default_country = match &f.default_country {
            None => None,
            Some(c) => Some(self.country(c, "compliance.default_country")?),
        };
        Ok(Compliance {
            apply,
            always,
            default_country,
            presets,
            calendar: Arc::new(calendar),
        })
    }

    /// An ISO 3166-1 alpha-2 code, upper-cased.
    fn country(&self, c: &Spanned<String>, field: &str) -> Result<String, PolicyError> {
        let code = c.get_ref().trim().to_ascii_uppercase();
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(self.err(
                c.span(),
                field,
                format!(
                    "{:?} is not a country code; write an ISO 3166-1 alpha-2 code like \"CO\", \"MX\", \"CL\", \"BR\" or \"ES\"",
                    c.get_ref()
                ),
            ));
        }
        Ok(code)
    }

    /// One preset, `name`, written at `field`.
    fn preset(
        &self,
        name: &str,
        f: &PresetFile,
        field: &str,
        calendar: &HolidayCalendar,
    ) -> Result<Preset, PolicyError> {
        let country = self.country(&f.country, &format!("{field}.country"))?;
        let known_subdivisions = calendar.subdivisions(&country);
        let mut subdivisions = Vec::new();
        for (i, s) in f.subdivisions.iter().enumerate() {
            let raw = s.get_ref().trim().to_ascii_uppercase();
            let code = raw
                .strip_prefix(&format!("{country}-"))
                .unwrap_or(&raw)
                .to_owned();
            if !known_subdivisions.is_empty() && !known_subdivisions.contains(&code.as_str()) {
                return Err(self.err(
                    s.span(),
                    format!("{field}.subdivisions[{i}]"),
                    format!(
                        "{:?} is not a subdivision of {country}; known ones are {}",
                        s.get_ref(),
                        quoted_list(known_subdivisions.iter().copied())
                    ),
                ));
            }
            subdivisions.push(code);
        }
        let exclude_holidays = f.exclude_holidays.as_ref().is_some_and(|b| *b.get_ref());
        if let Some(flag) = &f.exclude_holidays {
            if *flag.get_ref() && !calendar.countries().contains(&country.as_str()) {
                return Err(self.err(
                    flag.span(),
                    format!("{field}.exclude_holidays"),
                    format!(
                        "plazo has no public holidays for {country} (it has {}); set exclude_holidays = false, or list the days in [compliance] holidays_override",
                        quoted_list(calendar.countries())
                    ),
                ));
            }
        }
        let mut windows = Vec::new();
        for (i, w) in f.windows.iter().enumerate() {
            windows.push(self.window(w, &format!("{field}.windows[{i}]"))?);
        }
        let week = if windows.is_empty() {
            WeekSchedule::always()
        } else {
            WeekSchedule::union_of(&windows)
        };
        let caps = f
            .caps
            .iter()
            .enumerate()
            .map(|(i, c)| self.cap(c, &format!("{field}.caps[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let confidence = f.confidence.clone().unwrap_or_else(|| "unverified".into());
        if !["primary", "secondary", "unverified"].contains(&confidence.as_str()) {
            return Err(self.err_file(
                format!("{field}.confidence"),
                format!(
                    "{confidence:?} is not a confidence; write \"primary\", \"secondary\" or \"unverified\""
                ),
            ));
        }
        Ok(Preset {
            name: name.to_owned(),
            country,
            subdivisions,
            title: f.title.clone().unwrap_or_else(|| name.to_owned()),
            week,
            exclude_holidays,
            caps,
            source: f.source.clone().unwrap_or_default(),
            confidence,
        })
    }

    /// One cap.
    fn cap(&self, c: &CapFile, field: &str) -> Result<Cap, PolicyError> {
        let channels = match &c.channels {
            None => None,
            Some(list) => {
                let mut out: Vec<String> = Vec::new();
                for (i, ch) in list.iter().enumerate() {
                    let kind = ch.get_ref().trim();
                    if kind != "call" && !CHANNEL_KINDS.contains(&kind) {
                        return Err(self.err(
                            ch.span(),
                            format!("{field}.channels[{i}]"),
                            format!(
                                "{kind:?} is not a channel kind; use \"call\" (call tasks) or {}",
                                quoted_list(CHANNEL_KINDS.iter().copied())
                            ),
                        ));
                    }
                    if !out.iter().any(|k| k == kind) {
                        out.push(kind.to_owned());
                    }
                }
                Some(out)
            }
        };
        let scope = match c.scope.as_ref().map(|s| (s.get_ref().trim(), s.span())) {
            None | Some(("person", _)) => Scope::Person,
            Some(("debt", _)) => Scope::Debt,
            Some((other, span)) => {
                return Err(self.err(
                    span,
                    format!("{field}.scope"),
                    format!("{other:?} is not a scope; write \"person\" (every invoice of the client) or \"debt\" (each invoice apart)"),
                ));
            }
        };
        let per = match c.per.get_ref().trim() {
            "day" => Period::Day,
            "rolling_7d" => Period::Rolling7d,
            "calendar_week" => Period::CalendarWeek,
            other => {
                return Err(self.err(
                    c.per.span(),
                    format!("{field}.per"),
                    format!("{other:?} is not a period; write \"day\", \"rolling_7d\" or \"calendar_week\""),
                ));
            }
        };
        let count = match c.count.as_ref().map(|s| (s.get_ref().trim(), s.span())) {
            None | Some(("attempt", _)) => Count::Attempt,
            Some(("effective", _)) => Count::Effective,
            Some((other, span)) => {
                return Err(self.err(
                    span,
                    format!("{field}.count"),
                    format!("{other:?} is not a count; write \"attempt\" (every message and call) or \"effective\" (contacts that got through)"),
                ));
            }
        };
        let bounded = |v: &Spanned<i64>, key: &str, max: i64| {
            u32::try_from(*v.get_ref())
                .ok()
                .filter(|n| (1..=max).contains(&i64::from(*n)))
                .ok_or_else(|| {
                    self.err(
                        v.span(),
                        format!("{field}.{key}"),
                        format!(
                            "{} is out of range; write a whole number from 1 to {max}",
                            v.get_ref()
                        ),
                    )
                })
        };
        let limit = match (&c.max, &c.min_gap_days, &c.distinct_channels) {
            (Some(v), None, None) => Limit::Max(bounded(v, "max", 100)?),
            (None, Some(v), None) => Limit::MinGapDays(bounded(v, "min_gap_days", 30)?),
            (None, None, Some(v)) => Limit::DistinctChannels(bounded(v, "distinct_channels", 5)?),
            _ => {
                return Err(self.err(
                    c.per.span(),
                    field,
                    "a cap needs exactly one of max, min_gap_days or distinct_channels, like { per = \"day\", max = 1 }".to_owned(),
                ));
            }
        };
        Ok(Cap {
            channels,
            scope,
            per,
            limit,
            count,
        })
    }
}
