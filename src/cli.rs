//! Command line: `serve`, `check`, `plan` and `report`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// plazo chases unpaid invoices so that people don't have to.
#[derive(Debug, Parser)]
#[command(name = "plazo", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve {
        /// Daemon configuration file.
        #[arg(long, default_value = "config/plazo.toml")]
        config: PathBuf,
        /// Log as JSON lines (overrides the config's log.format).
        #[arg(long)]
        json_logs: bool,
    },
    /// Validate the daemon config, the policy and every template; print a summary.
    Check {
        /// Daemon configuration file.
        #[arg(long, default_value = "config/plazo.toml")]
        config: PathBuf,
    },
    /// Print the reminders the policy would produce for an invoice.
    Plan {
        /// Daemon configuration file (its policy is used).
        #[arg(long, default_value = "config/plazo.toml")]
        config: PathBuf,
        /// Invoice JSON: the body of PUT /v1/invoices/{id}, plus "id".
        #[arg(long)]
        invoice: PathBuf,
        /// Client JSON: the body of PUT /v1/clients/{id}, plus "id". Defaults apply without it.
        #[arg(long)]
        client: Option<PathBuf>,
        /// Plan as if now were this instant (RFC 3339); default: the real now.
        #[arg(long)]
        now: Option<jiff::Timestamp>,
    },
    /// Write the portfolio report (KPIs, aging, collections, which reminder works) from the
    /// running daemon: one self-contained HTML page, or a directory of CSV files.
    Report {
        /// Daemon configuration file (where the daemon listens and its API token; `PLAZO_URL`
        /// overrides the address).
        #[arg(long, default_value = "config/plazo.toml")]
        config: PathBuf,
        /// Output: the HTML file, or the directory for the CSV files.
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
        /// `html` (one file) or `csv` (kpis.csv, aging.csv, collections.csv,
        /// effectiveness.csv, channels.csv, arrangements.csv).
        #[arg(long, value_enum, default_value = "html")]
        format: crate::report::Format,
        /// Balances as of this date (end of that day, UTC) or RFC 3339 instant; default now.
        #[arg(long)]
        as_of: Option<String>,
        /// Start of the period (date or RFC 3339); default 90 days before its end.
        #[arg(long)]
        from: Option<String>,
        /// End of the period, exclusive (date or RFC 3339); default `as_of`.
        #[arg(long)]
        to: Option<String>,
        /// Only invoices in this currency (ISO 4217).
        #[arg(long)]
        currency: Option<String>,
        /// Only invoices of this segment.
        #[arg(long)]
        segment: Option<String>,
    },
}
