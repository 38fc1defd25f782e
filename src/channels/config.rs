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

use std::sync::Arc;

use serde::Deserialize;

use super::build::{BuildContext, ChannelBuildError};
use super::channel::SharedChannel;
use super::email::EmailChannel;
use super::outbox::OutboxChannel;
pub use super::outbox::OutboxConfig;
pub use super::smtp_config::{SmtpConfig, SmtpSecurity};
use super::twilio::{TwilioChannel, TwilioConfig};
use super::webhook::WebhookChannel;
pub use super::webhook::WebhookConfig;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    use jiff::SignedDuration;

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
            clock: Arc::new(crate::clock::SystemClock),
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
