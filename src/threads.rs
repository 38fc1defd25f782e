//! A background thread's handle, joined once by whichever of its owner's methods (a stop, a
//! drop) comes first.

use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

/// A thread to join once (see the module docs).
#[derive(Debug)]
pub struct JoinOnce(Mutex<Option<JoinHandle<()>>>);

impl JoinOnce {
    /// Holds `handle` until [`JoinOnce::join`].
    pub fn new(handle: JoinHandle<()>) -> JoinOnce {
        JoinOnce(Mutex::new(Some(handle)))
    }

    /// Waits for the thread to end; at once if it was joined before. A panic in the thread
    /// is not propagated (the owner has stopped it and carries on).
    pub fn join(&self) {
        let handle = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn joins_once_and_then_returns_at_once() {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        let t = JoinOnce::new(std::thread::spawn(move || {
            r.fetch_add(1, Ordering::SeqCst);
        }));
        t.join();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        t.join();
        let panicking = JoinOnce::new(std::thread::spawn(|| panic!("in the thread")));
        panicking.join();
    }
}
