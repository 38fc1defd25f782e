//! A data directory written by the last schema-1 release (`tests/fixtures/schema1-store.tar.gz`,
//! see tests/fixtures/schema1/README.md) opens with this build through `Store::open`, is
//! migrated in place, and every record reads back through the public API as it was written;
//! the dispatcher's and the inbox's indexes work on it.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::convert::Infallible;
use std::path::Path;

use jiff::Timestamp;
use plazo::domain::{Attempt, Reminder, ReminderState};
use plazo::store::{Store, StoreOptions, Tally, TxError};

use sample::sample;

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

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/schema1-store.tar.gz"
);

/// Unpacks the fixture under `tmp`; returns the store directory.
fn unpack(tmp: &Path) -> std::path::PathBuf {
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(FIXTURE)
        .arg("-C")
        .arg(tmp)
        .status()
        .unwrap();
    assert!(status.success(), "tar failed on {FIXTURE}");
    tmp.join("schema1-store")
}

#[test]
fn a_schema1_directory_opens_migrated_with_every_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = unpack(tmp.path());
    let s = sample();
    let store = Store::open(&dir, StoreOptions::default()).unwrap();

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

    // The migrated store claims its due reminders and opens again as schema 2.
    let late: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
    assert_eq!(store.claim_due(late, 10).unwrap().len(), s.scheduled.len());
    store.flush_blocking().unwrap();
    drop(store);
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    assert_eq!(store.in_flight().unwrap().len(), s.scheduled.len() + 1);
    assert_eq!(
        store.client(&s.clients[0].id).unwrap().as_ref(),
        Some(&s.clients[0])
    );
}

/// Opens `dir` with sled directly, without sled's background flusher thread: that thread keeps
/// the directory's lock for a moment after the handle is dropped, which made the next open
/// fail now and then ("could not acquire lock").
fn open_raw(dir: &Path) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .unwrap()
}

/// Every tree's entries, by tree name.
type Dump = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

#[test]
fn a_directory_from_a_newer_schema_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = unpack(tmp.path());
    {
        let db = open_raw(&dir);
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &3u32.to_be_bytes())
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
    assert!(
        before
            .iter()
            .any(|(name, _)| name.as_slice() == b"invoices")
    );
    let err = Store::open(&dir, StoreOptions::default()).expect_err("a newer schema is refused");
    let msg = err.to_string();
    assert!(msg.contains("schema version 3"), "{msg}");
    assert_eq!(dump(&dir), before, "nothing migrated, nothing written");
}
