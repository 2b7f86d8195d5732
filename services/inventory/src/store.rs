//! The inventory tables (`stock`, `reservations`; see `migrations/`) and the queries on them.
//!
//! Every function takes the connection of a transaction the caller owns. Locks are always taken
//! in the same order — the order's `reservations` row first, then the `stock` row — so
//! reservations, releases and commits running at once never deadlock. Stock is only changed by
//! conditional single-statement updates, and the table's CHECK constraints refuse negative or
//! over-reserved stock whatever happens.

use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// What became of an order's reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    /// Units held for the order.
    Reserved,
    /// Units given back (or never held: a release that came first leaves a tombstone).
    Released,
    /// Units gone from stock with the order.
    Committed,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Released => "RELEASED",
            Self::Committed => "COMMITTED",
        }
    }

    fn parse(text: &str) -> Result<Self, sqlx::Error> {
        match text {
            "RESERVED" => Ok(Self::Reserved),
            "RELEASED" => Ok(Self::Released),
            "COMMITTED" => Ok(Self::Committed),
            other => Err(sqlx::Error::Decode(
                format!("unknown reservation status {other:?}").into(),
            )),
        }
    }
}

/// One row of `reservations`. `sku` is `None` (and `quantity` 0) for a release tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub order_id: Uuid,
    pub sku: Option<String>,
    pub quantity: i32,
    pub status: ReservationStatus,
}

/// One row of `stock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stock {
    pub sku: String,
    pub on_hand: i32,
    pub reserved: i32,
}

impl Stock {
    pub fn available(&self) -> i32 {
        self.on_hand - self.reserved
    }
}

fn reservation_from(row: &sqlx::postgres::PgRow) -> Result<Reservation, sqlx::Error> {
    Ok(Reservation {
        reservation_id: row.try_get("reservation_id")?,
        order_id: row.try_get("order_id")?,
        sku: row.try_get("sku")?,
        quantity: row.try_get("quantity")?,
        status: ReservationStatus::parse(row.try_get("status")?)?,
    })
}

fn stock_from(row: &sqlx::postgres::PgRow) -> Result<Stock, sqlx::Error> {
    Ok(Stock {
        sku: row.try_get("sku")?,
        on_hand: row.try_get("on_hand")?,
        reserved: row.try_get("reserved")?,
    })
}

/// The order's reservation row, if any. With `lock`, held `FOR UPDATE` until the transaction
/// ends.
pub async fn reservation(
    conn: &mut PgConnection,
    order_id: Uuid,
    lock: bool,
) -> Result<Option<Reservation>, sqlx::Error> {
    let sql = if lock {
        "SELECT reservation_id, order_id, sku, quantity, status FROM reservations
         WHERE order_id = $1 FOR UPDATE"
    } else {
        "SELECT reservation_id, order_id, sku, quantity, status FROM reservations
         WHERE order_id = $1"
    };
    let row = sqlx::query(sql).bind(order_id).fetch_optional(conn).await?;
    row.as_ref().map(reservation_from).transpose()
}

/// Claims the order for a reservation of `quantity` × `sku`; `None` when the order already has
/// a row (a reservation or a tombstone). A concurrent claim of the same order waits here until
/// the first one's transaction ends.
pub async fn claim_order(
    conn: &mut PgConnection,
    order_id: Uuid,
    sku: &str,
    quantity: i32,
) -> Result<Option<Reservation>, sqlx::Error> {
    let reservation = Reservation {
        reservation_id: Uuid::new_v4(),
        order_id,
        sku: Some(sku.to_string()),
        quantity,
        status: ReservationStatus::Reserved,
    };
    let inserted = sqlx::query(
        "INSERT INTO reservations (reservation_id, order_id, sku, quantity, status)
         VALUES ($1, $2, $3, $4, 'RESERVED') ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(reservation.reservation_id)
    .bind(order_id)
    .bind(sku)
    .bind(quantity)
    .execute(conn)
    .await?
    .rows_affected();
    Ok((inserted == 1).then_some(reservation))
}

/// Takes back a claim whose stock could not be reserved.
pub async fn unclaim_order(
    conn: &mut PgConnection,
    reservation_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM reservations WHERE reservation_id = $1 AND status = 'RESERVED'")
        .bind(reservation_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a release that came before any reservation; `false` when the order already has a
/// row.
pub async fn insert_release_tombstone(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO reservations (reservation_id, order_id, sku, quantity, status)
         VALUES ($1, $2, NULL, 0, 'RELEASED') ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(order_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Sets the status of a reservation row the caller has locked.
pub async fn set_status(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: ReservationStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reservations SET status = $2, updated_at = now() WHERE order_id = $1")
        .bind(order_id)
        .bind(status.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Holds `quantity` units of `sku` if that many are available, in one conditional statement
/// (concurrent reservations queue on the row and each sees the previous one's result).
/// `false` when not enough are available or the SKU is unknown.
pub async fn hold_units(
    conn: &mut PgConnection,
    sku: &str,
    quantity: i32,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE stock SET reserved = reserved + $2, updated_at = now()
         WHERE sku = $1 AND on_hand - reserved >= $2",
    )
    .bind(sku)
    .bind(quantity)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Gives held units back to the available stock.
pub async fn release_units(
    conn: &mut PgConnection,
    sku: &str,
    quantity: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE stock SET reserved = reserved - $2, updated_at = now() WHERE sku = $1")
        .bind(sku)
        .bind(quantity)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes held units from stock for good (they left with the order).
pub async fn remove_units(
    conn: &mut PgConnection,
    sku: &str,
    quantity: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE stock SET on_hand = on_hand - $2, reserved = reserved - $2, updated_at = now()
         WHERE sku = $1",
    )
    .bind(sku)
    .bind(quantity)
    .execute(conn)
    .await?;
    Ok(())
}

/// The SKU's stock, if the SKU is known.
pub async fn stock(conn: &mut PgConnection, sku: &str) -> Result<Option<Stock>, sqlx::Error> {
    let row = sqlx::query("SELECT sku, on_hand, reserved FROM stock WHERE sku = $1")
        .bind(sku)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(stock_from).transpose()
}

/// Sets the SKU's units on hand, creating the SKU if needed. Fails with the check violation
/// `stock_reserved_within_on_hand` when fewer than the reserved units would be left.
pub async fn set_on_hand(
    conn: &mut PgConnection,
    sku: &str,
    on_hand: i32,
) -> Result<Stock, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO stock (sku, on_hand) VALUES ($1, $2)
         ON CONFLICT (sku) DO UPDATE SET on_hand = EXCLUDED.on_hand, updated_at = now()
         RETURNING sku, on_hand, reserved",
    )
    .bind(sku)
    .bind(on_hand)
    .fetch_one(conn)
    .await?;
    stock_from(&row)
}
