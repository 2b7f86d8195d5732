//! The payment tables (`charges`, `order_voids`; see `migrations/`) and the queries on them.
//!
//! Every function takes the connection of a transaction the caller owns, so a charge, the void
//! it checks and the idempotency key that records the answer commit together. Work on one order
//! is serialised by [`lock_order`]: a charge and a refund of the same order never interleave,
//! so a refund cannot slip between a charge's "not voided" check and its insert.

use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// A charge's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    /// Money taken.
    Charged,
    /// Money never taken: the card was declined.
    Declined,
    /// Money taken and given back.
    Refunded,
}

impl ChargeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Charged => "CHARGED",
            Self::Declined => "DECLINED",
            Self::Refunded => "REFUNDED",
        }
    }

    fn parse(text: &str) -> Result<Self, sqlx::Error> {
        match text {
            "CHARGED" => Ok(Self::Charged),
            "DECLINED" => Ok(Self::Declined),
            "REFUNDED" => Ok(Self::Refunded),
            other => Err(sqlx::Error::Decode(
                format!("unknown charge status {other:?}").into(),
            )),
        }
    }
}

/// One row of `charges`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub charge_id: Uuid,
    pub order_id: Uuid,
    pub amount_cents: i64,
    pub status: ChargeStatus,
}

/// Money per order, as `GET /payments/orders/{order_id}` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderMoney {
    /// Sum of the charges that took money (CHARGED or REFUNDED).
    pub charged_cents: i64,
    pub refunded_cents: i64,
    /// How many charges took money (declines not counted): 0 or 1.
    pub charges: i64,
    pub voided: bool,
}

/// Holds the order's lock until the transaction ends. Different orders may share a lock key
/// (64 of the UUID's 128 bits): that only serialises them, never mixes their data.
pub async fn lock_order(conn: &mut PgConnection, order_id: Uuid) -> Result<(), sqlx::Error> {
    let bytes = order_id.as_bytes();
    let key = i64::from_be_bytes(bytes[..8].try_into().expect("a UUID has 16 bytes"))
        ^ i64::from_be_bytes(bytes[8..].try_into().expect("a UUID has 16 bytes"));
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// The refunded cents recorded when the order was voided, or `None` when it is not.
pub async fn voided(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT refunded_cents FROM order_voids WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(conn)
        .await
}

/// The order's charge that took money (CHARGED or REFUNDED), if any.
pub async fn money_taking_charge(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Charge>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT charge_id, order_id, amount_cents, status FROM charges
         WHERE order_id = $1 AND status IN ('CHARGED', 'REFUNDED')",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(Charge {
            charge_id: row.try_get("charge_id")?,
            order_id: row.try_get("order_id")?,
            amount_cents: row.try_get("amount_cents")?,
            status: ChargeStatus::parse(row.try_get("status")?)?,
        })
    })
    .transpose()
}

/// Records a new charge (CHARGED or DECLINED) with a fresh id.
pub async fn insert_charge(
    conn: &mut PgConnection,
    order_id: Uuid,
    amount_cents: i64,
    card_last4: &str,
    status: ChargeStatus,
) -> Result<Charge, sqlx::Error> {
    let charge = Charge {
        charge_id: Uuid::new_v4(),
        order_id,
        amount_cents,
        status,
    };
    sqlx::query(
        "INSERT INTO charges (charge_id, order_id, amount_cents, card_last4, status)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(charge.charge_id)
    .bind(order_id)
    .bind(amount_cents)
    .bind(card_last4)
    .bind(status.as_str())
    .execute(conn)
    .await?;
    Ok(charge)
}

/// Refunds the order's CHARGED charge, if any; the refunded cents (0 when nothing was charged).
pub async fn refund_charge(conn: &mut PgConnection, order_id: Uuid) -> Result<i64, sqlx::Error> {
    let refunded: Option<i64> = sqlx::query_scalar(
        "UPDATE charges SET status = 'REFUNDED', refunded_at = now()
         WHERE order_id = $1 AND status = 'CHARGED' RETURNING amount_cents",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    Ok(refunded.unwrap_or(0))
}

/// Voids the order: later charges are refused.
pub async fn insert_void(
    conn: &mut PgConnection,
    order_id: Uuid,
    refunded_cents: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO order_voids (order_id, refunded_cents) VALUES ($1, $2)")
        .bind(order_id)
        .bind(refunded_cents)
        .execute(conn)
        .await?;
    Ok(())
}

/// The order's money in and out.
pub async fn order_money(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<OrderMoney, sqlx::Error> {
    let row = sqlx::query(
        "SELECT
            COALESCE(SUM(amount_cents) FILTER (WHERE status IN ('CHARGED', 'REFUNDED')), 0)::BIGINT AS charged_cents,
            COALESCE(SUM(amount_cents) FILTER (WHERE status = 'REFUNDED'), 0)::BIGINT AS refunded_cents,
            COUNT(*) FILTER (WHERE status IN ('CHARGED', 'REFUNDED')) AS charges,
            EXISTS (SELECT 1 FROM order_voids WHERE order_id = $1) AS voided
         FROM charges WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_one(conn)
    .await?;
    Ok(OrderMoney {
        charged_cents: row.try_get("charged_cents")?,
        refunded_cents: row.try_get("refunded_cents")?,
        charges: row.try_get("charges")?,
        voided: row.try_get("voided")?,
    })
}
