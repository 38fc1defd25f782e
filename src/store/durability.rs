//! Group commit: one flusher thread runs `db.flush()` back to back while anyone is waiting, and
//! every waiter is released by the first flush that started after it asked.
//!
//! sled 0.34's `flush_async()` deadlocks when several tasks await it at once, so it is never
//! used. The flusher is a dedicated OS thread (the equivalent of one task doing
//! `spawn_blocking(flush)` in a loop) so that a store can be opened outside a tokio runtime and
//! outlive any runtime; waiters await a `tokio::sync::watch` channel.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::StoreError;
use super::health::FaultInjector;

/// The result of the latest completed flush.
#[derive(Clone, Debug)]
struct Completed {
    /// Number of flushes completed so far (flush numbers start at 1).
    done: u64,
    /// The error of flush number `done`, if it failed.
    error: Option<sled::Error>,
}

#[derive(Default)]
struct State {
    /// Number of flushes started so far.
    started: u64,
    /// Highest flush number someone waits for.
    wanted: u64,
    /// Set when the store is dropped.
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Handle on the flusher thread; dropping it stops the thread after pending flushes.
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    done: watch::Receiver<Completed>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`.
    pub(crate) fn start(db: sled::Db, faults: FaultInjector) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let (tx, rx) = watch::channel(Completed {
            done: 0,
            error: None,
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("plazo-store-flush".into())
            .spawn(move || run(&thread_shared, &db, &faults, &tx))
            .map_err(StoreError::Io)?;
        Ok(GroupCommit {
            shared,
            done: rx,
            thread: Some(thread),
        })
    }

    /// Resolves once a flush that started after this call has completed.
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        let target = {
            let mut st = self.shared.lock();
            let target = st.started + 1;
            st.wanted = st.wanted.max(target);
            target
        };
        self.shared.wake.notify_one();
        let mut rx = self.done.clone();
        loop {
            {
                let c = rx.borrow_and_update();
                if c.done >= target {
                    return match &c.error {
                        None => Ok(()),
                        Some(e) => Err(StoreError::Storage {
                            op: "flush",
                            source: e.clone(),
                        }),
                    };
                }
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::FlusherStopped);
            }
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            // A panicked flusher has already released its waiters (the channel closed).
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared, db: &sled::Db, faults: &FaultInjector, done: &watch::Sender<Completed>) {
    loop {
        let number = {
            let mut st = shared.lock();
            while st.wanted <= st.started && !st.shutdown {
                st = shared.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            if st.wanted <= st.started {
                return; // shut down with nobody waiting
            }
            st.started += 1;
            st.started
        };
        let error = faults.check().and_then(|()| db.flush().map(|_| ())).err();
        if let Some(e) = &error {
            tracing::error!(error = %e, "store flush failed");
        }
        done.send_replace(Completed {
            done: number,
            error,
        });
    }
}
