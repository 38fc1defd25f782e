//! The shipped templates (`config/templates`) across their three locales: the same files in
//! each, every template rendered in every situation (discount, late charges, statement, each
//! on and off), and the statement's selection, cap and escaping.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use jiff::Timestamp;
use jiff::civil::date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;

use super::context::{
    ArrangementInfo, OpenInvoice, STATEMENT_CAP, Statement, StepInfo, TermsInput,
    message_context_with_terms,
};
use super::*;
use crate::domain::{Client, ClientId, Currency, Due, Invoice, InvoiceId, InvoiceStatus};
use crate::policy::terms::{EarlyDiscount, LateCharges, PaymentTerms};

const LOCALES: [&str; 3] = ["es", "en", "pt-BR"];

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates")
}

fn shipped() -> Templates {
    Templates::load(&dir(), "es-CO").unwrap()
}

fn company() -> Company {
    Company {
        name: "Ferretería El Tornillo".into(),
        email: Some("cartera@example.co".into()),
        phone: Some("+57 601 555 0100".into()),
        website: Some("https://tornillo.example.co".into()),
    }
}

fn client(locale: &str) -> Client {
    let now = Timestamp::UNIX_EPOCH;
    Client {
        id: ClientId::new("c-1").unwrap(),
        name: "Ana Souza".into(),
        email: Some("ana@example.co".into()),
        phone: Some("+5511999990000".into()),
        whatsapp: None,
        locale: Some(locale.into()),
        timezone: None,
        country: None,
        subdivision: None,
        blocked_times: Vec::new(),
        segment: None,
        preferred_channels: vec![],
        tags: vec![],
        credits: Default::default(),
        broken_promises: 0,
        facts: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

fn invoice(id: &str, number: &str, currency: &str, balance: i64, due: Due) -> Invoice {
    let now = Timestamp::UNIX_EPOCH;
    Invoice {
        id: InvoiceId::new(id).unwrap(),
        client_id: ClientId::new("c-1").unwrap(),
        number: number.into(),
        currency: Currency::parse(currency).unwrap(),
        amount: Decimal::new(balance, 0),
        balance: Decimal::new(balance, 0),
        issued_at: None,
        due_at: due,
        payment_url: Some("https://pay.example.co/i/1".into()),
        metadata: BTreeMap::new(),
        status: InvoiceStatus::Open,
        payments: vec![],
        pause: None,
        generation: 0,
        cursor: None,
        pending: None,
        arrangements: Vec::new(),
        created_at: now,
        updated_at: now,
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    }
}

fn terms_on() -> PaymentTerms {
    PaymentTerms {
        early_discount: Some(EarlyDiscount {
            percent: Decimal::new(2, 0),
            days_before_due: 5,
        }),
        late_charges: Some(LateCharges {
            fee_per_step: Some(Decimal::new(15, 0)),
            yearly_interest_percent: Some(Decimal::new(24, 0)),
            cap_percent: None,
        }),
        ..PaymentTerms::default()
    }
}

/// Files (partials included) of one shipped locale folder.
fn files_of(locale: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir().join(locale))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_shipped_locale_has_the_same_templates_and_partials() {
    let es = files_of("es");
    assert!(es.contains("thank_you.txt") && es.contains("_statement.txt"));
    for locale in ["en", "pt-BR"] {
        assert_eq!(files_of(locale), es, "{locale} differs from es");
    }
    let t = shipped();
    let names: BTreeSet<String> = t.names().into_iter().collect();
    for locale in LOCALES {
        let here: BTreeSet<String> = names
            .iter()
            .filter(|n| t.parts(n, locale).is_some())
            .cloned()
            .collect();
        assert_eq!(here, names, "template names of {locale}");
        for n in &names {
            assert_eq!(t.parts(n, locale), t.parts(n, "es"), "{locale}/{n} parts");
        }
    }
    // A client who only says `pt` gets the Brazilian folder.
    assert_eq!(t.resolve_locale("courtesy", "pt").as_deref(), Some("pt-BR"));
    assert_eq!(
        t.resolve_locale("courtesy", "pt_br").as_deref(),
        Some("pt-BR")
    );
}

/// One rendering situation.
struct Case {
    /// `[payments]` discount and late charges on.
    terms: bool,
    /// Other open invoices in the statement.
    others: bool,
    /// Before the due date (else ten days after).
    early: bool,
}

fn render_case(t: &Templates, name: &str, locale: &str, kind: &str, case: &Case) -> Rendered {
    let ctx = context_case(name, locale, case);
    t.render(name, locale, kind, &ctx)
        .unwrap_or_else(|e| panic!("{locale}/{name} ({kind}): {e}"))
}

/// The attribute at dotted `path` of `ctx`, printed.
fn attr(ctx: &minijinja::Value, path: &str) -> String {
    path.split('.')
        .try_fold(ctx.clone(), |v, k| v.get_attr(k))
        .unwrap()
        .to_string()
}

fn context_case(name: &str, locale: &str, case: &Case) -> minijinja::Value {
    let currency = if locale == "pt-BR" { "BRL" } else { "COP" };
    let inv = invoice(
        "inv-1",
        "FV-1001",
        currency,
        1_250_000,
        Due::Date(date(2026, 3, 20)),
    );
    let now: Timestamp = if case.early {
        "2026-03-10T15:00:00Z".parse().unwrap()
    } else {
        "2026-03-30T15:00:00Z".parse().unwrap()
    };
    let statement = if case.others {
        Statement::of(
            vec![
                invoice(
                    "inv-2",
                    "FV-0950",
                    currency,
                    430_000,
                    Due::Date(date(2026, 2, 28)),
                ),
                invoice(
                    "inv-3",
                    "FV-1042",
                    currency,
                    2_100_000,
                    Due::Date(date(2026, 4, 10)),
                ),
            ],
            &inv.id,
            &TimeZone::UTC,
        )
    } else {
        Statement::default()
    };
    let input = TermsInput {
        terms: if case.terms {
            terms_on()
        } else {
            PaymentTerms::default()
        },
        overdue_steps: 2,
        arrangement: Some(ArrangementInfo {
            kind: "plan",
            instalment: 1,
            instalments: 2,
            amount: Decimal::new(625_000, 0),
            outstanding: Decimal::new(625_000, 0),
            due: Due::Date(date(2026, 3, 20)),
            broken: false,
            channel: None,
        }),
        statement,
    };
    let step = StepInfo::for_test(name, "friendly", 0);
    message_context_with_terms(
        &client(locale),
        &inv,
        &company(),
        &step,
        locale,
        &TimeZone::UTC,
        now,
        &input,
    )
}

#[test]
fn every_shipped_template_renders_in_every_locale_and_situation() {
    let t = shipped();
    // The discounted amount (before the due date) and the total with late charges (after
    // it), as each locale writes them (R$ for pt-BR).
    let figures = |locale: &str| {
        let on = |early| Case {
            terms: true,
            others: false,
            early,
        };
        (
            attr(
                &context_case("courtesy", locale, &on(true)),
                "invoice.discount.amount",
            ),
            attr(
                &context_case("courtesy", locale, &on(false)),
                "invoice.charges.total_due",
            ),
        )
    };
    assert_eq!(figures("pt-BR").0, "R$ 1.225.000,00");
    assert_eq!(figures("es").1, "1.258.249,18 COP");
    let date_of = BTreeMap::from([
        ("es", "20 de marzo de 2026"),
        ("en", "March 20, 2026"),
        ("pt-BR", "20 de março de 2026"),
    ]);
    let mut rendered = 0;
    for locale in LOCALES {
        for name in t.names() {
            for kind in ["email", "sms"] {
                for terms in [false, true] {
                    for others in [false, true] {
                        for early in [false, true] {
                            let case = Case {
                                terms,
                                others,
                                early,
                            };
                            let r = render_case(&t, &name, locale, kind, &case);
                            let (discount, total_due) = figures(locale);
                            rendered += 1;
                            assert_eq!(r.locale, locale);
                            let at = format!(
                                "{locale}/{name} {kind} terms={terms} others={others} early={early}"
                            );
                            assert!(
                                !r.text.contains("\n\n\n"),
                                "{at}: stray blank lines\n{}",
                                r.text
                            );
                            assert!(!r.text.contains("none"), "{at}\n{}", r.text);
                            if kind == "sms" {
                                continue;
                            }
                            let html = r.html.as_deref().unwrap();
                            let subject = r.subject.as_deref().unwrap();
                            assert!(!subject.is_empty(), "{at}");
                            if name != "thank_you" {
                                assert!(r.text.contains(date_of[locale]), "{at}\n{}", r.text);
                            }
                            // The statement lists the other open invoices, oldest first.
                            for body in [r.text.as_str(), html] {
                                assert_eq!(body.contains("FV-0950"), others, "{at}\n{body}");
                                assert_eq!(body.contains("FV-1042"), others, "{at}\n{body}");
                                if others {
                                    assert!(body.find("FV-0950") < body.find("FV-1042"), "{at}");
                                }
                            }
                            if name == "thank_you" {
                                continue;
                            }
                            // The discount before the due date, the charges after it, and
                            // only when the policy turns them on.
                            for body in [r.text.as_str(), html] {
                                assert_eq!(
                                    body.contains(&discount),
                                    terms && early,
                                    "{at}: discount\n{body}"
                                );
                            }
                            for body in [r.text.as_str(), html] {
                                assert_eq!(
                                    body.contains(&total_due),
                                    terms && !early,
                                    "{at}: late charges\n{body}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(rendered >= 3 * 10 * 16, "{rendered}");
}

#[test]
fn pt_br_money_and_dates_and_the_thank_you() {
    let t = shipped();
    let r = render_case(
        &t,
        "thank_you",
        "pt-BR",
        "email",
        &Case {
            terms: false,
            others: true,
            early: false,
        },
    );
    assert_eq!(
        r.subject.as_deref(),
        Some("Obrigado pelo seu pagamento: fatura FV-1001")
    );
    assert!(r.text.contains("R$ 1.250.000,00"), "{}", r.text);
    assert!(
        r.text
            .contains("- FV-0950: R$ 430.000,00 (vencida desde 28 de fevereiro de 2026)"),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("- FV-1042: R$ 2.100.000,00 (vence em 10 de abril de 2026)"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("Total dessas faturas: R$ 2.530.000,00."),
        "{}",
        r.text
    );
    let html = r.html.unwrap();
    assert!(html.contains("lang=\"pt-BR\""));
    assert!(
        !html.contains("Pagar agora"),
        "no pay button in a thank-you"
    );
}

#[test]
fn the_statement_leaves_out_this_invoice_and_closed_ones_and_caps_the_list() {
    let zone = TimeZone::UTC;
    let due = |d: i8| Due::Date(date(2026, 3, d));
    let current = invoice("inv-0", "FV-0", "COP", 100, due(1));
    let mut all = vec![current.clone()];
    for (status, id) in [
        (InvoiceStatus::Paid, "paid"),
        (InvoiceStatus::Void, "void"),
        (InvoiceStatus::WrittenOff, "woff"),
        (InvoiceStatus::HandedOff, "hoff"),
    ] {
        let mut i = invoice(id, id, "COP", 100, due(2));
        i.status = status;
        all.push(i);
    }
    let mut zero = invoice("zero", "zero", "COP", 100, due(2));
    zero.balance = Decimal::ZERO;
    all.push(zero);
    // Thirteen open ones in COP, listed by due date (day 28 down to 16), and one in USD.
    for d in 16..=28 {
        all.push(invoice(
            &format!("o{d}"),
            &format!("FV-{d}"),
            "COP",
            1000,
            due(d),
        ));
    }
    all.push(invoice("usd", "FV-USD", "USD", 50, due(5)));
    let s = Statement::of(all, &current.id, &zone);
    let numbers: Vec<&str> = s.invoices.iter().map(|o| o.number.as_str()).collect();
    assert_eq!(s.invoices.len(), STATEMENT_CAP);
    assert_eq!(numbers[0], "FV-USD", "oldest due date first");
    assert_eq!(numbers[1..4], ["FV-16", "FV-17", "FV-18"]);
    assert_eq!(s.more, 14 - STATEMENT_CAP);
    for left_out in ["FV-0", "paid", "void", "woff", "hoff", "zero"] {
        assert!(!numbers.contains(&left_out), "{left_out} listed");
    }
    // Totals count every open invoice, listed or not, per currency.
    let totals: Vec<(String, String)> = s
        .totals
        .iter()
        .map(|(c, a)| (c.code().to_owned(), a.to_string()))
        .collect();
    assert_eq!(
        totals,
        vec![("COP".into(), "13000".into()), ("USD".into(), "50".into())]
    );
    // In the context: the count left out, and one total per currency, formatted.
    let input = TermsInput {
        statement: s,
        ..TermsInput::default()
    };
    let step = StepInfo::for_test("courtesy", "friendly", 0);
    let ctx = message_context_with_terms(
        &client("es-CO"),
        &current,
        &company(),
        &step,
        "es-CO",
        &zone,
        "2026-03-10T15:00:00Z".parse().unwrap(),
        &input,
    );
    let c = ctx.get_attr("client").unwrap();
    assert_eq!(c.get_attr("open_invoices_more").unwrap().to_string(), "4");
    let total = c
        .get_attr("open_total")
        .unwrap()
        .get_item_by_index(0)
        .unwrap();
    assert_eq!(total.get_attr("amount").unwrap().to_string(), "$ 13.000");
    let first = c
        .get_attr("open_invoices")
        .unwrap()
        .get_item_by_index(0)
        .unwrap();
    assert_eq!(first.get_attr("days_overdue").unwrap().to_string(), "5");
    assert_eq!(first.get_attr("balance").unwrap().to_string(), "US$ 50,00");
    // Shipped texts say how many were left out.
    let r = shipped().render("courtesy", "es", "email", &ctx).unwrap();
    assert!(r.text.contains("- y 4 facturas más"), "{}", r.text);
    // No statement: the lists are empty, nothing is printed.
    let ctx = message_context_with_terms(
        &client("es-CO"),
        &current,
        &company(),
        &step,
        "es-CO",
        &zone,
        "2026-03-10T15:00:00Z".parse().unwrap(),
        &TermsInput::default(),
    );
    let r = shipped().render("courtesy", "es", "email", &ctx).unwrap();
    assert!(!r.text.contains("otras facturas"), "{}", r.text);
}

/// The context of a courtesy message about `current` to a client in `locale`, on 2026-03-10
/// at 15:00 UTC, with `input`'s terms and statement.
fn courtesy_context(locale: &str, current: &Invoice, input: &TermsInput) -> minijinja::Value {
    let step = StepInfo::for_test("courtesy", "friendly", 0);
    message_context_with_terms(
        &client(locale),
        current,
        &company(),
        &step,
        locale,
        &TimeZone::UTC,
        "2026-03-10T15:00:00Z".parse().unwrap(),
        input,
    )
}

#[test]
fn html_escapes_invoice_numbers_of_this_and_the_other_invoices() {
    let t = shipped();
    let evil = "<script>alert(1)</script>";
    let current = invoice("inv-1", evil, "COP", 1000, Due::Date(date(2026, 3, 20)));
    let statement = Statement {
        invoices: vec![OpenInvoice {
            number: format!("X{evil}"),
            currency: Currency::parse("COP").unwrap(),
            balance: Decimal::new(5, 0),
            due: Due::Date(date(2026, 3, 1)),
            payment_url: Some(format!("https://pay.example.co/\"{evil}")),
        }],
        more: 0,
        totals: vec![(Currency::parse("COP").unwrap(), Decimal::new(5, 0))],
    };
    let input = TermsInput {
        statement,
        terms: terms_on(),
        ..TermsInput::default()
    };
    for locale in LOCALES {
        for name in ["courtesy", "thank_you", "firm_overdue"] {
            let ctx = courtesy_context(locale, &current, &input);
            let r = t.render(name, locale, "email", &ctx).unwrap();
            let html = r.html.unwrap();
            assert!(!html.contains("<script"), "{locale}/{name}:\n{html}");
            assert!(html.contains("X&lt;script&gt;"), "{locale}/{name}:\n{html}");
            // Plain text is not HTML: it carries the number as written.
            assert!(r.text.contains(&format!("X{evil}")), "{locale}/{name}");
        }
    }
}

#[test]
fn each_statement_line_stands_on_its_own_line_with_its_link_last() {
    let t = shipped();
    let current = invoice("inv-1", "FV-1", "COP", 1000, Due::Date(date(2026, 3, 20)));
    let line = |number: &str, url: Option<&str>| OpenInvoice {
        number: number.into(),
        currency: Currency::parse("COP").unwrap(),
        balance: Decimal::new(5000, 0),
        due: Due::Date(date(2026, 3, 1)),
        payment_url: url.map(str::to_owned),
    };
    let statement = Statement {
        invoices: vec![
            line("FV-2", Some("https://pay.example.co/fv-2")),
            line("FV-3", Some("https://pay.example.co/fv-3")),
            line("FV-4", None),
        ],
        more: 2,
        totals: vec![(Currency::parse("COP").unwrap(), Decimal::new(25000, 0))],
    };
    let input = TermsInput {
        statement,
        ..TermsInput::default()
    };
    for locale in LOCALES {
        let ctx = courtesy_context(locale, &current, &input);
        for name in ["courtesy", "friendly_overdue", "final_notice"] {
            let text = t.render(name, locale, "email", &ctx).unwrap().text;
            let items: Vec<&str> = text.lines().filter(|l| l.starts_with("- ")).collect();
            // Three listed invoices, then the line counting the two left out.
            assert_eq!(items.len(), 4, "{locale}/{name}:\n{text}");
            for (item, number) in items.iter().zip(["FV-2", "FV-3", "FV-4"]) {
                assert!(
                    item.starts_with(&format!("- {number}: ")),
                    "{locale}/{name}: {item:?}"
                );
            }
            // A link ends its line: nothing runs into it (a reader's mail client would
            // make the next item part of the URL).
            for (item, url) in items.iter().zip(["fv-2", "fv-3"]) {
                assert!(
                    item.ends_with(&format!("https://pay.example.co/{url}")),
                    "{locale}/{name}: {item:?}"
                );
            }
            assert!(items[2].ends_with(')'), "{locale}/{name}: {:?}", items[2]);
        }
    }
}
