//! The simulated days: the real dispatcher over the scratch store under a manual clock that
//! jumps from one due reminder to the next, and the daily re-evaluation of segment rules at the
//! times the daemon's `[housekeeping] resegment` schedule gives.

use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;

use super::channel::{SimChannel, SimMessage};
use super::{SimulateError, SimulationEnv};
use crate::clock::{Clock, ManualClock, SharedClock};
use crate::dispatch::{ChannelRoutes, Dispatcher, Wake};
use crate::service::{PolicyHandle, resegment_all};
use crate::store::Store;

/// Clock jumps one simulation may make before it is stopped as a runaway.
const MAX_TURNS: u64 = 5_000_000;

/// Runs `policy` over `scratch` from `from` to `to` (exclusive) and returns every message sent,
/// in sending order.
pub(super) async fn run(
    scratch: &Store,
    policy: &PolicyHandle,
    env: &SimulationEnv,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<SimMessage>, SimulateError> {
    let clock = ManualClock::new(from);
    let shared: SharedClock = Arc::new(clock.clone());
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut routes = ChannelRoutes::default();
    for kind in &env.routed {
        let channel = SimChannel::new(kind, shared.clone(), scratch.clone(), sent.clone());
        routes.insert(kind.clone(), Arc::new(channel));
    }
    let dispatcher = Dispatcher {
        store: scratch.clone(),
        policy: policy.clone(),
        routes,
        clock: shared,
        config: env.dispatch.clone(),
        wake: Arc::new(Wake::default()),
        unsubscribe: None,
        turns: Default::default(),
        statements: Default::default(),
        // Its own recorder: simulated sends never show in the daemon's metrics.
        telemetry: Default::default(),
        shared: None,
    };
    let passes = env
        .resegment
        .as_deref()
        .map(super::cron::DailyPass::parse)
        .transpose()?;
    let mut next_pass = match &passes {
        Some(p) => p.next_after(from, true),
        None => None,
    };
    let mut idle_at: Option<Timestamp> = None;
    for _ in 0..MAX_TURNS {
        let due = scratch.next_due()?;
        let pass_first = next_pass.is_some_and(|p| due.is_none_or(|d| p <= d));
        let Some(t) = (if pass_first { next_pass } else { due }) else {
            return Ok(take(&sent));
        };
        if t >= to {
            return Ok(take(&sent));
        }
        let now = t.max(clock.now());
        clock.set(now);
        if pass_first {
            let (store, p) = (scratch.clone(), policy.current());
            tokio::task::spawn_blocking(move || resegment_all(&store, &p.policy, now))
                .await
                .map_err(|e| SimulateError::Task(e.to_string()))??;
            next_pass = passes.as_ref().and_then(|p| p.next_after(now, false));
            continue;
        }
        if dispatcher.dispatch_due_once().await? == 0 {
            // Due, yet nothing could be claimed: never spin on it.
            if idle_at == Some(now) {
                return Err(SimulateError::Stuck(now));
            }
            idle_at = Some(now);
        }
    }
    Err(SimulateError::Runaway(MAX_TURNS))
}

fn take(sent: &Mutex<Vec<SimMessage>>) -> Vec<SimMessage> {
    std::mem::take(&mut *sent.lock().unwrap_or_else(PoisonError::into_inner))
}
