//! Store tests against real sled databases in temporary directories.

use jiff::ToSpan;

use super::*;
use crate::store::Store;
use crate::store::conformance::{
    attempt, client, eventually, invoice, reminder, schedule, t0, write,
};

/// The sled backend under `store`.
fn sled(store: &Store) -> &SledBackend {
    store
        .backend()
        .as_any()
        .downcast_ref::<SledBackend>()
        .expect("the store runs on sled")
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

#[test]
fn new_store_gets_schema_version_and_other_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        let key = MetaKey(SCHEMA_KEY.into());
        assert_eq!(
            sled(&store)
                .inner()
                .unwrap()
                .trees
                .meta
                .get(&key, "test")
                .unwrap(),
            Some(SCHEMA_VERSION)
        );
        sled(&store)
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
        sled(&store)
            .inner()
            .unwrap()
            .trees
            .meta
            .raw_remove(SCHEMA_KEY);
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
    sled(&store)
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
fn corrupt_records_are_errors_naming_tree_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    sled(&store)
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
    sled(&store)
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
    sled(&store)
        .inner()
        .unwrap()
        .trees
        .due
        .raw_remove(&[1u8, 2, 3][..]);
    let r = reminder("INV-1", 0, t0());
    schedule(&store, std::slice::from_ref(&r));
    sled(&store)
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
    let k = sled(&store)
        .inner()
        .unwrap()
        .trees
        .log
        .raw_first_key()
        .unwrap();
    sled(&store)
        .inner()
        .unwrap()
        .trees
        .log
        .raw_insert(k, &b"nope"[..]);
    let inv = InvoiceId::new("INV-9").unwrap();
    assert!(matches!(
        store.timeline(&inv),
        Err(StoreError::Corrupt { tree: "log", .. })
    ));
}

#[test]
fn corrupt_client_index_entries_are_errors_naming_tree_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    write(&store, |tx| {
        tx.put_invoice(&invoice("INV-1")).map_err(Into::into)
    });
    let c1 = ClientId::new("c-1").unwrap();
    let inner = sled(&store).inner().unwrap();
    let index = &inner.trees.client_invoices;
    let corrupt_at = |err: StoreError, want: &str| match err {
        StoreError::Corrupt { tree, key, .. } => {
            assert_eq!((tree, key.as_str()), ("client_invoices", want));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    };

    // An entry whose invoice id is not an id: outside commands, through the open invoices,
    // and inside a command.
    index.raw_insert(b"c-1\0bad id", &[]);
    corrupt_at(
        store.invoice_ids_of_client(&c1).unwrap_err(),
        "0x632d3100626164206964",
    );
    assert!(matches!(
        store.open_invoice_ids_of(&c1),
        Err(StoreError::Corrupt {
            tree: "client_invoices",
            ..
        })
    ));
    let in_tx = store
        .transaction::<_, ()>(|tx| Ok(tx.invoice_ids_of_client(&c1)?))
        .unwrap_err();
    assert!(
        matches!(
            in_tx,
            StoreError::Corrupt {
                tree: "client_invoices",
                ..
            }
        ),
        "{in_tx}"
    );
    index.raw_remove(b"c-1\0bad id");

    // A value that is not a line: the lines read reports it (listing ids reads no value).
    index.raw_insert(b"c-1\0INV-1", b"x");
    corrupt_at(
        store.invoice_lines_of_client_within(&c1, 10).unwrap_err(),
        "c-1/INV-1",
    );
    assert_eq!(
        store.invoice_ids_of_client(&c1).unwrap(),
        vec![InvoiceId::new("INV-1").unwrap()]
    );
    // An entry from before the index kept lines (empty value): read as unknown, so the
    // statement reads that invoice itself.
    index.raw_insert(b"c-1\0INV-1", &[]);
    assert_eq!(
        store.invoice_lines_of_client_within(&c1, 10).unwrap(),
        Some(vec![(InvoiceId::new("INV-1").unwrap(), IndexLine::Unknown)])
    );

    // An entry naming an invoice that is not stored: listed, but the open invoices, which
    // read it, report it.
    index.raw_insert(b"c-1\0INV-9", &[]);
    assert_eq!(
        store.invoice_ids_of_client(&c1).unwrap(),
        vec![
            InvoiceId::new("INV-1").unwrap(),
            InvoiceId::new("INV-9").unwrap()
        ]
    );
    corrupt_at(store.open_invoice_ids_of(&c1).unwrap_err(), "c-1/INV-9");
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
        sled(&store).shared.generation.load(Ordering::SeqCst) >= 1,
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

/// A marker that cannot be written (a full disk) is reported, not taken as set, and marks the
/// store unhealthy like any failed write.
#[tokio::test]
async fn a_meta_marker_that_cannot_be_written_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    write(&store, |tx| Ok(tx.put_client(&client("c-1"))?));
    store.put_meta("facts_backfill", b"1").unwrap();
    store.faults().fail_writes(true);
    let failed = store.put_meta("other", b"1");
    assert!(
        matches!(failed, Err(StoreError::Storage { .. })),
        "{failed:?}"
    );
    let reason = store.health().unwrap_err();
    assert!(reason.contains("no space left"), "{reason}");
    store.faults().fail_writes(false);
}

/// Opens sled stores on one temporary directory.
pub(crate) struct SledHarness {
    dir: tempfile::TempDir,
}

impl SledHarness {
    pub(crate) fn new() -> Self {
        SledHarness {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl crate::store::conformance::Harness for SledHarness {
    fn open(&self) -> Store {
        open(&self.dir)
    }
}

/// The backend conformance suite, on sled.
mod conformance_on_sled {
    use super::SledHarness;
    crate::conformance_suite!(SledHarness::new());
}
