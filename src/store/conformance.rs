//! The backend conformance suite: the [`Backend`](super::backend::Backend) contract as
//! checks that run against any backend through [`Store`], never through raw keys.
//!
//! Each check takes a [`Harness`] that opens the backend under test on the same data every
//! time (so a check can close the store and open it again, as a restart does). A backend runs
//! the whole suite as named tests with [`conformance_suite!`](crate::conformance_suite):
//!
//! ```ignore
//! mod conformance_on_sled {
//!     crate::conformance_suite!(crate::store::sled_backend::tests::SledHarness::new());
//! }
//! ```
//!
//! sled runs it in `sled_backend/tests.rs`; the PostgreSQL backend (a later issue) runs the
//! same checks.
#![allow(clippy::disallowed_methods)]

pub(crate) mod events;
pub(crate) mod listing;
pub(crate) mod tasks;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{Timestamp, ToSpan};
use rust_decimal::Decimal;

use super::{Ack, Store, StoreError, Tallies, Tally, Tx, TxError, abort};
use crate::domain::InboxEntry;
use crate::domain::{
    Attempt, AttemptOutcome, Client, ClientId, Currency, Due, IndexLine, Invoice, InvoiceId,
    InvoiceStatus, Reminder, ReminderId, ReminderState,
};

/// Opens the backend under test, on the same data each time.
pub(crate) trait Harness {
    /// A store on the backend; the previous one must have been dropped.
    fn open(&self) -> Store;
}

pub(crate) fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub(crate) fn t0() -> Timestamp {
    ts("2026-03-01T12:00:00Z")
}

pub(crate) fn client(id: &str) -> Client {
    Client {
        id: ClientId::new(id).unwrap(),
        name: "Ana".into(),
        email: Some("ana@example.com".into()),
        phone: None,
        whatsapp: None,
        locale: Some("es-CO".into()),
        timezone: Some("America/Bogota".into()),
        country: Some("CO".into()),
        subdivision: None,
        blocked_times: Vec::new(),
        segment: None,
        preferred_channels: vec!["email".into()],
        tags: vec![],
        credits: Default::default(),
        broken_promises: 0,
        facts: Default::default(),
        created_at: t0(),
        updated_at: t0(),
    }
}

pub(crate) fn invoice(id: &str) -> Invoice {
    Invoice {
        id: InvoiceId::new(id).unwrap(),
        client_id: ClientId::new("c-1").unwrap(),
        number: format!("FV-{id}"),
        currency: Currency::parse("COP").unwrap(),
        amount: Decimal::new(125_000_000, 2),
        balance: Decimal::new(125_000_000, 2),
        issued_at: None,
        due_at: Due::Date(jiff::civil::date(2026, 3, 15)),
        payment_url: None,
        metadata: BTreeMap::new(),
        status: InvoiceStatus::Open,
        payments: vec![],
        pause: None,
        generation: 0,
        cursor: None,
        pending: None,
        arrangements: Vec::new(),
        created_at: t0(),
        updated_at: t0(),
        closed_at: None,
        followed: None,
        escalation: None,
        exhausted: None,
    }
}

pub(crate) fn reminder(inv: &str, step: u32, fire_at: Timestamp) -> Reminder {
    let invoice_id = InvoiceId::new(inv).unwrap();
    Reminder {
        id: ReminderId::derive(&invoice_id, 0, step),
        invoice_id,
        client_id: ClientId::new("c-1").unwrap(),
        generation: 0,
        track: Default::default(),
        step_index: step,
        step_name: format!("step-{step}"),
        cadence: "default".into(),
        planned_at: fire_at,
        fire_at,
        state: ReminderState::Scheduled,
        attempts: 0,
        channel_index: 0,
        last_error: None,
        awaiting: None,
        rate_slot: None,
    }
}

pub(crate) fn attempt(inv: &str, at: Timestamp, detail: &str) -> Attempt {
    Attempt {
        at,
        invoice_id: InvoiceId::new(inv).unwrap(),
        reminder_id: None,
        step: None,
        channel: Some("email".into()),
        recipient: None,
        outcome: AttemptOutcome::Sent,
        provider_message_id: None,
        delivery: None,
        detail: Some(detail.into()),
    }
}

/// Runs a transaction that cannot abort.
pub(crate) fn write(store: &Store, f: impl Fn(&mut Tx<'_>) -> Result<(), TxError<()>>) {
    store.transaction(f).unwrap().unwrap();
}

/// Schedules `rs`, storing each one's invoice first when it is not stored yet (a reminder is
/// kept in its invoice's record).
pub(crate) fn schedule(store: &Store, rs: &[Reminder]) {
    write(store, |tx| {
        for r in rs {
            if tx.invoice(&r.invoice_id)?.is_none() {
                tx.put_invoice(&invoice(r.invoice_id.as_str()))?;
            }
            tx.schedule(r)?;
        }
        Ok(())
    });
}

pub(crate) fn records_round_trip_and_survive_reopen(h: &dyn Harness) {
    let r = reminder("INV-1", 0, t0());
    {
        let store = h.open();
        write(&store, |tx| {
            tx.put_client(&client("c-1"))?;
            tx.put_invoice(&invoice("INV-1"))?;
            tx.schedule(&r)?;
            tx.log(&attempt("INV-1", t0(), "hello"))?;
            tx.mark_webhook("evt_1", t0())?;
            Ok(())
        });
        assert_eq!(
            store.client(&ClientId::new("c-1").unwrap()).unwrap(),
            Some(client("c-1"))
        );
        store.flush_blocking().unwrap();
    }
    let store = h.open();
    assert_eq!(
        store.client(&ClientId::new("c-1").unwrap()).unwrap(),
        Some(client("c-1"))
    );
    assert_eq!(
        store.invoice(&InvoiceId::new("INV-1").unwrap()).unwrap(),
        Some(invoice("INV-1"))
    );
    assert_eq!(
        store.reminder(&r.invoice_id, &r.id).unwrap(),
        Some(r.clone())
    );
    assert_eq!(store.next_due().unwrap(), Some(t0()));
    assert_eq!(store.pending_count().unwrap(), 1);
    assert_eq!(
        store
            .timeline(&InvoiceId::new("INV-1").unwrap())
            .unwrap()
            .len(),
        1
    );
    let seen = store
        .transaction::<_, ()>(|tx| Ok(tx.webhook_seen("evt_1")?))
        .unwrap()
        .unwrap();
    assert!(seen);
    assert!(store.size_on_disk().unwrap() > 0);
    assert_eq!(
        store.client(&ClientId::new("nobody").unwrap()).unwrap(),
        None
    );
}

pub(crate) fn claim_due_claims_due_ones_exactly_once(h: &dyn Harness) {
    let store = h.open();
    let early = reminder("INV-1", 0, t0() - 2.hours());
    let now_one = reminder("INV-2", 0, t0());
    let later = reminder("INV-3", 0, t0() + 1.second());
    schedule(&store, &[later.clone(), now_one.clone(), early.clone()]);
    assert_eq!(store.next_due().unwrap(), Some(early.fire_at));

    let claimed = store.claim_due(t0(), 10).unwrap();
    let ids: Vec<_> = claimed.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        vec![early.id, now_one.id],
        "earliest first, only the due ones"
    );
    assert!(claimed.iter().all(|r| r.state == ReminderState::Claimed));
    assert_eq!(
        store
            .reminder(&early.invoice_id, &early.id)
            .unwrap()
            .unwrap()
            .state,
        ReminderState::Claimed
    );
    assert_eq!(
        store
            .reminder(&later.invoice_id, &later.id)
            .unwrap()
            .unwrap()
            .state,
        ReminderState::Scheduled
    );

    assert!(
        store.claim_due(t0(), 10).unwrap().is_empty(),
        "second call claims nothing"
    );
    assert_eq!(store.pending_count().unwrap(), 1);
    assert_eq!(store.next_due().unwrap(), Some(later.fire_at));
    let claimed = store.claim_due(t0() + 1.second(), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(store.next_due().unwrap(), None);
}

pub(crate) fn claim_due_respects_limit_and_zero(h: &dyn Harness) {
    let store = h.open();
    let rs: Vec<_> = (0..5)
        .map(|i| reminder("INV-1", i, t0() - i64::from(i).minutes()))
        .collect();
    schedule(&store, &rs);
    assert!(store.claim_due(t0(), 0).unwrap().is_empty());
    let first = store.claim_due(t0(), 2).unwrap();
    assert_eq!(
        first.iter().map(|r| r.step_index).collect::<Vec<_>>(),
        vec![4, 3]
    );
    assert_eq!(store.pending_count().unwrap(), 3);
    assert_eq!(store.claim_due(t0(), 10).unwrap().len(), 3);
}

pub(crate) fn concurrent_claims_never_claim_twice(h: &dyn Harness) {
    let store = h.open();
    let rs: Vec<_> = (0..200)
        .map(|i| reminder("INV-1", i, t0() - i64::from(i).seconds()))
        .collect();
    schedule(&store, &rs);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let batch = store.claim_due(t0(), 7).unwrap();
                    if batch.is_empty() && store.pending_count().unwrap() == 0 {
                        return got;
                    }
                    got.extend(batch.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let mut all: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all.len(), 200);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200, "no reminder claimed twice");
    assert_eq!(store.in_flight().unwrap().len(), 200);
}

pub(crate) fn in_flight_after_claim_and_after_finish(h: &dyn Harness) {
    let r1 = reminder("INV-1", 0, t0());
    let r2 = reminder("INV-1", 1, t0());
    {
        let store = h.open();
        schedule(&store, &[r1.clone(), r2.clone()]);
        assert!(store.in_flight().unwrap().is_empty());
        let claimed = store.claim_due(t0(), 10).unwrap();
        assert_eq!(claimed.len(), 2);
        let mut ids: Vec<_> = store.in_flight().unwrap().iter().map(|r| r.id).collect();
        ids.sort();
        let mut want = vec![r1.id, r2.id];
        want.sort();
        assert_eq!(ids, want);

        let mut done = claimed.iter().find(|r| r.id == r1.id).unwrap().clone();
        done.state = ReminderState::Sent;
        write(&store, |tx| tx.finish(&done).map_err(Into::into));
        store.flush_blocking().unwrap();
    }
    // After a "crash" (reopen), the unfinished one is still in flight.
    let store = h.open();
    let left = store.in_flight().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, r2.id);
    assert_eq!(left[0].state, ReminderState::Claimed);
    assert_eq!(
        store
            .reminder(&r1.invoice_id, &r1.id)
            .unwrap()
            .unwrap()
            .state,
        ReminderState::Sent
    );
}

pub(crate) fn reminders_live_in_their_invoice_record(h: &dyn Harness) {
    let store = h.open();
    // A reminder whose invoice is not stored is refused, and nothing is written.
    let orphan = reminder("INV-404", 0, t0());
    let err = store
        .transaction::<_, ()>(|tx| Ok(tx.schedule(&orphan)?))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Corrupt {
                tree: "invoices",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.pending_count().unwrap(), 0);

    // The claim writes two keys (the due entry out, the in-flight entry in) and leaves the
    // invoice record alone; the claimed copy is what reads see while it is in flight.
    let r = reminder("INV-1", 0, t0());
    schedule(&store, std::slice::from_ref(&r));
    let before = store.writer_stats().unwrap();
    let claimed = store.claim_due(t0(), 10).unwrap();
    let after = store.writer_stats().unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(after.writes - before.writes, 2);
    assert_eq!(
        store.reminder(&r.invoice_id, &r.id).unwrap().unwrap().state,
        ReminderState::Claimed
    );

    // Cancelled before any attempt: dropped. Cancelled after one: kept.
    let mut never_tried = reminder("INV-1", 1, t0() + 1.hours());
    schedule(&store, std::slice::from_ref(&never_tried));
    never_tried.state = ReminderState::Cancelled;
    write(&store, |tx| {
        tx.unschedule(&never_tried)?;
        tx.put_reminder(&never_tried).map_err(Into::into)
    });
    assert_eq!(
        store
            .reminder(&never_tried.invoice_id, &never_tried.id)
            .unwrap(),
        None
    );
    let mut tried = claimed[0].clone();
    tried.attempts = 1;
    tried.state = ReminderState::Cancelled;
    write(&store, |tx| tx.finish(&tried).map_err(Into::into));
    assert_eq!(
        store.reminder(&tried.invoice_id, &tried.id).unwrap(),
        Some(tried.clone())
    );
    assert!(store.in_flight().unwrap().is_empty());
}

pub(crate) fn unschedule_removes_the_due_entry_only(h: &dyn Harness) {
    let store = h.open();
    let r = reminder("INV-1", 0, t0());
    schedule(&store, std::slice::from_ref(&r));
    write(&store, |tx| tx.unschedule(&r).map_err(Into::into));
    assert_eq!(store.pending_count().unwrap(), 0);
    assert_eq!(store.next_due().unwrap(), None);
    assert_eq!(store.reminder(&r.invoice_id, &r.id).unwrap(), Some(r));
}

pub(crate) fn due_index_orders_pre_1970_times(h: &dyn Harness) {
    let store = h.open();
    let old = reminder("INV-1", 0, ts("1969-07-20T20:17:00Z"));
    let epoch = reminder("INV-1", 1, Timestamp::UNIX_EPOCH);
    let new = reminder("INV-1", 2, t0());
    schedule(&store, &[new.clone(), epoch.clone(), old.clone()]);
    assert_eq!(store.next_due().unwrap(), Some(old.fire_at));
    let ids: Vec<_> = store
        .claim_due(t0(), 10)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![old.id, epoch.id, new.id]);
}

pub(crate) fn aborted_transaction_writes_nothing(h: &dyn Harness) {
    let store = h.open();
    let r = reminder("INV-1", 0, t0());
    let out: Result<(), &str> = store
        .transaction(|tx| {
            tx.put_client(&client("c-1"))?;
            tx.put_invoice(&invoice("INV-1"))?;
            tx.schedule(&r)?;
            tx.log(&attempt("INV-1", t0(), "x"))?;
            tx.mark_webhook("evt", t0())?;
            // Reads see the transaction's own writes.
            assert!(tx.invoice(&InvoiceId::new("INV-1").unwrap())?.is_some());
            abort("changed my mind")
        })
        .unwrap();
    assert_eq!(out, Err("changed my mind"));
    assert_eq!(store.client(&ClientId::new("c-1").unwrap()).unwrap(), None);
    assert_eq!(
        store.invoice(&InvoiceId::new("INV-1").unwrap()).unwrap(),
        None
    );
    assert_eq!(store.reminder(&r.invoice_id, &r.id).unwrap(), None);
    assert_eq!(store.pending_count().unwrap(), 0);
    assert!(
        store
            .timeline(&InvoiceId::new("INV-1").unwrap())
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.tallies(t0() - 1.hours(), t0() + 1.hours()).unwrap(),
        Tallies::default()
    );
    let seen = store
        .transaction::<_, ()>(|tx| Ok(tx.webhook_seen("evt")?))
        .unwrap()
        .unwrap();
    assert!(!seen);
}

pub(crate) fn transaction_returns_the_closure_value(h: &dyn Harness) {
    let store = h.open();
    let n = store
        .transaction::<_, ()>(|tx| {
            tx.put_client(&client("c-1"))?;
            Ok(42)
        })
        .unwrap();
    assert_eq!(n, Ok(42));
}

pub(crate) fn timeline_is_oldest_first_and_per_invoice(h: &dyn Harness) {
    let store = h.open();
    write(&store, |tx| {
        tx.log(&attempt("INV-1", t0(), "first"))?;
        tx.log(&attempt("INV-10", t0(), "other invoice with a longer id"))?;
        tx.log(&attempt("INV-1", t0() + 1.minute(), "second"))?;
        Ok(())
    });
    write(&store, |tx| {
        tx.log(&attempt("INV-1", t0() + 2.minutes(), "third"))?;
        // Logged later but happened earlier: still sorted by time.
        tx.log(&attempt("INV-1", t0() - 1.minute(), "zeroth"))?;
        Ok(())
    });
    let details: Vec<_> = store
        .timeline(&InvoiceId::new("INV-1").unwrap())
        .unwrap()
        .into_iter()
        .map(|a| a.detail.unwrap())
        .collect();
    assert_eq!(details, vec!["zeroth", "first", "second", "third"]);
    assert_eq!(
        store
            .timeline(&InvoiceId::new("INV-10").unwrap())
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .timeline(&InvoiceId::new("INV-2").unwrap())
            .unwrap()
            .is_empty()
    );
}

pub(crate) fn tallies_count_whole_utc_hours_from_the_one_holding_from_up_to_to(h: &dyn Harness) {
    let store = h.open();
    let day = ts("2026-03-02T00:00:00Z");
    let next = day + 24.hours();
    let failed = |inv: &str, at: Timestamp| Attempt {
        outcome: AttemptOutcome::Failed,
        ..attempt(inv, at, "f")
    };
    write(&store, |tx| {
        tx.log(&attempt("INV-2", day + 5.hours(), "b"))?;
        tx.log(&attempt("INV-1", day, "a"))?;
        tx.log(&failed("INV-1", day + 30.minutes()))?;
        tx.log(&attempt("INV-1", next, "tomorrow"))?;
        tx.log(&attempt("INV-3", day - 1.nanosecond(), "yesterday"))?;
        tx.log(&attempt("INV-3", next - 1.nanosecond(), "c"))?;
        Ok(())
    });
    let t = store.tallies(day, next).unwrap();
    assert_eq!(t.get(Tally::Sent), 3, "{t:?}");
    assert_eq!(t.get(Tally::Failed), 1, "{t:?}");
    assert_eq!(t.get(Tally::Delivered), 0);
    // The hour holding `from` counts whole; the one starting at `to` does not.
    assert_eq!(
        store
            .tallies(day + 10.minutes(), day + 1.hours())
            .unwrap()
            .get(Tally::Sent),
        1
    );
    assert_eq!(store.tallies(next, day).unwrap(), Tallies::default());
    assert_eq!(
        store
            .tallies(day - 48.hours(), next + 48.hours())
            .unwrap()
            .get(Tally::Sent),
        5
    );
    // Many lines in one batch write each hour's counter once.
    let before = store.writer_stats().unwrap();
    write(&store, |tx| {
        for i in 0..10 {
            tx.log(&attempt("INV-4", day + i.minutes(), "x"))?;
        }
        Ok(())
    });
    let after = store.writer_stats().unwrap();
    assert_eq!(after.writes - before.writes, 10, "10 lines");
    assert_eq!(
        after.counter_writes - before.counter_writes,
        1,
        "one counter, written once for the batch"
    );
    assert_eq!(store.tallies(day, next).unwrap().get(Tally::Sent), 13);
}

pub(crate) fn prune_webhooks_forgets_old_deliveries(h: &dyn Harness) {
    let store = h.open();
    write(&store, |tx| {
        tx.mark_webhook("old-1", t0() - (10 * 24).hours())?;
        tx.mark_webhook("old-2", t0() - (8 * 24).hours())?;
        tx.mark_webhook("new", t0())?;
        Ok(())
    });
    assert_eq!(store.prune_webhooks(t0() - (7 * 24).hours()).unwrap(), 2);
    assert_eq!(store.prune_webhooks(t0() - (7 * 24).hours()).unwrap(), 0);
    let seen = |id: &'static str| {
        store
            .transaction::<_, ()>(move |tx| Ok(tx.webhook_seen(id)?))
            .unwrap()
            .unwrap()
    };
    assert!(!seen("old-1"));
    assert!(!seen("old-2"));
    assert!(seen("new"));
}

pub(crate) async fn durable_with_many_concurrent_waiters(h: &dyn Harness) {
    let store = h.open();
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..5u32 {
                let c = client(&format!("c-{i}-{j}"));
                store
                    .transaction::<_, ()>(|tx| Ok(tx.put_client(&c)?))
                    .unwrap()
                    .unwrap();
                store.durable().await.unwrap();
            }
        }));
    }
    let all = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    all.await.expect("durable() must not deadlock");
    let batches = store.writer_stats().unwrap().batches;
    eprintln!("320 writes shared {batches} batches (one flush each)");
    assert!((1..=320).contains(&batches));
    drop(store);

    let store = h.open();
    for i in 0..64u32 {
        for j in 0..5u32 {
            let id = ClientId::new(format!("c-{i}-{j}")).unwrap();
            assert!(store.client(&id).unwrap().is_some(), "client {id} lost");
        }
    }
}

pub(crate) async fn durable_resolves_without_writes_and_repeatedly(h: &dyn Harness) {
    let store = h.open();
    store.durable().await.unwrap();
    store.durable().await.unwrap();
    let store = Arc::new(store);
    let a = store.durable();
    let b = store.durable();
    let (a, b) = tokio::join!(a, b);
    a.unwrap();
    b.unwrap();
}

/// Polls `cond` every 20 ms for up to 20 s (recovery backs off up to 2 s between attempts).
pub(crate) async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if cond() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

pub(crate) fn invoice_view_never_shows_a_pending_slot_naming_a_finished_reminder(h: &dyn Harness) {
    // A writer keeps doing what the dispatcher does in one transaction: finish the pending
    // reminder, log it and point the invoice at the next one. A reader must never see the
    // invoice from before the commit together with the reminder or timeline from after it.
    let store = Arc::new(h.open());
    let mut inv = invoice("inv-v");
    let first = reminder("inv-v", 0, t0());
    inv.pending = Some(first.id);
    write(&store, |tx| {
        tx.put_invoice(&inv)?;
        tx.put_reminder(&first)?;
        Ok(())
    });
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            // Every step keeps one more reminder in the invoice record: a few hundred steps keep
            // the race going without making each write a large record.
            for step in 0..300u32 {
                write(&store, |tx| {
                    let mut done = reminder("inv-v", step, t0());
                    done.state = ReminderState::Sent;
                    tx.put_reminder(&done)?;
                    tx.log(&attempt("inv-v", t0(), &format!("step {step} sent")))?;
                    let next = reminder("inv-v", step + 1, t0());
                    tx.put_reminder(&next)?;
                    let mut inv = tx.invoice(&InvoiceId::new("inv-v").unwrap())?.unwrap();
                    inv.pending = Some(next.id);
                    tx.put_invoice(&inv)?;
                    Ok(())
                });
            }
        })
    };
    while !writer.is_finished() {
        let view = store
            .invoice_view(&InvoiceId::new("inv-v").unwrap())
            .unwrap()
            .unwrap();
        let next = view.next_reminder.expect("the pending reminder exists");
        assert_eq!(Some(next.id), view.invoice.pending);
        assert_eq!(next.state, ReminderState::Scheduled, "read skew: {next:?}");
        assert_eq!(
            view.timeline.len(),
            next.step_index as usize,
            "the timeline has a line for every step before the pending one"
        );
    }
    writer.join().unwrap();
}

pub(crate) fn inbox_entry(
    key: &str,
    next: Timestamp,
    state: crate::domain::InboxState,
) -> InboxEntry {
    InboxEntry {
        key: key.into(),
        payload: crate::domain::InboxPayload::Unreadable {
            provider: "stripe".into(),
            error: "test".into(),
        },
        received_at: t0(),
        state,
        attempts: 0,
        next_attempt_at: next,
        event: None,
        invoice_id: None,
        detail: None,
        updated_at: t0(),
    }
}

pub(crate) fn inbox_queue_is_read_in_due_order_and_follows_each_entry(h: &dyn Harness) {
    use crate::domain::InboxState;
    let store = h.open();
    write(&store, |tx| {
        tx.put_inbox_entry(&inbox_entry(
            "stripe:b",
            t0() + 2.minutes(),
            InboxState::Received,
        ))?;
        tx.put_inbox_entry(&inbox_entry(
            "stripe:a",
            t0() + 1.minutes(),
            InboxState::Received,
        ))?;
        tx.put_inbox_entry(&inbox_entry(
            "stripe:c",
            t0() + 9.minutes(),
            InboxState::Received,
        ))?;
        Ok(())
    });
    assert_eq!(store.inbox_due(t0(), 10).unwrap(), Vec::<String>::new());
    assert_eq!(
        store.inbox_due(t0() + 5.minutes(), 10).unwrap(),
        vec!["stripe:a", "stripe:b"]
    );
    assert_eq!(
        store.inbox_due(t0() + 5.minutes(), 1).unwrap(),
        vec!["stripe:a"]
    );
    assert_eq!(store.inbox_next_due().unwrap(), Some(t0() + 1.minutes()));
    // Retried later: it moves in the queue (no entry left at its old time); done: it leaves.
    write(&store, |tx| {
        tx.put_inbox_entry(&inbox_entry(
            "stripe:a",
            t0() + 30.minutes(),
            InboxState::Received,
        ))?;
        tx.put_inbox_entry(&inbox_entry(
            "stripe:b",
            t0() + 2.minutes(),
            InboxState::Applied,
        ))?;
        Ok(())
    });
    assert_eq!(
        store.inbox_queue().unwrap(),
        vec![
            ("stripe:c".to_owned(), t0() + 9.minutes()),
            ("stripe:a".to_owned(), t0() + 30.minutes())
        ]
    );
    assert_eq!(
        store.inbox_due(t0() + 10.minutes(), 10).unwrap(),
        vec!["stripe:c"]
    );
}

/// Contacts are found by their normalised address; sent messages by provider and id; the
/// number index follows the invoice that holds the number and is only removed by it.
pub(crate) fn contacts_messages_and_numbers_round_trip(h: &dyn Harness) {
    use crate::domain::{Contact, DeliveryState, SentMessage};
    let store = h.open();
    let mut contact = Contact::new("Ana@Example.com");
    contact.clients.insert(ClientId::new("c-1").unwrap());
    let r = reminder("INV-1", 0, t0());
    let message = SentMessage {
        provider: "twilio".into(),
        provider_message_id: "SM123".into(),
        reminder_id: r.id,
        invoice_id: r.invoice_id.clone(),
        client_id: r.client_id.clone(),
        step: "step-0".into(),
        kind: "sms".into(),
        channel_index: 0,
        recipient: "+573001234567".into(),
        state: DeliveryState::Accepted,
        sent_at: t0(),
        updated_at: t0(),
        error: None,
    };
    let (one, two) = (
        InvoiceId::new("INV-1").unwrap(),
        InvoiceId::new("INV-2").unwrap(),
    );
    write(&store, |tx| {
        tx.put_contact(&contact)?;
        tx.put_sent_message(&message)?;
        tx.index_number("FV-1", &one)?;
        Ok(())
    });
    assert_eq!(
        store.contact("ana@example.COM").unwrap(),
        Some(contact.clone())
    );
    assert_eq!(store.contact("bob@example.com").unwrap(), None);
    assert_eq!(
        store.sent_message("twilio", "SM123").unwrap(),
        Some(message)
    );
    assert_eq!(store.sent_message("whatsapp", "SM123").unwrap(), None);
    let lookup = |store: &Store| {
        store
            .transaction::<_, ()>(|tx| Ok(tx.invoice_by_number(" FV-1 ")?))
            .unwrap()
            .unwrap()
    };
    assert_eq!(lookup(&store), Some(one.clone()), "numbers are trimmed");
    write(&store, |tx| {
        tx.unindex_number("FV-1", &two).map_err(Into::into)
    });
    assert_eq!(
        lookup(&store),
        Some(one.clone()),
        "only the holder removes its number"
    );
    write(&store, |tx| {
        tx.index_number("FV-1", &two).map_err(Into::into)
    });
    assert_eq!(
        lookup(&store),
        Some(two.clone()),
        "a later invoice takes the number over"
    );
    write(&store, |tx| {
        tx.unindex_number("FV-1", &two).map_err(Into::into)
    });
    assert_eq!(lookup(&store), None);
}

/// A client's own timeline is read oldest first, whatever order it was written in, and holds
/// only that client's events.
pub(crate) fn client_timeline_is_oldest_first_and_per_client(h: &dyn Harness) {
    use crate::domain::{ContactEvent, ContactEventKind};
    let store = h.open();
    let event = |client: &str, at: Timestamp, text: &str| ContactEvent {
        at,
        client_id: ClientId::new(client).unwrap(),
        event: ContactEventKind::Inbound,
        channel: "sms".into(),
        address: "+573001234567".into(),
        text: Some(text.into()),
        provider_message_id: None,
        detail: None,
    };
    let later = event("c-1", t0() + 2.hours(), "second");
    let earlier = event("c-1", t0(), "first");
    let other = event("c-2", t0() + 1.hours(), "other client");
    write(&store, |tx| {
        tx.log_client(&later)?;
        tx.log_client(&other)?;
        tx.log_client(&earlier)?;
        Ok(())
    });
    let c1 = store
        .client_timeline(&ClientId::new("c-1").unwrap())
        .unwrap();
    assert_eq!(c1, vec![earlier, later]);
    assert_eq!(
        store
            .client_timeline(&ClientId::new("c-2").unwrap())
            .unwrap(),
        vec![other]
    );
    assert!(
        store
            .client_timeline(&ClientId::new("c-3").unwrap())
            .unwrap()
            .is_empty()
    );
}

/// Creating an invoice keeps its opening line at the head of its timeline; writing the invoice
/// again keeps its reminders and that line; only open invoices of the client are listed.
pub(crate) fn invoice_writes_keep_reminders_and_the_opening_line(h: &dyn Harness) {
    let store = h.open();
    let inv = invoice("INV-1");
    let opening = attempt("INV-1", t0() - 1.hours(), "created");
    let r = reminder("INV-1", 0, t0());
    write(&store, |tx| {
        tx.create_invoice(&inv, &opening)?;
        tx.schedule(&r)?;
        tx.log(&attempt("INV-1", t0(), "sent"))?;
        Ok(())
    });
    let mut paid = invoice("INV-2");
    paid.status = InvoiceStatus::Paid;
    let mut changed = inv.clone();
    changed.balance = Decimal::new(1, 2);
    write(&store, |tx| {
        tx.put_invoice(&changed)?;
        tx.put_invoice(&paid)?;
        tx.put_invoice(&invoice("INV-3"))?;
        Ok(())
    });
    assert_eq!(store.invoice(&inv.id).unwrap(), Some(changed));
    assert_eq!(store.reminder(&inv.id, &r.id).unwrap(), Some(r));
    let timeline = store.timeline(&inv.id).unwrap();
    assert_eq!(timeline.len(), 2, "{timeline:?}");
    assert_eq!(timeline[0], opening);
    let mut open = store
        .open_invoice_ids_of(&ClientId::new("c-1").unwrap())
        .unwrap();
    open.sort();
    assert_eq!(open, vec![inv.id.clone(), InvoiceId::new("INV-3").unwrap()]);
    assert!(
        store
            .open_invoice_ids_of(&ClientId::new("c-2").unwrap())
            .unwrap()
            .is_empty()
    );
}

/// Commands from many threads are applied one after another: a read-modify-write never loses
/// an update, and a command that aborts leaves the others' writes alone.
pub(crate) fn concurrent_commands_never_lose_an_update(h: &dyn Harness) {
    let store = h.open();
    write(&store, |tx| {
        tx.put_client(&client("c-1")).map_err(Into::into)
    });
    let id = ClientId::new("c-1").unwrap();
    let (threads, each) = (8u32, 50u32);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (store, id) = (&store, &id);
            scope.spawn(move || {
                for i in 0..each {
                    let r = store.transaction(|tx| {
                        let mut c = tx.client(id)?.unwrap();
                        c.broken_promises += 1;
                        tx.put_client(&c)?;
                        if (t + i) % 5 == 0 {
                            return abort("not this one");
                        }
                        Ok(())
                    });
                    assert!(r.unwrap().is_ok() == ((t + i) % 5 != 0));
                }
            });
        }
    });
    let kept = (0..threads)
        .flat_map(|t| (0..each).map(move |i| (t + i) % 5 != 0))
        .filter(|k| *k)
        .count();
    assert_eq!(
        store.client(&id).unwrap().unwrap().broken_promises as usize,
        kept
    );
}

/// Through `write_acked(ack, …)`: a command that writes client `aborted` then aborts answers
/// its error and keeps nothing; one that writes client `panicked` then panics resumes the panic
/// in its caller and keeps nothing.
async fn aborts_and_panics_keep_nothing(store: &Store, ack: Ack, aborted: &str, panicked: &str) {
    let c = client(aborted);
    let answer = store
        .write_acked(ack, move |tx| {
            tx.put_client(&c)?;
            abort::<(), _>("no")
        })
        .await
        .unwrap();
    assert_eq!(answer, Err("no"));
    assert_eq!(
        store.client(&ClientId::new(aborted).unwrap()).unwrap(),
        None
    );
    let panicking = store.clone();
    let c = client(panicked);
    let joined = tokio::spawn(async move {
        panicking
            .write_acked::<(), ()>(ack, move |tx| {
                tx.put_client(&c)?;
                panic!("a bug inside a command");
            })
            .await
    })
    .await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(
        store.client(&ClientId::new(panicked).unwrap()).unwrap(),
        None
    );
}

/// The async write path: returns the command's value once visible, an abort writes nothing,
/// a panic inside the command reaches the caller and the store keeps working.
pub(crate) async fn async_writes_return_values_abort_and_resume_panics(h: &dyn Harness) {
    let store = h.open();
    let got = store
        .write::<_, ()>(|tx| {
            tx.put_client(&client("c-1"))?;
            Ok(41 + 1)
        })
        .await
        .unwrap();
    assert_eq!(got, Ok(42));
    assert!(
        store
            .client(&ClientId::new("c-1").unwrap())
            .unwrap()
            .is_some()
    );
    aborts_and_panics_keep_nothing(&store, Ack::Applied, "c-2", "c-3").await;
    store.durable().await.unwrap();
    write(&store, |tx| {
        tx.put_client(&client("c-4")).map_err(Into::into)
    });
    assert!(
        store
            .client(&ClientId::new("c-4").unwrap())
            .unwrap()
            .is_some()
    );
}

/// `write_durable` answers once the command's batch is on disk (the flush that covers it
/// answers), under concurrency too; aborts, read-only commands and panics answer as `write`
/// does.
pub(crate) async fn write_durable_answers_once_on_disk(h: &dyn Harness) {
    let store = h.open();
    for i in 0..20u32 {
        let c = client(&format!("d-{i}"));
        let got = store
            .write_durable::<_, ()>(move |tx| {
                tx.put_client(&c)?;
                Ok(i)
            })
            .await
            .unwrap();
        assert_eq!(got, Ok(i));
        // Nothing else writes: the batch just applied is the latest, and it is on disk.
        let s = store.writer_stats().unwrap();
        assert!(
            s.durable_batch >= s.batches && s.batches > 0,
            "answered before its flush: {s:?}"
        );
    }
    aborts_and_panics_keep_nothing(&store, Ack::Durable, "d-aborted", "d-panic").await;
    let read_only = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        store.write_durable::<_, ()>(|tx| Ok(tx.client(&ClientId::new("d-0").unwrap())?.is_some())),
    )
    .await
    .expect("a read-only durable command is answered");
    assert_eq!(read_only.unwrap(), Ok(true));

    // 64 callers at once: every one answered (none left waiting for a flush), all kept.
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..5u32 {
                let c = client(&format!("e-{i}-{j}"));
                store
                    .write_durable::<_, ()>(move |tx| Ok(tx.put_client(&c)?))
                    .await
                    .unwrap()
                    .unwrap();
            }
        }));
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .expect("write_durable must not leave a caller waiting");
    let s = store.writer_stats().unwrap();
    assert!(s.durable_batch >= s.batches, "{s:?}");
    drop(store);

    let store = h.open();
    for id in ["d-0", "d-19", "e-0-0", "e-63-4"] {
        assert!(
            store.client(&ClientId::new(id).unwrap()).unwrap().is_some(),
            "{id} lost"
        );
    }
    for id in ["d-aborted", "d-panic"] {
        assert_eq!(store.client(&ClientId::new(id).unwrap()).unwrap(), None);
    }
}

/// The async claim takes exactly what the blocking one would: due reminders once, earliest
/// first, none of the future ones; finishing one takes it out of the in-flight set.
pub(crate) async fn async_claims_take_each_due_reminder_once(h: &dyn Harness) {
    let store = h.open();
    let rs: Vec<Reminder> = (0..6)
        .map(|i| reminder(&format!("INV-{i}"), 0, t0() + (i as i64).minutes()))
        .collect();
    schedule(&store, &rs);
    let now = t0() + 3.minutes();
    let (a, b) = tokio::join!(store.claim_due_async(now, 3), store.claim_due_async(now, 3));
    // Two concurrent callers may both aim at the first three; each is claimed by one of them
    // only (the other gets fewer), and a later claim takes what is left of the due ones.
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.iter().all(|r| !b.iter().any(|o| o.id == r.id)),
        "claimed twice"
    );
    let rest = store.claim_due_async(now, 10).await.unwrap();
    let mut claimed: Vec<Reminder> = a.into_iter().chain(b).chain(rest).collect();
    claimed.sort_by_key(|r| r.fire_at);
    let ids: Vec<ReminderId> = claimed.iter().map(|r| r.id).collect();
    assert_eq!(ids, rs[..4].iter().map(|r| r.id).collect::<Vec<_>>());
    assert!(claimed.iter().all(|r| r.state == ReminderState::Claimed));
    assert_eq!(store.in_flight().unwrap().len(), 4);
    assert!(store.claim_due_async(now, 10).await.unwrap().is_empty());
    let mut done = claimed[0].clone();
    done.state = ReminderState::Sent;
    write(&store, |tx| tx.finish(&done).map_err(Into::into));
    assert_eq!(store.in_flight().unwrap().len(), 3);
    assert_eq!(
        store.reminder(&done.invoice_id, &done.id).unwrap(),
        Some(done)
    );
    assert_eq!(store.next_due().unwrap(), Some(rs[4].fire_at));
}

/// Closing makes everything durable: later calls fail with [`StoreError::Closed`], nothing
/// is lost, and the next open finds every record.
pub(crate) fn close_keeps_everything_and_refuses_later_calls(h: &dyn Harness) {
    let r = reminder("INV-1", 0, t0());
    {
        let store = h.open();
        schedule(&store, std::slice::from_ref(&r));
        write(&store, |tx| {
            tx.log(&attempt("INV-1", t0(), "sent")).map_err(Into::into)
        });
        store.close().unwrap();
        assert!(matches!(
            store.invoice(&r.invoice_id),
            Err(StoreError::Closed)
        ));
        let late = store.transaction::<_, ()>(|tx| Ok(tx.put_client(&client("c-9"))?));
        assert!(matches!(late, Err(StoreError::Closed)), "{late:?}");
        assert!(store.close().is_ok(), "closing twice is harmless");
    }
    let store = h.open();
    assert_eq!(
        store.reminder(&r.invoice_id, &r.id).unwrap(),
        Some(r.clone())
    );
    assert_eq!(store.next_due().unwrap(), Some(r.fire_at));
    assert_eq!(store.timeline(&r.invoice_id).unwrap().len(), 1);
    assert_eq!(store.client(&ClientId::new("c-9").unwrap()).unwrap(), None);
}

/// `id` as an [`InvoiceId`].
fn iid(id: &str) -> InvoiceId {
    InvoiceId::new(id).unwrap()
}

/// `id` as a [`ClientId`].
fn cid(id: &str) -> ClientId {
    ClientId::new(id).unwrap()
}

/// Invoice `id` of client `client`.
fn invoice_of(id: &str, client: &str) -> Invoice {
    Invoice {
        client_id: cid(client),
        ..invoice(id)
    }
}

/// `ids` as invoice ids.
fn iids(ids: &[&str]) -> Vec<InvoiceId> {
    ids.iter().map(|i| iid(i)).collect()
}

/// The client's invoice index, read in a command of its own.
fn listed_in_tx(store: &Store, client: &str) -> Vec<InvoiceId> {
    store
        .transaction::<_, ()>(|tx| Ok(tx.invoice_ids_of_client(&cid(client))?))
        .unwrap()
        .unwrap()
}

/// An invoice created or written is listed for its client, and only its client, in invoice id
/// (byte) order: inside the command that wrote it, in later commands, outside commands, and
/// after a reopen. An aborted command lists nothing it wrote.
pub(crate) fn invoices_are_listed_for_their_client_only(h: &dyn Harness) {
    {
        let store = h.open();
        let seen = store
            .transaction::<_, ()>(|tx| {
                tx.create_invoice(&invoice_of("INV-b", "c-1"), &attempt("INV-b", t0(), "new"))?;
                tx.put_invoice(&invoice_of("INV-a", "c-1"))?;
                tx.create_invoice(&invoice_of("INV-c", "c-10"), &attempt("INV-c", t0(), "new"))?;
                tx.put_invoice(&invoice_of("INV-d", "c-2"))?;
                let mut seen = Vec::new();
                for c in ["c-1", "c-10", "c-2", "c-3"] {
                    seen.push(tx.invoice_ids_of_client(&cid(c))?);
                }
                Ok(seen)
            })
            .unwrap()
            .unwrap();
        let want = vec![
            iids(&["INV-a", "INV-b"]),
            iids(&["INV-c"]),
            iids(&["INV-d"]),
            vec![],
        ];
        assert_eq!(seen, want, "inside the command that wrote them");
        for (c, ids) in ["c-1", "c-10", "c-2", "c-3"].iter().zip(&want) {
            assert_eq!(&listed_in_tx(&store, c), ids, "in a later command, {c}");
            assert_eq!(&store.invoice_ids_of_client(&cid(c)).unwrap(), ids, "{c}");
        }
        // A bounded read of the lines: all of them, in the same order, up to the bound; none
        // past it.
        let lined = |max: usize| {
            store
                .invoice_lines_of_client_within(&cid("c-1"), max)
                .unwrap()
                .map(|lines| lines.into_iter().map(|(id, _)| id).collect::<Vec<_>>())
        };
        assert_eq!(lined(5), Some(iids(&["INV-a", "INV-b"])));
        assert_eq!(lined(2), Some(iids(&["INV-a", "INV-b"])));
        assert_eq!(lined(1), None);
        assert_eq!(lined(0), None);
        let aborted = store.transaction(|tx| {
            tx.put_invoice(&invoice_of("INV-0", "c-1"))?;
            assert_eq!(
                tx.invoice_ids_of_client(&cid("c-1"))?,
                iids(&["INV-0", "INV-a", "INV-b"])
            );
            abort::<(), _>("changed my mind")
        });
        assert_eq!(aborted.unwrap(), Err("changed my mind"));
        assert_eq!(
            store.invoice_ids_of_client(&cid("c-1")).unwrap(),
            iids(&["INV-a", "INV-b"]),
            "an aborted command lists nothing"
        );
        store.flush_blocking().unwrap();
    }
    let store = h.open();
    assert_eq!(
        store.invoice_ids_of_client(&cid("c-1")).unwrap(),
        iids(&["INV-a", "INV-b"]),
        "after a reopen"
    );
    assert_eq!(
        store.invoice_ids_of_client(&cid("c-10")).unwrap(),
        iids(&["INV-c"])
    );
}

/// Commands applied in one batch see the index entries written by the commands before them:
/// many concurrent commands each create an invoice and list the client's, and the listings
/// grow one invoice at a time, each holding every one before it. A command moving an invoice
/// to another client, among them, makes every command see it under exactly one client.
pub(crate) async fn commands_of_a_batch_see_each_others_index_entries(h: &dyn Harness) {
    let store = h.open();
    write(&store, |tx| {
        tx.put_invoice(&invoice_of("INV-m", "c-1"))
            .map_err(Into::into)
    });
    let n = 48;
    let commands = (0..n).map(|i| {
        let store = store.clone();
        async move {
            store
                .write::<_, ()>(move |tx| {
                    if i == n / 2 {
                        tx.put_invoice(&invoice_of("INV-m", "c-2"))?;
                    }
                    let id = format!("INV-{i:02}");
                    tx.create_invoice(&invoice_of(&id, "c-1"), &attempt(&id, t0(), "new"))?;
                    let c1 = tx.invoice_ids_of_client(&cid("c-1"))?;
                    let c2 = tx.invoice_ids_of_client(&cid("c-2"))?;
                    Ok((c1, c2))
                })
                .await
                .unwrap()
                .unwrap()
        }
    });
    let mut seen = futures::future::join_all(commands).await;
    let m = iid("INV-m");
    for (c1, c2) in &seen {
        assert!(
            c1.contains(&m) != c2.contains(&m),
            "INV-m under exactly one client: {c1:?} / {c2:?}"
        );
        assert!(c2.iter().all(|i| *i == m), "{c2:?}");
        assert!(c1.windows(2).all(|w| w[0] < w[1]), "in id order: {c1:?}");
    }
    let created = |ids: &[InvoiceId]| ids.iter().filter(|i| **i != m).count();
    seen.sort_by_key(|(c1, _)| created(c1));
    for (k, (c1, _)) in seen.iter().enumerate() {
        assert_eq!(
            created(c1),
            k + 1,
            "each command sees the ones before it and its own"
        );
        if let Some((next, _)) = seen.get(k + 1) {
            assert!(c1.iter().filter(|i| **i != m).all(|i| next.contains(i)));
        }
    }
    let listed = store.invoice_ids_of_client(&cid("c-1")).unwrap();
    assert_eq!(listed.len(), n);
    assert!(!listed.contains(&m));
    assert_eq!(store.invoice_ids_of_client(&cid("c-2")).unwrap(), vec![m]);
}

/// Writing an invoice under another client moves its index entry, also back and forth inside
/// one command: the invoice is listed under its last client only.
pub(crate) fn moving_an_invoice_moves_its_index_entry(h: &dyn Harness) {
    let store = h.open();
    write(&store, |tx| {
        tx.create_invoice(&invoice_of("INV-1", "c-1"), &attempt("INV-1", t0(), "new"))?;
        tx.put_invoice(&invoice_of("INV-2", "c-1"))?;
        Ok(())
    });
    let before = store.writer_stats().unwrap();
    let inside = store
        .transaction::<_, ()>(|tx| {
            tx.put_invoice(&invoice_of("INV-1", "c-2"))?;
            Ok((
                tx.invoice_ids_of_client(&cid("c-1"))?,
                tx.invoice_ids_of_client(&cid("c-2"))?,
            ))
        })
        .unwrap()
        .unwrap();
    assert_eq!(inside, (iids(&["INV-2"]), iids(&["INV-1"])));
    let after = store.writer_stats().unwrap();
    assert_eq!(
        after.writes - before.writes,
        3,
        "the record, the old entry out, the new entry in"
    );
    assert_eq!(
        store.invoice_ids_of_client(&cid("c-1")).unwrap(),
        iids(&["INV-2"])
    );
    assert_eq!(
        store.invoice_ids_of_client(&cid("c-2")).unwrap(),
        iids(&["INV-1"])
    );
    // Away and back in one command, then to a third client through a new creation line.
    write(&store, |tx| {
        tx.put_invoice(&invoice_of("INV-2", "c-3"))?;
        tx.put_invoice(&invoice_of("INV-2", "c-1"))?;
        tx.create_invoice(
            &invoice_of("INV-1", "c-3"),
            &attempt("INV-1", t0(), "again"),
        )?;
        Ok(())
    });
    for (c, ids) in [("c-1", &["INV-2"][..]), ("c-2", &[]), ("c-3", &["INV-1"])] {
        assert_eq!(
            store.invoice_ids_of_client(&cid(c)).unwrap(),
            iids(ids),
            "{c}"
        );
        assert_eq!(listed_in_tx(&store, c), iids(ids), "{c}, in a command");
    }
}

/// The client's index entry carries the invoice's [`IndexLine`] (what a statement shows) and
/// is written only when the invoice is new, moves to another client, or changes that line: a
/// rewrite that changes nothing, or only what no statement shows, writes the record alone.
pub(crate) fn rewriting_an_unchanged_invoice_writes_no_index_key(h: &dyn Harness) {
    let store = h.open();
    let inv = invoice_of("INV-1", "c-1");
    let line = |store: &Store| {
        let lines = store
            .invoice_lines_of_client_within(&cid("c-1"), 10)
            .unwrap()
            .unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0].0, iid("INV-1"));
        lines[0].1.clone()
    };
    let before = store.writer_stats().unwrap();
    write(&store, |tx| {
        tx.create_invoice(&inv, &attempt("INV-1", t0(), "new"))?;
        tx.put_invoice(&inv)?;
        tx.put_invoice(&inv)?;
        Ok(())
    });
    let created = store.writer_stats().unwrap();
    assert_eq!(
        created.writes - before.writes,
        2,
        "the record and its entry"
    );
    assert_eq!(line(&store), IndexLine::of(&inv));
    let IndexLine::Open(open) = line(&store) else {
        panic!("an open invoice with a balance has an open line");
    };
    assert_eq!(
        (open.number.as_str(), open.balance, open.due_at),
        (inv.number.as_str(), inv.balance, inv.due_at)
    );
    write(&store, |tx| tx.put_invoice(&inv).map_err(Into::into));
    let same = store.writer_stats().unwrap();
    assert_eq!(same.writes - created.writes, 1, "the record only");

    // Metadata is not on a statement: the record only.
    let mut tagged = inv.clone();
    tagged.metadata.insert("erp".into(), "7".into());
    write(&store, |tx| tx.put_invoice(&tagged).map_err(Into::into));
    let after_tag = store.writer_stats().unwrap();
    assert_eq!(after_tag.writes - same.writes, 1, "the record only");

    // A part payment changes the balance a statement shows: the record and its entry.
    let mut part = tagged.clone();
    part.balance = Decimal::new(1, 2);
    write(&store, |tx| tx.put_invoice(&part).map_err(Into::into));
    let after_part = store.writer_stats().unwrap();
    assert_eq!(
        after_part.writes - after_tag.writes,
        2,
        "the record and its entry"
    );
    assert_eq!(line(&store), IndexLine::of(&part));

    // Paid: settled, left out of statements.
    let mut paid = part.clone();
    paid.status = InvoiceStatus::Paid;
    write(&store, |tx| tx.put_invoice(&paid).map_err(Into::into));
    let after = store.writer_stats().unwrap();
    assert_eq!(
        after.writes - after_part.writes,
        2,
        "the record and its entry"
    );
    assert_eq!(line(&store), IndexLine::Settled);
    assert_eq!(
        store.invoice_ids_of_client(&cid("c-1")).unwrap(),
        iids(&["INV-1"])
    );

    // Moved to another client: the old entry goes, the new one has the line; after a reopen too.
    let mut moved = paid.clone();
    moved.client_id = cid("c-2");
    moved.status = InvoiceStatus::Open;
    write(&store, |tx| tx.put_invoice(&moved).map_err(Into::into));
    drop(store);
    let store = h.open();
    assert_eq!(
        store
            .invoice_lines_of_client_within(&cid("c-1"), 10)
            .unwrap(),
        Some(vec![])
    );
    assert_eq!(
        store
            .invoice_lines_of_client_within(&cid("c-2"), 10)
            .unwrap(),
        Some(vec![(iid("INV-1"), IndexLine::of(&moved))])
    );
    assert_eq!(
        store
            .invoice_lines_of_client_within(&cid("c-2"), 0)
            .unwrap(),
        None,
        "more than 0: none decoded"
    );
}

/// [`Store::open_invoice_ids_of`] lists the client's open invoices only, in invoice id order,
/// and follows payments and moves.
pub(crate) fn open_invoice_ids_of_lists_only_open_invoices(h: &dyn Harness) {
    let store = h.open();
    let paid = |id: &str, client: &str| Invoice {
        status: InvoiceStatus::Paid,
        ..invoice_of(id, client)
    };
    write(&store, |tx| {
        tx.put_invoice(&invoice_of("INV-3", "c-1"))?;
        tx.put_invoice(&paid("INV-2", "c-1"))?;
        tx.create_invoice(&invoice_of("INV-1", "c-1"), &attempt("INV-1", t0(), "new"))?;
        tx.put_invoice(&invoice_of("INV-5", "c-2"))?;
        tx.put_invoice(&paid("INV-6", "c-2"))?;
        Ok(())
    });
    let open = |c: &str| store.open_invoice_ids_of(&cid(c)).unwrap();
    assert_eq!(open("c-1"), iids(&["INV-1", "INV-3"]));
    assert_eq!(open("c-2"), iids(&["INV-5"]));
    assert_eq!(open("c-9"), vec![]);
    assert_eq!(
        store.invoice_ids_of_client(&cid("c-1")).unwrap(),
        iids(&["INV-1", "INV-2", "INV-3"]),
        "the index lists paid ones too"
    );
    write(&store, |tx| {
        tx.put_invoice(&paid("INV-3", "c-1"))?;
        tx.put_invoice(&invoice_of("INV-1", "c-2"))?;
        Ok(())
    });
    assert_eq!(open("c-1"), vec![]);
    assert_eq!(open("c-2"), iids(&["INV-1", "INV-5"]));
}

/// The whole walk of [`Store::client_ids_after`] in pages of `limit`, with each page.
fn client_pages(store: &Store, limit: usize) -> Vec<Vec<ClientId>> {
    let mut pages = Vec::new();
    let mut after: Option<ClientId> = None;
    loop {
        let page = store.client_ids_after(after.as_ref(), limit).unwrap();
        assert!(page.len() <= limit, "{page:?} is longer than {limit}");
        let done = page.len() < limit;
        after = page.last().cloned().or(after);
        pages.push(page);
        if done {
            return pages;
        }
    }
}

/// [`Store::client_ids_after`] lists client ids only, in ascending id (byte) order, after the
/// id given (exclusive), at most `limit` of them; ids sharing a prefix (`c-1`, `c-10`, `c-1x`)
/// are ordered by their bytes; a walk in pages sees every client once, also when clients are
/// added while it runs; the ids survive a reopen.
pub(crate) fn client_ids_are_paged_in_id_order(h: &dyn Harness) {
    let ids = ["c-2", "c-1x", "a", "c-10", "c-1", "b.9", "Z", "c-1-a"];
    // Byte order: uppercase before lowercase, '-' (0x2d) before '0' (0x30) before 'x'.
    let sorted = ["Z", "a", "b.9", "c-1", "c-1-a", "c-10", "c-1x", "c-2"];
    {
        let store = h.open();
        assert_eq!(
            store.client_ids_after(None, 10).unwrap(),
            vec![],
            "empty store"
        );
        // Other records (invoices of those clients and of others, timelines, contacts, the
        // client's own timeline, webhooks) never show up as clients.
        write(&store, |tx| {
            tx.create_invoice(&invoice_of("c-0", "c-1"), &attempt("c-0", t0(), "new"))?;
            tx.put_invoice(&invoice_of("INV-1", "zz-no-record"))?;
            tx.log(&attempt("c-3", t0(), "a line"))?;
            tx.mark_webhook("c-4", t0())?;
            tx.put_contact(&crate::domain::Contact::new("c5@example.com"))?;
            tx.index_number("c-6", &iid("INV-1"))?;
            Ok(())
        });
        assert_eq!(
            store.client_ids_after(None, 10).unwrap(),
            vec![],
            "only clients are listed"
        );
        write(&store, |tx| {
            for id in ids {
                tx.put_client(&client(id))?;
            }
            Ok(())
        });
        let all: Vec<ClientId> = sorted.iter().map(|c| cid(c)).collect();
        assert_eq!(
            store.client_ids_after(None, 100).unwrap(),
            all,
            "byte order"
        );
        assert_eq!(store.client_ids_after(None, 3).unwrap(), all[..3], "limit");
        assert_eq!(store.client_ids_after(None, 0).unwrap(), vec![], "limit 0");
        assert_eq!(
            store.client_ids_after(Some(&cid("c-1")), 2).unwrap(),
            cids(&["c-1-a", "c-10"]),
            "after is exclusive, and a prefix of longer ids"
        );
        assert_eq!(
            store.client_ids_after(Some(&cid("c-10")), 10).unwrap(),
            cids(&["c-1x", "c-2"])
        );
        assert_eq!(
            store.client_ids_after(Some(&cid("c-1b")), 10).unwrap(),
            cids(&["c-1x", "c-2"]),
            "after need not be stored"
        );
        assert_eq!(
            store.client_ids_after(Some(&cid("c-2")), 10).unwrap(),
            vec![],
            "after the last"
        );
        assert_eq!(
            store.client_ids_after(Some(&cid("0")), 1).unwrap(),
            cids(&["Z"]),
            "after one sorting before every id"
        );
        for limit in 1..=9 {
            let pages = client_pages(&store, limit);
            let walked: Vec<ClientId> = pages.into_iter().flatten().collect();
            assert_eq!(walked, all, "pages of {limit}");
        }
        // Clients added during a walk: one sorting after the page just read is listed, one
        // before it is not, and nothing is listed twice.
        let first = store.client_ids_after(None, 4).unwrap();
        assert_eq!(first, all[..4]);
        write(&store, |tx| {
            tx.put_client(&client("b.0"))?;
            tx.put_client(&client("c-1z"))?;
            tx.put_client(&client("c-1"))?; // rewritten: still listed once
            Ok(())
        });
        let rest = store.client_ids_after(first.last(), 100).unwrap();
        assert_eq!(rest, cids(&["c-1-a", "c-10", "c-1x", "c-1z", "c-2"]));
        store.flush_blocking().unwrap();
    }
    let store = h.open();
    assert_eq!(
        store.client_ids_after(Some(&cid("c-1x")), 10).unwrap(),
        cids(&["c-1z", "c-2"]),
        "after a reopen"
    );
    assert_eq!(store.client_ids_after(None, 100).unwrap().len(), 10);
}

/// [`Store::put_meta`] stores a marker that [`Store::meta`] reads back, that survives a
/// reopen with the commands applied before it, that a later write replaces, and that is kept
/// apart from the backend's own keys: a marker named like the schema version neither reads it
/// nor breaks the next open. Markers are not clients. A new store already holds the facts
/// backfill's marker.
pub(crate) fn meta_markers_survive_a_reopen_apart_from_the_schema(h: &dyn Harness) {
    {
        let store = h.open();
        assert!(
            store.meta(super::FACTS_BACKFILL_MARKER).unwrap().is_some(),
            "a new store holds only clients written with their facts: no backfill to run"
        );
        assert_eq!(store.meta("a_pass").unwrap(), None);
        assert_eq!(store.meta("schema_version").unwrap(), None);
        write(&store, |tx| {
            tx.put_client(&client("c-1")).map_err(Into::into)
        });
        store.put_meta("a_pass", b"1").unwrap();
        store.put_meta("schema_version", b"not a version").unwrap();
        store.put_meta("empty", b"").unwrap();
        assert_eq!(store.meta("a_pass").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.meta("empty").unwrap(), Some(Vec::new()));
        assert_eq!(store.meta("a_pa").unwrap(), None, "no prefix match");
        // Neither flushed nor closed by the caller.
    }
    let store = h.open();
    assert_eq!(store.meta("a_pass").unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        store.meta("schema_version").unwrap(),
        Some(b"not a version".to_vec())
    );
    assert!(store.client(&cid("c-1")).unwrap().is_some());
    assert_eq!(store.client_ids_after(None, 10).unwrap(), cids(&["c-1"]));
    store.put_meta("a_pass", b"2").unwrap();
    assert_eq!(store.meta("a_pass").unwrap(), Some(b"2".to_vec()));
}

/// `ids` as client ids.
fn cids(ids: &[&str]) -> Vec<ClientId> {
    ids.iter().map(|i| cid(i)).collect()
}

/// Runs every conformance check as a named test against the backend `$harness` opens.
#[macro_export]
#[doc(hidden)]
macro_rules! conformance_suite {
    ($harness:expr) => {
        #[test]
        fn invoice_ids_are_paged_in_id_order() {
            $crate::store::conformance::listing::invoice_ids_are_paged_in_id_order(&$harness);
        }
        #[test]
        fn due_entries_list_a_time_range_in_pages() {
            $crate::store::conformance::listing::due_entries_list_a_time_range_in_pages(&$harness);
        }
        #[test]
        fn tasks_are_written_with_their_command_and_survive_reopen() {
            $crate::store::conformance::tasks::tasks_are_written_with_their_command_and_survive_reopen(&$harness);
        }
        #[test]
        fn tasks_index_follows_each_task_state() {
            $crate::store::conformance::tasks::tasks_index_follows_each_task_state(&$harness);
        }
        #[test]
        fn events_are_written_with_their_command_and_survive_reopen() {
            $crate::store::conformance::events::events_are_written_with_their_command_and_survive_reopen(&$harness);
        }
        #[test]
        fn events_index_follows_each_event_state() {
            $crate::store::conformance::events::events_index_follows_each_event_state(&$harness);
        }
        #[test]
        fn prune_events_forgets_only_old_delivered_ones() {
            $crate::store::conformance::events::prune_events_forgets_only_old_delivered_ones(&$harness);
        }
        #[tokio::test]
        async fn events_written_is_notified_after_a_due_event_is_written() {
            $crate::store::conformance::events::events_written_is_notified_after_a_due_event_is_written(&$harness).await;
        }
        #[test]
        fn close_keeps_everything_and_refuses_later_calls() {
            $crate::store::conformance::close_keeps_everything_and_refuses_later_calls(&$harness);
        }
        #[test]
        fn records_round_trip_and_survive_reopen() {
            $crate::store::conformance::records_round_trip_and_survive_reopen(&$harness);
        }
        #[test]
        fn claim_due_claims_due_ones_exactly_once() {
            $crate::store::conformance::claim_due_claims_due_ones_exactly_once(&$harness);
        }
        #[test]
        fn claim_due_respects_limit_and_zero() {
            $crate::store::conformance::claim_due_respects_limit_and_zero(&$harness);
        }
        #[test]
        fn concurrent_claims_never_claim_twice() {
            $crate::store::conformance::concurrent_claims_never_claim_twice(&$harness);
        }
        #[test]
        fn in_flight_after_claim_and_after_finish() {
            $crate::store::conformance::in_flight_after_claim_and_after_finish(&$harness);
        }
        #[test]
        fn reminders_live_in_their_invoice_record() {
            $crate::store::conformance::reminders_live_in_their_invoice_record(&$harness);
        }
        #[test]
        fn unschedule_removes_the_due_entry_only() {
            $crate::store::conformance::unschedule_removes_the_due_entry_only(&$harness);
        }
        #[test]
        fn due_index_orders_pre_1970_times() {
            $crate::store::conformance::due_index_orders_pre_1970_times(&$harness);
        }
        #[test]
        fn aborted_transaction_writes_nothing() {
            $crate::store::conformance::aborted_transaction_writes_nothing(&$harness);
        }
        #[test]
        fn transaction_returns_the_closure_value() {
            $crate::store::conformance::transaction_returns_the_closure_value(&$harness);
        }
        #[test]
        fn timeline_is_oldest_first_and_per_invoice() {
            $crate::store::conformance::timeline_is_oldest_first_and_per_invoice(&$harness);
        }
        #[test]
        fn tallies_count_whole_utc_hours_from_the_one_holding_from_up_to_to() {
            $crate::store::conformance::tallies_count_whole_utc_hours_from_the_one_holding_from_up_to_to(&$harness);
        }
        #[test]
        fn prune_webhooks_forgets_old_deliveries() {
            $crate::store::conformance::prune_webhooks_forgets_old_deliveries(&$harness);
        }
        #[test]
        fn invoice_view_never_shows_a_pending_slot_naming_a_finished_reminder() {
            $crate::store::conformance::invoice_view_never_shows_a_pending_slot_naming_a_finished_reminder(&$harness);
        }
        #[test]
        fn inbox_queue_is_read_in_due_order_and_follows_each_entry() {
            $crate::store::conformance::inbox_queue_is_read_in_due_order_and_follows_each_entry(&$harness);
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn durable_with_many_concurrent_waiters() {
            $crate::store::conformance::durable_with_many_concurrent_waiters(&$harness).await;
        }
        #[tokio::test]
        async fn durable_resolves_without_writes_and_repeatedly() {
            $crate::store::conformance::durable_resolves_without_writes_and_repeatedly(&$harness).await;
        }
        #[test]
        fn contacts_messages_and_numbers_round_trip() {
            $crate::store::conformance::contacts_messages_and_numbers_round_trip(&$harness);
        }
        #[test]
        fn client_timeline_is_oldest_first_and_per_client() {
            $crate::store::conformance::client_timeline_is_oldest_first_and_per_client(&$harness);
        }
        #[test]
        fn invoice_writes_keep_reminders_and_the_opening_line() {
            $crate::store::conformance::invoice_writes_keep_reminders_and_the_opening_line(&$harness);
        }
        #[test]
        fn concurrent_commands_never_lose_an_update() {
            $crate::store::conformance::concurrent_commands_never_lose_an_update(&$harness);
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_writes_return_values_abort_and_resume_panics() {
            $crate::store::conformance::async_writes_return_values_abort_and_resume_panics(&$harness).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn write_durable_answers_once_on_disk() {
            $crate::store::conformance::write_durable_answers_once_on_disk(&$harness).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn async_claims_take_each_due_reminder_once() {
            $crate::store::conformance::async_claims_take_each_due_reminder_once(&$harness).await;
        }
        #[test]
        fn invoices_are_listed_for_their_client_only() {
            $crate::store::conformance::invoices_are_listed_for_their_client_only(&$harness);
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn commands_of_a_batch_see_each_others_index_entries() {
            $crate::store::conformance::commands_of_a_batch_see_each_others_index_entries(&$harness).await;
        }
        #[test]
        fn moving_an_invoice_moves_its_index_entry() {
            $crate::store::conformance::moving_an_invoice_moves_its_index_entry(&$harness);
        }
        #[test]
        fn rewriting_an_unchanged_invoice_writes_no_index_key() {
            $crate::store::conformance::rewriting_an_unchanged_invoice_writes_no_index_key(&$harness);
        }
        #[test]
        fn open_invoice_ids_of_lists_only_open_invoices() {
            $crate::store::conformance::open_invoice_ids_of_lists_only_open_invoices(&$harness);
        }
        #[test]
        fn client_ids_are_paged_in_id_order() {
            $crate::store::conformance::client_ids_are_paged_in_id_order(&$harness);
        }
        #[test]
        fn meta_markers_survive_a_reopen_apart_from_the_schema() {
            $crate::store::conformance::meta_markers_survive_a_reopen_apart_from_the_schema(&$harness);
        }
    };
}
