//! The HTTP API: `GET /notifications?order_id=<uuid>` lists an order's notifications, oldest
//! first, as `[{"event_id", "order_id", "type", "created_at"}]`. Without a valid `order_id` it
//! answers 400 `{"error": "invalid_order_id", ...}`; a failing database 503.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// One notification as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Notification {
    pub event_id: String,
    pub order_id: Uuid,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: String,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// The service's own routes.
pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/notifications", get(list_notifications))
        .with_state(pool)
}

async fn list_notifications(
    State(pool): State<PgPool>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(order_id) = query
        .get("order_id")
        .and_then(|id| Uuid::parse_str(id).ok())
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_order_id", "message": "query parameter `order_id` must be an order's UUID"})),
        )
            .into_response();
    };
    let rows = sqlx::query_as::<_, Notification>(
        "SELECT event_id, order_id, type, created_at FROM notifications
         WHERE order_id = $1 ORDER BY created_at, event_id",
    )
    .bind(order_id)
    .fetch_all(&pool)
    .await;
    match rows {
        Ok(rows) => Json(rows).into_response(),
        Err(error) => {
            tracing::warn!(%error, "listing notifications");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "database_unavailable", "message": error.to_string()})),
            )
                .into_response()
        }
    }
}
