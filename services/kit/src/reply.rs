//! What a handler answers, and the checks that turn a request body into typed fields: shared by
//! the services whose answers idempotency keys store (payment, inventory).
//!
//! A [`Reply`] is a status and a JSON body. Replies are what idempotency keys store and replay,
//! so business outcomes (a decline, an order out of stock) are replies like any success; errors are
//! `{"error": "<code>", "message": "..."}` with extra fields where the API names them:
//!
//! ```
//! use axum::http::StatusCode;
//! use faultline_kit::reply::Reply;
//! let reply = Reply::error(StatusCode::CONFLICT, "order_voided", "the order was voided by a refund")
//!     .with("order_id", "7");
//! assert_eq!(reply.body["error"], "order_voided");
//! ```

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// The request header that makes a mutating request idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// A status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self { status, body }
    }

    /// `{"error": code, "message": message}`.
    pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self::new(status, json!({"error": code, "message": message.into()}))
    }

    /// Adds `name: value` to an object body.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(fields) = &mut self.body {
            fields.insert(name.to_string(), value.into());
        }
        self
    }

    /// 400 `invalid_request` naming the bad field.
    pub fn invalid_field(field: &str, expected: &str) -> Self {
        Self::error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{field}: expected {expected}"),
        )
        .with("field", field)
    }

    /// A database failure: 503 when the database could not be reached (the caller may retry),
    /// else 500. Logged here, so handlers just return it.
    pub fn database(error: &sqlx::Error) -> Self {
        let unreachable = matches!(
            error,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed
        );
        if unreachable {
            tracing::warn!(%error, "database unavailable");
            Self::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unavailable; retry with the same Idempotency-Key",
            )
        } else {
            tracing::error!(%error, "database error");
            Self::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "an internal error occurred",
            )
        }
    }

    /// The status as stored with an idempotency key.
    pub fn status_code(&self) -> u16 {
        self.status.as_u16()
    }
}

impl From<sqlx::Error> for Reply {
    fn from(error: sqlx::Error) -> Self {
        Self::database(&error)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The `Idempotency-Key` header, or 400 `missing_idempotency_key` / `invalid_idempotency_key`.
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, Reply> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "missing_idempotency_key",
            "the Idempotency-Key header is required",
        ));
    };
    match value.to_str().map(str::trim) {
        Ok(key) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_LEN => Ok(key.to_string()),
        _ => Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            format!(
                "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ),
        )),
    }
}

/// The fields of a JSON object body, read one by one with a 400 naming the first bad field.
#[derive(Debug)]
pub struct Fields(Map<String, Value>);

impl Fields {
    /// Parses `body` as a JSON object.
    pub fn parse(body: &[u8]) -> Result<Self, Reply> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => Ok(Self(fields)),
            Ok(_) => Err(Reply::error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body must be a JSON object",
            )),
            Err(error) => Err(Reply::error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the body is not valid JSON: {error}"),
            )),
        }
    }

    /// A required UUID string.
    pub fn uuid(&self, name: &str) -> Result<uuid::Uuid, Reply> {
        self.0
            .get(name)
            .and_then(Value::as_str)
            .and_then(|text| uuid::Uuid::parse_str(text).ok())
            .ok_or_else(|| Reply::invalid_field(name, "a UUID string"))
    }

    /// A required integer > 0.
    pub fn positive_i64(&self, name: &str) -> Result<i64, Reply> {
        self.0
            .get(name)
            .and_then(Value::as_i64)
            .filter(|value| *value > 0)
            .ok_or_else(|| Reply::invalid_field(name, "an integer greater than 0"))
    }

    /// A required integer in `min..=i32::MAX`.
    pub fn i32_at_least(&self, name: &str, min: i32) -> Result<i32, Reply> {
        self.0
            .get(name)
            .and_then(Value::as_i64)
            .and_then(|value| i32::try_from(value).ok())
            .filter(|value| *value >= min)
            .ok_or_else(|| {
                Reply::invalid_field(name, &format!("an integer from {min} to {}", i32::MAX))
            })
    }

    /// A required non-empty string of at most `max_len` bytes.
    pub fn string(&self, name: &str, max_len: usize) -> Result<String, Reply> {
        self.0
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty() && text.len() <= max_len)
            .map(str::to_string)
            .ok_or_else(|| {
                Reply::invalid_field(
                    name,
                    &format!("a non-empty string of at most {max_len} characters"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named_in_the_reply() {
        let fields = Fields::parse(
            br#"{"order_id": "nope", "amount_cents": 0, "quantity": 0, "big": 3000000000}"#,
        )
        .unwrap();
        let reply = fields.uuid("order_id").unwrap_err();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.body["field"], "order_id");
        assert_eq!(
            fields.positive_i64("amount_cents").unwrap_err().body["field"],
            "amount_cents"
        );
        assert_eq!(fields.string("card", 32).unwrap_err().body["field"], "card");
        assert_eq!(
            fields.i32_at_least("quantity", 1).unwrap_err().body["field"],
            "quantity"
        );
        assert_eq!(
            fields.i32_at_least("big", 1).unwrap_err().body["field"],
            "big",
            "beyond i32"
        );
        assert!(Fields::parse(b"[1]").is_err());
        assert!(Fields::parse(b"{").is_err());
    }

    #[test]
    fn a_missing_key_is_refused_by_name() {
        let reply = idempotency_key(&HeaderMap::new()).unwrap_err();
        assert_eq!(reply.body["error"], "missing_idempotency_key");
    }
}
