//! Tests for template loading, locale fallback, rendering and the message context.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use jiff::civil::date;
use jiff::tz::TimeZone;
use minijinja::context;
use rust_decimal::Decimal;

use super::*;
use crate::domain::{Client, ClientId, Currency, Due, Invoice, InvoiceId, InvoiceStatus};

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, body) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

fn fixture(default_locale: &str) -> (tempfile::TempDir, Templates) {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("es/hello.subject.txt", "  Hola\n {{ name }}  \n\n"),
            ("es/hello.txt", "Hola {{ name }}"),
            ("es/hello.html", "<p>Hola {{ name }}</p>"),
            ("es-MX/hello.txt", "Qué onda {{ name }}"),
            ("es-MX/hello.subject.txt", "Hola"),
            ("es-MX/hello.html", "<p>Qué onda {{ name }}</p>"),
            ("en/hello.subject.txt", "Hello"),
            ("en/hello.txt", "Hello {{ name }}"),
            ("en/hello.html", "<p>Hello {{ name }}</p>"),
            ("en/sms_only.txt", "Pay {{ name }}"),
            ("es/README.md", "ignored"),
            ("es/_part.txt", "partial {{ name }}"),
            ("es/uses_part.txt", "[{% include \"es/_part.txt\" %}]"),
        ],
    );
    let t = Templates::load(dir.path(), default_locale).unwrap();
    (dir, t)
}

#[test]
fn locale_fallback_chain() {
    let (_d, t) = fixture("es-CO");
    assert_eq!(t.resolve_locale("hello", "es-CO").as_deref(), Some("es"));
    assert_eq!(t.resolve_locale("hello", "es_mx").as_deref(), Some("es-MX"));
    assert_eq!(t.resolve_locale("hello", "en-US").as_deref(), Some("en"));
    // fr: no fr, so the default es-CO, then its language es.
    assert_eq!(t.resolve_locale("hello", "fr").as_deref(), Some("es"));
    // sms_only exists only in en: es-CO cannot reach it.
    assert_eq!(t.resolve_locale("sms_only", "es-CO"), None);
    assert_eq!(t.resolve_locale("sms_only", "en-GB").as_deref(), Some("en"));
    // Partials are not templates.
    assert_eq!(t.resolve_locale("_part", "es"), None);
    assert_eq!(t.names(), vec!["hello", "sms_only", "uses_part"]);
    assert_eq!(t.locales(), vec!["en", "es", "es-MX"]);
}

#[test]
fn renders_per_locale_with_fallback() {
    let (_d, t) = fixture("es");
    let ctx = context! { name => "Ana" };
    let r = t.render("hello", "es-CO", "email", &ctx).unwrap();
    assert_eq!(r.locale, "es");
    assert_eq!(r.subject.as_deref(), Some("Hola Ana"));
    assert_eq!(r.text, "Hola Ana");
    assert_eq!(r.html.as_deref(), Some("<p>Hola Ana</p>"));

    let r = t.render("hello", "es-MX", "sms", &ctx).unwrap();
    assert_eq!(
        (r.locale.as_str(), r.text.as_str()),
        ("es-MX", "Qué onda Ana")
    );
    assert_eq!((r.subject, r.html), (None, None));

    let r = t.render("hello", "fr-FR", "email", &ctx).unwrap();
    assert_eq!(r.locale, "es");

    let r = t.render("uses_part", "es", "sms", &ctx).unwrap();
    assert_eq!(r.text, "[partial Ana]");

    let r = t
        .render("hello", "es", "sms", &context! { name => () })
        .unwrap();
    assert_eq!(r.text, "Hola ", "none prints as nothing");
}

#[test]
fn email_needs_all_parts_and_missing_templates_say_where_they_looked() {
    let (d, t) = fixture("en");
    let ctx = context! { name => "Ana" };
    let err = t.render("sms_only", "en", "email", &ctx).unwrap_err();
    assert!(
        matches!(
            err,
            TemplateError::MissingPart {
                part: Part::Subject,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("sms_only.subject.txt is missing"), "{msg}");
    assert!(
        msg.contains("email messages need NAME.subject.txt, NAME.txt and NAME.html"),
        "{msg}"
    );
    assert!(t.render("sms_only", "en", "sms", &ctx).is_ok());

    let err = t.render("nope", "es-CO", "sms", &ctx).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("no template \"nope\" for locale \"es-CO\""),
        "{msg}"
    );
    assert!(
        msg.contains(&d.path().join("es-CO/nope.txt").display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains(&d.path().join("en/nope.txt").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("templates available: hello"), "{msg}");
}

#[test]
fn strict_undefined_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "es/bad.txt",
            "Hola {{ client.name }},\nsu saldo es {{ invoice.saldo }}\n",
        )],
    );
    let t = Templates::load(dir.path(), "es").unwrap();
    let ctx =
        context! { client => context! { name => "Ana" }, invoice => context! { balance => "1" } };
    let err = t.render("bad", "es", "sms", &ctx).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, TemplateError::Render { line: Some(2), .. }),
        "{msg}"
    );
    // file:line:column of `invoice.saldo`.
    assert!(msg.contains("bad.txt:2:16: undefined value"), "{msg}");
    assert!(msg.contains("`invoice.saldo`"), "{msg}");
    assert!(msg.contains("available: client."), "{msg}");
    // A missing top-level variable too.
    write(dir.path(), &[("es/bad2.txt", "{{ cliente }}")]);
    let t = Templates::load(dir.path(), "es").unwrap();
    assert!(t.render("bad2", "es", "sms", &ctx).is_err());
}

#[test]
fn compile_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("es/broken.html", "<p>\n{% if x %}\nhola\n")]);
    let err = Templates::load(dir.path(), "es").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, TemplateError::Syntax { .. }), "{msg}");
    assert!(
        msg.contains(&format!("{}:", dir.path().join("es/broken.html").display())),
        "{msg}"
    );
    assert!(msg.contains("syntax error"), "{msg}");

    let err = Templates::load(&dir.path().join("nope"), "es").unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn html_is_escaped_text_is_not() {
    let (_d, t) = fixture("es");
    let ctx = context! { name => "<script>alert('x')</script> & Cía" };
    let r = t.render("hello", "es", "email", &ctx).unwrap();
    let html = r.html.unwrap();
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains("&amp; Cía"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert_eq!(r.text, "Hola <script>alert('x')</script> & Cía");
}

fn sample(due: Due, balance: i64, url: Option<&str>) -> (Client, Invoice) {
    let now = Timestamp::UNIX_EPOCH;
    let client = Client {
        id: ClientId::new("c-1").unwrap(),
        name: "María <b>Gómez</b>".into(),
        email: Some("maria@example.co".into()),
        phone: None,
        whatsapp: None,
        locale: Some("es-CO".into()),
        timezone: Some("America/Bogota".into()),
        country: Some("CO".into()),
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
    };
    let invoice = Invoice {
        id: InvoiceId::new("inv-1").unwrap(),
        client_id: client.id.clone(),
        number: "FV-1001".into(),
        currency: Currency::parse("COP").unwrap(),
        amount: Decimal::new(1_250_000, 0),
        balance: Decimal::new(balance, 0),
        issued_at: None,
        due_at: due,
        payment_url: url.map(str::to_owned),
        metadata: BTreeMap::from([("order".to_owned(), "OC-9".to_owned())]),
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
    };
    (client, invoice)
}

fn company() -> Company {
    Company {
        name: "Ferretería El Tornillo S.A.S.".into(),
        email: Some("cartera@example.co".into()),
        phone: Some("+57 601 555 0100".into()),
        website: None,
    }
}

#[test]
fn context_counts_days_in_the_clients_zone() {
    let bogota = TimeZone::get("America/Bogota").unwrap();
    let step = StepInfo::for_test("courtesy", "friendly", 0);
    let (c, i) = sample(Due::Date(date(2026, 3, 15)), 1_250_000, None);
    // 2026-03-12T03:00Z is still March 11 in Bogotá (UTC-5): four days before.
    let now: Timestamp = "2026-03-12T03:00:00Z".parse().unwrap();
    let ctx = message_context(&c, &i, &company(), &step, "es-CO", &bogota, now);
    let value = |path: &str| {
        path.split('.')
            .try_fold(ctx.clone(), |v, k| v.get_attr(k))
            .unwrap()
    };
    let get = |path: &str| value(path).to_string();
    assert_eq!(get("invoice.days_until_due"), "4");
    assert_eq!(get("invoice.days_overdue"), "0");
    assert!(!value("invoice.is_overdue").is_true());
    assert_eq!(get("invoice.amount"), "$ 1.250.000");
    assert_eq!(get("invoice.amount_raw"), "1250000");
    assert_eq!(get("invoice.due_date"), "15 de marzo de 2026");
    assert_eq!(get("invoice.due_date_iso"), "2026-03-15");
    assert!(value("invoice.payment_url").is_none());
    assert_eq!(get("invoice.metadata.order"), "OC-9");
    assert_eq!(get("client.first_name"), "María");
    assert!(value("company.website").is_none());
    assert_eq!(get("step.tone"), "friendly");
    assert_eq!(get("locale"), "es-CO");

    // Due today (in Bogotá): neither before nor overdue.
    let now: Timestamp = "2026-03-16T04:00:00Z".parse().unwrap();
    let ctx = message_context(&c, &i, &company(), &step, "es-CO", &bogota, now);
    let days = ctx.get_attr("invoice").unwrap();
    assert_eq!(days.get_attr("days_until_due").unwrap().to_string(), "0");
    assert_eq!(days.get_attr("days_overdue").unwrap().to_string(), "0");
    assert!(!days.get_attr("is_overdue").unwrap().is_true());

    // Three days later.
    let now: Timestamp = "2026-03-18T15:00:00Z".parse().unwrap();
    let ctx = message_context(&c, &i, &company(), &step, "en-US", &bogota, now);
    let inv = ctx.get_attr("invoice").unwrap();
    assert_eq!(inv.get_attr("days_overdue").unwrap().to_string(), "3");
    assert!(inv.get_attr("is_overdue").unwrap().is_true());
    assert_eq!(
        inv.get_attr("due_date").unwrap().to_string(),
        "March 15, 2026"
    );
    assert_eq!(inv.get_attr("amount").unwrap().to_string(), "COP 1,250,000");

    // A due instant: overdue as soon as it passes, dates read in the client's zone.
    let (c, i) = sample(
        Due::Instant("2026-03-15T03:00:00Z".parse().unwrap()),
        1,
        None,
    );
    let now: Timestamp = "2026-03-15T03:00:01Z".parse().unwrap();
    let ctx = message_context(&c, &i, &company(), &step, "es", &bogota, now);
    let inv = ctx.get_attr("invoice").unwrap();
    assert_eq!(
        inv.get_attr("due_date_iso").unwrap().to_string(),
        "2026-03-14"
    );
    assert!(inv.get_attr("is_overdue").unwrap().is_true());
    assert_eq!(inv.get_attr("days_overdue").unwrap().to_string(), "0");
}

#[test]
fn context_maps_behave_as_maps_in_templates() {
    let bogota = TimeZone::get("America/Bogota").unwrap();
    let step = StepInfo::for_test("courtesy", "friendly", 2);
    let (c, i) = sample(Due::Date(date(2026, 3, 15)), 1_250_000, None);
    let now: Timestamp = "2026-03-12T15:00:00Z".parse().unwrap();
    let ctx = message_context(&c, &i, &company(), &step, "es-CO", &bogota, now);
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let render = |src: &str| env.render_str(src, ctx.clone());
    // Keys are listed in name order, whatever order the context gives them in.
    assert_eq!(
        render("{% for k in step %}{{ k }},{% endfor %}").unwrap(),
        "index,name,tone,"
    );
    assert_eq!(
        render("{% for k, v in step|items %}{{ k }}={{ v }};{% endfor %}").unwrap(),
        "index=2;name=courtesy;tone=friendly;"
    );
    assert_eq!(render("{{ step|length }}").unwrap(), "3");
    assert_eq!(render("{{ step['tone'] }}").unwrap(), "friendly");
    assert_eq!(
        render("{{ 'tone' in step }} {{ 'nope' in step }}").unwrap(),
        "True False"
    );
    assert_eq!(
        render("{{ step|dictsort }}").unwrap(),
        "[('index', 2), ('name', 'courtesy'), ('tone', 'friendly')]"
    );
    assert!(
        render("{{ invoice.dicount }}").is_err(),
        "a misspelt field is an error"
    );
    assert_eq!(
        render("{% if invoice.discount %}offer{% else %}none{% endif %}").unwrap(),
        "none"
    );
    // Every field is listed once, in every map of the context.
    fn check(v: &Value, path: &str) {
        if v.kind() == minijinja::value::ValueKind::Map {
            let keys: Vec<String> = v.try_iter().unwrap().map(|k| k.to_string()).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(keys, sorted, "{path}: keys unsorted or repeated");
            for k in keys {
                check(&v.get_attr(&k).unwrap(), &format!("{path}.{k}"));
            }
        }
    }
    check(&ctx, "ctx");
    assert!(ctx.get_attr("invoice").unwrap().try_iter().unwrap().count() >= 16);
}

fn shipped() -> Templates {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    Templates::load(&dir, "es-CO").unwrap()
}

#[test]
fn shipped_templates_check_clean() {
    let t = shipped();
    let errors = t.check_all(&company());
    assert!(
        errors.is_empty(),
        "{}",
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    for name in [
        "courtesy",
        "due_tomorrow",
        "due_today",
        "friendly_overdue",
        "firm_overdue",
        "final_notice",
    ] {
        for locale in ["es", "en"] {
            assert!(t.require(name, locale, "email").is_ok(), "{locale}/{name}");
        }
    }
}

#[test]
fn shipped_templates_render_personal_messages() {
    let t = shipped();
    let bogota = TimeZone::get("America/Bogota").unwrap();
    let step = StepInfo::for_test("firm_overdue", "firm", 3);
    let (c, i) = sample(
        Due::Date(date(2026, 3, 15)),
        850_000,
        Some("https://pay.example.co/i?a=1&b=2"),
    );
    let now: Timestamp = "2026-03-25T14:00:00Z".parse().unwrap();
    let ctx = message_context(&c, &i, &company(), &step, "es-CO", &bogota, now);
    let r = t.render("firm_overdue", "es-CO", "email", &ctx).unwrap();
    assert_eq!(r.locale, "es");
    let subject = r.subject.unwrap();
    assert_eq!(
        subject,
        "Factura FV-1001 vencida hace 10 días: le solicitamos regularizar el pago"
    );
    for needle in [
        "María <b>Gómez</b>",
        "FV-1001",
        "$ 850.000",
        "$ 1.250.000",
        "15 de marzo de 2026",
        "https://pay.example.co/i?a=1&b=2",
        "Ferretería El Tornillo S.A.S.",
        "+57 601 555 0100",
    ] {
        assert!(
            r.text.contains(needle),
            "text lacks {needle:?}:\n{}",
            r.text
        );
    }
    assert!(!r.text.contains("\n\n\n"), "stray blank lines:\n{}", r.text);
    assert!(
        r.text.contains("2026\n\nPuede pagar"),
        "blank line before the link:\n{}",
        r.text
    );
    assert!(
        r.text.contains("b=2\n\nSi no puede"),
        "blank line after the link:\n{}",
        r.text
    );
    let html = r.html.unwrap();
    if std::env::var_os("PLAZO_SHOW_RENDERED").is_some() {
        println!("{subject}\n----\n{}\n----\n{html}", r.text);
    }
    assert!(
        html.contains("María &lt;b&gt;Gómez&lt;&#x2f;b&gt;"),
        "{html}"
    );
    assert!(
        html.contains("href=\"https:&#x2f;&#x2f;pay.example.co&#x2f;i?a=1&amp;b=2\""),
        "{html}"
    );
    assert!(
        html.contains("#c2410c"),
        "accent colour from the child template:\n{html}"
    );

    // English, before the due date, no payment link: the link paragraph disappears.
    let (c, i) = sample(Due::Date(date(2026, 3, 15)), 1_250_000, None);
    let now: Timestamp = "2026-03-12T14:00:00Z".parse().unwrap();
    let ctx = message_context(&c, &i, &company(), &step, "en-US", &bogota, now);
    let r = t.render("courtesy", "en-US", "email", &ctx).unwrap();
    assert_eq!(r.locale, "en");
    assert_eq!(
        r.subject.as_deref(),
        Some("Reminder: invoice FV-1001 is due on March 15, 2026")
    );
    assert!(
        r.text.contains("(in 3 days).\n\nInvoice: FV-1001\n"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("March 15, 2026\n\nIf you have any"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("pay securely"), "{}", r.text);
    assert!(!r.text.contains("Balance due"), "{}", r.text);
    assert!(!r.html.as_deref().unwrap().contains("Pay now"));
    if std::env::var_os("PLAZO_SHOW_RENDERED").is_some() {
        println!("{}\n----\n{}", r.text, r.html.unwrap());
    }
}

#[test]
fn payment_terms_reach_the_context_link_discount_and_charges() {
    use crate::policy::terms::{EarlyDiscount, LateCharges, PaymentTerms};
    use crate::templates::context::{TermsInput, message_context_with_terms};
    let bogota = TimeZone::get("America/Bogota").unwrap();
    let step = StepInfo::for_test("courtesy", "friendly", 0);
    let terms = TermsInput {
        terms: PaymentTerms {
            link: Some(
                "https://pagos.example.co/pagar/{{ invoice.id }}?n={{ invoice.number }}".into(),
            ),
            early_discount: Some(EarlyDiscount {
                percent: Decimal::from(2),
                days_before_due: 10,
            }),
            late_charges: Some(LateCharges {
                fee_per_step: Some(Decimal::from(15_000)),
                yearly_interest_percent: None,
                cap_percent: None,
            }),
            anchor: Default::default(),
            thank_you: None,
        },
        overdue_steps: 2,
        arrangement: None,
        statement: Default::default(),
    };
    let (c, i) = sample(Due::Date(date(2026, 3, 15)), 1_250_000, None);
    let get = |ctx: &minijinja::Value, path: &str| {
        path.split('.')
            .try_fold(ctx.clone(), |v, k| v.get_attr(k))
            .unwrap()
    };
    // Twelve days early: the discount is open, no charges, the link comes from the pattern.
    let early = message_context_with_terms(
        &c,
        &i,
        &company(),
        &step,
        "es-CO",
        &bogota,
        "2026-03-03T15:00:00Z".parse().unwrap(),
        &terms,
    );
    assert_eq!(
        get(&early, "invoice.payment_url").to_string(),
        format!("https://pagos.example.co/pagar/{}?n={}", i.id, i.number)
    );
    assert_eq!(
        get(&early, "invoice.discount.amount").to_string(),
        "$ 1.225.000"
    );
    assert_eq!(
        get(&early, "invoice.discount.pay_by_iso").to_string(),
        "2026-03-05"
    );
    assert!(get(&early, "invoice.charges").is_none());
    // Overdue: no discount; two steps' fees on top of the balance.
    let late = message_context_with_terms(
        &c,
        &i,
        &company(),
        &step,
        "es-CO",
        &bogota,
        "2026-03-20T15:00:00Z".parse().unwrap(),
        &terms,
    );
    assert!(get(&late, "invoice.discount").is_none());
    assert_eq!(
        get(&late, "invoice.charges.late_fees").to_string(),
        "$ 30.000"
    );
    assert_eq!(
        get(&late, "invoice.charges.total_due").to_string(),
        "$ 1.280.000"
    );
    assert_eq!(
        get(&late, "invoice.balance").to_string(),
        "$ 1.250.000",
        "the balance is untouched"
    );
    // An invoice's own link wins over the pattern.
    let (c2, i2) = sample(
        Due::Date(date(2026, 3, 15)),
        1_250_000,
        Some("https://own.example/x"),
    );
    let own = message_context_with_terms(
        &c2,
        &i2,
        &company(),
        &step,
        "es-CO",
        &bogota,
        "2026-03-03T15:00:00Z".parse().unwrap(),
        &terms,
    );
    assert_eq!(
        get(&own, "invoice.payment_url").to_string(),
        "https://own.example/x"
    );
}
