//! File permissions of what plazo keeps on disk: the data directory is private to plazo's user
//! (0700) and secrets read from files must not be readable by anyone else.
//!
//! Under systemd, `StateDirectoryMode=0700` and `UMask=0077` in `deploy/plazo.service` do the
//! same; outside it, `plazo serve` sets the umask to 0077 itself (so the database, the
//! generated `api-token` and `unsubscribe-key` and the outbox files are 0600) and creates the
//! data directory with [`prepare_data_dir`].

use std::path::Path;

/// Creates the data directory (and missing parents) with mode 0700. An existing directory is
/// left as it is; the returned warning says so when others may enter it.
pub fn prepare_data_dir(path: &Path) -> std::io::Result<Option<String>> {
    if !path.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(path)?;
        return Ok(None);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Ok(Some(format!(
                "data directory {} has mode {mode:04o}: other users may read the database and secrets in it; run chmod 700 {}",
                path.display(),
                path.display()
            )));
        }
    }
    Ok(None)
}

/// Why the secret file at `path` must not be used, when group or others may read or write it
/// (`mode & 0o077 != 0`): the message says `chmod 600 <path>`. `None` when it is private, when
/// it cannot be inspected (reading it reports that), when it is a systemd credential (under
/// `$CREDENTIALS_DIRECTORY`, whose access systemd itself restricts to the service), and on
/// systems without Unix modes.
pub fn secret_file_mode_problem(path: &Path) -> Option<String> {
    if std::env::var_os("CREDENTIALS_DIRECTORY")
        .is_some_and(|dir| !dir.is_empty() && path.starts_with(Path::new(&dir)))
    {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Some(format!(
                "secret file {} can be read or changed by other users (mode {mode:04o}); run chmod 600 {} (plazo refuses secrets that are not private)",
                path.display(),
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    None
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn data_dir_is_created_private_and_a_loose_one_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("a/data");
        assert_eq!(prepare_data_dir(&data).unwrap(), None);
        assert_eq!(mode(&data), 0o700);
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let w = prepare_data_dir(&data).unwrap().unwrap();
        assert!(w.contains("chmod 700"), "{w}");
    }

    #[test]
    fn a_secret_file_others_can_read_is_a_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("token");
        std::fs::write(&f, "x").unwrap();
        for (m, bad) in [
            (0o644, true),
            (0o640, true),
            (0o602, true),
            (0o600, false),
            (0o400, false),
        ] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(m)).unwrap();
            let p = secret_file_mode_problem(&f);
            assert_eq!(p.is_some(), bad, "{m:o}");
            if let Some(p) = p {
                assert!(p.contains(&format!("chmod 600 {}", f.display())), "{p}");
            }
        }
        assert_eq!(secret_file_mode_problem(&tmp.path().join("missing")), None);
    }
}
