//! One reminder's message, built the way the dispatcher builds it, for a client with many open
//! invoices: the statement of its other open invoices (`Statement::of_lines` over the lines of
//! its invoice index, as `dispatch::attempt` reads them), the template context
//! (`message_context_with_terms`, with the shipped policy's payment terms) and the shipped
//! template rendered (`Templates::render`), under the shipped policy and templates.
//!
//! A client in Bogotá with `RENDER_INVOICES` (40) open invoices (COP, due over the past and next
//! 20 days, each with a payment link), stored through the service on a real sled store and read
//! back. Then `RENDER_N` (20000) messages about each invoice in turn, for the `webhook` kind
//! (the text part only) and the `email` kind (subject, text and HTML), after a warm-up of 1000.
//! Prints µs per message for the statement, the context and the rendering, and the text's size.
//!
//! Run: `cargo bench --bench render`; see BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // benches read the real clock

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use plazo::domain::{ClientId, IndexLine, InvoiceId};
use plazo::policy::load_checked_policy;
use plazo::schedule::client_zone;
use plazo::service::{ClientInput, InvoiceInput, upsert_client, upsert_invoice};
use plazo::store::{Store, StoreOptions};
use plazo::templates::StepInfo;
use plazo::templates::context::{Statement, TermsInput, message_context_with_terms};

fn main() {
    let invoices = common::env_or("RENDER_INVOICES", 40usize);
    let n = common::env_or("RENDER_N", 20_000usize);
    println!("{}", common::machine());
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_checked_policy(&common::repo().join("config/policy.toml")).unwrap();
    let policy = &loaded.policy;
    let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
    let now: Timestamp = "2026-12-01T14:00:00Z".parse().unwrap();
    let client_id = ClientId::new("client-0001").unwrap();
    let input: ClientInput = serde_json::from_value(serde_json::json!({
        "name": "Cliente 0001", "email": "c1@example.co", "phone": "+573001234567",
        "country": "CO", "locale": "es-CO", "timezone": "America/Bogota"
    }))
    .unwrap();
    upsert_client(&store, policy, &client_id, input, now).unwrap();
    let ids: Vec<InvoiceId> = (0..invoices)
        .map(|i| {
            let id = InvoiceId::new(format!("inv-{i}")).unwrap();
            let due = now + SignedDuration::from_hours(24 * (i as i64 - invoices as i64 / 2));
            let input: InvoiceInput = serde_json::from_value(serde_json::json!({
                "client_id": client_id.as_str(), "number": format!("F-{i}"), "currency": "COP",
                "amount": format!("{}.00", 250_000 + 1_000 * i), "due_at": due.to_string(),
                "payment_url": format!("https://pay.example.co/inv-{i}")
            }))
            .unwrap();
            upsert_invoice(&store, policy, &id, input, now).unwrap();
            id
        })
        .collect();
    let client = store.client(&client_id).unwrap().unwrap();
    let stored: Vec<_> = ids
        .iter()
        .map(|id| store.invoice(id).unwrap().unwrap())
        .collect();
    let lines = store
        .invoice_lines_of_client_within(&client_id, 1000)
        .unwrap()
        .unwrap();
    let zone = client_zone(policy, &client);
    let step = StepInfo {
        name: "due_today".into(),
        tone: "friendly".into(),
        index: 2,
    };
    let locale = client.locale.clone().unwrap();

    for kind in ["webhook", "email"] {
        let (mut statement_t, mut context_t, mut render_t) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let mut bytes = 0usize;
        for i in 0..(1000 + n) {
            let invoice = &stored[i % stored.len()];
            let t0 = Instant::now();
            let open = lines.iter().filter_map(|(id, line)| match line {
                IndexLine::Open(open) => Some((id, open)),
                IndexLine::Settled | IndexLine::Unknown => None,
            });
            let statement = Statement::of_lines(open, &invoice.id, &zone);
            let t1 = Instant::now();
            let terms = TermsInput {
                terms: policy.terms.clone(),
                overdue_steps: 0,
                arrangement: None,
                statement,
            };
            let ctx = message_context_with_terms(
                &client,
                invoice,
                &policy.company,
                &step,
                &locale,
                &zone,
                now,
                &terms,
            );
            let t2 = Instant::now();
            let rendered = loaded
                .templates
                .render(&step.name, &locale, kind, &ctx)
                .unwrap();
            let t3 = Instant::now();
            if i >= 1000 {
                statement_t += t1 - t0;
                context_t += t2 - t1;
                render_t += t3 - t2;
                bytes += rendered.text.len() + rendered.html.map_or(0, |h| h.len());
            }
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        println!(
            "render {kind} ({invoices} open invoices, shipped `{}` in {locale}): n={n}: \
             statement {:.2} µs, context {:.2} µs, render {:.2} µs -> {:.2} µs per message \
             ({} bytes of text and HTML on average)",
            step.name,
            per(statement_t),
            per(context_t),
            per(render_t),
            per(statement_t + context_t + render_t),
            bytes / n
        );
    }
}
