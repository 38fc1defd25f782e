//! How many keys each operation writes to the store: the write path's cost, counted by the
//! writer (`Store::writer_stats`) on a real store with the real dispatcher, so a change that
//! adds writes to an invoice upsert or a dispatched reminder fails here.
//!
//! The bounds: exactly 4 writes for an invoice creation (the invoice record, with its first
//! reminder and its "created" line; the due entry; the number index; since schema 3, the
//! client's invoice index), none for an identical re-upsert, and at most 6 per dispatched
//! reminder (the claim: the due entry out, the in-flight entry in; the outcome: the in-flight
//! entry out, the invoice record with the step done and the next one planned, the next due
//! entry, the timeline line). The hourly tally counters are written once per batch, however
//! many commands it holds, and are counted apart (`counter_writes`).
//!
//! Store v2 (issue 10) created an invoice in 3 writes; the fourth, the client's invoice index
//! entry, is what lets a client's invoices be found without scanning every invoice: to re-plan
//! them when the client's segment or time zone changes, for client facts, and to list them.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use common::sim::Sim;
use common::{step, test_policy};
use plazo::store::WriterStats;

fn policy() -> String {
    test_policy(
        "UTC",
        "es",
        ("00:00", "24:00"),
        &["c"],
        &[
            step("c", "due_today", "0d", None, &["email"]),
            step("c", "firm_overdue", "+5d", None, &["email"]),
        ],
    )
}

fn delta(a: WriterStats, b: WriterStats) -> (u64, u64) {
    (b.commands - a.commands, b.writes - a.writes)
}

#[tokio::test]
async fn invoice_upsert_and_dispatched_reminder_write_counts() {
    let sim = Sim::new(&policy(), "2026-03-01T08:00:00Z");
    sim.client(
        "c1",
        serde_json::json!({"name": "Ana", "email": "ana@example.co"}),
    );

    // A new invoice: its record (with its first reminder and "created" line), its number
    // index, its due entry, and its entry in the client's invoice index (schema 3: re-planning
    // a client's invoices when its segment changes, client facts, and listing a client's
    // invoices, without scanning every invoice).
    let before = sim.store.writer_stats().unwrap();
    sim.invoice("inv-1", "c1", "2026-03-10", "1000");
    let (commands, writes) = delta(before, sim.store.writer_stats().unwrap());
    eprintln!("invoice upsert: {writes} keys");
    assert_eq!(commands, 1);
    assert_eq!(
        writes, 4,
        "an invoice creation writes its record, due entry, number index and client index entry"
    );
    assert_eq!(
        sim.store
            .invoice_ids_of_client(&plazo::domain::ClientId::new("c1").unwrap())
            .unwrap(),
        vec![plazo::domain::InvoiceId::new("inv-1").unwrap()],
        "the fourth key: the client's invoice index"
    );
    let timeline = sim.timeline("inv-1");
    assert!(
        timeline[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .starts_with("invoice created: 1000"),
        "the created line heads the timeline: {timeline:?}"
    );

    // The same upsert again changes nothing and writes nothing (no index key either).
    let before = sim.store.writer_stats().unwrap();
    sim.invoice("inv-1", "c1", "2026-03-10", "1000");
    assert_eq!(delta(before, sim.store.writer_stats().unwrap()).1, 0);

    // One reminder dispatched: the claim, then the outcome with the next step planned.
    let before = sim.store.writer_stats().unwrap();
    assert_eq!(sim.at("2026-03-10T09:00:00Z").await, 1);
    let (commands, writes) = delta(before, sim.store.writer_stats().unwrap());
    eprintln!("dispatched reminder: {writes} keys in {commands} commands");
    assert_eq!(sim.emailed_steps(), vec!["due_today"]);
    assert_eq!(commands, 2, "a claim and an outcome");
    assert!(
        writes <= 6,
        "a dispatched reminder wrote {writes} keys (claim + outcome + next step)"
    );
    assert!(sim.pending("inv-1").is_some(), "the next step is planned");
}
