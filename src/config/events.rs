//! `[events]`: where plazo sends its events out (the ERP/CRM endpoint and the partners' own),
//! signed with Standard Webhooks secrets that come from the environment or a file, never from
//! this file.

use std::collections::BTreeMap;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::SecretSource;

/// `[events]`: the events outbox and its delivery. Without this table nothing is recorded or
/// sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// The endpoint (`https://erp.example.co/hooks/plazo`; `http://` only on trusted
    /// networks: bodies carry debtors' data).
    pub url: String,
    /// Where the `whsec_...` signing secret comes from: `{ env = "PLAZO_EVENTS_SECRET" }` or
    /// `{ file = "/run/credentials/plazo.service/events-secret" }`. Never the secret itself.
    #[serde(deserialize_with = "secret_source")]
    pub secret: SecretSource,
    /// Only these event types go to `url` (`["invoice.paid", "invoice.handed_off"]`); all
    /// when absent. Partners get their hand-offs whatever it says.
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Attempts per event before it is `failed` (1 to 100). Default 12.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Limit for connecting and for the whole request, in milliseconds (100 to 120000).
    /// Default 10000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// First retry delay in seconds; doubles each attempt (1 to 86400). Default 10.
    #[serde(default = "default_backoff_base")]
    pub backoff_base_secs: u64,
    /// Longest retry delay in seconds (at least `backoff_base_secs`, at most 7 days). Default
    /// 3600.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_secs: u64,
    /// Days a delivered event is kept (1 to 3650); failed and pending ones are kept until
    /// delivered. Default 30.
    #[serde(default = "default_retention")]
    pub retention_days: u32,
    /// Partners' own endpoints, by the partner's key in the policy's `[partners.*]`: a
    /// hand-off to one of them is also sent there.
    #[serde(default)]
    pub partners: BTreeMap<String, PartnerEndpoint>,
}

/// `[events.partners.NAME]`: a partner's endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerEndpoint {
    /// The partner's endpoint URL.
    pub url: String,
    /// Where the partner's `whsec_...` secret comes from (`{ env = "..." }` or
    /// `{ file = "..." }`).
    #[serde(deserialize_with = "secret_source")]
    pub secret: SecretSource,
}

fn default_max_attempts() -> u32 {
    12
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_backoff_base() -> u64 {
    10
}
fn default_backoff_max() -> u64 {
    3600
}
fn default_retention() -> u32 {
    30
}

/// A [`SecretSource`] table; a plain string is refused without echoing it (it is the secret
/// itself, written where it must not be).
fn secret_source<'de, D: Deserializer<'de>>(d: D) -> Result<SecretSource, D::Error> {
    struct Source;
    impl<'de> Visitor<'de> for Source {
        type Value = SecretSource;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("where the secret comes from: { env = \"PLAZO_EVENTS_SECRET\" } or { file = \"/path/to/secret\" }")
        }
        fn visit_str<E: de::Error>(self, _secret: &str) -> Result<SecretSource, E> {
            Err(E::custom(
                "a secret is never written in plazo.toml; write secret = { env = \"PLAZO_EVENTS_SECRET\" } (or { file = \"/path/to/secret\" }) and put the whsec_... value there",
            ))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SecretSource, A::Error> {
            SecretSource::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(Source)
}

/// Checks `[events]` beyond its types; `at(path, message)` builds the error for the setting at
/// `path` (under `events`).
pub(super) fn validate<E>(
    cfg: &EventsConfig,
    at: impl Fn(&[&str], String) -> E,
    range: impl Fn(&[&str], u64, u64, u64) -> Result<(), E>,
) -> Result<(), E> {
    let url_error = |url: &str| {
        format!(
            "{url:?} must be an http:// or https:// URL with a host, like \"https://erp.example.co/hooks/plazo\""
        )
    };
    if !super::url::is_http_url(&cfg.url) {
        return Err(at(&["events", "url"], url_error(&cfg.url)));
    }
    let no_source = "name where the secret comes from: { env = \"PLAZO_EVENTS_SECRET\" } or { file = \"/path/to/secret\" }";
    if cfg.secret.env.is_none() && cfg.secret.file.is_none() {
        return Err(at(&["events", "secret"], no_source.to_owned()));
    }
    for t in cfg.types.iter().flatten() {
        if crate::service::events::EventKind::parse(t).is_none() {
            let known: Vec<&str> = crate::service::events::EventKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect();
            return Err(at(
                &["events", "types"],
                format!("unknown event type {t:?}; plazo sends {}", known.join(", ")),
            ));
        }
    }
    range(&["events", "max_attempts"], cfg.max_attempts.into(), 1, 100)?;
    range(&["events", "timeout_ms"], cfg.timeout_ms, 100, 120_000)?;
    range(
        &["events", "backoff_base_secs"],
        cfg.backoff_base_secs,
        1,
        86_400,
    )?;
    range(
        &["events", "backoff_max_secs"],
        cfg.backoff_max_secs,
        1,
        7 * 86_400,
    )?;
    if cfg.backoff_max_secs < cfg.backoff_base_secs {
        return Err(at(
            &["events", "backoff_max_secs"],
            format!(
                "{} is shorter than backoff_base_secs ({}); the longest delay must be at least the first",
                cfg.backoff_max_secs, cfg.backoff_base_secs
            ),
        ));
    }
    range(
        &["events", "retention_days"],
        cfg.retention_days.into(),
        1,
        3_650,
    )?;
    for (name, p) in &cfg.partners {
        if !super::url::is_http_url(&p.url) {
            return Err(at(&["events", "partners", name, "url"], url_error(&p.url)));
        }
        if p.secret.env.is_none() && p.secret.file.is_none() {
            return Err(at(
                &["events", "partners", name, "secret"],
                no_source.to_owned(),
            ));
        }
    }
    Ok(())
}

impl EventsConfig {
    /// The first partner endpoint whose name `known` does not accept (a key missing from the
    /// policy's `[partners.*]`), if any.
    pub fn unknown_partner(&self, known: impl Fn(&str) -> bool) -> Option<&str> {
        self.partners
            .keys()
            .map(String::as_str)
            .find(|name| !known(name))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, DaemonConfig, load_daemon_config};

    fn load(text: &str) -> Result<DaemonConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plazo.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::write(dir.path().join("policy.toml"), "").unwrap();
        load_daemon_config(&path)
    }

    const GOOD: &str = "[events]\nurl = \"https://erp.example.co/hooks\"\nsecret = { env = \"PLAZO_EVENTS_SECRET\" }\n";

    #[test]
    fn events_load_with_defaults_and_are_off_without_the_table() {
        let cfg = load(GOOD).unwrap();
        let ev = cfg.events.unwrap();
        assert_eq!(ev.url, "https://erp.example.co/hooks");
        assert_eq!(ev.secret.env.as_deref(), Some("PLAZO_EVENTS_SECRET"));
        assert_eq!(
            (ev.max_attempts, ev.timeout_ms, ev.retention_days),
            (12, 10_000, 30)
        );
        assert!(ev.types.is_none() && ev.partners.is_empty());
        assert!(load("listen = \"127.0.0.1:1\"\n").unwrap().events.is_none());
        let cfg = load(&format!(
            "{GOOD}types = [\"invoice.paid\", \"invoice.handed_off\"]\n[events.partners.cobra]\nurl = \"http://10.0.0.5/in\"\nsecret = {{ file = \"/run/credentials/cobra\" }}\n"
        ))
        .unwrap();
        let ev = cfg.events.unwrap();
        assert_eq!(ev.types.unwrap().len(), 2);
        assert_eq!(ev.partners["cobra"].url, "http://10.0.0.5/in");
        let partners = ["cobra".to_owned()];
        assert_eq!(ev.partners.len(), 1);
        let cfg = load(&format!("{GOOD}[events.partners.cobra]\nurl = \"https://c.example\"\nsecret = {{ env = \"C\" }}\n")).unwrap();
        let ev = cfg.events.unwrap();
        assert_eq!(
            ev.unknown_partner(|p| partners.iter().any(|k| k == p)),
            None
        );
        assert_eq!(ev.unknown_partner(|_| false), Some("cobra"));
    }

    #[test]
    fn every_bad_events_setting_names_file_line_and_column() {
        for (text, expected) in [
            (
                "[events]\nurl = \"ftp://x\"\nsecret = { env = \"S\" }\n",
                "plazo.toml:2:7: events.url: \"ftp://x\" must be an http:// or https:// URL",
            ),
            (
                "[events]\nurl = \"https://erp.example.co\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
                "plazo.toml:3:10: a secret is never written in plazo.toml",
            ),
            (
                "[events]\nurl = \"https://erp.example.co\"\nsecret = {}\n",
                "plazo.toml:3:1: events.secret: name where the secret comes from",
            ),
            (
                "[events]\nurl = \"https://erp.example.co\"\n",
                "plazo.toml:1:1: missing field `secret`",
            ),
            (
                &format!("{GOOD}types = [\"invoice.paid\", \"invoice.eaten\"]\n"),
                "plazo.toml:4:9: events.types: unknown event type \"invoice.eaten\"; plazo sends invoice.paid,",
            ),
            (
                &format!("{GOOD}max_attempts = 0\n"),
                "plazo.toml:4:16: events.max_attempts: 0 is out of range",
            ),
            (
                &format!("{GOOD}timeout_ms = 5\n"),
                "plazo.toml:4:14: events.timeout_ms: 5 is out of range",
            ),
            (
                &format!("{GOOD}backoff_base_secs = 60\nbackoff_max_secs = 30\n"),
                "plazo.toml:5:20: events.backoff_max_secs: 30 is shorter than backoff_base_secs",
            ),
            (
                &format!("{GOOD}retention_days = 0\n"),
                "plazo.toml:4:18: events.retention_days: 0 is out of range",
            ),
            (
                &format!("{GOOD}colour = \"red\"\n"),
                "plazo.toml:4:1: unknown field `colour`",
            ),
            (
                &format!(
                    "{GOOD}[events.partners.cobra]\nurl = \"cobra.example\"\nsecret = {{ env = \"C\" }}\n"
                ),
                "plazo.toml:5:7: events.partners.cobra.url: \"cobra.example\" must be an http:// or https:// URL",
            ),
            (
                &format!(
                    "{GOOD}[events.partners.cobra]\nurl = \"https://cobra.example\"\nsecret = \"whsec_x\"\n"
                ),
                "plazo.toml:6:10: a secret is never written in plazo.toml",
            ),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(
                e.contains(expected),
                "{text:?}\n expected {expected:?}\n      got {e:?}"
            );
            assert!(
                !e.contains("MfKQ9r8") && !e.contains("whsec_x"),
                "the secret is echoed: {e}"
            );
        }
    }
}
