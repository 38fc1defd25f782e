//! Scheduling: when each reminder of an invoice's cadence goes out.
//!
//! - [`planner`]: `(invoice, client, policy, now) -> Plan`, a pure function: nominal step times
//!   relative to the due date in the client's zone, catch-up for steps already past, and
//!   contact-window deferral.
//! - [`window`]: contact-window checks and the next allowed instant, DST-safe.

pub mod planner;
pub mod window;

pub use planner::{
    Plan, PlannedStatus, PlannedStep, client_zone, nominal_time, plan, reminder_for, segment_for,
};
pub use window::{is_allowed, next_allowed};

#[cfg(test)]
mod tests;
