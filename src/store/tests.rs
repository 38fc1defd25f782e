//! Store tests against real sled databases in temporary directories.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{Timestamp, ToSpan};
use rust_decimal::Decimal;

use super::*;
use crate::domain::{AttemptOutcome, Currency, Due, InvoiceStatus};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn t0() -> Timestamp {
    ts("2026-03-01T12:00:00Z")
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(
        dir.path(),
        StoreOptions {
            cache_capacity_bytes: 4 << 20,
            flush_every_ms: None,
        },
    )
    .unwrap()
}

fn client(id: &str) -> Client {
    Client {
        id: ClientId::new(id).unwrap(),
        name: "Ana".into(),
        email: Some("ana@example.com".into()),
        phone: None,
        whatsapp: None,
        locale: Some("es-CO".into()),
        timezone: Some("America/Bogota".into()),
        country: Some("CO".into()),
        segment: None,
        preferred_channels: vec!["email".into()],
        tags: vec![],
        credits: Default::default(),
        broken_promises: 0,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn invoice(id: &str) -> Invoice {
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
    }
}

fn reminder(inv: &str, step: u32, fire_at: Timestamp) -> Reminder {
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

fn attempt(inv: &str, at: Timestamp, detail: &str) -> Attempt {
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
fn write(store: &Store, f: impl Fn(&mut Tx<'_>) -> Result<(), TxError<()>>) {
    store.transaction(f).unwrap().unwrap();
}

/// Schedules `rs`, storing each one's invoice first when it is not stored yet (a reminder is
/// kept in its invoice's record).
fn schedule(store: &Store, rs: &[Reminder]) {
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

#[test]
fn records_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let r = reminder("INV-1", 0, t0());
    {
        let store = open(&dir);
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
    let store = open(&dir);
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

#[test]
fn new_store_gets_schema_version_and_other_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        let key = MetaKey(SCHEMA_KEY.into());
        assert_eq!(
            store.inner().unwrap().trees.meta.get(&key, "test").unwrap(),
            Some(SCHEMA_VERSION)
        );
        store
            .inner()
            .unwrap()
            .trees
            .meta
            .insert(&key, &7, "test")
            .unwrap();
        store.flush_blocking().unwrap();
    }
    let err = Store::open(dir.path(), StoreOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            StoreError::SchemaMismatch {
                found: 7,
                expected: SCHEMA_VERSION
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("restore a backup") && msg.contains("schema 7"),
        "{msg}"
    );
}

#[test]
fn missing_schema_version_with_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        write(&store, |tx| {
            tx.put_client(&client("c-1")).map_err(Into::into)
        });
        store.inner().unwrap().trees.meta.raw_remove(SCHEMA_KEY);
        store.flush_blocking().unwrap();
    }
    let err = Store::open(dir.path(), StoreOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, StoreError::Corrupt { tree: "meta", .. }),
        "{err}"
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(&dir);
    let err = Store::open(dir.path(), StoreOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(err.to_string().contains("another plazo process"), "{err}");
}

#[test]
fn opening_creates_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/store");
    let store = Store::open(&nested, StoreOptions::default()).unwrap();
    assert_eq!(store.pending_count().unwrap(), 0);
    assert!(nested.is_dir());
}

#[test]
fn claim_due_claims_due_ones_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

#[test]
fn claim_due_respects_limit_and_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

#[test]
fn claim_due_removes_stale_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let missing = reminder("INV-1", 0, t0());
    let sent = ReminderState::Sent;
    let mut done = reminder("INV-1", 1, t0());
    let moved = reminder("INV-1", 2, t0() - 1.hour());
    let ok = reminder("INV-1", 3, t0());
    schedule(&store, &[done.clone(), moved.clone(), ok.clone()]);
    // A due entry with no record, a record no longer Scheduled, and an entry left at an old time.
    store
        .inner()
        .unwrap()
        .trees
        .due
        .insert(
            &DueKey {
                at: missing.fire_at,
                id: missing.id,
                invoice: missing.invoice_id.clone(),
            },
            &(),
            "t",
        )
        .unwrap();
    done.state = sent;
    let mut moved_later = moved.clone();
    moved_later.fire_at = t0() + 24.hours();
    write(&store, |tx| {
        tx.put_reminder(&done)?;
        tx.schedule(&moved_later)?;
        Ok(())
    });
    assert_eq!(store.pending_count().unwrap(), 5);

    let claimed = store.claim_due(t0(), 10).unwrap();
    assert_eq!(
        claimed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ok.id]
    );
    assert_eq!(
        store.pending_count().unwrap(),
        1,
        "only the moved reminder's new entry is left"
    );
    assert_eq!(
        store
            .reminder(&done.invoice_id, &done.id)
            .unwrap()
            .unwrap()
            .state,
        ReminderState::Sent
    );
    assert_eq!(
        store
            .reminder(&moved.invoice_id, &moved.id)
            .unwrap()
            .unwrap()
            .state,
        ReminderState::Scheduled
    );
    assert_eq!(store.in_flight().unwrap().len(), 1);
}

#[test]
fn concurrent_claims_never_claim_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

#[test]
fn in_flight_after_claim_and_after_finish() {
    let dir = tempfile::tempdir().unwrap();
    let r1 = reminder("INV-1", 0, t0());
    let r2 = reminder("INV-1", 1, t0());
    {
        let store = open(&dir);
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
    let store = open(&dir);
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

#[test]
fn reminders_live_in_their_invoice_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

#[test]
fn unschedule_removes_the_due_entry_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let r = reminder("INV-1", 0, t0());
    schedule(&store, std::slice::from_ref(&r));
    write(&store, |tx| tx.unschedule(&r).map_err(Into::into));
    assert_eq!(store.pending_count().unwrap(), 0);
    assert_eq!(store.next_due().unwrap(), None);
    assert_eq!(store.reminder(&r.invoice_id, &r.id).unwrap(), Some(r));
}

#[test]
fn due_index_orders_pre_1970_times() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

#[test]
fn aborted_transaction_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

#[test]
fn transaction_returns_the_closure_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let n = store
        .transaction::<_, ()>(|tx| {
            tx.put_client(&client("c-1"))?;
            Ok(42)
        })
        .unwrap();
    assert_eq!(n, Ok(42));
}

#[test]
fn corrupt_records_are_errors_naming_tree_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .inner()
        .unwrap()
        .trees
        .clients
        .raw_insert("c-1", &b"{not json"[..]);

    let err = store.client(&ClientId::new("c-1").unwrap()).unwrap_err();
    match &err {
        StoreError::Corrupt { tree, key, .. } => {
            assert_eq!(*tree, "clients");
            assert_eq!(key, "c-1");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.to_string().contains("`clients`") && err.to_string().contains("c-1"));

    // Inside a transaction the same read surfaces as Err(Corrupt), not as a domain error.
    let err = store
        .transaction::<_, ()>(|tx| {
            tx.client(&ClientId::new("c-1").unwrap())?;
            tx.put_invoice(&invoice("INV-1"))?;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { tree: "clients", key, .. } if key == "c-1"));
    assert_eq!(
        store.invoice(&InvoiceId::new("INV-1").unwrap()).unwrap(),
        None
    );
}

#[test]
fn corrupt_index_entries_are_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // A due key of the wrong length.
    store
        .inner()
        .unwrap()
        .trees
        .due
        .raw_insert(&[1u8, 2, 3][..], &[][..]);
    let err = store.next_due().unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { tree: "due", key, .. } if key == "0x010203"));
    assert!(matches!(
        store.claim_due(t0(), 10),
        Err(StoreError::Corrupt { tree: "due", .. })
    ));

    // A garbage invoice record (holding the reminder) behind a valid due entry fails the claim
    // instead of dropping it.
    store
        .inner()
        .unwrap()
        .trees
        .due
        .raw_remove(&[1u8, 2, 3][..]);
    let r = reminder("INV-1", 0, t0());
    schedule(&store, std::slice::from_ref(&r));
    store
        .inner()
        .unwrap()
        .trees
        .invoices
        .raw_insert(r.invoice_id.as_str(), &b"[]"[..]);
    let err = store.claim_due(t0(), 10).unwrap_err();
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
    assert_eq!(
        store.pending_count().unwrap(),
        1,
        "the claim was rolled back"
    );

    // A garbage attempt in the log.
    write(&store, |tx| {
        tx.log(&attempt("INV-9", t0(), "ok")).map_err(Into::into)
    });
    let k = store.inner().unwrap().trees.log.raw_first_key().unwrap();
    store.inner().unwrap().trees.log.raw_insert(k, &b"nope"[..]);
    let inv = InvoiceId::new("INV-9").unwrap();
    assert!(matches!(
        store.timeline(&inv),
        Err(StoreError::Corrupt { tree: "log", .. })
    ));
}

#[test]
fn timeline_is_oldest_first_and_per_invoice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

#[test]
fn tallies_count_whole_utc_hours_from_the_one_holding_from_up_to_to() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

#[test]
fn prune_webhooks_forgets_old_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durable_with_many_concurrent_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

    let store = open(&dir);
    for i in 0..64u32 {
        for j in 0..5u32 {
            let id = ClientId::new(format!("c-{i}-{j}")).unwrap();
            assert!(store.client(&id).unwrap().is_some(), "client {id} lost");
        }
    }
}

#[tokio::test]
async fn durable_resolves_without_writes_and_repeatedly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if cond() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn after_write_failures_the_store_reopens_itself_once_writes_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    write(&store, |tx| Ok(tx.put_client(&client("c-1"))?));
    store.durable().await.unwrap();
    assert!(store.health().is_ok());

    store.faults().fail_writes(true);
    let failed = store.transaction::<_, ()>(|tx| Ok(tx.put_client(&client("c-2"))?));
    assert!(
        matches!(failed, Err(StoreError::Storage { .. })),
        "{failed:?}"
    );
    assert!(store.durable().await.is_err());
    assert!(store.probe().await.is_err());
    let reason = store.health().unwrap_err();
    assert!(reason.contains("no space left"), "{reason}");
    // Reads go on while writes fail.
    assert!(
        store
            .client(&ClientId::new("c-1").unwrap())
            .unwrap()
            .is_some()
    );
    assert!(
        store.health().is_err(),
        "no recovery while writes still fail"
    );

    store.faults().fail_writes(false);
    assert!(
        eventually(|| store.health().is_ok()).await,
        "the store never recovered"
    );
    assert!(
        store.shared.generation.load(Ordering::SeqCst) >= 1,
        "reopened"
    );
    write(&store, |tx| Ok(tx.put_client(&client("c-3"))?));
    store.durable().await.unwrap();
    store.probe().await.unwrap();
    for id in ["c-1", "c-3"] {
        assert!(
            store.client(&ClientId::new(id).unwrap()).unwrap().is_some(),
            "{id} lost"
        );
    }
    assert!(
        store
            .client(&ClientId::new("c-2").unwrap())
            .unwrap()
            .is_none(),
        "the refused write did not happen"
    );
    // A clone made before the failure uses the reopened database too.
    drop(store);
    let again = open(&dir);
    assert!(
        again
            .client(&ClientId::new("c-3").unwrap())
            .unwrap()
            .is_some()
    );
}

/// A real full disk, not the injector: run with `PLAZO_TMPFS_DIR` set to an empty, small
/// tmpfs (e.g. `mount -t tmpfs -o size=3m tmpfs /mnt/t`), which needs root, hence ignored.
#[tokio::test]
#[ignore = "needs a small tmpfs in PLAZO_TMPFS_DIR (root)"]
async fn a_real_full_disk_then_freed_space_recovers_without_restart() {
    let Ok(root) = std::env::var("PLAZO_TMPFS_DIR") else {
        return;
    };
    let root = std::path::PathBuf::from(root);
    let store = Store::open(&root.join("db"), StoreOptions::default()).unwrap();
    write(&store, |tx| Ok(tx.put_client(&client("c-1"))?));
    store.durable().await.unwrap();
    // Fill the disk.
    let filler = root.join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let mut failed = false;
    for i in 0..2000 {
        let c = client(&format!("fill-{i}"));
        let w = store.transaction::<_, ()>(|tx| Ok(tx.put_client(&c)?));
        if w.is_err() || store.durable().await.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "writes kept succeeding on a full disk");
    assert!(store.health().is_err());
    std::fs::remove_file(&filler).unwrap();
    assert!(
        eventually(|| store.health().is_ok()).await,
        "the store never recovered after space was freed"
    );
    write(&store, |tx| Ok(tx.put_client(&client("c-after"))?));
    store.durable().await.unwrap();
    assert!(
        store
            .client(&ClientId::new("c-1").unwrap())
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_burst_of_readiness_probes_costs_one_write_until_a_write_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.probe().await.unwrap();
    // Writes would fail now, but nothing has failed yet: probes in the next second share the
    // last result instead of each writing (an open endpoint must not drive flushes).
    store.faults().fail_writes(true);
    let burst = futures::future::join_all((0..50).map(|_| store.probe())).await;
    assert!(burst.iter().all(|r| r.is_ok()), "{burst:?}");
    assert!(store.health().is_ok(), "no probe wrote, so none failed");
    // Once a real write fails, probes write again and report it.
    let failed = store.transaction::<_, ()>(|tx| Ok(tx.put_client(&client("c-9"))?));
    assert!(failed.is_err());
    assert!(store.probe().await.is_err());
    store.faults().fail_writes(false);
}

#[test]
fn invoice_view_never_shows_a_pending_slot_naming_a_finished_reminder() {
    // A writer keeps doing what the dispatcher does in one transaction: finish the pending
    // reminder, log it and point the invoice at the next one. A reader must never see the
    // invoice from before the commit together with the reminder or timeline from after it.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
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
            for step in 0..2_000u32 {
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

fn inbox_entry(key: &str, next: Timestamp, state: crate::domain::InboxState) -> InboxEntry {
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

#[test]
fn inbox_queue_is_read_in_due_order_and_follows_each_entry() {
    use crate::domain::InboxState;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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
