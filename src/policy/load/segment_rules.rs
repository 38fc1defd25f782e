//! Checks of `[facts]` and of the segments' `when` rules: every rule compiles, reads only
//! fields a rule may read, and an error points at the line and column inside the rule.

use std::collections::BTreeMap;

use super::Checker;
use crate::domain::PAID_HISTORY_CAP;
use crate::policy::PolicyError;
use crate::policy::file::{FactsFile, SegmentFile};
use crate::policy::model::FactsRules;
use crate::policy::rules::SegmentRules;

impl Checker<'_> {
    pub(super) fn facts(&self, file: Option<&FactsFile>) -> Result<FactsRules, PolicyError> {
        let mut rules = FactsRules::default();
        if let Some(n) = file.and_then(|f| f.last_paid.as_ref()) {
            let value = *n.get_ref();
            if !(1..=PAID_HISTORY_CAP as i64).contains(&value) {
                return Err(self.err(
                    n.span(),
                    "facts.last_paid",
                    format!(
                        "{value} is out of range; use 1 to {PAID_HISTORY_CAP} (the number of most recent paid invoices the averages are over)"
                    ),
                ));
            }
            rules.last_paid = u32::try_from(value).unwrap_or(crate::domain::DEFAULT_LAST_PAID);
        }
        Ok(rules)
    }

    /// Compiles the `when` rules in the order the segments appear in the file.
    pub(super) fn segment_rules(
        &self,
        segments: &BTreeMap<String, SegmentFile>,
    ) -> Result<SegmentRules, PolicyError> {
        let mut in_file_order: Vec<(&String, &serde_spanned::Spanned<String>)> = segments
            .iter()
            .filter_map(|(name, s)| s.when.as_ref().map(|w| (name, w)))
            .collect();
        in_file_order.sort_by_key(|(_, w)| w.span().start);
        let sources: Vec<(String, String)> = in_file_order
            .iter()
            .map(|(name, w)| ((*name).clone(), w.get_ref().clone()))
            .collect();
        SegmentRules::compile(&sources).map_err(|(segment, e)| {
            let span = in_file_order
                .iter()
                .find(|(name, _)| **name == segment)
                .map_or(0..0, |(_, w)| w.span());
            let at = span.start + self.quote_len(&span) + e.offset;
            let at = at.min(span.end.saturating_sub(1)).max(span.start);
            self.err(
                at..span.end,
                format!("segments.{segment}.when"),
                format!("rule {}", e.message),
            )
        })
    }

    /// Length of the opening quote of the TOML string at `span` (`"`, `'`, `"""` or `'''`).
    pub(super) fn quote_len(&self, span: &std::ops::Range<usize>) -> usize {
        let raw = self.text.get(span.clone()).unwrap_or("");
        if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else if raw.starts_with('"') || raw.starts_with('\'') {
            1
        } else {
            0
        }
    }
}
