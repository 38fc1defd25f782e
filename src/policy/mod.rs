//! The collection policy ops edit: defaults, segments, cadences and their steps.

pub mod model;

pub use model::{Cadence, Company, ContactWindow, Defaults, Offset, Policy, Segment, Step};
