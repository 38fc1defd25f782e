//! Segment rules: compile errors point into the rule, first match wins, the context a rule sees.

use jiff::Timestamp;
use jiff::civil::date;
use jiff::tz::TimeZone;
use minijinja::context;
use rust_decimal::Decimal;

use super::*;
use crate::domain::{ClientId, Currency, Due, FactsLedger, InvoiceId, InvoiceStatus};

fn rules(list: &[(&str, &str)]) -> Result<SegmentRules, (String, RuleError)> {
    let owned: Vec<(String, String)> = list
        .iter()
        .map(|(s, e)| ((*s).to_owned(), (*e).to_owned()))
        .collect();
    SegmentRules::compile(&owned)
}

fn facts_ctx(broken: u32, avg_late: f64, tags: &[&str]) -> Value {
    context! {
        client => context! {
            facts => context! { broken_promises => broken, avg_days_late => avg_late },
            tags => tags.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>(),
        },
        invoice => context! { amount => 100.0, days_overdue => 3 },
    }
}

#[test]
fn first_matching_rule_wins_in_order() {
    let r = rules(&[
        ("dificil_cobro", "client.facts.broken_promises >= 2"),
        (
            "late_payers",
            "client.facts.avg_days_late > 45 or \"late\" in client.tags",
        ),
    ])
    .unwrap();
    assert_eq!(
        r.first_match(&facts_ctx(2, 60.0, &[])),
        Some(("dificil_cobro", "client.facts.broken_promises >= 2"))
    );
    assert_eq!(
        r.first_match(&facts_ctx(1, 60.0, &[])).map(|m| m.0),
        Some("late_payers")
    );
    assert_eq!(
        r.first_match(&facts_ctx(0, 0.0, &["late"])).map(|m| m.0),
        Some("late_payers")
    );
    assert_eq!(r.first_match(&facts_ctx(1, 10.0, &["vip"])), None);
    assert!(!r.is_empty());
    assert!(SegmentRules::default().is_empty());
}

#[test]
fn a_syntax_error_points_at_the_offending_position() {
    let (segment, e) = rules(&[
        ("ok", "client.facts.broken_promises >= 1"),
        ("bad", "client.facts.broken_promises >= "),
    ])
    .unwrap_err();
    assert_eq!(segment, "bad");
    assert!(e.message.starts_with("is not a valid expression"), "{e:?}");
    assert!(e.offset > 0, "{e:?}");
}

#[test]
fn an_unknown_field_is_named_with_what_is_allowed() {
    let src = "client.facts.broken_promises >= 1 and client.facts.nmae > 2";
    let (segment, e) = rules(&[("s", src)]).unwrap_err();
    assert_eq!(segment, "s");
    assert!(
        e.message.starts_with("unknown field `client.facts.nmae`"),
        "{e:?}"
    );
    assert!(e.message.contains("client.facts.avg_days_late"), "{e:?}");
    assert_eq!(e.offset, src.find("client.facts.nmae").unwrap());
    // A top-level name that is neither `client` nor `invoice`.
    let (_, e) = rules(&[("s", "amount > 3")]).unwrap_err();
    assert!(e.message.starts_with("unknown field `amount`"), "{e:?}");
}

#[test]
fn portfolio_facts_are_refused_with_a_reason() {
    let (_, e) = rules(&[("s", "client.facts.open_invoices > 3")]).unwrap_err();
    assert!(e.message.contains("rules cannot read it"), "{e:?}");
    assert!(e.message.contains("invoice.days_overdue"), "{e:?}");
}

#[test]
fn empty_rules_are_refused() {
    let (_, e) = rules(&[("s", "  ")]).unwrap_err();
    assert!(e.message.starts_with("is empty"), "{e:?}");
}

#[test]
fn a_rule_that_fails_at_run_time_does_not_match() {
    // Adding a number to a string is an error in minijinja: not a match, not a panic.
    let r = rules(&[("s", "client.country + 3 > 1")]).unwrap();
    let ctx = context! { client => context! { country => "CO" } };
    assert_eq!(r.first_match(&ctx), None);
}

#[test]
fn runaway_rules_run_out_of_fuel_instead_of_hanging() {
    let r = rules(&[("s", "(range(100000) | list | length) > 0")]);
    // Either refused at compile time (range is a function, not a field) or bounded at run time.
    if let Ok(r) = r {
        assert_eq!(r.first_match(&facts_ctx(0, 0.0, &[])), None);
    }
}

#[test]
fn the_context_exposes_facts_tags_country_and_the_invoice() {
    let zone = TimeZone::get("America/Bogota").unwrap();
    let now: Timestamp = "2026-03-20T15:00:00Z".parse().unwrap();
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let client = Client {
        id: ClientId::new("c1".to_owned()).unwrap(),
        name: "Ana".to_owned(),
        email: None,
        phone: None,
        whatsapp: None,
        locale: None,
        timezone: None,
        country: Some("CO".to_owned()),
        subdivision: None,
        blocked_times: Vec::new(),
        segment: None,
        tags: vec!["mayorista".to_owned()],
        preferred_channels: Vec::new(),
        credits: Default::default(),
        broken_promises: 3,
        facts: FactsLedger::default(),
        created_at: t0,
        updated_at: t0,
    };
    let invoice = Invoice {
        id: InvoiceId::new("inv-1").unwrap(),
        client_id: client.id.clone(),
        number: "FV-1".to_owned(),
        currency: Currency::parse("COP").unwrap(),
        amount: Decimal::new(150_000_050, 2),
        balance: Decimal::new(50_000, 0),
        issued_at: None,
        due_at: Due::Date(date(2026, 3, 10)),
        payment_url: None,
        metadata: [("zona".to_owned(), "norte".to_owned())].into(),
        status: InvoiceStatus::Open,
        payments: Vec::new(),
        pause: None,
        generation: 0,
        cursor: None,
        pending: None,
        arrangements: Vec::new(),
        created_at: t0,
        updated_at: t0,
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    };
    let facts = crate::domain::behaviour_of(&client, 12, now);
    let ctx = rule_context(&client, &facts, &invoice, &zone, now);
    let r = rules(&[
        (
            "a",
            "client.facts.broken_promises == 3 and client.country == \"CO\"",
        ),
        ("b", "never_reached == 1"),
    ]);
    // `never_reached` is not a field: the whole policy is refused.
    assert!(r.is_err());
    let checks = [
        "client.facts.broken_promises == 3 and client.country == \"CO\"",
        "\"mayorista\" in client.tags",
        "invoice.days_overdue == 10",
        "invoice.amount > 1500000 and invoice.amount < 1500001",
        "invoice.balance == 50000",
        "invoice.currency == \"COP\"",
        "invoice.metadata.zona == \"norte\"",
        "client.facts.paid_invoices == 0 and client.facts.days_since_last_payment is none",
    ];
    for check in checks {
        let r = rules(&[("s", check)]).unwrap();
        assert_eq!(r.first_match(&ctx).map(|m| m.0), Some("s"), "{check}");
    }
    let r = rules(&[("s", "invoice.days_overdue > 10")]).unwrap();
    assert_eq!(r.first_match(&ctx), None);
}
