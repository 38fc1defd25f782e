//! Migrations of an older store, in place, when it is opened: schema 1 (one sled tree per
//! kind, JSON values; see `v1.rs`) to schema 2 (one keyspace, binary records), then schema 2
//! to schema 3 (schema 2 plus each client's invoice index); see the store's `# Layout`. A
//! schema-1 store goes 1 → 2 → 3 in one open; a schema-2 store 2 → 3.
//!
//! # Schema 1 to 2
//!
//! 1. `records` is cleared (leftovers of an interrupted migration), then every record of every
//!    schema-1 tree is decoded, re-encoded as a binary record, and written under its slot byte
//!    ++ its schema-1 key, in batches of [`BATCH`]. `log_by_time` is not copied: the hourly
//!    tallies that replace it are rebuilt from `log`. Then a flush.
//!    Keys and values change where schema 2 changed them: an invoice's reminders are folded
//!    into its record ([`InvoiceRecord`]) after every tree is copied (the reminders are first
//!    copied under their old slot, then moved, so a reminder whose invoice is missing stops
//!    the migration); due entries and in-flight entries name the invoice (looked up in the
//!    schema-1 `reminders` tree), and an in-flight entry holds its claimed reminder.
//! 2. The switch: `meta/schema_version` becomes 2, then a flush. Before it the store is a
//!    schema-1 store (the old trees are untouched; the next open migrates again); after it,
//!    a schema-2 store.
//! 3. The old trees are dropped, then a flush. A crash before that leaves trees that
//!    [`drop_leftover_v1_trees`] removes on the next open.
//!
//! A record that does not decode, or would not read back equal from its binary layout, stops
//! the migration before the switch with [`StoreError::Corrupt`] naming its tree and key: the
//! store stays schema 1, its data intact.
//!
//! # Schema 2 to 3
//!
//! 1. The clients' invoice index (slot `client_invoices`) is built: first cleared (leftovers
//!    of an interrupted build), then one entry, client id ++ 0x00 ++ invoice id, is written
//!    for every invoice record, in batches of [`BATCH`], with progress in the log. Then a
//!    flush. Nothing else is written.
//! 2. The switch: `meta/schema_version` becomes 3, then a flush. A crash before it leaves a
//!    schema-2 store (with a partial index that schema 2 never reads), which the next open
//!    indexes again from scratch.
//!
//! An invoice record that does not decode stops the build before the switch with
//! [`StoreError::Corrupt`] naming it: the store stays schema 2.
//!
//! A store with a newer schema than [`TARGET_VERSION`] is never touched here; opening refuses
//! it before anything is written.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde::de::DeserializeOwned;

use super::keys::InflightKey;
use super::keys::{
    ClientInvoiceKey, ClientLogKey, DueKey, HourKey, KeyCodec, LogKey, QueueKey, TextKey,
    WebhookKey, describe_raw,
};
use super::records::{InvoiceRecord, Record};
use super::slot::{self, KEYSPACE};
use super::tally::{Tally, hour_of};
use super::v1::{self, Kind};
use super::{SCHEMA_KEY, StoreError};
use crate::domain::{
    Attempt, Client, ClientId, Contact, ContactEvent, InboxEntry, IndexLine, Invoice, InvoiceId,
    Reminder, ReminderId, SentMessage,
};

/// Schema 2: one keyspace, binary records; what the migration from schema 1 produces first.
pub(crate) const V2: u32 = 2;

/// The schema version the migrations produce (this build's
/// [`SCHEMA_VERSION`](super::SCHEMA_VERSION)): schema 2 plus the clients' invoice index.
pub(crate) const TARGET_VERSION: u32 = 3;

/// Records written per `apply_batch`.
pub(crate) const BATCH: usize = 10_000;

/// A progress line is logged every this many records of a tree (and at its end).
const PROGRESS_EVERY: u64 = 100_000;

/// The sled tree holding the schema version.
const META: &str = "meta";

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Migrated {
    /// The schema version the store had (1 or 2).
    pub(crate) from: u32,
    /// Records copied per schema-1 tree, in slot order (`log_by_time` is not copied); empty
    /// when the store was schema 2.
    pub(crate) trees: Vec<(&'static str, u64)>,
    /// Records copied from schema 1 in all.
    pub(crate) records: u64,
    /// Hourly tally counters rebuilt from the schema-1 log.
    pub(crate) tallies: u64,
    /// Entries written to the clients' invoice index: one per invoice.
    pub(crate) client_invoices: u64,
    /// How long it took, every step included.
    pub(crate) elapsed: Duration,
}

/// Migrates the schema-1 or schema-2 store `db` (in directory `dir`, named in the log) to
/// schema 3 ([`TARGET_VERSION`]): 1 → 2 → 3, or 2 → 3.
///
/// Call it after opening `db` and before using it. Returns `Ok(None)`, writing nothing, when
/// `meta/schema_version` is anything but 1 or 2 (missing, 3, newer): the caller's schema check
/// decides about those. On `Ok(Some(_))` the store is schema 3, its schema-1 trees gone,
/// everything flushed.
///
/// On an error, the store is left at the last version it switched to, its data intact, and the
/// next open goes on from there: before the switch to 2 (a corrupt schema-1 record: the tree
/// and key are named; a storage failure) it is still schema 1 (only `records` may hold partial
/// copies, cleared by the next attempt); after it, a schema-2 store, possibly with leftover
/// schema-1 trees ([`drop_leftover_v1_trees`] removes them) or a partial client index (built
/// again from scratch).
pub(crate) fn migrate(db: &sled::Db, dir: &Path) -> Result<Option<Migrated>, StoreError> {
    let from = match schema_version(db)? {
        Some(v) if v == v1::VERSION || v == V2 => v,
        _ => return Ok(None),
    };
    let started = crate::clock::monotonic_now();
    let mut migrated = Migrated {
        from,
        trees: Vec::new(),
        records: 0,
        tallies: 0,
        client_invoices: 0,
        elapsed: Duration::ZERO,
    };
    if from == v1::VERSION {
        v1_to_v2(db, dir, &mut migrated)?;
    }
    migrated.client_invoices = v2_to_v3(db, dir)?;
    migrated.elapsed = crate::clock::elapsed_since(started);
    Ok(Some(migrated))
}

/// Schema 1 to 2: the copy, the switch, the old trees dropped; counts what was copied in
/// `migrated`.
fn v1_to_v2(db: &sled::Db, dir: &Path, migrated: &mut Migrated) -> Result<(), StoreError> {
    let started = crate::clock::monotonic_now();
    let copied = copy_records(db, dir)?;
    switch(db, V2)?;
    let dropped = drop_leftover_v1_trees(db)?;
    migrated.records = copied.trees.iter().map(|(_, n)| n).sum();
    migrated.trees = copied.trees;
    migrated.tallies = copied.tallies;
    tracing::info!(
        dir = %dir.display(),
        records = migrated.records,
        tallies = migrated.tallies,
        old_trees_dropped = dropped,
        elapsed_ms = millis(crate::clock::elapsed_since(started)),
        "store migrated to schema {V2}"
    );
    Ok(())
}

/// Schema 2 to 3: the client index built, then the switch; returns the index's entries.
fn v2_to_v3(db: &sled::Db, dir: &Path) -> Result<u64, StoreError> {
    let started = crate::clock::monotonic_now();
    let entries = build_client_index(db, dir)?;
    switch(db, TARGET_VERSION)?;
    tracing::info!(
        dir = %dir.display(),
        client_invoices = entries,
        elapsed_ms = millis(crate::clock::elapsed_since(started)),
        "store migrated to schema {TARGET_VERSION}"
    );
    Ok(entries)
}

/// `d` in whole milliseconds, for the log.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Drops the schema-1 trees still present in a migrated store (a migration stopped after its
/// switch to schema 2); returns how many. Does nothing unless `meta/schema_version` is 2 or 3,
/// so it never removes the data of a store that has not been migrated. Call it on every open
/// (cheap: a look at the tree names).
pub(crate) fn drop_leftover_v1_trees(db: &sled::Db) -> Result<usize, StoreError> {
    let names = db.tree_names();
    let leftovers: Vec<&'static str> = v1::TREES
        .iter()
        .map(|t| t.name)
        .filter(|name| names.iter().any(|n| n.as_ref() == name.as_bytes()))
        .collect();
    let migrated = matches!(schema_version(db)?, Some(v) if (V2..=TARGET_VERSION).contains(&v));
    if leftovers.is_empty() || !migrated {
        return Ok(0);
    }
    for name in &leftovers {
        db.drop_tree(name)
            .map_err(storage("drop a schema-1 tree"))?;
    }
    flush(db)?;
    tracing::info!(trees = ?leftovers, "dropped the trees of the old store layout");
    Ok(leftovers.len())
}

/// The schema version in `meta`, if the tree and the key exist (nothing is created).
fn schema_version(db: &sled::Db) -> Result<Option<u32>, StoreError> {
    if !db
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == META.as_bytes())
    {
        return Ok(None);
    }
    let meta = db.open_tree(META).map_err(storage("open meta"))?;
    match meta
        .get(SCHEMA_KEY)
        .map_err(storage("read schema version"))?
    {
        None => Ok(None),
        Some(raw) => v1::decode_version(&raw)
            .map(Some)
            .map_err(|reason| StoreError::Corrupt {
                tree: META,
                key: SCHEMA_KEY.to_owned(),
                reason,
            }),
    }
}

/// What [`copy_records`] wrote.
#[derive(Debug)]
pub(crate) struct Copied {
    /// Records per tree, in slot order.
    pub(crate) trees: Vec<(&'static str, u64)>,
    /// Tally counters written.
    pub(crate) tallies: u64,
}

/// Step 1: clears `records`, copies every schema-1 record into it and flushes. Writes nothing
/// but `records`. Logs the start (with the number of records to copy) and each tree's progress.
pub(crate) fn copy_records(db: &sled::Db, dir: &Path) -> Result<Copied, StoreError> {
    let names = db.tree_names();
    let mut sources = Vec::new();
    for t in v1::TREES {
        let Some(slot) = t.slot else { continue };
        let tree = if names.iter().any(|n| n.as_ref() == t.name.as_bytes()) {
            let tree = db
                .open_tree(t.name)
                .map_err(storage("open a schema-1 tree"))?;
            let total = tree.len();
            Some((tree, total))
        } else {
            None
        };
        sources.push((t, slot, tree));
    }
    let total: usize = sources
        .iter()
        .filter_map(|(_, _, tree)| tree.as_ref().map(|(_, n)| n))
        .sum();
    tracing::info!(
        dir = %dir.display(),
        from = v1::VERSION,
        to = V2,
        records = total,
        "migrating the store to the new layout; do not stop plazo (if it is stopped, the next \
         start migrates again from the old layout, which is left intact until the end)"
    );
    let ks = db.open_tree(KEYSPACE).map_err(storage("open keyspace"))?;
    ks.clear().map_err(storage("clear keyspace"))?;
    let v1_reminders = db
        .open_tree("reminders")
        .map_err(storage("open a schema-1 tree"))?;
    let mut tallies = BTreeMap::<Vec<u8>, u64>::new();
    let mut trees = Vec::new();
    for (t, slot, source) in sources {
        let Some((tree, total)) = source else {
            trees.push((t.name, 0));
            continue;
        };
        let mut batch = sled::Batch::default();
        let (mut pending, mut done) = (0usize, 0u64);
        for entry in tree.iter() {
            let (k, v) = entry.map_err(storage("read a schema-1 record"))?;
            let (new_key, value) =
                convert(t.kind, &k, &v, &v1_reminders, &mut tallies).map_err(|reason| {
                    StoreError::Corrupt {
                        tree: t.name,
                        key: describe_raw(&k),
                        reason,
                    }
                })?;
            batch.insert(slotted(slot, new_key.as_deref().unwrap_or(&k)), value);
            pending += 1;
            done += 1;
            if pending == BATCH {
                ks.apply_batch(std::mem::take(&mut batch))
                    .map_err(storage("write migrated records"))?;
                pending = 0;
            }
            if done % PROGRESS_EVERY == 0 {
                tracing::info!(tree = t.name, done, total, "migrating records");
            }
        }
        if pending > 0 {
            ks.apply_batch(batch)
                .map_err(storage("write migrated records"))?;
        }
        tracing::info!(tree = t.name, done, total, "migrated tree");
        trees.push((t.name, done));
    }
    fold_reminders(&ks)?;
    let mut batch = sled::Batch::default();
    let n_tallies = tallies.len() as u64;
    for (key, n) in tallies {
        batch.insert(slotted(slot::TALLIES, &key), n.to_be_bytes().to_vec());
    }
    ks.apply_batch(batch).map_err(storage("write tallies"))?;
    flush(db)?;
    Ok(Copied {
        trees,
        tallies: n_tallies,
    })
}

/// The switch: `meta/schema_version` = `version` (2 after the copy from schema 1, 3 after
/// the client index is built), flushed.
pub(crate) fn switch(db: &sled::Db, version: u32) -> Result<(), StoreError> {
    let meta = db.open_tree(META).map_err(storage("open meta"))?;
    meta.insert(SCHEMA_KEY, &version.to_be_bytes())
        .map_err(storage("write schema version"))?;
    flush(db)
}

/// Schema 2 to 3, step 1: clears the clients' invoice index, then writes one entry per invoice
/// record of `records`, in batches of [`BATCH`], and flushes; returns how many. Writes nothing
/// but that index, so it can run again after a crash. Logs the start (with the number of
/// invoices), progress every [`PROGRESS_EVERY`] invoices, and the end.
pub(crate) fn build_client_index(db: &sled::Db, dir: &Path) -> Result<u64, StoreError> {
    let ks = db.open_tree(KEYSPACE).map_err(storage("open keyspace"))?;
    clear_slot(&ks, slot::CLIENT_INVOICES)?;
    let total = ks.scan_prefix([slot::INVOICES]).count();
    tracing::info!(
        dir = %dir.display(),
        from = V2,
        to = TARGET_VERSION,
        invoices = total,
        "indexing each client's invoices; if plazo is stopped meanwhile, the next start does it \
         again"
    );
    let (mut batch, mut pending, mut done) = (sled::Batch::default(), 0usize, 0u64);
    for entry in ks.scan_prefix([slot::INVOICES]) {
        let (key, value) = entry.map_err(storage("read an invoice"))?;
        let (entry, line) = client_invoice_entry(key.get(1..).unwrap_or_default(), &value)?;
        batch.insert(slotted(slot::CLIENT_INVOICES, &entry.encode()), line);
        pending += 1;
        done += 1;
        if pending == BATCH {
            ks.apply_batch(std::mem::take(&mut batch))
                .map_err(storage("write the client index"))?;
            pending = 0;
        }
        if done % PROGRESS_EVERY == 0 {
            tracing::info!(done, total, "indexing invoices");
        }
    }
    if pending > 0 {
        ks.apply_batch(batch)
            .map_err(storage("write the client index"))?;
    }
    flush(db)?;
    tracing::info!(done, total, "indexed invoices");
    Ok(done)
}

/// The client index entry of the invoice record `value` stored under `key` (its invoice id,
/// without the slot byte), and its value (the invoice's [`IndexLine`], encoded); a record or
/// key that does not decode is [`StoreError::Corrupt`].
fn client_invoice_entry(
    key: &[u8],
    value: &[u8],
) -> Result<(ClientInvoiceKey, Vec<u8>), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        tree: "invoices",
        key: describe_raw(key),
        reason,
    };
    let invoice =
        <InvoiceId as KeyCodec>::decode(key).map_err(|e| corrupt(format!("bad key: {e}")))?;
    let record = InvoiceRecord::decode(value).map_err(|e| corrupt(e.to_string()))?;
    let line = IndexLine::of(&record.invoice)
        .encode()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok((
        ClientInvoiceKey {
            client: record.invoice.client_id,
            invoice,
        },
        line,
    ))
}

/// Removes every key under `slot` of the keyspace, in batches of [`BATCH`].
fn clear_slot(ks: &sled::Tree, slot: u8) -> Result<(), StoreError> {
    loop {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for entry in ks.scan_prefix([slot]).keys().take(BATCH) {
            batch.remove(entry.map_err(storage("read the client index"))?);
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        ks.apply_batch(batch)
            .map_err(storage("clear the client index"))?;
    }
}

/// `slot` ++ `key`.
fn slotted(slot: u8, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(slot);
    k.extend_from_slice(key);
    k
}

/// Checks a schema-1 record of kind `kind` and returns its schema-2 key, when it changed (the
/// inbox queue is ordered by due time since schema 2), and value; counts log lines in
/// `tallies` (encoded [`HourKey`] → count).
fn convert(
    kind: Kind,
    key: &[u8],
    value: &[u8],
    v1_reminders: &sled::Tree,
    tallies: &mut BTreeMap<Vec<u8>, u64>,
) -> Result<(Option<Vec<u8>>, Vec<u8>), String> {
    let bad_key = |e: String| format!("bad key: {e}");
    let reminder = |id: &ReminderId| -> Result<Reminder, String> {
        match v1_reminders.get(id.encode()) {
            Ok(Some(raw)) => v1::decode_json::<Reminder>(&raw),
            Ok(None) => Err(format!("names reminder {id}, which is not stored")),
            Err(e) => Err(format!("cannot read reminder {id}: {e}")),
        }
    };
    match kind {
        Kind::InboxQueue => {
            let TextKey(event) = TextKey::decode(key).map_err(bad_key)?;
            let at: Timestamp = v1::decode_json(value)?;
            Ok((Some(QueueKey { at, key: event }.encode()), Vec::new()))
        }
        Kind::Due => {
            let (at, id) = DueKey::decode_v1(key).map_err(bad_key)?;
            v1::decode_empty(value)?;
            let invoice = reminder(&id)?.invoice_id;
            Ok((Some(DueKey { at, id, invoice }.encode()), Vec::new()))
        }
        Kind::Inflight => {
            let id = ReminderId::decode(key).map_err(bad_key)?;
            v1::decode_empty(value)?;
            let r = reminder(&id)?;
            let key = InflightKey {
                invoice: r.invoice_id.clone(),
                id,
            };
            Ok((Some(key.encode()), binary(&r)?))
        }
        Kind::Invoice => {
            <InvoiceId as KeyCodec>::decode(key).map_err(bad_key)?;
            let invoice: Invoice = v1::decode_json(value)?;
            Ok((None, binary(&InvoiceRecord::new(invoice))?))
        }
        _ => convert_value(kind, key, value, tallies).map(|v| (None, v)),
    }
}

/// Moves every reminder copied under the old reminders slot into its invoice's record, in
/// batches of [`BATCH`] (all of them, cancelled ones too: nothing is dropped on the way).
fn fold_reminders(ks: &sled::Tree) -> Result<(), StoreError> {
    let corrupt = |key: &[u8], reason: String| StoreError::Corrupt {
        tree: "reminders",
        key: describe_raw(key),
        reason,
    };
    let mut records = std::collections::HashMap::<InvoiceId, InvoiceRecord>::new();
    let mut moved = Vec::new();
    let write = |records: &mut std::collections::HashMap<InvoiceId, InvoiceRecord>,
                 moved: &mut Vec<Vec<u8>>|
     -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (id, record) in records.drain() {
            let value = record
                .encode()
                .map_err(|e| corrupt(id.as_str().as_bytes(), e.to_string()))?;
            batch.insert(slotted(slot::INVOICES, &KeyCodec::encode(&id)), value);
        }
        for key in moved.drain(..) {
            batch.remove(key);
        }
        ks.apply_batch(batch)
            .map_err(storage("fold reminders into invoices"))
    };
    for entry in ks.scan_prefix([slot::REMINDERS]) {
        let (key, value) = entry.map_err(storage("read a copied reminder"))?;
        let r = Reminder::decode(&value).map_err(|e| corrupt(&key, e.to_string()))?;
        if !records.contains_key(&r.invoice_id) {
            let raw = ks
                .get(slotted(slot::INVOICES, &KeyCodec::encode(&r.invoice_id)))
                .map_err(storage("read a copied invoice"))?
                .ok_or_else(|| {
                    corrupt(
                        &key,
                        format!("names invoice {}, which is not stored", r.invoice_id),
                    )
                })?;
            let record = InvoiceRecord::decode(&raw).map_err(|e| corrupt(&key, e.to_string()))?;
            records.insert(r.invoice_id.clone(), record);
        }
        if let Some(record) = records.get_mut(&r.invoice_id) {
            record.reminders.push(r);
        }
        moved.push(key.to_vec());
        if moved.len() >= BATCH {
            write(&mut records, &mut moved)?;
        }
    }
    write(&mut records, &mut moved)
}

/// The schema-2 value of a schema-1 record whose key does not change.
fn convert_value(
    kind: Kind,
    key: &[u8],
    value: &[u8],
    tallies: &mut BTreeMap<Vec<u8>, u64>,
) -> Result<Vec<u8>, String> {
    let bad_key = |e: String| format!("bad key: {e}");
    match kind {
        Kind::Client => {
            ClientId::decode(key).map_err(bad_key)?;
            reencode::<Client>(value)
        }
        Kind::Invoice => Err("the invoice record changes: see `convert`".to_owned()),
        Kind::Reminder => {
            ReminderId::decode(key).map_err(bad_key)?;
            reencode::<Reminder>(value)
        }
        Kind::Due | Kind::Inflight => Err("the key changes: see `convert`".to_owned()),
        Kind::Log => {
            LogKey::decode(key).map_err(bad_key)?;
            let a: Attempt = v1::decode_json(value)?;
            if let Some(t) = Tally::of(&a) {
                let k = HourKey {
                    hour: hour_of(a.at),
                    tally: t as u8,
                }
                .encode();
                let n = tallies.entry(k).or_insert(0);
                *n = n.saturating_add(1);
            }
            binary(&a)
        }
        Kind::LogByTime => Err("the log's time index is not migrated".to_owned()),
        Kind::Webhook => {
            WebhookKey::decode(key).map_err(bad_key)?;
            reencode::<Timestamp>(value)
        }
        Kind::Contact => {
            TextKey::decode(key).map_err(bad_key)?;
            reencode::<Contact>(value)
        }
        Kind::Message => {
            TextKey::decode(key).map_err(bad_key)?;
            reencode::<SentMessage>(value)
        }
        Kind::ClientLog => {
            ClientLogKey::decode(key).map_err(bad_key)?;
            reencode::<ContactEvent>(value)
        }
        Kind::Inbox => {
            TextKey::decode(key).map_err(bad_key)?;
            reencode::<InboxEntry>(value)
        }
        Kind::InboxQueue => Err("the inbox queue's key changes: see `convert`".to_owned()),
        Kind::Number => {
            TextKey::decode(key).map_err(bad_key)?;
            reencode::<InvoiceId>(value)
        }
    }
}

/// Decodes a schema-1 JSON value as `T` and returns its binary record.
fn reencode<T: DeserializeOwned + Record + PartialEq>(value: &[u8]) -> Result<Vec<u8>, String> {
    binary(&v1::decode_json::<T>(value)?)
}

/// The binary record of `v`, checked to read back equal (so nothing changes on the way).
fn binary<T: Record + PartialEq>(v: &T) -> Result<Vec<u8>, String> {
    let bytes = v
        .encode()
        .map_err(|e| format!("cannot be written in the new layout: {e}"))?;
    match T::decode(&bytes) {
        Ok(back) if back == *v => Ok(bytes),
        Ok(_) => Err(format!(
            "the {} would change in the new layout (a value the domain does not round-trip)",
            T::KIND
        )),
        Err(e) => Err(format!("would not read back in the new layout: {e}")),
    }
}

fn flush(db: &sled::Db) -> Result<(), StoreError> {
    db.flush().map(|_| ()).map_err(storage("flush"))
}

fn storage(op: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |source| StoreError::Storage { op, source }
}

#[cfg(test)]
mod tests;
