//! Write health: whether the store can write, the fault-injection seam, and self-recovery.
//!
//! sled latches the first I/O error of a write or flush (its "global error"): from then on
//! every write and flush of that database instance fails with it, even once the disk has room
//! again, and only opening the database anew clears it. So when a write fails, the store marks
//! itself unhealthy (readiness reports it) and starts a recovery thread that, with backoff,
//! checks that the data directory accepts a write again (a small probe file, synced) and then
//! reopens the database in place; what was on disk is kept, and changes that never became
//! durable (none of them was acknowledged) are dropped. Reads keep working from the old
//! instance until the reopen.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Name of the probe file written in the store directory before a reopen.
const PROBE_FILE: &str = "write-probe";

/// First wait before a recovery attempt; doubled after each failed one.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// Longest wait between recovery attempts.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Test seam: makes every store write and flush fail as on a full disk, until cleared.
///
/// Compiled in and off by default (one atomic load per write); shared by every clone of the
/// store. Get it with [`Store::faults`](super::Store::faults).
#[derive(Debug, Clone, Default)]
pub struct FaultInjector {
    fail_writes: Arc<AtomicBool>,
}

impl FaultInjector {
    /// Makes writes fail (`true`) or lets them through again (`false`).
    pub fn fail_writes(&self, on: bool) {
        self.fail_writes.store(on, Ordering::SeqCst);
    }

    /// The injected error, when writes are set to fail.
    pub(crate) fn check(&self) -> Result<(), sled::Error> {
        if self.fail_writes.load(Ordering::SeqCst) {
            Err(sled::Error::Io(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "injected fault: no space left on device",
            )))
        } else {
            Ok(())
        }
    }
}

/// Whether the store can write, and why not.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// The last write failure not yet recovered from.
    failure: Mutex<Option<String>>,
    /// Set while a recovery thread runs.
    recovering: AtomicBool,
}

impl Health {
    /// `Err(reason)` while the store cannot write.
    pub(crate) fn status(&self) -> Result<(), String> {
        match &*self.failure.lock().unwrap_or_else(PoisonError::into_inner) {
            None => Ok(()),
            Some(reason) => Err(reason.clone()),
        }
    }

    /// Records a write failure. Returns true when the caller must start the recovery thread
    /// (none is running).
    pub(crate) fn fail(&self, reason: String) -> bool {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
        !self.recovering.swap(true, Ordering::SeqCst)
    }

    /// Records that writes work again.
    pub(crate) fn recovered(&self) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Marks the recovery thread as gone.
    pub(crate) fn recovery_ended(&self) {
        self.recovering.store(false, Ordering::SeqCst);
    }
}

/// Whether the directory accepts a small synced write (space, permissions, a mounted disk).
pub(crate) fn directory_writable(dir: &Path, faults: &FaultInjector) -> std::io::Result<()> {
    faults.check().map_err(|e| match e {
        sled::Error::Io(io) => io,
        other => std::io::Error::other(other.to_string()),
    })?;
    let path = dir.join(PROBE_FILE);
    let mut f = std::fs::File::create(&path)?;
    f.write_all(&[0u8; 4096])?;
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(&path)
}

/// The backoff before recovery attempt number `attempt` (0-based).
pub(crate) fn retry_delay(attempt: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_injector_fails_writes_until_cleared() {
        let f = FaultInjector::default();
        assert!(f.check().is_ok());
        f.clone().fail_writes(true);
        assert!(f.check().is_err());
        let dir = tempfile::tempdir().unwrap();
        assert!(directory_writable(dir.path(), &f).is_err());
        f.fail_writes(false);
        assert!(f.check().is_ok());
        assert!(directory_writable(dir.path(), &f).is_ok());
    }

    #[test]
    fn only_the_first_failure_starts_a_recovery() {
        let h = Health::default();
        assert!(h.status().is_ok());
        assert!(h.fail("disk full".into()));
        assert!(!h.fail("still full".into()));
        assert_eq!(h.status(), Err("still full".into()));
        h.recovered();
        h.recovery_ended();
        assert!(h.status().is_ok());
        assert!(h.fail("again".into()));
    }

    #[test]
    fn backoff_grows_then_caps() {
        assert_eq!(retry_delay(0), FIRST_RETRY);
        assert!(retry_delay(1) > retry_delay(0));
        assert_eq!(retry_delay(40), MAX_RETRY);
    }
}
