//! What every adapter needs to build itself from its config: the [`BuildContext`] (data
//! directory, environment, public URL, rate limiters, clock), the [`ChannelBuildError`] it reports,
//! and the helpers that read secrets and durations. A leaf: it knows no adapter.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;

use crate::clock::{SharedClock, SystemClock};

/// What building a channel needs from the rest of the daemon.
#[derive(Clone)]
pub struct BuildContext {
    /// The daemon's data directory; relative paths in channel configs are resolved against it.
    pub data_dir: PathBuf,
    /// Reads an environment variable (injected so tests need not touch the process env).
    pub env: EnvLookup,
    /// The daemon's public base URL (`public_url`), for provider callbacks such as Twilio's
    /// `StatusCallback`; `None` when not configured.
    pub public_url: Option<reqwest::Url>,
    /// Rate-limit buckets, shared by the channels built with this context.
    pub limiters: super::ratelimit::Registry,
    /// The daemon's clock: signatures' timestamps, `Retry-After` dates and 24-hour windows are
    /// computed from it, so tests can drive them.
    pub clock: SharedClock,
}

/// Reads an environment variable by name (`None` when unset).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl BuildContext {
    /// A context reading the real process environment.
    pub fn from_process_env(data_dir: impl Into<PathBuf>) -> Self {
        BuildContext {
            data_dir: data_dir.into(),
            env: Arc::new(|name| std::env::var(name).ok()),
            public_url: None,
            limiters: super::ratelimit::Registry::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildContext")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// Why a channel could not be built. Every message names the channel and the field, and says
/// how to fix it; none contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelBuildError {
    /// The environment variable named by `*_env` is not set (or empty).
    #[error("channel '{channel}': {field} {var} is not set; export it or use {alternative}")]
    EnvNotSet {
        /// Channel name.
        channel: String,
        /// The config field (`password_env`, `secret_env`).
        field: &'static str,
        /// The variable's name.
        var: String,
        /// The other way to give the secret (`password_file`, `secret_file`).
        alternative: &'static str,
    },
    /// The file named by `*_file` could not be read or is empty.
    #[error("channel '{channel}': {field} {path}: {reason}")]
    SecretFile {
        /// Channel name.
        channel: String,
        /// The config field.
        field: &'static str,
        /// The file.
        path: String,
        /// What went wrong and how to fix it.
        reason: String,
    },
    /// A field is missing, malformed or contradicts another.
    #[error("channel '{channel}': {field}: {reason}")]
    Invalid {
        /// Channel name.
        channel: String,
        /// The config field.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

impl ChannelBuildError {
    /// An [`ChannelBuildError::Invalid`] error.
    pub fn invalid(channel: &str, field: &'static str, reason: impl Into<String>) -> Self {
        ChannelBuildError::Invalid {
            channel: channel.to_owned(),
            field,
            reason: reason.into(),
        }
    }
    /// The channel the error is about.
    pub fn channel(&self) -> &str {
        match self {
            ChannelBuildError::EnvNotSet { channel, .. }
            | ChannelBuildError::SecretFile { channel, .. }
            | ChannelBuildError::Invalid { channel, .. } => channel,
        }
    }
    /// The config field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            ChannelBuildError::EnvNotSet { field, .. }
            | ChannelBuildError::SecretFile { field, .. }
            | ChannelBuildError::Invalid { field, .. } => field,
        }
    }
}

/// Where a secret comes from: the `*_env` / `*_file` pair of fields.
pub(crate) struct SecretSource<'a> {
    pub env_field: &'static str,
    pub env: Option<&'a str>,
    pub file_field: &'static str,
    pub file: Option<&'a Path>,
}

/// Reads a secret from its env var or file. `Ok(None)` when neither field is set; an error when
/// both are, or when the one given cannot be read.
pub(crate) fn read_secret(
    channel: &str,
    src: &SecretSource<'_>,
    ctx: &BuildContext,
) -> Result<Option<String>, ChannelBuildError> {
    match (src.env, src.file) {
        (Some(_), Some(_)) => Err(ChannelBuildError::invalid(
            channel,
            src.env_field,
            format!(
                "set either {} or {}, not both",
                src.env_field, src.file_field
            ),
        )),
        (None, None) => Ok(None),
        (Some(var), None) => {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(ChannelBuildError::invalid(
                    channel,
                    src.env_field,
                    format!(
                        "{var:?} is not an environment variable name; give the variable's NAME \
                         (e.g. PLAZO_SECRET), never the secret itself"
                    ),
                ));
            }
            match (ctx.env)(var) {
                Some(v) if !v.is_empty() => Ok(Some(v)),
                _ => Err(ChannelBuildError::EnvNotSet {
                    channel: channel.to_owned(),
                    field: src.env_field,
                    var: var.to_owned(),
                    alternative: src.file_field,
                }),
            }
        }
        (None, Some(path)) => {
            let path = resolve(&ctx.data_dir, path);
            let err = |reason: String| ChannelBuildError::SecretFile {
                channel: channel.to_owned(),
                field: src.file_field,
                path: path.display().to_string(),
                reason,
            };
            if let Some(problem) = crate::config::secret_file_mode_problem(&path) {
                return Err(err(problem));
            }
            let raw = std::fs::read_to_string(&path).map_err(|e| {
                err(format!(
                    "cannot read it ({e}); check the path and that plazo's user may read it"
                ))
            })?;
            let v = raw.trim_end_matches(['\r', '\n']);
            if v.is_empty() {
                return Err(err("the file is empty; write the secret into it".to_owned()));
            }
            Ok(Some(v.to_owned()))
        }
    }
}

/// Resolves `p` against the data directory when relative.
pub(crate) fn resolve(data_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        data_dir.join(p)
    }
}

/// Converts an optional config duration to a positive [`Duration`], with a default.
pub(crate) fn positive_duration(
    channel: &str,
    field: &'static str,
    v: Option<SignedDuration>,
    default: Duration,
) -> Result<Duration, ChannelBuildError> {
    match v {
        None => Ok(default),
        Some(d) if d.is_positive() => Duration::try_from(d)
            .map_err(|e| ChannelBuildError::invalid(channel, field, e.to_string())),
        Some(d) => Err(ChannelBuildError::invalid(
            channel,
            field,
            format!("must be positive, e.g. \"30s\" (got {d:#})"),
        )),
    }
}
