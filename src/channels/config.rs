//! Channel instances as written in the config file, and how they become [`SharedChannel`]s.
//!
//! Each instance is a table with a `type` (`outbox`, `smtp`, `twilio`, `whatsapp`, `webhook`) and that adapter's
//! fields. Secrets are never written inline: name an environment variable (`password_env`,
//! `secret_env`) or a file (`password_file`, `secret_file`, e.g. a systemd credential under
//! `/run/credentials/plazo.service/`).
//!
//! ```toml
//! [channels.mail]
//! type = "smtp"
//! host = "smtp.example.co"
//! security = "starttls"
//! username = "cartera@example.co"
//! password_env = "PLAZO_SMTP_PASSWORD"
//! from = "Cartera <cartera@example.co>"
//!
//! [channels.crm]
//! type = "webhook"
//! url = "https://crm.example.co/hooks/plazo"
//! secret_file = "/run/credentials/plazo.service/crm"
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use serde::Deserialize;

use super::SharedChannel;
use super::email::{EmailChannel, MessageSettings};
use super::outbox::OutboxChannel;
use super::twilio::{TwilioChannel, TwilioConfig};
use super::webhook::WebhookChannel;
use super::whatsapp::{WhatsAppChannel, WhatsAppConfig};

/// One channel instance from the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelConfig {
    /// Writes every message to a directory instead of sending it (dry runs, audits, tests).
    Outbox(OutboxConfig),
    /// Sends email through an SMTP server.
    Smtp(SmtpConfig),
    /// POSTs each message as JSON, signed with Standard Webhooks headers.
    Webhook(WebhookConfig),
    /// Sends WhatsApp messages through Meta's WhatsApp Business Cloud API: approved templates,
    /// or free-form text inside the 24-hour customer-service window.
    Whatsapp(WhatsAppConfig),
    /// Sends SMS through Twilio's Messages API (or a Twilio-compatible provider).
    Twilio(TwilioConfig),
}

/// `type = "outbox"`: write messages to files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Directory to write to; relative paths are under the data directory. Default `outbox`.
    /// Email messages become `{reminder_id}-{kind}.eml` (exactly what SMTP would send), other
    /// kinds `{reminder_id}-{kind}.json`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// `From` of the `.eml` files, e.g. `"Cartera <cartera@example.co>"`. Default
    /// `"plazo <plazo@localhost>"`; set it to the SMTP channel's `from` to preview real mail.
    #[serde(default)]
    pub from: Option<String>,
    /// `Reply-To` of the `.eml` files. Default: none.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Domain of the `Message-ID` of the `.eml` files. Default: the domain of `from`.
    #[serde(default)]
    pub message_id_domain: Option<String>,
    /// Extra `mailto:` address added to `List-Unsubscribe`, e.g. `unsubscribe@example.co`.
    #[serde(default)]
    pub unsubscribe_mailto: Option<String>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (default port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (default port 465).
    Tls,
    /// No encryption at all (default port 25). Only for a relay on the same host or a test
    /// server; credentials are refused unless the host is loopback.
    Plain,
}

impl SmtpSecurity {
    /// The usual port for this mode.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Plain => 25,
        }
    }
}

/// `type = "smtp"`: send email through an SMTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name (also the name checked against its TLS certificate).
    pub host: String,
    /// Server port. Default: 587 for `starttls`, 465 for `tls`, 25 for `plain`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` (implicit TLS, port 465) or `plain` (no encryption).
    #[serde(default)]
    pub security: SmtpSecurity,
    /// User name for SMTP AUTH (PLAIN or LOGIN). Needs `password_env` or `password_file`.
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the environment variable holding the SMTP password, e.g. `PLAZO_SMTP_PASSWORD`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the SMTP password (trailing newline ignored), e.g.
    /// `/run/credentials/plazo.service/smtp`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Sender mailbox, e.g. `"Cartera <cartera@example.co>"`; also the envelope sender.
    pub from: String,
    /// `Reply-To` mailbox, e.g. the accounts-receivable inbox. Default: none.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Domain used in `Message-ID: <{reminder_id}@{domain}>`. Default: the domain of `from`.
    #[serde(default)]
    pub message_id_domain: Option<String>,
    /// Extra `mailto:` address added to `List-Unsubscribe`, e.g. `unsubscribe@example.co`.
    #[serde(default)]
    pub unsubscribe_mailto: Option<String>,
    /// Name sent in EHLO. Default: this machine's host name.
    #[serde(default)]
    pub hello_name: Option<String>,
    /// Limit for connecting (including TLS and AUTH) and, separately, for sending one message,
    /// e.g. `"30s"`. Default 30 s.
    #[serde(default)]
    pub timeout: Option<SignedDuration>,
    /// Most SMTP connections open at once (each sends one message at a time). Default 4.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Idle connections older than this are closed instead of reused, e.g. `"60s"`. Default 60 s.
    #[serde(default)]
    pub idle_timeout: Option<SignedDuration>,
}

/// `type = "webhook"`: POST each message, signed with Standard Webhooks headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Endpoint URL (`https://...`; `http://` only for trusted networks: bodies carry PII).
    pub url: String,
    /// Name of the environment variable holding the `whsec_...` signing secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the `whsec_...` signing secret (trailing newline ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Limit for the whole request, e.g. `"15s"`. Default 15 s (the spec suggests 15–30 s).
    #[serde(default)]
    pub timeout: Option<SignedDuration>,
}

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

impl ChannelConfig {
    /// The adapter type (`outbox`, `smtp`, `twilio`, `whatsapp`, `webhook`).
    pub fn adapter(&self) -> &'static str {
        match self {
            ChannelConfig::Outbox(_) => "outbox",
            ChannelConfig::Smtp(_) => "smtp",
            ChannelConfig::Webhook(_) => "webhook",
            ChannelConfig::Whatsapp(_) => "whatsapp",
            ChannelConfig::Twilio(_) => "twilio",
        }
    }

    /// Validates the config, reads secrets and builds the channel named `name`.
    ///
    /// Creates the outbox directory; opens no network connection (SMTP connects on first send).
    /// Needs a Tokio runtime only when sending, not here.
    pub fn build(
        &self,
        name: &str,
        ctx: &BuildContext,
    ) -> Result<SharedChannel, ChannelBuildError> {
        Ok(match self {
            ChannelConfig::Outbox(c) => Arc::new(OutboxChannel::from_config(name, c, ctx)?),
            ChannelConfig::Smtp(c) => Arc::new(EmailChannel::from_config(name, c, ctx)?),
            ChannelConfig::Webhook(c) => Arc::new(WebhookChannel::from_config(name, c, ctx)?),
            ChannelConfig::Whatsapp(c) => Arc::new(WhatsAppChannel::from_config(name, c, ctx)?),
            ChannelConfig::Twilio(c) => Arc::new(TwilioChannel::from_config(name, c, ctx)?),
        })
    }
}

/// The HTTP client every HTTP adapter uses: `timeout` for connecting and for the whole
/// request, idle connections kept 90 s, redirects never followed (a redirect is a failure),
/// `User-Agent: plazo/VERSION`. `field` names the setting blamed if it cannot be built.
pub(crate) fn http_client(
    channel: &str,
    field: &'static str,
    timeout: Duration,
) -> Result<reqwest::Client, ChannelBuildError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("plazo/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            ChannelBuildError::invalid(channel, field, format!("cannot build HTTP client: {e}"))
        })
}

/// What happened to a request that got no HTTP answer, in words: `timed out`, `connection
/// failed` or `request failed`.
pub(crate) fn transport_failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
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

/// Builds the message settings shared by the SMTP and outbox adapters.
pub(crate) fn message_settings(
    channel: &str,
    from: &str,
    reply_to: Option<&str>,
    message_id_domain: Option<&str>,
    unsubscribe_mailto: Option<&str>,
) -> Result<MessageSettings, ChannelBuildError> {
    MessageSettings::new(from, reply_to, message_id_domain, unsubscribe_mailto)
        .map_err(|(field, reason)| ChannelBuildError::invalid(channel, field, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ctx(dir: &Path, vars: &[(&str, &str)]) -> BuildContext {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        BuildContext {
            data_dir: dir.to_owned(),
            env: Arc::new(move |k| vars.get(k).cloned()),
            public_url: None,
            limiters: Default::default(),
        }
    }

    fn parse(s: &str) -> Result<ChannelConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn parses_all_three_and_rejects_unknown_fields() {
        let c = parse("type = \"outbox\"\n").unwrap();
        assert_eq!(c.adapter(), "outbox");
        let c = parse(
            "type = \"smtp\"\nhost = \"smtp.example.co\"\nsecurity = \"tls\"\n\
             from = \"Cartera <cartera@example.co>\"\ntimeout = \"10s\"\n",
        )
        .unwrap();
        let ChannelConfig::Smtp(s) = c else { panic!() };
        assert_eq!(s.security, SmtpSecurity::Tls);
        assert_eq!(s.timeout, Some(SignedDuration::from_secs(10)));
        let c = parse("type = \"webhook\"\nurl = \"https://x.example/h\"\nsecret_env = \"S\"\n")
            .unwrap();
        assert_eq!(c.adapter(), "webhook");
        let e = parse("type = \"outbox\"\ndirr = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("dirr"), "{e}");
        let e = parse("type = \"smtp\"\nhost = \"h\"\nfrom = \"a@b.c\"\npassword = \"x\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("password"), "{e}");
        assert!(parse("type = \"fax\"\n").is_err());
    }

    #[test]
    fn secret_errors_name_channel_field_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse("type = \"webhook\"\nurl = \"https://x.example/h\"\nsecret_env = \"PLAZO_CRM_SECRET\"\n")
            .unwrap();
        let e = c.build("crm", &ctx(dir.path(), &[])).err().unwrap();
        assert_eq!(
            e.to_string(),
            "channel 'crm': secret_env PLAZO_CRM_SECRET is not set; export it or use secret_file"
        );
        assert_eq!((e.channel(), e.field()), ("crm", "secret_env"));

        let c =
            parse("type = \"webhook\"\nurl = \"https://x.example/h\"\nsecret_file = \"nope\"\n")
                .unwrap();
        let e = c.build("crm", &ctx(dir.path(), &[])).err().unwrap();
        assert!(
            e.to_string().starts_with("channel 'crm': secret_file "),
            "{e}"
        );

        let c = parse("type = \"webhook\"\nurl = \"https://x.example/h\"\nsecret_env = \"S\"\n")
            .unwrap();
        let e = c
            .build("crm", &ctx(dir.path(), &[("S", "hunter2hunter2")]))
            .err()
            .unwrap();
        assert!(e.to_string().contains("whsec_"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");

        let c = parse(
            "type = \"smtp\"\nhost = \"smtp.example.co\"\nfrom = \"a@example.co\"\nusername = \"u\"\n",
        )
        .unwrap();
        let e = c.build("mail", &ctx(dir.path(), &[])).err().unwrap();
        assert!(
            e.to_string().contains("password_env or password_file"),
            "{e}"
        );

        let c = parse(
            "type = \"smtp\"\nhost = \"smtp.example.co\"\nsecurity = \"plain\"\nfrom = \"a@example.co\"\n\
             username = \"u\"\npassword_env = \"P\"\n",
        )
        .unwrap();
        let e = c
            .build("mail", &ctx(dir.path(), &[("P", "pw")]))
            .err()
            .unwrap();
        assert_eq!(e.field(), "security");
    }

    #[test]
    fn secret_file_is_read_relative_to_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("crm.secret"),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
        )
        .unwrap();
        let c = parse(
            "type = \"webhook\"\nurl = \"https://x.example/h\"\nsecret_file = \"crm.secret\"\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            // A secret file others can read is refused, saying how to fix it.
            use std::os::unix::fs::PermissionsExt;
            let f = dir.path().join("crm.secret");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = c.build("crm", &ctx(dir.path(), &[])).err().unwrap();
            assert!(e.to_string().contains("chmod 600"), "{e}");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let ch = c.build("crm", &ctx(dir.path(), &[])).unwrap();
        assert_eq!((ch.name(), ch.adapter()), ("crm", "webhook"));
    }

    #[test]
    fn bad_values_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse("type = \"smtp\"\nhost = \"h\"\nfrom = \"not an address\"\n").unwrap();
        let e = c.build("mail", &ctx(dir.path(), &[])).err().unwrap();
        assert_eq!(e.field(), "from");
        let c =
            parse("type = \"smtp\"\nhost = \"h\"\nfrom = \"a@b.co\"\ntimeout = \"-5s\"\n").unwrap();
        let e = c.build("mail", &ctx(dir.path(), &[])).err().unwrap();
        assert_eq!(e.field(), "timeout");
        let c = parse("type = \"webhook\"\nurl = \"ftp://x\"\nsecret_env = \"S\"\n").unwrap();
        let e = c
            .build(
                "crm",
                &ctx(
                    dir.path(),
                    &[("S", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
                ),
            )
            .err()
            .unwrap();
        assert_eq!(e.field(), "url");
    }
}
