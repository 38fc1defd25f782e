//! The portfolio views and the simulation at an ops lead's scale: `PORTFOLIO_CLIENTS` clients
//! (default 20000) in Colombia, two invoices each, due over the next 30 days, under the shipped
//! policy (Colombian contact law, grouping, segment rules). Measures, on a real sled store:
//! a whole walk of `GET /v1/invoices` (pages of 1000), a filtered walk (open, 1+ days past
//! due), a walk of `GET /v1/reminders` over the next 7 days, and a 30-day simulation of the
//! shipped policy (the real dispatcher over a scratch copy).
//!
//! Run: `cargo bench --bench portfolio` (`PORTFOLIO_CLIENTS`, `PORTFOLIO_DAYS` default 30).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // benches read the real clock

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use plazo::config::{DispatchConfig, SimulationConfig};
use plazo::domain::{ClientId, InvoiceId};
use plazo::policy::load_checked_policy;
use plazo::service::portfolio::{InvoiceQuery, ReminderQuery, list_invoices, list_reminders};
use plazo::service::{ClientInput, InvoiceInput, upsert_client, upsert_invoice};
use plazo::simulate::{SimulateRequest, SimulationEnv, simulate};
use plazo::store::{Store, StoreOptions};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let clients = env_num("PORTFOLIO_CLIENTS", 20_000);
    let days = env_num("PORTFOLIO_DAYS", 30) as u32;
    println!("{}", common::machine());
    let dir = tempfile::tempdir().unwrap();
    let policy = Arc::new(load_checked_policy(&common::repo().join("config/policy.toml")).unwrap());
    let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
    let now: Timestamp = "2026-12-01T14:00:00Z".parse().unwrap();
    let t = Instant::now();
    for c in 0..clients {
        let id = ClientId::new(format!("c{c:06}")).unwrap();
        let input: ClientInput = serde_json::from_value(serde_json::json!({
            "name": format!("Cliente {c}"), "email": format!("c{c}@example.co"),
            "phone": "+573001234567", "country": "CO", "timezone": "America/Bogota"
        }))
        .unwrap();
        upsert_client(&store, &policy.policy, &id, input, now).unwrap();
        for i in 0..2 {
            let due =
                now + SignedDuration::from_hours(24 * ((c * 7 + i * 13) % 45) as i64 - 24 * 10);
            let input: InvoiceInput = serde_json::from_value(serde_json::json!({
                "client_id": id.as_str(), "number": format!("FV-{c}-{i}"), "currency": "COP",
                "amount": "1250000", "due_at": due.to_zoned(jiff::tz::TimeZone::UTC).date().to_string()
            }))
            .unwrap();
            let inv = InvoiceId::new(format!("inv-{c:06}-{i}")).unwrap();
            upsert_invoice(&store, &policy.policy, &inv, input, now).unwrap();
        }
    }
    store.flush_blocking().unwrap();
    println!(
        "set-up: {clients} clients, {} invoices in {:.1} s",
        clients * 2,
        t.elapsed().as_secs_f64()
    );

    let walk = |q: InvoiceQuery| {
        let t = Instant::now();
        let (mut n, mut pages, mut q) = (0usize, 0usize, q);
        loop {
            let page = list_invoices(&store, &policy.policy, &q, now).unwrap();
            n += page.items.len();
            pages += 1;
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        (n, pages, t.elapsed().as_secs_f64())
    };
    let (n, pages, s) = walk(InvoiceQuery {
        limit: Some("1000".into()),
        ..InvoiceQuery::default()
    });
    println!(
        "GET /v1/invoices, whole walk: {n} invoices in {pages} pages, {s:.2} s ({:.0} invoices/s)",
        n as f64 / s
    );
    let (n, pages, s) = walk(InvoiceQuery {
        status: Some("open".into()),
        overdue_min_days: Some("1".into()),
        limit: Some("1000".into()),
        ..InvoiceQuery::default()
    });
    println!(
        "GET /v1/invoices?status=open&overdue_min_days=1: {n} invoices in {pages} pages, {s:.2} s"
    );
    let t = Instant::now();
    let mut q = ReminderQuery {
        from: Some(now.to_string()),
        to: Some((now + SignedDuration::from_hours(24 * 7)).to_string()),
        limit: Some("1000".into()),
        ..ReminderQuery::default()
    };
    let mut n = 0;
    loop {
        let page = list_reminders(&store, &policy.policy, &q, now).unwrap();
        n += page.items.len();
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    println!(
        "GET /v1/reminders, next 7 days: {n} reminders in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let env = SimulationEnv {
        scratch_root: dir.path().join("simulations"),
        routed: vec!["email".into(), "sms".into(), "whatsapp".into()],
        dispatch: DispatchConfig::default(),
        resegment: Some("0 30 5 * * *".into()),
        settings: SimulationConfig::default(),
        policy_path: common::repo().join("config/policy.toml"),
        busy: tokio::sync::Mutex::new(()),
    };
    let t = Instant::now();
    let report = rt
        .block_on(simulate(
            &store,
            policy.clone(),
            SimulateRequest {
                days,
                candidate: None,
                with_messages: false,
            },
            &env,
            now,
        ))
        .unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "simulate {days} days: {} messages, {} deferrals, in {s:.1} s ({:.0} simulated messages/s)",
        report.current.messages,
        report.current.deferrals.values().sum::<u64>(),
        report.current.messages as f64 / s
    );
}
