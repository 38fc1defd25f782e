//! Contact rules by jurisdiction: when, and how often, a debtor may be contacted.
//!
//! - [`week`]: local contact hours per weekday, their union and intersection.
//! - [`holidays`]: public holiday calendars (national and subdivision, 2020–2035, generated
//!   from the Python `holidays` package) with the operator's overrides.
//! - [`preset`]: one jurisdiction's rules as data (hours, holidays, caps); the built-in ones.
//! - [`rules`]: the rules that hold for one client (policy window ∩ segment ∩ presets,
//!   holidays, caps), and the next instant a contact may go out.
//! - [`caps`]: contact caps (per day, per week, spacing, channels) counted from the timelines.
//! - [`check`]: what `plazo check` says about windows that go beyond a preset.

pub mod caps;
pub mod check;
pub mod holidays;
pub mod preset;
pub mod rules;
pub mod week;
