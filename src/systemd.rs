//! systemd's notify protocol (`Type=notify`, via the `sd-notify` crate): `READY=1` once the API
//! listens and the dispatcher runs, `STOPPING=1` when a clean stop begins, and `WATCHDOG=1`
//! pings from the dispatcher loop itself, so that a loop that stops turning is restarted by
//! systemd (`WatchdogSec=` in the unit). Outside systemd (no `NOTIFY_SOCKET`) every call does
//! nothing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Tells the service manager the daemon is ready, with a status line for `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager a clean stop has begun.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// How often the watchdog wants a ping: half the period systemd set (`WATCHDOG_USEC`), or
/// `None` when it set none (then nothing is pinged).
pub fn watchdog_interval() -> Option<Duration> {
    static INTERVAL: OnceLock<Option<Duration>> = OnceLock::new();
    *INTERVAL.get_or_init(|| sd_notify::watchdog_enabled().map(|d| d / 2))
}

/// Pings the watchdog if half its period has passed since the last ping. Called on every turn
/// of the dispatcher loop (which never sleeps longer than [`watchdog_interval`]).
pub fn watchdog_tick() {
    static START: OnceLock<Instant> = OnceLock::new();
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    let Some(every) = watchdog_interval() else {
        return;
    };
    let start = START.get_or_init(crate::clock::monotonic_now);
    let now_ms = u64::try_from(crate::clock::elapsed_since(*start).as_millis()).unwrap_or(u64::MAX);
    let last = LAST_MS.load(Ordering::Relaxed);
    let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
    if last == 0 || now_ms.saturating_sub(last) >= every_ms {
        LAST_MS.store(now_ms.max(1), Ordering::Relaxed);
        send(&[NotifyState::Watchdog]);
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}
