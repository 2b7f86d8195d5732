//! The resilient client against a real local HTTP server whose answers each test scripts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use faultline_kit::http_client::{CallError, RequestSpec, ResilientClient, ResilientClientBuilder};
use faultline_kit::resilience::{
    CircuitBreakerConfig, CircuitRegistry, CircuitState, ManualClock, RetryPolicy,
};
use faultline_kit::trace::TraceContext;
use tokio::sync::Semaphore;

/// What the server does with the next request.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Status(u16),
    /// Announce arrival, then wait until the test releases it.
    Hang,
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    traceparent: Option<String>,
    idempotency_key: Option<String>,
}

struct Script {
    next: Mutex<VecDeque<Behaviour>>,
    seen: Mutex<Vec<Seen>>,
    arrivals: Semaphore,
    releases: Semaphore,
}

struct TestServer {
    url: String,
    script: Arc<Script>,
}

impl TestServer {
    async fn start() -> Self {
        let script = Arc::new(Script {
            next: Mutex::default(),
            seen: Mutex::default(),
            arrivals: Semaphore::new(0),
            releases: Semaphore::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, script }
    }

    /// Queues behaviours for the next requests; afterwards every request gets 200.
    fn then(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.script.next.lock().unwrap().extend(behaviours);
    }

    fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }

    fn hits(&self) -> usize {
        self.script.seen.lock().unwrap().len()
    }

    async fn await_arrival(&self) {
        let arrived =
            tokio::time::timeout(Duration::from_secs(5), self.script.arrivals.acquire()).await;
        arrived
            .expect("a request reached the server within 5 s")
            .unwrap()
            .forget();
    }

    fn release_one(&self) {
        self.script.releases.add_permits(1);
    }

    fn client(&self, dependency: &str) -> ResilientClientBuilder {
        ResilientClient::builder(dependency, &self.url)
            .timeout(Duration::from_secs(5))
            .retry(RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            })
    }
}

async fn handle(
    State(script): State<Arc<Script>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    script.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_owned(),
        traceparent: header("traceparent"),
        idempotency_key: header("idempotency-key"),
    });
    let behaviour = script
        .next
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Behaviour::Status(200));
    match behaviour {
        Behaviour::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            (status, axum::Json(serde_json::json!({ "status": code }))).into_response()
        }
        Behaviour::Hang => {
            script.arrivals.add_permits(1);
            script.releases.acquire().await.unwrap().forget();
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({ "status": 200 })),
            )
                .into_response()
        }
    }
}

use Behaviour::{Hang, Status};

#[tokio::test]
async fn a_get_is_retried_on_503_until_it_succeeds() {
    let server = TestServer::start().await;
    server.then([Status(503), Status(503)]);
    let client = server.client("inventory").build().unwrap();

    let response = client.send(RequestSpec::get("/stock/sku-1")).await.unwrap();

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json::<serde_json::Value>().unwrap()["status"], 200);
    assert_eq!(server.hits(), 3);
    assert!(server.seen().iter().all(|s| s.path == "/stock/sku-1"));
}

#[tokio::test]
async fn a_get_that_keeps_failing_stops_at_max_attempts_with_the_last_status() {
    let server = TestServer::start().await;
    server.then([Status(503); 5]);
    let client = server.client("inventory").build().unwrap();

    let error = client.send(RequestSpec::get("/stock")).await.unwrap_err();

    assert!(
        matches!(&error, CallError::Status { status, attempts: 3, .. } if *status == StatusCode::SERVICE_UNAVAILABLE),
        "{error:?}"
    );
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_keyed_post_is_retried_and_carries_its_key_every_time() {
    let server = TestServer::start().await;
    server.then([Status(503)]);
    let client = server.client("payment").build().unwrap();

    let charge = RequestSpec::post("/charges")
        .json(serde_json::json!({ "amount": 1 }))
        .idempotency_key("charge-o-1");
    let response = client.send(charge).await.unwrap();

    assert_eq!(response.status, StatusCode::OK);
    let keys: Vec<_> = server
        .seen()
        .into_iter()
        .map(|s| s.idempotency_key)
        .collect();
    assert_eq!(
        keys,
        [Some("charge-o-1".to_owned()), Some("charge-o-1".to_owned())]
    );
}

#[tokio::test]
async fn an_unkeyed_post_is_attempted_once() {
    let server = TestServer::start().await;
    server.then([Status(503)]);
    let client = server.client("payment").build().unwrap();

    let error = client
        .send(RequestSpec::post("/charges").json(serde_json::json!({})))
        .await
        .unwrap_err();

    assert!(
        matches!(error, CallError::Status { attempts: 1, .. }),
        "{error:?}"
    );
    assert_eq!(server.hits(), 1);
    assert_eq!(server.seen()[0].method, Method::POST);
}

#[tokio::test]
async fn a_4xx_is_returned_to_the_caller_and_not_retried() {
    let server = TestServer::start().await;
    server.then([Status(404)]);
    let client = server.client("inventory").build().unwrap();

    let response = client
        .send(RequestSpec::get("/stock/unknown"))
        .await
        .unwrap();

    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(server.hits(), 1);
    assert_eq!(
        client.circuit_breaker().snapshot().failed_calls,
        0,
        "a 4xx is a success for the breaker"
    );
}

#[tokio::test]
async fn the_breaker_opens_rejects_without_calling_then_half_opens_and_closes_after_good_probes() {
    let server = TestServer::start().await;
    let registry = CircuitRegistry::new();
    let clock = Arc::new(ManualClock::new());
    let client = server
        .client("payment")
        .retry(RetryPolicy::no_retry())
        .circuit_breaker(CircuitBreakerConfig {
            sliding_window_size: 4,
            minimum_number_of_calls: 4,
            failure_rate_threshold: 50.0,
            wait_duration_in_open_state: Duration::from_millis(200),
            permitted_number_of_calls_in_half_open_state: 2,
            ..CircuitBreakerConfig::default()
        })
        .clock(clock.clone())
        .registry(&registry)
        .build()
        .unwrap();
    server.then([Status(500); 4]);

    for _ in 0..4 {
        let error = client
            .send(RequestSpec::get("/charges/1"))
            .await
            .unwrap_err();
        assert!(matches!(error, CallError::Status { .. }), "{error:?}");
    }
    assert_eq!(client.circuit_breaker().state(), CircuitState::Open);

    for _ in 0..3 {
        let error = client
            .send(RequestSpec::get("/charges/1"))
            .await
            .unwrap_err();
        assert!(matches!(error, CallError::CircuitOpen { .. }), "{error:?}");
    }
    assert_eq!(
        server.hits(),
        4,
        "an open circuit does not reach the server"
    );

    clock.advance(Duration::from_millis(201));
    for _ in 0..2 {
        client.send(RequestSpec::get("/charges/1")).await.unwrap();
    }
    assert_eq!(server.hits(), 6);

    let snapshot = registry.snapshot();
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot[0].dependency, "payment");
    assert_eq!(snapshot[0].state, CircuitState::Closed);
    let path: Vec<_> = snapshot[0]
        .transitions
        .iter()
        .map(|t| (t.from, t.to))
        .collect();
    assert_eq!(
        path,
        [
            (CircuitState::Closed, CircuitState::Open),
            (CircuitState::Open, CircuitState::HalfOpen),
            (CircuitState::HalfOpen, CircuitState::Closed),
        ]
    );
}

#[tokio::test]
async fn a_rejection_by_the_open_circuit_is_not_retried() {
    let server = TestServer::start().await;
    let client = server
        .client("payment")
        .retry(RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        })
        .circuit_breaker(CircuitBreakerConfig {
            sliding_window_size: 2,
            minimum_number_of_calls: 2,
            ..Default::default()
        })
        .build()
        .unwrap();
    server.then([Status(503); 10]);

    let error = client
        .send(RequestSpec::get("/charges/1"))
        .await
        .unwrap_err();

    // Two 503s open the circuit; the third attempt is refused locally and ends the call.
    assert!(matches!(error, CallError::CircuitOpen { .. }), "{error:?}");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn an_attempt_that_hangs_surfaces_as_timeout() {
    let server = TestServer::start().await;
    server.then([Hang]);
    let client = server
        .client("inventory")
        .timeout(Duration::from_millis(100))
        .retry(RetryPolicy::no_retry())
        .build()
        .unwrap();

    let error = client.send(RequestSpec::get("/stock")).await.unwrap_err();

    assert!(
        matches!(error, CallError::Timeout { after, attempts: 1, .. } if after == Duration::from_millis(100)),
        "{error:?}"
    );
    assert_eq!(
        client.circuit_breaker().snapshot().failed_calls,
        1,
        "a timeout is a failure for the breaker"
    );
    server.release_one();
}

#[tokio::test]
async fn a_call_beyond_the_bulkhead_is_rejected_while_another_is_in_flight() {
    let server = TestServer::start().await;
    server.then([Hang]);
    let client = server.client("inventory").bulkhead(1).build().unwrap();

    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.send(RequestSpec::get("/stock")).await }
    });
    server.await_arrival().await;

    let error = client.send(RequestSpec::get("/stock")).await.unwrap_err();
    assert!(matches!(error, CallError::BulkheadFull { .. }), "{error:?}");
    assert!(error.is_rejection());
    assert_eq!(server.hits(), 1);

    server.release_one();
    assert_eq!(in_flight.await.unwrap().unwrap().status, StatusCode::OK);
    client
        .send(RequestSpec::get("/stock"))
        .await
        .expect("the slot is free again");
}

#[tokio::test]
async fn traceparent_continues_the_callers_trace_with_a_new_span() {
    let server = TestServer::start().await;
    let client = server.client("inventory").build().unwrap();
    let caller = TraceContext::new_root();

    caller
        .scope(client.send(RequestSpec::get("/stock")))
        .await
        .unwrap();

    let sent = server.seen()[0]
        .traceparent
        .clone()
        .expect("a traceparent header");
    let sent = TraceContext::parse(&sent).expect("a valid traceparent");
    assert_eq!(sent.trace_id(), caller.trace_id());
    assert_ne!(sent.span_id(), caller.span_id());
}

#[tokio::test]
async fn without_a_caller_trace_every_attempt_of_a_call_shares_one_new_trace() {
    let server = TestServer::start().await;
    server.then([Status(503)]);
    let client = server.client("inventory").build().unwrap();

    client.send(RequestSpec::get("/stock")).await.unwrap();

    let contexts: Vec<_> = server
        .seen()
        .iter()
        .map(|s| TraceContext::parse(s.traceparent.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(contexts.len(), 2);
    assert_eq!(contexts[0].trace_id(), contexts[1].trace_id());
    assert_ne!(contexts[0].span_id(), contexts[1].span_id());
}

#[tokio::test]
async fn an_unreachable_dependency_surfaces_as_transport_after_retries() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener); // nothing listens there now: connection refused

    let client = ResilientClient::builder("payment", url)
        .retry(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        })
        .build()
        .unwrap();
    let error = client.send(RequestSpec::get("/charges")).await.unwrap_err();

    assert!(
        matches!(error, CallError::Transport { attempts: 2, .. }),
        "{error:?}"
    );
}

#[test]
fn bad_settings_are_refused_naming_the_setting() {
    let error = ResilientClient::builder("payment", "not a url")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("not a url"), "{error}");
    let error = ResilientClient::builder("payment", "http://payment")
        .bulkhead(0)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("bulkhead"), "{error}");
    let error = ResilientClient::builder("payment", "http://payment")
        .circuit_breaker(CircuitBreakerConfig {
            failure_rate_threshold: 0.0,
            ..Default::default()
        })
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("failure_rate_threshold"),
        "{error}"
    );
}
