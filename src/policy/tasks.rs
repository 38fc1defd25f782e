//! `[tasks]` and `[inbound]` of the policy, checked: how call tasks are ordered and retried,
//! and which inbound replies pause the chase (the debtor says they already paid) or open a
//! task for a person.

use std::sync::Arc;

use jiff::SignedDuration;
use minijinja::{Environment, Value};
use rust_decimal::Decimal;

use super::rules::{RuleError, check};

/// The default priority: the larger and the older the debt, the sooner the call.
pub const DEFAULT_PRIORITY: &str = "invoice.balance * invoice.days_overdue";
/// Default of [`TaskRules::claim_timeout`].
pub const DEFAULT_CLAIM_TIMEOUT: SignedDuration = SignedDuration::from_hours(2);
/// Default of [`TaskRules::no_answer_attempts`].
pub const DEFAULT_NO_ANSWER_ATTEMPTS: u32 = 3;
/// Default of [`TaskRules::no_answer_spacing`].
pub const DEFAULT_NO_ANSWER_SPACING: SignedDuration = SignedDuration::from_hours(24);

/// `[tasks]`: call tasks' queue order, claims and retries.
#[derive(Debug, Clone)]
pub struct TaskRules {
    /// Queue order, higher first, computed for each task when it is created.
    pub priority: Arc<PriorityExpr>,
    /// A claim older than this is void: the task is back in the queue.
    pub claim_timeout: SignedDuration,
    /// Calls made to one invoice before "no answer" stops planning another (the first
    /// included).
    pub no_answer_attempts: u32,
    /// Wait after a "no answer" before the next attempt (then the contact window applies).
    pub no_answer_spacing: SignedDuration,
}

impl Default for TaskRules {
    fn default() -> Self {
        TaskRules {
            priority: Arc::new(
                PriorityExpr::compile(DEFAULT_PRIORITY).unwrap_or_else(|_| PriorityExpr::zero()),
            ),
            claim_timeout: DEFAULT_CLAIM_TIMEOUT,
            no_answer_attempts: DEFAULT_NO_ANSWER_ATTEMPTS,
            no_answer_spacing: DEFAULT_NO_ANSWER_SPACING,
        }
    }
}

/// A compiled priority expression (minijinja's expression language, the fields segment rules
/// read: `invoice.balance`, `invoice.days_overdue`, `client.facts.*`...).
#[derive(Debug)]
pub struct PriorityExpr {
    env: Environment<'static>,
    source: String,
}

const PRIORITY_TEMPLATE: &str = "tasks.priority";

impl PriorityExpr {
    /// Compiles `source`, checking every field it reads.
    pub fn compile(source: &str) -> Result<PriorityExpr, RuleError> {
        let mut env = Environment::new();
        env.set_fuel(Some(10_000));
        if source.trim().is_empty() {
            return Err(RuleError {
                message: format!(
                    "is empty; write a number expression such as \"{DEFAULT_PRIORITY}\""
                ),
                offset: 0,
            });
        }
        check(&env, source)?;
        env.add_template_owned(PRIORITY_TEMPLATE, format!("{{{{ ({source}) }}}}"))
            .map_err(|e| RuleError {
                message: e.to_string(),
                offset: 0,
            })?;
        Ok(PriorityExpr {
            env,
            source: source.to_owned(),
        })
    }

    /// An expression that is always 0.
    fn zero() -> PriorityExpr {
        let mut env = Environment::new();
        let _ = env.add_template_owned(PRIORITY_TEMPLATE, "0".to_owned());
        PriorityExpr {
            env,
            source: "0".to_owned(),
        }
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The priority for `ctx` (a [`rule_context`](super::rules::rule_context)), rounded to
    /// two decimals. An evaluation that fails or gives no number is 0 (logged).
    pub fn eval(&self, ctx: &Value) -> Decimal {
        let rendered = self
            .env
            .get_template(PRIORITY_TEMPLATE)
            .and_then(|t| t.render(ctx));
        match rendered {
            Ok(out) => match out.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Decimal::from_f64_retain(n)
                    .map(|d| d.round_dp(2))
                    .unwrap_or(Decimal::ZERO),
                _ => {
                    tracing::warn!(priority = %self.source, output = %out, "task priority is not a number; 0 used");
                    Decimal::ZERO
                }
            },
            Err(e) => {
                tracing::warn!(priority = %self.source, error = %e, "task priority failed to evaluate; 0 used");
                Decimal::ZERO
            }
        }
    }
}

/// What an inbound reply that is neither an opt-out keyword nor a says-paid phrase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtherReplies {
    /// Only logged on the client's timeline.
    #[default]
    Nothing,
    /// Also opens a review task for the client (one at a time).
    Task,
}

/// `[inbound]`: replies that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRules {
    /// Phrases meaning "I already paid", folded ([`fold_words`]): a message containing one,
    /// as whole words, pauses the client's open invoices and opens a review task.
    pub says_paid: Vec<Vec<String>>,
    /// What other replies do.
    pub other_replies: OtherReplies,
}

/// Default says-paid phrases: Spanish, Brazilian Portuguese, English. Matched without
/// regard to case or accents, as whole words anywhere in the message.
pub const DEFAULT_SAYS_PAID: &[&str] = &[
    "ya pagué",
    "ya pague",
    "ya pagamos",
    "ya hice el pago",
    "ya realicé el pago",
    "ya hicimos el pago",
    "ya transferí",
    "ya consigné",
    "ya cancelé la factura",
    "ya está pagada",
    "ya está pago",
    "ya está paga",
    "paguei",
    "já paguei",
    "já pagamos",
    "já foi pago",
    "já efetuei o pagamento",
    "já fiz o pagamento",
    "já fiz o pix",
    "pagamento efetuado",
    "already paid",
    "i paid",
    "i have paid",
    "i've paid",
    "we paid",
    "we have paid",
    "payment sent",
    "paid it",
];

impl Default for InboundRules {
    fn default() -> Self {
        let mut says_paid: Vec<Vec<String>> = Vec::new();
        for p in DEFAULT_SAYS_PAID {
            let words = fold_words(p);
            if !words.is_empty() && !says_paid.contains(&words) {
                says_paid.push(words);
            }
        }
        InboundRules {
            says_paid,
            other_replies: OtherReplies::Nothing,
        }
    }
}

impl InboundRules {
    /// The says-paid phrase `text` contains (as whole words, ignoring case, accents and
    /// punctuation), if any, as folded words joined by spaces.
    pub fn says_paid(&self, text: &str) -> Option<String> {
        let words = fold_words(text);
        self.says_paid
            .iter()
            .find(|p| !p.is_empty() && words.windows(p.len()).any(|w| w == p.as_slice()))
            .map(|p| p.join(" "))
    }
}

/// `text` lower-cased, without accents, split into words at anything that is not a letter or
/// a digit: `"¡Ya PAGUÉ!"` is `["ya", "pague"]`.
pub fn fold_words(text: &str) -> Vec<String> {
    let folded: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect();
    folded.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_paid_matches_whole_phrases_ignoring_case_accents_and_punctuation() {
        let r = InboundRules::default();
        for yes in [
            "ya pagué",
            "Ya PAGUE!!",
            "hola, ya pagué ayer por PSE",
            "¿Por qué me escriben? Ya pagué.",
            "Oi, já paguei ontem",
            "JA PAGUEI",
            "paguei",
            "I already paid this",
            "already   paid",
            "I've paid, thanks",
        ] {
            assert!(r.says_paid(yes).is_some(), "{yes:?}");
        }
        for no in [
            "",
            "cuánto debo?",
            "ya pagaré mañana",
            "yapague",
            "pague usted",
            "no puedo pagar",
            "STOP",
            "paid",
            "unpaid",
            "I will pay tomorrow",
        ] {
            assert_eq!(r.says_paid(no), None, "{no:?}");
        }
        assert_eq!(r.says_paid("¡Ya PAGUÉ!").as_deref(), Some("ya pague"));
    }

    #[test]
    fn fold_words_strips_accents_case_and_punctuation() {
        assert_eq!(fold_words("¡Ya PAGUÉ!"), vec!["ya", "pague"]);
        assert_eq!(fold_words("Já  fiz o PIX."), vec!["ja", "fiz", "o", "pix"]);
        assert_eq!(fold_words("i've"), vec!["i", "ve"]);
        assert!(fold_words(" ... ").is_empty());
    }

    fn ctx(balance: f64, days: i64) -> Value {
        minijinja::context! {
            client => minijinja::context! { facts => minijinja::context! { broken_promises => 2 } },
            invoice => minijinja::context! { balance => balance, days_overdue => days },
        }
    }

    #[test]
    fn priority_is_the_expression_rounded_and_zero_when_it_fails() {
        let p = PriorityExpr::compile(DEFAULT_PRIORITY).unwrap();
        assert_eq!(p.eval(&ctx(1500.5, 10)), Decimal::new(15005, 0));
        assert_eq!(p.eval(&ctx(100.0, 0)), Decimal::ZERO);
        let q = PriorityExpr::compile("invoice.balance * (1 + client.facts.broken_promises) / 3")
            .unwrap();
        assert_eq!(q.eval(&ctx(100.0, 1)), Decimal::new(10000, 2));
        let text = PriorityExpr::compile("invoice.currency").unwrap();
        assert_eq!(text.eval(&ctx(1.0, 1)), Decimal::ZERO);
        assert!(PriorityExpr::compile("").is_err());
        assert!(PriorityExpr::compile("invoice.balance *").is_err());
        let e = PriorityExpr::compile("invoice.balanse * 2").unwrap_err();
        assert!(e.message.contains("unknown field"), "{}", e.message);
        // Larger and older debts come first with the default.
        assert!(p.eval(&ctx(1000.0, 30)) > p.eval(&ctx(5000.0, 5)));
    }
}
