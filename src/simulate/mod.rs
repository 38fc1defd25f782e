//! Policy simulation (`plazo simulate`, `POST /v1/simulate`): the real portfolio run for N
//! days under the policy in force and, optionally, a candidate policy, without sending
//! anything or changing anything.
//!
//! How: the live store is read (never written) and its portfolio copied into a scratch store
//! in the data directory ([`copy`]); the real [`Dispatcher`](crate::dispatch::Dispatcher) then
//! runs over the copy under a manual clock that jumps from one due reminder to the next, with
//! every channel replaced by one that records what it is handed ([`channel`]); the daily
//! re-evaluation of segment rules runs at the daemon's `[housekeeping] resegment` times
//! ([`run`]). Contact windows, holidays, legal presets, caps, grouping, `max_late`, opt-outs
//! and missing addresses therefore apply exactly as they would: the messages of a simulation
//! are those the daemon would send (checked by `tests/simulate.rs` against the dispatcher run
//! over the same days). Then the scratch store is deleted.
//!
//! Assumptions, stated in every report: nobody pays, promises or replies during the simulated
//! days; every message is accepted and delivered by its channel (no retries, no fallbacks on
//! a failed delivery); the pending reminder of each invoice is kept and a candidate policy
//! applies from each invoice's next planning, as a reload would.
//!
//! # Layout
//! - [`copy`]: the portfolio copied into the scratch store.
//! - [`channel`]: the recording channel.
//! - [`cron`]: when the daily pass runs.
//! - [`run`]: the simulated days.
//! - [`report`]: what is counted and the difference between two policies.
//! - [`show`]: the summary `plazo simulate` prints.

mod channel;
mod copy;
mod cron;
mod report;
mod run;
mod show;

use std::path::PathBuf;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

pub use channel::SimMessage;
pub use copy::Copied;
pub use report::{Cost, Difference, PolicyOutcome};
pub use show::render;

use crate::config::{DispatchConfig, SimulationConfig};
use crate::policy::LoadedPolicy;
use crate::service::{PolicyHandle, ServiceError};
use crate::store::{Store, StoreError, StoreOptions};

/// How far back timeline lines are copied: contact caps count at most a week or a calendar
/// week back, with margin.
const HISTORY: SignedDuration = SignedDuration::from_hours(24 * 35);

/// Why a simulation could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The live or scratch store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A pass over the clients failed.
    #[error("{0}")]
    Service(#[from] ServiceError),
    /// The request is out of bounds.
    #[error("{0}")]
    Invalid(String),
    /// Another simulation is running.
    #[error("another simulation is running; try again when it ends")]
    Busy,
    /// The scratch directory could not be made or removed.
    #[error("scratch directory {path}: {source}")]
    Scratch {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The daily pass's schedule does not parse.
    #[error("[housekeeping] resegment {0}")]
    Schedule(String),
    /// A reminder was due but could not be claimed.
    #[error("a reminder due at {0} could not be dispatched; the simulation stopped")]
    Stuck(Timestamp),
    /// The clock jumped too many times.
    #[error("the simulation stopped after {0} steps without reaching its end")]
    Runaway(u64),
    /// A cost overflowed.
    #[error("the estimated cost overflowed; check [simulation] prices")]
    Overflow,
    /// A blocking task failed.
    #[error("simulation task failed: {0}")]
    Task(String),
}

/// What the daemon gives every simulation.
pub struct SimulationEnv {
    /// Where scratch stores are made (`{data_dir}/simulations`).
    pub scratch_root: PathBuf,
    /// The channel kinds the daemon has routes for (a kind without one is handled as the
    /// dispatcher handles it: `[dispatch] on_unknown`).
    pub routed: Vec<String>,
    /// The dispatcher's settings.
    pub dispatch: DispatchConfig,
    /// `[housekeeping] resegment`, when the daily pass runs.
    pub resegment: Option<String>,
    /// Prices and bounds.
    pub settings: SimulationConfig,
    /// The policy file in force: a candidate sent over the API is read as if it sat next to
    /// it (its relative paths, such as `templates_dir`, resolve from there).
    pub policy_path: PathBuf,
    /// One simulation at a time.
    pub busy: tokio::sync::Mutex<()>,
}

/// What to simulate.
pub struct SimulateRequest {
    /// How many days from now (1 to `[simulation] max_days`).
    pub days: u32,
    /// A candidate policy, compared with the one in force.
    pub candidate: Option<Arc<LoadedPolicy>>,
    /// Include every message in the report.
    pub with_messages: bool,
}

/// The report of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulationReport {
    /// Start (now).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
    /// Days simulated.
    pub days: u32,
    /// What was copied from the live store.
    pub portfolio: Copied,
    /// Under the policy in force.
    pub current: PolicyOutcome,
    /// Under the candidate policy, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<PolicyOutcome>,
    /// Candidate minus current.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<Difference>,
    /// What the simulation assumes.
    pub assumptions: Vec<&'static str>,
}

/// What every report assumes.
pub const ASSUMPTIONS: [&str; 3] = [
    "nobody pays, makes a promise or replies during the simulated days",
    "every message is accepted and delivered by its channel (no retries, no fallback after a failed delivery)",
    "each invoice's pending reminder is kept; a candidate policy applies from each invoice's next planning, as a reload would",
];

/// Runs `req` over `live` (read only) as of `now`: the policy in force (`current`) and the
/// candidate, each on its own scratch copy.
pub async fn simulate(
    live: &Store,
    current: Arc<LoadedPolicy>,
    req: SimulateRequest,
    env: &SimulationEnv,
    now: Timestamp,
) -> Result<SimulationReport, SimulateError> {
    if req.days == 0 || req.days > env.settings.max_days {
        return Err(SimulateError::Invalid(format!(
            "days must be from 1 to {} ([simulation] max_days)",
            env.settings.max_days
        )));
    }
    let _one = env.busy.try_lock().map_err(|_| SimulateError::Busy)?;
    let to = now
        .checked_add(SignedDuration::from_hours(24 * i64::from(req.days)))
        .map_err(|e| SimulateError::Invalid(e.to_string()))?;
    let zone = current.policy.defaults.timezone.clone();
    let (portfolio, cur) =
        one_policy(live, Arc::clone(&current), &req, env, now, to, &zone).await?;
    let candidate = match &req.candidate {
        Some(c) => Some(
            one_policy(live, Arc::clone(c), &req, env, now, to, &zone)
                .await?
                .1,
        ),
        None => None,
    };
    let difference = candidate.as_ref().map(|c| report::difference(&cur, c));
    Ok(SimulationReport {
        from: now,
        to,
        days: req.days,
        portfolio,
        current: cur,
        candidate,
        difference,
        assumptions: ASSUMPTIONS.to_vec(),
    })
}

/// Reads a candidate policy sent as text, exactly as `plazo check` and a reload read a policy
/// file (every template rendered with sample data), as if it sat at `env.policy_path`.
pub fn parse_candidate(
    text: &str,
    env: &SimulationEnv,
) -> Result<LoadedPolicy, crate::policy::PolicyError> {
    let origin = env
        .policy_path
        .parent()
        .map(|d| d.join("candidate.toml"))
        .unwrap_or_else(|| PathBuf::from("candidate.toml"));
    let loaded = crate::policy::parse_policy(text, &origin)?;
    let problems = loaded.templates.check_all(&loaded.policy.company);
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(crate::policy::PolicyError::TemplateChecks(problems))
    }
}

/// Removes scratch stores a crash left behind (at start, before any simulation runs).
pub fn clear_scratch(root: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("sim-") {
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                tracing::warn!(dir = %e.path().display(), error = %err, "could not remove an old simulation scratch store");
            }
        }
    }
}

/// One policy on its own scratch copy, deleted afterwards.
async fn one_policy(
    live: &Store,
    policy: Arc<LoadedPolicy>,
    req: &SimulateRequest,
    env: &SimulationEnv,
    from: Timestamp,
    to: Timestamp,
    zone: &jiff::tz::TimeZone,
) -> Result<(Copied, PolicyOutcome), SimulateError> {
    let scratch = Scratch::create(&env.scratch_root)?;
    let store = Store::open(&scratch.0, StoreOptions::default())?;
    let since = from.checked_sub(HISTORY).unwrap_or(from);
    let copied = {
        let (live, store) = (live.clone(), store.clone());
        tokio::task::spawn_blocking(move || copy::copy_portfolio(&live, &store, since))
            .await
            .map_err(|e| SimulateError::Task(e.to_string()))??
    };
    let handle = PolicyHandle::from_arc(policy);
    let sent = run::run(&store, &handle, env, from, to).await;
    let outcome = match sent {
        Ok(sent) => {
            let (store2, settings, zone) = (store.clone(), env.settings.clone(), zone.clone());
            let keep = req.with_messages;
            tokio::task::spawn_blocking(move || {
                report::outcome(&store2, sent, &zone, &settings, from, to, keep)
            })
            .await
            .map_err(|e| SimulateError::Task(e.to_string()))?
        }
        Err(e) => Err(e),
    };
    // Closed before the directory goes.
    let _ = store.close();
    drop(store);
    outcome.map(|o| (copied, o))
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn create(root: &std::path::Path) -> Result<Scratch, SimulateError> {
        let dir = root.join(format!("sim-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|source| SimulateError::Scratch {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove a simulation's scratch store");
        }
    }
}
