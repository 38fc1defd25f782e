//! `type = "smtp"`: the SMTP channel's config table (the adapter is [`super::email`]).

use std::path::PathBuf;

use jiff::SignedDuration;
use serde::Deserialize;

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
