//! Fills a step's WhatsApp template mapping ([`WhatsAppStep`]) from the same context as every
//! other template: text parameters are template expressions, currency and date parameters come
//! from the invoice, formatted for the client's locale.

use std::sync::OnceLock;

use jiff::tz::TimeZone;
use minijinja::{Environment, UndefinedBehavior, Value};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::context::ArrangementInfo;
use super::format::{format_date, format_money};
use crate::channels::{TemplateParam, WhatsAppTemplate};
use crate::domain::{Due, Invoice};
use crate::policy::model::{AmountField, DateField, TemplateParamSpec, WhatsAppStep};

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env
    })
}

fn expression(src: &str, ctx: &Value, what: &str) -> Result<String, String> {
    env()
        .render_str(src, ctx)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("WhatsApp {what} {src:?} failed to render: {e}"))
}

/// The template with its parameters filled for one message. `locale` picks the language code
/// and formats amounts and dates; `zone` is the client's, for the due date; `arrangement` is the
/// promise or instalment the message is about (for `outstanding` and `arrangement_date`).
pub fn render_whatsapp(
    spec: &WhatsAppStep,
    ctx: &Value,
    invoice: &Invoice,
    arrangement: Option<&ArrangementInfo>,
    locale: &str,
    zone: &TimeZone,
) -> Result<WhatsAppTemplate, String> {
    let mut body = Vec::with_capacity(spec.body.len());
    for (i, p) in spec.body.iter().enumerate() {
        body.push(match p {
            TemplateParamSpec::Text(src) => {
                let text = expression(src, ctx, &format!("body parameter {}", i + 1))?;
                if text.is_empty() {
                    return Err(format!(
                        "WhatsApp body parameter {} ({src:?}) rendered empty; WhatsApp rejects empty parameters",
                        i + 1
                    ));
                }
                TemplateParam::Text { text }
            }
            TemplateParamSpec::Currency(field) => {
                let amount = match field {
                    AmountField::Balance => invoice.balance,
                    AmountField::Amount => invoice.amount,
                    AmountField::Outstanding => arrangement.map_or(invoice.balance, |a| a.outstanding),
                };
                let amount_1000 = (amount * Decimal::from(1000))
                    .trunc()
                    .to_i64()
                    .ok_or_else(|| format!("amount {amount} is too large for WhatsApp"))?;
                TemplateParam::Currency {
                    fallback_value: format_money(amount, invoice.currency, locale),
                    code: invoice.currency.code().to_owned(),
                    amount_1000,
                }
            }
            TemplateParamSpec::DateTime(field) => {
                let due = match (field, arrangement) {
                    (DateField::ArrangementDate, Some(a)) => a.due,
                    _ => invoice.due_at,
                };
                let date = match due {
                    Due::Date(d) => d,
                    Due::Instant(t) => t.to_zoned(zone.clone()).date(),
                };
                TemplateParam::DateTime {
                    fallback_value: format_date(date, locale),
                }
            }
        });
    }
    let button_url = match &spec.button_url {
        Some(src) => Some(expression(src, ctx, "button_url")?),
        None => None,
    };
    Ok(WhatsAppTemplate {
        name: spec.template.clone(),
        language: spec.language_for(locale).to_owned(),
        body,
        button_url,
    })
}
