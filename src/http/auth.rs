//! Bearer-token check for `/v1/*`, and where the token comes from.

use std::io::Write;
use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;

/// Rejects requests without `Authorization: Bearer <token>` matching the configured token.
pub async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(tok) if bool::from(tok.as_bytes().ct_eq(state.api_token.as_bytes())) => {
            Ok(next.run(req).await)
        }
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is wrong",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <token>; the token comes from the configured source or the api-token file in the data directory",
        )),
    }
}

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read or written.
    #[error("api token file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token file exists but other users may read it.
    #[error("api token file: {0}")]
    NotPrivate(String),
}

/// Reads `{data_dir}/api-token`, or creates it (mode 0600) with a fresh random token.
/// Returns the token and whether it was generated now. An existing file that group or others
/// may read is refused ([`TokenError::NotPrivate`], saying `chmod 600 <path>`): the token
/// opens the whole API.
pub fn load_or_create_token_file(path: &Path) -> Result<(String, bool), TokenError> {
    let io = |source| TokenError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(problem) = crate::config::secret_file_mode_problem(path) {
        return Err(TokenError::NotPrivate(problem));
    }
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => return Ok((t.trim().to_owned(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(token.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok((token, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_is_created_once_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("api-token");
        let (t1, created) = load_or_create_token_file(&p).unwrap();
        assert!(created);
        assert_eq!(t1.len(), 64);
        let (t2, created) = load_or_create_token_file(&p).unwrap();
        assert!(!created);
        assert_eq!(t1, t2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("api-token");
        std::fs::write(&p, "t0ken").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create_token_file(&p).unwrap_err().to_string();
        assert!(e.contains(&format!("chmod 600 {}", p.display())), "{e}");
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "t0ken",
            "left untouched"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            load_or_create_token_file(&p).unwrap(),
            ("t0ken".to_owned(), false)
        );
    }
}
