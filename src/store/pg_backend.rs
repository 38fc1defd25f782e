//! [`PgBackend`]: opens the store on PostgreSQL. The backend itself is the sled backend's design
//! running over [`pg`](super::pg)'s keyspace; this constructor sits above both, so `pg` (the
//! keyspace) and `sled_backend` (which opens it) do not import each other.

use super::pg::{Leader, LeaderOptions, MIGRATIONS, PgTarget, migrate_now, parse_url};
use super::sled_backend::{Location, SledBackend};
use super::{StoreError, StoreOptions};

/// The PostgreSQL backend.
pub struct PgBackend;

impl PgBackend {
    /// Connects to the PostgreSQL database at `url` (`postgresql://user@host:port/db`, with
    /// libpq's `sslmode` and `sslrootcert` for TLS, and plazo's connect timeout and keepalives
    /// unless the URL sets its own: see `store/pg/config.rs`), applies the pending migrations,
    /// becomes the database's leader (waiting as a standby while another node is, see
    /// `leader.rs`), and opens the store on it.
    ///
    /// A database migrated by a newer plazo is refused with [`StoreError::SchemaMismatch`].
    pub fn open(url: &str, opts: StoreOptions) -> Result<SledBackend, StoreError> {
        Self::open_with(url, opts, &LeaderOptions::default())
    }

    /// [`PgBackend::open`] with explicit leadership options (how long to wait as a standby,
    /// what to do when leadership is lost).
    pub fn open_with(
        url: &str,
        opts: StoreOptions,
        leader: &LeaderOptions,
    ) -> Result<SledBackend, StoreError> {
        let config = parse_url(url)?;
        let leader = leader.clone();
        // The synchronous client runs a runtime of its own: never on the caller's (maybe a
        // tokio worker) thread.
        let leader = off_runtime(move || {
            migrate_now(&config)?;
            Leader::acquire(&config, &leader).map_err(StoreError::Leadership)
        })?;
        SledBackend::open_at(
            Location::Postgres(PgTarget {
                url: url.to_owned(),
                leader,
            }),
            opts,
        )
    }

    /// Applies the pending migrations to the database at `url` and returns the schema
    /// version it is at (`plazo migrate`). Refuses a database from a newer plazo.
    pub fn migrate(url: &str) -> Result<i32, StoreError> {
        let config = parse_url(url)?;
        off_runtime(move || migrate_now(&config))?;
        Ok(MIGRATIONS.last().map_or(0, |m| m.0))
    }
}

/// Runs `f` on a thread of its own and waits for it.
fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    std::thread::Builder::new()
        .name("plazo-pg-open".into())
        .spawn(f)
        .map_err(StoreError::Io)?
        .join()
        .unwrap_or_else(|_| {
            Err(StoreError::Io(std::io::Error::other(
                "the PostgreSQL open thread panicked",
            )))
        })
}
