//! Checks of `[promises]` and `[plans]`: the cadences they name exist, grace periods parse and
//! are not negative, limits are in range.

use std::collections::BTreeMap;

use serde_spanned::Spanned;

use super::{Checker, parse_offset, quoted_list};
use crate::policy::PolicyError;
use crate::policy::file::{PlansFile, PromisesFile};
use crate::policy::model::{ArrangementRules, Cadence, Offset};

impl Checker<'_> {
    pub(super) fn arrangements(
        &self,
        promises: Option<&PromisesFile>,
        plans: Option<&PlansFile>,
        cadences: &BTreeMap<String, Cadence>,
    ) -> Result<ArrangementRules, PolicyError> {
        let mut rules = ArrangementRules::default();
        let cadence = |v: &Option<Spanned<String>>,
                       field: &str|
         -> Result<Option<String>, PolicyError> {
            let Some(v) = v else {
                return Ok(None);
            };
            let name = v.get_ref().trim();
            if !cadences.contains_key(name) {
                return Err(self.err(
                    v.span(),
                    field.to_owned(),
                    format!(
                        "there is no cadence {name:?}; define it as [[cadences.{name}.steps]] or use one of {}",
                        quoted_list(cadences.keys().map(String::as_str))
                    ),
                ));
            }
            Ok(Some(name.to_owned()))
        };
        let grace = |v: &Option<Spanned<String>>,
                     field: &str|
         -> Result<Option<Offset>, PolicyError> {
            let Some(v) = v else {
                return Ok(None);
            };
            match parse_offset(v.get_ref().trim()) {
                Some(o) if o.approx_minutes() >= 0 => Ok(Some(o)),
                _ => Err(self.err(
                    v.span(),
                    field.to_owned(),
                    format!(
                        "{:?} is not a grace period; write a duration that is not negative, like \"0d\", \"1d\", \"3d\" or \"12h\"",
                        v.get_ref()
                    ),
                )),
            }
        };
        let limit =
            |v: &Option<Spanned<u32>>, field: &str, max: u32| -> Result<Option<u32>, PolicyError> {
                let Some(v) = v else {
                    return Ok(None);
                };
                let n = *v.get_ref();
                if !(1..=max).contains(&n) {
                    return Err(self.err(
                        v.span(),
                        field.to_owned(),
                        format!("{n} is out of range; write 1 to {max}"),
                    ));
                }
                Ok(Some(n))
            };
        if let Some(p) = promises {
            rules.promise_cadence = cadence(&p.cadence, "promises.cadence")?;
            rules.broken_cadence = cadence(&p.broken_cadence, "promises.broken_cadence")?;
            if let Some(g) = grace(&p.grace, "promises.grace")? {
                rules.promise_grace = g;
            }
            if let Some(n) = limit(&p.max_days, "promises.max_days", 365)? {
                rules.promise_max_days = n;
            }
        }
        if let Some(p) = plans {
            rules.plan_cadence = cadence(&p.cadence, "plans.cadence")?;
            if let Some(g) = grace(&p.grace, "plans.grace")? {
                rules.plan_grace = g;
            }
            if let Some(n) = limit(&p.max_instalments, "plans.max_instalments", 120)? {
                rules.plan_max_instalments = n;
            }
            if let Some(n) = limit(&p.max_days, "plans.max_days", 3650)? {
                rules.plan_max_days = n;
            }
        }
        Ok(rules)
    }
}
