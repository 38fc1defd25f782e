//! Conformance checks of the listing reads behind the portfolio API: invoice ids in pages,
//! and the due index read as a time range in pages.

use jiff::ToSpan;

use super::{Harness, attempt, invoice, reminder, schedule, t0, write};
use crate::domain::InvoiceId;
use crate::store::{DueEntry, Store};

fn iids(ids: &[&str]) -> Vec<InvoiceId> {
    ids.iter().map(|i| InvoiceId::new(*i).unwrap()).collect()
}

fn invoice_pages(store: &Store, limit: usize) -> Vec<InvoiceId> {
    let mut all = Vec::new();
    let mut after: Option<InvoiceId> = None;
    loop {
        let page = store.invoice_ids_after(after.as_ref(), limit).unwrap();
        assert!(page.len() <= limit);
        let done = page.len() < limit;
        after = page.last().cloned().or(after);
        all.extend(page);
        if done {
            return all;
        }
    }
}

/// [`Store::invoice_ids_after`] lists invoice ids only (never clients, timelines or number
/// index entries), in byte order, after the id given (exclusive), at most `limit`; a walk in
/// pages of any size sees each invoice once; ids survive a reopen.
pub(crate) fn invoice_ids_are_paged_in_id_order(h: &dyn Harness) {
    let sorted = ["FV-1", "FV-1-a", "FV-10", "FV-2", "a"];
    {
        let store = h.open();
        assert_eq!(store.invoice_ids_after(None, 10).unwrap(), vec![]);
        write(&store, |tx| {
            tx.put_client(&super::client("FV-0"))?;
            tx.log(&attempt("FV-00", t0(), "a line only"))?;
            for id in ["FV-2", "a", "FV-10", "FV-1-a"] {
                tx.put_invoice(&invoice(id))?;
            }
            tx.create_invoice(&invoice("FV-1"), &attempt("FV-1", t0(), "new"))?;
            tx.index_number("FV-05", &InvoiceId::new("FV-2").unwrap())?;
            Ok(())
        });
        assert_eq!(store.invoice_ids_after(None, 100).unwrap(), iids(&sorted));
        assert_eq!(
            store
                .invoice_ids_after(Some(&InvoiceId::new("FV-1").unwrap()), 2)
                .unwrap(),
            iids(&["FV-1-a", "FV-10"]),
            "exclusive, and a prefix of longer ids"
        );
        assert_eq!(store.invoice_ids_after(None, 0).unwrap(), vec![]);
        for limit in 1..=6 {
            assert_eq!(
                invoice_pages(&store, limit),
                iids(&sorted),
                "pages of {limit}"
            );
        }
        store.flush_blocking().unwrap();
    }
    let store = h.open();
    assert_eq!(invoice_pages(&store, 2), iids(&sorted), "after a reopen");
}

/// [`Store::due_entries`] reads the due index in `from..to` (from inclusive, to exclusive) in
/// firing order, in pages after the last entry of the previous page; a claimed reminder is no
/// longer listed; an empty or reversed range lists nothing.
pub(crate) fn due_entries_list_a_time_range_in_pages(h: &dyn Harness) {
    let store = h.open();
    let at = |mins: i64| t0() + mins.minutes();
    // Two reminders at the same instant (ordered by reminder id), one before the range, one
    // exactly at its end.
    let rs = [
        reminder("I-1", 0, at(-1)),
        reminder("I-2", 0, at(0)),
        reminder("I-3", 0, at(10)),
        reminder("I-4", 0, at(10)),
        reminder("I-5", 1, at(20)),
        reminder("I-6", 0, at(30)),
    ];
    schedule(&store, &rs);
    let all = store.due_entries(at(0), at(30), None, 100).unwrap();
    let mut expected: Vec<DueEntry> = rs[1..5]
        .iter()
        .map(|r| DueEntry {
            at: r.fire_at,
            reminder: r.id,
            invoice: r.invoice_id.clone(),
        })
        .collect();
    expected.sort_by_key(|e| (e.at, e.reminder.to_bytes()));
    assert_eq!(all, expected);
    for limit in 1..=4 {
        let mut walked = Vec::new();
        let mut after: Option<DueEntry> = None;
        loop {
            let page = store
                .due_entries(at(0), at(30), after.as_ref(), limit)
                .unwrap();
            let done = page.len() < limit;
            after = page.last().cloned().or(after);
            walked.extend(page);
            if done {
                break;
            }
        }
        assert_eq!(walked, expected, "pages of {limit}");
    }
    assert_eq!(store.due_entries(at(30), at(0), None, 10).unwrap(), vec![]);
    assert_eq!(store.due_entries(at(0), at(30), None, 0).unwrap(), vec![]);
    // Claimed: gone from the planned list.
    let claimed = store.claim_due(at(0), 10).unwrap();
    assert_eq!(claimed.len(), 2);
    let rest = store.due_entries(at(-60), at(60), None, 100).unwrap();
    assert_eq!(rest.len(), 4);
    assert!(rest.iter().all(|e| e.at >= at(10)));
}
