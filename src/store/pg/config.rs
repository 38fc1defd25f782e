//! [`PgConfig`]: a parsed PostgreSQL URL, with plazo's connection defaults and its TLS
//! settings, and the one way every part of the backend connects ([`PgConfig::connect`]).
//!
//! The URL is libpq's: `postgresql://user:password@host:port/db?param=value&...`, or the
//! `key=value key=value` form. The client library (tokio-postgres 0.7) knows `sslmode`
//! `disable`/`prefer`/`require` only and refuses parameters it does not know, so `sslmode` and
//! `sslrootcert` are taken out here ([`tls`](super::tls) implements them) and the rest is
//! handed to `postgres::Config` untouched.
//!
//! Defaults, for what the URL leaves out (a value in the URL wins): `connect_timeout` 10 s (a
//! black-holed host fails then instead of after the OS's TCP timeout of minutes), keepalives
//! on after 30 s idle, every 10 s, 3 probes, and on Linux `tcp_user_timeout` 30 s (a peer
//! that stops acknowledging what was sent is dropped). `tcp_user_timeout` is in milliseconds,
//! as libpq reads it (so it is taken out here too: tokio-postgres would read seconds). The URL holds a password: it is never
//! logged nor put in an error.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use super::tls::{SslMode, Tls, TlsError};

/// Connect timeout when the URL sets none.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle time before the first keepalive probe, when the URL sets none.
pub(crate) const KEEPALIVES_IDLE: Duration = Duration::from_secs(30);
/// Time between keepalive probes, when the URL sets none.
pub(crate) const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered keepalive probes before the connection is dropped, when the URL sets none.
pub(crate) const KEEPALIVES_RETRIES: u32 = 3;
/// How long sent data may stay unacknowledged (Linux), when the URL sets none.
pub(crate) const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// A PostgreSQL URL that cannot be used.
#[derive(Debug, Error)]
pub enum UrlError {
    /// `sslmode`/`sslrootcert` cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The client library refused the rest of the URL.
    #[error("invalid PostgreSQL URL: {}", super::pg_text(.0))]
    Invalid(#[from] postgres::Error),
    /// A `key=value` string that does not parse.
    #[error("invalid PostgreSQL connection string: {0}")]
    Syntax(&'static str),
    /// A parameter's value in the URL is not valid percent-encoded UTF-8.
    #[error("invalid PostgreSQL URL: the value of `{0}` is not valid percent-encoded UTF-8")]
    Encoding(String),
    /// Client certificates are not supported yet.
    #[error(
        "the PostgreSQL URL sets `{0}`: client certificates are not supported; authenticate with a password"
    )]
    ClientCertificate(String),
}

/// Connecting failed.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The server declined TLS and `sslmode` requires it.
    #[error(
        "cannot connect to PostgreSQL: the server does not accept TLS connections and sslmode={0} requires TLS: turn ssl on in the server, or set sslmode=prefer (or disable) in the URL"
    )]
    ServerWithoutTls(SslMode),
    /// The server did not answer in time.
    #[error(
        "cannot connect to PostgreSQL: no answer within {}s (connect_timeout; set it in the URL to wait longer): {}",
        .timeout.as_secs(), super::pg_text(.error)
    )]
    TimedOut {
        /// The connect timeout in force.
        timeout: Duration,
        /// The client's error.
        error: postgres::Error,
    },
    /// Anything else: unreachable, refused, timed out, authentication, a failed handshake.
    #[error("cannot connect to PostgreSQL: {}", super::pg_text(.0))]
    Postgres(#[from] postgres::Error),
}

/// A parsed PostgreSQL URL: the client's configuration, with plazo's defaults, and the TLS
/// connector its `sslmode` calls for.
#[derive(Clone, Debug)]
pub(crate) struct PgConfig {
    config: postgres::Config,
    tls: Tls,
    mode: SslMode,
}

impl PgConfig {
    /// Parses `url`, reading `sslrootcert` (or the system's roots for the verify modes).
    pub(crate) fn parse(url: &str) -> Result<PgConfig, UrlError> {
        let mut params = Params::default();
        let rest = match url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
        {
            Some(after) => strip_url(url, url.len() - after.len(), &mut params)?,
            None => strip_key_values(url, &mut params)?,
        };
        let mode = match &params.sslmode {
            Some(v) => SslMode::parse(v)?,
            None => SslMode::Prefer,
        };
        let tls = Tls::new(
            mode,
            params.sslrootcert.as_deref().map(std::path::Path::new),
        )?;
        let mut config: postgres::Config = rest.parse()?;
        config.ssl_mode(mode.wire());
        let set = |k: &str| params.keys.iter().any(|p| p == k);
        if !set("connect_timeout") {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if !set("keepalives") {
            config.keepalives(true);
        }
        if !set("keepalives_idle") {
            config.keepalives_idle(KEEPALIVES_IDLE);
        }
        if !set("keepalives_interval") {
            config.keepalives_interval(KEEPALIVES_INTERVAL);
        }
        if !set("keepalives_retries") {
            config.keepalives_retries(KEEPALIVES_RETRIES);
        }
        match params.tcp_user_timeout {
            Some(t) => {
                config.tcp_user_timeout(t);
            }
            None if cfg!(target_os = "linux") => {
                config.tcp_user_timeout(TCP_USER_TIMEOUT);
            }
            None => {}
        }
        Ok(PgConfig { config, tls, mode })
    }

    /// Opens a connection (its own client and runtime: never call it on a tokio worker).
    pub(crate) fn connect(&self) -> Result<postgres::Client, ConnectError> {
        self.config.connect(self.tls.clone()).map_err(|e| {
            let declined = std::error::Error::source(&e)
                .is_some_and(|c| c.to_string().contains("server does not support TLS"));
            let timed_out = std::error::Error::source(&e)
                .and_then(|c| c.downcast_ref::<std::io::Error>())
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
            match self.config.get_connect_timeout() {
                _ if declined => ConnectError::ServerWithoutTls(self.mode),
                Some(&timeout) if timed_out => ConnectError::TimedOut { timeout, error: e },
                _ => ConnectError::Postgres(e),
            }
        })
    }

    /// The client library's configuration (defaults applied).
    #[cfg(test)]
    pub(crate) fn postgres(&self) -> &postgres::Config {
        &self.config
    }

    /// The URL's `sslmode`.
    #[cfg(test)]
    pub(crate) fn ssl_mode(&self) -> SslMode {
        self.mode
    }
}

/// What was taken out of the URL, and the keys it sets.
#[derive(Default)]
struct Params {
    sslmode: Option<String>,
    sslrootcert: Option<PathBuf>,
    /// libpq's `tcp_user_timeout`, in milliseconds (tokio-postgres would read seconds).
    tcp_user_timeout: Option<Duration>,
    keys: Vec<String>,
}

impl Params {
    /// Records `key`; true when it is ours (and is left out of what the client parses).
    fn take(&mut self, key: &str, value: &str) -> Result<bool, UrlError> {
        self.keys.push(key.to_owned());
        match key {
            "sslmode" => self.sslmode = Some(value.to_owned()),
            "sslrootcert" => self.sslrootcert = Some(PathBuf::from(value)),
            "tcp_user_timeout" => {
                let ms = value.trim().parse::<u64>().map_err(|_| {
                    UrlError::Syntax("tcp_user_timeout is not a whole number of milliseconds")
                })?;
                self.tcp_user_timeout = Some(Duration::from_millis(ms));
            }
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(UrlError::ClientCertificate(key.to_owned()));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The URL without our parameters. `start`: where the part after the scheme begins. The query
/// starts at the first `?` after the credentials, as the client library reads it.
fn strip_url(url: &str, start: usize, params: &mut Params) -> Result<String, UrlError> {
    let after = &url[start..];
    let from = after.find('@').map_or(start, |at| start + at);
    let Some(q) = url[from..].find('?').map(|q| from + q) else {
        return Ok(url.to_owned());
    };
    let mut kept = Vec::new();
    for pair in url[q + 1..].split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| UrlError::Encoding(k.to_owned()))
        };
        let key = decode(k)?;
        if !params.take(&key, &decode(v)?)? {
            kept.push(pair);
        }
    }
    let base = &url[..q];
    Ok(if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

/// The `key=value` string without our parameters (libpq's syntax: whitespace between pairs,
/// values bare or in single quotes, `\` escaping the next character), re-quoted.
fn strip_key_values(s: &str, params: &mut Params) -> Result<String, UrlError> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            if it.peek().is_some() {
                return Err(UrlError::Syntax("a parameter without a name"));
            }
            break;
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.next() != Some('=') {
            return Err(UrlError::Syntax("a parameter without `=`"));
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next() {
                    None => return Err(UrlError::Syntax("an unterminated quoted value")),
                    Some('\'') => break,
                    Some('\\') => value.extend(it.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(it.next());
                } else {
                    value.push(c);
                }
            }
        }
        if !params.take(&key, &value)? {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            out.push(format!("{key}='{quoted}'"));
        }
    }
    Ok(out.join(" "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn parse(url: &str) -> PgConfig {
        PgConfig::parse(url).unwrap()
    }

    fn err(url: &str) -> String {
        PgConfig::parse(url).unwrap_err().to_string()
    }

    #[test]
    fn a_url_without_timeouts_gets_the_defaults() {
        for url in [
            "postgresql://plazo:secret@db.example:5432/plazo",
            "host=db.example user=plazo dbname=plazo",
        ] {
            let c = parse(url);
            let pg = c.postgres();
            assert_eq!(pg.get_connect_timeout(), Some(&CONNECT_TIMEOUT), "{url}");
            assert!(pg.get_keepalives());
            assert_eq!(pg.get_keepalives_idle(), KEEPALIVES_IDLE);
            assert_eq!(pg.get_keepalives_interval(), Some(KEEPALIVES_INTERVAL));
            assert_eq!(pg.get_keepalives_retries(), Some(KEEPALIVES_RETRIES));
            #[cfg(target_os = "linux")]
            assert_eq!(pg.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
            assert_eq!(c.ssl_mode(), SslMode::Prefer);
            assert_eq!(pg.get_ssl_mode(), postgres::config::SslMode::Prefer);
        }
    }

    #[test]
    fn values_the_url_sets_win() {
        let url = "postgresql://plazo@db/plazo?connect_timeout=3&keepalives_idle=7&keepalives_interval=2&keepalives_retries=9&tcp_user_timeout=4000&application_name=x";
        let kv = "host=db connect_timeout=3 keepalives_idle=7 keepalives_interval=2 keepalives_retries=9 tcp_user_timeout=4000 application_name='x'";
        for url in [url, kv] {
            let c = parse(url);
            let pg = c.postgres();
            assert_eq!(pg.get_connect_timeout(), Some(&Duration::from_secs(3)));
            assert_eq!(pg.get_keepalives_idle(), Duration::from_secs(7));
            assert_eq!(pg.get_keepalives_interval(), Some(Duration::from_secs(2)));
            assert_eq!(pg.get_keepalives_retries(), Some(9));
            assert_eq!(pg.get_tcp_user_timeout(), Some(&Duration::from_secs(4)));
            assert_eq!(pg.get_application_name(), Some("x"));
        }
        let off = parse("postgresql://db/plazo?keepalives=0");
        assert!(!off.postgres().get_keepalives());
    }

    #[test]
    fn sslmode_is_read_and_the_rest_of_the_url_kept() {
        for (mode, wire, want) in [
            (
                "disable",
                postgres::config::SslMode::Disable,
                SslMode::Disable,
            ),
            ("prefer", postgres::config::SslMode::Prefer, SslMode::Prefer),
            (
                "require",
                postgres::config::SslMode::Require,
                SslMode::Require,
            ),
        ] {
            let c = parse(&format!(
                "postgresql://u:p%3Fw@db:6543/base?application_name=a%20b&sslmode={mode}&options=-c%20x%3Dy"
            ));
            assert_eq!(c.ssl_mode(), want);
            let pg = c.postgres();
            assert_eq!(pg.get_ssl_mode(), wire);
            assert_eq!(pg.get_user(), Some("u"));
            assert_eq!(pg.get_password(), Some(&b"p?w"[..]));
            assert_eq!(pg.get_dbname(), Some("base"));
            assert_eq!(pg.get_ports(), &[6543]);
            assert_eq!(pg.get_application_name(), Some("a b"));
            assert_eq!(pg.get_options(), Some("-c x=y"));
            let kv = parse(&format!("host=db sslmode={mode} password='it\\'s'"));
            assert_eq!(kv.ssl_mode(), want);
            assert_eq!(kv.postgres().get_password(), Some(&b"it's"[..]));
        }
    }

    #[test]
    fn an_invalid_sslmode_names_the_accepted_values() {
        for url in [
            "postgresql://db/plazo?sslmode=allow",
            "host=db sslmode=verify_full",
        ] {
            let e = err(url);
            assert!(
                e.contains("disable, prefer, require, verify-ca, verify-full"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_missing_or_invalid_root_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = err(&format!(
            "postgresql://db/plazo?sslmode=verify-full&sslrootcert={}",
            missing.display()
        ));
        assert!(
            e.contains("cannot read the sslrootcert file") && e.contains("nope.pem"),
            "{e}"
        );
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let e = err(&format!(
            "host=db sslmode=verify-ca sslrootcert='{}'",
            garbage.display()
        ));
        assert!(
            e.contains("garbage.pem") && e.contains("holds no certificate"),
            "{e}"
        );
        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = err(&format!(
            "postgresql://db/plazo?sslmode=require&sslrootcert={}",
            bad.display()
        ));
        assert!(e.contains("bad.pem") && e.contains("invalid"), "{e}");
    }

    #[test]
    fn client_certificates_are_refused_clearly() {
        let e = err("postgresql://db/plazo?sslcert=/c.pem");
        assert!(e.contains("client certificates are not supported"), "{e}");
    }

    #[test]
    fn errors_never_show_the_password() {
        for url in [
            "postgresql://plazo:hunter2@db/plazo?sslmode=bogus",
            "postgresql://plazo:hunter2@db/plazo?nosuchoption=1",
            "postgresql://plazo:hunter2@db:notaport/plazo",
        ] {
            let e = err(url);
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
