//! The daemon's own configuration file (`config/plazo.toml`): where to listen, where the data
//! lives, which policy to load, how to dispatch, and the channel instances with their secrets
//! (always by environment-variable or file name, never inline).

mod file;
mod http;
mod secrets;

pub use file::{
    ApiConfig, DaemonConfig, DispatchConfig, HousekeepingConfig, LogConfig, LogFormat, OnUnknown,
    PaymentWebhookConfig, load_daemon_config,
};
pub use http::HttpConfig;
pub use secrets::{SecretError, SecretSource, read_secret};

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
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Dotted path of the field.
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
}

/// Converts a byte offset in `text` into a 1-based (line, column).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\ncd", 99), (2, 3));
    }
}
