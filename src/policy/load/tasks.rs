//! Checks of `[tasks]` (priority expression, claim timeout, retries after no answer) and of
//! `[inbound]` (says-paid phrases, what other replies do).

use jiff::SignedDuration;

use super::Checker;
use crate::policy::PolicyError;
use crate::policy::file::{InboundFile, TasksFile};
use crate::policy::tasks::{InboundRules, OtherReplies, PriorityExpr, TaskRules, fold_words};

/// Most says-paid phrases.
const MAX_PHRASES: usize = 200;
/// Longest says-paid phrase, in characters.
const MAX_PHRASE_CHARS: usize = 100;

/// Parses `"90s"`, `"30m"`, `"2h"`, `"1d"`.
pub(super) fn parse_duration(s: &str) -> Option<SignedDuration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    match unit {
        "s" => Some(SignedDuration::from_secs(n)),
        "m" => Some(SignedDuration::from_mins(n)),
        "h" => Some(SignedDuration::from_hours(n)),
        "d" => Some(SignedDuration::from_hours(n.checked_mul(24)?)),
        _ => None,
    }
}

impl Checker<'_> {
    /// A step's (or the default) `max_late`: 1h to 30d.
    pub(super) fn max_late(
        &self,
        v: &serde_spanned::Spanned<String>,
        field: &str,
    ) -> Result<SignedDuration, PolicyError> {
        parse_duration(v.get_ref())
            .filter(|d| *d >= SignedDuration::from_hours(1) && *d <= SignedDuration::from_hours(30 * 24))
            .ok_or_else(|| {
                self.err(
                    v.span(),
                    field.to_owned(),
                    format!(
                        "{:?} is not a lateness between 1h and 30d; write a number and a unit (h, d) like \"1d\" or \"12h\"",
                        v.get_ref()
                    ),
                )
            })
    }

    /// `[tasks]`.
    pub(super) fn tasks(&self, file: Option<&TasksFile>) -> Result<TaskRules, PolicyError> {
        let mut rules = TaskRules::default();
        let Some(f) = file else { return Ok(rules) };
        if let Some(p) = &f.priority {
            let expr = PriorityExpr::compile(p.get_ref()).map_err(|e| {
                let span = p.span();
                let at = span.start + self.quote_len(&span) + e.offset;
                let at = at.min(span.end.saturating_sub(1)).max(span.start);
                self.err(
                    at..span.end,
                    "tasks.priority",
                    format!("priority {}", e.message),
                )
            })?;
            rules.priority = std::sync::Arc::new(expr);
        }
        let duration = |v: &serde_spanned::Spanned<String>,
                        field: &str,
                        max: SignedDuration,
                        max_text: &str,
                        example: &str| {
            parse_duration(v.get_ref())
                .filter(|d| *d >= SignedDuration::from_mins(1) && *d <= max)
                .ok_or_else(|| {
                    self.err(
                        v.span(),
                        field.to_owned(),
                        format!(
                            "{:?} is not a duration between 1m and {max_text}; write a number and a unit (m, h, d) like {example:?}",
                            v.get_ref()
                        ),
                    )
                })
        };
        if let Some(t) = &f.claim_timeout {
            rules.claim_timeout = duration(
                t,
                "tasks.claim_timeout",
                SignedDuration::from_hours(7 * 24),
                "7d",
                "2h",
            )?;
        }
        if let Some(n) = &f.no_answer {
            let attempts = *n.attempts.get_ref();
            if !(1..=20).contains(&attempts) {
                return Err(self.err(
                    n.attempts.span(),
                    "tasks.no_answer.attempts",
                    format!(
                        "{attempts} is out of range; write 1 to 20 (calls per invoice, the first included)"
                    ),
                ));
            }
            rules.no_answer_attempts = u32::try_from(attempts).unwrap_or(1);
            rules.no_answer_spacing = duration(
                &n.spacing,
                "tasks.no_answer.spacing",
                SignedDuration::from_hours(30 * 24),
                "30d",
                "1d",
            )?;
        }
        Ok(rules)
    }

    /// `[inbound]`.
    pub(super) fn inbound(&self, file: Option<&InboundFile>) -> Result<InboundRules, PolicyError> {
        let mut rules = InboundRules::default();
        let Some(f) = file else { return Ok(rules) };
        if let Some(list) = &f.says_paid {
            if list.get_ref().len() > MAX_PHRASES {
                return Err(self.err(
                    list.span(),
                    "inbound.says_paid",
                    format!(
                        "{} phrases given; at most {MAX_PHRASES}",
                        list.get_ref().len()
                    ),
                ));
            }
            let mut phrases: Vec<Vec<String>> = Vec::new();
            for (i, p) in list.get_ref().iter().enumerate() {
                let words = fold_words(p);
                if words.is_empty() || p.chars().count() > MAX_PHRASE_CHARS {
                    return Err(self.err(
                        list.span(),
                        format!("inbound.says_paid[{i}]"),
                        format!(
                            "{:?} is not a phrase; write 1 to {MAX_PHRASE_CHARS} characters with at least one letter or digit, like \"ya pagué\"",
                            p.chars().take(120).collect::<String>()
                        ),
                    ));
                }
                if !phrases.contains(&words) {
                    phrases.push(words);
                }
            }
            rules.says_paid = phrases;
        }
        if let Some(o) = &f.other_replies {
            rules.other_replies = match o.get_ref().trim() {
                "nothing" => OtherReplies::Nothing,
                "task" => OtherReplies::Task,
                other => {
                    return Err(self.err(
                        o.span(),
                        "inbound.other_replies",
                        format!("{other:?} is not valid; use \"nothing\" or \"task\""),
                    ));
                }
            };
        }
        Ok(rules)
    }
}
