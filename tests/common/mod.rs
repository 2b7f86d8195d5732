//! What the end-to-end suites share. (Each suite uses some of it.)
#![allow(dead_code)]

use faultline_harness::infra::Infra;
use sqlx::Connection;

/// Creates the broker's own database on the run's Postgres and returns its URL.
pub async fn broker_database(infra: &Infra) -> String {
    let mut admin = sqlx::PgConnection::connect(&infra.postgres_admin_url().unwrap())
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE broker")
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    infra.postgres_admin_url_for("broker").unwrap()
}

/// The reference system, as its description (`services/faultline.toml`) gives it, with its
/// extension.
pub fn reference() -> faultline_harness::system::System {
    faultline_reference::system()
}
