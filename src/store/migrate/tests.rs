//! The migration from schema 1: every record survives with equal values, the indexes survive,
//! the old trees go, and interrupted or failed migrations leave a store that opens again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use jiff::Timestamp;

use super::super::keys::{ClientLogKey, DUE_LEN, DueKey, HourKey, InflightKey, KeyCodec, LogKey};
use super::super::records::InvoiceRecord;
use super::super::tally::{Tally, hour_of};
use super::super::v1::sample::{Sample, sample};
use super::super::v1::{self, write};
use super::*;
use crate::domain::ReminderState;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/schema1-store.tar.gz"
);

/// Opens the sled db in `dir`, waiting (as the store does) for the lock a just-dropped handle's
/// background threads still hold.
fn open(dir: &Path) -> sled::Db {
    let mut tries = 0;
    loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => return db,
            Err(sled::Error::Io(e)) if tries < 100 && e.to_string().contains("lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open {}: {e}", dir.display()),
        }
    }
}

/// A schema-1 store holding the sample, written by `v1::write`.
fn sample_store(dir: &Path) -> (sled::Db, Sample) {
    let db = open(dir);
    let s = sample();
    write::sample(&db, &s);
    (db, s)
}

/// The fixture made by the last schema-1 release, unpacked under `tmp`.
fn fixture_store(tmp: &Path) -> sled::Db {
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(FIXTURE)
        .arg("-C")
        .arg(tmp)
        .status()
        .unwrap();
    assert!(status.success(), "tar failed on {FIXTURE}");
    open(&tmp.join("schema1-store"))
}

/// Every entry of every tree but those named in `except`.
type Dump = BTreeMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

fn dump(db: &sled::Db, except: &[&str]) -> Dump {
    db.tree_names()
        .into_iter()
        .filter(|n| !except.iter().any(|e| e.as_bytes() == n.as_ref()))
        .map(|name| {
            let tree = db.open_tree(&name).unwrap();
            let entries = tree
                .iter()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.to_vec(), v.to_vec())
                })
                .collect();
            (name.to_vec(), entries)
        })
        .collect()
}

fn tree_names(db: &sled::Db) -> BTreeSet<String> {
    db.tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

fn version(db: &sled::Db) -> Option<u32> {
    schema_version(db).unwrap()
}

fn key(slot: u8, k: &[u8]) -> Vec<u8> {
    slotted(slot, k)
}

fn get<T: Record>(ks: &sled::Tree, slot: u8, k: &[u8]) -> T {
    let raw = ks
        .get(key(slot, k))
        .unwrap()
        .unwrap_or_else(|| panic!("no record at slot {slot} key {}", describe_raw(k)));
    T::decode(&raw).unwrap()
}

/// The decoded values under `slot ++ prefix`, in key order.
fn scan<T: Record>(ks: &sled::Tree, slot: u8, prefix: &[u8]) -> Vec<T> {
    ks.scan_prefix(key(slot, prefix))
        .map(|e| T::decode(&e.unwrap().1).unwrap())
        .collect()
}

/// The keys (without the slot byte) under `slot`.
fn keys(ks: &sled::Tree, slot: u8) -> Vec<Vec<u8>> {
    ks.scan_prefix([slot])
        .map(|e| e.unwrap().0[1..].to_vec())
        .collect()
}

/// How many records the sample makes in schema 2 (tallies included).
fn sample_records(s: &Sample) -> usize {
    s.clients.len()
        + 2 * s.invoices.len() // + numbers
        + s.scheduled.len() + 1 // due entries; the in-flight entry (reminders are in invoices)
        + s.attempts.len()
        + 2 // tallies: one sent, one delivered, both 2026-03-20T14
        + s.webhooks.len()
        + s.contacts.len()
        + s.messages.len()
        + s.events.len()
        + s.inbox.len()
        + s.inbox.iter().filter(|e| !e.state.is_final()).count()
}

/// Proves `db` is the sample migrated: schema 2, only the new trees, every record decoding to
/// the value written, the indexes as they were, nothing else.
fn assert_sample_migrated(db: &sled::Db, s: &Sample) {
    assert_eq!(version(db), Some(2));
    assert_eq!(
        tree_names(db),
        BTreeSet::from(["__sled__default".into(), "meta".into(), "records".into()]),
        "the schema-1 trees are gone"
    );
    let ks = db.open_tree(KEYSPACE).unwrap();
    assert_eq!(ks.len(), sample_records(s), "no record more, none less");

    for c in &s.clients {
        assert_eq!(get::<Client>(&ks, slot::CLIENTS, &c.id.encode()), *c);
    }
    let claimed = Reminder {
        state: ReminderState::Claimed,
        ..s.claimed.clone()
    };
    for i in &s.invoices {
        let record = get::<InvoiceRecord>(&ks, slot::INVOICES, &KeyCodec::encode(&i.id));
        assert_eq!(record.invoice, *i);
        assert_eq!(record.opening, None, "its creation line stays in the log");
        // Every reminder of the invoice is kept with it, the claimed one as claimed.
        let want: BTreeSet<_> = s
            .scheduled
            .iter()
            .chain([&claimed])
            .filter(|r| r.invoice_id == i.id)
            .map(|r| format!("{r:?}"))
            .collect();
        let got: BTreeSet<_> = record.reminders.iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(got, want, "the reminders of {}", i.id);
        let by_number: InvoiceId = get(&ks, slot::NUMBERS, i.number.as_bytes());
        assert_eq!(by_number, i.id);
    }
    assert!(
        s.invoices[0].arrangements.len() == 2
            && !s.invoices[0].payments.is_empty()
            && s.invoices[0].pause.is_some(),
        "the sample covers arrangements, payments and a pause"
    );
    assert_eq!(
        ks.scan_prefix([slot::REMINDERS]).count(),
        0,
        "no reminder is left under the old slot"
    );
    let due: Vec<Vec<u8>> = s
        .scheduled
        .iter()
        .map(|r| {
            DueKey {
                at: r.fire_at,
                id: r.id,
                invoice: r.invoice_id.clone(),
            }
            .encode()
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(keys(&ks, slot::DUE), due, "the due index survives");
    assert!(ks.scan_prefix([slot::DUE]).all(|e| e.unwrap().1.is_empty()));
    let inflight = InflightKey {
        invoice: claimed.invoice_id.clone(),
        id: claimed.id,
    };
    assert_eq!(
        keys(&ks, slot::INFLIGHT),
        vec![inflight.encode()],
        "the in-flight set survives"
    );
    assert_eq!(
        get::<Reminder>(&ks, slot::INFLIGHT, &inflight.encode()),
        claimed,
        "the in-flight entry holds the claimed reminder"
    );

    let invoices: BTreeSet<_> = s.attempts.iter().map(|a| a.invoice_id.clone()).collect();
    for inv in &invoices {
        let want: Vec<_> = s
            .attempts
            .iter()
            .filter(|a| a.invoice_id == *inv)
            .cloned()
            .collect();
        let got: Vec<Attempt> = scan(&ks, slot::LOG, &LogKey::prefix(inv));
        assert_eq!(got, want, "timeline of {inv}, in the order logged");
    }
    assert_eq!(keys(&ks, slot::LOG).len(), s.attempts.len());

    let hour = hour_of("2026-03-20T14:00:00Z".parse().unwrap());
    let tally = |t: Tally| {
        let raw = ks
            .get(key(
                slot::TALLIES,
                &HourKey {
                    hour,
                    tally: t as u8,
                }
                .encode(),
            ))
            .unwrap()
            .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap()));
        raw.unwrap_or(0)
    };
    assert_eq!((tally(Tally::Sent), tally(Tally::Delivered)), (1, 1));

    for (id, at) in &s.webhooks {
        assert_eq!(get::<Timestamp>(&ks, slot::WEBHOOKS, id.as_bytes()), *at);
    }
    for c in &s.contacts {
        let k = Contact::normalize(&c.address);
        assert_eq!(get::<Contact>(&ks, slot::CONTACTS, k.as_bytes()), *c);
    }
    for m in &s.messages {
        let k = format!("{}:{}", m.provider, m.provider_message_id);
        assert_eq!(get::<SentMessage>(&ks, slot::MESSAGES, k.as_bytes()), *m);
    }
    let client = &s.events[0].client_id;
    let got: Vec<ContactEvent> = scan(&ks, slot::CLIENT_LOG, &ClientLogKey::prefix(client));
    assert_eq!(got, s.events, "client timeline, in the order logged");
    for e in &s.inbox {
        assert_eq!(get::<InboxEntry>(&ks, slot::INBOX, e.key.as_bytes()), *e);
    }
    let queued: Vec<_> = s.inbox.iter().filter(|e| !e.state.is_final()).collect();
    assert_eq!(queued.len(), 1, "the sample queues one inbox entry");
    // Since schema 2 the queue is ordered by due time: next attempt ++ event key, no value.
    let queue_key = crate::store::keys::QueueKey {
        at: queued[0].next_attempt_at,
        key: queued[0].key.clone(),
    };
    assert_eq!(
        keys(&ks, slot::INBOX_QUEUE),
        vec![crate::store::keys::KeyCodec::encode(&queue_key)]
    );
}

#[test]
fn target_version_is_the_schema_this_build_uses() {
    assert_eq!(TARGET_VERSION, super::super::SCHEMA_VERSION);
}

#[test]
fn a_schema1_store_migrates_with_every_record_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, s) = sample_store(tmp.path());
    let m = migrate(&db, tmp.path())
        .unwrap()
        .expect("schema 1 is migrated");
    // Every schema-1 record is copied; the reminders then fold into their invoices' records.
    assert_eq!(
        m.records as usize + m.tallies as usize,
        sample_records(&s) + s.scheduled.len() + 1
    );
    assert_eq!(m.tallies, 2);
    assert_eq!(
        m.trees.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        v1::TREES
            .iter()
            .filter(|t| t.slot.is_some())
            .map(|t| t.name)
            .collect::<Vec<_>>()
    );
    assert_sample_migrated(&db, &s);
    drop(db);
    // Durable: everything is there after a reopen, and a second call does nothing.
    let db = open(tmp.path());
    assert_sample_migrated(&db, &s);
    assert_eq!(migrate(&db, tmp.path()).unwrap(), None);
    assert_eq!(drop_leftover_v1_trees(&db).unwrap(), 0);
    assert_sample_migrated(&db, &s);
}

#[test]
fn the_fixture_written_by_the_last_schema1_release_migrates() {
    let tmp = tempfile::tempdir().unwrap();
    let db = fixture_store(tmp.path());
    assert_eq!(version(&db), Some(1));
    let s = sample();
    assert!(migrate(&db, tmp.path()).unwrap().is_some());
    assert_sample_migrated(&db, &s);
}

#[test]
fn the_test_writer_writes_what_the_schema1_release_wrote_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let released = fixture_store(tmp.path());
    let ours = tmp.path().join("ours");
    let (db, _) = sample_store(&ours);
    let (a, b) = (dump(&released, &[]), dump(&db, &[]));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same trees"
    );
    for (tree, entries) in &a {
        assert_eq!(
            Some(entries),
            b.get(tree),
            "tree {}",
            String::from_utf8_lossy(tree)
        );
    }
}

#[test]
fn a_migration_stopped_before_the_switch_is_redone_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, s) = sample_store(tmp.path());
    let before = dump(&db, &[]);
    // Leftovers of an earlier attempt, then the copy without the switch: a crash.
    let ks = db.open_tree(KEYSPACE).unwrap();
    ks.insert(key(slot::CLIENTS, b"ghost"), b"junk".to_vec())
        .unwrap();
    copy_records(&db, tmp.path()).unwrap();
    assert!(ks.get(key(slot::CLIENTS, b"ghost")).unwrap().is_none());
    drop((ks, db));

    let db = open(tmp.path());
    assert_eq!(version(&db), Some(1), "still schema 1");
    assert_eq!(
        dump(&db, &["records"]),
        before,
        "the schema-1 trees are untouched"
    );
    db.open_tree(KEYSPACE)
        .unwrap()
        .insert(key(slot::INVOICES, b"ghost"), b"junk".to_vec())
        .unwrap();
    migrate(&db, tmp.path()).unwrap().expect("migrated again");
    assert_sample_migrated(&db, &s);
}

#[test]
fn a_migration_stopped_after_the_switch_leaves_trees_dropped_on_the_next_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, s) = sample_store(tmp.path());
    copy_records(&db, tmp.path()).unwrap();
    switch(&db).unwrap();
    drop(db);

    let db = open(tmp.path());
    assert_eq!(version(&db), Some(2));
    assert!(tree_names(&db).contains("log_by_time"));
    assert_eq!(
        migrate(&db, tmp.path()).unwrap(),
        None,
        "schema 2: no migration"
    );
    assert_eq!(drop_leftover_v1_trees(&db).unwrap(), v1::TREES.len());
    assert_sample_migrated(&db, &s);
}

#[test]
fn leftover_trees_are_never_dropped_from_a_store_not_yet_switched() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, _) = sample_store(tmp.path());
    let before = dump(&db, &[]);
    assert_eq!(drop_leftover_v1_trees(&db).unwrap(), 0);
    assert_eq!(dump(&db, &[]), before);
}

#[test]
fn a_corrupt_record_stops_the_migration_naming_tree_and_key_and_switches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, _) = sample_store(tmp.path());
    write::put_raw(&db, "invoices", b"INV-BAD", b"{\"id\": \"INV-BAD\", oops");
    let before = dump(&db, &["records"]);

    let err = migrate(&db, tmp.path()).unwrap_err();
    match &err {
        StoreError::Corrupt { tree, key, reason } => {
            assert_eq!((*tree, key.as_str()), ("invoices", "INV-BAD"));
            assert!(reason.contains("JSON"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("`invoices`") && msg.contains("INV-BAD"),
        "{msg}"
    );
    assert_eq!(version(&db), Some(1), "nothing switched");
    assert_eq!(dump(&db, &["records"]), before, "the old data is intact");
    drop(db);
    let db = open(tmp.path());
    assert_eq!(version(&db), Some(1));
    assert_eq!(dump(&db, &["records"]), before);
}

#[test]
fn a_bad_key_or_a_non_empty_index_value_is_corrupt_too() {
    for (tree, k, v, want_key) in [
        ("reminders", &b"short"[..], &b"{}"[..], "short"),
        (
            "due",
            &[0u8; 24][..],
            &b"x"[..],
            "0x000000000000000000000000000000000000000000000000",
        ),
        ("log", &b"INV-1001"[..], &b"{}"[..], "INV-1001"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (db, _) = sample_store(tmp.path());
        write::put_raw(&db, tree, k, v);
        match migrate(&db, tmp.path()).unwrap_err() {
            StoreError::Corrupt { tree: t, key, .. } => {
                assert_eq!((t, key.as_str()), (tree, want_key));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert_eq!(version(&db), Some(1));
    }
}

#[test]
fn other_versions_are_left_alone_and_nothing_is_written() {
    // A new, empty directory: no meta tree, and none is created.
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    let names = tree_names(&db);
    assert_eq!(migrate(&db, tmp.path()).unwrap(), None);
    assert_eq!(tree_names(&db), names);

    for found in [2u32, 3, 99] {
        let tmp = tempfile::tempdir().unwrap();
        let (db, _) = sample_store(tmp.path());
        write::put_raw(&db, "meta", b"schema_version", &found.to_be_bytes());
        let before = dump(&db, &[]);
        assert_eq!(migrate(&db, tmp.path()).unwrap(), None, "version {found}");
        assert_eq!(
            dump(&db, &[]),
            before,
            "nothing written for version {found}"
        );
    }
}

#[test]
fn an_empty_schema1_store_migrates() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    write::create(&db);
    let m = migrate(&db, tmp.path()).unwrap().unwrap();
    assert_eq!((m.records, m.tallies), (0, 0));
    assert_eq!(version(&db), Some(2));
    assert_eq!(db.open_tree(KEYSPACE).unwrap().len(), 0);
    assert_eq!(tree_names(&db).len(), 3);
}

#[test]
fn trees_larger_than_a_batch_are_copied_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    write::create(&db);
    let n = BATCH * 2 + 17;
    let at: Timestamp = "2026-03-20T14:00:00Z".parse().unwrap();
    for i in 0..n {
        write::put(&db, "webhooks", format!("evt_{i:06}").as_bytes(), &at);
    }
    let m = migrate(&db, tmp.path()).unwrap().unwrap();
    assert_eq!(m.records as usize, n);
    let ks = db.open_tree(KEYSPACE).unwrap();
    assert_eq!(keys(&ks, slot::WEBHOOKS).len(), n);
    assert_eq!(get::<Timestamp>(&ks, slot::WEBHOOKS, b"evt_020016"), at);
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn progress_is_logged_per_tree_with_a_start_and_an_end_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, s) = sample_store(tmp.path());
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        migrate(&db, tmp.path()).unwrap().unwrap();
    });
    let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[0].contains("migrating the store"), "{log}");
    assert!(
        lines[0].contains(&tmp.path().display().to_string()),
        "{log}"
    );
    for t in v1::TREES.iter().filter(|t| t.slot.is_some()) {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("migrated tree") && l.contains(&format!("tree=\"{}\"", t.name))),
            "no progress line for {}: {log}",
            t.name
        );
    }
    let invoices = format!("done={n} total={n}", n = s.invoices.len());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tree=\"invoices\"") && l.contains(&invoices)),
        "{log}"
    );
    let end = lines.last().unwrap();
    assert!(end.contains("store migrated to schema 2"), "{log}");
    assert!(
        end.contains(&format!(
            "records={}",
            sample_records(&s) - 2 + s.scheduled.len() + 1
        )),
        "{log}"
    );
    assert!(end.contains("elapsed_ms="), "{log}");
}

/// Prints how fast a store of `PLAZO_MIGRATE_N` (default 100,000) invoices, each with a
/// reminder, a due entry and a timeline line, migrates (a measurement, not a test:
/// `cargo test --lib print_migration_rate -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement; run by hand"]
fn print_migration_rate() {
    let n: usize = std::env::var("PLAZO_MIGRATE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    write::create(&db);
    let s = sample();
    let (inv, rem, att) = (&s.invoices[0], &s.scheduled[0], &s.attempts[1]);
    for i in 0..n {
        let id = InvoiceId::new(format!("INV-{i:08}")).unwrap();
        let invoice = Invoice {
            id: id.clone(),
            number: format!("FV-{i:08}"),
            ..inv.clone()
        };
        let reminder = Reminder {
            id: ReminderId::derive(&id, 0, 0),
            invoice_id: id.clone(),
            ..rem.clone()
        };
        let attempt = Attempt {
            invoice_id: id.clone(),
            ..att.clone()
        };
        write::put(&db, "invoices", &KeyCodec::encode(&id), &invoice);
        write::put(&db, "numbers", invoice.number.as_bytes(), &id);
        write::put(&db, "reminders", &reminder.id.encode(), &reminder);
        let due = DueKey {
            at: reminder.fire_at,
            id: reminder.id,
            invoice: reminder.invoice_id.clone(),
        };
        write::put_raw(&db, "due", &due.encode()[..DUE_LEN], &[]);
        let key = LogKey {
            invoice: id,
            seq: i as u64,
        };
        write::put(&db, "log", &key.encode(), &attempt);
    }
    db.flush().unwrap();
    let before = db.size_on_disk().unwrap();
    let m = migrate(&db, tmp.path()).unwrap().unwrap();
    println!(
        "{} records ({n} invoices) migrated in {:?}: {:.0} records/s; {} MB on disk before, {} MB after",
        m.records,
        m.elapsed,
        m.records as f64 / m.elapsed.as_secs_f64(),
        before / 1_000_000,
        db.size_on_disk().unwrap() / 1_000_000
    );
}
