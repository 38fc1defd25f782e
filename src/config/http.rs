//! `[http]`: how long the API waits for clients, how many it serves at once and how large a
//! request body may be. Every value has a default; zero is refused.

use std::time::Duration;

use serde::Deserialize;

/// Limits of the HTTP server (`[http]`), so slow or idle clients cannot exhaust the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawHttpConfig")]
pub struct HttpConfig {
    /// Longest wait, in milliseconds, for a complete request head (request line and
    /// headers), counted from when the connection opens or its previous response was sent: a
    /// connection that sends nothing (an idle keep-alive connection) or sends its headers
    /// too slowly is closed after this long, so this is also the keep-alive idle timeout.
    /// Default 10000.
    pub header_timeout_ms: u64,
    /// Longest time, in milliseconds, to receive a whole request body once its headers
    /// arrived; a slower body gets 408 and the connection is closed. Default 30000.
    pub body_timeout_ms: u64,
    /// Connections served at once; further clients wait in the listen backlog until one
    /// closes. Keep it well under the process's open-file limit; with the webhook body limit it
    /// also bounds the memory slow bodies can hold (256 × 1 MiB). Default 256.
    pub max_connections: usize,
    /// Largest request body of the `/v1` API, in bytes (JSON documents); larger gets 413.
    /// Default 65536 (64 KiB).
    pub api_body_limit_bytes: usize,
    /// Largest request body of the provider callbacks under `/webhooks/` (Stripe, Mercado
    /// Pago, Twilio, WhatsApp, Standard Webhooks) and `/u/`, in bytes; larger gets 413.
    /// Default 1048576 (1 MiB), above what the providers send.
    pub webhook_body_limit_bytes: usize,
    /// Largest request body of the bulk import (`/v1/import/*`), in bytes; an import is read
    /// as it arrives (never held whole), so this only bounds one upload. Its body has no
    /// overall deadline: it is cut when `body_timeout_ms` passes without a byte arriving.
    /// Default 4294967296 (4 GiB).
    pub import_body_limit_bytes: u64,
}

impl HttpConfig {
    /// [`Self::header_timeout_ms`] as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// [`Self::body_timeout_ms`] as a duration.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 256,
            api_body_limit_bytes: 64 * 1024,
            webhook_body_limit_bytes: 1024 * 1024,
            import_body_limit_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// `[http]` as written; every field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpConfig {
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    api_body_limit_bytes: Option<usize>,
    webhook_body_limit_bytes: Option<usize>,
    import_body_limit_bytes: Option<u64>,
}

impl TryFrom<RawHttpConfig> for HttpConfig {
    type Error = String;

    fn try_from(raw: RawHttpConfig) -> Result<Self, String> {
        let d = HttpConfig::default();
        let cfg = HttpConfig {
            header_timeout_ms: raw.header_timeout_ms.unwrap_or(d.header_timeout_ms),
            body_timeout_ms: raw.body_timeout_ms.unwrap_or(d.body_timeout_ms),
            max_connections: raw.max_connections.unwrap_or(d.max_connections),
            api_body_limit_bytes: raw.api_body_limit_bytes.unwrap_or(d.api_body_limit_bytes),
            webhook_body_limit_bytes: raw
                .webhook_body_limit_bytes
                .unwrap_or(d.webhook_body_limit_bytes),
            import_body_limit_bytes: raw
                .import_body_limit_bytes
                .unwrap_or(d.import_body_limit_bytes),
        };
        for (name, value) in [
            ("header_timeout_ms", cfg.header_timeout_ms),
            ("body_timeout_ms", cfg.body_timeout_ms),
            ("max_connections", cfg.max_connections as u64),
            ("api_body_limit_bytes", cfg.api_body_limit_bytes as u64),
            (
                "webhook_body_limit_bytes",
                cfg.webhook_body_limit_bytes as u64,
            ),
            ("import_body_limit_bytes", cfg.import_body_limit_bytes),
        ] {
            if value == 0 {
                return Err(format!(
                    "http.{name} must be at least 1 (remove it to use the default)"
                ));
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        http: HttpConfig,
    }

    #[test]
    fn defaults_apply_and_zero_is_refused() {
        let d: Doc = toml::from_str("").unwrap();
        assert_eq!(d.http, HttpConfig::default());
        let d: Doc = toml::from_str("[http]\nbody_timeout_ms = 250\n").unwrap();
        assert_eq!(d.http.body_timeout(), Duration::from_millis(250));
        assert_eq!(d.http.max_connections, 256);
        let e = toml::from_str::<Doc>("[http]\nmax_connections = 0\n")
            .err()
            .unwrap();
        assert!(e.to_string().contains("max_connections"), "{e}");
        assert!(toml::from_str::<Doc>("[http]\nheader_timeout = 1\n").is_err());
    }
}
