//! Conformance checks of the task store: tasks written with their command, the live index
//! (the queue, per invoice, per client) following each task's state, durability.

use jiff::{Timestamp, ToSpan};
use rust_decimal::Decimal;

use super::{Harness, t0, write};
use crate::domain::{ClientId, InvoiceId, Task, TaskId, TaskKind, TaskState};
use crate::store::{Store, abort};

/// A new open call task about `invoice` of `client`, created at `at`, with an id from the
/// store.
fn new_task(store: &Store, invoice: Option<&str>, client: &str, at: Timestamp) -> Task {
    store
        .transaction::<_, ()>(|tx| {
            let t = Task {
                id: tx.new_task_id(at)?,
                kind: if invoice.is_some() {
                    TaskKind::Call
                } else {
                    TaskKind::Review
                },
                invoice_id: invoice.map(|i| InvoiceId::new(i).unwrap()),
                client_id: ClientId::new(client).unwrap(),
                segment: "standard".into(),
                reason: "test".into(),
                state: TaskState::Open,
                priority: Decimal::new(100, 0),
                due_at: at,
                attempt: 1,
                agent: None,
                claimed_at: None,
                result: None,
                note: None,
                created_at: at,
                updated_at: at,
            };
            tx.put_task(&t)?;
            Ok(t)
        })
        .unwrap()
        .unwrap()
}

fn ids(tasks: &[Task]) -> Vec<TaskId> {
    tasks.iter().map(|t| t.id).collect()
}

/// A task is written by its command or not at all (an aborted command leaves nothing, not
/// even an index entry); ids grow; tasks survive a reopen byte for byte.
pub(crate) fn tasks_are_written_with_their_command_and_survive_reopen(h: &dyn Harness) {
    let (a, b);
    {
        let store = h.open();
        a = new_task(&store, Some("FV-1"), "c-1", t0());
        b = new_task(&store, None, "c-1", t0());
        assert!(b.id > a.id, "ids grow");
        let dropped = store
            .transaction::<(), TaskId>(|tx| {
                let mut t = a.clone();
                t.id = tx.new_task_id(t0())?;
                tx.put_task(&t)?;
                abort(t.id)
            })
            .unwrap()
            .unwrap_err();
        assert_eq!(store.task(&dropped).unwrap(), None);
        assert_eq!(ids(&store.live_tasks().unwrap()), vec![a.id, b.id]);
        store.close().unwrap();
    }
    let store = h.open();
    assert_eq!(store.task(&a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.task(&b.id).unwrap(), Some(b.clone()));
    assert_eq!(ids(&store.live_tasks().unwrap()), vec![a.id, b.id]);
    let later = new_task(&store, Some("FV-2"), "c-2", t0());
    assert!(later.id > b.id, "ids keep growing after a reopen");
    assert_eq!(
        ids(&store.recent_tasks(10).unwrap()),
        vec![later.id, b.id, a.id],
        "newest first"
    );
    assert_eq!(ids(&store.recent_tasks(1).unwrap()), vec![later.id]);
}

/// Open and claimed tasks are live: in the queue and listed under their invoice and client
/// (also inside the command that wrote them); done and cancelled ones are not, but stay
/// readable by id; a task back to open is live again.
pub(crate) fn tasks_index_follows_each_task_state(h: &dyn Harness) {
    let store = h.open();
    let call = new_task(&store, Some("FV-1"), "c-1", t0());
    let other = new_task(&store, Some("FV-10"), "c-1", t0() + 1.hour());
    let review = new_task(&store, None, "c-1", t0() + 2.hours());
    let elsewhere = new_task(&store, Some("FV-2"), "c-2", t0() + 3.hours());
    let inv1 = InvoiceId::new("FV-1").unwrap();
    let c1 = ClientId::new("c-1").unwrap();
    let of_invoice = |store: &Store, inv: &InvoiceId| {
        store
            .transaction::<_, ()>(|tx| Ok(ids(&tx.live_tasks_of_invoice(inv)?)))
            .unwrap()
            .unwrap()
    };
    let of_client = |store: &Store, c: &ClientId| {
        store
            .transaction::<_, ()>(|tx| Ok(ids(&tx.live_tasks_of_client(c)?)))
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        of_invoice(&store, &inv1),
        vec![call.id],
        "FV-10 is not FV-1"
    );
    assert_eq!(of_client(&store, &c1), vec![call.id, other.id, review.id]);

    // Claimed: still live.
    let mut claimed = call.clone();
    claimed.state = TaskState::Claimed;
    claimed.agent = Some("ana".into());
    claimed.claimed_at = Some(t0());
    write(&store, |tx| Ok(tx.put_task(&claimed)?));
    assert_eq!(of_invoice(&store, &inv1), vec![call.id]);
    assert_eq!(store.task(&call.id).unwrap(), Some(claimed.clone()));

    // Done, inside one command: the command itself no longer sees it as live.
    let mut done = claimed.clone();
    done.state = TaskState::Done;
    let seen = store
        .transaction::<_, ()>(|tx| {
            tx.put_task(&done)?;
            Ok(ids(&tx.live_tasks_of_invoice(&inv1)?))
        })
        .unwrap()
        .unwrap();
    assert!(seen.is_empty());
    assert_eq!(of_invoice(&store, &inv1), Vec::<TaskId>::new());
    assert_eq!(of_client(&store, &c1), vec![other.id, review.id]);
    assert_eq!(
        ids(&store.live_tasks().unwrap()),
        vec![other.id, review.id, elsewhere.id]
    );
    assert_eq!(store.task(&call.id).unwrap(), Some(done.clone()));

    // Cancelled: gone from the live lists too.
    let mut cancelled = review.clone();
    cancelled.state = TaskState::Cancelled;
    write(&store, |tx| Ok(tx.put_task(&cancelled)?));
    assert_eq!(of_client(&store, &c1), vec![other.id]);

    // Reopened: live again.
    let mut reopened = done;
    reopened.state = TaskState::Open;
    write(&store, |tx| Ok(tx.put_task(&reopened)?));
    assert_eq!(of_invoice(&store, &inv1), vec![call.id]);
    assert_eq!(
        ids(&store.live_tasks().unwrap()),
        vec![call.id, other.id, elsewhere.id]
    );
    assert_eq!(store.recent_tasks(100).unwrap().len(), 4);
}
