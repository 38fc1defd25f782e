//! Data directories written by the last schema-1 release (`tests/fixtures/schema1-store.tar.gz`,
//! see tests/fixtures/schema1/README.md) and by the last schema-2 release
//! (`tests/fixtures/schema2-store.tar.gz`, see tests/fixtures/schema2/README.md), both holding
//! the same sample, open with this build through `Store::open`, are migrated in place to
//! schema 3, and every record reads back through the public API as it was written; the
//! dispatcher's and the inbox's indexes work on them, and every invoice is listed under its
//! client. A directory with a newer schema is refused untouched.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::convert::Infallible;
use std::path::Path;

use jiff::Timestamp;
use plazo::domain::{Attempt, ClientId, InvoiceId, InvoiceStatus, Reminder, ReminderState};
use plazo::store::{SCHEMA_VERSION, Store, StoreOptions, Tally, TxError};

use sample::sample;

/// These tests are about sled data directories: the PostgreSQL run of the suite
/// (`PLAZO_TEST_STORE=postgres`) skips them, saying so.
fn sled_only() -> bool {
    let on_postgres = std::env::var("PLAZO_TEST_STORE").is_ok_and(|v| v == "postgres");
    if on_postgres {
        eprintln!(
            "sled only, not run on PostgreSQL: sled data directories of older and newer schemas"
        );
    }
    on_postgres
}

/// The records the fixture holds (shared with its generator and the unit tests).
#[cfg(test)]
mod sample {
    use std::collections::BTreeMap;

    use jiff::Timestamp;
    use jiff::civil::Date;
    use plazo::domain::*;
    use plazo::payments::{InvoiceRefs, ProviderEvent, ProviderEventKind};
    use rust_decimal::Decimal;

    include!("../src/store/v1_sample.rs");
}

/// A store directory written by an older release, packed as `<name>.tar.gz` in
/// tests/fixtures, holding the directory `<name>/`.
#[derive(Clone, Copy)]
struct Fixture {
    name: &'static str,
    /// The schema version that release wrote.
    version: u32,
}

/// Written by the last schema-1 release.
const SCHEMA1: Fixture = Fixture {
    name: "schema1-store",
    version: 1,
};
/// Written by the last schema-2 release.
const SCHEMA2: Fixture = Fixture {
    name: "schema2-store",
    version: 2,
};

/// Unpacks `fixture` under `tmp`; returns the store directory.
fn unpack(tmp: &Path, fixture: Fixture) -> std::path::PathBuf {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{}.tar.gz", fixture.name));
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(tmp)
        .status()
        .unwrap();
    assert!(status.success(), "tar failed on {}", archive.display());
    tmp.join(fixture.name)
}

#[test]
fn a_schema1_directory_opens_migrated_with_every_record() {
    if sled_only() {
        return;
    }
    opens_migrated_with_every_record(SCHEMA1);
}

#[test]
fn a_schema2_directory_opens_migrated_with_every_record() {
    if sled_only() {
        return;
    }
    opens_migrated_with_every_record(SCHEMA2);
}

/// The schema version stored in the (closed) store directory `dir`.
fn stored_version(dir: &Path) -> u32 {
    let raw = open_raw(dir)
        .open_tree("meta")
        .unwrap()
        .get("schema_version")
        .unwrap()
        .unwrap();
    u32::from_be_bytes(raw.as_ref().try_into().unwrap())
}

/// Every invoice of the sample is listed under its client, and only there; the open ones are
/// the client's open invoices.
fn assert_invoices_listed_by_client(store: &Store, s: &sample::Sample) {
    let mut clients: Vec<ClientId> = s.invoices.iter().map(|i| i.client_id.clone()).collect();
    clients.extend(s.clients.iter().map(|c| c.id.clone()));
    clients.sort();
    clients.dedup();
    assert!(
        clients.len() > 1,
        "the sample spreads invoices over clients"
    );
    for c in &clients {
        let mut want: Vec<InvoiceId> = s
            .invoices
            .iter()
            .filter(|i| i.client_id == *c)
            .map(|i| i.id.clone())
            .collect();
        want.sort_by(|a, b| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
        assert_eq!(store.invoice_ids_of_client(c).unwrap(), want, "client {c}");
        let in_tx = store
            .transaction(|tx| Ok::<_, TxError<Infallible>>(tx.invoice_ids_of_client(c)?))
            .unwrap()
            .unwrap();
        assert_eq!(in_tx, want, "client {c}, inside a command");
        let open: Vec<InvoiceId> = want
            .iter()
            .filter(|id| {
                s.invoices
                    .iter()
                    .any(|i| i.id == **id && i.status == InvoiceStatus::Open)
            })
            .cloned()
            .collect();
        assert_eq!(store.open_invoice_ids_of(c).unwrap(), open, "client {c}");
    }
    assert!(
        s.invoices.iter().any(|i| i.status != InvoiceStatus::Open),
        "the sample holds a closed invoice"
    );
}

/// Opens `fixture` with this build and reads every record of the sample back.
fn opens_migrated_with_every_record(fixture: Fixture) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = unpack(tmp.path(), fixture);
    assert_eq!(stored_version(&dir), fixture.version, "{}", fixture.name);
    let s = sample();
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    assert_invoices_listed_by_client(&store, &s);

    for c in &s.clients {
        assert_eq!(store.client(&c.id).unwrap().as_ref(), Some(c));
    }
    for i in &s.invoices {
        assert_eq!(store.invoice(&i.id).unwrap().as_ref(), Some(i));
        let by_number = store
            .transaction(|tx| Ok::<_, TxError<Infallible>>(tx.invoice_by_number(&i.number)?))
            .unwrap()
            .unwrap();
        assert_eq!(by_number.as_ref(), Some(&i.id));
    }
    let arrangements = &s.invoices[0].arrangements;
    assert_eq!(
        store
            .invoice(&s.invoices[0].id)
            .unwrap()
            .unwrap()
            .arrangements,
        *arrangements
    );
    for r in &s.scheduled {
        assert_eq!(
            store.reminder(&r.invoice_id, &r.id).unwrap().as_ref(),
            Some(r)
        );
    }
    let claimed = Reminder {
        state: ReminderState::Claimed,
        ..s.claimed.clone()
    };
    assert_eq!(store.in_flight().unwrap(), vec![claimed]);
    assert_eq!(store.pending_count().unwrap(), s.scheduled.len() as u64);
    let first = s.scheduled.iter().map(|r| r.fire_at).min().unwrap();
    assert_eq!(
        store.next_due().unwrap().map(|t| t.as_microsecond()),
        Some(first.as_microsecond())
    );

    let invoice = &s.invoices[0].id;
    let mut want: Vec<Attempt> = s
        .attempts
        .iter()
        .filter(|a| a.invoice_id == *invoice)
        .cloned()
        .collect();
    want.sort_by_key(|a| a.at);
    assert_eq!(store.timeline(invoice).unwrap(), want);
    let day = store
        .tallies(
            "2026-03-20T00:00:00Z".parse().unwrap(),
            "2026-03-21T00:00:00Z".parse().unwrap(),
        )
        .unwrap();
    assert_eq!((day.get(Tally::Sent), day.get(Tally::Delivered)), (1, 1));

    for c in &s.contacts {
        assert_eq!(store.contact(&c.address).unwrap().as_ref(), Some(c));
    }
    for m in &s.messages {
        let got = store
            .sent_message(&m.provider, &m.provider_message_id)
            .unwrap();
        assert_eq!(got.as_ref(), Some(m));
    }
    let mut events = s.events.clone();
    events.sort_by_key(|e| e.at);
    assert_eq!(store.client_timeline(&events[0].client_id).unwrap(), events);
    for e in &s.inbox {
        assert_eq!(store.inbox_entry(&e.key).unwrap().as_ref(), Some(e));
    }
    let queued: Vec<_> = s
        .inbox
        .iter()
        .filter(|e| !e.state.is_final())
        .map(|e| (e.key.clone(), e.next_attempt_at))
        .collect();
    assert_eq!(store.inbox_queue().unwrap(), queued);
    for (id, _) in &s.webhooks {
        let seen = store
            .transaction(|tx| Ok::<_, TxError<Infallible>>(tx.webhook_seen(id)?))
            .unwrap()
            .unwrap();
        assert!(seen, "webhook {id} is remembered");
    }
    let oldest = s.webhooks.iter().map(|(_, at)| *at).min().unwrap();
    assert_eq!(store.prune_webhooks(oldest).unwrap(), 0);
    assert_eq!(
        store.prune_webhooks(s.claim_at).unwrap(),
        s.webhooks.len(),
        "webhook times survive"
    );

    // The migrated store claims its due reminders, and opens again as schema 3, its client
    // index intact.
    let late: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
    assert_eq!(store.claim_due(late, 10).unwrap().len(), s.scheduled.len());
    store.close().unwrap();
    drop(store);
    assert_eq!(stored_version(&dir), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 3);
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    assert_eq!(store.in_flight().unwrap().len(), s.scheduled.len() + 1);
    assert_eq!(
        store.client(&s.clients[0].id).unwrap().as_ref(),
        Some(&s.clients[0])
    );
    assert_invoices_listed_by_client(&store, &s);
}

/// Opens `dir` with sled directly, without sled's background flusher thread: that thread keeps
/// the directory's lock for a moment after the handle is dropped, which made the next open
/// fail now and then ("could not acquire lock").
///
/// A store just dropped may still hold the lock for a moment too: wait for it, as
/// `Store::open` does.
fn open_raw(dir: &Path) -> sled::Db {
    let mut tries = 0;
    loop {
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
            Ok(db) => return db,
            Err(sled::Error::Io(e)) if tries < 100 && e.to_string().contains("lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open {}: {e}", dir.display()),
        }
    }
}

/// Every tree's entries, by tree name.
type Dump = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

#[test]
fn a_directory_from_a_newer_schema_is_refused_and_left_as_it_was() {
    if sled_only() {
        return;
    }
    for fixture in [SCHEMA1, SCHEMA2] {
        newer_schema_is_refused(fixture);
    }
}

/// Marks `fixture` as written by schema 4 (newer than this build's); opening it fails with a
/// clear error and writes nothing.
fn newer_schema_is_refused(fixture: Fixture) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = unpack(tmp.path(), fixture);
    {
        let db = open_raw(&dir);
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &4u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let dump = |dir: &Path| -> Dump {
        let db = open_raw(dir);
        db.tree_names()
            .into_iter()
            .map(|name| {
                let tree = db.open_tree(&name).unwrap();
                let entries = tree
                    .iter()
                    .map(|e| e.unwrap())
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect::<Vec<_>>();
                (name.to_vec(), entries)
            })
            // `records` may be opened (empty) by the check; only record data counts.
            .filter(|(name, entries)| !(name.as_slice() == b"records" && entries.is_empty()))
            .collect()
    };
    let before = dump(&dir);
    let invoices_tree = if fixture.version == 1 {
        &b"invoices"[..]
    } else {
        &b"records"[..]
    };
    assert!(
        before
            .iter()
            .any(|(name, entries)| name.as_slice() == invoices_tree && !entries.is_empty()),
        "{} holds records",
        fixture.name
    );
    let Err(err) = Store::open(&dir, StoreOptions::default()) else {
        panic!("a newer schema is refused");
    };
    let msg = err.to_string();
    assert!(
        msg.contains("schema version 4") && msg.contains("uses version 3"),
        "{msg}"
    );
    assert_eq!(dump(&dir), before, "nothing migrated, nothing written");
}
