//! The send slot a reminder holds while the dispatcher processes it: one of
//! `dispatch.concurrency` permits, given back as soon as the reminder's outcome is applied,
//! before that outcome is on disk.
//!
//! Holding the slot through the outcome's flush would keep every slot idle for one more group
//! commit per reminder, while nothing that slot guards is still in progress. Giving it back at
//! apply changes no guarantee:
//! - the claim was on disk before the message went out, so a crash before the outcome's flush
//!   leaves the reminder in flight on disk, resolved at the next start by the in-doubt rule
//!   (`on_unknown`), exactly as a crash during the send itself;
//! - the reminder's task still waits for the outcome's flush (and records it again if the store
//!   failed to write it), and the drain at shutdown waits for that task;
//! - anything claimed later is flushed after the outcome: one store, flushes in apply order.
//!
//! The slot travels with the reminder's task as a task-local, so the processing code (its
//! many endings) needs no extra parameter: [`release`] is called at the one place an outcome
//! is committed, and the slot is dropped anyway when the task ends.

use std::cell::RefCell;
use std::future::Future;

use tokio::sync::OwnedSemaphorePermit;

tokio::task_local! {
    /// The slot of the reminder the current task is processing, until released.
    static SLOT: RefCell<Option<OwnedSemaphorePermit>>;
}

/// Runs `work` (one reminder's processing) holding `slot` until [`release`] or the end.
pub(super) async fn holding<F: Future>(slot: OwnedSemaphorePermit, work: F) -> F::Output {
    SLOT.scope(RefCell::new(Some(slot)), work).await
}

/// Gives back the current task's send slot, if it holds one (a reminder processed outside
/// the loop, e.g. by `dispatch_due_once`, holds none).
pub(super) fn release() {
    let _ = SLOT.try_with(|slot| drop(slot.borrow_mut().take()));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    #[tokio::test]
    async fn the_slot_is_given_back_at_release_not_at_the_end() {
        let slots = Arc::new(Semaphore::new(1));
        let slot = Arc::clone(&slots).acquire_owned().await.unwrap();
        let seen = holding(slot, async {
            let before = slots.available_permits();
            release();
            let after = slots.available_permits();
            release(); // a second release is harmless
            (before, after, slots.available_permits())
        })
        .await;
        assert_eq!(seen, (0, 1, 1));
    }

    #[tokio::test]
    async fn an_unreleased_slot_is_given_back_when_the_work_ends() {
        let slots = Arc::new(Semaphore::new(1));
        let slot = Arc::clone(&slots).acquire_owned().await.unwrap();
        let held = holding(slot, async { slots.available_permits() }).await;
        assert_eq!((held, slots.available_permits()), (0, 1));
    }

    #[tokio::test]
    async fn release_outside_a_slot_does_nothing() {
        release();
    }
}
