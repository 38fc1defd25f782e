//! Scheduling: when each reminder of an invoice's cadence goes out.
//!
//! - [`planner`]: `(invoice, client, policy, now) -> Plan`, a pure function: nominal step times
//!   relative to the due date in the client's zone, catch-up for steps already past, and
//!   contact-window deferral.
//! - [`segments`]: which segment (and so which cadence and window) chases an invoice, with
//!   the policy's `when` rules.
//! - [`window`]: contact-window checks and the next allowed instant, DST-safe.

pub mod planner;
pub mod segments;
pub mod window;
mod zone;

pub use planner::{
    Plan, PlannedStatus, PlannedStep, TrackSpec, cadence_anchor, client_zone, grace_deadline,
    nominal_time, plan, plan_track, reminder_for, reminder_on,
};
pub use segments::{Chosen, choose_segment, segment_followed, segment_for};
pub use window::{is_allowed, next_allowed};

#[cfg(test)]
mod tests;
