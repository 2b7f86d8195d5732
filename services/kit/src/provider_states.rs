//! Provider states for contract verification: the test-mode endpoint
//! `POST /admin/provider-states` that puts a provider into the state a pact interaction needs
//! before it is replayed.
//!
//! The request is the one Pact verifiers send (faultline's, and the official
//! `pact_verifier_cli --state-change-url`): `{"state": "<name>", "params": {...},
//! "action": "setup" | "teardown"}`. A `setup` answers `200` with a JSON object of values the
//! state made (e.g. `{"order_id": "…"}`), which the verifier substitutes into the interaction
//! through `ProviderState` generators (`${order_id}`). A `teardown` answers `200 {}`: every
//! state here creates fresh data (new ids), so there is nothing to undo and interactions
//! cannot see each other's data. The empty state (what a verifier may send for an interaction
//! without one) answers `200 {}`. An unknown state answers `400 unknown_provider_state` with
//! the list of known ones, so a pact naming a state the provider never heard of fails loudly.
//!
//! Services mount the router only in test mode (`<SVC>_TEST_MODE=true`).
//!
//! ```
//! use faultline_kit::provider_states::ProviderStates;
//! use serde_json::json;
//!
//! let states = ProviderStates::new().state("a SKU exists", |params| async move {
//!     let sku = params.get("sku").and_then(|v| v.as_str()).unwrap_or("sku-1").to_string();
//!     Ok(json!({"sku": sku}))
//! });
//! let _router: axum::Router = states.router();
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

/// The path of the state-change endpoint.
pub const PATH: &str = "/admin/provider-states";

type StateFuture = Pin<Box<dyn Future<Output = Result<Value, String>> + Send>>;
type StateFn = Arc<dyn Fn(Map<String, Value>) -> StateFuture + Send + Sync>;

/// The states a provider knows, by name.
#[derive(Clone, Default)]
pub struct ProviderStates {
    states: BTreeMap<String, StateFn>,
}

impl std::fmt::Debug for ProviderStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderStates")
            .field("states", &self.states.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ProviderStates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds state `name`; `setup` gets the state's parameters and answers a JSON object of the
    /// values it made (or an error message, answered as `500 provider_state_failed`).
    pub fn state<F, Fut>(mut self, name: &str, setup: F) -> Self
    where
        F: Fn(Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, String>> + Send + 'static,
    {
        let setup: StateFn = Arc::new(move |params| Box::pin(setup(params)));
        self.states.insert(name.to_string(), setup);
        self
    }

    /// The names of the known states.
    pub fn names(&self) -> Vec<String> {
        self.states.keys().cloned().collect()
    }

    /// `POST /admin/provider-states`.
    pub fn router(self) -> Router {
        Router::new()
            .route(PATH, post(change_state))
            .with_state(Arc::new(self))
    }
}

fn refuse(status: StatusCode, code: &str, message: String) -> (StatusCode, Json<Value>) {
    (status, Json(json!({"error": code, "message": message})))
}

async fn change_state(
    State(states): State<Arc<ProviderStates>>,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(request)) => Value::Object(request),
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "expected a JSON object {\"state\", \"params\", \"action\"}".into(),
            )
        }
    };
    let Some(name) = request.get("state").and_then(Value::as_str) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "state: expected the state's name as a string".into(),
        );
    };
    let params = match request.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params.clone(),
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "params: expected an object".into(),
            )
        }
    };
    let action = request
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("setup");
    // Verifiers may call for interactions without a state, naming the empty state.
    if name.trim().is_empty() {
        return (StatusCode::OK, Json(json!({})));
    }
    let Some(setup) = states.states.get(name) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unknown_provider_state",
            format!(
                "unknown provider state {name:?}; known states: {}",
                states.names().join("; ")
            ),
        );
    };
    match action {
        "teardown" => (StatusCode::OK, Json(json!({}))),
        "setup" => match setup(params).await {
            Ok(values) => {
                tracing::info!(state = name, "provider state set up");
                (StatusCode::OK, Json(values))
            }
            Err(message) => {
                tracing::warn!(state = name, %message, "provider state failed");
                refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "provider_state_failed",
                    message,
                )
            }
        },
        other => refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("action: expected \"setup\" or \"teardown\", got {other:?}"),
        ),
    }
}

/// Parameter `name` as a string, or `default` when absent.
pub fn param_str(params: &Map<String, Value>, name: &str, default: &str) -> Result<String, String> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("parameter {name}: expected a string, got {other}")),
    }
}

/// Parameter `name` as an integer, or `default` when absent.
pub fn param_i64(params: &Map<String, Value>, name: &str, default: i64) -> Result<i64, String> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_i64()
            .ok_or_else(|| format!("parameter {name}: expected an integer, got {value}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn call(router: Router, body: &str) -> (StatusCode, Value) {
        let response = router
            .oneshot(
                Request::post(PATH)
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn states() -> Router {
        ProviderStates::new()
            .state("a thing exists", |params| async move {
                let n = param_i64(&params, "n", 1)?;
                Ok(json!({"n": n * 2}))
            })
            .router()
    }

    #[tokio::test]
    async fn setup_answers_the_values_the_state_made() {
        let (status, body) = call(
            states(),
            r#"{"state": "a thing exists", "params": {"n": 21}, "action": "setup"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"n": 42}));
    }

    #[tokio::test]
    async fn an_unknown_state_is_refused_naming_the_known_ones() {
        let (status, body) = call(states(), r#"{"state": "nothing", "action": "setup"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "unknown_provider_state");
        assert!(body["message"].as_str().unwrap().contains("a thing exists"));
    }

    #[tokio::test]
    async fn bad_parameters_and_teardown() {
        let (status, body) = call(
            states(),
            r#"{"state": "a thing exists", "params": {"n": "x"}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body["message"].as_str().unwrap().contains("parameter n"));
        let (status, body) = call(
            states(),
            r#"{"state": "a thing exists", "action": "teardown"}"#,
        )
        .await;
        assert_eq!((status, body), (StatusCode::OK, json!({})));
        let (status, body) = call(states(), r#"{"state": "", "action": "setup"}"#).await;
        assert_eq!((status, body), (StatusCode::OK, json!({})));
        let (status, _) = call(states(), "[1]").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
