//! Talking to a running daemon from the command line (`plazo import`, `plazo report`,
//! `plazo simulate`): the daemon holds the store open, so these commands go through its API.
//!
//! Where the daemon is: `PLAZO_URL` when set, else `http://{listen}` from the daemon config
//! (a wildcard address such as `0.0.0.0` is reached on loopback). The bearer token: the
//! config's `[api] token` source (environment or file), else the token file the daemon
//! generated in its data directory (`{data_dir}/api-token`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{DaemonConfig, SecretError, read_secret, secret_file_mode_problem};

/// Why the daemon cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No token anywhere.
    #[error(
        "no API token: set the environment variable named in [api] token (PLAZO_API_TOKEN by default), or start the daemon once so that it writes {0}"
    )]
    NoToken(PathBuf),
    /// The token source exists but cannot be read.
    #[error("reading the API token: {0}")]
    Token(String),
    /// `PLAZO_URL` is not a URL.
    #[error("PLAZO_URL {url:?} is not a URL ({reason}); set it like http://127.0.0.1:8080")]
    BadUrl {
        /// What was given.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The HTTP client cannot be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
}

/// A connection to a running daemon's API.
#[derive(Clone)]
pub struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// The daemon described by `cfg`, with the process environment.
    pub fn from_config(cfg: &DaemonConfig) -> Result<Remote, RemoteError> {
        Remote::from_config_with_env(cfg, &|k| std::env::var(k).ok())
    }

    /// [`Remote::from_config`] with an explicit environment (tests).
    pub fn from_config_with_env(
        cfg: &DaemonConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Remote, RemoteError> {
        let base = match env("PLAZO_URL").filter(|u| !u.trim().is_empty()) {
            Some(u) => {
                let u = u.trim().trim_end_matches('/').to_owned();
                reqwest::Url::parse(&u).map_err(|e| RemoteError::BadUrl {
                    url: u.clone(),
                    reason: e.to_string(),
                })?;
                u
            }
            None => {
                let mut addr = cfg.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(match addr {
                        std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                format!("http://{addr}")
            }
        };
        let token = token(cfg, env)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Between two reads of a response (a streamed import answers row by row).
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| RemoteError::Client(e.to_string()))?;
        Ok(Remote { base, token, http })
    }

    /// A connection to `base` (`http://127.0.0.1:8080`) with `token` (tests).
    pub fn new(base: &str, token: &str) -> Result<Remote, RemoteError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| RemoteError::Client(e.to_string()))?;
        Ok(Remote {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
        })
    }

    /// The daemon's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (`/v1/...`) with the bearer token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// `GET path` with the bearer token.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    /// `POST path` with the bearer token.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }
}

/// The token the daemon uses: its configured source, else its generated token file.
fn token(cfg: &DaemonConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<String, RemoteError> {
    match read_secret(&cfg.api.token, env) {
        Ok(Some(t)) => return Ok(t),
        Ok(None) | Err(SecretError::EnvMissing(_)) => {}
        Err(e) => return Err(RemoteError::Token(e.to_string())),
    }
    let path = cfg.data_dir.join("api-token");
    token_file(&path)
}

fn token_file(path: &Path) -> Result<String, RemoteError> {
    if !path.exists() {
        return Err(RemoteError::NoToken(path.to_path_buf()));
    }
    if let Some(problem) = secret_file_mode_problem(path) {
        return Err(RemoteError::Token(problem));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| RemoteError::Token(format!("{}: {e}", path.display())))?;
    let t = text.trim();
    if t.is_empty() {
        return Err(RemoteError::NoToken(path.to_path_buf()));
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, listen: &str) -> DaemonConfig {
        let path = dir.join("plazo.toml");
        std::fs::write(dir.join("policy.toml"), "").unwrap();
        std::fs::write(
            &path,
            format!(
                "listen = \"{listen}\"\ndata_dir = \"{}\"\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        crate::config::load_daemon_config(&path).unwrap()
    }

    #[test]
    fn token_from_env_then_generated_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), "0.0.0.0:9091");
        let none = |_: &str| None;
        let e = Remote::from_config_with_env(&cfg, &none).unwrap_err();
        assert!(matches!(e, RemoteError::NoToken(_)), "{e}");

        let with = |k: &str| (k == "PLAZO_API_TOKEN").then(|| "tok-env".to_owned());
        let r = Remote::from_config_with_env(&cfg, &with).unwrap();
        assert_eq!(r.token, "tok-env");
        // A wildcard listen address is reached on loopback.
        assert_eq!(r.base(), "http://127.0.0.1:9091");

        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let f = dir.path().join("data/api-token");
        std::fs::write(&f, "tok-file\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = Remote::from_config_with_env(&cfg, &none).unwrap();
        assert_eq!(r.token, "tok-file");
        // A token file others can read is refused, as the daemon refuses it.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Remote::from_config_with_env(&cfg, &none).unwrap_err();
        assert!(matches!(e, RemoteError::Token(_)), "{e}");
    }

    #[test]
    fn plazo_url_overrides_listen_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), "127.0.0.1:8080");
        let env = |k: &str| match k {
            "PLAZO_URL" => Some("http://10.0.0.5:9000/".to_owned()),
            "PLAZO_API_TOKEN" => Some("t".to_owned()),
            _ => None,
        };
        let r = Remote::from_config_with_env(&cfg, &env).unwrap();
        assert_eq!(r.base(), "http://10.0.0.5:9000");
        let bad = |k: &str| match k {
            "PLAZO_URL" => Some("not a url".to_owned()),
            "PLAZO_API_TOKEN" => Some("t".to_owned()),
            _ => None,
        };
        let e = Remote::from_config_with_env(&cfg, &bad).unwrap_err();
        assert!(e.to_string().contains("PLAZO_URL"), "{e}");
    }
}
