//! Command line: `serve`, `check` and `plan`.

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
}
