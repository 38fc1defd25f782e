use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret comes from: an environment variable or a file (e.g. a systemd credential).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Name of the environment variable holding the secret (e.g. `PLAZO_API_TOKEN`).
    #[serde(default)]
    pub env: Option<String>,
    /// Path of a file holding the secret (e.g. `/run/credentials/plazo.service/api-token`);
    /// surrounding whitespace is trimmed. The file must be private to plazo's user: one that
    /// group or others may read (`chmod 644`) is refused with a message saying `chmod 600`.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The named variable is not set.
    #[error(
        "environment variable {0} is not set; export it (or set it in the systemd EnvironmentFile)"
    )]
    EnvMissing(String),
    /// The named file could not be read.
    #[error("cannot read secret file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file may be read by other users.
    #[error("{0}")]
    NotPrivate(String),
    /// The secret is empty.
    #[error("secret from {0} is empty")]
    Empty(String),
}

/// Reads a secret from its source. `Ok(None)` when the source names nothing.
pub fn read_secret(
    src: &SecretSource,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, SecretError> {
    if let Some(name) = &src.env {
        if let Some(v) = env(name).filter(|v| !v.trim().is_empty()) {
            return Ok(Some(v.trim().to_owned()));
        }
        if src.file.is_none() {
            return Err(SecretError::EnvMissing(name.clone()));
        }
    }
    if let Some(path) = &src.file {
        if let Some(problem) = super::secret_file_mode_problem(path) {
            return Err(SecretError::NotPrivate(problem));
        }
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
            path: path.display().to_string(),
            source,
        })?;
        let v = text.trim();
        if v.is_empty() {
            return Err(SecretError::Empty(path.display().to_string()));
        }
        return Ok(Some(v.to_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "  from-file\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let env = |k: &str| (k == "SET").then(|| "from-env".to_string());
        let both = SecretSource {
            env: Some("SET".into()),
            file: Some(f.clone()),
        };
        assert_eq!(
            read_secret(&both, &env).unwrap().as_deref(),
            Some("from-env")
        );
        let fallback = SecretSource {
            env: Some("UNSET".into()),
            file: Some(f),
        };
        assert_eq!(
            read_secret(&fallback, &env).unwrap().as_deref(),
            Some("from-file")
        );
        let missing = SecretSource {
            env: Some("UNSET".into()),
            file: None,
        };
        assert!(matches!(
            read_secret(&missing, &env),
            Err(SecretError::EnvMissing(_))
        ));
        assert_eq!(read_secret(&SecretSource::default(), &env).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "secret").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let src = SecretSource {
            env: None,
            file: Some(f.clone()),
        };
        let e = read_secret(&src, &|_| None).unwrap_err().to_string();
        assert!(e.contains(&format!("chmod 600 {}", f.display())), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_secret(&src, &|_| None).unwrap().as_deref(),
            Some("secret")
        );
    }
}
