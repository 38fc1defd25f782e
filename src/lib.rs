//! plazo chases unpaid invoices so that people don't have to.
//!
//! Ops describe *how* to chase in a TOML policy (segments, cadences of reminder steps around
//! each invoice's due date, contact windows, templates); billing systems push clients and
//! invoices over HTTP; payment webhooks stop the chase; plazo sends each reminder once, on the
//! channel the client answers, and records every attempt.
//!
//! # Layout
//!
//! - [`domain`]: identifiers, money (bounded, checked arithmetic), strict date grammars,
//!   validation of header-bound client text, clients, invoices, reminders, the communication
//!   log, promises and payment plans (arrangements) with their oldest-first allocation, and
//!   client facts (the ledger plazo keeps of how each client pays).
//! - [`compliance`]: contact rules by jurisdiction: local hours per weekday, public holiday
//!   calendars by country and subdivision, legal presets (hours, holidays, caps) and the rules
//!   that hold for one client.
//! - [`clock`]: the one source of "now" ([`clock::Clock`]), so tests drive time.
//! - [`config`]: the daemon's own configuration file and secret sources.
//! - [`policy`]: the TOML policy (segments, cadences, windows) parsed into validated types;
//!   segments' `when` rules compiled with minijinja's expression language.
//! - [`templates`]: minijinja templates per locale, money and date formatting, and the render
//!   context (payment terms, the statement of the client's other open invoices), and `plazo
//!   check`'s warning for a text line whose line break a block tag swallows.
//! - [`schedule`]: the pure planner (`invoice, client, policy, now -> steps`, for the regular
//!   cadence or any other anchored schedule), which segment chases an invoice, and contact
//!   windows.
//! - [`store`]: the storage seam ([`store::backend`]: the domain operations a backend must
//!   do, checked for each backend by one conformance suite) and the [`store::Store`] handle
//!   service code uses (including a paged walk over every client and markers of one-time
//!   passes); the sled backend (the default, embedded one), and the PostgreSQL backend
//!   (`[store] backend = "postgres"`: the same keyspace design on one table, one leader node at
//!   a time, and the `sends` queue every node sends from): one keyspace, compact
//!   binary records, a single batching writer with group commit, schema migration, and
//!   self-recovery after write failures (a full disk).
//! - [`service`]: what API calls and webhooks do to the store (validate, change, re-plan);
//!   the agenda of each invoice (regular cadence, promise or plan instalment, broken promise);
//!   client facts kept in the same write; the thank-you queued when an invoice is paid in
//!   full; moves between segments; passes over every client
//!   (the daily re-evaluation of segment rules, the one-time facts backfill).
//! - [`simulate`]: the portfolio run for N days under the policy in force and a candidate, on
//!   a scratch copy, with the real dispatcher and recording channels; nothing is sent.
//! - [`import`]: the bulk import of clients and invoices (NDJSON or CSV, read as it arrives,
//!   each row checked as its `PUT`, stored in batches, answered once durable).
//! - [`dispatch`]: the timer loop over the due index: claim, re-check, render, send, record;
//!   [`dispatch::shared`]: on PostgreSQL, the sends handed to every node through the database
//!   (the leader's queue, each node's worker claiming with a lease).
//! - [`channels`]: the [`channels::Channel`] trait, one module per adapter (SMTP, Twilio SMS,
//!   WhatsApp Cloud API, signed webhook, outbox) and the rate limiter.
//! - [`inbound`]: signature verification and parsing of inbound webhooks (Standard Webhooks,
//!   Twilio, WhatsApp).
//! - [`payments`]: payment providers' webhooks (Stripe, Mercado Pago) normalised into one event.
//! - [`unsubscribe`]: one-click unsubscribe links (RFC 8058).
//! - [`http`]: the axum API, served by its own accept loop (connection limit, header and body
//!   timeouts, per-route body limits, socket activation); every error is the JSON envelope.
//! - [`daemon`]: assembles the parts, runs them (housekeeping jobs, the one-time facts
//!   backfill), shuts them down cleanly.
//! - [`cli`]: the command line.
//! - [`remote`]: a running daemon's API, for the commands that go through it (import, report,
//!   simulate).
//! - [`report`]: `plazo report`: the KPI and effectiveness reports fetched from a running daemon,
//!   written as one self-contained HTML page (SVG charts drawn with `plotters`) or CSV files.
//! - [`telemetry`]: the daemon's Prometheus metrics: one recorder per daemon, every metric
//!   named and described in one place, the HTTP request layer, rendered by `GET /metrics`.
//! - [`threads`]: a background thread's handle joined once.
//! - [`systemd`]: the notify protocol (ready, stopping, watchdog pings from the dispatcher).

pub mod channels;
pub mod cli;
pub mod clock;
pub mod compliance;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod domain;
pub mod http;
pub mod import;
pub mod inbound;
pub mod payments;
pub mod policy;
pub mod remote;
pub mod report;
pub mod schedule;
pub mod service;
pub mod simulate;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod templates;
pub mod threads;
pub mod unsubscribe;
