//! Doing a thing once although it is asked for many times: idempotency keys for HTTP requests,
//! and a processed-events record for Kafka consumers.
//!
//! **Requests.** A handler calls [`begin`] with the request's `Idempotency-Key`, a scope (e.g.
//! `"POST /orders"`) and a [`fingerprint`] of the request, *inside the transaction that does the
//! work*, and [`complete`] in the same transaction before committing:
//!
//! ```no_run
//! use faultline_kit::idempotency::{self, Begin};
//! # async fn demo(pool: sqlx::PgPool, key: &str, body: &[u8]) -> Result<(), sqlx::Error> {
//! let mut tx = pool.begin().await?;
//! match idempotency::begin(&mut tx, "POST /orders", key, &idempotency::fingerprint(body)).await? {
//!     Begin::Fresh => {
//!         // ... create the order ...
//!         let response = serde_json::json!({"order_id": "o-1"});
//!         idempotency::complete(&mut tx, "POST /orders", key, 201, &response).await?;
//!         tx.commit().await?;
//!     }
//!     Begin::Replay { status, body } => { /* answer status + body again */ }
//!     Begin::InProgress => { /* 409: the first request is still running */ }
//!     Begin::Conflict => { /* 422: the key was used for a different request */ }
//! }
//! # Ok(()) }
//! ```
//!
//! Why inside the transaction: `begin` inserts the key's row with `INSERT ... ON CONFLICT DO
//! NOTHING`. Concurrent duplicates block on that row until the first transaction ends, then see
//! its stored response (`Replay`), so of 20 simultaneous identical requests exactly one is
//! `Fresh`. If the first request fails or its process dies, its transaction rolls back, the key
//! is free again and the next duplicate does the work. (Called outside a transaction, the key is
//! `InProgress` until [`complete`] and stays so if the process dies in between.)
//!
//! Use Postgres's default READ COMMITTED isolation: after waiting, the duplicate must see the
//! row committed meanwhile.
//!
//! **Events.** An idempotent consumer calls [`mark_processed`] in the transaction that applies
//! the event; `false` means a redelivery, to be acknowledged without effect.

use sqlx::{PgConnection, Row};

/// What [`begin`] found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First use of the key: do the work, then [`complete`].
    Fresh,
    /// The same request was completed before: answer with its response.
    Replay {
        status: u16,
        body: serde_json::Value,
    },
    /// The same request is being handled by someone else right now.
    InProgress,
    /// The key was used for a request with a different fingerprint.
    Conflict,
}

/// Claims `key` within `scope` for a request with `fingerprint`.
pub async fn begin(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Begin, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3)
         ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(fingerprint)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Begin::Fresh);
    }
    let row = sqlx::query(
        "SELECT fingerprint, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    let stored: String = row.get("fingerprint");
    if stored != fingerprint {
        return Ok(Begin::Conflict);
    }
    let status: Option<i32> = row.get("status");
    Ok(match status {
        None => Begin::InProgress,
        Some(status) => Begin::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body: row
                .get::<Option<serde_json::Value>, _>("body")
                .unwrap_or(serde_json::Value::Null),
        },
    })
}

/// Stores the response of the request that got [`Begin::Fresh`] for `key`.
pub async fn complete(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    status: u16,
    body: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $3, body = $4, completed_at = now()
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(i32::from(status))
    .bind(body)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stable fingerprint of a request's bytes (128-bit FNV-1a, hex): equal requests, equal
/// fingerprints, across processes and versions.
pub fn fingerprint(request: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let hash = request.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u128::from(*byte)).wrapping_mul(PRIME)
    });
    format!("{hash:032x}")
}

/// Records that `consumer` processed `event_id`; `false` when it had already (a redelivery).
/// Call it in the transaction that applies the event, so both happen or neither.
pub async fn mark_processed(
    conn: &mut PgConnection,
    consumer: &str,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn fingerprints_are_stable_and_tell_requests_apart() {
        assert_eq!(fingerprint(b""), "6c62272e07bb014262b821756295c58d");
        assert_eq!(fingerprint(b"{\"sku\":1}"), fingerprint(b"{\"sku\":1}"));
        assert_ne!(fingerprint(b"{\"sku\":1}"), fingerprint(b"{\"sku\":2}"));
    }
}
