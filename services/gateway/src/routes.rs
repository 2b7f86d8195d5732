//! The gateway's `/api/...` routes: admit the caller (token, rate limit, role), then forward
//! to the order service through the kit's [`ResilientClient`] and pass its answer through.
//!
//! | route | role | forwarded to |
//! |---|---|---|
//! | `POST /api/orders` | `orders:write` | `POST /orders`, with the client's `Idempotency-Key` |
//! | `GET /api/orders/{order_id}[?wait_ms=N]` | `orders:read` | `GET /orders/{order_id}[?wait_ms=M]`, M = N capped below the gateway's own timeout for order |
//!
//! Admission runs in this order: authenticate (401), rate-limit the token's `sub` (429 with
//! `Retry-After`), check the role (403). Order's answer, whatever its status, is passed through
//! with its body; when order gives no answer the gateway says why:
//! circuit open or bulkhead full → 503 `order_unavailable`, timeout → 504 `order_timeout`,
//! connection failure → 502 `order_unreachable`.
//!
//! Each forwarded request carries a `traceparent` that is a child of the request's trace
//! context (which the kit's telemetry middleware took from the incoming `traceparent`, or
//! started), so the trace id the gateway returns is the one order sees. A POST with an
//! `Idempotency-Key` may be retried by the client; one without is sent once and order answers
//! 400 for the missing key.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use faultline_kit::http_client::{CallError, RequestSpec, ResilientClient};
use faultline_kit::wait::wait_of;
use serde_json::json;

use crate::auth::{AuthError, Authenticator, Principal};
use crate::rate_limit::RateLimiter;

/// The role a caller needs to place orders.
pub const ROLE_WRITE: &str = "orders:write";
/// The role a caller needs to read orders.
pub const ROLE_READ: &str = "orders:read";

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What the routes share.
#[derive(Debug, Clone)]
pub struct GatewayState {
    pub auth: Arc<Authenticator>,
    pub limiter: Arc<RateLimiter>,
    /// The client for dependency `order`.
    pub order: ResilientClient,
    /// The longest a forwarded read may wait for a saga (`wait_ms`): less than the client's
    /// own timeout for order.
    pub max_wait: std::time::Duration,
}

/// The `/api/...` routes.
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/api/orders", post(create_order))
        .route("/api/orders/{order_id}", get(get_order))
        .with_state(state)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

/// Why a request was not admitted.
enum Refusal {
    Auth(AuthError),
    /// Whole seconds until the client's bucket has a token again.
    RateLimited(u64),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Auth(refusal) => refusal.into_response(),
            Self::RateLimited(retry_after) => {
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many requests from this client; retry after {retry_after} s"),
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(retry_after));
                response
            }
        }
    }
}

/// Authenticates, rate-limits and authorises.
fn admit(state: &GatewayState, headers: &HeaderMap, role: &str) -> Result<Principal, Refusal> {
    let principal = state.auth.authenticate(headers).map_err(|refusal| {
        tracing::info!(reason = %refusal, "request refused: not authenticated");
        Refusal::Auth(refusal)
    })?;
    if let Err(retry_after) = state.limiter.check(&principal.subject) {
        tracing::info!(client = %principal.subject, retry_after, "request refused: rate limited");
        metrics::counter!("gateway_rate_limited_total").increment(1);
        return Err(Refusal::RateLimited(retry_after));
    }
    principal.require(role).map_err(|refusal| {
        tracing::info!(client = %principal.subject, reason = %refusal, "request refused: forbidden");
        Refusal::Auth(refusal)
    })?;
    Ok(principal)
}

async fn create_order(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = admit(&state, &headers, ROLE_WRITE) {
        return refusal.into_response();
    }
    let body: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(problem) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not JSON: {problem}"),
            )
        }
    };
    let mut request = RequestSpec::post("/orders").json(body);
    if let Some(key) = headers.get(IDEMPOTENCY_KEY) {
        match key.to_str() {
            Ok(key) => request = request.idempotency_key(key),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_idempotency_key",
                    "the Idempotency-Key header is not text",
                )
            }
        }
    }
    let answer = forward(&state.order, request).await;
    if faultline_kit::seeded::active(faultline_kit::seeded::GATEWAY_ACCEPTS_UNANSWERED_ORDERS)
        && [StatusCode::BAD_GATEWAY, StatusCode::SERVICE_UNAVAILABLE, StatusCode::GATEWAY_TIMEOUT]
            .contains(&answer.status())
    {
        // Seeded bug: "graceful degradation" that tells the client its order was taken when
        // order never said so, and leaves it nothing to follow the order by.
        return (
            StatusCode::ACCEPTED,
            Json(json!({"status": "PENDING", "message": "your order is being processed"})),
        )
            .into_response();
    }
    answer
}

async fn get_order(
    State(state): State<GatewayState>,
    Path(order_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = admit(&state, &headers, ROLE_READ) {
        return refusal.into_response();
    }
    // The id becomes part of order's URL: only characters that cannot change its path pass.
    if order_id.is_empty()
        || !order_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_order_id",
            "an order id holds only letters, digits, `-` and `_`",
        );
    }
    let wait = match wait_of(query.as_deref()) {
        Ok(ms) => ms.min(state.max_wait.as_millis() as u64),
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_wait", message),
    };
    let path = if wait > 0 {
        format!("/orders/{order_id}?wait_ms={wait}")
    } else {
        format!("/orders/{order_id}")
    };
    forward(&state.order, RequestSpec::get(path)).await
}

/// Sends `request` to order and answers with order's status and body, or with why not.
async fn forward(order: &ResilientClient, request: RequestSpec) -> Response {
    match order.send(request).await {
        Ok(answer) => {
            let mut response = (answer.status, answer.body).into_response();
            for name in [CONTENT_TYPE, RETRY_AFTER] {
                if let Some(value) = answer.headers.get(&name) {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        // A 500 of order's is not the gateway's own internal error: to its clients it is a
        // bad gateway. 502, 503 and 504 say what they mean already and pass through.
        Err(CallError::Status { status, .. })
            if status.is_server_error()
                && ![StatusCode::BAD_GATEWAY, StatusCode::SERVICE_UNAVAILABLE, StatusCode::GATEWAY_TIMEOUT]
                    .contains(&status) =>
        {
            tracing::warn!(%status, "order failed");
            error(
                StatusCode::BAD_GATEWAY,
                "order_failed",
                format!("order answered {status}"),
            )
        }
        Err(CallError::Status { status, body, .. }) => {
            tracing::warn!(%status, "order answered with an error; passing it through");
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(failure) => {
            tracing::warn!(error = %failure, "no answer from order");
            let (status, code) = match &failure {
                CallError::CircuitOpen { .. } | CallError::BulkheadFull { .. } => {
                    (StatusCode::SERVICE_UNAVAILABLE, "order_unavailable")
                }
                CallError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "order_timeout"),
                CallError::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
                // `Status` is answered above; anything else failed below HTTP.
                _ => (StatusCode::BAD_GATEWAY, "order_unreachable"),
            };
            error(status, code, failure.to_string())
        }
    }
}
