//! The writer's layered view: prefix reads merge the database with every pending layer, in
//! order, removals included.

use super::*;

/// A temporary database and its keyspace.
fn keyspace() -> (super::super::kv::SledKv, sled::Tree) {
    let db = sled::Config::new()
        .temporary(true)
        .flush_every_ms(None)
        .open()
        .unwrap();
    let ks = db.open_tree("records").unwrap();
    (
        super::super::kv::SledKv {
            tree: ks.clone(),
            db,
        },
        ks,
    )
}

/// An overlay holding `writes` (`None`: a removal) of slot `slot`.
fn overlay(slot: u8, writes: &[(&[u8], Option<&[u8]>)]) -> Overlay {
    let mut o = Overlay::default();
    for (k, v) in writes {
        o.insert(full_key(slot, k), v.map(IVec::from));
    }
    o
}

/// The keys (as text) and values `ctx` sees under `prefix` of `slot`.
fn seen(ctx: &Ctx<'_>, slot: u8, prefix: &[u8]) -> Vec<(String, Vec<u8>)> {
    ctx.scan_prefix(slot, prefix)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
        .collect()
}

/// Checks a prefix read of `slot` through every layer: the database, the batch being applied,
/// the batch being built, the command's own writes, each overriding the ones before it.
fn layered_prefix_read(slot: u8) {
    let (kv, ks) = keyspace();
    for k in [&b"c-1\0a"[..], b"c-1\0b", b"c-1\0c", b"c-10\0x", b"c-2\0y"] {
        ks.insert(full_key(slot, k), &b"db"[..]).unwrap();
    }
    let applying = overlay(
        slot,
        &[
            (b"c-1\0b", None),         // removed from the database's
            (b"c-1\0d", Some(b"ap")),  // added
            (b"c-1\0c", Some(b"ap")),  // rewritten
            (b"c-10\0z", Some(b"ap")), // another client, sharing the text prefix
        ],
    );
    let building = overlay(
        slot,
        &[
            (b"c-1\0d", None),        // removed from the applying batch's
            (b"c-1\0e", Some(b"bu")), // added
            (b"c-1\0g", Some(b"bu")), // added, then removed by the command
        ],
    );
    let ctx = Ctx {
        local: std::cell::RefCell::new(Overlay::default()),
        counts: Default::default(),
        building: &building,
        applying: Some(&applying),
        keyspace: &kv,
    };
    ctx.put(slot, b"c-1\0a", None);
    ctx.put(slot, b"c-1\0d", Some(b"lo".to_vec()));
    ctx.put(slot, b"c-1\0g", None);
    ctx.put(slot, b"c-1\0f", Some(b"lo".to_vec()));
    ctx.put(slot, b"c-2\0w", Some(b"lo".to_vec()));
    let c1 = seen(&ctx, slot, b"c-1\0");
    assert_eq!(
        c1,
        vec![
            ("c-1\0c".to_owned(), b"ap".to_vec()),
            ("c-1\0d".to_owned(), b"lo".to_vec()),
            ("c-1\0e".to_owned(), b"bu".to_vec()),
            ("c-1\0f".to_owned(), b"lo".to_vec()),
        ],
        "slot {slot}"
    );
    let c10: Vec<String> = seen(&ctx, slot, b"c-10\0")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(c10, ["c-10\0x", "c-10\0z"], "slot {slot}");
    let c2: Vec<String> = seen(&ctx, slot, b"c-2\0")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(c2, ["c-2\0w", "c-2\0y"], "slot {slot}");
    assert!(seen(&ctx, slot, b"c-3\0").is_empty());
    // Another slot's keys never leak in.
    let other = if slot == 0 { 1 } else { 0 };
    assert!(seen(&ctx, other, b"c-1\0").is_empty());
}

#[test]
fn a_prefix_read_of_a_scanned_slot_merges_every_layer_in_key_order() {
    assert!(slot::SCANNED.contains(&slot::CLIENT_INVOICES));
    layered_prefix_read(slot::CLIENT_INVOICES);
}

#[test]
fn a_prefix_read_of_another_slot_is_right_too() {
    assert!(!slot::SCANNED.contains(&slot::CONTACTS));
    layered_prefix_read(slot::CONTACTS);
}

#[test]
fn only_scanned_slots_are_kept_in_key_order_and_merging_keeps_them() {
    let mut a = overlay(slot::CLIENT_INVOICES, &[(b"c-1\0a", Some(b""))]);
    a.insert(full_key(slot::CONTACTS, b"x"), None);
    let b = overlay(slot::CLIENT_INVOICES, &[(b"c-1\0b", None)]);
    a.merge(b);
    assert_eq!(a.len(), 3);
    let ordered: Vec<Vec<u8>> = a.ordered.iter().cloned().collect();
    assert_eq!(
        ordered,
        vec![
            full_key(slot::CLIENT_INVOICES, b"c-1\0a"),
            full_key(slot::CLIENT_INVOICES, b"c-1\0b"),
        ]
    );
}
