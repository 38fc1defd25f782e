//! Rule-based segments: the `when` expressions of `[segments.*]`, compiled once per policy
//! with minijinja's expression language (no parser of our own), checked against the fields a
//! rule may read, and evaluated for a client and one of its invoices.
//!
//! A rule sees:
//! - `client.facts.*`: the client's [`BehaviourFacts`] (`paid_invoices`, `paid_late_share`,
//!   `avg_days_late`, `max_days_late`, `avg_ticket.COP`, `promises_kept`, `broken_promises`,
//!   `days_since_last_payment`...);
//! - `client.tags`, `client.country`, `client.locale`, `client.timezone`;
//! - `invoice.amount`, `invoice.balance`, `invoice.currency`, `invoice.days_overdue`,
//!   `invoice.metadata.KEY`.
//!
//! Amounts are numbers here (for comparisons); money itself stays decimal everywhere else.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::{Environment, Value};

use crate::domain::{BehaviourFacts, Client, Invoice, days_late};

/// Fields a rule may read; a name ending in `.*` is a map whose keys are free.
const ALLOWED: &[&str] = &[
    "client.facts.paid_invoices",
    "client.facts.considered",
    "client.facts.paid_late",
    "client.facts.paid_late_share",
    "client.facts.avg_days_late",
    "client.facts.max_days_late",
    "client.facts.avg_ticket.*",
    "client.facts.promises_kept",
    "client.facts.broken_promises",
    "client.facts.days_since_last_payment",
    "client.facts.last_payment_at",
    "client.facts.last_inbound_at",
    "client.tags",
    "client.country",
    "client.locale",
    "client.timezone",
    "invoice.amount",
    "invoice.balance",
    "invoice.currency",
    "invoice.days_overdue",
    "invoice.metadata.*",
];

/// Facts shown by `GET /v1/clients/{id}` that rules cannot read (they sum every open invoice
/// of the client, which planning one invoice does not read).
const PORTFOLIO_ONLY: &[&str] = &[
    "client.facts.open_invoices",
    "client.facts.open_balance",
    "client.facts.oldest_days_overdue",
    "client.facts.last_contact_at",
];

/// Why a rule was refused: the message, and the byte offset inside the expression it points
/// at (when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// What is wrong and how to fix it.
    pub message: String,
    /// Byte offset in the expression.
    pub offset: usize,
}

/// One compiled rule.
#[derive(Debug, Clone)]
struct Rule {
    segment: String,
    source: String,
}

/// The segment rules of a policy, in the order they appear in the file (first match wins).
#[derive(Debug)]
pub struct SegmentRules {
    env: Environment<'static>,
    rules: Vec<Rule>,
}

impl Default for SegmentRules {
    fn default() -> Self {
        SegmentRules {
            env: Environment::new(),
            rules: Vec::new(),
        }
    }
}

impl SegmentRules {
    /// Compiles `rules` (segment name, expression), in order. The first error is returned.
    pub fn compile(rules: &[(String, String)]) -> Result<SegmentRules, (String, RuleError)> {
        let mut env = Environment::new();
        // A rule is a short expression: a bounded amount of work per evaluation.
        env.set_fuel(Some(10_000));
        let mut compiled = Vec::new();
        for (segment, source) in rules {
            check(&env, source).map_err(|e| (segment.clone(), e))?;
            let wrapped = format!("{{% if ({source}) %}}1{{% endif %}}");
            env.add_template_owned(template_name(segment), wrapped)
                .map_err(|e| {
                    (
                        segment.clone(),
                        RuleError {
                            message: e.to_string(),
                            offset: 0,
                        },
                    )
                })?;
            compiled.push(Rule {
                segment: segment.clone(),
                source: source.clone(),
            });
        }
        Ok(SegmentRules {
            env,
            rules: compiled,
        })
    }

    /// The rule of `segment`, if it has one.
    pub fn rule_of(&self, segment: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.segment == segment)
            .map(|r| r.source.as_str())
    }

    /// The segments with a rule, in the order their rules are tried.
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.segment.as_str())
    }

    /// Whether the policy has any rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first segment whose rule matches `ctx`, with the rule's text. A rule whose
    /// evaluation fails (a value of the wrong type, fuel exhausted) does not match; the failure
    /// is logged.
    pub fn first_match(&self, ctx: &Value) -> Option<(&str, &str)> {
        self.rules.iter().find_map(|r| {
            let rendered = self
                .env
                .get_template(&template_name(&r.segment))
                .and_then(|t| t.render(ctx));
            match rendered {
                Ok(out) if out == "1" => Some((r.segment.as_str(), r.source.as_str())),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(segment = %r.segment, rule = %r.source, error = %e, "segment rule failed to evaluate; treated as not matching");
                    None
                }
            }
        })
    }
}

fn template_name(segment: &str) -> String {
    format!("segments.{segment}.when")
}

/// Compiles `source` and checks every field it reads.
pub(crate) fn check(env: &Environment<'_>, source: &str) -> Result<(), RuleError> {
    if source.trim().is_empty() {
        return Err(RuleError {
            message: "is empty; write a condition such as \"client.facts.broken_promises >= 2\", or remove `when`".to_owned(),
            offset: 0,
        });
    }
    let expr = env.compile_expression(source).map_err(|e| RuleError {
        message: format!(
            "is not a valid expression: {}",
            e.detail().unwrap_or("syntax error")
        ),
        offset: e.range().map_or(0, |r| r.start),
    })?;
    let mut used: Vec<String> = expr.undeclared_variables(true).into_iter().collect();
    used.sort();
    for path in used {
        if let Some(message) = unknown_field(&path) {
            return Err(RuleError {
                offset: source.find(path.as_str()).unwrap_or(0),
                message,
            });
        }
    }
    Ok(())
}

/// Why `path` may not be read by a rule, if it may not.
fn unknown_field(path: &str) -> Option<String> {
    let allowed = ALLOWED.iter().any(|a| match a.strip_suffix(".*") {
        Some(map) => path == map || path.starts_with(&format!("{map}.")),
        None => path == *a || a.starts_with(&format!("{path}.")),
    });
    if allowed {
        return None;
    }
    if PORTFOLIO_ONLY.iter().any(|p| path.starts_with(p)) {
        return Some(format!(
            "`{path}` is shown by GET /v1/clients/{{id}} but rules cannot read it (a rule sees one invoice at a time); use invoice.balance or invoice.days_overdue"
        ));
    }
    let names: Vec<&str> = ALLOWED.iter().map(|a| a.trim_end_matches(".*")).collect();
    Some(format!(
        "unknown field `{path}`; rules can read {}",
        names.join(", ")
    ))
}

/// The value a rule is evaluated against, for `client` (its `facts`) and `invoice`, as of
/// `now` in `zone`.
pub fn rule_context(
    client: &Client,
    facts: &BehaviourFacts,
    invoice: &Invoice,
    zone: &TimeZone,
    now: Timestamp,
) -> Value {
    use minijinja::context;
    use rust_decimal::prelude::ToPrimitive;
    let number = |d: &rust_decimal::Decimal| d.to_f64().unwrap_or(0.0);
    let avg_ticket: std::collections::BTreeMap<String, f64> = facts
        .avg_ticket
        .iter()
        .map(|(k, v)| (k.clone(), number(v)))
        .collect();
    let avg_ticket = Value::from(avg_ticket);
    let metadata = Value::from(invoice.metadata.clone());
    context! {
        client => context! {
            facts => context! {
                paid_invoices => facts.paid_invoices,
                considered => facts.considered,
                paid_late => facts.paid_late,
                paid_late_share => facts.paid_late_share,
                avg_days_late => facts.avg_days_late,
                max_days_late => facts.max_days_late,
                avg_ticket => avg_ticket,
                promises_kept => facts.promises_kept,
                broken_promises => facts.broken_promises,
                days_since_last_payment => facts.days_since_last_payment,
                last_payment_at => facts.last_payment_at.map(|t| t.to_string()),
                last_inbound_at => facts.last_inbound_at.map(|t| t.to_string()),
            },
            tags => client.tags.clone(),
            country => client.country.clone(),
            locale => client.locale.clone(),
            timezone => client.timezone.clone(),
        },
        invoice => context! {
            amount => number(&invoice.amount),
            balance => number(&invoice.balance),
            currency => invoice.currency.code(),
            days_overdue => days_late(&invoice.due_at, now, zone),
            metadata => metadata,
        },
    }
}

#[cfg(test)]
mod tests;
