//! Checks of a parsed [`DaemonConfig`] that serde cannot express: routes to defined channels,
//! values within their documented ranges, cron expressions and URLs that parse, a policy file
//! that exists, an outbox inside the data directory and a log level that logs. Every error
//! names `file:line:column` of the value (or of the table it belongs in).

use std::path::{Component, Path, PathBuf};

use super::url::is_http_url;
use super::{ConfigError, DaemonConfig, check_log_filter, locate};
use crate::channels::ChannelConfig;
use crate::policy::model::CHANNEL_KINDS;

/// Builds errors pointing into one config file.
struct Errors<'a> {
    shown: &'a str,
    text: &'a str,
}

impl Errors<'_> {
    fn at(&self, path: &[&str], message: String) -> ConfigError {
        let (line, column) = locate(self.text, path);
        ConfigError::Invalid {
            path: self.shown.to_owned(),
            line,
            column,
            field: if path.is_empty() {
                "file".to_owned()
            } else {
                path.join(".")
            },
            message,
        }
    }

    /// `value` must lie in `min..=max`.
    fn range(&self, path: &[&str], value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
        if (min..=max).contains(&value) {
            return Ok(());
        }
        Err(self.at(
            path,
            format!("{value} is out of range; write a whole number from {min} to {max}"),
        ))
    }
}

/// True when the text holds no setting at all (empty, blank or only comments).
fn has_no_settings(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

/// `p` made absolute (against the working directory) with `.` and `..` resolved lexically.
fn normalized(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Checks everything [`super::load_daemon_config`] cannot leave to serde.
pub(super) fn validate(cfg: &DaemonConfig, text: &str, shown: &str) -> Result<(), ConfigError> {
    let e = Errors { shown, text };
    if has_no_settings(text) {
        return Err(e.at(
            &[],
            "the config file is empty; start from the shipped config/plazo.toml, which documents every setting".to_owned(),
        ));
    }
    check_log_filter(&cfg.log.level).map_err(|m| e.at(&["log", "level"], m))?;
    for (kind, channel) in &cfg.routes {
        if !CHANNEL_KINDS.contains(&kind.as_str()) {
            return Err(e.at(
                &["routes", kind],
                format!(
                    "unknown channel kind {kind:?}; valid kinds are {}",
                    CHANNEL_KINDS.join(", ")
                ),
            ));
        }
        if !cfg.channels.contains_key(channel) {
            let known: Vec<&str> = cfg.channels.keys().map(String::as_str).collect();
            return Err(e.at(
                &["routes", kind],
                format!(
                    "channel {channel:?} is not defined; define [channels.{channel}] or use one of: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    if let Some(addr) = cfg.metrics.listen {
        if addr == cfg.listen && addr.port() != 0 {
            return Err(e.at(
                &["metrics", "listen"],
                format!(
                    "{addr} is also the API's `listen` address; give the metrics a port of their own (like \"127.0.0.1:9464\"), or remove [metrics] listen to serve /metrics on the API's port"
                ),
            ));
        }
    }
    let d = &cfg.dispatch;
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    e.range(&["cache_mib"], cfg.cache_mib, 1, 65_536)?;
    e.range(
        &["store", "standby_poll_ms"],
        cfg.store.standby_poll_ms,
        100,
        60_000,
    )?;
    e.range(
        &["store", "send_lease_ms"],
        cfg.store.send_lease_ms,
        1_000,
        600_000,
    )?;
    if let Some(node) = &cfg.store.node {
        if node.trim().is_empty() || node.len() > 200 || node.chars().any(char::is_control) {
            return Err(e.at(
                &["store", "node"],
                "a node name is 1-200 printable characters, like \"plazo-a\"".to_owned(),
            ));
        }
    }
    e.range(
        &["dispatch", "concurrency"],
        as_u64(d.concurrency),
        1,
        10_000,
    )?;
    e.range(&["dispatch", "batch"], as_u64(d.batch), 1, 100_000)?;
    e.range(&["dispatch", "max_attempts"], d.max_attempts.into(), 1, 100)?;
    e.range(
        &["dispatch", "backoff_base_secs"],
        d.backoff_base_secs,
        1,
        86_400,
    )?;
    e.range(
        &["dispatch", "backoff_max_secs"],
        d.backoff_max_secs,
        1,
        7 * 86_400,
    )?;
    if d.backoff_max_secs < d.backoff_base_secs {
        return Err(e.at(
            &["dispatch", "backoff_max_secs"],
            format!(
                "{} is shorter than backoff_base_secs ({}); the longest delay must be at least the first",
                d.backoff_max_secs, d.backoff_base_secs
            ),
        ));
    }
    e.range(
        &["dispatch", "drain_timeout_secs"],
        d.drain_timeout_secs,
        0,
        3_600,
    )?;
    let pw = &cfg.payment_webhooks;
    e.range(
        &["payment_webhooks", "tolerance_secs"],
        pw.tolerance_secs,
        1,
        86_400,
    )?;
    e.range(
        &["payment_webhooks", "retention_days"],
        pw.retention_days.into(),
        1,
        3_650,
    )?;
    e.range(
        &["stripe", "tolerance_secs"],
        cfg.stripe.tolerance_secs,
        1,
        86_400,
    )?;
    if cfg.stripe.metadata_key.trim().is_empty() {
        return Err(e.at(
            &["stripe", "metadata_key"],
            "the metadata key is empty; write the key your Stripe objects carry our invoice id under, like \"plazo_invoice_id\"".to_owned(),
        ));
    }
    let mp = &cfg.mercadopago;
    e.range(&["mercadopago", "timeout_secs"], mp.timeout_secs, 1, 300)?;
    if !is_http_url(&mp.base_url) {
        return Err(e.at(
            &["mercadopago", "base_url"],
            format!(
                "{:?} must be an http:// or https:// URL with a host, like \"https://api.mercadopago.com\"",
                mp.base_url
            ),
        ));
    }
    for (field, expr) in [
        ("prune_webhooks", &cfg.housekeeping.prune_webhooks),
        ("daily_digest", &cfg.housekeeping.daily_digest),
        ("resegment", &cfg.housekeeping.resegment),
    ] {
        if let Err(err) = tokio_cron_scheduler::Job::new(expr.as_str(), |_, _| {}) {
            return Err(e.at(
                &["housekeeping", field],
                format!(
                    "{expr:?} is not a cron expression ({err}); write six fields, seconds first, like \"0 15 3 * * *\""
                ),
            ));
        }
    }
    let sim = &cfg.simulation;
    if crate::domain::Currency::parse(&sim.currency).is_err() {
        return Err(e.at(
            &["simulation", "currency"],
            format!(
                "{:?} is not an ISO 4217 currency code; write one like \"USD\", \"COP\" or \"EUR\"",
                sim.currency
            ),
        ));
    }
    e.range(&["simulation", "max_days"], u64::from(sim.max_days), 1, 366)?;
    for (kind, price) in &sim.prices {
        if !CHANNEL_KINDS.contains(&kind.as_str()) {
            return Err(e.at(
                &["simulation", "prices", kind],
                format!(
                    "{kind:?} is not a channel kind; price one of {}",
                    CHANNEL_KINDS.join(", ")
                ),
            ));
        }
        if price.is_sign_negative() || *price > rust_decimal::Decimal::from(1_000_000) {
            return Err(e.at(
                &["simulation", "prices", kind],
                format!("{price} is out of range; write a price from \"0\" to \"1000000\""),
            ));
        }
    }
    if let Some(url) = &cfg.public_url {
        if !is_http_url(url) {
            return Err(e.at(
                &["public_url"],
                format!(
                    "{url:?} must be an http:// or https:// URL with a host, e.g. \"https://cobros.example.co\""
                ),
            ));
        }
    }
    let data_dir = normalized(&cfg.data_dir);
    for (name, channel) in &cfg.channels {
        let ChannelConfig::Outbox(outbox) = channel else {
            continue;
        };
        let Some(dir) = &outbox.dir else { continue };
        if !normalized(&data_dir.join(dir)).starts_with(&data_dir) {
            return Err(e.at(
                &["channels", name, "dir"],
                format!(
                    "{} is outside the data directory {}; the outbox holds whole messages, so keep it inside data_dir with a relative path like \"outbox\"",
                    dir.display(),
                    cfg.data_dir.display()
                ),
            ));
        }
    }
    if let Some(events) = &cfg.events {
        super::events::validate(
            events,
            |p, m| e.at(p, m),
            |p, v, lo, hi| e.range(p, v, lo, hi),
        )?;
    }
    let policy = cfg.policy_path();
    if !policy.is_file() {
        return Err(e.at(
            &["policy"],
            format!(
                "policy file {} does not exist (the path is relative to this file's directory); point `policy` at it, or copy config/policy.toml there",
                policy.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_resolves_dots() {
        let n = normalized(Path::new("/a/b/../c/./d"));
        assert_eq!(n, PathBuf::from("/a/c/d"));
    }

    #[test]
    fn comment_only_text_has_no_settings() {
        assert!(has_no_settings(""));
        assert!(has_no_settings("  \n# just a comment\n\t\n"));
        assert!(!has_no_settings("[log]\n"));
    }
}
