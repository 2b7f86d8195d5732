//! A gateway in front of a fake order service that records what it was sent.

#![allow(dead_code)] // each test binary uses its own part

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use faultline_gateway::{Gateway, GatewayConfig};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "test-secret-0123456789";
pub const AUDIENCE: &str = "faultline";

/// One request the fake order received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub traceparent: Option<String>,
    pub authorization: Option<String>,
    pub body: Option<Value>,
}

#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    pub fn all(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }
    fn push(&self, method: &str, path: String, headers: &HeaderMap, body: Option<Value>) {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        self.0.lock().unwrap().push(Recorded {
            method: method.into(),
            path,
            idempotency_key: header("idempotency-key"),
            traceparent: header("traceparent"),
            authorization: header("authorization"),
            body,
        });
    }
}

async fn fake_create(
    State(recorder): State<Recorder>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    recorder.push("POST", "/orders".into(), &headers, Some(body));
    (
        StatusCode::ACCEPTED,
        Json(json!({"order_id": "6f1c1c9e-8a52-4f3e-9b1e-2d3c4b5a6978", "status": "PENDING"})),
    )
}

async fn fake_get(
    State(recorder): State<Recorder>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let query = query.map_or(String::new(), |q| format!("?{q}"));
    recorder.push("GET", format!("/orders/{id}{query}"), &headers, None);
    if id == "broken" {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "internal", "message": "order broke"})),
        );
    }
    if id == "missing" {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not_found", "message": "no such order"})),
        );
    }
    (
        StatusCode::OK,
        Json(json!({"order_id": id, "status": "CONFIRMED"})),
    )
}

/// Starts the fake order service; the server lives as long as the test's runtime.
pub async fn fake_order() -> (SocketAddr, Recorder) {
    let recorder = Recorder::default();
    let app = Router::new()
        .route("/orders", post(fake_create))
        .route("/orders/{id}", get(fake_get))
        .route(
            "/health/live",
            get(|| async { Json(json!({"status": "live"})) }),
        )
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, recorder)
}

/// A running gateway in front of `order_url`.
pub struct TestGateway {
    pub base: String,
    pub shutdown: CancellationToken,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn gateway(order_url: &str, rate_limit_per_second: u32) -> TestGateway {
    let limit = rate_limit_per_second.to_string();
    let config = GatewayConfig::from_pairs([
        ("GATEWAY_ORDER_URL", order_url),
        ("GATEWAY_JWT_SECRET", SECRET),
        ("GATEWAY_RATE_LIMIT_PER_SECOND", limit.as_str()),
        ("GATEWAY_ORDER_TIMEOUT_MS", "1000"),
    ])
    .unwrap();
    let gateway = Gateway::start(&config).await.unwrap();
    let base = format!("http://{}", gateway.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(gateway.run(shutdown.clone()));
    TestGateway { base, shutdown }
}

pub fn token(subject: &str, roles: &[&str]) -> String {
    faultline_gateway::mint_token(SECRET, subject, roles, AUDIENCE, Duration::from_secs(300))
}

pub fn order_body() -> Value {
    json!({"customer_id": "c-1", "sku": "sku-1", "quantity": 1, "amount_cents": 1200, "card": "4242424242424242"})
}
