//! Checks of `[partners.*]`, of a step's `action` and of a cadence's `on_exhausted`: every
//! hand-off names a partner that exists; `task` opens a call task.

use std::collections::BTreeMap;

use serde_spanned::Spanned;

use super::{Checker, is_simple_name, quoted_list};
use crate::policy::PolicyError;
use crate::policy::file::{PartnerFile, WriteOffFile};
use crate::policy::model::{OnExhausted, Partner, StepAction};

/// What an `action` or `on_exhausted` value says, before it becomes one or the other.
enum Escalate {
    Nothing,
    Remind,
    HandOff(String),
    WriteOff,
    Task,
}

/// The range of `[write_off] after_days`: a month to ten years.
const WRITE_OFF_DAYS: std::ops::RangeInclusive<i64> = 30..=3650;

impl Checker<'_> {
    /// `[write_off] after_days`.
    pub(super) fn write_off_age(
        &self,
        file: Option<&WriteOffFile>,
    ) -> Result<Option<u32>, PolicyError> {
        let Some(f) = file else {
            return Ok(None);
        };
        let days = *f.after_days.get_ref();
        if !WRITE_OFF_DAYS.contains(&days) {
            return Err(self.err(
                f.after_days.span(),
                "write_off.after_days",
                format!(
                    "{days} is out of range; use {} to {} (days past the due date, e.g. 360)",
                    WRITE_OFF_DAYS.start(),
                    WRITE_OFF_DAYS.end()
                ),
            ));
        }
        Ok(u32::try_from(days).ok())
    }

    pub(super) fn partners(
        &self,
        file: &BTreeMap<String, PartnerFile>,
    ) -> Result<BTreeMap<String, Partner>, PolicyError> {
        let mut partners = BTreeMap::new();
        for (id, p) in file {
            let field = format!("partners.{id}");
            if !is_simple_name(id) {
                return Err(self.err(
                    p.name.span(),
                    field,
                    format!(
                        "{id:?} is not a valid partner key; use 1-64 letters, digits, '_' or '-'"
                    ),
                ));
            }
            let name = p.name.get_ref().trim();
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(self.err(
                    p.name.span(),
                    format!("{field}.name"),
                    "must be 1 to 200 characters without control characters, like \"Cobranzas del Norte S.A.S.\"".to_owned(),
                ));
            }
            let email = match &p.email {
                Some(e) => {
                    let v = e.get_ref().trim();
                    if !v.contains('@')
                        || v.contains(char::is_whitespace)
                        || v.chars().count() > 254
                    {
                        return Err(self.err(
                            e.span(),
                            format!("{field}.email"),
                            format!("{v:?} is not an email address"),
                        ));
                    }
                    Some(v.to_owned())
                }
                None => None,
            };
            partners.insert(
                id.clone(),
                Partner {
                    id: id.clone(),
                    name: name.to_owned(),
                    email,
                },
            );
        }
        Ok(partners)
    }

    /// A step's `action`.
    pub(super) fn step_action(
        &self,
        v: Option<&Spanned<String>>,
        field: &str,
        partners: &BTreeMap<String, Partner>,
    ) -> Result<StepAction, PolicyError> {
        let Some(v) = v else {
            return Ok(StepAction::Remind);
        };
        match self.escalate(v, field, partners, false)? {
            Escalate::Remind | Escalate::Nothing => Ok(StepAction::Remind),
            Escalate::HandOff(p) => Ok(StepAction::HandOff(p)),
            Escalate::WriteOff => Ok(StepAction::WriteOff),
            Escalate::Task => Ok(StepAction::Task),
        }
    }

    /// A cadence's `on_exhausted`.
    pub(super) fn on_exhausted(
        &self,
        v: Option<&Spanned<String>>,
        field: &str,
        partners: &BTreeMap<String, Partner>,
    ) -> Result<OnExhausted, PolicyError> {
        let Some(v) = v else {
            return Ok(OnExhausted::Nothing);
        };
        match self.escalate(v, field, partners, true)? {
            Escalate::Remind | Escalate::Nothing => Ok(OnExhausted::Nothing),
            Escalate::HandOff(p) => Ok(OnExhausted::HandOff(p)),
            Escalate::WriteOff => Ok(OnExhausted::WriteOff),
            Escalate::Task => Ok(OnExhausted::Task),
        }
    }

    fn escalate(
        &self,
        v: &Spanned<String>,
        field: &str,
        partners: &BTreeMap<String, Partner>,
        exhausted: bool,
    ) -> Result<Escalate, PolicyError> {
        let raw = v.get_ref().trim();
        let valid = if exhausted {
            "\"nothing\", \"task\", \"hand_off:PARTNER\" or \"write_off\""
        } else {
            "\"remind\", \"task\", \"hand_off:PARTNER\" or \"write_off\""
        };
        let (verb, partner) = match raw.split_once(':') {
            Some((verb, partner)) => (verb.trim(), Some(partner.trim())),
            None => (raw, None),
        };
        let bad = |message: String| self.err(v.span(), field.to_owned(), message);
        match (verb, partner) {
            ("remind", None) if !exhausted => Ok(Escalate::Remind),
            ("nothing", None) if exhausted => Ok(Escalate::Nothing),
            ("write_off", None) => Ok(Escalate::WriteOff),
            ("task", None) => Ok(Escalate::Task),
            ("task", Some(_)) => Err(bad(
                "\"task\" takes nothing after it; write \"task\" (the [tasks] table says how calls are ordered and retried)".to_owned(),
            )),
            ("hand_off", Some(p)) => match partners.get(p) {
                Some(_) => Ok(Escalate::HandOff(p.to_owned())),
                None if partners.is_empty() => Err(bad(format!(
                    "there is no partner {p:?}: no [partners.*] are defined; add [partners.{p}] with name = \"...\""
                ))),
                None => Err(bad(format!(
                    "there is no partner {p:?}; defined partners are {}",
                    quoted_list(partners.keys().map(String::as_str))
                ))),
            },
            ("hand_off", None) => match partners.keys().collect::<Vec<_>>().as_slice() {
                [only] => Ok(Escalate::HandOff((*only).clone())),
                [] => Err(bad(
                    "a hand-off needs a partner: add [partners.NAME] with name = \"...\" and write \"hand_off:NAME\"".to_owned(),
                )),
                _ => Err(bad(format!(
                    "name the partner, like \"hand_off:{}\"; defined partners are {}",
                    partners.keys().next().map_or("", String::as_str),
                    quoted_list(partners.keys().map(String::as_str))
                ))),
            },
            _ => Err(bad(format!("{raw:?} is not valid; use {valid}"))),
        }
    }
}
