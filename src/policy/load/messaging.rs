//! Checks of the messaging parts of the policy: `[channels.*]`, `[opt_out]` and each step's
//! `whatsapp` template mapping.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use rust_decimal::Decimal;
use serde_spanned::Spanned;

use super::{Checker, quoted_list};
use crate::policy::PolicyError;
use crate::policy::file::{
    ChannelSettingsFile, OptOutFile, PaymentsFile, ThankYouFile, WhatsAppStepFile,
};
use crate::policy::model::{
    AmountField, CHANNEL_KINDS, ChannelSettings, DEFAULT_MAX_SEGMENTS, DateField, OptOutKeywords,
    TemplateParamSpec, WhatsAppStep, fold_keyword,
};
use crate::policy::terms::{CadenceAnchor, EarlyDiscount, LateCharges, PaymentTerms, ThankYou};
use crate::templates::Templates;

/// Longest receipt timeout accepted.
const MAX_RECEIPT_TIMEOUT: SignedDuration = SignedDuration::from_hours(72);

/// Parses `"90s"`, `"30m"`, `"2h"`, `"1d"`.
fn parse_duration(s: &str) -> Option<SignedDuration> {
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

/// A template expression that must compile (text parameters, URL button).
fn check_expression(src: &str) -> Result<(), String> {
    let env = minijinja::Environment::new();
    env.template_from_str(src)
        .map(|_| ())
        .map_err(|e| format!("{src:?} is not a valid template expression: {e}"))
}

impl Checker<'_> {
    pub(super) fn channel_settings(
        &self,
        files: &BTreeMap<String, ChannelSettingsFile>,
    ) -> Result<BTreeMap<String, ChannelSettings>, PolicyError> {
        let mut out = BTreeMap::new();
        for (kind, f) in files {
            let field = format!("channels.{kind}");
            if !CHANNEL_KINDS.contains(&kind.as_str()) {
                return Err(self.err_file(
                    field,
                    format!(
                        "{kind:?} is not a channel kind; valid kinds are {}",
                        quoted_list(CHANNEL_KINDS.iter().copied())
                    ),
                ));
            }
            let receipt_timeout = match &f.receipt_timeout {
                None => None,
                Some(t) => {
                    let d = parse_duration(t.get_ref())
                        .filter(|d| d.is_positive() && *d <= MAX_RECEIPT_TIMEOUT)
                        .ok_or_else(|| {
                            self.err(
                                t.span(),
                                format!("{field}.receipt_timeout"),
                                format!(
                                    "{:?} is not a duration between 1s and 72h; write a number and a unit (s, m, h, d) like \"30m\" or \"2h\"",
                                    t.get_ref()
                                ),
                            )
                        })?;
                    if !matches!(kind.as_str(), "sms" | "whatsapp") {
                        return Err(self.err(
                            t.span(),
                            format!("{field}.receipt_timeout"),
                            format!(
                                "{kind} messages have no delivery receipts; receipt_timeout applies only to \"sms\" and \"whatsapp\""
                            ),
                        ));
                    }
                    Some(d)
                }
            };
            let max_segments = match &f.max_segments {
                None => DEFAULT_MAX_SEGMENTS,
                Some(n) if (1..=10).contains(n.get_ref()) => *n.get_ref(),
                Some(n) => {
                    return Err(self.err(
                        n.span(),
                        format!("{field}.max_segments"),
                        format!(
                            "{} is out of range; write 1 to 10 (Twilio splits bodies into at most 10 segments of 153 characters)",
                            n.get_ref()
                        ),
                    ));
                }
            };
            out.insert(
                kind.clone(),
                ChannelSettings {
                    receipt_timeout,
                    max_segments,
                },
            );
        }
        Ok(out)
    }

    pub(super) fn opt_out(&self, f: Option<&OptOutFile>) -> Result<OptOutKeywords, PolicyError> {
        let mut kw = OptOutKeywords::default();
        let Some(f) = f else { return Ok(kw) };
        let words = |list: &Spanned<Vec<String>>,
                     field: &str|
         -> Result<Vec<String>, PolicyError> {
            let mut out = Vec::new();
            for w in list.get_ref() {
                let folded = fold_keyword(w);
                if folded.is_empty() || w.split_whitespace().count() != 1 {
                    return Err(self.err(
                        list.span(),
                        field.to_owned(),
                        format!("{w:?} is not a single word; keywords are matched as whole one-word replies, like \"BAJA\""),
                    ));
                }
                if !out.contains(&folded) {
                    out.push(folded);
                }
            }
            Ok(out)
        };
        if let Some(list) = &f.keywords {
            kw.stop = words(list, "opt_out.keywords")?;
        }
        if let Some(list) = &f.opt_in_keywords {
            kw.start = words(list, "opt_out.opt_in_keywords")?;
        }
        if let Some(both) = kw.stop.iter().find(|w| kw.start.contains(w)) {
            return Err(self.err_file(
                "opt_out",
                format!("{both:?} is both an opt-out and an opt-in keyword; keep it in one list"),
            ));
        }
        Ok(kw)
    }

    pub(super) fn whatsapp_step(
        &self,
        f: &WhatsAppStepFile,
        field: &str,
    ) -> Result<WhatsAppStep, PolicyError> {
        let template = f.template.get_ref().trim();
        let valid_name = !template.is_empty()
            && template.len() <= 512
            && template
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name {
            return Err(self.err(
                f.template.span(),
                format!("{field}.template"),
                format!(
                    "{:?} is not a WhatsApp template name; names are lower-case letters, digits and '_', like \"recordatorio_pago\"",
                    f.template.get_ref()
                ),
            ));
        }
        let is_code = |c: &str| {
            let mut parts = c.split('_');
            let lang = parts.next().unwrap_or("");
            let ok_lang =
                (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_lowercase());
            let rest: Vec<&str> = parts.collect();
            ok_lang
                && rest.len() <= 1
                && rest
                    .iter()
                    .all(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_uppercase()))
        };
        let language = f.language.get_ref().trim();
        if !is_code(language) {
            return Err(self.err(
                f.language.span(),
                format!("{field}.language"),
                format!(
                    "{:?} is not a WhatsApp language code; write one like \"es\", \"es_MX\", \"en_US\" or \"pt_BR\"",
                    f.language.get_ref()
                ),
            ));
        }
        let mut languages = BTreeMap::new();
        for (locale, code) in &f.languages {
            if !is_code(code.trim()) {
                return Err(self.err(
                    f.language.span(),
                    format!("{field}.languages.{locale}"),
                    format!("{code:?} is not a WhatsApp language code like \"es_MX\" or \"en_US\""),
                ));
            }
            languages.insert(
                locale.to_ascii_lowercase().replace('_', "-"),
                code.trim().to_owned(),
            );
        }
        let mut body = Vec::new();
        if let Some(list) = &f.body {
            for (i, p) in list.get_ref().iter().enumerate() {
                let pfield = format!("{field}.body[{i}]");
                let bad = |message: String| self.err(list.span(), pfield.clone(), message);
                let spec = match (&p.text, &p.currency, &p.date_time) {
                    (Some(t), None, None) => {
                        check_expression(t).map_err(bad)?;
                        TemplateParamSpec::Text(t.clone())
                    }
                    (None, Some(c), None) => match c.trim() {
                        "balance" => TemplateParamSpec::Currency(AmountField::Balance),
                        "amount" => TemplateParamSpec::Currency(AmountField::Amount),
                        "outstanding" => TemplateParamSpec::Currency(AmountField::Outstanding),
                        other => {
                            return Err(bad(format!(
                                "currency = {other:?} is not an amount; write \"balance\", \"amount\" or \"outstanding\" (what is owed on a promise or instalment)"
                            )));
                        }
                    },
                    (None, None, Some(d)) => match d.trim() {
                        "due_date" => TemplateParamSpec::DateTime(DateField::DueDate),
                        "arrangement_date" => {
                            TemplateParamSpec::DateTime(DateField::ArrangementDate)
                        }
                        other => {
                            return Err(bad(format!(
                                "date_time = {other:?} is not a date; write \"due_date\" or \"arrangement_date\" (the promised or instalment date)"
                            )));
                        }
                    },
                    _ => {
                        return Err(bad(
                            "set exactly one of text, currency or date_time, like { text = \"{{ client.first_name }}\" }".to_owned(),
                        ));
                    }
                };
                body.push(spec);
            }
        }
        let button_url = match &f.button_url {
            None => None,
            Some(b) => {
                check_expression(b.get_ref())
                    .map_err(|m| self.err(b.span(), format!("{field}.button_url"), m))?;
                Some(b.get_ref().clone())
            }
        };
        Ok(WhatsAppStep {
            template: template.to_owned(),
            language: language.to_owned(),
            languages,
            body,
            button_url,
        })
    }
}

impl Checker<'_> {
    /// `[payments]`; `templates` and `locale` (the default locale) check the thank-you's
    /// template.
    pub(super) fn payments(
        &self,
        f: Option<&PaymentsFile>,
        templates: &Templates,
        locale: &str,
    ) -> Result<PaymentTerms, PolicyError> {
        let Some(f) = f else {
            return Ok(PaymentTerms::default());
        };
        let decimal = |v: &Spanned<String>, field: &str, max: Decimal, example: &str| {
            v.get_ref()
                .trim()
                .parse::<Decimal>()
                .ok()
                .filter(|d| *d > Decimal::ZERO && *d < max)
                .ok_or_else(|| {
                    self.err(
                        v.span(),
                        format!("payments.{field}"),
                        format!(
                            "{:?} is not a number above 0 and below {max}; write it as a string like {example:?}",
                            v.get_ref()
                        ),
                    )
                })
        };
        let link = match &f.link {
            None => None,
            Some(l) => {
                check_expression(l.get_ref())
                    .map_err(|m| self.err(l.span(), "payments.link", m))?;
                Some(l.get_ref().trim().to_owned())
            }
        };
        let early_discount = match &f.early_discount {
            None => None,
            Some(d) => {
                let days = *d.days_before_due.get_ref();
                if !(1..=365).contains(&days) {
                    return Err(self.err(
                        d.days_before_due.span(),
                        "payments.early_discount.days_before_due",
                        format!("{days} is out of range; write 1 to 365"),
                    ));
                }
                Some(EarlyDiscount {
                    percent: decimal(
                        &d.percent,
                        "early_discount.percent",
                        Decimal::ONE_HUNDRED,
                        "2",
                    )?,
                    days_before_due: days,
                })
            }
        };
        let big = Decimal::from(1_000_000_000_000i64);
        let fee = f
            .late_fee
            .as_ref()
            .map(|v| decimal(v, "late_fee", big, "15000"))
            .transpose()?;
        let interest = f
            .interest_yearly_percent
            .as_ref()
            .map(|v| decimal(v, "interest_yearly_percent", Decimal::from(1000), "24"))
            .transpose()?;
        let cap = f
            .charges_cap_percent
            .as_ref()
            .map(|v| decimal(v, "charges_cap_percent", Decimal::from(1000), "10"))
            .transpose()?;
        let late_charges = (fee.is_some() || interest.is_some()).then_some(LateCharges {
            fee_per_step: fee,
            yearly_interest_percent: interest,
            cap_percent: cap,
        });
        let anchor = match &f.cadence_anchor {
            None => CadenceAnchor::DueDate,
            Some(a) => match a.get_ref().trim() {
                "due_date" => CadenceAnchor::DueDate,
                "last_payment" => CadenceAnchor::LastPayment,
                other => {
                    return Err(self.err(
                        a.span(),
                        "payments.cadence_anchor",
                        format!(
                            "{other:?} is not an anchor; write \"due_date\" (steps count from the original due date) or \"last_payment\" (steps not yet sent move later after a partial payment)"
                        ),
                    ));
                }
            },
        };
        let thank_you = match &f.thank_you {
            None => None,
            Some(t) => Some(self.thank_you(t, templates, locale)?),
        };
        Ok(PaymentTerms {
            link,
            early_discount,
            late_charges,
            anchor,
            thank_you,
        })
    }

    /// `[payments] thank_you`: a known template with every part its channels need, for the
    /// default locale, and known channels, each once.
    fn thank_you(
        &self,
        f: &ThankYouFile,
        templates: &Templates,
        locale: &str,
    ) -> Result<ThankYou, PolicyError> {
        let field = "payments.thank_you";
        if f.channels.get_ref().is_empty() {
            return Err(self.err(
                f.channels.span(),
                format!("{field}.channels"),
                format!(
                    "no channels given; list at least one of {} in the order to try, like [\"email\"]",
                    quoted_list(CHANNEL_KINDS.iter().copied())
                ),
            ));
        }
        let channels = self.channel_list(f.channels.get_ref(), field)?;
        let template = f.template.get_ref().trim();
        let valid = !template.is_empty()
            && template.len() <= 64
            && template
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(self.err(
                f.template.span(),
                format!("{field}.template"),
                format!(
                    "{:?} is not a valid template name; use 1-64 letters, digits, '_' or '-' (the file name without .txt), like \"thank_you\"",
                    f.template.get_ref()
                ),
            ));
        }
        for kind in &channels {
            if let Err(e) = templates.require(template, locale, kind) {
                return Err(self.err(
                    f.template.span(),
                    format!("{field}.template"),
                    format!("{e} (needed by channel {kind:?})"),
                ));
            }
        }
        Ok(ThankYou {
            template: template.to_owned(),
            channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30m"), Some(SignedDuration::from_mins(30)));
        assert_eq!(parse_duration("2h"), Some(SignedDuration::from_hours(2)));
        assert_eq!(parse_duration("1d"), Some(SignedDuration::from_hours(24)));
        assert_eq!(parse_duration("90s"), Some(SignedDuration::from_secs(90)));
        assert_eq!(parse_duration("2 h"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("10"), None);
    }
}
