//! Conformance checks of the events outbox: events written by the command that makes the
//! change they report, their index following their state, listing, pruning, durability.

use futures::FutureExt as _;
use jiff::{Timestamp, ToSpan};

use super::{Harness, client, t0, write};
use crate::domain::{Destination, EventId, EventState, OutboundEvent};
use crate::store::{EventRouting, Store, TxError, abort};

/// A new pending event of type `kind` created at `at`, with an id from the store.
fn new_event(store: &Store, kind: &str, at: Timestamp) -> OutboundEvent {
    store
        .transaction::<_, ()>(|tx| {
            let id = tx.new_event_id(at)?;
            let e = OutboundEvent::new(
                id,
                kind,
                Destination::Events,
                format!("{{\"id\":\"{id}\"}}"),
                at,
            );
            tx.put_event(&e)?;
            Ok(e)
        })
        .unwrap()
        .unwrap()
}

fn put(store: &Store, e: &OutboundEvent) {
    write(store, |tx| Ok(tx.put_event(e)?));
}

fn ids(events: &[OutboundEvent]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

/// The outbox is off until [`Store::enable_events`] (then every clone sees the routing, once);
/// an event is written by the command that writes the change it reports, or not at all when
/// that command aborts; ids grow and never repeat, also after a reopen; events survive a
/// reopen byte for byte.
pub(crate) fn events_are_written_with_their_command_and_survive_reopen(h: &dyn Harness) {
    let kept;
    let first_ids;
    {
        let store = h.open();
        let off = store
            .transaction::<_, ()>(|tx| Ok(tx.events().is_none()))
            .unwrap()
            .unwrap();
        assert!(off, "the outbox is off until enabled");
        let routing = EventRouting {
            types: Some(["invoice.paid".to_owned()].into()),
            partners: ["cobra".to_owned()].into(),
        };
        assert!(store.clone().enable_events(routing.clone()));
        assert!(!store.enable_events(EventRouting::default()), "set once");
        let seen = store
            .transaction::<_, ()>(|tx| Ok(tx.events().cloned()))
            .unwrap()
            .unwrap();
        assert_eq!(seen, Some(routing));
        assert!(store.event_routing().unwrap().wants("invoice.paid"));
        assert!(!store.event_routing().unwrap().wants("invoice.reopened"));
        assert!(store.event_routing().unwrap().reaches_partner("cobra"));

        // Aborted: neither the client nor the event is written.
        let dropped = store
            .transaction::<(), EventId>(|tx| {
                tx.put_client(&client("c-9"))?;
                let id = tx.new_event_id(t0())?;
                tx.put_event(&OutboundEvent::new(
                    id,
                    "invoice.paid",
                    Destination::Events,
                    "{}".into(),
                    t0(),
                ))?;
                abort(id)
            })
            .unwrap()
            .unwrap_err();
        assert_eq!(store.event(&dropped).unwrap(), None);
        assert!(store.client(&client("c-9").id).unwrap().is_none());
        assert_eq!(store.events_due(t0(), 10).unwrap(), vec![]);

        // Kept with the change: two events and a client in one command.
        let (a, b) = store
            .transaction::<_, ()>(|tx| {
                tx.put_client(&client("c-1"))?;
                let a = OutboundEvent::new(
                    tx.new_event_id(t0())?,
                    "invoice.paid",
                    Destination::Events,
                    "{\"n\":1}".into(),
                    t0(),
                );
                let b = OutboundEvent::new(
                    tx.new_event_id(t0())?,
                    "invoice.handed_off",
                    Destination::Partner("cobra".into()),
                    "{\"n\":2}".into(),
                    t0(),
                );
                tx.put_event(&a)?;
                tx.put_event(&b)?;
                assert_eq!(
                    tx.event(&a.id)?.as_ref(),
                    Some(&a),
                    "a command reads its own event"
                );
                Ok((a, b))
            })
            .unwrap()
            .unwrap();
        assert!(a.id < b.id && dropped < a.id, "ids grow");
        assert_eq!(store.event(&b.id).unwrap().as_ref(), Some(&b));
        assert_eq!(ids(&store.events_due(t0(), 10).unwrap()), vec![a.id, b.id]);
        kept = vec![a, b];
        first_ids = ids(&kept);
        store.flush_blocking().unwrap();
    }
    let store = h.open();
    assert!(
        store.event_routing().is_none(),
        "routing is per opened store"
    );
    for e in &kept {
        assert_eq!(store.event(&e.id).unwrap().as_ref(), Some(e));
    }
    assert_eq!(ids(&store.events_due(t0(), 10).unwrap()), first_ids);
    let later = new_event(&store, "invoice.paid", t0());
    assert!(
        first_ids.iter().all(|id| *id < later.id),
        "ids keep growing after a reopen"
    );
    assert_eq!(
        store.event(&EventId::new(t0(), 999_999)).unwrap(),
        None,
        "unknown id"
    );
}

/// A pending event is due at its `next_at` (read in due order, `limit` at most); a retry
/// later moves it; delivered, it leaves the index; failed, it is listed as failed and is not
/// due; back to pending, it is due again. Listing by state is newest first.
pub(crate) fn events_index_follows_each_event_state(h: &dyn Harness) {
    let store = h.open();
    let mut a = new_event(&store, "a", t0());
    let mut b = new_event(&store, "b", t0() + 1.seconds());
    let mut c = new_event(&store, "c", t0() + 2.seconds());
    for (e, due) in [(&mut a, 1), (&mut b, 2), (&mut c, 9)] {
        e.next_at = t0() + due.minutes();
        put(&store, e);
    }
    assert_eq!(store.events_due(t0(), 10).unwrap(), vec![]);
    assert_eq!(
        ids(&store.events_due(t0() + 5.minutes(), 10).unwrap()),
        vec![a.id, b.id]
    );
    assert_eq!(
        ids(&store.events_due(t0() + 5.minutes(), 1).unwrap()),
        vec![a.id]
    );
    assert_eq!(store.events_due(t0() + 5.minutes(), 0).unwrap(), vec![]);
    assert_eq!(store.events_next_due().unwrap(), Some(t0() + 1.minutes()));

    // a: retried later (no entry left at its old time); b: delivered; c: failed.
    a.attempts = 1;
    a.next_at = t0() + 30.minutes();
    a.last_error = Some("endpoint answered 500".into());
    b.state = EventState::Delivered;
    b.attempts = 1;
    c.state = EventState::Failed;
    c.attempts = 12;
    for e in [&a, &b, &c] {
        put(&store, e);
    }
    assert_eq!(store.events_due(t0() + 20.minutes(), 10).unwrap(), vec![]);
    assert_eq!(
        ids(&store.events_due(t0() + 30.minutes(), 10).unwrap()),
        vec![a.id]
    );
    assert_eq!(store.events_next_due().unwrap(), Some(t0() + 30.minutes()));
    assert_eq!(store.event(&a.id).unwrap().as_ref(), Some(&a));

    let listed = |state, limit| ids(&store.events(state, limit).unwrap());
    assert_eq!(listed(Some(EventState::Pending), 10), vec![a.id]);
    assert_eq!(listed(Some(EventState::Delivered), 10), vec![b.id]);
    assert_eq!(listed(Some(EventState::Failed), 10), vec![c.id]);
    assert_eq!(listed(None, 10), vec![c.id, b.id, a.id], "newest first");
    assert_eq!(listed(None, 2), vec![c.id, b.id]);
    assert_eq!(listed(None, 0), vec![]);

    // More of each state: still newest first, and limited.
    let d = new_event(&store, "d", t0() + 3.seconds());
    let mut e = new_event(&store, "e", t0() + 4.seconds());
    e.state = EventState::Failed;
    put(&store, &e);
    assert_eq!(listed(Some(EventState::Pending), 10), vec![d.id, a.id]);
    assert_eq!(listed(Some(EventState::Pending), 1), vec![d.id]);
    assert_eq!(listed(Some(EventState::Failed), 10), vec![e.id, c.id]);
    assert_eq!(listed(Some(EventState::Failed), 1), vec![e.id]);

    // c retried: pending and due again, no longer failed.
    c.state = EventState::Pending;
    c.next_at = t0() + 40.minutes();
    put(&store, &c);
    assert_eq!(listed(Some(EventState::Failed), 10), vec![e.id]);
    assert_eq!(
        ids(&store.events_due(t0() + 40.minutes(), 10).unwrap()),
        vec![d.id, a.id, c.id],
        "due order"
    );
}

/// [`Store::prune_events`] forgets delivered events created before the cut-off only:
/// pending and failed ones stay whatever their age.
pub(crate) fn prune_events_forgets_only_old_delivered_ones(h: &dyn Harness) {
    let store = h.open();
    let old = t0() - (10 * 24).hours();
    let mut delivered_old = new_event(&store, "x", old);
    delivered_old.state = EventState::Delivered;
    let mut failed_old = new_event(&store, "x", old);
    failed_old.state = EventState::Failed;
    let pending_old = new_event(&store, "x", old);
    let mut delivered_new = new_event(&store, "x", t0());
    delivered_new.state = EventState::Delivered;
    for e in [&delivered_old, &failed_old, &delivered_new] {
        put(&store, e);
    }
    assert_eq!(store.prune_events(t0() - (7 * 24).hours()).unwrap(), 1);
    assert_eq!(store.prune_events(t0() - (7 * 24).hours()).unwrap(), 0);
    assert_eq!(store.event(&delivered_old.id).unwrap(), None);
    for e in [&failed_old, &pending_old, &delivered_new] {
        assert_eq!(store.event(&e.id).unwrap().as_ref(), Some(e));
    }
    assert_eq!(
        ids(&store.events(Some(EventState::Failed), 10).unwrap()),
        vec![failed_old.id]
    );
    assert_eq!(
        ids(&store.events_due(t0(), 10).unwrap()),
        vec![pending_old.id]
    );
}

/// [`Store::events_written`] is notified after a command (blocking or async) that wrote an
/// event due at once, not after one that only moved an event to a later attempt, nor after an
/// aborted one.
pub(crate) async fn events_written_is_notified_after_a_due_event_is_written(h: &dyn Harness) {
    let store = h.open();
    let woken = |store: &Store| store.events_written().notified().now_or_never().is_some();
    assert!(!woken(&store));
    let mut e = new_event(&store, "x", t0());
    assert!(woken(&store), "a new event is due at once");
    assert!(!woken(&store), "one wake-up per write");
    e.attempts = 1;
    e.next_at = t0() + 5.minutes();
    put(&store, &e);
    assert!(!woken(&store), "a later attempt wakes nobody");
    let _ = store
        .transaction::<(), ()>(|tx| {
            let id = tx.new_event_id(t0())?;
            tx.put_event(&OutboundEvent::new(
                id,
                "x",
                Destination::Events,
                "{}".into(),
                t0(),
            ))?;
            Err(TxError::Abort(()))
        })
        .unwrap();
    assert!(!woken(&store), "an aborted command wakes nobody");
    let clone = store.clone();
    clone
        .write::<_, ()>(move |tx| {
            let id = tx.new_event_id(t0())?;
            Ok(tx.put_event(&OutboundEvent::new(
                id,
                "x",
                Destination::Events,
                "{}".into(),
                t0(),
            ))?)
        })
        .await
        .unwrap()
        .unwrap();
    assert!(woken(&store), "async writes wake it too, on every clone");
}
