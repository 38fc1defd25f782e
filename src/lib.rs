//! plazo chases unpaid invoices so that people don't have to.
//!
//! # Layout
//!
//! - [`domain`]: identifiers, money, clients, invoices, reminders, the communication log.
//! - [`clock`]: the one source of "now" ([`clock::Clock`]), so tests drive time.
//! - [`policy`]: the TOML policy (segments, cadences, windows) parsed into validated types.
//! - [`templates`]: minijinja message templates per locale, fallback, money and date formatting.
//! - [`channels`]: the [`channels::Channel`] trait and one module per adapter.
//! - [`store`]: sled trees, key codecs, transactions, due index, group commit.

pub mod channels;
pub mod clock;
pub mod domain;
pub mod policy;
pub mod store;
pub mod templates;
