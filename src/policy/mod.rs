//! The collection policy ops edit: defaults, segments, cadences and their steps.
//!
//! [`load_policy`] reads `policy.toml` (shape in [`mod@file`]), checks it, and returns the validated
//! [`model`] types together with the compiled [`crate::templates::Templates`]. Every error names
//! the file, line and column, the field, and what would be valid.

pub mod error;
pub mod file;
pub mod load;
pub mod model;
pub mod rules;
pub mod tasks;
pub mod terms;
mod validate;

pub use error::{Location, PolicyError};
pub use load::{LoadedPolicy, load_policy, parse_policy};
pub use model::{
    Cadence, Company, ContactWindow, Defaults, FactsRules, Offset, OnExhausted, Partner, Policy,
    Segment, Step, StepAction,
};
pub use rules::{RuleError, SegmentRules};
pub use tasks::{InboundRules, OtherReplies, PriorityExpr, TaskRules};
pub use validate::load_checked_policy;
