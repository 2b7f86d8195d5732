//! The Postgres pool and the migrations run at start-up.
//!
//! Each service owns one database. It holds the service's own tables *and* the kit's
//! (`outbox`, `idempotency_keys`, `processed_events`, from `services/kit/migrations`). The two
//! sets are versioned separately: the kit's migrations record themselves in
//! [`KIT_MIGRATIONS_TABLE`], the service's in sqlx's default `_sqlx_migrations`, so their
//! version numbers never collide. [`migrate`] runs both, the kit's first, so a service's
//! migrations may refer to the kit's tables. Both take Postgres's advisory migration lock, so
//! several processes starting at once apply each migration once.
//!
//! ```no_run
//! # async fn demo() -> Result<(), faultline_kit::db::DbError> {
//! static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations"); // the service's
//! let pool = faultline_kit::db::connect("postgres://order:pw@127.0.0.1/order", 10).await?;
//! faultline_kit::db::migrate(&pool, &MIGRATOR).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::config::redact_url;

/// Where the kit records its applied migrations, apart from the service's own.
pub const KIT_MIGRATIONS_TABLE: &str = "_faultline_kit_migrations";

/// How long connecting, or waiting for a free pooled connection, may take. Bounded so a cut
/// database link turns into a prompt error (and a 503) instead of a request hanging.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("connecting to {url}: {source}")]
    Connect {
        /// Redacted.
        url: String,
        source: sqlx::Error,
    },
    #[error("running the {which} migrations: {source}")]
    Migrate {
        which: &'static str,
        source: MigrateError,
    },
}

/// A pool of at most `max_connections` connections to `url`; fails after [`ACQUIRE_TIMEOUT`]
/// when the database does not answer.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A connection that died with a faulted link is found out before it is handed out.
        .test_before_acquire(true)
        .connect(url)
        .await
        .map_err(|source| DbError::Connect {
            url: redact_url(url),
            source,
        })
}

/// The kit's own migrations, recorded in [`KIT_MIGRATIONS_TABLE`].
pub fn kit_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.dangerous_set_table_name(KIT_MIGRATIONS_TABLE);
    migrator
}

/// Runs the kit's migrations, then the service's (`service`); already applied ones are skipped.
pub async fn migrate(pool: &PgPool, service: &Migrator) -> Result<(), DbError> {
    migrate_kit(pool).await?;
    service.run(pool).await.map_err(|source| DbError::Migrate {
        which: "service",
        source,
    })
}

/// Runs only the kit's migrations (for a service that has no tables of its own).
pub async fn migrate_kit(pool: &PgPool) -> Result<(), DbError> {
    kit_migrator()
        .run(pool)
        .await
        .map_err(|source| DbError::Migrate {
            which: "kit",
            source,
        })
}
