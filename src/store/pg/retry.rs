//! Batches the server rolled back because they collided with another transaction run again.
//!
//! PostgreSQL answers `serialization_failure` (SQLSTATE `40001`: under `REPEATABLE READ` or
//! `SERIALIZABLE`, which CockroachDB and YugabyteDB use by default) or `deadlock_detected`
//! (`40P01`: another session, an operator's or a migration's, locking the same rows in another
//! order) only after rolling the whole transaction back. Nothing of it was committed, so running
//! the same writes again is the same as running them once: [`retrying`] does, a few times, with a
//! short growing pause. Any other failure, above all a lost connection (then the commit's
//! outcome is unknown), is returned at once, as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use postgres::error::SqlState;

use super::pg_text;

/// Runs of one batch at most (the first and four more).
pub(crate) const ATTEMPTS: u32 = 5;

/// Whether the server rolled the transaction back for a conflict that running it again can
/// resolve.
pub(crate) fn is_conflict(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// The pause before run `attempt` + 1: 10, 20, 40, 80 ms.
fn pause(attempt: u32) -> Duration {
    Duration::from_millis(5u64 << attempt.min(6))
}

/// Runs `batch` (one whole transaction, begun and committed inside) until it commits, fails
/// for another reason, or has conflicted [`ATTEMPTS`] times; counts each run again in
/// `retries`.
pub(crate) fn retrying<T>(
    retries: &AtomicU64,
    mut batch: impl FnMut() -> Result<T, postgres::Error>,
) -> Result<T, postgres::Error> {
    let mut attempt = 1;
    loop {
        match batch() {
            Err(e) if attempt < ATTEMPTS && is_conflict(&e) => {
                retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    attempt,
                    error = %pg_text(&e),
                    "PostgreSQL rolled a batch back (a conflict with another transaction): running it again"
                );
                std::thread::sleep(pause(attempt));
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pauses_grow_and_stay_short() {
        let pauses: Vec<u64> = (1..ATTEMPTS).map(|a| pause(a).as_millis() as u64).collect();
        assert_eq!(pauses, vec![10, 20, 40, 80]);
    }

    #[test]
    fn a_failure_without_a_conflict_is_returned_at_once() {
        let retries = AtomicU64::new(0);
        let mut runs = 0;
        // An error the client makes itself (no SQLSTATE): a connection that cannot be made.
        let r: Result<(), _> = retrying(&retries, || {
            runs += 1;
            postgres::Config::new()
                .host("127.0.0.1")
                .port(1)
                .connect_timeout(Duration::from_millis(200))
                .connect(postgres::NoTls)
                .map(|_| ())
        });
        assert!(r.is_err());
        assert_eq!(runs, 1);
        assert_eq!(retries.load(Ordering::Relaxed), 0);
    }
}
