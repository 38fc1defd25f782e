//! The daemon's own configuration file (`config/plazo.toml`): where to listen, where the data
//! lives, which policy to load, how to dispatch, and the channel instances with their secrets
//! (always by environment-variable or file name, never inline).

mod datadir;
mod events;
mod file;
mod http;
mod locate;
mod log_level;
mod secrets;
mod simulation;
mod url;
mod validate;

pub use datadir::{prepare_data_dir, secret_file_mode_problem};
pub use events::{EventsConfig, PartnerEndpoint};
pub use file::{
    ApiConfig, DaemonConfig, Delivery, DispatchConfig, HousekeepingConfig, LogConfig, LogFormat,
    MetricsConfig, OnUnknown, PaymentWebhookConfig, StoreBackend, StoreConfig, load_daemon_config,
};
pub use http::HttpConfig;
pub use locate::{line_col, locate};
pub use log_level::{LEVELS, check_log_filter};
pub use secrets::{SecretError, SecretSource, read_secret};
pub use simulation::SimulationConfig;

/// Why the daemon configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}; check the path given to --config")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown field, or a value of the wrong type.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A value parsed but makes no sense.
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line of the value (or of the table it belongs in, when it is not written).
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted path of the field.
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
}
