//! Opens the store the config names: the embedded sled database, or PostgreSQL as the
//! database's leader (waiting as a standby while another node leads).

use std::sync::Arc;
use std::time::Duration;

use crate::config::{DaemonConfig, SecretError, StoreBackend, read_secret};
use crate::store::{LeaderOptions, PgBackend, Store, StoreOptions};

use super::DaemonError;

/// The exit status of a node that lost leadership of its PostgreSQL database
/// (`EX_TEMPFAIL`): systemd's `Restart=` starts it again, as a standby.
pub const EXIT_LEADERSHIP_LOST: i32 = 75;

/// Opens the configured store. With PostgreSQL this blocks (on a blocking thread) until this
/// node is the leader; a node that later loses leadership runs `before_exit` (this node's
/// send worker finishes the sends it holds, which belong to the new leader) and exits with
/// [`EXIT_LEADERSHIP_LOST`] rather than keep running without the right to write.
pub(crate) async fn open_store(
    config: &DaemonConfig,
    env: &dyn Fn(&str) -> Option<String>,
    before_exit: Option<Arc<dyn Fn() + Send + Sync>>,
) -> Result<Store, DaemonError> {
    let opts = StoreOptions {
        cache_capacity_bytes: config.cache_mib * 1024 * 1024,
        ..StoreOptions::default()
    };
    match config.store.backend {
        StoreBackend::Sled => Ok(Store::open(&config.data_dir.join("db"), opts)?),
        StoreBackend::Postgres => {
            let url = database_url(config, env)?;
            let leader = LeaderOptions {
                node: config.store.node_name(),
                poll: Duration::from_millis(config.store.standby_poll_ms),
                wait: None,
                on_lost: Some(Arc::new(move |why: String| {
                    tracing::error!(reason = %why, exit = EXIT_LEADERSHIP_LOST, "leadership of the database lost: exiting so that this node restarts as a standby");
                    if let Some(hook) = &before_exit {
                        hook();
                    }
                    std::process::exit(EXIT_LEADERSHIP_LOST);
                })),
            };
            let backend =
                tokio::task::spawn_blocking(move || PgBackend::open_with(&url, opts, &leader))
                    .await
                    .map_err(|e| DaemonError::Io {
                        context: "opening the PostgreSQL store".into(),
                        source: std::io::Error::other(e.to_string()),
                    })??;
            Ok(Store::with_backend(Arc::new(backend)))
        }
    }
}

/// The PostgreSQL URL from `[store] url` (an environment variable or a file), for `plazo
/// serve` and `plazo migrate`.
pub fn database_url(
    config: &DaemonConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, DaemonError> {
    let what = "[store] url (the PostgreSQL connection URL)";
    match read_secret(&config.store.url, env) {
        Ok(Some(url)) => Ok(url),
        Ok(None) => Err(DaemonError::Secret {
            what,
            source: SecretError::Empty(
                "[store] url: set { env = \"PLAZO_DATABASE_URL\" } or { file = \"...\" }".into(),
            ),
        }),
        Err(source) => Err(DaemonError::Secret { what, source }),
    }
}
