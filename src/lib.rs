//! plazo chases unpaid invoices so that people don't have to.
//!
//! # Layout
//!
//! - [`domain`]: identifiers, money, clients, invoices, reminders, the communication log.
//! - [`clock`]: the one source of "now" ([`clock::Clock`]), so tests drive time.
//! - [`policy`]: the TOML policy (segments, cadences, windows) parsed into validated types.
//! - [`channels`]: the [`channels::Channel`] trait and one module per adapter.
//! - [`schedule`]: the pure planner (cadence steps → fire times, catch-up, contact windows).
//! - [`store`]: sled trees, key codecs, transactions, due index, group commit.

pub mod channels;
pub mod clock;
pub mod domain;
pub mod policy;
pub mod schedule;
pub mod store;
