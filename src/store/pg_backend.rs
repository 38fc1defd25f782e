//! [`PgBackend`]: opens the store on PostgreSQL. The backend itself is the sled backend's design
//! running over [`pg`](super::pg)'s keyspace; this constructor sits above both, so `pg` (the
//! keyspace) and `sled_backend` (which opens it) do not import each other.

use super::sled_backend::{Location, SledBackend};
use super::{StoreError, StoreOptions};

/// The PostgreSQL backend.
pub struct PgBackend;

impl PgBackend {
    /// Connects to the PostgreSQL database at `url` (`postgresql://user@host:port/db`, no TLS
    /// yet), applies the pending migrations, and opens the store on it.
    ///
    /// A database migrated by a newer plazo is refused with [`StoreError::SchemaMismatch`].
    pub fn open(url: &str, opts: StoreOptions) -> Result<SledBackend, StoreError> {
        SledBackend::open_at(Location::Postgres(url.to_owned()), opts)
    }
}
