//! Command line: `serve`, `check`, `plan`, `import`, `report` and `simulate`.

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
    /// Apply the store's pending schema migrations and exit (PostgreSQL: the versioned SQL
    /// migrations; sled: the in-place migration a start would do). Safe to run while other
    /// nodes run: migrations take an advisory lock.
    Migrate {
        /// Daemon configuration file (its `[store]` is used).
        #[arg(long, default_value = "config/plazo.toml")]
        config: PathBuf,
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
    /// Run the portfolio for N days under the policy in force and, with --policy, a candidate
    /// policy, through the running daemon: messages per day, channel, segment and step,
    /// deferrals, caps hit, estimated cost, and the difference. Sends and changes nothing.
    Simulate {
        /// Daemon configuration file (where the daemon listens, its token).
        #[arg(long, default_value = "config/plazo.toml")]
        config: PathBuf,
        /// A candidate policy file to compare with the one in force (its relative paths
        /// resolve next to the daemon's policy file).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Days to simulate from now.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Print the daemon's JSON report instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Import clients and invoices (CSV or NDJSON files) into the running daemon: clients
    /// first, then invoices; each row is answered as it is stored. Exits non-zero when any
    /// row failed.
    Import {
        /// Daemon configuration file (where the daemon listens, its API token).
        #[arg(long, default_value = "config/plazo.toml")]
        config: PathBuf,
        /// Files whose kind is read from their header (CSV) or first row (NDJSON): invoices
        /// have `client_id` and `amount` columns, anything else is clients. `.csv` is CSV,
        /// `.ndjson`/`.jsonl` NDJSON, other names by their first character.
        files: Vec<PathBuf>,
        /// A file of clients, whatever its header says (repeatable).
        #[arg(long = "clients", value_name = "FILE")]
        clients: Vec<PathBuf>,
        /// A file of invoices, whatever its header says (repeatable).
        #[arg(long = "invoices", value_name = "FILE")]
        invoices: Vec<PathBuf>,
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
